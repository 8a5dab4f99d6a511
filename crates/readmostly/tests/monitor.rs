//! The seed's observability cases (§4.1, §4.3), replayed with a manual clock:
//! a steady workload stays OK, a hot-key miss burst goes CRIT, a high write ratio raises
//! the threshold, the dirty-table growth guard fires on size and on rate, and the
//! monitors read real maps.

use std::cell::Cell;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use readmostly::monitor::{
    BaseRate, GrowthConfig, GrowthGuard, Level, ManualClock, MissVelocityConfig,
    MissVelocityMonitor,
};
use readmostly::{Promotion, ShardedMap, Stats, SyncMap};

const STEP: Duration = Duration::from_secs(5);

/// Synthetic counters: a workload of `reads`/`writes`/`misses` per second.
#[derive(Default)]
struct Workload {
    stats: Stats,
}

impl Workload {
    /// Runs for `secs` seconds at the given rates (writes split between overwrites and
    /// new keys, so `Stats::writes` sees them).
    fn run(&mut self, secs: u64, reads: u64, writes: u64, misses: u64) {
        self.stats.hits += secs * reads;
        self.stats.overwrites += secs * writes / 2;
        self.stats.new_keys += secs * (writes - writes / 2);
        self.stats.misses += secs * misses;
    }
}

/// A deterministic wobble in `-spread..=spread`.
fn noise(i: u64, spread: u64) -> i64 {
    let x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
    (x % (2 * spread + 1)) as i64 - spread as i64
}

type Changes = Arc<Mutex<Vec<(Level, Level)>>>;

fn recording(config: MissVelocityConfig, clock: &ManualClock) -> (MissVelocityMonitor, Changes) {
    let changes: Changes = Arc::default();
    let sink = changes.clone();
    let monitor = MissVelocityMonitor::with_clock(config, clock.clone())
        .on_change(move |c| sink.lock().unwrap().push((c.from, c.to)));
    (monitor, changes)
}

/// Steady state: misses wobble around 80/s for ten minutes with 5 % writes. The base
/// rate is learned (P95 of the velocities seen) and the level never leaves OK.
#[test]
fn steady_workload_stays_ok() {
    let clock = ManualClock::new();
    let (monitor, changes) = recording(MissVelocityConfig::default(), &clock);
    let mut w = Workload::default();
    monitor.sample(&w.stats);
    let mut learned = Vec::new();
    for i in 0..120 {
        let misses = (80 + noise(i, 20)) as u64;
        w.run(5, 10_000, 500, misses);
        clock.advance(STEP);
        let r = monitor.sample(&w.stats).expect("a step elapsed");
        assert_eq!(r.level, Level::Ok, "sample {i}: {r:?}");
        assert!((r.write_ratio - 500.0 / 10_500.0).abs() < 1e-9);
        assert_eq!(
            r.learning,
            i < 12,
            "the first 12 samples (one minute) only learn"
        );
        if !r.learning {
            learned.push(r.base_rate);
        }
    }
    // P95 of velocities in 60..=100 (10 s windows average two 5 s steps).
    let base = *learned.last().unwrap();
    assert!((85.0..=100.0).contains(&base), "learned base rate {base}");
    assert_eq!(monitor.level(), Level::Ok);
    assert!(changes.lock().unwrap().is_empty());
}

