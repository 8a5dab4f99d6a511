//! Result rows and their CSV / JSON forms.
//!
//! The first nine CSV columns are those of the anchor files in `shared/anchors/`
//! (`map,workload,dist,threads,keys,mops,p50_ns,p99_ns,p999_ns`), so results can be compared
//! with them directly.

use std::fs;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::runner::{CellSpec, Measurement};
use crate::Error;

/// One measured cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Map name.
    pub map: String,
    /// Workload name.
    pub workload: String,
    /// Key distribution.
    pub dist: String,
    /// Worker threads.
    pub threads: usize,
    /// Prefilled keys.
    pub keys: u64,
    /// Million operations per second, all threads.
    pub mops: f64,
    /// Median sampled latency, ns.
    pub p50_ns: u64,
    /// 99th percentile latency, ns.
    pub p99_ns: u64,
    /// 99.9th percentile latency, ns.
    pub p999_ns: u64,
    /// Largest sample, ns.
    pub max_ns: u64,
    /// Value type.
    pub value: String,
    /// Hasher.
    pub hasher: String,
    /// Operations in the timed region (all threads).
    pub ops: u64,
    /// Seconds of the timed region.
    pub secs: f64,
    /// Latency samples.
    pub samples: usize,
    /// Heap allocations per operation.
    pub allocs_per_op: Option<f64>,
    /// Live heap bytes per key after prefill.
    pub bytes_per_key: Option<f64>,
    /// Share of gets that hit.
    pub hit_rate: Option<f64>,
    /// Whether the time cap cut the cell short.
    pub truncated: bool,
    /// Throughput relative to the best candidate map (frozen and noop excluded) in the same
    /// workload / distribution / thread count.
    pub vs_best: Option<f64>,
    /// Throughput relative to the frozen map (read-only workloads).
    pub vs_frozen: Option<f64>,
    /// Map statistics after the run (SyncMap).
    pub map_stats: Option<String>,
    /// Runs of the cell (`--rounds`); the other figures are those of the median run
    /// ([`median_run`](crate::suite::median_run)).
    #[serde(default = "one")]
    pub rounds: usize,
    /// Throughput of the slowest run, Mops/s (equal to `mops` for one run; `None` in
    /// results written before `--rounds` existed).
    #[serde(default)]
    pub mops_min: Option<f64>,
    /// Throughput of the fastest run, Mops/s.
    #[serde(default)]
    pub mops_max: Option<f64>,
    /// `--retire-batch` given to readmostly's maps (their rows only; `None`: the
    /// library's default, or another map).
    #[serde(default)]
    pub retire_batch: Option<usize>,
}

fn one() -> usize {
    1
}

impl Row {
    /// Whether the cell has the 100 latency samples its p99 needs to mean more than
    /// the largest sample.
    pub fn has_p99(&self) -> bool {
        self.samples >= 100
    }

    /// Whether the cell has the 1000 latency samples its p99.9 needs (nearest rank: with
    /// fewer, it is the largest sample).
    pub fn has_p999(&self) -> bool {
        self.samples >= 1000
    }

    /// The row of cell `c` that measured `m` (relative columns filled later by
    /// [`fill_relative`]).
    pub fn new(c: &CellSpec, m: &Measurement) -> Row {
        Row {
            map: c.map.name().into(),
            workload: c.workload.name.clone(),
            dist: c.dist.name().into(),
            threads: c.threads,
            keys: c.keys,
            mops: m.mops,
            p50_ns: m.p50_ns,
            p99_ns: m.p99_ns,
            p999_ns: m.p999_ns,
            max_ns: m.max_ns,
            value: c.value.name().into(),
            hasher: c.hasher.name().into(),
            ops: m.ops,
            secs: m.secs,
            samples: m.samples,
            allocs_per_op: m.allocs_per_op,
            bytes_per_key: m.bytes_per_key,
            hit_rate: m.hit_rate,
            truncated: m.truncated,
            vs_best: None,
            vs_frozen: None,
            map_stats: m.map_stats.clone(),
            rounds: 1,
            mops_min: Some(m.mops),
            mops_max: Some(m.mops),
            retire_batch: c.options.retire_batch.filter(|_| c.map.is_ours()),
        }
    }

