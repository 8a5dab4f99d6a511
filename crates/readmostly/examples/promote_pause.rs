//! How long other writers wait while one thread calls [`SyncMap::promote`] on a large
//! map with a rebuild under way and a large recent table.
//!
//! ```text
//! cargo run --release -p readmostly --example promote_pause                # 4 Mi keys
//! cargo run --release -p readmostly --example promote_pause -- --keys 1Mi --rounds 5
//! cargo run --release -p readmostly --example promote_pause -- --new 256Ki
//! cargo run --release -p readmostly --example promote_pause -- --new 256Ki --no-writer
//! cargo run --release -p readmostly --example promote_pause -- --delete-third
//! cargo run --release -p readmostly --example promote_pause -- --clear
//! ```
//!
//! Each round: a map of `keys` keys loaded in bulk (every key in the main table), then
//! `new` new keys (default 1 Ki) inserted one at a time: they start a rebuild of the
//! whole map, which lock-free adds advance only now and then (with few new keys, most of
//! it is still pending), and fill the recent table. With `--delete-third`, a third of
//! the keys are removed before, so that the rebuild expunges them and the promotion
//! retires them. Then
//! a writer thread inserts new keys without pause, timing each insert, while the main
//! thread calls `promote()` once (`clear()` with `--clear`). Reports that call's
//! duration, the writer's slowest insert and 99.9th percentile while it ran, and the
//! map's longest rebuild step, promotion move and clear step (entries).

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use readmostly::SyncMap;

mod common;
use common::count;

fn main() {
    let (mut keys, mut rounds, mut new) = (4u64 << 20, 3usize, 1u64 << 10);
    let (mut writer, mut delete, mut clear) = (true, false, false);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if ["--no-writer", "--delete-third", "--clear"].contains(&flag.as_str()) {
            writer &= flag != "--no-writer";
            delete |= flag == "--delete-third";
            clear |= flag == "--clear";
            continue;
        }
        let value = it.next();
        let parsed = match (flag.as_str(), value.as_deref()) {
            ("--keys", Some(v)) => count(v).map(|n| keys = n),
            ("--rounds", Some(v)) => count(v).map(|n| rounds = n as usize),
            ("--new", Some(v)) => count(v).map(|n| new = n),
            _ => Err(format!(
                "usage: promote_pause [--keys N] [--rounds N] [--new N] [--no-writer] [--delete-third] [--clear] (got {flag})"
            )),
        };
        if let Err(e) = parsed.and_then(|()| match keys.min(rounds as u64) {
            0 => Err("--keys and --rounds must be positive".to_string()),
            _ => Ok(()),
        }) {
            eprintln!("promote_pause: {e}");
            std::process::exit(2);
        }
    }
    for round in 0..rounds {
        let map: SyncMap<u64, u64> = (0..keys).map(|k| (k, k)).collect();
        if delete {
            // Removed before the rebuild starts: it expunges them.
            for k in (0..keys).step_by(3) {
                map.remove(&k);
            }
        }
        for k in keys..keys + new {
            map.insert(k, k);
        }
        let before = map.stats();
        let started = AtomicBool::new(false);
        let done = AtomicBool::new(false);
        let (promote_time, mut times) = std::thread::scope(|s| {
            let writer = s.spawn(|| {
                let mut times = Vec::with_capacity(1 << 20);
                let mut k = u64::MAX / 2;
                started.store(true, Relaxed);
                while writer && !done.load(Relaxed) {
                    let at = Instant::now();
                    map.insert(k, k);
                    times.push(at.elapsed().as_nanos() as u64);
                    k += 1;
                }
                times
            });
            while !started.load(Relaxed) {
                std::hint::spin_loop();
            }
            std::thread::sleep(Duration::from_millis(5));
            let at = Instant::now();
            if clear {
                map.clear();
            } else {
                assert!(map.promote());
            }
            let promote_time = at.elapsed();
            std::thread::sleep(Duration::from_millis(5));
            done.store(true, Relaxed);
            (promote_time, writer.join().expect("writer"))
        });
        let s = map.stats();
        let inserts = times.len();
        if times.is_empty() {
            times.push(0); // no writer
        }
        times.sort_unstable();
        let p999 = times[(times.len() * 999 / 1000).min(times.len() - 1)];
        println!(
            "round {round}: {keys} keys, rebuild pending {} and recent table {} before; \
             {}() {:.1} ms; writer: {} inserts meanwhile, slowest {:.1} µs, p99.9 {:.1} µs; \
             longest rebuild step {}, promotion move {}, clear step {}",
            before.rebuild_pending,
            before.recent_len,
            if clear { "clear" } else { "promote" },
            promote_time.as_secs_f64() * 1e3,
            inserts,
            *times.last().unwrap_or(&0) as f64 / 1e3,
            p999 as f64 / 1e3,
            s.longest_rebuild_step,
            s.longest_promotion_move,
            s.longest_clear_step,
        );
    }
}
