//! Human-readable output: the terminal table and the Markdown report.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::record::{is_reference, ClaimRow, Results, Row};
use crate::workloads::Workload;

/// Renders an aligned text table (first column left-aligned) or a Markdown table.
pub fn render(headers: &[&str], rows: &[Vec<String>], markdown: bool) -> String {
    let mut out = String::new();
    if markdown {
        let _ = writeln!(out, "| {} |", headers.join(" | "));
        let seps: Vec<&str> = headers
            .iter()
            .enumerate()
            .map(|(i, _)| if i == 0 { "---" } else { "---:" })
            .collect();
        let _ = writeln!(out, "| {} |", seps.join(" | "));
        for r in rows {
            let _ = writeln!(out, "| {} |", r.join(" | "));
        }
        return out;
    }
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = widths[i] - c.chars().count();
            if i == 0 {
                l.push_str(c);
                l.push_str(&" ".repeat(pad));
            } else {
                l.push_str("  ");
                l.push_str(&" ".repeat(pad));
                l.push_str(c);
            }
        }
        l.trim_end().to_string()
    };
    out.push_str(&line(headers.to_vec()));
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

fn opt(v: Option<f64>, digits: usize, suffix: &str) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}{suffix}"))
}

/// `(workload, dist)` groups in first-seen order.
fn groups(rows: &[Row]) -> Vec<(String, String)> {
    let mut g: Vec<(String, String)> = Vec::new();
    for r in rows {
        let k = (r.workload.clone(), r.dist.clone());
        if !g.contains(&k) {
            g.push(k);
        }
    }
    g
}

fn cell_rows(rows: &[Row], workload: &str, dist: &str) -> Vec<Vec<String>> {
    rows.iter()
        .filter(|r| r.workload == workload && r.dist == dist)
        .map(|r| {
            vec![
                r.map.clone(),
                r.threads.to_string(),
                mops_text(r),
                opt(r.vs_best, 2, "x"),
                opt(r.vs_frozen, 2, "x"),
                r.p50_ns.to_string(),
                tail_quantile(r.p99_ns, r.has_p99()),
                tail_quantile(r.p999_ns, r.has_p999()),
                opt(r.allocs_per_op, 3, ""),
                opt(r.bytes_per_key, 1, ""),
                opt(r.hit_rate.map(|h| h * 100.0), 1, ""),
            ]
        })
        .collect()
}

/// A row's throughput for the tables: `*` when the time cap cut its run short, and the
/// slowest and fastest runs' figures after the median's when the cell ran more than once.
pub fn mops_text(r: &Row) -> String {
    let cut = if r.truncated { "*" } else { "" };
    match (r.rounds, r.mops_min, r.mops_max) {
        (2.., Some(lo), Some(hi)) => format!("{:.2}{cut} ({lo:.2}–{hi:.2})", r.mops),
        _ => format!("{:.2}{cut}", r.mops),
    }
}

/// A tail quantile for the tables, or `-` when the cell has too few latency samples for
/// it (`Row::has_p99`, `Row::has_p999`; the CSV and JSON keep the raw figure next to
/// the sample count).
pub(crate) fn tail_quantile(ns: u64, enough: bool) -> String {
    if enough {
        ns.to_string()
    } else {
        "-".into()
    }
}

/// Whether any cell's tail quantiles were left out for lack of samples.
fn few_samples(res: &Results) -> bool {
    res.rows.iter().any(|r| !r.has_p999())
}

pub(crate) const FEW_SAMPLES: &str =
    "- p99 / p999: fewer than 100 / 1000 latency samples in the cell (more --ops or a longer --duration)";

const CELL_HEADERS: [&str; 11] = [
    "map",
    "threads",
    "Mops/s",
    "vs best",
    "vs frozen",
    "p50 ns",
    "p99 ns",
    "p999 ns",
    "allocs/op",
    "B/key",
    "hit %",
];

fn workload_line(name: &str) -> String {
    match Workload::by_name(name) {
        Some(w) => format!("{name}: {}", w.about),
        None => name.to_string(),
    }
}