    /// Records the throughputs of all runs of the cell (this row's run among them).
    pub fn set_rounds(&mut self, mops: impl IntoIterator<Item = f64>) {
        let (mut n, mut lo, mut hi) = (0, f64::INFINITY, f64::NEG_INFINITY);
        for m in mops {
            n += 1;
            lo = lo.min(m);
            hi = hi.max(m);
        }
        if n > 0 {
            (self.rounds, self.mops_min, self.mops_max) = (n, Some(lo), Some(hi));
        }
    }

    fn same_cell(&self, other: &Row) -> bool {
        self.workload == other.workload && self.dist == other.dist && self.threads == other.threads
    }
}

/// Fills `vs_best` and `vs_frozen` for every row.
pub fn fill_relative(rows: &mut [Row]) {
    let snapshot = rows.to_vec();
    for r in rows.iter_mut() {
        let best = snapshot
            .iter()
            .filter(|o| o.same_cell(r) && !is_reference(&o.map))
            .map(|o| o.mops)
            .fold(0.0f64, f64::max);
        r.vs_best = (best > 0.0 && !is_reference(&r.map)).then(|| r.mops / best);
        r.vs_frozen = snapshot
            .iter()
            .find(|o| o.same_cell(r) && o.map == "frozen-std")
            .filter(|f| f.mops > 0.0 && r.map != "noop")
            .map(|f| r.mops / f.mops);
    }
}

/// Whether `map` is a reference point (frozen limit, no-op) rather than a candidate.
pub fn is_reference(map: &str) -> bool {
    map == "frozen-std" || map == "noop"
}

/// A cell that was not run, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    /// Map name.
    pub map: String,
    /// Workload name.
    pub workload: String,
    /// Key distribution.
    pub dist: String,
    /// Threads.
    pub threads: usize,
    /// Reason.
    pub reason: String,
}

/// The seed's P99 claim at one thread count, claimed against measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimRow {
    /// Threads (the seed's goroutines).
    pub threads: usize,
    /// Seed: sync.Map P99, ns.
    pub claimed_syncmap_p99_ns: u64,
    /// Seed: RWMutex + map P99, ns.
    pub claimed_rwlock_p99_ns: u64,
    /// Seed: P99 reduction, percent.
    pub claimed_reduction_pct: f64,
    /// Measured: SyncMap P99, ns.
    pub measured_syncmap_p99_ns: Option<u64>,
    /// Measured: RwLock<HashMap> P99, ns.
    pub measured_rwlock_p99_ns: Option<u64>,
    /// Measured P99 reduction, percent (positive: SyncMap lower).
    pub measured_reduction_pct: Option<f64>,
    /// Whether the measured reduction is at least the claimed one.
    pub holds: Option<bool>,
    /// Threads exceed the CPUs (tails then include scheduler preemption).
    pub oversubscribed: bool,
}

/// Run settings recorded with the results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// Tool version.
    pub version: String,
    /// The command line.
    pub command: String,
    /// Logical CPUs.
    pub cpus: usize,
    /// `os/arch`.
    pub platform: String,
    /// Seconds since the Unix epoch at the start.
    pub started_unix: u64,
    /// Prefilled keys.
    pub keys: u64,
    /// Value type.
    pub value: String,
    /// Payload bytes of heap values.
    pub value_size: usize,
    /// Hasher.
    pub hasher: String,
    /// `--retire-batch` given to readmostly's maps (`None`: the library's default).
    #[serde(default)]
    pub retire_batch: Option<usize>,
    /// When a cell stops: `N ops per thread (cap X s per cell)` or `X s per cell`.
    pub stop: String,
    /// Thread counts.
    pub threads: Vec<usize>,
    /// Seed.
    pub seed: u64,
    /// Runs of every main cell (`--rounds`).
    #[serde(default = "one")]
    pub rounds: usize,
    /// Median cost of one timer reading pair, ns (included in every latency sample).
    pub timer_p50_ns: u64,
    /// 99th percentile of the timer pair, ns.
    pub timer_p99_ns: u64,
    /// Whether allocation figures were measured.
    pub alloc_counting: bool,
}