/// A hot-key miss burst after a learned steady state: the first sample whose window
/// overlaps the burst goes CRIT, the callback sees it once, and the level drops back to
/// OK once the burst has left the window; the burst did not teach the baseline.
#[test]
fn hot_key_miss_burst_goes_crit() {
    let clock = ManualClock::new();
    let (monitor, changes) = recording(MissVelocityConfig::default(), &clock);
    let mut w = Workload::default();
    monitor.sample(&w.stats);
    for i in 0..60 {
        w.run(5, 10_000, 200, (50 + noise(i, 10)) as u64);
        clock.advance(STEP);
        monitor.sample(&w.stats);
    }
    // Burst: 5,000 misses/s on one hot key for 15 s.
    let mut levels = Vec::new();
    let mut base = None;
    for _ in 0..3 {
        w.run(5, 10_000, 200, 5_000);
        clock.advance(STEP);
        let r = monitor.sample(&w.stats).unwrap();
        let base = *base.get_or_insert(r.base_rate);
        assert!((50.0..=60.0).contains(&base), "learned base {base}");
        assert_eq!(
            r.base_rate, base,
            "storm samples must not teach the baseline"
        );
        let threshold = base * (1.0 + 0.3 * r.write_ratio) + 120.0;
        assert!((r.threshold - threshold).abs() < 1e-9, "{r:?}");
        assert!(r.velocity >= 1.5 * r.threshold, "{r:?}");
        levels.push(r.level);
    }
    assert_eq!(levels, [Level::Crit; 3]);
    assert_eq!(monitor.level(), Level::Crit);
    // Back to steady: once the window no longer holds burst samples, OK again.
    w.run(5, 10_000, 200, 50);
    clock.advance(STEP);
    assert_eq!(
        monitor.sample(&w.stats).unwrap().level,
        Level::Crit,
        "burst still in window"
    );
    w.run(5, 10_000, 200, 50);
    clock.advance(STEP);
    let r = monitor.sample(&w.stats).unwrap();
    assert_eq!(r.level, Level::Ok, "{r:?}");
    assert_eq!(
        Some(r.base_rate),
        base,
        "storm samples must not raise the baseline"
    );
    assert_eq!(
        *changes.lock().unwrap(),
        [(Level::Ok, Level::Crit), (Level::Crit, Level::Ok)]
    );
}

/// WARN between the threshold and 1.5× it; a high write ratio raises the threshold so
/// the same miss velocity is OK; a fixed base rate alerts from the first sample.
#[test]
fn high_write_ratio_raises_the_threshold() {
    let config = MissVelocityConfig::default().fixed_base_rate(100.0);
    let velocity_at = |writes_per_sec: u64, reads_per_sec: u64| {
        let clock = ManualClock::new();
        let monitor = MissVelocityMonitor::with_clock(config, clock.clone());
        let mut w = Workload::default();
        monitor.sample(&w.stats);
        w.run(10, reads_per_sec, writes_per_sec, 240);
        clock.advance(Duration::from_secs(10));
        monitor.sample(&w.stats).unwrap()
    };
    // Read-only: threshold 100 × 1 + 120 = 220; 240 misses/s is WARN (< 330).
    let r = velocity_at(0, 1_000);
    assert_eq!(
        (r.write_ratio, r.threshold, r.level),
        (0.0, 220.0, Level::Warn)
    );
    // All writes: threshold 100 × 1.3 + 120 = 250; the same 240 misses/s is OK.
    let r = velocity_at(1_000, 0);
    assert_eq!(
        (r.write_ratio, r.threshold, r.level),
        (1.0, 250.0, Level::Ok)
    );
    // Half writes: threshold 235; WARN.
    let r = velocity_at(500, 500);
    assert_eq!(
        (r.write_ratio, r.threshold, r.level),
        (0.5, 235.0, Level::Warn)
    );
}

/// Windows, step and coefficients are configurable; `tick` samples only when a step has
/// elapsed and does not read the source otherwise.
#[test]
fn configurable_window_and_step() {
    let mut config = MissVelocityConfig::default().fixed_base_rate(0.0);
    config.window = Duration::from_secs(30);
    config.step = Duration::from_secs(10);
    config.offset = 10.0;
    config.crit_factor = 3.0;
    let clock = ManualClock::new();
    let monitor = MissVelocityMonitor::with_clock(config, clock.clone());
    let stats = Cell::new(Stats::default());
    let reads = Cell::new(0);
    let source = || {
        reads.set(reads.get() + 1);
        stats.get()
    };
    assert!(monitor.tick(&source).is_none(), "first sample: origin only");
    assert_eq!(reads.get(), 1);
    clock.advance(Duration::from_secs(9));
    assert!(monitor.tick(&source).is_none(), "step not elapsed");
    assert_eq!(reads.get(), 1, "stats not read before the step");
    clock.advance(Duration::from_secs(1));
    let mut s = stats.get();
    s.misses = 200; // 20/s over 10 s: ≥ 10 (WARN), < 30 (CRIT)
    stats.set(s);
    let r = monitor.tick(&source).unwrap();
    assert_eq!((r.velocity, r.level), (20.0, Level::Warn));
    // Over a 30 s window: samples at 0, 10, 20, 30, 40 → the rate spans 30 s.
    for _ in 0..3 {
        clock.advance(Duration::from_secs(10));
        monitor.tick(&source).unwrap();
    }
    s.misses += 3_000;
    stats.set(s);
    clock.advance(Duration::from_secs(10));
    let r = monitor.tick(&source).unwrap();
    assert_eq!(r.velocity, 100.0, "3,000 misses over the 30 s window");
    assert_eq!(r.level, Level::Crit);
}

