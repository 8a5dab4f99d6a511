//! Runs a plan of cells (workloads × distributions × threads × maps) with a progress bar,
//! plus the seed's P99 claim, and collects [`Results`].

use std::io::IsTerminal;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::adapters::{HasherKind, MapKind, MapOptions, ValueKind};
use crate::record::{fill_relative, ClaimRow, Meta, Results, Row, Skipped};
use crate::runner::{run_cell, timer_cost, CellSpec, Measurement, Outcome, Stop};
use crate::workloads::{Dist, Workload};

/// The largest thread count of the claim cells ([`SEED_CLAIM`]).
pub const MAX_CLAIM_THREADS: u64 = {
    let mut max = 0;
    let mut i = 0;
    while i < SEED_CLAIM.len() {
        if SEED_CLAIM[i].0 as u64 > max {
            max = SEED_CLAIM[i].0 as u64;
        }
        i += 1;
    }
    max
};

/// The seed's claim (chapter 3.2): P99 of sync.Map vs RWMutex + map in a TTL-less cache,
/// `(goroutines, sync.Map P99 ns, RWMutex+map P99 ns, reduction %)`.
pub const SEED_CLAIM: [(usize, u64, u64, f64); 3] = [
    (8, 82, 147, 44.0),
    (64, 95, 312, 69.0),
    (256, 138, 986, 86.0),
];

/// Workload of the claim run.
pub const CLAIM_WORKLOAD: &str = "ttl-cache";

/// How the claim is measured.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimPlan {
    /// Operations of all threads together per cell (split evenly).
    pub total_ops: u64,
    /// Time cap per cell.
    pub max_time: Duration,
}

/// A full `compare` plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Maps, in report order.
    pub maps: Vec<MapKind>,
    /// Workloads.
    pub workloads: Vec<Workload>,
    /// Distributions.
    pub dists: Vec<Dist>,
    /// Thread counts.
    pub threads: Vec<usize>,
    /// Prefilled keys.
    pub keys: u64,
    /// Value type.
    pub value: ValueKind,
    /// Heap payload bytes.
    pub value_size: usize,
    /// Hasher.
    pub hasher: HasherKind,
    /// Settings of readmostly's maps.
    pub options: MapOptions,
    /// Stop rule per cell.
    pub stop: Stop,
    /// Stream seed.
    pub seed: u64,
    /// The P99 claim run, if wanted.
    pub claim: Option<ClaimPlan>,
    /// Show a progress bar (on a terminal).
    pub progress: bool,
    /// Runs of every cell ([`round_order`]); each row is the median run. At least 1.
    pub rounds: usize,
}

impl Plan {
    /// The main cells, in report order, grouped by workload, distribution and thread count
    /// (the cells compared with each other): one cell per map in each group, in map order.
    pub fn groups(&self) -> Vec<Vec<CellSpec>> {
        let mut groups = Vec::new();
        for w in &self.workloads {
            for &dist in &self.dists {
                for &threads in &self.threads {
                    groups.push(
                        self.maps
                            .iter()
                            .map(|&map| self.cell(map, w.clone(), dist, threads, self.stop))
                            .collect(),
                    );
                }
            }
        }
        groups
    }

    fn cell(
        &self,
        map: MapKind,
        workload: Workload,
        dist: Dist,
        threads: usize,
        stop: Stop,
    ) -> CellSpec {
        CellSpec {
            map,
            workload,
            dist,
            threads,
            keys: self.keys,
            value: self.value,
            value_size: self.value_size,
            hasher: self.hasher,
            options: self.options,
            stop,
            seed: self.seed,
        }
    }

