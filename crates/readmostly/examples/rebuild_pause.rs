//! The longest pause a write sees because of the dirty-table rebuild, with the rebuild
//! done in one go (Go's way, `rebuild_step(usize::MAX)`) and in bounded steps (the
//! default, 64 entries).
//!
//! ```text
//! cargo run --release -p readmostly --example rebuild_pause                 # 64 Ki and 1 Mi keys
//! cargo run --release -p readmostly --example rebuild_pause -- --keys 4Mi --cycles 3
//! cargo run --release -p readmostly --example rebuild_pause -- --grow 4Mi   # growing map
//! cargo run --release -p readmostly --example rebuild_pause -- --grow 4Mi --threads 16
//! cargo run --release -p readmostly --example rebuild_pause -- --grow 4Mi --then-read
//! ```
//!
//! Each cycle: promote a map of `keys` keys (a third of them deleted, so the rebuild has
//! entries to expunge too), then insert new keys one at a time, timing each insert, until
//! the rebuild the first one started has finished (`Stats::rebuild_pending` is 0). Reports, per setting, the
//! slowest insert, the 99.9th percentile, the mean, and the longest step in entries from
//! `Stats::longest_rebuild_step`. Single-threaded: what is measured is the work one
//! operation does while holding the lock, which every other writer (and, with
//! `RecentKeys::Off`, every reader of a new key) waits for.
//!
//! `--grow N` measures a map that only grows instead: N new keys inserted one at a time
//! into an empty map (default settings), each timed, through every promotion that the
//! full recent table forces and every doubling of its slot array. Reports the slowest
//! inserts with the map's size at the time, the percentiles, and the longest pauses the
//! map's statistics recorded (rebuild step, promotion move, recent-table growth).
//! `--threads T` splits the keys between T threads inserting at once: new keys then come
//! faster than one thread at a time can rebuild, which the promotion has to finish.
//! `--then-read` then reads the newer half of the keys on one thread until the lookups
//! drive a promotion, and reports the slowest read: the rebuild the inserts left under
//! way has nobody else to advance it.

use std::time::Instant;

use readmostly::SyncMap;

mod common;
use common::count;

struct Args {
    keys: Vec<u64>,
    cycles: usize,
    grow: Option<u64>,
    threads: u64,
    then_read: bool,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        keys: vec![1 << 16, 1 << 20],
        cycles: 5,
        grow: None,
        threads: 1,
        then_read: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match flag.as_str() {
            "--keys" => {
                args.keys = value("--keys")?
                    .split(',')
                    .map(count)
                    .collect::<Result<_, _>>()?
            }
            "--cycles" => args.cycles = count(&value("--cycles")?)?.max(1) as usize,
            "--grow" => args.grow = Some(count(&value("--grow")?)?),
            "--threads" => args.threads = count(&value("--threads")?)?,
            "--then-read" => args.then_read = true,
            "-h" | "--help" => {
                return Err(
                    "usage: rebuild_pause [--keys N[,N...]] [--cycles N] | --grow N [--threads T] [--then-read]"
                        .into(),
                )
            }
            other => return Err(format!("unknown argument {other} (try --help)")),
        }
    }
    if args.keys.contains(&0) || args.grow == Some(0) || args.threads == 0 {
        return Err("--keys, --grow and --threads must be positive".into());
    }
    if (args.threads > 1 || args.then_read) && args.grow.is_none() {
        return Err("--threads and --then-read apply to --grow".into());
    }
    Ok(args)
}

struct Outcome {
    worst_ns: u64,
    p999_ns: u64,
    mean_ns: f64,
    inserts: usize,
    longest_step: u64,
}

fn measure(keys: u64, step: usize, cycles: usize) -> Outcome {
    let map: SyncMap<u64, u64> = SyncMap::builder().rebuild_step(step).build();
    for k in 0..keys {
        map.insert(k, k);
    }
    // Let the rebuild the bulk load left half done finish in steps, so that the
    // promotion below does not finish it in one go (`longest_rebuild_step` keeps the
    // maximum over the map's life).
    let mut next = keys;
    while map.stats().rebuild_pending > 0 {
        map.insert(next, next);
        next += 1;
    }
    let mut times = Vec::new();
    for cycle in 0..cycles as u64 {
        // Bring back the third deleted last cycle, delete another third: the next
        // rebuild expunges as well as copies.
        for k in (0..keys).filter(|k| k % 3 == (cycle + 2) % 3) {
            map.insert(k, k);
        }
        for k in (0..keys).filter(|k| k % 3 == cycle % 3) {
            map.remove(&k);
        }
        map.promote();
        // New keys, timed one by one, until the rebuild they start has finished.
        loop {
            let start = Instant::now();
            map.insert(next, next);
            times.push(start.elapsed().as_nanos() as u64);
            next += 1;
            if map.stats().rebuild_pending == 0 {
                break;
            }
        }
    }
    let longest_step = map.stats().longest_rebuild_step;
    let inserts = times.len();
    let mean_ns = times.iter().sum::<u64>() as f64 / inserts as f64;
    times.sort_unstable();
    Outcome {
        worst_ns: *times.last().unwrap_or(&0),
        p999_ns: times[(inserts * 999 / 1000).min(inserts - 1)],
        mean_ns,
        inserts,
        longest_step,
    }
}

