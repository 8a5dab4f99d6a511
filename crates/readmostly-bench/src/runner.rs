//! Runs one cell: one map × one workload × one distribution × one thread count.
//!
//! Order of events, and what is timed:
//! 1. per-thread operation streams are generated (not timed);
//! 2. the map is built and prefilled with `keys` entries, then every key is read once
//!    (single-threaded; live heap bytes are tracked here, for bytes per key);
//! 3. threads start together on a barrier and run a warm-up of a tenth of the operations
//!    (cut short after a quarter of the cell's time limit);
//! 4. a second barrier; each thread then runs its timed stream. Every 32nd operation is
//!    timed with [`Instant`] (the timer's own cost is measured separately and reported).
//!    Allocations are counted per thread (thread-local counter, no shared writes).
//!
//! Throughput = all operations of all threads / (last thread's end − first thread's start).

use std::hint::black_box;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use crate::adapters::{
    self, BenchMap, Handle, HasherKind, MapKind, MapOptions, Value, ValueKind, WithMap,
};
use crate::alloc;
use crate::keys::Rng;
use crate::workloads::{generate, prefill_key, Dist, KeyGen, Op, OpKind, Workload};

/// One operation in this many is timed.
pub const SAMPLE_EVERY: usize = 32;

/// How a cell ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    /// Each thread runs this many operations (the anchors' method); a cell that would take
    /// longer than `max_time` is cut short and flagged `truncated`.
    Ops {
        /// Operations per thread.
        per_thread: u64,
        /// Safety cap on the timed region.
        max_time: Duration,
    },
    /// Each thread replays its stream (of `stream_len` operations) until `time` has passed.
    Duration {
        /// Length of the timed region.
        time: Duration,
        /// Operations pre-generated per thread.
        stream_len: u64,
    },
}

/// Everything that defines one cell.
#[derive(Debug, Clone)]
pub struct CellSpec {
    /// The map.
    pub map: MapKind,
    /// The workload.
    pub workload: Workload,
    /// Key distribution.
    pub dist: Dist,
    /// Worker threads.
    pub threads: usize,
    /// Prefilled keys.
    pub keys: u64,
    /// Value type.
    pub value: ValueKind,
    /// Payload bytes of heap values.
    pub value_size: usize,
    /// Hash builder.
    pub hasher: HasherKind,
    /// Settings of readmostly's maps.
    pub options: MapOptions,
    /// When to stop.
    pub stop: Stop,
    /// Seed of the operation streams.
    pub seed: u64,
}

/// What one cell measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// Operations completed by all threads in the timed region.
    pub ops: u64,
    /// Length of the timed region, seconds.
    pub secs: f64,
    /// Million operations per second, all threads together.
    pub mops: f64,
    /// Latency percentiles of sampled operations, ns (include the timer's own cost).
    pub p50_ns: u64,
    /// 99th percentile, ns.
    pub p99_ns: u64,
    /// 99.9th percentile, ns.
    pub p999_ns: u64,
    /// Largest sample, ns.
    pub max_ns: u64,
    /// Number of latency samples.
    pub samples: usize,
    /// Heap allocations per operation in the timed region (None without the counting allocator).
    pub allocs_per_op: Option<f64>,
    /// Live heap bytes per prefilled key after prefill and one read of every key.
    pub bytes_per_key: Option<f64>,
    /// Share of `get` operations that found their key.
    pub hit_rate: Option<f64>,
    /// Whether the cell hit its time cap before finishing its operations.
    pub truncated: bool,
    /// Map statistics after the run (SyncMap only).
    pub map_stats: Option<String>,
}

/// The result of one cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Measured.
    Done(Measurement),
    /// Not run, with the reason (e.g. a read-only map given a write workload).
    Skipped(String),
}

/// Runs one cell.
pub fn run_cell(spec: &CellSpec) -> Outcome {
    adapters::dispatch(spec.map, spec.value, spec.hasher, CellRunner { spec })
}