    /// The claim cells: ttl-cache, syncmap and rwlock-std, at the seed's thread counts.
    pub fn claim_cells(&self) -> Vec<CellSpec> {
        let Some(c) = &self.claim else {
            return Vec::new();
        };
        let w = Workload::by_name(CLAIM_WORKLOAD).expect("built-in workload");
        let mut cells = Vec::new();
        for (threads, ..) in SEED_CLAIM {
            let per_thread = (c.total_ops / threads as u64).max(1_000);
            let stop = Stop::Ops {
                per_thread,
                max_time: c.max_time,
            };
            for map in [MapKind::SyncMap, MapKind::RwLockStd] {
                cells.push(self.cell(map, w.clone(), Dist::Uniform, threads, stop));
            }
        }
        cells
    }

    /// A one-line description of the stop rule.
    pub fn stop_text(&self) -> String {
        match self.stop {
            Stop::Ops {
                per_thread,
                max_time,
            } => format!(
                "{per_thread} ops per thread (cap {:.1} s per cell)",
                max_time.as_secs_f64()
            ),
            Stop::Duration { time, .. } => format!("{:.2} s per cell", time.as_secs_f64()),
        }
    }
}

/// The order in which round `round` (from 0) runs the `n` maps of a group: rotated by
/// one place per round, so that over `n` rounds every map runs once in every position
/// (first after the prefill of another map's cell, last before the next group, ...)
/// and a slow or fast spell of a shared machine does not always fall on the same map.
pub fn round_order(n: usize, round: usize) -> impl Iterator<Item = usize> {
    (0..n).map(move |j| (j + round) % n)
}

/// The run of `runs` (one cell's rounds, at least one) that the cell reports: the median
/// by throughput (for an even count, the slower of the two middle runs), so that its
/// latencies and allocation figures come from the same run as its throughput.
pub fn median_run(runs: &[Measurement]) -> &Measurement {
    let mut by_mops: Vec<&Measurement> = runs.iter().collect();
    by_mops.sort_by(|a, b| a.mops.total_cmp(&b.mops));
    by_mops[(by_mops.len() - 1) / 2]
}

