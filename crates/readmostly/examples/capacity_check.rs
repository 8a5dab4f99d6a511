//! What the capacity check costs: `ShardedMap::try_insert` against `insert` on a map
//! with a limit it never reaches, one writer overwriting present keys while readers
//! (`--readers N`, default 1) look keys up. Medians of 9 alternated rounds, in ns per
//! call of the writer.
//!
//! ```text
//! cargo run --release -p readmostly --example capacity_check
//! cargo run --release -p readmostly --example capacity_check -- --shards 64 --stripes 16 --readers 0
//! cargo run --release -p readmostly --example capacity_check -- --syncmap   # a SyncMap instead
//! ```
//!
//! `try_insert` reads the map's key count before each call. The readers count their
//! hits on statistics stripes, so wherever the key count shares a cache line with the
//! hit counters, every check takes those lines back from the readers' cores.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Instant;

use readmostly::{ShardedMap, SyncMap};

const KEYS: u64 = 16_384;
const CALLS: u64 = 200_000;

fn usage(msg: &str) -> ! {
    eprintln!(
        "error: {msg}\nusage: capacity_check [--syncmap] [--shards N] [--stripes N] [--readers N]"
    );
    std::process::exit(2)
}

fn main() {
    let (mut shards, mut stripes, mut readers) = (64usize, 16usize, 1usize);
    let mut syncmap = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--syncmap" {
            syncmap = true;
            continue;
        }
        let value: usize = match args.next().map(|v| v.parse()) {
            Some(Ok(v)) => v,
            _ => usage(&format!("{flag} needs a whole number")),
        };
        match flag.as_str() {
            "--shards" => shards = value,
            "--stripes" => stripes = value,
            "--readers" => readers = value,
            _ => usage(&format!("unknown argument {flag:?}")),
        }
    }
    // Both maps have the same methods, not a common trait: the same code for each.
    macro_rules! fill_and_measure {
        ($map:expr) => {{
            let map = $map;
            for k in 0..KEYS {
                map.insert(k, k);
            }
            map.promote();
            let (p, c) = measure(
                readers,
                |k| {
                    black_box(map.pin().get(&k).copied());
                },
                |k, v| {
                    black_box(map.insert(k, v));
                },
                |k, v| {
                    black_box(map.try_insert(k, v).is_ok());
                },
            );
            format!(
                "{readers} reader(s): insert {p:.1} ns, try_insert {c:.1} ns (check {:.1} ns)",
                c - p
            )
        }};
    }
    if syncmap {
        // A `SyncMap` has its own stripe count (twice the hardware threads).
        let map: SyncMap<u64, u64> = SyncMap::builder().max_len(usize::MAX).build();
        println!("SyncMap, {}", fill_and_measure!(&map));
    } else {
        let map: ShardedMap<u64, u64> = ShardedMap::builder()
            .shards(shards)
            .stripes_per_shard(stripes)
            .max_len(usize::MAX)
            .build();
        let figures = fill_and_measure!(&map);
        println!(
            "{} shards x {} stripes, {figures}",
            map.shard_count(),
            stripes.next_power_of_two()
        );
    }
}

/// Medians of 9 rounds of `insert` and 9 of `try_insert`, alternated, in ns per call,
/// while `readers` threads call `get`.
fn measure(
    readers: usize,
    get: impl Fn(u64) + Sync,
    insert: impl Fn(u64, u64),
    try_insert: impl Fn(u64, u64),
) -> (f64, f64) {
    let stop = AtomicBool::new(false);
    let (mut plain, mut checked) = (Vec::new(), Vec::new());
    std::thread::scope(|s| {
        for r in 0..readers {
            let (get, stop) = (&get, &stop);
            s.spawn(move || {
                let mut x = 0x9e37_79b9_7f4a_7c15u64 + r as u64;
                while !stop.load(Relaxed) {
                    for _ in 0..256 {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        get(x % KEYS);
                    }
                }
            });
        }
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % KEYS
        };
        for round in 0..18 {
            let start = Instant::now();
            for i in 0..CALLS {
                let k = next();
                if round % 2 == 0 {
                    insert(k, i);
                } else {
                    try_insert(k, i);
                }
            }
            let ns = start.elapsed().as_nanos() as f64 / CALLS as f64;
            if round % 2 == 0 {
                &mut plain
            } else {
                &mut checked
            }
            .push(ns);
        }
        stop.store(true, Relaxed);
    });
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (median(&mut plain), median(&mut checked))
}