struct CellRunner<'a> {
    spec: &'a CellSpec,
}

impl WithMap for CellRunner<'_> {
    type Output = Outcome;

    fn run<M: BenchMap>(self, kind: MapKind, hasher: M::Hasher) -> Outcome {
        let spec = self.spec;
        if M::READ_ONLY && spec.workload.writes() {
            return Outcome::Skipped(format!(
                "{} is read-only and {} writes",
                kind.name(),
                spec.workload.name
            ));
        }
        let (timed_len, cycle, limit) = match spec.stop {
            Stop::Ops {
                per_thread,
                max_time,
            } => (per_thread.max(1), false, max_time),
            Stop::Duration { time, stream_len } => (stream_len.max(1), true, time),
        };
        let warm = timed_len / 10;
        let streams = generate_streams(spec, (warm + timed_len) as usize);

        // Build and prefill with live-byte tracking on (single-threaded).
        let track = alloc::installed();
        if track {
            // readmostly frees large blocks on a background thread: let the previous
            // map's finish before counting, and this one's retired tables below.
            readmostly::wait_for_background_free();
            alloc::track_live_bytes(true);
        }
        let live0 = alloc::live_bytes();
        let mut map = M::build_with(hasher, spec.options);
        let size = spec.value_size;
        map.prefill((0..spec.keys).map(|i| {
            let k = prefill_key(i);
            (k, <M::Value as Value>::make(k, size))
        }));
        {
            let mut h = map.handle();
            for i in 0..spec.keys {
                black_box(h.get(prefill_key(i)));
            }
        }
        if track {
            readmostly::wait_for_background_free();
        }
        let live1 = alloc::live_bytes();
        if track {
            alloc::track_live_bytes(false);
        }

        let ctl = Control {
            cycle,
            limit,
            value_size: size,
            sample_cap: sample_cap(timed_len, cycle),
        };
        let barrier = Barrier::new(spec.threads);
        let results: Vec<thread::Result<ThreadResult>> = thread::scope(|s| {
            let workers: Vec<_> = streams
                .iter()
                .enumerate()
                .map(|(t, ops)| {
                    let (map, barrier, ctl) = (&map, &barrier, &ctl);
                    s.spawn(move || worker(map, ops, warm as usize, ctl, barrier, t as u64))
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().and_then(|r| r))
                .collect()
        });
        let mut done = Vec::with_capacity(results.len());
        for r in results {
            match r {
                Ok(r) => done.push(r),
                Err(e) => {
                    let msg = e
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "unknown panic".into());
                    return Outcome::Skipped(format!("{} panicked: {msg}", kind.name()));
                }
            }
        }
        let map_stats = map.stats();
        let no_map = kind == MapKind::Noop;
        let bytes_per_key =
            (track && spec.keys > 0).then(|| (live1 - live0) as f64 / spec.keys as f64);
        let mut m = summarise(done, track, bytes_per_key, map_stats);
        if no_map {
            m.hit_rate = None; // the no-op map answers arbitrarily
        }
        Outcome::Done(m)
    }
}

/// Generates the streams on up to as many threads as there are CPUs.
fn generate_streams(spec: &CellSpec, len: usize) -> Vec<Vec<Op>> {
    let gen = KeyGen::new(&spec.workload, spec.keys, spec.dist);
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    let mut streams: Vec<Vec<Op>> = vec![Vec::new(); spec.threads];
    thread::scope(|s| {
        let chunk = spec.threads.div_ceil(cpus).max(1);
        for (c, slots) in streams.chunks_mut(chunk).enumerate() {
            let gen = &gen;
            s.spawn(move || {
                for (i, slot) in slots.iter_mut().enumerate() {
                    *slot = generate(&spec.workload, gen, c * chunk + i, len, spec.seed);
                }
            });
        }
    });
    streams
}

