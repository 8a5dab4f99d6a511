//! `advise`: run the candidates on the described workload and recommend one, with the
//! measured evidence and the reasons that apply to the workload's shape.

use std::fmt::Write as _;

use serde::Serialize;

use crate::adapters::MapKind;
use crate::record::{is_reference, Row, Skipped};
use crate::report;
use crate::suite::{self, Plan};
use crate::workloads::{KeySrc, OpKind, Workload};
use crate::Error;

/// A recommendation and its evidence.
#[derive(Debug, Clone, Serialize)]
pub struct Advice {
    /// Workload name.
    pub workload: String,
    /// Operation mix.
    pub mix: String,
    /// Threads.
    pub threads: usize,
    /// Prefilled keys.
    pub keys: u64,
    /// Key distribution.
    pub dist: String,
    /// Value type.
    pub value: String,
    /// `--retire-batch` given to readmostly's maps (`None`: the library's default).
    pub retire_batch: Option<usize>,
    /// Measured candidates, fastest first.
    pub rows: Vec<Row>,
    /// Candidates that could not run.
    pub skipped: Vec<Skipped>,
    /// The recommended map.
    pub recommended: Option<String>,
    /// One-line recommendation.
    pub headline: String,
    /// Why, with numbers.
    pub reasons: Vec<String>,
}

/// Runs the plan (one workload, one thread count) and derives the advice.
pub fn advise(plan: &Plan) -> Result<Advice, Error> {
    let workload = plan
        .workloads
        .first()
        .ok_or_else(|| Error::usage("advise needs a workload"))?
        .clone();
    let res = suite::run(plan, "advise".into());
    let mut rows = res.rows;
    rank(&workload, &mut rows);
    let threads = plan.threads.first().copied().unwrap_or(1);
    let (recommended, headline, reasons) = reason(&workload, &rows, threads, suite::cpus());
    Ok(Advice {
        workload: workload.name.clone(),
        mix: workload.mix_text(),
        threads,
        keys: plan.keys,
        dist: plan.dists.first().map_or("uniform", |d| d.name()).into(),
        value: plan.value.name().into(),
        retire_batch: plan.options.retire_batch,
        rows,
        skipped: res.skipped,
        recommended,
        headline,
        reasons,
    })
}

/// Whether `row` competes for the recommendation. `syncmap-each` batches plain lookups
/// only; with none in the mix it runs the same code as `syncmap-batch`, and ranking the
/// two would rank noise.
fn ranked(w: &Workload, row: &Row) -> bool {
    !is_reference(&row.map) && (w.per_mille(OpKind::Get) > 0 || row.map != "syncmap-each")
}

/// Sorts `rows` fastest first, an unranked `syncmap-each` last, and makes "vs best"
/// relative to the fastest ranked map (the one recommended).
fn rank(w: &Workload, rows: &mut [Row]) {
    rows.sort_by(|a, b| b.mops.total_cmp(&a.mops));
    rows.sort_by_key(|r| r.map == "syncmap-each" && !ranked(w, r));
    let best = rows
        .iter()
        .filter(|r| ranked(w, r))
        .map(|r| r.mops)
        .fold(0.0f64, f64::max);
    for r in rows {
        r.vs_best = (best > 0.0 && ranked(w, r)).then(|| r.mops / best);
    }
}

/// "P99 N ns", or a note when the cell has too few samples for a P99.
fn p99_text(r: &Row) -> String {
    if r.has_p99() {
        format!("P99 {} ns", r.p99_ns)
    } else {
        "P99 not measured: too few samples".into()
    }
}

fn find<'a>(rows: &'a [Row], map: &str) -> Option<&'a Row> {
    rows.iter().find(|r| r.map == map)
}

