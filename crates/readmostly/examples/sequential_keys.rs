//! Lookups of sequential integer keys (ids 0..n, as many real maps hold) hashed with
//! `foldhash::fast` under a chosen global seed: the case that made the map mix hashes
//! before its tables use them (`raw::table::spread`).
//!
//! ```text
//! cargo run --release -p readmostly --example sequential_keys -- --seed 119
//! taskset -c 1 target/release/examples/sequential_keys --seed 119 --secs 2
//! valgrind --tool=cachegrind target/release/examples/sequential_keys --seed 119 --ops 1000000
//! ```
//!
//! (`--ops N`: exactly N lookups per mode instead of a time limit, for instruction and
//! cache-miss counts; take the difference of two runs to leave the prefill out.)
//!
//! `foldhash::fast` hashes of consecutive integers are far from uniform in their low
//! bits for some global seeds (the default `RandomState` draws one per process). The
//! program first reports how the raw hashes of the keys would fill a table of the map's
//! size indexed by their low bits (empty buckets, fullest bucket; uniform hashing leaves
//! about `buckets · e^(−keys/buckets)` empty), then times random lookups of present keys
//! with one pin per `get` and with one pin per 1024. Build it at two commits to compare
//! them; the seed makes both runs hash identically.

use std::hash::BuildHasher;
use std::hint::black_box;
use std::time::{Duration, Instant};

use foldhash::fast::SeedableRandomState;
use foldhash::SharedSeed;
use readmostly::SyncMap;

fn main() {
    let mut seed = 119u64;
    let mut keys = 65_536u64;
    let mut secs = 2.0f64;
    let mut ops: Option<u64> = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| -> String {
            it.next().unwrap_or_else(|| {
                eprintln!("error: {name} needs a value");
                std::process::exit(2)
            })
        };
        let parsed = match flag.as_str() {
            "--seed" => value("--seed").parse().map(|v| seed = v).is_ok(),
            "--keys" => value("--keys")
                .parse()
                .map(|v: u64| keys = v.max(1))
                .is_ok(),
            "--ops" => value("--ops").parse().map(|v| ops = Some(v)).is_ok(),
            "--secs" => value("--secs")
                .parse()
                .map(|v: f64| secs = v.max(0.01))
                .is_ok(),
            _ => {
                eprintln!("usage: sequential_keys [--seed N] [--keys N] [--secs S | --ops N]");
                std::process::exit(2)
            }
        };
        if !parsed {
            eprintln!("error: {flag} needs a number");
            std::process::exit(2);
        }
    }

    let shared: &'static SharedSeed = Box::leak(Box::new(SharedSeed::from_u64(seed)));
    let hasher = SeedableRandomState::with_seed(12_345, shared);

    // How the raw hashes fill a table of 64-byte, 6-per-bucket buckets (the map's load).
    let buckets = keys.div_ceil(6).next_power_of_two();
    let mut fill = vec![0u32; buckets as usize];
    for k in 0..keys {
        fill[(hasher.hash_one(k) & (buckets - 1)) as usize] += 1;
    }
    let empty = fill.iter().filter(|&&n| n == 0).count();
    let expected = buckets as f64 * (-(keys as f64) / buckets as f64).exp();
    println!(
        "seed {seed}, {keys} keys: raw low bits leave {empty} of {buckets} buckets empty \
         (uniform: {expected:.0}), fullest bucket {}",
        fill.iter().max().unwrap_or(&0)
    );

    let map: SyncMap<u64, u64, SeedableRandomState> = SyncMap::with_hasher(hasher);
    for k in 0..keys {
        map.insert(k, k);
    }
    map.promote();
    for batch in [false, true] {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % keys
        };
        let (mut done, start) = (0u64, Instant::now());
        let more = |done: u64| match ops {
            Some(ops) => done < ops,
            None => start.elapsed() < Duration::from_secs_f64(secs),
        };
        while more(done) {
            if batch {
                let m = map.pin();
                for _ in 0..1024 {
                    black_box(m.get(&next()));
                }
            } else {
                for _ in 0..1024 {
                    black_box(map.pin().get(&next()).copied());
                }
            }
            done += 1024;
        }
        let mops = done as f64 / start.elapsed().as_secs_f64() / 1e6;
        let mode = if batch {
            "one pin per 1024"
        } else {
            "one pin per get"
        };
        println!("{mode}: {mops:.1} Mops/s");
    }
}
