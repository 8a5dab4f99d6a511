//! Runs a plan of cells (workloads × distributions × threads × maps) with a progress bar,
//! plus the seed's P99 claim, and collects [`Results`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::adapters::{HasherKind, MapKind, ValueKind};
use crate::record::{fill_relative, ClaimRow, Meta, Results, Row, Skipped};
use crate::runner::{run_cell, timer_cost, CellSpec, Outcome, Stop};
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
    /// Stop rule per cell.
    pub stop: Stop,
    /// Stream seed.
    pub seed: u64,
    /// The P99 claim run, if wanted.
    pub claim: Option<ClaimPlan>,
    /// Show a progress bar (on a terminal).
    pub progress: bool,
}

impl Plan {
    /// The main cells, in run order.
    pub fn cells(&self) -> Vec<CellSpec> {
        let mut cells = Vec::new();
        for w in &self.workloads {
            for &dist in &self.dists {
                for &threads in &self.threads {
                    for &map in &self.maps {
                        cells.push(self.cell(map, w.clone(), dist, threads, self.stop));
                    }
                }
            }
        }
        cells
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

/// Runs `plan`; `command` is recorded in the results.
pub fn run(plan: &Plan, command: String) -> Results {
    let timer = timer_cost(200_000);
    let cells = plan.cells();
    let claim_cells = plan.claim_cells();
    let total = (cells.len() + claim_cells.len()) as u64;
    // The bar is redrawn only between cells (no ticker thread), so it never competes with
    // the measured threads for a CPU.
    let bar = if plan.progress && total > 3 {
        let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        b.set_style(
            ProgressStyle::with_template(
                "{bar:32} {pos}/{len} cells  {elapsed_precise} (eta {eta})  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    } else {
        ProgressBar::hidden()
    };

    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    let mut claim_rows = Vec::new();
    for (i, c) in cells.iter().chain(claim_cells.iter()).enumerate() {
        let is_claim = i >= cells.len();
        bar.set_message(format!(
            "{}{} {} t={} {}",
            if is_claim { "claim: " } else { "" },
            c.workload.name,
            c.dist.name(),
            c.threads,
            c.map.name()
        ));
        match run_cell(c) {
            Outcome::Done(m) => {
                let row = Row::new(c, &m);
                if is_claim {
                    claim_rows.push(row);
                } else {
                    rows.push(row);
                }
            }
            Outcome::Skipped(reason) => skipped.push(Skipped {
                map: c.map.name().into(),
                workload: c.workload.name.clone(),
                dist: c.dist.name().into(),
                threads: c.threads,
                reason,
            }),
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
            started_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            keys: plan.keys,
            value: plan.value.name().into(),
            value_size: plan.value_size,
            hasher: plan.hasher.name().into(),
            stop: plan.stop_text(),
            threads: plan.threads.clone(),
            seed: plan.seed,
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

/// Claimed vs measured P99 reduction at each of the seed's thread counts.
pub fn claim_table(claim_rows: &[Row], cpus: usize) -> Vec<ClaimRow> {
    SEED_CLAIM
        .iter()
        .map(|&(threads, c_sync, c_rw, c_pct)| {
            let p99 = |map: &str| {
                claim_rows
                    .iter()
                    .find(|r| r.map == map && r.threads == threads)
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