fn sample_cap(timed_len: u64, cycle: bool) -> usize {
    let per_pass = (timed_len as usize).div_ceil(SAMPLE_EVERY) + 1;
    if cycle {
        per_pass.max(1 << 17)
    } else {
        per_pass
    }
}

struct Control {
    cycle: bool,
    limit: Duration,
    value_size: usize,
    sample_cap: usize,
}

struct ThreadResult {
    start: Instant,
    end: Instant,
    ops: u64,
    gets: u64,
    hits: u64,
    allocs: u64,
    samples: Vec<u32>,
    truncated: bool,
}

fn worker<M: BenchMap>(
    map: &M,
    ops: &[Op],
    warm: usize,
    ctl: &Control,
    barrier: &Barrier,
    thread: u64,
) -> thread::Result<ThreadResult> {
    let mut h = map.handle();
    barrier.wait();
    // Panics are caught so that every thread still reaches the second barrier.
    let warmed = catch_unwind(AssertUnwindSafe(|| {
        // Capped at a quarter of the cell's time limit (copy-on-write maps are slow to warm).
        let deadline = Instant::now() + ctl.limit / 4;
        for chunk in ops[..warm].chunks(SAMPLE_EVERY) {
            for op in chunk {
                black_box(exec::<M::Value, _>(&mut h, op, 0, ctl.value_size));
            }
            if Instant::now() >= deadline {
                break;
            }
        }
    }));
    barrier.wait();
    warmed?;
    catch_unwind(AssertUnwindSafe(|| {
        timed::<M::Value, _>(&mut h, &ops[warm..], ctl, thread)
    }))
}

/// Salt XOR-ed into fresh keys on each replay of a stream, so replays still store new keys.
const LAP_SALT: u64 = 0x9e37_79b9_7f4a_7c15;

#[inline(always)]
fn exec<V: Value, H: Handle<V>>(h: &mut H, op: &Op, salt: u64, size: usize) -> bool {
    let key = if op.fresh { op.key ^ salt } else { op.key };
    match op.kind {
        OpKind::Get => h.get(key),
        OpKind::Overwrite | OpKind::Insert => {
            h.insert(key, V::make(key, size));
            false
        }
        OpKind::Remove => h.remove(key),
        OpKind::GetOrInsert => h.get_or_insert_with(key, || V::make(key, size)),
        OpKind::ReadOrFill => h.read_or_fill(key, || V::make(key, size)),
        OpKind::Iterate => black_box(h.iterate()) > 0,
    }
}

/// Runs `ops` (at most [`SAMPLE_EVERY`]) with each run of consecutive lookups handed to
/// [`Handle::get_many`] in one call; returns (lookups, lookups that found their key).
#[inline(always)]
fn exec_batched<V: Value, H: Handle<V>>(
    h: &mut H,
    ops: &[Op],
    salt: u64,
    size: usize,
) -> (u64, u64) {
    let mut keys = [0u64; SAMPLE_EVERY];
    let (mut n, mut gets, mut hits) = (0, 0, 0);
    for op in ops {
        if op.kind == OpKind::Get {
            keys[n] = if op.fresh { op.key ^ salt } else { op.key };
            n += 1;
            continue;
        }
        if n > 0 {
            gets += n as u64;
            hits += h.get_many(&keys[..n]);
            n = 0;
        }
        exec::<V, H>(h, op, salt, size);
    }
    if n > 0 {
        gets += n as u64;
        hits += h.get_many(&keys[..n]);
    }
    (gets, hits)
}

