//! What a reclamation guard costs a lookup: independent random reads of a table, each
//! inside its own guard, under several read-side protocols.
//!
//! ```text
//! cargo run --release -p readmostly-bench --example guard_cost
//! cargo run --release -p readmostly-bench --example guard_cost -- --threads 2 --dependent
//! cargo run --release -p readmostly-bench --example guard_cost -- --table 256MiB
//! ```
//!
//! Why: `SyncMap`'s per-call `map.pin().get(&k)` runs at about half the speed of the same
//! gets under one pin (`syncmap` against `syncmap-batch` in `readmostly-bench compare`).
//! Consecutive lookups are independent, so an out-of-order CPU overlaps their cache misses
//! — unless something between them waits for memory, as a locked read-modify-write
//! (`xchg`, `lock cmpxchg`) or a full fence may. This example measures a guard's cost
//! alone, around one or two loads, for:
//!
//! * `none`: the reads alone (the frozen map's regime: no protection at all);
//! * `plain-stores`: announce and withdraw with a plain store each, the reader's side of
//!   an epoch scheme whose writers use process-wide barriers (`membarrier`). It protects
//!   nothing here: it is the floor such a scheme could reach, not a reclaimer;
//! * `fence-on-enter`: a plain store and a `SeqCst` fence on entry, a plain store on exit
//!   (the classic epoch reader, emulated);
//! * `swap-on-exit`: a plain store on entry, a locked swap on exit: the instructions
//!   of `seize`'s outermost guard (below) with none of its bookkeeping, to tell the cost
//!   of the locked instruction from the rest;
//! * `seize`: `seize::Collector::enter` and dropping the guard, as readmostly pins (the
//!   exit swaps the thread's reservation list: a locked `xchg` on x86-64);
//! * `sdd`: `sdd::Guard::new` (scc's reclaimer: a locked swap on entry);
//! * `crossbeam-epoch`: `crossbeam_epoch::pin` (a locked compare-exchange on entry).
//!
//! Protocols run in alternating order in every round, on every thread at once; the figure
//! is the median over rounds of nanoseconds per guarded read (the slowest thread's time
//! divided by its reads), and `× none` its ratio to the unguarded reads of the same round.
//! `--dependent` makes each read two dependent loads (an index, then the slot it names),
//! like a bucket and then an entry.
//!
//! A tiny loop body exaggerates what a guard costs a real lookup. In the map (session 15,
//! `BENCHMARKS.md`), an epoch reader with a fence on entry was no faster per `get` than
//! `seize`, nor was one with no fence at all: there the cost of one pin per lookup is
//! mostly its instructions, which leave fewer lookups in flight in the CPU's window.

use std::hint::black_box;
use std::sync::atomic::{compiler_fence, fence, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Instant;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "Cost of a reclamation guard around one random read")]
struct Args {
    /// Table size, e.g. 8MiB (the L3 of the development machine holds it), 256MiB (DRAM).
    #[arg(long, default_value = "8MiB", value_parser = parse_size)]
    table: usize,
    /// Guarded reads per thread per protocol per round, e.g. 5M.
    #[arg(long, default_value = "5M", value_parser = parse_count)]
    reads: u64,
    /// Rounds (the protocols' order alternates between rounds).
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u64).range(1..))]
    rounds: u64,
    /// Threads reading at once, each under its own guards.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    threads: u64,
    /// Two dependent loads per read (index, then slot) instead of one.
    #[arg(long)]
    dependent: bool,
}

fn parse_size(s: &str) -> Result<usize, String> {
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: usize = digits
        .parse()
        .map_err(|_| format!("'{s}' is not a size such as 8MiB"))?;
    let shift = match unit {
        "" | "B" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        _ => return Err(format!("unknown unit in '{s}' (B, KiB, MiB, GiB)")),
    };
    let bytes = n
        .checked_shl(shift)
        .filter(|b| b >> shift == n)
        .ok_or_else(|| format!("'{s}' is too large"))?;
    if bytes < 4096 {
        return Err(format!("'{s}' is too small (at least 4KiB)"));
    }
    Ok(bytes)
}