/// During the learning phase nothing alerts, however high the velocity.
#[test]
fn learning_phase_never_alerts() {
    let mut config = MissVelocityConfig::default();
    config.base_rate = BaseRate::Learn {
        warmup: 4,
        history: 10,
    };
    let clock = ManualClock::new();
    let monitor = MissVelocityMonitor::with_clock(config, clock.clone());
    let mut w = Workload::default();
    monitor.sample(&w.stats);
    for i in 0..4 {
        w.run(5, 100, 0, 10_000);
        clock.advance(STEP);
        let r = monitor.sample(&w.stats).unwrap();
        assert!(r.learning && r.level == Level::Ok, "sample {i}: {r:?}");
    }
    // Learned 10,000/s as normal: still OK afterwards at that rate.
    w.run(5, 100, 0, 10_000);
    clock.advance(STEP);
    let r = monitor.sample(&w.stats).unwrap();
    assert!(!r.learning);
    assert_eq!((r.base_rate, r.level), (10_000.0, Level::Ok));
}

/// Driven by a real map: lookups of keys that only the dirty table holds are misses (the
/// promotion rule here never fires, as when a hot key is re-stored constantly). A
/// cache-aside storm on one key goes CRIT through `tick(&map)`.
#[test]
fn real_map_hot_key_storm_goes_crit() {
    let map: SyncMap<String, u64> = SyncMap::builder()
        .promotion(Promotion::AfterMisses(
            NonZeroUsize::new(usize::MAX).unwrap(),
        ))
        .build();
    for k in 0..100 {
        map.insert(format!("stable-{k}"), k);
    }
    let clock = ManualClock::new();
    let monitor = MissVelocityMonitor::with_clock(
        MissVelocityConfig::default().fixed_base_rate(50.0),
        clock.clone(),
    );
    assert!(monitor.tick(&map).is_none());
    // Steady: 5 s of 20 misses/s.
    for _ in 0..100 {
        map.get_cloned("stable-1");
    }
    clock.advance(STEP);
    let r = monitor.tick(&map).unwrap();
    assert_eq!(r.level, Level::Ok, "{r:?}");
    // Storm: 5,000 lookups of the hot key in 5 s.
    map.insert("hot".to_string(), 1);
    for _ in 0..5_000 {
        assert_eq!(map.get_cloned("hot"), Some(1));
    }
    clock.advance(STEP);
    let r = monitor.tick(&map).unwrap();
    assert!(r.velocity >= 500.0, "{r:?}");
    assert_eq!(r.level, Level::Crit, "{r:?}");
    assert_eq!(monitor.level(), Level::Crit);
}

/// The seed's growth guard: WARN when the dirty table grows faster than 2,000 entries
/// per minute (once a full minute is observed), CRIT above 50,000 entries.
#[test]
fn growth_guard_rate_and_size() {
    let clock = ManualClock::new();
    let changes: Arc<Mutex<Vec<(Level, Level)>>> = Arc::default();
    let sink = changes.clone();
    let guard = GrowthGuard::with_clock(GrowthConfig::default(), clock.clone())
        .on_change(move |c| sink.lock().unwrap().push((c.from, c.to)));
    let mut stats = Stats::default();
    let sample = |size: usize, stats: &mut Stats| {
        stats.dirty_len = Some(size);
        stats.len = size;
        let r = guard.sample(stats).unwrap();
        clock.advance(STEP);
        r
    };
    // 1,500 entries per minute for two minutes: OK.
    for i in 0..24 {
        let r = sample(40_000 + i * 125, &mut stats);
        assert_eq!(r.level, Level::Ok, "{r:?}");
        if i < 12 {
            assert_eq!(r.growth_per_minute, None, "no full minute yet");
        } else {
            assert!((r.growth_per_minute.unwrap() - 1_500.0).abs() < 1e-6);
        }
    }
    // 3,000 per minute: WARN once the minute's growth exceeds 2,000.
    let mut size = 40_000 + 23 * 125;
    let mut first_warn = None;
    for i in 0..12 {
        size += 250;
        let r = sample(size, &mut stats);
        if r.level == Level::Warn && first_warn.is_none() {
            first_warn = Some(i);
        }
    }
    assert!(first_warn.is_some_and(|i| i < 12), "{first_warn:?}");
    // Past 50,000 entries: CRIT regardless of rate.
    let r = sample(50_001, &mut stats);
    assert!(r.size_exceeded);
    assert_eq!(r.level, Level::Crit);
    // Shrinks (a cleanup): back to OK once the minute's growth is small.
    for _ in 0..13 {
        sample(10_000, &mut stats);
    }
    assert_eq!(guard.level(), Level::Ok);
    assert_eq!(
        *changes.lock().unwrap(),
        [
            (Level::Ok, Level::Warn),
            (Level::Warn, Level::Crit),
            (Level::Crit, Level::Ok)
        ]
    );
}

