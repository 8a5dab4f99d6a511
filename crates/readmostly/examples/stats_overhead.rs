//! What hit statistics cost a read: an interleaved A/B benchmark of `get` with hit
//! counting on and off.
//!
//! ```text
//! cargo run --release -p readmostly --example stats_overhead            # 41 rounds
//! cargo run --release -p readmostly --example stats_overhead -- --batch  # one pin per 64 gets
//! cargo run --release -p readmostly --example stats_overhead -- --aa     # the method's own bias
//! valgrind --tool=callgrind target/release/examples/stats_overhead --only on --rounds 1
//! ```
//!
//! Wall-clock A/B runs on a shared machine drift by more than the effect being measured,
//! so the two settings run in alternating blocks (A B, then B A, ...) of the same key
//! sequence, and the overhead is the median of the per-round ratios `on / off` with a
//! bootstrap 95 % confidence interval. By default both settings run on **one map**,
//! switched with `SyncMap::set_hit_statistics` between blocks: same tables, same
//! entries, same addresses, so the comparison is not biased by where two maps' memory
//! happened to land (two separately built maps of 64 Ki keys differed by up to 2× with
//! identical settings). `--two-maps` runs the older method: two maps built with
//! `Builder::hit_statistics(true / false)`. `--aa` makes both sides the same setting
//! (off). `--only on|off` runs one setting for instruction counting under valgrind.

use std::hint::black_box;
use std::time::Instant;

use readmostly::SyncMap;

mod common;
use common::{median, Rng};

struct Args {
    keys: u64,
    ops: usize,
    rounds: usize,
    batch: bool,
    only: Option<bool>,
    aa: bool,
    two_maps: bool,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        keys: 65_536,
        ops: 1_000_000,
        rounds: 41,
        batch: false,
        only: None,
        aa: false,
        two_maps: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match flag.as_str() {
            "--keys" => args.keys = num(&value("--keys")?)?,
            "--ops" => args.ops = num(&value("--ops")?)? as usize,
            "--rounds" => args.rounds = num(&value("--rounds")?)?.max(1) as usize,
            "--batch" => args.batch = true,
            "--aa" => args.aa = true,
            "--two-maps" => args.two_maps = true,
            "--only" => {
                args.only = Some(match value("--only")?.as_str() {
                    "on" => true,
                    "off" => false,
                    other => return Err(format!("--only takes on or off, got {other}")),
                })
            }
            "-h" | "--help" => return Err(
                "usage: stats_overhead [--keys N] [--ops N] [--rounds N] [--batch] [--aa] [--two-maps] [--only on|off]"
                    .into(),
            ),
            other => return Err(format!("unknown argument {other} (try --help)")),
        }
    }
    if args.keys == 0 || args.ops == 0 {
        return Err("--keys and --ops must be positive".into());
    }
    Ok(args)
}

fn num(s: &str) -> Result<u64, String> {
    s.replace('_', "")
        .parse()
        .map_err(|_| format!("not a number: {s}"))
}

type Map = SyncMap<u64, u64, foldhash::fast::FixedState>;

fn build(keys: u64, stats: bool) -> Map {
    // A fixed hasher seed: both maps (and every valgrind run) probe alike.
    let map = SyncMap::builder()
        .hasher(foldhash::fast::FixedState::with_seed(7))
        .hit_statistics(stats)
        .build();
    for k in 0..keys {
        map.insert(k, k);
    }
    // Every key in the read table's main hash table.
    map.promote();
    assert_eq!(map.stats().recent_len, 0);
    map
}

/// Nanoseconds per `get` over `keys`, one pin per get or per 64 gets.
fn run(map: &Map, keys: &[u64], batch: bool) -> f64 {
    let start = Instant::now();
    let mut sum = 0u64;
    if batch {
        for chunk in keys.chunks(64) {
            let m = map.pin();
            for k in chunk {
                sum = sum.wrapping_add(*m.get(k).unwrap_or(&0));
            }
        }
    } else {
        for k in keys {
            sum = sum.wrapping_add(*map.pin().get(k).unwrap_or(&0));
        }
    }
    black_box(sum);
    start.elapsed().as_nanos() as f64 / keys.len() as f64
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("stats_overhead: {e}");
            std::process::exit(2);
        }
    };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let keys: Vec<u64> = (0..args.ops).map(|_| rng.next() % args.keys).collect();
    let mode = if args.batch {
        "one pin per 64 gets"
    } else {
        "one pin per get"
    };

    if let Some(stats) = args.only {
        let map = build(args.keys, stats);
        for _ in 0..args.rounds {
            run(&map, &keys, args.batch);
        }
        println!(
            "hit statistics {}: {} rounds of {} gets ({mode}), {} hits counted",
            if stats { "on" } else { "off" },
            args.rounds,
            args.ops,
            map.stats().hits
        );
        return;
    }

    // The two sides: one map switched between settings (default), or two maps.
    // `--aa`: both sides without hit statistics, to see the method's own bias.
    let on_setting = !args.aa;
    let first = build(args.keys, on_setting);
    let second = args.two_maps.then(|| build(args.keys, false));
    let side = |on: bool| -> f64 {
        match &second {
            Some(off_map) => run(if on { &first } else { off_map }, &keys, args.batch),
            None => {
                first.set_hit_statistics(on && on_setting);
                run(&first, &keys, args.batch)
            }
        }
    };
    // Warm-up: one block each.
    side(true);
    side(false);
    let (mut t_on, mut t_off, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..args.rounds {
        let (a, b) = if round % 2 == 0 {
            let a = side(true);
            (a, side(false))
        } else {
            let b = side(false);
            (side(true), b)
        };
        t_on.push(a);
        t_off.push(b);
        ratios.push(a / b);
    }
    // Bootstrap the median ratio.
    let mut medians: Vec<f64> = (0..2_000)
        .map(|_| {
            let mut sample: Vec<f64> = (0..ratios.len())
                .map(|_| ratios[(rng.next() % ratios.len() as u64) as usize])
                .collect();
            median(&mut sample)
        })
        .collect();
    medians.sort_by(f64::total_cmp);
    let lo = medians[medians.len() * 25 / 1000];
    let hi = medians[medians.len() * 975 / 1000];
    let ratio = median(&mut ratios.clone());
    println!(
        "{} keys, {} rounds of {} gets each ({mode}), {}{}",
        args.keys,
        args.rounds,
        args.ops,
        if args.two_maps {
            "two maps interleaved"
        } else {
            "one map, setting switched between blocks"
        },
        if args.aa {
            " (A/A: both sides off)"
        } else {
            ""
        }
    );
    println!(
        "hit statistics on : median {:.2} ns/get (min {:.2})",
        median(&mut t_on.clone()),
        t_on.iter().copied().fold(f64::INFINITY, f64::min)
    );
    println!(
        "hit statistics off: median {:.2} ns/get (min {:.2})",
        median(&mut t_off.clone()),
        t_off.iter().copied().fold(f64::INFINITY, f64::min)
    );
    println!(
        "overhead: {:+.2} % (median of per-round ratios; 95 % CI {:+.2} % .. {:+.2} %)",
        (ratio - 1.0) * 100.0,
        (lo - 1.0) * 100.0,
        (hi - 1.0) * 100.0
    );
}