/// A positive count such as `5M` (the bench CLI's syntax).
fn parse_count(s: &str) -> Result<u64, String> {
    match readmostly_bench::cli::parse_count(s) {
        Some(0) => Err(format!("'{s}' must be positive")),
        Some(n) => Ok(n),
        None => Err(format!("'{s}' is not a count such as 5M")),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    None,
    PlainStores,
    FenceOnEnter,
    SwapOnExit,
    Seize,
    Sdd,
    CrossbeamEpoch,
}

const PROTOCOLS: [Protocol; 7] = [
    Protocol::None,
    Protocol::PlainStores,
    Protocol::FenceOnEnter,
    Protocol::SwapOnExit,
    Protocol::Seize,
    Protocol::Sdd,
    Protocol::CrossbeamEpoch,
];

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::None => "none",
            Protocol::PlainStores => "plain-stores",
            Protocol::FenceOnEnter => "fence-on-enter",
            Protocol::SwapOnExit => "swap-on-exit",
            Protocol::Seize => "seize",
            Protocol::Sdd => "sdd",
            Protocol::CrossbeamEpoch => "crossbeam-epoch",
        }
    }
}

/// Everything the reading threads share.
struct Shared {
    /// Each slot holds the index of another slot (a random permutation's successor), so a
    /// dependent read can follow one.
    table: Vec<u64>,
    mask: u64,
    dependent: bool,
    reads: u64,
    seize: seize::Collector,
}

