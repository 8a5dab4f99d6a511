//! The `readmostly-bench` binary: argument handling, bad input, and the files it writes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_readmostly-bench"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh, empty directory under the system temp dir.
fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "readmostly-bench-test-{}-{tag}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs a command that must succeed; its standard output.
fn stdout_ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
}

/// Runs a command that prints CSV (`--format csv`): its header and records.
fn run_csv(args: &[&str]) -> (csv::StringRecord, Vec<csv::StringRecord>) {
    let text = stdout_ok(args);
    let mut rd = csv::Reader::from_reader(text.as_bytes());
    let headers = rd.headers().unwrap().clone();
    (headers, rd.records().map(Result::unwrap).collect())
}

/// The index of column `name`.
fn column(headers: &csv::StringRecord, name: &str) -> usize {
    headers.iter().position(|h| h == name).unwrap()
}

/// Tiny settings so that a run takes well under a second.
const TINY: &[&str] = &["--keys", "256", "--ops", "2000", "--no-progress"];

/// Asserts a one-line error on stderr, exit status 2, no panic, and returns the line.
fn assert_usage_error(args: &[&str]) -> String {
    let o = run(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "args {args:?}: stderr {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line for {args:?}: {err}"
    );
    assert!(err.starts_with("error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(o.stdout.is_empty(), "nothing on stdout for {args:?}");
    err
}

#[test]
fn help_and_version() {
    let o = run(&["--help"]);
    assert!(o.status.success());
    let h = stdout(&o);
    for s in [
        "compare",
        "advise",
        "list",
        "--threads",
        "--ops",
        "--duration",
        "--rounds",
        "--workloads",
        "--maps",
        "--format",
        "--out",
    ] {
        assert!(h.contains(s), "help mentions {s}");
    }
    for sub in ["compare", "advise", "list"] {
        let o = run(&[sub, "--help"]);
        assert!(o.status.success(), "{sub} --help");
    }
    let o = run(&["advise", "--help"]);
    for s in [
        "--read",
        "--overwrite",
        "--insert",
        "--remove",
        "--scenario",
        "--keys",
        "--dist",
        "--value-size",
    ] {
        assert!(stdout(&o).contains(s), "advise help mentions {s}");
    }
    let o = run(&["--version"]);
    assert!(o.status.success() && stdout(&o).contains("readmostly-bench"));
}

#[test]
fn list_names_every_map_and_workload() {
    let o = run(&["list"]);
    assert!(o.status.success());
    let text = stdout(&o);
    for m in [
        "syncmap",
        "syncmap-batch",
        "rwlock-std",
        "mutex-std",
        "dashmap",
        "papaya",
        "scc-hashmap",
        "scc-hashindex",
        "arcswap-cow",
        "frozen-std",
        "noop",
    ] {
        assert!(text.contains(m), "list shows {m}");
    }
    for w in readmostly_bench::workloads::Workload::names() {
        assert!(text.contains(w), "list shows {w}");
    }
}

#[test]
fn unknown_map_and_workload_name_the_valid_choices() {
    let e = assert_usage_error(&["--maps", "syncmap,hashbrown"]);
    assert!(
        e.contains("unknown map 'hashbrown'")
            && e.contains("scc-hashindex")
            && e.contains("frozen-std"),
        "{e}"
    );
    let e = assert_usage_error(&["compare", "--workloads", "read99,read98"]);
    assert!(
        e.contains("unknown workload 'read98'")
            && e.contains("churn10")
            && e.contains("goi-collide"),
        "{e}"
    );
    let e = assert_usage_error(&["advise", "--scenario", "nope"]);
    assert!(
        e.contains("unknown scenario 'nope'") && e.contains("hot-key"),
        "{e}"
    );
    let e = assert_usage_error(&["--dist", "pareto"]);
    assert!(e.contains("uniform, zipf"), "{e}");
    let e = assert_usage_error(&["--value", "i128"]);
    assert!(e.contains("u64, string, bytes"), "{e}");
    let e = assert_usage_error(&["--hasher", "fx"]);
    assert!(e.contains("foldhash, std"), "{e}");
    let e = assert_usage_error(&["--format", "xml"]);
    assert!(e.contains("table, csv, json"), "{e}");
}

#[test]
fn impossible_thread_counts_are_rejected() {
    for t in ["0", "1,0", "-1", "two", "5000", ""] {
        let e = assert_usage_error(&["--threads", t]);
        assert!(e.contains("--threads"), "{e}");
    }
    let e = assert_usage_error(&["advise", "--read", "100", "--threads", "1,2"]);
    assert!(e.contains("one thread count"), "{e}");
}

#[test]
fn bad_numbers_and_conflicts_are_one_line_errors() {
    assert_usage_error(&["--ops", "lots"]);
    assert_usage_error(&["--ops", "0"]);
    assert_usage_error(&["--keys", "0"]);
    assert_usage_error(&["--duration", "forever"]);
    assert_usage_error(&["--max-time", "-2s"]);
    assert_usage_error(&["--ops", "1000", "--duration", "1s"]);
    assert_usage_error(&["--keys", "10", "--dram"]);
    assert_usage_error(&["--no-such-flag"]);
    assert_usage_error(&["compare", "--claim-ops", "x"]);
    let e = assert_usage_error(&["advise"]);
    assert!(e.contains("--read") && e.contains("--scenario"), "{e}");
    let e = assert_usage_error(&["advise", "--read", "90", "--insert", "5"]);
    assert!(e.contains("add up to 100"), "{e}");
    assert_usage_error(&["advise", "--scenario", "read99", "--read", "100"]);
    // Negative percentages reach our own message (not clap's "unexpected argument").
    let e = assert_usage_error(&["advise", "--read", "-10", "--overwrite", "110"]);
    assert!(e.contains("--read must be a percentage"), "{e}");
    // A duration that rounds to nothing, and maps no machine can hold.
    let e = assert_usage_error(&["--duration", "1e-10"]);
    assert!(e.contains("at least 1ms"), "{e}");
    if cfg!(target_os = "linux") {
        let e = assert_usage_error(&["--keys", "4Gi"]);
        assert!(e.contains("GiB per map"), "{e}");
    }
}

#[test]
fn unwritable_output_folder_fails_before_running() {
    let d = temp_dir("unwritable");
    let file = d.join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let out = file.join("sub");
    let e = assert_usage_error(&[
        "--out",
        out.to_str().unwrap(),
        "--maps",
        "noop",
        "--workloads",
        "read100",
    ]);
    assert!(
        e.contains("cannot write to output folder") && e.contains("a-file"),
        "{e}"
    );
}

fn read_csv(path: &Path) -> Vec<csv::StringRecord> {
    let mut rd = csv::Reader::from_path(path).unwrap();
    let headers = rd.headers().unwrap().clone();
    assert_eq!(
        headers.iter().take(9).collect::<Vec<_>>(),
        ["map", "workload", "dist", "threads", "keys", "mops", "p50_ns", "p99_ns", "p999_ns"],
        "anchor columns first"
    );
    rd.records().map(|r| r.unwrap()).collect()
}

#[test]
fn compare_writes_reports_that_parse() {
    let d = temp_dir("compare");
    let mut args = vec![
        "compare",
        "--threads",
        "1,2",
        "--workloads",
        "read100,read99",
        "--maps",
        "syncmap,dashmap,frozen-std,noop",
        "--no-claim",
        "--out",
    ];
    args.push(d.to_str().unwrap());
    args.extend_from_slice(TINY);
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = stdout(&o);
    assert!(
        table.contains("== read99")
            && table.contains("vs frozen")
            && table.contains("harness overhead"),
        "{table}"
    );

    // 2 workloads x 2 thread counts x 4 maps, minus frozen-std on read99 (it writes).
    let rows = read_csv(&d.join("results.csv"));
    assert_eq!(rows.len(), 14);
    assert!(rows.iter().all(|r| r[5].parse::<f64>().unwrap() > 0.0));

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("results.json")).unwrap()).unwrap();
    assert_eq!(json["rows"].as_array().unwrap().len(), 14);
    assert_eq!(json["skipped"].as_array().unwrap().len(), 2);
    assert_eq!(json["meta"]["keys"], 256);
    assert!(json["meta"]["alloc_counting"].as_bool().unwrap());
    assert!(json["meta"]["timer_p50_ns"].as_u64().is_some());
    let results: readmostly_bench::record::Results =
        serde_json::from_str(&std::fs::read_to_string(d.join("results.json")).unwrap()).unwrap();
    let sync_read100 = results
        .rows
        .iter()
        .find(|r| r.map == "syncmap" && r.workload == "read100" && r.threads == 1)
        .unwrap();
    assert!(sync_read100.vs_frozen.is_some() && sync_read100.vs_best.is_some());
    assert!(sync_read100.map_stats.is_some());
    assert!(sync_read100.bytes_per_key.unwrap() > 8.0);

    let report = std::fs::read_to_string(d.join("report.md")).unwrap();
    for s in [
        "# readmostly-bench results",
        "### read100 (uniform)",
        "## Where SyncMap loses",
        "## Targets",
        "results.csv",
        "plots/read99-uniform-throughput.svg",
    ] {
        assert!(report.contains(s), "report has {s}");
    }
    for p in [
        "read100-uniform-throughput",
        "read100-uniform-latency",
        "read99-uniform-throughput",
        "read99-uniform-latency",
    ] {
        let svg = std::fs::read_to_string(d.join("plots").join(format!("{p}.svg"))).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("syncmap"), "{p}");
    }
}