/// Harness overhead from the no-op map: ns per operation per thread, by thread count.
fn harness_text(rows: &[Row]) -> Option<String> {
    let mut by_threads: BTreeMap<usize, (f64, f64)> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.map == "noop" && r.mops > 0.0) {
        let ns = r.threads as f64 * 1e3 / r.mops;
        let e = by_threads.entry(r.threads).or_insert((f64::MAX, 0.0));
        e.0 = e.0.min(ns);
        e.1 = e.1.max(ns);
    }
    if by_threads.is_empty() {
        return None;
    }
    let parts: Vec<String> = by_threads
        .iter()
        .map(|(t, (lo, hi))| format!("{t} thr: {lo:.1}–{hi:.1} ns/op"))
        .collect();
    Some(format!(
        "harness overhead (noop map, per operation per thread): {}",
        parts.join(", ")
    ))
}

fn preamble(res: &Results) -> Vec<String> {
    let m = &res.meta;
    let mut v = vec![
        format!(
            "{} keys, value {}{}, hasher {}{}, {}, threads {:?}, {} CPUs, seed {}",
            m.keys,
            m.value,
            if m.value == "u64" { String::new() } else { format!(" ({} B)", m.value_size) },
            m.hasher,
            m.retire_batch
                .map_or(String::new(), |n| format!(", retire batch {n}")),
            m.stop,
            m.threads,
            m.cpus,
            m.seed
        ),
        format!(
            "timer cost (two Instant::now, included in every latency sample): p50 {} ns, p99 {} ns; one op in {} is timed",
            m.timer_p50_ns,
            m.timer_p99_ns,
            crate::runner::SAMPLE_EVERY
        ),
    ];
    if m.rounds > 1 {
        v.push(format!(
            "{} rounds per cell, maps in rotating order; each row is the median round by \
             throughput (its latencies and allocations too), with the slowest and fastest \
             rounds' Mops/s in brackets; `vs best` and `vs frozen` compare medians",
            m.rounds
        ));
    }
    if let Some(h) = harness_text(&res.rows) {
        v.push(h);
    }
    if !m.alloc_counting {
        v.push("allocation counting unavailable (counting allocator not installed)".into());
    }
    v
}

/// The terminal report.
pub fn table(res: &Results) -> String {
    let mut out = String::new();
    for l in preamble(res) {
        let _ = writeln!(out, "{l}");
    }
    for (w, d) in groups(&res.rows) {
        let _ = writeln!(out, "\n== {} [{d}]", workload_line(&w));
        out.push_str(&render(&CELL_HEADERS, &cell_rows(&res.rows, &w, &d), false));
    }
    if res.rows.iter().any(|r| r.truncated) {
        let _ = writeln!(
            out,
            "\n* cut short by the time cap; throughput is over the operations done"
        );
    }
    if few_samples(res) {
        let _ = writeln!(out, "\n{FEW_SAMPLES}");
    }
    if !res.skipped.is_empty() {
        let _ = writeln!(out, "\nskipped:");
        for (reason, cells) in skipped_groups(res) {
            let _ = writeln!(out, "  {reason} ({cells} cells)");
        }
    }
    if !res.claim.is_empty() {
        let _ = writeln!(
            out,
            "\n== Seed claim (3.2): P99, SyncMap vs RwLock<HashMap>, ttl-cache"
        );
        out.push_str(&render(&CLAIM_HEADERS, &claim_cells(&res.claim), false));
    }
    out
}

fn skipped_groups(res: &Results) -> Vec<(String, usize)> {
    let mut g: Vec<(String, usize)> = Vec::new();
    for s in &res.skipped {
        match g.iter_mut().find(|(r, _)| *r == s.reason) {
            Some(e) => e.1 += 1,
            None => g.push((s.reason.clone(), 1)),
        }
    }
    g
}

const CLAIM_HEADERS: [&str; 6] = [
    "threads",
    "claimed P99 sync/rw ns",
    "claimed cut",
    "measured P99 sync/rw ns",
    "measured cut",
    "holds",
];

