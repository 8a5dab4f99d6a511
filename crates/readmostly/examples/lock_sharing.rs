//! Whether readers and lock holders share a cache line: one thread reads present keys
//! (one pin per `get`) while another takes and releases the map's lock as fast as it
//! can (`promote()` with nothing to promote: lock, two loads, unlock).
//!
//! ```text
//! cargo run --release -p readmostly --example lock_sharing            # reader + locker
//! cargo run --release -p readmostly --example lock_sharing -- --spin  # reader + spinner
//! ```
//!
//! If the mutex word lies on the cache line holding the `read` pointer (which every
//! lookup loads), each lock and unlock steals that line from the reader and each lookup
//! steals it back: both threads slow down. With `--spin` the second thread only spins,
//! which gives the reader's figure without any sharing. Needs two CPUs.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use readmostly::SyncMap;

fn main() {
    let spin = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--spin") => true,
        Some(other) => {
            eprintln!("error: unknown argument {other:?}; usage: lock_sharing [--spin]");
            std::process::exit(2)
        }
    };
    let keys = 65_536u64;
    let map: SyncMap<u64, u64> = (0..keys).map(|k| (k, k)).collect();
    let stop = AtomicBool::new(false);
    let secs = 2.0;
    let (reads, locks) = std::thread::scope(|s| {
        let other = s.spawn(|| {
            let mut n = 0u64;
            while !stop.load(Relaxed) {
                if spin {
                    std::hint::spin_loop();
                } else {
                    black_box(map.promote());
                }
                n += 1;
            }
            n
        });
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let (mut n, start) = (0u64, Instant::now());
        while start.elapsed() < Duration::from_secs_f64(secs) {
            for _ in 0..1024 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                black_box(map.pin().get(&(x % keys)).copied());
            }
            n += 1024;
        }
        stop.store(true, Relaxed);
        (n, other.join().expect("the second thread does not panic"))
    });
    let what = if spin { "spins" } else { "lock round trips" };
    println!(
        "reader: {:.1} M gets/s; other thread: {:.1} M {what}/s",
        reads as f64 / secs / 1e6,
        locks as f64 / secs / 1e6
    );
}