fn timed<V: Value, H: Handle<V>>(
    h: &mut H,
    ops: &[Op],
    ctl: &Control,
    thread: u64,
) -> ThreadResult {
    // Allocated before the allocation count and the clock start.
    let mut samples: Vec<u32> = Vec::with_capacity(ctl.sample_cap);
    let mut rng = Rng::new(thread);
    let mut seen = 0u64;
    let (mut done, mut gets, mut hits) = (0u64, 0u64, 0u64);
    let mut truncated = false;
    let allocs0 = alloc::thread_allocs();
    let start = Instant::now();
    let deadline = start + ctl.limit;
    let mut lap = 0u64;
    'run: loop {
        let salt = lap.wrapping_mul(LAP_SALT);
        for chunk in ops.chunks(SAMPLE_EVERY) {
            let (first, rest) = chunk.split_first().expect("chunks are never empty");
            let t0 = Instant::now();
            let hit = exec::<V, H>(h, first, salt, ctl.value_size);
            let t1 = Instant::now();
            gets += (first.kind == OpKind::Get) as u64;
            hits += (hit && first.kind == OpKind::Get) as u64;
            let ns = u32::try_from(t1.duration_since(t0).as_nanos()).unwrap_or(u32::MAX);
            // Keep every sample while there is room; then reservoir-sample (duration mode).
            if samples.len() < ctl.sample_cap {
                samples.push(ns);
            } else {
                let j = rng.below(seen + 1) as usize;
                if j < samples.len() {
                    samples[j] = ns;
                }
            }
            seen += 1;
            if H::BATCHED_GETS {
                let (g, found) = exec_batched::<V, H>(h, rest, salt, ctl.value_size);
                gets += g;
                hits += found;
            } else {
                for op in rest {
                    let hit = exec::<V, H>(h, op, salt, ctl.value_size);
                    gets += (op.kind == OpKind::Get) as u64;
                    hits += (hit && op.kind == OpKind::Get) as u64;
                }
            }
            done += chunk.len() as u64;
            if t1 >= deadline {
                truncated = !ctl.cycle;
                break 'run;
            }
        }
        if !ctl.cycle {
            break;
        }
        lap += 1;
    }
    let end = Instant::now();
    let allocs = alloc::thread_allocs() - allocs0;
    ThreadResult {
        start,
        end,
        ops: done,
        gets,
        hits,
        allocs,
        samples,
        truncated,
    }
}

fn summarise(
    results: Vec<ThreadResult>,
    count_allocs: bool,
    bytes_per_key: Option<f64>,
    map_stats: Option<String>,
) -> Measurement {
    let start = results
        .iter()
        .map(|r| r.start)
        .min()
        .expect("at least one thread");
    let end = results
        .iter()
        .map(|r| r.end)
        .max()
        .expect("at least one thread");
    let secs = end.duration_since(start).as_secs_f64().max(1e-9);
    let ops: u64 = results.iter().map(|r| r.ops).sum();
    let gets: u64 = results.iter().map(|r| r.gets).sum();
    let hits: u64 = results.iter().map(|r| r.hits).sum();
    let allocs: u64 = results.iter().map(|r| r.allocs).sum();
    let truncated = results.iter().any(|r| r.truncated);
    let mut samples: Vec<u32> = results.into_iter().flat_map(|r| r.samples).collect();
    samples.sort_unstable();
    Measurement {
        ops,
        secs,
        mops: ops as f64 / secs / 1e6,
        p50_ns: percentile(&samples, 0.50),
        p99_ns: percentile(&samples, 0.99),
        p999_ns: percentile(&samples, 0.999),
        max_ns: samples.last().copied().unwrap_or(0) as u64,
        samples: samples.len(),
        allocs_per_op: (count_allocs && ops > 0).then(|| allocs as f64 / ops as f64),
        bytes_per_key,
        hit_rate: (gets > 0).then(|| hits as f64 / gets as f64),
        truncated,
        map_stats,
    }
}

/// The `q`-quantile (nearest rank) of sorted samples.
pub fn percentile(sorted: &[u32], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as u64
}

/// The cost of the latency timer itself: two back-to-back [`Instant::now`] calls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimerCost {
    /// Median, ns.
    pub p50_ns: u64,
    /// 99th percentile, ns.
    pub p99_ns: u64,
}