fn claim_cells(claim: &[ClaimRow]) -> Vec<Vec<String>> {
    claim
        .iter()
        .map(|c| {
            vec![
                format!(
                    "{}{}",
                    c.threads,
                    if c.oversubscribed { " (>CPUs)" } else { "" }
                ),
                format!("{} / {}", c.claimed_syncmap_p99_ns, c.claimed_rwlock_p99_ns),
                format!("{:.0} %", c.claimed_reduction_pct),
                match (c.measured_syncmap_p99_ns, c.measured_rwlock_p99_ns) {
                    (Some(s), Some(r)) => format!("{s} / {r}"),
                    _ => "-".into(),
                },
                opt(c.measured_reduction_pct, 0, " %"),
                c.holds
                    .map_or("-".into(), |h| if h { "yes" } else { "no" }.into()),
            ]
        })
        .collect()
}

/// Rows where SyncMap (pin per call) is slower than the best candidate that is not one of
/// readmostly's own maps:
/// `(row of syncmap, row of the winner)`, worst ratio first.
pub fn losses(rows: &[Row]) -> Vec<(&Row, &Row)> {
    let mut v = Vec::new();
    for s in rows.iter().filter(|r| r.map == "syncmap") {
        let best = rivals(rows, s).max_by(|a, b| a.mops.total_cmp(&b.mops));
        if let Some(b) = best {
            if b.mops > s.mops {
                v.push((s, b));
            }
        }
    }
    v.sort_by(|a, b| (a.0.mops / a.1.mops).total_cmp(&(b.0.mops / b.1.mops)));
    v
}

/// The other candidates measured in `s`'s cell (same workload, distribution and thread
/// count): neither a reference map nor one of ours.
fn rivals<'r>(rows: &'r [Row], s: &'r Row) -> impl Iterator<Item = &'r Row> {
    rows.iter().filter(move |o| {
        o.workload == s.workload
            && o.dist == s.dist
            && o.threads == s.threads
            && !is_reference(&o.map)
            && !crate::adapters::MapKind::parse(&o.map)
                .is_some_and(crate::adapters::MapKind::is_ours)
    })
}

/// One BRIEF §3 target: `(description, measured text, met?)`.
pub fn targets(rows: &[Row]) -> Vec<(String, String, Option<bool>)> {
    let max_t = rows.iter().map(|r| r.threads).max().unwrap_or(0);
    let find = |map: &str, w: &str| {
        rows.iter()
            .find(|r| r.map == map && r.workload == w && r.dist == "uniform" && r.threads == max_t)
    };
    let ratio = |a: &str, b: &str, w: &str, min: f64| {
        let desc = format!("{w}: {a} >= {min:.2}x {b}");
        match (find(a, w), find(b, w)) {
            (Some(x), Some(y)) if y.mops > 0.0 => {
                let r = x.mops / y.mops;
                (desc, format!("{r:.2}x"), Some(r >= min))
            }
            _ => (desc, "not run".into(), None),
        }
    };
    let mut t = vec![
        ratio("syncmap", "scc-hashindex", "read100", 1.1),
        ratio("syncmap-batch", "frozen-std", "read100", 0.85),
        ratio("syncmap-each", "frozen-std", "read100", 0.85),
        ratio("syncmap", "scc-hashindex", "read99", 1.2),
        ratio("syncmap", "scc-hashindex", "read95", 1.0),
        ratio("syncmap", "scc-hashindex", "write50", 1.5),
        ratio("syncmap", "dashmap", "churn10", 1.0),
        ratio("sharded", "scc-hashmap", "churn10", 1.0),
    ];
    t.push(match find("syncmap", "read99") {
        Some(r) if !r.has_p99() => (
            "read99: syncmap P99 <= 500 ns".into(),
            format!("{} latency samples: too few", r.samples),
            None,
        ),
        Some(r) => (
            "read99: syncmap P99 <= 500 ns".into(),
            format!("{} ns", r.p99_ns),
            Some(r.p99_ns <= 500),
        ),
        None => (
            "read99: syncmap P99 <= 500 ns".into(),
            "not run".into(),
            None,
        ),
    });
    t.push(
        match find("syncmap", "read100").and_then(|r| r.allocs_per_op) {
            Some(a) => (
                "read100: syncmap allocations per get = 0".into(),
                format!("{a:.4}"),
                Some(a == 0.0),
            ),
            None => (
                "read100: syncmap allocations per get = 0".into(),
                "not measured".into(),
                None,
            ),
        },
    );
    let bpk = find("syncmap", "read100")
        .filter(|r| r.value == "u64")
        .and_then(|r| r.bytes_per_key);
    t.push(match bpk {
        Some(b) => (
            "syncmap bytes per key (u64 -> u64) <= 64".into(),
            format!("{b:.1}"),
            Some(b <= 64.0),
        ),
        None => (
            "syncmap bytes per key (u64 -> u64) <= 64".into(),
            "not measured".into(),
            None,
        ),
    });
    t
}