/// The growth guard on a real, leaking `ShardedMap` (keys inserted and never removed),
/// with a capacity limit that turns the leak into errors.
#[test]
fn growth_guard_on_leaking_sharded_map() {
    let map: ShardedMap<u64, u64> = ShardedMap::builder().shards(8).max_len(3_000).build();
    let clock = ManualClock::new();
    let mut config = GrowthConfig::default();
    config.max_size = 2_700;
    let guard = GrowthGuard::with_clock(config, clock.clone());
    let mut next = 0u64;
    let mut refused = 0;
    let mut levels = Vec::new();
    for _ in 0..20 {
        // 200 new keys per 5 s: 2,400 per minute.
        for _ in 0..200 {
            if map.try_insert(next, next).is_err() {
                refused += 1;
            }
            next += 1;
        }
        levels.push(guard.tick(&map).unwrap().level);
        clock.advance(STEP);
    }
    assert_eq!(
        levels[..12],
        [Level::Ok; 12],
        "no full minute yet, under the size"
    );
    assert_eq!(levels[12], Level::Warn, "2,400 per minute > 2,000");
    assert_eq!(levels[13], Level::Crit, "past 2,700 entries");
    assert_eq!(*levels.last().unwrap(), Level::Crit);
    assert_eq!(map.len(), 3_000);
    assert_eq!(refused, 4_000 - 3_000);
}

/// The guard watches each shard's dirty table (deleted entries included) and sums over
/// the shards: a shard whose dirty table is full of deleted entries counts even when
/// another shard, with no dirty table, holds more keys.
#[test]
fn growth_guard_counts_every_shards_dirty_table() {
    const N: u64 = 3_000;
    const M: u64 = 4_000;
    // Keys below 1 << 32 are tenant 0's, the others tenant 1's: one shard each.
    let map: ShardedMap<u64, u64, _, _> = ShardedMap::builder()
        .shards(2)
        .rebuild_step(usize::MAX)
        .route_by_tenant(|k: &u64| k >> 32)
        .build();
    assert_ne!(map.shard_of(&0), map.shard_of(&(1 << 32)));
    // Tenant 1: M keys; tenant 0: N keys; both promoted (no dirty tables). Then a new
    // key of tenant 0, whose rebuild copies all N into its shard's dirty table, and the
    // N keys removed: deleted entries in that dirty table.
    for k in 0..M {
        map.insert((1 << 32) + k, k);
    }
    for k in 0..N {
        map.insert(k, k);
    }
    map.promote();
    map.insert(N, N);
    for k in 0..N {
        map.remove(&k);
    }
    let shards = map.shard_stats();
    let (a, b) = (&shards[map.shard_of(&0)], &shards[map.shard_of(&(1 << 32))]);
    assert_eq!((a.len, a.dirty_len), (1, Some(N as usize + 1)));
    assert_eq!((b.len, b.dirty_len), (M as usize, None));
    let s = map.stats();
    assert_eq!(s.dirty_size, (N + 1 + M) as usize);
    let mut config = GrowthConfig::default();
    config.max_size = 6_000; // above M + 1, below N + 1 + M
    let guard = GrowthGuard::with_clock(config, ManualClock::new());
    let r = guard.tick(&map).unwrap();
    assert_eq!(r.size, (N + 1 + M) as usize);
    assert!(r.size_exceeded);
    assert_eq!(r.level, Level::Crit);
}