/// The recommendation for measured `rows` (fastest first): `(map, headline, reasons)`.
pub fn reason(
    w: &Workload,
    rows: &[Row],
    threads: usize,
    cpus: usize,
) -> (Option<String>, String, Vec<String>) {
    let batches_lookups = w.per_mille(OpKind::Get) > 0;
    let mut cands: Vec<&Row> = rows.iter().filter(|r| ranked(w, r)).collect();
    cands.sort_by(|a, b| b.mops.total_cmp(&a.mops));
    let Some(best) = cands.first() else {
        return (
            None,
            "No candidate map could run this workload.".into(),
            Vec::new(),
        );
    };
    let mut why = Vec::new();
    if !batches_lookups && find(rows, "syncmap-each").is_some() {
        why.push(
            "syncmap-each is not ranked: this workload has no plain lookups for get_each to batch, so it ran \
             the same code as syncmap-batch."
                .into(),
        );
    }
    let about = MapKind::parse(&best.map).map_or("", MapKind::about);
    let headline = if best.map == "syncmap-batch" {
        "Use readmostly::SyncMap and keep one pin (MapRef from SyncMap::pin) across batches of operations.".to_string()
    } else if best.map == "syncmap-each" {
        "Use readmostly::SyncMap, keep one pin (MapRef from SyncMap::pin) across batches of operations, and look keys up in batches with MapRef::get_each.".to_string()
    } else {
        format!("Use {}: {about}.", best.map)
    };
    match cands.get(1) {
        Some(second) if second.mops > 0.0 => {
            let ratio = best.mops / second.mops;
            if ratio < 1.05 {
                let tie = format!(
                    "{} ({:.1} Mops/s) and {} ({:.1} Mops/s) are within 5 %: treat them as tied",
                    best.map, best.mops, second.map, second.mops
                );
                if best.has_p99() && second.has_p99() {
                    let (lo, hi) = if best.p99_ns <= second.p99_ns {
                        (best, second)
                    } else {
                        (second, best)
                    };
                    why.push(format!(
                        "{tie}; {} has the lower P99 ({} vs {} ns).",
                        lo.map, lo.p99_ns, hi.p99_ns
                    ));
                } else {
                    why.push(format!("{tie}."));
                }
            } else {
                why.push(format!(
                    "{} ran at {:.1} Mops/s ({}), {ratio:.2}x the runner-up {} ({:.1} Mops/s, {}).",
                    best.map,
                    best.mops,
                    p99_text(best),
                    second.map,
                    second.mops,
                    p99_text(second)
                ));
            }
        }
        _ => why.push(format!(
            "{} ran at {:.1} Mops/s ({}).",
            best.map,
            best.mops,
            p99_text(best)
        )),
    }

    let pm = |k: OpKind| w.per_mille(k) as f64 / 10.0;
    let reads = pm(OpKind::Get) + pm(OpKind::ReadOrFill);
    let overwrites = pm(OpKind::Overwrite);
    let new_keys = w.new_key_per_mille() / 10.0;
    let sync = find(rows, "syncmap");
    if new_keys >= 1.0 {
        let cost = "the read/dirty design (SyncMap) adds new keys without its lock only while its small recent \
                    table has room, takes the lock to grow or promote it, and rebuilds its dirty table after each \
                    promotion";
        if best.map == MapKind::Sharded.name() {
            why.push(format!(
                "new-key rate is {new_keys:.1} % of operations: {cost}; ShardedMap splits the lock and the \
                 rebuild over its shards, and came out ahead here."
            ));
        } else if MapKind::parse(&best.map).is_some_and(MapKind::is_ours) {
            why.push(format!(
                "new-key rate is {new_keys:.1} % of operations: {cost}, yet SyncMap still came out ahead here."
            ));
        } else {
            let mut s = format!(
                "new-key rate is high ({new_keys:.1} % of operations store a key the map does not hold): {cost}; \
                 readmostly's ShardedMap divides both costs by its shard count, and maps that write in place (scc HashMap, dashmap) do not pay them."
            );
            if let Some(sy) = sync {
                let _ = write!(
                    s,
                    " Here SyncMap reached {:.2}x of {}.",
                    sy.mops / best.mops,
                    best.map
                );
            }
            why.push(s);
        }
    } else if reads >= 99.0 {
        let keys = if new_keys > 0.0 {
            format!("{new_keys:.1} % new keys")
        } else {
            "no new keys".to_string()
        };
        why.push(format!(
            "read-mostly with a nearly stable key set ({reads:.1} % reads, {keys}): SyncMap, scc HashIndex, papaya and \
             ArcSwap serve reads without a lock; the differences are the per-call guard and the table layout."
        ));
    }
    if overwrites >= 20.0 {
        let batch = match rows.iter().find_map(|r| r.retire_batch) {
            Some(n) => format!("this run used a batch of {n}"),
            None => format!(
                "{} retirements per thread by default; a larger batch (try --retire-batch 2048) \
                 moves it out at the cost of memory and of more boxed values",
                readmostly::SyncMap::<u64, u64>::new().retire_batch()
            ),
        };
        why.push(format!(
            "write-heavy ({overwrites:.0} % overwrites): SyncMap and scc HashIndex publish each new value for \
             lock-free readers and retire the old one (SyncMap boxes values wider than a word, and a hot key's \
             values); arcswap-cow copies the whole map per write; locking maps serialise writers per shard or \
             bucket. The allocs/op column shows which allocate. SyncMap's writers also pay a process-wide \
             barrier per retire batch (Builder::retire_batch), which shows in the p999 column: {batch}."
        ));
    }
    if w.shares.iter().any(|s| s.keys == KeySrc::Hot) {
        why.push(
            "every operation targets one key: all maps serialise on that entry or shard; what differs is the miss \
             path (SyncMap: the lock and a promotion per miss storm)."
                .into(),
        );
    }
    let iterations = w.per_mille(OpKind::Iterate) as u64;
    if iterations > 0 {
        why.push(iteration_share(iterations, best.keys));
    }
    if threads == 1 {
        why.push(
            "one thread: there is no contention, so plain locks cost little; the ranking reflects single-thread cost."
                .into(),
        );
    }
    if threads > cpus {
        why.push(format!(
            "{threads} threads on {cpus} CPUs: threads are preempted, so tail latencies reflect the scheduler as much as the map."
        ));
    }
    if let (Some(b), Some(s)) = (find(rows, "syncmap-batch"), sync) {
        if s.mops > 0.0 && b.mops / s.mops > 1.15 {
            why.push(format!(
                "holding one pin across many operations (keep the MapRef from SyncMap::pin) was {:.2}x faster than pinning per call.",
                b.mops / s.mops
            ));
        }
    }
    (Some(best.map.clone()), headline, why)
}