/// Inserts `n` new keys one at a time into an empty map, timing each: `threads` threads
/// insert disjoint keys (thread `t` the keys `t`, `t + threads`, ...).
fn grow(n: u64, threads: u64, then_read: bool) {
    let map: SyncMap<u64, u64> = SyncMap::new();
    let start = Instant::now();
    let mut times: Vec<(u64, u64)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let map = &map;
                s.spawn(move || {
                    let mut times = Vec::with_capacity((n / threads) as usize + 1);
                    for k in (t..n).step_by(threads as usize) {
                        let at = Instant::now();
                        map.insert(k, k);
                        // The key counts the map's size at the time (all threads
                        // advance at about the same pace).
                        times.push((at.elapsed().as_nanos() as u64, k));
                    }
                    times
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("inserting thread"))
            .collect()
    });
    let total = start.elapsed();
    let s = map.stats();
    println!(
        "{n} inserts on {threads} thread(s) in {:.2} s ({:.0} ns per insert per thread); {} promotions, {} rebuilds",
        total.as_secs_f64(),
        total.as_nanos() as f64 * threads as f64 / n as f64,
        s.promotions,
        s.dirty_rebuilds
    );
    times.sort_unstable();
    let at = |q: f64| times[((n as f64 * q) as usize).min(times.len() - 1)].0 as f64 / 1e3;
    println!(
        "p99 {:.1} µs, p99.9 {:.1} µs, p99.99 {:.1} µs",
        at(0.99),
        at(0.999),
        at(0.9999)
    );
    println!("slowest inserts (map size at the time):");
    for &(ns, k) in times.iter().rev().take(5) {
        println!("  {:>10.1} µs at {k:>9} keys", ns as f64 / 1e3);
    }
    println!(
        "longest rebuild step {} entries, promotion move {} entries, recent growth {} entries",
        s.longest_rebuild_step, s.longest_promotion_move, s.longest_recent_growth
    );
    if then_read {
        read_after_growth(&map, n);
    }
}

/// After a growth (`--then-read`): one thread reads the newer half of the keys, round
/// after round, timing each lookup, until the lookups have driven a promotion (at most
/// 32 × n reads). The inserts stopped with a rebuild under way (the one the last
/// promotion started), which no writer advances any more: the lookups' promotion must
/// not finish it in one go.
fn read_after_growth(map: &SyncMap<u64, u64>, n: u64) {
    let before = map.stats();
    let mut slowest = (0u64, 0u64);
    let mut reads = 0u64;
    let pinned = map.pin();
    'rounds: loop {
        for k in (n / 2..n).rev() {
            let at = Instant::now();
            let found = pinned.get(&k).copied();
            let ns = at.elapsed().as_nanos() as u64;
            assert_eq!(found, Some(k));
            reads += 1;
            if ns > slowest.0 {
                slowest = (ns, reads);
            }
            if reads % 4096 == 0 && map.stats().promotions > before.promotions {
                break 'rounds;
            }
            if reads >= 32 * n {
                break 'rounds;
            }
        }
    }
    drop(pinned);
    let s = map.stats();
    println!(
        "then {reads} reads: rebuild pending {} entries at the start; {} promotion(s); slowest read {:.1} µs (read {}); longest rebuild step {} entries, promotion move {} entries",
        before.rebuild_pending,
        s.promotions - before.promotions,
        slowest.0 as f64 / 1e3,
        slowest.1,
        s.longest_rebuild_step,
        s.longest_promotion_move
    );
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rebuild_pause: {e}");
            std::process::exit(2);
        }
    };
    if let Some(n) = args.grow {
        grow(n, args.threads, args.then_read);
        return;
    }
    println!(
        "{:>9} {:>12} {:>9} {:>12} {:>12} {:>10} {:>14}",
        "keys", "step", "inserts", "worst", "p99.9", "mean", "longest step"
    );
    for &keys in &args.keys {
        for step in [usize::MAX, SyncMap::<u8, u8>::new().rebuild_step()] {
            let o = measure(keys, step, args.cycles);
            let step = if step == usize::MAX {
                "all (Go)".to_string()
            } else {
                step.to_string()
            };
            println!(
                "{keys:>9} {step:>12} {:>9} {:>9.1} µs {:>9.1} µs {:>7.0} ns {:>8} entries",
                o.inserts,
                o.worst_ns as f64 / 1e3,
                o.p999_ns as f64 / 1e3,
                o.mean_ns,
                o.longest_step
            );
        }
    }
}