/// Measures [`TimerCost`] over `n` pairs.
pub fn timer_cost(n: usize) -> TimerCost {
    let mut v: Vec<u32> = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        let t1 = Instant::now();
        v.push(u32::try_from(t1.duration_since(t0).as_nanos()).unwrap_or(u32::MAX));
    }
    v.sort_unstable();
    TimerCost {
        p50_ns: percentile(&v, 0.5),
        p99_ns: percentile(&v, 0.99),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(map: MapKind, workload: &str, threads: usize) -> CellSpec {
        CellSpec {
            map,
            workload: Workload::by_name(workload).unwrap(),
            dist: Dist::Uniform,
            threads,
            keys: 1024,
            value: ValueKind::U64,
            value_size: 16,
            hasher: HasherKind::Foldhash,
            options: MapOptions::default(),
            stop: Stop::Ops {
                per_thread: 4000,
                max_time: Duration::from_secs(5),
            },
            seed: 1,
        }
    }

    #[test]
    fn percentile_nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 50);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&v, 0.999), 100);
        assert_eq!(percentile(&[], 0.5), 0);
    }

    #[test]
    fn cell_counts_every_op_and_samples_every_32nd() {
        let Outcome::Done(m) = run_cell(&spec(MapKind::RwLockStd, "read99", 2)) else {
            panic!("skipped")
        };
        assert_eq!(m.ops, 8000);
        assert_eq!(m.samples, 2 * 4000usize.div_ceil(SAMPLE_EVERY));
        assert!(m.mops > 0.0 && !m.truncated);
        assert!(m.hit_rate.unwrap() > 0.99);
        assert!(m.p50_ns <= m.p99_ns && m.p99_ns <= m.p999_ns && m.p999_ns <= m.max_ns);
    }

    #[test]
    fn mostly_miss_misses_about_ninety_percent() {
        let Outcome::Done(m) = run_cell(&spec(MapKind::DashMap, "mostly-miss", 1)) else {
            panic!("skipped")
        };
        let h = m.hit_rate.unwrap();
        assert!((0.05..0.15).contains(&h), "hit rate {h}");
    }

    #[test]
    fn frozen_skips_write_workloads() {
        assert!(matches!(
            run_cell(&spec(MapKind::FrozenStd, "read99", 1)),
            Outcome::Skipped(_)
        ));
        assert!(matches!(
            run_cell(&spec(MapKind::FrozenStd, "read100", 1)),
            Outcome::Done(_)
        ));
    }

    #[test]
    fn duration_mode_replays_streams() {
        let mut s = spec(MapKind::SccHashMap, "ttl-cache", 1);
        s.stop = Stop::Duration {
            time: Duration::from_millis(60),
            stream_len: 2000,
        };
        let Outcome::Done(m) = run_cell(&s) else {
            panic!("skipped")
        };
        assert!(m.ops > 2000, "replayed: {}", m.ops);
        assert!(m.secs >= 0.05);
        assert!(!m.truncated);
    }

    #[test]
    fn ops_mode_respects_max_time() {
        let mut s = spec(MapKind::ArcSwapCow, "write50", 1);
        s.keys = 50_000;
        s.stop = Stop::Ops {
            per_thread: 1_000_000,
            max_time: Duration::from_millis(50),
        };
        let Outcome::Done(m) = run_cell(&s) else {
            panic!("skipped")
        };
        assert!(m.truncated && m.ops < 1_000_000);
    }

    #[test]
    fn every_map_runs_every_workload() {
        for map in MapKind::ALL {
            for w in Workload::names() {
                let mut s = spec(map, w, 2);
                s.keys = 256;
                s.stop = Stop::Ops {
                    per_thread: 640,
                    max_time: Duration::from_secs(5),
                };
                match run_cell(&s) {
                    Outcome::Done(m) => assert_eq!(m.ops, 1280, "{} {w}", map.name()),
                    Outcome::Skipped(why) => {
                        assert_eq!(map, MapKind::FrozenStd, "{why}");
                    }
                }
            }
        }
    }
}