/// The manual clock only moves forward: an advance past the largest time it can show
/// stops there instead of wrapping around to an earlier time (which would stop the
/// monitors sampling: a sample is due only once time has passed the last one).
#[test]
fn manual_clock_advance_saturates() {
    use readmostly::monitor::Clock;
    let clock = ManualClock::new();
    clock.advance(Duration::from_secs(5));
    clock.advance(Duration::MAX);
    let top = clock.now();
    assert!(top >= Duration::from_secs(5), "went back to {top:?}");
    assert_eq!(top, Duration::from_nanos(u64::MAX));
    clock.advance(Duration::from_secs(1));
    assert_eq!(clock.now(), top, "stays at the top");
}

/// A caller ticking every step with some jitter samples on every tick: a tick up to a
/// twentieth of a step early still counts, one earlier than that does not.
#[test]
fn jittery_ticks_sample_every_step() {
    let clock = ManualClock::new();
    let monitor = MissVelocityMonitor::with_clock(MissVelocityConfig::default(), clock.clone());
    let mut stats = Stats::default();
    assert!(monitor.sample(&stats).is_none(), "origin");
    for i in 0..10 {
        // 4.8 s and 5.2 s alternately: every tick is a sample.
        clock.advance(Duration::from_millis(if i % 2 == 0 {
            4_800
        } else {
            5_200
        }));
        stats.misses += 400;
        assert!(monitor.sample(&stats).is_some(), "tick {i} skipped");
    }
    clock.advance(Duration::from_millis(4_700)); // more than a twentieth early
    assert!(monitor.sample(&stats).is_none());
    clock.advance(Duration::from_millis(100));
    let r = monitor.sample(&stats).expect("4.8 s after the last sample");
    // 400 misses per tick, then none: the rate uses the actual times.
    assert!(r.velocity > 0.0, "{r:?}");
}

#[test]
fn early_ticks_keep_the_window_at_ten_seconds() {
    // Ticks every 4.9 s (a twentieth early is accepted): rates must still span the
    // 10-second window, not reach a step further back. 100 misses/s, then one step of
    // 1 000/s: over a 9.8 s window the storm reads (490 + 4 900) / 9.8 = 550 misses/s;
    // anchored a step further back it would read 400.
    let clock = ManualClock::new();
    let monitor = MissVelocityMonitor::with_clock(MissVelocityConfig::default(), clock.clone());
    let mut stats = Stats::default();
    assert!(monitor.sample(&stats).is_none(), "origin");
    let tick = Duration::from_millis(4_900);
    let mut last = None;
    for i in 0..20 {
        clock.advance(tick);
        stats.misses += if i == 19 { 4_900 } else { 490 };
        last = monitor.sample(&stats);
        let r = last.expect("every early tick samples");
        if i < 19 {
            assert!((r.velocity - 100.0).abs() < 1e-6, "tick {i}: {r:?}");
        }
    }
    let storm = last.unwrap().velocity;
    assert!((storm - 550.0).abs() < 1e-6, "storm velocity {storm}");
}

#[test]
#[should_panic(expected = "invalid MissVelocityConfig: the fixed base rate must be finite")]
fn a_nan_base_rate_is_refused() {
    // A NaN threshold would compare false with every velocity: never an alert.
    let _ = MissVelocityMonitor::new(MissVelocityConfig::default().fixed_base_rate(f64::NAN));
}

#[test]
fn configurations_that_cannot_alert_sensibly_are_reported() {
    let mut c = MissVelocityConfig::default();
    c.crit_factor = 0.9; // CRIT below WARN
    assert!(c.check().unwrap_err().contains("crit_factor"));
    let mut c = MissVelocityConfig::default();
    c.offset = -200.0; // a threshold below zero: every sample WARN
    assert!(c.check().unwrap_err().contains("offset"));
    let mut c = MissVelocityConfig::default();
    c.percentile = f64::NAN;
    assert!(c.check().unwrap_err().contains("percentile"));
    let mut c = MissVelocityConfig::default();
    c.base_rate = BaseRate::Learn {
        warmup: 12,
        history: 0,
    };
    assert!(c.check().unwrap_err().contains("history"));
    let mut g = GrowthConfig::default();
    g.max_growth_per_minute = -1.0;
    assert!(g.check().is_err());
    assert!(std::panic::catch_unwind(|| GrowthGuard::new(g)).is_err());
}