/// The Markdown report; `plots` are `(workload, dist, throughput svg, latency svg)` paths
/// relative to the report.
pub fn markdown(res: &Results, plots: &[(String, String, String, String)]) -> String {
    let mut out = String::new();
    let m = &res.meta;
    let _ = writeln!(out, "# readmostly-bench results\n");
    let _ = writeln!(out, "Command: `{}`\n", m.command);
    let _ = writeln!(
        out,
        "readmostly-bench {} on {} ({} logical CPUs), started at Unix time {}.\n",
        m.version, m.platform, m.cpus, m.started_unix
    );
    for l in preamble(res) {
        let _ = writeln!(out, "- {l}");
    }
    let _ = writeln!(
        out,
        "- Mops/s: million operations per second, all threads together. `vs best`: against the fastest \
         candidate (frozen-std and noop excluded) in the same workload and thread count. `vs frozen`: against \
         a HashMap shared without synchronisation (read-only workloads). Latencies are of one operation in {} \
         and include the timer. `B/key`: live heap bytes per key after prefill and one read of each key. \
         `*`: cut short by the time cap.",
        crate::runner::SAMPLE_EVERY
    );
    if few_samples(res) {
        let _ = writeln!(out, "{FEW_SAMPLES}.");
    }
    let claim = if res.claim_rows.is_empty() {
        ""
    } else {
        ", [claim.csv](claim.csv)"
    };
    let _ = writeln!(
        out,
        "- Files: [results.csv](results.csv), [results.json](results.json){claim}, plots in [plots/](plots/).\n"
    );

    let _ = writeln!(out, "## Results by workload\n");
    for (w, d) in groups(&res.rows) {
        let _ = writeln!(out, "### {w} ({d})\n");
        if let Some(wl) = Workload::by_name(&w) {
            let _ = writeln!(out, "{}. Mix: {}.\n", wl.about, wl.mix_text());
        }
        out.push_str(&render(&CELL_HEADERS, &cell_rows(&res.rows, &w, &d), true));
        if let Some((_, _, tp, lat)) = plots.iter().find(|p| p.0 == w && p.1 == d) {
            let _ = writeln!(
                out,
                "\n![{w} {d} throughput]({tp}) ![{w} {d} latency]({lat})"
            );
        }
        out.push('\n');
    }

    let _ = writeln!(out, "## Where SyncMap loses\n");
    let l = losses(&res.rows);
    let compared = res
        .rows
        .iter()
        .any(|s| s.map == "syncmap" && rivals(&res.rows, s).next().is_some());
    if !compared {
        let _ = writeln!(
            out,
            "Not measured: this run has no cell with both SyncMap (`syncmap`) and another candidate.\n"
        );
    } else if l.is_empty() {
        let _ = writeln!(
            out,
            "In this run SyncMap (pin per call) was never slower than the best other candidate.\n"
        );
    } else {
        let rows: Vec<Vec<String>> = l
            .iter()
            .map(|(s, b)| {
                vec![
                    s.workload.clone(),
                    s.dist.clone(),
                    s.threads.to_string(),
                    format!("{:.2}", s.mops),
                    b.map.clone(),
                    format!("{:.2}", b.mops),
                    format!("{:.2}x", s.mops / b.mops),
                    format!(
                        "{} / {}",
                        tail_quantile(s.p99_ns, s.has_p99()),
                        tail_quantile(b.p99_ns, b.has_p99())
                    ),
                ]
            })
            .collect();
        out.push_str(&render(
            &[
                "workload",
                "dist",
                "threads",
                "syncmap Mops/s",
                "winner",
                "winner Mops/s",
                "ratio",
                "P99 ns syncmap / winner",
            ],
            &rows,
            true,
        ));
        out.push('\n');
    }

    let _ = writeln!(
        out,
        "## Targets (design brief §3), at the highest thread count run\n"
    );
    let t: Vec<Vec<String>> = targets(&res.rows)
        .into_iter()
        .map(|(d, m, ok)| {
            vec![
                d,
                m,
                ok.map_or("-".into(), |b| if b { "met" } else { "missed" }.into()),
            ]
        })
        .collect();
    out.push_str(&render(&["target", "measured", "status"], &t, true));
    let _ = writeln!(
        out,
        "\nThe brief's targets are set at 16 threads; on a machine with fewer CPUs these ratios are indicative only.\n"
    );

    if !res.claim.is_empty() {
        let _ = writeln!(
            out,
            "## Seed claim: P99 of sync.Map vs RWMutex + map (seed 3.2)\n"
        );
        let _ = writeln!(
            out,
            "The seed claims that in a TTL-less temporary cache sync.Map's P99 latency is 44 % / 69 % / 86 % lower \
             than RWMutex + map at 8 / 64 / 256 goroutines. Measured here with `SyncMap` (pin per call) against \
             `RwLock<HashMap>` on the `ttl-cache` workload ({}), same harness.\n",
            Workload::by_name(crate::suite::CLAIM_WORKLOAD).map_or(String::new(), |w| w.mix_text())
        );
        out.push_str(&render(&CLAIM_HEADERS, &claim_cells(&res.claim), true));
        if res.claim.iter().any(|c| c.oversubscribed) {
            let _ = writeln!(
                out,
                "\n`(>CPUs)`: more threads than CPUs; tail latencies then include time a thread spent \
                 descheduled, for both maps."
            );
        }
        out.push('\n');
    }

    if !res.skipped.is_empty() {
        let _ = writeln!(out, "## Skipped cells\n");
        for (reason, n) in skipped_groups(res) {
            let _ = writeln!(out, "- {reason} ({n} cells)");
        }
        out.push('\n');
    }

    let stats: Vec<&Row> = res.rows.iter().filter(|r| r.map_stats.is_some()).collect();
    if !stats.is_empty() {
        let _ = writeln!(out, "## SyncMap statistics after each run\n");
        for r in stats {
            let _ = writeln!(
                out,
                "- {} {} {} t={}: `{}`",
                r.map,
                r.workload,
                r.dist,
                r.threads,
                r.map_stats.as_deref().unwrap_or("")
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_aligns_and_marks_down() {
        let rows = vec![
            vec!["a".to_string(), "1".into()],
            vec!["bbb".into(), "22".into()],
        ];
        let t = render(&["map", "n"], &rows, false);
        assert_eq!(t, "map   n\na     1\nbbb  22\n");
        let m = render(&["map", "n"], &rows, true);
        assert!(m.starts_with("| map | n |\n| --- | ---: |\n| a | 1 |"));
    }

    #[test]
    fn tail_quantiles_need_enough_samples() {
        let mut r = crate::record::test_row("syncmap", 1, 1.0);
        let (p99, p999) = (CELL_HEADERS.len() - 5, CELL_HEADERS.len() - 4);
        assert_eq!(
            (CELL_HEADERS[p99], CELL_HEADERS[p999]),
            ("p99 ns", "p999 ns")
        );
        for (samples, want) in [(3, ["-", "-"]), (100, ["2", "-"]), (1000, ["2", "3"])] {
            r.samples = samples;
            let cells = cell_rows(std::slice::from_ref(&r), "read100", "uniform");
            assert_eq!([cells[0][p99].as_str(), cells[0][p999].as_str()], want);
        }
    }
}