/// The random slot of read `i` of thread `t`: a multiplicative hash of a counter, so the
/// addresses do not depend on earlier loads (independent reads, as in the benchmark).
#[inline(always)]
fn slot(i: u64, t: u64, mask: u64) -> usize {
    let x = (i ^ (t << 40)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    ((x ^ (x >> 29)) & mask) as usize
}

/// One read: one load, or two dependent ones.
#[inline(always)]
fn read(s: &Shared, i: u64, t: u64) -> u64 {
    let first = s.table[slot(i, t, s.mask)];
    if s.dependent {
        s.table[(first & s.mask) as usize]
    } else {
        first
    }
}

/// Reads with a guard from `enter` around each one.
#[inline(always)]
fn guarded<G>(s: &Shared, t: u64, enter: impl Fn() -> G) -> u64 {
    let mut sum = 0u64;
    for i in 0..s.reads {
        let guard = enter();
        sum = sum.wrapping_add(read(s, i, t));
        drop(black_box(guard));
    }
    sum
}

/// Reads announced in `announce` (a store in; out, a store, or a swap if `SWAP`), with a
/// `SeqCst` fence after the announcement if `FENCE`, else a compiler fence.
#[inline(always)]
fn announced<const FENCE: bool, const SWAP: bool>(s: &Shared, t: u64, announce: &AtomicU64) -> u64 {
    let mut sum = 0u64;
    for i in 0..s.reads {
        announce.store(i | 1, Ordering::Relaxed);
        if FENCE {
            fence(Ordering::SeqCst);
        } else {
            compiler_fence(Ordering::SeqCst);
        }
        sum = sum.wrapping_add(read(s, i, t));
        if SWAP {
            black_box(announce.swap(0, Ordering::Release));
        } else {
            announce.store(0, Ordering::Release);
        }
    }
    sum
}

/// Runs `reads` guarded reads under `p` on this thread; returns the elapsed nanoseconds.
fn run(p: Protocol, s: &Shared, t: u64, announce: &AtomicU64) -> u64 {
    let start = Instant::now();
    let sum = match p {
        Protocol::None => (0..s.reads).fold(0u64, |sum, i| sum.wrapping_add(read(s, i, t))),
        Protocol::PlainStores => announced::<false, false>(s, t, announce),
        Protocol::FenceOnEnter => announced::<true, false>(s, t, announce),
        Protocol::SwapOnExit => announced::<false, true>(s, t, announce),
        Protocol::Seize => guarded(s, t, || s.seize.enter()),
        Protocol::Sdd => guarded(s, t, sdd::Guard::new),
        Protocol::CrossbeamEpoch => guarded(s, t, crossbeam_epoch::pin),
    };
    black_box(sum);
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    let args = Args::parse();
    // The largest power of two of 8-byte slots that fits.
    let slots = 1usize << (usize::BITS - 1 - (args.table / 8).leading_zeros());
    let mask = slots as u64 - 1;
    // A random cyclic successor for each slot (Sattolo's shuffle with a fixed-seed
    // xorshift), so dependent reads land on unpredictable lines.
    let mut perm: Vec<u64> = (0..slots as u64).collect();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for i in (1..slots).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        perm.swap(i, (x % i as u64) as usize);
    }
    let mut table = vec![0u64; slots];
    for w in 0..slots {
        table[perm[w] as usize] = perm[(w + 1) % slots];
    }
    let shared = Arc::new(Shared {
        table,
        mask,
        dependent: args.dependent,
        reads: args.reads,
        seize: seize::Collector::new().batch_size(512),
    });
    println!(
        "table {} KiB ({} slots), {} threads, {} guarded reads per thread per protocol per round, {} rounds, {} load{} per read",
        slots * 8 / 1024,
        slots,
        args.threads,
        args.reads,
        args.rounds,
        if args.dependent { 2 } else { 1 },
        if args.dependent { "s (dependent)" } else { "" },
    );
    // ns per read of the slowest thread, per protocol, per round.
    let mut per_round: Vec<Vec<f64>> = vec![Vec::new(); PROTOCOLS.len()];
    for round in 0..args.rounds {
        let mut order: Vec<usize> = (0..PROTOCOLS.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        let barrier = Arc::new(Barrier::new(args.threads as usize));
        let handles: Vec<_> = (0..args.threads)
            .map(|t| {
                let shared = Arc::clone(&shared);
                let barrier = Arc::clone(&barrier);
                let order = order.clone();
                std::thread::spawn(move || {
                    // Padded so that threads' announcements do not share a line.
                    #[repr(align(128))]
                    struct Padded(AtomicU64);
                    let announce = Padded(AtomicU64::new(0));
                    let mut ns = vec![0u64; PROTOCOLS.len()];
                    for &p in &order {
                        barrier.wait();
                        ns[p] = run(PROTOCOLS[p], &shared, t, &announce.0);
                    }
                    ns
                })
            })
            .collect();
        let mut slowest = vec![0u64; PROTOCOLS.len()];
        for h in handles {
            let ns = h.join().expect("reader thread panicked");
            for (s, n) in slowest.iter_mut().zip(ns) {
                *s = (*s).max(n);
            }
        }
        for (p, ns) in slowest.iter().enumerate() {
            per_round[p].push(*ns as f64 / args.reads as f64);
        }
    }
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); PROTOCOLS.len()];
    for (p, rounds) in per_round.iter().enumerate() {
        for (r, ns) in rounds.iter().enumerate() {
            ratios[p].push(ns / per_round[0][r]);
        }
    }
    println!(
        "{:<16} {:>10} {:>17} {:>8}",
        "protocol", "ns/read", "range", "× none"
    );
    for (p, proto) in PROTOCOLS.iter().enumerate() {
        let mut v = per_round[p].clone();
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(0.0, f64::max);
        let m = median(&mut v);
        let r = median(&mut ratios[p]);
        println!(
            "{:<16} {:>10.2} {:>8.2}–{:<8.2} {:>8.2}",
            proto.name(),
            m,
            lo,
            hi,
            r
        );
    }
}