#[test]
fn csv_and_json_go_to_stdout() {
    let mut args = vec![
        "--maps",
        "mutex-std,scc-hashmap",
        "--workloads",
        "churn10",
        "--threads",
        "2",
        "--no-files",
        "--no-claim",
        "--format",
        "csv",
    ];
    args.extend_from_slice(TINY);
    assert_eq!(run_csv(&args).1.len(), 2);

    let last = args.len() - TINY.len() - 1;
    args[last] = "json";
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    // churn10 reads range over twice the key space: about half hit.
    for r in rows {
        let h = r["hit_rate"].as_f64().unwrap();
        assert!((0.3..0.7).contains(&h), "hit rate {h}");
    }
}

#[test]
fn rounds_report_the_median_run_and_the_range() {
    let mut args = vec![
        "--maps",
        "syncmap,dashmap,frozen-std",
        "--workloads",
        "read100,write50",
        "--threads",
        "1",
        "--rounds",
        "3",
        "--no-files",
        "--no-claim",
        "--format",
        "csv",
    ];
    args.extend_from_slice(TINY);
    let (headers, records) = run_csv(&args);
    let col = |name: &str| column(&headers, name);
    let (mops, rounds, lo, hi) = (col("mops"), col("rounds"), col("mops_min"), col("mops_max"));
    // 2 workloads x 3 maps, minus frozen-std on write50; a skipped cell is not retried.
    assert_eq!(records.len(), 5);
    for r in &records {
        let f = |i: usize| r[i].parse::<f64>().unwrap();
        assert_eq!(&r[rounds], "3", "{r:?}");
        assert!(f(lo) <= f(mops) && f(mops) <= f(hi) && f(lo) > 0.0, "{r:?}");
    }

    let last = args.len() - TINY.len() - 1;
    args[last] = "table";
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = stdout(&o);
    assert!(table.contains("3 rounds per cell"), "{table}");
    let line = table
        .lines()
        .find(|l| l.starts_with("dashmap"))
        .expect("a dashmap row");
    assert!(
        line.contains('(') && line.contains('–'),
        "range shown: {line}"
    );

    // The skipped cell (frozen-std cannot write) was tried once, not once per round.
    args[last] = "json";
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["meta"]["rounds"], 3);
    let skipped = v["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0]["map"], "frozen-std");

    let e = assert_usage_error(&["--rounds", "0"]);
    assert!(e.contains("--rounds"), "{e}");
    assert_usage_error(&["--rounds", "many"]);
    assert_usage_error(&["advise", "--read", "100", "--rounds", "101"]);
}

