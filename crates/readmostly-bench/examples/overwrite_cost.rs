//! What one overwrite of a present key costs, and what a lookup costs after overwrites,
//! on one thread: `SyncMap` with one-word values (which reuse the entry's two in-block
//! slots), `SyncMap` with two-word values (boxed every other store), scc `HashIndex` and
//! dashmap.
//!
//! ```text
//! cargo run --release -p readmostly-bench --example overwrite_cost
//! cargo run --release -p readmostly-bench --example overwrite_cost -- --keys 1Ki
//! ```
//!
//! Each map is filled with `--keys` keys (one map after the other, so each map's blocks
//! lie together), then every round runs, for each map in rotated order, `--ops`
//! overwrites of random present keys (one pin per call, as `SyncMap::insert` does),
//! followed by the same number of lookups (`map.pin().get(&k)`, one pin per call). The
//! figures are medians over rounds of nanoseconds per operation. Unlike the
//! `readmostly-bench` write50 workload, nothing else runs between the overwrites: this
//! isolates the write path (allocation, compare-and-swap, retirement and reclamation).

use std::hint::black_box;
use std::time::Instant;

use clap::Parser;
use readmostly::SyncMap;

type Hasher = foldhash::fast::FixedState;

#[derive(Parser, Debug)]
#[command(about = "Nanoseconds per overwrite and per lookup after overwrites, one thread")]
struct Args {
    /// Keys in each map, e.g. 64Ki (cache-resident on most machines), 1Mi.
    #[arg(long, default_value = "64Ki", value_parser = parse_count)]
    keys: u64,
    /// Overwrites (and lookups) per map per round, e.g. 2M.
    #[arg(long, default_value = "2M", value_parser = parse_count)]
    ops: u64,
    /// Rounds (the maps' order rotates between rounds).
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u64).range(1..))]
    rounds: u64,
}

/// A positive count such as `64Ki` or `2M` (the bench CLI's syntax).
fn parse_count(s: &str) -> Result<u64, String> {
    match readmostly_bench::cli::parse_count(s) {
        Some(0) => Err(format!("'{s}' must be positive")),
        Some(n) => Ok(n),
        None => Err(format!("'{s}' is not a count such as 64Ki or 2M")),
    }
}

/// The maps compared, behind one interface: overwrite `k` (present) and look `k` up.
enum Map {
    Word(SyncMap<u64, u64, Hasher>),
    TwoWords(SyncMap<u64, [u64; 2], Hasher>),
    HashIndex(scc::HashIndex<u64, u64, Hasher>),
    DashMap(dashmap::DashMap<u64, u64, Hasher>),
}

impl Map {
    const NAMES: [&'static str; 4] = [
        "syncmap u64",
        "syncmap [u64; 2]",
        "scc HashIndex",
        "dashmap",
    ];

    fn build(which: usize, keys: u64) -> Map {
        let hasher = Hasher::with_seed(0x5eed);
        match which {
            0 => {
                let mut m = SyncMap::with_hasher(hasher);
                m.extend((0..keys).map(|k| (k, k)));
                Map::Word(m)
            }
            1 => {
                let mut m = SyncMap::with_hasher(hasher);
                m.extend((0..keys).map(|k| (k, [k; 2])));
                Map::TwoWords(m)
            }
            2 => {
                let m = scc::HashIndex::with_hasher(hasher);
                for k in 0..keys {
                    let _ = m.insert_sync(k, k);
                }
                Map::HashIndex(m)
            }
            _ => {
                let m = dashmap::DashMap::with_hasher(hasher);
                for k in 0..keys {
                    m.insert(k, k);
                }
                Map::DashMap(m)
            }
        }
    }

    /// Nanoseconds per overwrite of `keys`, storing `base + k`.
    fn overwrites(&self, keys: &[u64], base: u64) -> f64 {
        let start = Instant::now();
        match self {
            Map::Word(m) => keys.iter().for_each(|&k| {
                black_box(m.insert(k, base + k));
            }),
            Map::TwoWords(m) => keys.iter().for_each(|&k| {
                black_box(m.insert(k, [base + k; 2]));
            }),
            Map::HashIndex(m) => keys.iter().for_each(|&k| {
                if let scc::hash_index::Entry::Occupied(mut o) = m.entry_sync(k) {
                    o.update(base + k);
                }
            }),
            Map::DashMap(m) => keys.iter().for_each(|&k| {
                black_box(m.insert(k, base + k));
            }),
        }
        start.elapsed().as_nanos() as f64 / keys.len() as f64
    }

    /// Nanoseconds per lookup of `keys`; checks each value is `base + k`.
    fn lookups(&self, keys: &[u64], base: u64) -> f64 {
        let start = Instant::now();
        let found: u64 = match self {
            Map::Word(m) => keys.iter().map(|&k| *m.pin().get(&k).unwrap() - k).sum(),
            Map::TwoWords(m) => keys.iter().map(|&k| m.pin().get(&k).unwrap()[1] - k).sum(),
            Map::HashIndex(m) => keys
                .iter()
                .map(|&k| m.peek_with(&k, |_, v| *v).unwrap() - k)
                .sum(),
            Map::DashMap(m) => keys.iter().map(|&k| *m.get(&k).unwrap() - k).sum(),
        };
        let ns = start.elapsed().as_nanos() as f64 / keys.len() as f64;
        assert_eq!(
            found,
            base * keys.len() as u64,
            "a lookup found a stale value"
        );
        ns
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let args = Args::parse();
    // xorshift64: uniform random present keys, the same sequence for every map.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let keys: Vec<u64> = (0..args.ops)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % args.keys
        })
        .collect();
    let maps: Vec<Map> = (0..Map::NAMES.len())
        .map(|i| Map::build(i, args.keys))
        .collect();
    let all: Vec<u64> = (0..args.keys).collect();
    let mut writes = vec![Vec::new(); maps.len()];
    let mut reads = vec![Vec::new(); maps.len()];
    for round in 0..args.rounds {
        let base = (round + 1) * args.keys;
        for i in 0..maps.len() {
            let which = (i + round as usize) % maps.len();
            writes[which].push(maps[which].overwrites(&keys, base));
            // The random keys miss some keys; the lookups check every value they find
            // is this round's, so every key is written once more (untimed).
            maps[which].overwrites(&all, base);
            reads[which].push(maps[which].lookups(&keys, base));
        }
    }
    println!(
        "{} keys, {} operations per round, {} rounds; median ns per operation",
        args.keys, args.ops, args.rounds
    );
    println!(
        "{:<18} {:>10} {:>22}",
        "map", "overwrite", "lookup after overwrites"
    );
    for (i, name) in Map::NAMES.iter().enumerate() {
        println!(
            "{:<18} {:>10.1} {:>22.1}",
            name,
            median(writes[i].clone()),
            median(reads[i].clone())
        );
    }
}