/// Everything a `compare` run produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// Settings.
    pub meta: Meta,
    /// Measured cells.
    pub rows: Vec<Row>,
    /// Cells not run.
    pub skipped: Vec<Skipped>,
    /// Cells of the P99 claim run (ttl-cache, syncmap vs rwlock-std).
    pub claim_rows: Vec<Row>,
    /// The claim, side by side.
    pub claim: Vec<ClaimRow>,
}

/// The CSV header (the field names of [`Row`]).
pub const CSV_HEADER: &str = "map,workload,dist,threads,keys,mops,p50_ns,p99_ns,p999_ns,max_ns,value,hasher,ops,secs,samples,allocs_per_op,bytes_per_key,hit_rate,truncated,vs_best,vs_frozen,map_stats,rounds,mops_min,mops_max,retire_batch";

/// Rows as CSV text (header included).
pub fn to_csv(rows: &[Row]) -> Result<String, Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r)
            .map_err(|e| Error::msg(format!("CSV: {e}")))?;
    }
    if rows.is_empty() {
        return Ok(format!("{CSV_HEADER}\n"));
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::msg(format!("CSV: {e}")))?;
    String::from_utf8(bytes).map_err(|e| Error::msg(format!("CSV: {e}")))
}

/// Results as pretty JSON.
pub fn to_json(results: &Results) -> Result<String, Error> {
    serde_json::to_string_pretty(results).map_err(|e| Error::msg(format!("JSON: {e}")))
}

/// Writes `text` to `path`, with a one-line error naming the file.
pub fn write_file(path: &Path, text: &str) -> Result<(), Error> {
    let mut f = fs::File::create(path)
        .map_err(|e| Error::msg(format!("cannot write {}: {e}", path.display())))?;
    f.write_all(text.as_bytes())
        .map_err(|e| Error::msg(format!("cannot write {}: {e}", path.display())))
}

/// A row with made-up figures, for tests.
#[cfg(test)]
pub(crate) fn test_row(map: &str, threads: usize, mops: f64) -> Row {
    Row {
        map: map.into(),
        workload: "read100".into(),
        dist: "uniform".into(),
        threads,
        keys: 10,
        mops,
        p50_ns: 1,
        p99_ns: 2,
        p999_ns: 3,
        max_ns: 4,
        value: "u64".into(),
        hasher: "foldhash".into(),
        ops: 100,
        secs: 1.0,
        samples: 3,
        allocs_per_op: None,
        bytes_per_key: Some(40.0),
        hit_rate: Some(1.0),
        truncated: false,
        vs_best: None,
        vs_frozen: None,
        map_stats: Some("Stats { hits: 1, \"x\" }".into()),
        rounds: 1,
        mops_min: Some(mops),
        mops_max: Some(mops),
        retire_batch: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::test_row as row;

    #[test]
    fn relative_columns() {
        let mut rows = vec![
            row("syncmap", 1, 50.0),
            row("dashmap", 1, 100.0),
            row("frozen-std", 1, 200.0),
            row("noop", 1, 400.0),
            row("syncmap", 2, 10.0),
        ];
        fill_relative(&mut rows);
        assert_eq!(rows[0].vs_best, Some(0.5));
        assert_eq!(rows[1].vs_best, Some(1.0));
        assert_eq!(rows[0].vs_frozen, Some(0.25));
        assert_eq!(rows[2].vs_best, None);
        assert_eq!(rows[3].vs_frozen, None);
        assert_eq!(rows[4].vs_best, Some(1.0));
        assert_eq!(rows[4].vs_frozen, None);
    }

    #[test]
    fn csv_round_trips_with_quoting() {
        let rows = vec![row("syncmap", 1, 1.5), row("dashmap", 2, 2.5)];
        let text = to_csv(&rows).unwrap();
        assert!(text.starts_with(CSV_HEADER));
        assert_eq!(to_csv(&[]).unwrap().trim(), CSV_HEADER);
        let mut rd = csv::Reader::from_reader(text.as_bytes());
        let back: Vec<Row> = rd.deserialize().collect::<Result<_, _>>().unwrap();
        assert_eq!(back, rows);
    }
}