/// Runs `plan`; `command` is recorded in the results.
pub fn run(plan: &Plan, command: String) -> Results {
    let started_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let timer = timer_cost(200_000);
    let groups = plan.groups();
    let rounds = plan.rounds.max(1);
    let claim_cells = plan.claim_cells();
    let main_runs: usize = groups.iter().map(Vec::len).sum::<usize>() * rounds;
    let total = (main_runs + claim_cells.len()) as u64;
    let mut bar = Progress::new(plan.progress, total);
    // `round`: `Some(r)` for round `r` (from 0) of a main cell, `None` for a claim cell
    // (run once).
    let label = |c: &CellSpec, round: Option<usize>| {
        format!(
            "{}{} {} t={} {}{}",
            if round.is_none() { "claim: " } else { "" },
            c.workload.name,
            c.dist.name(),
            c.threads,
            c.map.name(),
            match round {
                Some(r) if rounds > 1 => format!(" (round {}/{rounds})", r + 1),
                _ => String::new(),
            }
        )
    };

    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    for group in &groups {
        let mut runs: Vec<Vec<Measurement>> = vec![Vec::new(); group.len()];
        let mut skip = vec![false; group.len()];
        for round in 0..rounds {
            for i in round_order(group.len(), round) {
                let c = &group[i];
                if !skip[i] {
                    bar.start(label(c, Some(round)));
                    match run_cell(c) {
                        Outcome::Done(m) => runs[i].push(m),
                        // Skipped: the map cannot run the workload (the same in every
                        // round), or a worker panicked. Either way the cell is reported
                        // as skipped, with no row from the rounds that did run, and is
                        // not run again.
                        Outcome::Skipped(reason) => {
                            skip[i] = true;
                            runs[i].clear();
                            skipped.push(skipped_cell(c, reason));
                        }
                    }
                }
                bar.inc(1);
            }
        }
        for (c, runs) in group.iter().zip(&runs) {
            if !runs.is_empty() {
                let mut row = Row::new(c, median_run(runs));
                row.set_rounds(runs.iter().map(|m| m.mops));
                rows.push(row);
            }
        }
    }
    let mut claim_rows = Vec::new();
    for c in &claim_cells {
        bar.start(label(c, None));
        match run_cell(c) {
            Outcome::Done(m) => claim_rows.push(Row::new(c, &m)),
            Outcome::Skipped(reason) => skipped.push(skipped_cell(c, reason)),
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    fill_relative(&mut rows);
    fill_relative(&mut claim_rows);
    let cpus = cpus();
    let claim = if plan.claim.is_some() {
        claim_table(&claim_rows, cpus)
    } else {
        Vec::new()
    };
    Results {
        meta: Meta {
            version: env!("CARGO_PKG_VERSION").into(),
            command,
            cpus,
            platform: format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
            started_unix,
            keys: plan.keys,
            value: plan.value.name().into(),
            value_size: plan.value_size,
            hasher: plan.hasher.name().into(),
            retire_batch: plan.options.retire_batch,
            stop: plan.stop_text(),
            threads: plan.threads.clone(),
            seed: plan.seed,
            rounds,
            timer_p50_ns: timer.p50_ns,
            timer_p99_ns: timer.p99_ns,
            alloc_counting: crate::alloc::installed(),
        },
        rows,
        skipped,
        claim_rows,
        claim,
    }
}

fn skipped_cell(c: &CellSpec, reason: String) -> Skipped {
    Skipped {
        map: c.map.name().into(),
        workload: c.workload.name.clone(),
        dist: c.dist.name().into(),
        threads: c.threads,
        reason,
    }
}

/// Progress over a run's cells, on stderr: a bar on a terminal; one line per cell
/// otherwise (a log, a pipe), so a long run shows where it is either way. Drawn only
/// between cells (no ticker thread), so it never competes with the measured threads
/// for a CPU.
enum Progress {
    Bar(ProgressBar),
    Lines { done: u64, total: u64 },
    Off,
}

impl Progress {
    fn new(on: bool, total: u64) -> Self {
        if !on || total == 0 {
            return Progress::Off;
        }
        if !std::io::stderr().is_terminal() {
            return Progress::Lines { done: 0, total };
        }
        let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        b.set_style(
            ProgressStyle::with_template(
                "{bar:32} {pos}/{len} cells  {elapsed_precise} (eta {eta})  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Progress::Bar(b)
    }

    /// A cell named `label` starts.
    fn start(&mut self, label: String) {
        match self {
            Progress::Bar(b) => b.set_message(label),
            Progress::Lines { done, total } => eprintln!("[{}/{total}] {label}", *done + 1),
            Progress::Off => {}
        }
    }

    /// A cell ended (or was skipped).
    fn inc(&mut self, n: u64) {
        match self {
            Progress::Bar(b) => b.inc(n),
            Progress::Lines { done, .. } => *done += n,
            Progress::Off => {}
        }
    }

    fn finish_and_clear(&self) {
        if let Progress::Bar(b) = self {
            b.finish_and_clear();
        }
    }
}

/// Claimed vs measured P99 reduction at each of the seed's thread counts.
pub fn claim_table(claim_rows: &[Row], cpus: usize) -> Vec<ClaimRow> {
    SEED_CLAIM
        .iter()
        .map(|&(threads, c_sync, c_rw, c_pct)| {
            let p99 = |map: &str| {
                claim_rows
                    .iter()
                    .find(|r| r.map == map && r.threads == threads && r.has_p99())
                    .map(|r| r.p99_ns)
            };
            let (s, r) = (p99("syncmap"), p99("rwlock-std"));
            let pct = match (s, r) {
                (Some(s), Some(r)) if r > 0 => Some((1.0 - s as f64 / r as f64) * 100.0),
                _ => None,
            };
            ClaimRow {
                threads,
                claimed_syncmap_p99_ns: c_sync,
                claimed_rwlock_p99_ns: c_rw,
                claimed_reduction_pct: c_pct,
                measured_syncmap_p99_ns: s,
                measured_rwlock_p99_ns: r,
                measured_reduction_pct: pct,
                holds: pct.map(|p| p >= c_pct),
                oversubscribed: threads > cpus,
            }
        })
        .collect()
}

/// Logical CPUs of this machine.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(mops: f64, p99_ns: u64) -> Measurement {
        Measurement {
            ops: 1,
            secs: 1.0,
            mops,
            p50_ns: 1,
            p99_ns,
            p999_ns: p99_ns,
            max_ns: p99_ns,
            samples: 1,
            allocs_per_op: None,
            bytes_per_key: None,
            hit_rate: None,
            truncated: false,
            map_stats: None,
        }
    }

    #[test]
    fn rounds_rotate_every_map_through_every_position() {
        for n in 1..6 {
            let orders: Vec<Vec<usize>> = (0..n).map(|r| round_order(n, r).collect()).collect();
            for (r, order) in orders.iter().enumerate() {
                let mut sorted = order.clone();
                sorted.sort_unstable();
                assert_eq!(
                    sorted,
                    (0..n).collect::<Vec<_>>(),
                    "round {r} runs each map once"
                );
            }
            for pos in 0..n {
                let mut at: Vec<usize> = orders.iter().map(|o| o[pos]).collect();
                at.sort_unstable();
                assert_eq!(
                    at,
                    (0..n).collect::<Vec<_>>(),
                    "position {pos} over {n} rounds"
                );
            }
        }
        assert_eq!(round_order(3, 4).collect::<Vec<_>>(), [1, 2, 0]);
    }

    #[test]
    fn the_median_run_is_reported_whole() {
        let runs = [
            measured(30.0, 300),
            measured(10.0, 100),
            measured(20.0, 200),
        ];
        let m = median_run(&runs);
        assert_eq!(
            (m.mops, m.p99_ns),
            (20.0, 200),
            "median throughput, same run's p99"
        );
        // An even count: the slower of the two middle runs.
        let runs = [
            measured(4.0, 4),
            measured(1.0, 1),
            measured(3.0, 3),
            measured(2.0, 2),
        ];
        assert_eq!(median_run(&runs).mops, 2.0);
        assert_eq!(median_run(&runs[..1]).mops, 4.0);

        let spec_runs = [
            measured(30.0, 300),
            measured(10.0, 100),
            measured(20.0, 200),
        ];
        let mut row = crate::record::test_row("syncmap", 1, median_run(&spec_runs).mops);
        row.set_rounds(spec_runs.iter().map(|m| m.mops));
        assert_eq!(
            (row.rounds, row.mops_min, row.mops, row.mops_max),
            (3, Some(10.0), 20.0, Some(30.0))
        );
        assert_eq!(crate::report::mops_text(&row), "20.00 (10.00–30.00)");
        row.set_rounds(std::iter::empty());
        assert_eq!(row.rounds, 3, "no runs: unchanged");
    }

    #[test]
    fn groups_hold_one_cell_per_map() {
        let plan = Plan {
            maps: vec![MapKind::SyncMap, MapKind::DashMap, MapKind::Noop],
            workloads: ["read100", "write50"]
                .iter()
                .map(|n| Workload::by_name(n).unwrap())
                .collect(),
            dists: vec![Dist::Uniform],
            threads: vec![1, 2],
            keys: 16,
            value: ValueKind::U64,
            value_size: 16,
            hasher: HasherKind::Foldhash,
            options: MapOptions::default(),
            stop: Stop::Ops {
                per_thread: 10,
                max_time: Duration::from_secs(1),
            },
            seed: 1,
            claim: None,
            progress: false,
            rounds: 2,
        };
        let groups = plan.groups();
        assert_eq!(groups.len(), 4);
        for g in &groups {
            let maps: Vec<MapKind> = g.iter().map(|c| c.map).collect();
            assert_eq!(maps, plan.maps);
            assert!(g
                .iter()
                .all(|c| c.threads == g[0].threads && c.workload.name == g[0].workload.name));
        }
        assert_eq!(groups.iter().map(Vec::len).sum::<usize>(), 12);
    }
}
