//! Batched reads: one pin per 64 lookups, done as 64 `get` calls or as one `get_each`
//! (which prefetches buckets and entries 16 keys at a time), against one pin per `get`
//! (`map.pin().get(&k)`, what the benchmark's `syncmap` does; and the same inside an
//! outer pin, where each inner pin only counts, without seize's locked exchange) and a
//! frozen
//! `std::collections::HashMap` with the same hasher doing plain `get`s.
//!
//! ```text
//! cargo run --release -p readmostly --example batch_reads                  # 64 Ki keys
//! cargo run --release -p readmostly --example batch_reads -- --keys 1Mi --rounds 11
//! ```
//!
//! The three run in alternating blocks of the same random key sequence (rotated order
//! each round); reported: the median nanoseconds per lookup of each, and the median of
//! the per-round ratios to the frozen map.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

use readmostly::SyncMap;

mod common;
use common::{count, median, Rng};

type Hasher = foldhash::fast::FixedState;

struct Args {
    keys: u64,
    ops: usize,
    rounds: usize,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        keys: 1 << 16,
        ops: 1 << 20,
        rounds: 21,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match flag.as_str() {
            "--keys" => args.keys = count(&value("--keys")?)?,
            "--ops" => args.ops = count(&value("--ops")?)? as usize,
            "--rounds" => args.rounds = count(&value("--rounds")?)?.max(1) as usize,
            "-h" | "--help" => {
                return Err("usage: batch_reads [--keys N] [--ops N] [--rounds N]".into())
            }
            other => return Err(format!("unknown argument {other} (try --help)")),
        }
    }
    if args.keys == 0 || args.ops == 0 {
        return Err("--keys and --ops must be positive".into());
    }
    Ok(args)
}

const PIN_EVERY: usize = 64;

/// Nanoseconds per key of `lookups`, which looks up every key of `keys` and returns a
/// sum of the values found (kept from the optimiser).
#[inline(always)]
fn timed(keys: &[u64], lookups: impl FnOnce(&[u64]) -> u64) -> f64 {
    let start = Instant::now();
    black_box(lookups(keys));
    start.elapsed().as_nanos() as f64 / keys.len() as f64
}

fn pin_per_get(map: &SyncMap<u64, u64, Hasher>, keys: &[u64]) -> f64 {
    timed(keys, |keys| {
        keys.iter().fold(0, |sum, k| {
            sum.wrapping_add(*map.pin().get(k).unwrap_or(&0))
        })
    })
}

fn nested_pin_per_get(map: &SyncMap<u64, u64, Hasher>, keys: &[u64]) -> f64 {
    timed(keys, |keys| {
        keys.chunks(PIN_EVERY).fold(0, |sum, chunk| {
            let _outer = map.pin();
            // A nested pin only counts: no barrier, but the same calls as a first one.
            chunk.iter().fold(sum, |sum, k| {
                sum.wrapping_add(*map.pin().get(k).unwrap_or(&0))
            })
        })
    })
}

fn per_get(map: &SyncMap<u64, u64, Hasher>, keys: &[u64]) -> f64 {
    timed(keys, |keys| {
        keys.chunks(PIN_EVERY).fold(0, |sum, chunk| {
            let m = map.pin();
            chunk
                .iter()
                .fold(sum, |sum, k| sum.wrapping_add(*m.get(k).unwrap_or(&0)))
        })
    })
}

fn get_each(map: &SyncMap<u64, u64, Hasher>, keys: &[u64]) -> f64 {
    timed(keys, |keys| {
        let mut sum = 0u64;
        for chunk in keys.chunks(PIN_EVERY) {
            map.pin()
                .get_each(chunk, |_, v| sum = sum.wrapping_add(*v.unwrap_or(&0)));
        }
        sum
    })
}

fn frozen(map: &HashMap<u64, u64, Hasher>, keys: &[u64]) -> f64 {
    timed(keys, |keys| {
        keys.iter()
            .fold(0, |sum, k| sum.wrapping_add(*map.get(k).unwrap_or(&0)))
    })
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("batch_reads: {e}");
            std::process::exit(2);
        }
    };
    let hasher = Hasher::with_seed(7);
    let mut ours: SyncMap<u64, u64, Hasher> = SyncMap::builder().hasher(hasher).build();
    ours.extend((0..args.keys).map(|k| (k, k)));
    let std_map: HashMap<u64, u64, Hasher> = (0..args.keys).map(|k| (k, k)).collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let keys: Vec<u64> = (0..args.ops).map(|_| rng.next() % args.keys).collect();

    let sides: [(&str, &dyn Fn() -> f64); 5] = [
        ("get, one pin per get", &|| pin_per_get(&ours, &keys)),
        ("get, nested pin per get", &|| {
            nested_pin_per_get(&ours, &keys)
        }),
        ("get, one pin per 64", &|| per_get(&ours, &keys)),
        ("get_each, one pin per 64", &|| get_each(&ours, &keys)),
        ("frozen HashMap get", &|| frozen(&std_map, &keys)),
    ];
    for (_, side) in &sides {
        side(); // warm-up
    }
    let mut times = vec![Vec::new(); sides.len()];
    for round in 0..args.rounds {
        for i in 0..sides.len() {
            let s = (i + round) % sides.len();
            times[s].push((sides[s].1)());
        }
    }
    println!(
        "{} keys, {} rounds of {} lookups, sides interleaved",
        args.keys, args.rounds, args.ops
    );
    let frozen_times = times[sides.len() - 1].clone();
    for ((name, _), t) in sides.iter().zip(&times) {
        let mut ratios: Vec<f64> = frozen_times.iter().zip(t).map(|(f, x)| f / x).collect();
        println!(
            "{name:<26} median {:6.2} ns/lookup   speed vs frozen {:.2}x",
            median(&mut t.clone()),
            median(&mut ratios)
        );
    }
}