/// What full iterations weigh in a mix with `iterations` per mille of them over a map of
/// about `keys` keys: each visits every key, so it counts as `keys` entry visits against
/// one per keyed operation.
fn iteration_share(iterations: u64, keys: u64) -> String {
    let visits = iterations.saturating_mul(keys);
    let keyed = 1000u64.saturating_sub(iterations);
    let weight = if visits >= keyed.saturating_mul(10) {
        "the ranking mostly reflects iteration speed"
    } else if visits >= keyed {
        "iteration speed weighs as much as or more than lookup speed in the ranking"
    } else {
        "lookup speed still weighs more than iteration speed in the ranking"
    };
    format!(
        "full iterations: {iterations} per 1000 operations, each visiting about {keys} keys \
         ({visits} entry visits against {keyed} keyed operations): {weight}."
    )
}

/// The advice as text.
pub fn render(a: &Advice) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "workload: {} — {}\n{} threads, {} keys, {} keys, {} values{}\n",
        a.workload,
        a.mix,
        a.threads,
        a.keys,
        a.dist,
        a.value,
        a.retire_batch
            .map_or(String::new(), |n| format!(", retire batch {n}"))
    );
    let rows: Vec<Vec<String>> = a
        .rows
        .iter()
        .map(|r| {
            vec![
                r.map.clone(),
                report::mops_text(r),
                r.vs_best.map_or("-".into(), |v| format!("{v:.2}x")),
                r.p50_ns.to_string(),
                report::tail_quantile(r.p99_ns, r.has_p99()),
                report::tail_quantile(r.p999_ns, r.has_p999()),
                r.allocs_per_op.map_or("-".into(), |v| format!("{v:.3}")),
                r.bytes_per_key.map_or("-".into(), |v| format!("{v:.1}")),
            ]
        })
        .collect();
    out.push_str(&report::render(
        &[
            "map",
            "Mops/s",
            "vs best",
            "p50 ns",
            "p99 ns",
            "p999 ns",
            "allocs/op",
            "B/key",
        ],
        &rows,
        false,
    ));
    if a.rows.iter().any(|r| !r.has_p999()) {
        let _ = writeln!(out, "{}", report::FEW_SAMPLES);
    }
    for s in &a.skipped {
        let _ = writeln!(out, "(skipped {}: {})", s.map, s.reason);
    }
    let _ = writeln!(out, "\nRecommendation: {}\nWhy:", a.headline);
    for r in &a.reasons {
        let _ = writeln!(out, "  - {r}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iteration_weight_follows_visits() {
        // iterate-heavy over 64 Ki keys: 1 iteration per 1000 ops, 65,536 visits vs 999.
        let heavy = iteration_share(1, 65_536);
        assert!(heavy.contains("65536 entry visits against 999"), "{heavy}");
        assert!(
            heavy.ends_with("mostly reflects iteration speed."),
            "{heavy}"
        );
        assert!(iteration_share(1, 2_000).contains("as much as or more than"));
        assert!(iteration_share(1, 100).contains("lookup speed still weighs more"));
    }

    fn row(map: &str, mops: f64, p99: u64) -> Row {
        Row {
            map: map.into(),
            workload: "custom".into(),
            dist: "uniform".into(),
            threads: 4,
            keys: 10,
            mops,
            p50_ns: 1,
            p99_ns: p99,
            p999_ns: p99,
            max_ns: p99,
            value: "u64".into(),
            hasher: "foldhash".into(),
            ops: 1,
            secs: 1.0,
            samples: 1000,
            allocs_per_op: None,
            bytes_per_key: None,
            hit_rate: None,
            truncated: false,
            vs_best: None,
            vs_frozen: None,
            map_stats: None,
            rounds: 1,
            mops_min: Some(mops),
            mops_max: Some(mops),
            retire_batch: None,
        }
    }

    #[test]
    fn high_new_key_rate_is_explained() {
        let w = Workload::custom(90.0, 0.0, 5.0, 5.0).unwrap();
        let rows = vec![
            row("scc-hashmap", 100.0, 300),
            row("dashmap", 80.0, 400),
            row("syncmap", 20.0, 900),
        ];
        let (m, head, why) = reason(&w, &rows, 4, 16);
        assert_eq!(m.as_deref(), Some("scc-hashmap"));
        assert!(head.contains("scc-hashmap"));
        assert!(why[0].contains("1.25x the runner-up dashmap"), "{why:?}");
        assert!(
            why.iter()
                .any(|r| r.contains("new-key rate is high") && r.contains("0.20x")),
            "{why:?}"
        );
    }

    #[test]
    fn new_keys_when_syncmap_wins() {
        let w = Workload::by_name("ttl-cache").unwrap();
        let rows = vec![row("syncmap", 100.0, 300), row("dashmap", 50.0, 400)];
        let (m, _, why) = reason(&w, &rows, 4, 16);
        assert_eq!(m.as_deref(), Some("syncmap"));
        assert!(
            why.iter().any(|r| r.contains("still came out ahead")),
            "{why:?}"
        );
    }

    #[test]
    fn ties_and_batch_pins() {
        let w = Workload::by_name("read100").unwrap();
        let rows = vec![
            row("syncmap-batch", 200.0, 100),
            row("scc-hashindex", 195.0, 90),
            row("syncmap", 100.0, 120),
            row("frozen-std", 500.0, 50),
        ];
        let (m, head, why) = reason(&w, &rows, 32, 16);
        assert_eq!(m.as_deref(), Some("syncmap-batch"));
        assert!(head.contains("keep one pin"));
        assert!(
            why[0].contains("within 5 %") && why[0].contains("scc-hashindex has the lower P99")
        );
        assert!(why.iter().any(|r| r.contains("read-mostly")));
        assert!(why.iter().any(|r| r.contains("32 threads on 16 CPUs")));
        assert!(why
            .iter()
            .any(|r| r.contains("2.00x faster than pinning per call")));
    }

    #[test]
    fn get_each_is_not_ranked_without_lookups() {
        let w = Workload::by_name("goi-collide").unwrap();
        assert_eq!(w.per_mille(OpKind::Get), 0);
        let rows = vec![
            row("syncmap-each", 168.0, 100),
            row("syncmap-batch", 100.0, 100),
            row("dashmap", 50.0, 400),
        ];
        let (m, head, why) = reason(&w, &rows, 2, 2);
        assert_eq!(m.as_deref(), Some("syncmap-batch"));
        assert!(!head.contains("get_each"), "{head}");
        assert!(why[0].contains("not ranked"), "{why:?}");
        assert!(why[1].contains("2.00x the runner-up dashmap"), "{why:?}");
        // The table agrees: the recommended map is the best (1.00x) and first; the
        // unranked row goes last, with no ratio.
        let mut rows = rows;
        rows.push(row("frozen-std", 300.0, 50));
        rank(&w, &mut rows);
        let order: Vec<_> = rows.iter().map(|r| (r.map.as_str(), r.vs_best)).collect();
        assert_eq!(
            order,
            [
                ("frozen-std", None),
                ("syncmap-batch", Some(1.0)),
                ("dashmap", Some(0.5)),
                ("syncmap-each", None)
            ]
        );
        // With plain lookups in the mix, get_each is ranked like any map.
        let w = Workload::by_name("read100").unwrap();
        rank(&w, &mut rows);
        assert_eq!(rows[1].map, "syncmap-each");
        assert_eq!(rows[1].vs_best, Some(1.0));
    }

    #[test]
    fn tail_latencies_need_enough_samples() {
        let w = Workload::by_name("read100").unwrap();
        let mut rows = vec![row("syncmap", 100.0, 120), row("dashmap", 98.0, 90)];
        rows[0].samples = 50;
        let (_, _, why) = reason(&w, &rows, 2, 2);
        assert!(why[0].contains("treat them as tied."), "{why:?}");
        assert!(!why[0].contains("lower P99"), "{why:?}");
        rows[1].mops = 50.0;
        let (_, _, why) = reason(&w, &rows, 2, 2);
        assert!(
            why[0].contains("P99 not measured: too few samples), 2.00x")
                && why[0].contains("P99 90 ns"),
            "{why:?}"
        );
    }

    #[test]
    fn write_heavy_names_the_retire_batch() {
        let w = Workload::by_name("write50").unwrap();
        let rows = vec![row("syncmap", 10.0, 20_000), row("dashmap", 40.0, 400)];
        let (_, _, why) = reason(&w, &rows, 2, 2);
        assert!(
            why.iter()
                .any(|r| r.contains("50 % overwrites") && r.contains("--retire-batch 2048")),
            "{why:?}"
        );
        let mut rows = rows;
        rows[0].retire_batch = Some(4096);
        let (_, _, why) = reason(&w, &rows, 2, 2);
        assert!(
            why.iter()
                .any(|r| r.contains("this run used a batch of 4096") && !r.contains("try")),
            "{why:?}"
        );
    }

    #[test]
    fn read_mostly_with_a_few_new_keys_says_so() {
        let w = Workload::custom(99.0, 0.5, 0.5, 0.0).unwrap();
        let rows = vec![row("syncmap", 100.0, 100), row("dashmap", 50.0, 400)];
        let (_, _, why) = reason(&w, &rows, 2, 2);
        assert!(
            why.iter()
                .any(|r| r.contains("99.0 % reads, 0.5 % new keys")),
            "{why:?}"
        );
    }
}