#[test]
fn duration_mode_runs() {
    let o = run(&[
        "--maps",
        "papaya",
        "--workloads",
        "insert-after-promote",
        "--threads",
        "1",
        "--duration",
        "50ms",
        "--keys",
        "256",
        "--no-files",
        "--no-claim",
        "--format",
        "json",
        "--no-progress",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["rows"][0]["secs"].as_f64().unwrap() >= 0.04);
    assert!(v["meta"]["stop"].as_str().unwrap().contains("per cell"));
}

#[test]
fn claim_section_compares_claimed_and_measured() {
    let d = temp_dir("claim");
    let o = run(&[
        "--maps",
        "noop",
        "--workloads",
        "read100",
        "--threads",
        "1",
        "--claim-ops",
        "1",
        "--keys",
        "256",
        "--ops",
        "1000",
        "--no-progress",
        "--out",
        d.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Seed claim"));
    let claim = read_csv(&d.join("claim.csv"));
    assert_eq!(
        claim.len(),
        6,
        "syncmap and rwlock-std at 8, 64, 256 threads"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("results.json")).unwrap()).unwrap();
    let c = v["claim"].as_array().unwrap();
    assert_eq!(c.len(), 3);
    assert_eq!(c[0]["threads"], 8);
    assert_eq!(c[1]["claimed_reduction_pct"], 69.0);
    assert!(c[2]["measured_reduction_pct"].as_f64().is_some());
    let report = std::fs::read_to_string(d.join("report.md")).unwrap();
    assert!(report.contains("## Seed claim") && report.contains("44 %"));
}

#[test]
fn advise_recommends_with_reasons() {
    let mut args = vec![
        "advise",
        "--read",
        "90",
        "--insert",
        "5",
        "--remove",
        "5",
        "--threads",
        "2",
        "--maps",
        "syncmap,scc-hashmap,dashmap",
    ];
    args.extend_from_slice(TINY);
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("Recommendation: Use "), "{text}");
    // The new-key rate is a reason whichever map wins (the wording depends on whether a
    // readmostly map or a peer came out ahead, which this tiny noisy run cannot fix).
    assert!(text.contains("new-key rate is"), "{text}");
    assert!(text.contains("2.5 % of operations"), "{text}");
    for m in ["syncmap", "scc-hashmap", "dashmap"] {
        assert!(text.contains(m));
    }

    let mut args = vec![
        "advise",
        "--scenario",
        "config-snapshot",
        "--threads",
        "1",
        "--format",
        "json",
        "--maps",
        "syncmap,rwlock-std",
    ];
    args.extend_from_slice(TINY);
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["workload"], "config-snapshot");
    assert_eq!(v["rows"].as_array().unwrap().len(), 2);
    assert!(v["recommended"].is_string());
    assert!(v["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r.as_str().unwrap().contains("one thread")));
}

#[test]
fn retire_batch_reaches_readmostly_maps() {
    // write50 on 256 keys, 1 thread: each key is overwritten about four times, once
    // every ~500 operations. With a batch of 64 objects a key's old values are reclaimed
    // before it is written again and their in-block slots reused, so overwrites allocate
    // almost nothing (the collector's batch, once per 64 retirements); with a batch
    // larger than the run nothing is reclaimed and, once both slots of a key are busy,
    // every overwrite boxes its value. So the allocation rate shows the setting reached
    // the map.
    let allocs = |batch: &str| {
        let line = format!(
            "--maps syncmap,sharded,dashmap --workloads write50 --threads 1 --retire-batch \
             {batch} --no-files --no-claim --format csv"
        );
        let mut args: Vec<&str> = line.split_whitespace().collect();
        args.extend_from_slice(TINY);
        let (headers, records) = run_csv(&args);
        let col = |name: &str| column(&headers, name);
        let (map, rate, recorded) = (col("map"), col("allocs_per_op"), col("retire_batch"));
        records
            .into_iter()
            .map(|r| {
                let rate: f64 = r[rate].parse().unwrap();
                (r[map].to_string(), rate, r[recorded].to_string())
            })
            .collect::<Vec<_>>()
    };
    let small = allocs("64");
    let large = allocs("1048576");
    for (rows, batch) in [(&small, "64"), (&large, "1048576")] {
        for (map, _, recorded) in rows.iter() {
            let expected = if map == "dashmap" { "" } else { batch };
            assert_eq!(recorded, expected, "{map}: recorded batch");
        }
    }
    for map in ["syncmap", "sharded"] {
        let rate = |rows: &[(String, f64, String)]| rows.iter().find(|r| r.0 == map).unwrap().1;
        assert!(
            rate(&small) < 0.15 && rate(&large) > 0.3,
            "{map}: allocations per op with batch 64: {}, with batch 1Mi: {}",
            rate(&small),
            rate(&large)
        );
    }

    // The setting is reported: table, JSON, and advise's header and reasons.
    let tiny = |line: &'static str| -> Vec<&'static str> {
        line.split_whitespace()
            .chain(TINY.iter().copied())
            .collect()
    };
    let compare = "--maps syncmap --workloads read100 --threads 1 --retire-batch 4096 \
                   --no-files --no-claim";
    let text = stdout_ok(&tiny(compare));
    assert!(text.contains("retire batch 4096"), "{text}");
    let mut args = tiny(compare);
    args.extend_from_slice(&["--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout_ok(&args)).unwrap();
    assert_eq!(v["meta"]["retire_batch"], 4096);
    let text = stdout_ok(&tiny(
        "advise --read 50 --overwrite 50 --threads 1 --maps syncmap,dashmap --retire-batch 4096",
    ));
    assert!(text.contains("u64 values, retire batch 4096"), "{text}");
    assert!(text.contains("this run used a batch of 4096"), "{text}");

    let e = assert_usage_error(&["--retire-batch", "0"]);
    assert!(e.contains("--retire-batch"), "{e}");
    assert_usage_error(&["--retire-batch", "lots"]);
    assert_usage_error(&["advise", "--read", "90", "--retire-batch", "2097152"]);
}

#[test]
fn progress_is_one_line_per_cell_off_a_terminal() {
    let args = [
        "compare",
        "-m",
        "syncmap",
        "-w",
        "read100",
        "-t",
        "1",
        "--keys",
        "256",
        "--ops",
        "2000",
        "--no-files",
        "--no-claim",
    ];
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("[1/1] read100 uniform t=1 syncmap"),
        "{}",
        stderr(&o)
    );
    let o = run(&[&args[..], &["--no-progress"]].concat());
    assert!(o.status.success() && o.stderr.is_empty(), "{}", stderr(&o));
}
