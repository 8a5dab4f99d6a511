//! Command-line interface: argument parsing and validation, and the three subcommands.
//!
//! Every bad input ends in a one-line [`Error`] naming the valid choices; `main` prints it
//! and exits with status 2.

use std::fmt::Write as _;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::adapters::{HasherKind, MapKind, MapOptions, ValueKind};
use crate::record::{self, write_file, Results};
use crate::runner::Stop;
use crate::suite::{self, ClaimPlan, Plan};
use crate::workloads::{self, Dist, Workload};
use crate::{advise, plot, report, Error};

/// Default prefilled keys: cache-resident.
pub const DEFAULT_KEYS: u64 = 64 * 1024;
/// Prefilled keys with `--dram`.
pub const DRAM_KEYS: u64 = 16 * 1024 * 1024;
/// Most threads accepted.
pub const MAX_THREADS: usize = 1024;

/// Which concurrent map is fastest for your workload, on this machine?
///
/// Without a subcommand, runs `compare`. Examples:
///
///   readmostly-bench --quick                      # under a minute on 2 cores
///
///   readmostly-bench compare --workloads read99,churn10 --threads 1,2,4 --out results
///
///   readmostly-bench -w write50 -m syncmap,scc-hashindex --duration 1s --rounds 5   # a shared machine
///
///   readmostly-bench advise --read 95 --overwrite 4 --insert 1 --threads 8
///
///   readmostly-bench advise --scenario hot-key
///
///   readmostly-bench list
#[derive(Debug, Parser)]
#[command(
    name = "readmostly-bench",
    version,
    verbatim_doc_comment,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    compare: CompareArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run workloads x maps x thread counts; print a table and write CSV, JSON, SVG plots and a
    /// Markdown report (the default command).
    Compare(CompareArgs),
    /// Describe a workload (or name a scenario); the candidates run on this machine and the
    /// tool recommends one, with the measured evidence and the reason.
    Advise(AdviseArgs),
    /// List the maps and workloads with one-line descriptions.
    List,
}

/// Options shared by `compare` and `advise`.
#[derive(Debug, Clone, Args)]
struct RunArgs {
    /// Thread counts, comma-separated [default: 1, 2, 4, ... up to the CPU count; --quick: 1 and the CPU count; advise: the CPU count]
    #[arg(long, short = 't', value_name = "N[,N...]", allow_hyphen_values = true)]
    threads: Option<String>,
    /// Operations per thread per cell, e.g. 500k, 2M [default: 1M; --quick: 500k; advise: 300k]
    #[arg(long, value_name = "N", conflicts_with = "duration")]
    ops: Option<String>,
    /// Run each cell for this long instead of a fixed number of operations, e.g. 2s, 500ms
    #[arg(long, value_name = "TIME")]
    duration: Option<String>,
    /// Cap on one cell's timed region in --ops mode (the cell is flagged if cut short) [default: 3s; --quick: 0.5s]
    #[arg(long, value_name = "TIME", conflicts_with = "duration")]
    max_time: Option<String>,
    /// Prefilled keys, e.g. 64Ki, 1M [default: 64Ki, cache-resident]
    #[arg(long, value_name = "N")]
    keys: Option<String>,
    /// DRAM-resident key count: 16Mi keys
    #[arg(long, conflicts_with = "keys")]
    dram: bool,
    /// Value type: u64, string (String payload) or bytes (Arc<[u8]> payload)
    #[arg(long, value_name = "TYPE", default_value = "u64")]
    value: String,
    /// Payload bytes of string / bytes values [default: 16]
    #[arg(long, value_name = "BYTES")]
    value_size: Option<usize>,
    /// Hasher for every map: foldhash (fixed seed, as the anchors) or std (SipHash, random seed)
    #[arg(long, value_name = "NAME", default_value = "foldhash")]
    hasher: String,
    /// Key distribution(s): uniform, zipf (exponent 0.99), or both comma-separated
    #[arg(long, value_name = "DIST[,DIST]", default_value = "uniform")]
    dist: String,
    /// Seed of the operation streams
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Retire batch of readmostly's maps: objects a thread retires before handing them to the collector, one process-wide memory barrier each [default: the library's, 512]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    retire_batch: Option<u64>,
    /// Run every cell N times, the maps of each workload and thread count in rotating order, and report the median run with the slowest and fastest (for shared or noisy machines)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    rounds: u32,
    /// Do not show a progress bar
    #[arg(long)]
    no_progress: bool,
}

#[derive(Debug, Clone, Args)]
struct CompareArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Workloads, comma-separated, or `all` [default: all; --quick: read100,read99,read95,write50,churn10]
    #[arg(long, short = 'w', value_name = "NAME[,NAME...]")]
    workloads: Option<String>,
    /// Maps, comma-separated, or `all` [default: all]
    #[arg(long, short = 'm', value_name = "NAME[,NAME...]")]
    maps: Option<String>,
    /// Quick preset: 5 mixes, 500k ops per thread, 0.5 s cap per cell; under a minute on 2 cores
    #[arg(long)]
    quick: bool,
    /// What to print on stdout: table, csv or json
    #[arg(long, value_name = "FORMAT", default_value = "table")]
    format: String,
    /// Output folder for results.csv, results.json, report.md and plots/
    #[arg(long, value_name = "DIR", default_value = "bench-results")]
    out: PathBuf,
    /// Write no files (stdout only)
    #[arg(long, conflicts_with = "out")]
    no_files: bool,
    /// Skip the seed's P99 claim run (ttl-cache, SyncMap vs RwLock<HashMap> at 8/64/256 threads)
    #[arg(long)]
    no_claim: bool,
    /// Operations of all threads together in each claim cell [default: 2M; --quick: 400k; at least 1000 per thread]
    #[arg(long, value_name = "N", conflicts_with = "no_claim")]
    claim_ops: Option<String>,
}

#[derive(Debug, Clone, Args)]
struct AdviseArgs {
    #[command(flatten)]
    run: RunArgs,
    /// A named workload to advise on (see `list`), instead of percentages
    #[arg(long, value_name = "NAME", conflicts_with_all = ["read", "overwrite", "insert", "remove"])]
    scenario: Option<String>,
    /// Percent of operations that read a key
    #[arg(long, value_name = "PCT", allow_negative_numbers = true)]
    read: Option<f64>,
    /// Percent that overwrite an existing key
    #[arg(long, value_name = "PCT", allow_negative_numbers = true)]
    overwrite: Option<f64>,
    /// Percent that store a new key (with --remove as well, inserts, removes and reads range
    /// over twice the key space, so that the map keeps its size)
    #[arg(long, value_name = "PCT", allow_negative_numbers = true)]
    insert: Option<f64>,
    /// Percent that remove a key
    #[arg(long, value_name = "PCT", allow_negative_numbers = true)]
    remove: Option<f64>,
    /// Candidate maps, comma-separated [default: every map except frozen-std and noop]
    #[arg(long, short = 'm', value_name = "NAME[,NAME...]")]
    maps: Option<String>,
    /// Output: table (text) or json
    #[arg(long, value_name = "FORMAT", default_value = "table")]
    format: String,
}

/// Runs the command line `args` (including the program name), printing to `out`.
pub fn run(args: &[String], out: &mut dyn Write) -> Result<(), Error> {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
                || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            {
                write!(out, "{}", e.render()).map_err(io)?;
                return Ok(());
            }
            return Err(clap_error(&e));
        }
    };
    let command = args
        .iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ");
    match cli.command {
        Some(Command::Compare(c)) => compare(&c, command, out),
        Some(Command::Advise(a)) => advise_cmd(&a, out),
        Some(Command::List) => list(out),
        None => compare(&cli.compare, command, out),
    }
}

fn io(e: std::io::Error) -> Error {
    Error::msg(format!("cannot write output: {e}"))
}

/// Clap's message, reduced to its first line.
fn clap_error(e: &clap::Error) -> Error {
    let text = e.render().to_string();
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid arguments")
        .trim()
        .trim_start_matches("error: ")
        .to_string();
    Error::usage(format!("{first} (see --help)"))
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./,=:".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Memory of the pre-generated operation streams: 16 bytes per operation, plus a tenth
/// for warm-up (rounded up).
const STREAM_BYTES_PER_OP: u64 = 18;
/// The most stream memory `--ops` / `--claim-ops` may ask for.
const MAX_STREAM_BYTES: u64 = 32 << 30;
/// `--duration` replays a stream per thread: 256 Ki operations each, fewer (down to 4 Ki)
/// when that would take more than 1 GiB over all threads.
const DURATION_STREAM_BYTES: u64 = 1 << 30;

/// The length of each thread's replayed stream in `--duration` mode for `threads` threads.
fn duration_stream_len(threads: u64) -> u64 {
    (DURATION_STREAM_BYTES / STREAM_BYTES_PER_OP / threads.max(1)).clamp(1 << 12, 1 << 18)
}

/// A generous estimate of one prefilled map's memory: the bulkiest adapter's table and
/// entry (under 160 bytes per key at any size), plus the payload of string and bytes
/// values. Only one map is alive at a time.
fn map_memory(keys: u64, value: ValueKind, value_size: usize) -> u64 {
    let payload = if value == ValueKind::U64 {
        0
    } else {
        value_size as u64
    };
    keys.saturating_mul(160 + payload)
}

/// The machine's physical memory, where the platform says (`/proc/meminfo`).
fn total_memory() -> Option<u64> {
    let info = fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

/// Parses a count with an optional suffix: `k`/`M`/`G` (powers of 1000), `Ki`/`Mi`/`Gi`
/// (powers of 1024); underscores are ignored.
pub fn parse_count(s: &str) -> Option<u64> {
    let t: String = s.trim().chars().filter(|&c| c != '_').collect();
    let (num, mult) = [
        ("Ki", 1u64 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("k", 1_000),
        ("K", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
    ]
    .iter()
    .find_map(|(suf, m)| t.strip_suffix(suf).map(|n| (n.to_string(), *m)))
    .unwrap_or((t.clone(), 1));
    if let Ok(n) = num.parse::<u64>() {
        return n.checked_mul(mult);
    }
    // A fraction with a suffix (`1.5M`) must come to a whole count: `1.5` alone, or
    // `0.0001k`, is refused rather than rounded.
    let f: f64 = num.parse().ok()?;
    let n = f * mult as f64;
    (f.is_finite() && f >= 0.0 && n < u64::MAX as f64 && n.fract() == 0.0).then_some(n as u64)
}

/// Parses a duration: `2s`, `1.5s`, `500ms`, `100us`, `1m`, or plain seconds; from 1 ms
/// (a shorter cell, or cap, measures the timer more than the map) to 10^7 s.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let t = s.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num.trim().parse().ok()?;
    (v.is_finite() && v * scale >= 1e-3 && v * scale < 1e7)
        .then(|| Duration::from_secs_f64(v * scale))
}

/// Parses a comma-separated thread list.
pub fn parse_threads(s: &str) -> Result<Vec<usize>, Error> {
    let mut v = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.parse::<usize>() {
            Ok(n) if (1..=MAX_THREADS).contains(&n) => {
                if !v.contains(&n) {
                    v.push(n);
                }
            }
            _ => {
                return Err(Error::usage(format!(
                    "invalid thread count '{part}' in --threads (use whole numbers from 1 to {MAX_THREADS}, e.g. 1,2,4)"
                )))
            }
        }
    }
    if v.is_empty() {
        return Err(Error::usage("--threads is empty (e.g. --threads 1,2,4)"));
    }
    Ok(v)
}

/// Default thread counts: powers of two up to the CPU count, and the CPU count.
pub fn default_threads(cpus: usize) -> Vec<usize> {
    let mut v = Vec::new();
    let mut t = 1;
    while t <= cpus {
        v.push(t);
        t *= 2;
    }
    if !v.contains(&cpus) {
        v.push(cpus);
    }
    v
}

/// Parses a comma-separated map list (`all` for every map).
pub fn parse_maps(s: &str) -> Result<Vec<MapKind>, Error> {
    let valid = || MapKind::ALL.map(MapKind::name).join(", ");
    let mut v = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if part == "all" {
            for m in MapKind::ALL {
                if !v.contains(&m) {
                    v.push(m);
                }
            }
            continue;
        }
        match MapKind::parse(part) {
            Some(m) if !v.contains(&m) => v.push(m),
            Some(_) => {}
            None => {
                return Err(Error::usage(format!(
                    "unknown map '{part}' (valid: {}, all)",
                    valid()
                )));
            }
        }
    }
    if v.is_empty() {
        return Err(Error::usage(format!(
            "--maps is empty (valid: {}, all)",
            valid()
        )));
    }
    Ok(v)
}

/// Parses a comma-separated workload list (`all` for every built-in workload).
pub fn parse_workloads(s: &str) -> Result<Vec<Workload>, Error> {
    let valid = || Workload::names().join(", ");
    let mut v: Vec<Workload> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let found: Vec<Workload> = if part == "all" {
            Workload::all()
        } else {
            match Workload::by_name(part) {
                Some(w) => vec![w],
                None => {
                    return Err(Error::usage(format!(
                        "unknown workload '{part}' (valid: {}, all)",
                        valid()
                    )))
                }
            }
        };
        for w in found {
            if !v.iter().any(|x| x.name == w.name) {
                v.push(w);
            }
        }
    }
    if v.is_empty() {
        return Err(Error::usage(format!(
            "--workloads is empty (valid: {}, all)",
            valid()
        )));
    }
    Ok(v)
}

fn parse_dists(s: &str) -> Result<Vec<Dist>, Error> {
    let mut v = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match Dist::parse(part) {
            Some(d) if !v.contains(&d) => v.push(d),
            Some(_) => {}
            None => {
                return Err(Error::usage(format!(
                    "unknown distribution '{part}' in --dist (valid: uniform, zipf)"
                )))
            }
        }
    }
    if v.is_empty() {
        return Err(Error::usage("--dist is empty (valid: uniform, zipf)"));
    }
    Ok(v)
}

/// Settings common to compare and advise, validated.
#[derive(Debug, Clone)]
struct Common {
    threads: Vec<usize>,
    stop: Stop,
    keys: u64,
    value: ValueKind,
    value_size: usize,
    hasher: HasherKind,
    options: MapOptions,
    dists: Vec<Dist>,
    seed: u64,
    progress: bool,
    rounds: usize,
}

/// Validates the options shared by compare and advise; `quick`, `default_ops` (per thread)
/// and `default_cap` (per cell) are the calling command's defaults.
fn common(
    a: &RunArgs,
    quick: bool,
    default_ops: u64,
    default_cap: Duration,
) -> Result<Common, Error> {
    let cpus = suite::cpus();
    let threads = match &a.threads {
        Some(t) => parse_threads(t)?,
        None if quick => {
            let mut v = vec![1];
            if cpus > 1 {
                v.push(cpus);
            }
            v
        }
        None => default_threads(cpus),
    };
    let keys = if a.dram {
        DRAM_KEYS
    } else {
        match &a.keys {
            Some(k) => match parse_count(k) {
                Some(n) if (1..=1 << 32).contains(&n) => n,
                _ => {
                    return Err(Error::usage(format!(
                        "invalid --keys '{k}' (a count from 1 to 4Gi, e.g. 64Ki, 1M)"
                    )))
                }
            },
            None => DEFAULT_KEYS,
        }
    };
    let max_time = match &a.max_time {
        Some(t) => parse_duration(t).ok_or_else(|| {
            Error::usage(format!(
                "invalid --max-time '{t}' (at least 1ms, e.g. 10s, 500ms)"
            ))
        })?,
        None => default_cap,
    };
    let stop = match (&a.duration, &a.ops) {
        (Some(d), _) => {
            let time = parse_duration(d).ok_or_else(|| {
                Error::usage(format!(
                    "invalid --duration '{d}' (at least 1ms, e.g. 2s, 500ms)"
                ))
            })?;
            Stop::Duration {
                time,
                stream_len: duration_stream_len(*threads.iter().max().unwrap_or(&1) as u64),
            }
        }
        (None, Some(o)) => match parse_count(o) {
            Some(n) if (1..=1 << 36).contains(&n) => Stop::Ops {
                per_thread: n,
                max_time,
            },
            _ => {
                return Err(Error::usage(format!(
                    "invalid --ops '{o}' (a count of operations per thread, e.g. 100k, 2M)"
                )))
            }
        },
        (None, None) => Stop::Ops {
            per_thread: default_ops,
            max_time,
        },
    };
    let value = ValueKind::parse(&a.value).ok_or_else(|| {
        Error::usage(format!(
            "unknown value type '{}' (valid: u64, string, bytes)",
            a.value
        ))
    })?;
    let hasher = HasherKind::parse(&a.hasher).ok_or_else(|| {
        Error::usage(format!(
            "unknown hasher '{}' (valid: foldhash, std)",
            a.hasher
        ))
    })?;
    let value_size = match (a.value_size, value) {
        (Some(_), ValueKind::U64) => {
            return Err(Error::usage(
                "--value-size applies to --value string or bytes (u64 values have no payload)",
            ))
        }
        (Some(n), _) if n > 1 << 20 => {
            return Err(Error::usage("--value-size must be at most 1Mi bytes"))
        }
        (n, _) => n.unwrap_or(16),
    };
    let map_bytes = map_memory(keys, value, value_size);
    if let Some(total) = total_memory().filter(|&t| map_bytes > t) {
        return Err(Error::usage(format!(
            "{keys} keys with {} values need about {} GiB per map, more than this machine's {} GiB; use fewer --keys or a smaller --value-size",
            value.name(),
            map_bytes.div_ceil(1 << 30),
            total >> 30
        )));
    }
    if let Stop::Ops { per_thread, .. } = stop {
        let max_threads = *threads.iter().max().unwrap_or(&1) as u64;
        let bytes = per_thread
            .saturating_mul(max_threads)
            .saturating_mul(STREAM_BYTES_PER_OP);
        if bytes > MAX_STREAM_BYTES {
            return Err(Error::usage(format!(
                "--ops {per_thread} x {max_threads} threads needs {} GiB of operation streams; use fewer ops or --duration",
                bytes >> 30
            )));
        }
    }
    Ok(Common {
        threads,
        stop,
        keys,
        value,
        value_size,
        hasher,
        options: MapOptions {
            retire_batch: a.retire_batch.map(|n| n as usize),
        },
        dists: parse_dists(&a.dist)?,
        seed: a.seed,
        progress: !a.no_progress,
        rounds: a.rounds as usize,
    })
}

/// Creates `dir` and `dir/plots` and checks that a file can be written there.
pub fn prepare_out(dir: &Path) -> Result<(), Error> {
    let fail = |e: std::io::Error| {
        Error::usage(format!(
            "cannot write to output folder '{}': {e}",
            dir.display()
        ))
    };
    fs::create_dir_all(dir.join("plots")).map_err(fail)?;
    let probe = dir.join(".readmostly-bench-write-test");
    fs::write(&probe, b"ok").map_err(fail)?;
    fs::remove_file(&probe).map_err(fail)
}

fn compare(c: &CompareArgs, command: String, out: &mut dyn Write) -> Result<(), Error> {
    let cm = common(
        &c.run,
        c.quick,
        if c.quick { 500_000 } else { 1_000_000 },
        if c.quick {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(3)
        },
    )?;
    let workloads = match &c.workloads {
        Some(w) => parse_workloads(w)?,
        None => {
            let names = if c.quick {
                workloads::QUICK
            } else {
                workloads::DEFAULT
            };
            names.iter().filter_map(|n| Workload::by_name(n)).collect()
        }
    };
    let maps = match &c.maps {
        Some(m) => parse_maps(m)?,
        None => MapKind::ALL.to_vec(),
    };
    let format = c.format.as_str();
    if !["table", "csv", "json"].contains(&format) {
        return Err(Error::usage(format!(
            "unknown format '{format}' (valid: table, csv, json)"
        )));
    }
    let claim_ops = match &c.claim_ops {
        Some(o) => parse_count(o).filter(|&n| n > 0).ok_or_else(|| {
            Error::usage(format!(
                "invalid --claim-ops '{o}' (a count of operations, e.g. 400k)"
            ))
        })?,
        None if c.quick => 400_000,
        None => 2_000_000,
    };
    // The claim cells' streams: all threads together (at least 1000 operations per
    // thread at the largest claim thread count), as for --ops above.
    let claim_bytes = claim_ops
        .max(1_000 * suite::MAX_CLAIM_THREADS)
        .saturating_mul(STREAM_BYTES_PER_OP);
    if !c.no_claim && claim_bytes > MAX_STREAM_BYTES {
        return Err(Error::usage(format!(
            "--claim-ops {claim_ops} needs {} GiB of operation streams; use fewer (e.g. 2M)",
            claim_bytes >> 30
        )));
    }
    if !c.no_files {
        prepare_out(&c.out)?;
    }
    let plan = Plan {
        maps,
        workloads,
        dists: cm.dists,
        threads: cm.threads,
        keys: cm.keys,
        value: cm.value,
        value_size: cm.value_size,
        hasher: cm.hasher,
        options: cm.options,
        stop: cm.stop,
        seed: cm.seed,
        claim: (!c.no_claim).then(|| ClaimPlan {
            total_ops: claim_ops,
            max_time: Duration::from_secs(if c.quick { 2 } else { 5 }),
        }),
        progress: cm.progress,
        rounds: cm.rounds,
    };
    let results = suite::run(&plan, command);
    match format {
        "csv" => write!(out, "{}", record::to_csv(&results.rows)?).map_err(io)?,
        "json" => writeln!(out, "{}", record::to_json(&results)?).map_err(io)?,
        _ => write!(out, "{}", report::table(&results)).map_err(io)?,
    }
    if !c.no_files {
        let written = write_outputs(&results, &c.out)?;
        if format == "table" {
            writeln!(
                out,
                "\nwrote {} files to {} (report: {})",
                written,
                c.out.display(),
                c.out.join("report.md").display()
            )
            .map_err(io)?;
        }
    }
    if results.rows.is_empty() {
        return Err(Error::msg(
            "no cell could run: every map was skipped for every workload (see the skipped list above)",
        ));
    }
    Ok(())
}

/// Writes results.csv, results.json, claim.csv, plots and report.md into `dir`; returns
/// the number of files written.
pub fn write_outputs(res: &Results, dir: &Path) -> Result<usize, Error> {
    remove_stale_outputs(res, dir)?;
    let mut n = 0;
    write_file(&dir.join("results.csv"), &record::to_csv(&res.rows)?)?;
    write_file(&dir.join("results.json"), &record::to_json(res)?)?;
    n += 2;
    if !res.claim_rows.is_empty() {
        write_file(&dir.join("claim.csv"), &record::to_csv(&res.claim_rows)?)?;
        n += 1;
    }
    let mut plots = Vec::new();
    let mut seen: Vec<(String, String)> = Vec::new();
    for r in &res.rows {
        let key = (r.workload.clone(), r.dist.clone());
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let rows: Vec<&record::Row> = res
            .rows
            .iter()
            .filter(|x| x.workload == r.workload && x.dist == r.dist)
            .collect();
        let tp = format!("plots/{}", plot_file(&r.workload, &r.dist, PLOT_KINDS[0]));
        let lat = format!("plots/{}", plot_file(&r.workload, &r.dist, PLOT_KINDS[1]));
        let title = format!("{} ({})", r.workload, r.dist);
        plot::throughput(&dir.join(&tp), &title, &rows)?;
        plot::latency(&dir.join(&lat), &title, &rows)?;
        n += 2;
        plots.push((r.workload.clone(), r.dist.clone(), tp, lat));
    }
    write_file(&dir.join("report.md"), &report::markdown(res, &plots))?;
    Ok(n + 1)
}

/// The two plots of each workload and distribution.
const PLOT_KINDS: [&str; 2] = ["throughput", "latency"];

/// A plot's file name in `plots/`.
fn plot_file(workload: &str, dist: &str, kind: &str) -> String {
    format!("{workload}-{dist}-{kind}.svg")
}

/// Removes what an earlier run wrote to `dir` and this one will not overwrite: its
/// `claim.csv` when this run has no claim, and plots (`plots/*-throughput.svg`,
/// `plots/*-latency.svg`) of workloads this run does not have. Other files are left alone.
fn remove_stale_outputs(res: &Results, dir: &Path) -> Result<(), Error> {
    let remove = |p: &Path| match fs::remove_file(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::msg(format!(
            "cannot remove stale {}: {e}",
            p.display()
        ))),
    };
    if res.claim_rows.is_empty() {
        remove(&dir.join("claim.csv"))?;
    }
    let Ok(plots) = fs::read_dir(dir.join("plots")) else {
        return Ok(());
    };
    let current: Vec<String> = res
        .rows
        .iter()
        .flat_map(|r| PLOT_KINDS.map(|k| plot_file(&r.workload, &r.dist, k)))
        .collect();
    for entry in plots.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = PLOT_KINDS
            .iter()
            .any(|k| name.ends_with(&format!("-{k}.svg")));
        if ours && !current.contains(&name) {
            remove(&entry.path())?;
        }
    }
    Ok(())
}

fn advise_cmd(a: &AdviseArgs, out: &mut dyn Write) -> Result<(), Error> {
    let mut cm = common(&a.run, false, 300_000, Duration::from_secs(3))?;
    if a.run.threads.is_none() {
        cm.threads = vec![suite::cpus()];
    }
    if cm.threads.len() != 1 {
        return Err(Error::usage(
            "advise takes one thread count (e.g. --threads 8)",
        ));
    }
    if cm.dists.len() != 1 {
        return Err(Error::usage(
            "advise takes one distribution (--dist uniform or --dist zipf)",
        ));
    }
    let workload = match &a.scenario {
        Some(name) => Workload::by_name(name).ok_or_else(|| {
            Error::usage(format!(
                "unknown scenario '{name}' (valid: {})",
                Workload::names().join(", ")
            ))
        })?,
        None => {
            if a.read.is_none() && a.overwrite.is_none() && a.insert.is_none() && a.remove.is_none()
            {
                return Err(Error::usage(format!(
                    "describe the workload with --read/--overwrite/--insert/--remove percentages or --scenario NAME (one of: {})",
                    Workload::names().join(", ")
                )));
            }
            Workload::custom(
                a.read.unwrap_or(0.0),
                a.overwrite.unwrap_or(0.0),
                a.insert.unwrap_or(0.0),
                a.remove.unwrap_or(0.0),
            )
            .map_err(Error::usage)?
        }
    };
    let maps = match &a.maps {
        Some(m) => parse_maps(m)?,
        None => MapKind::ALL
            .into_iter()
            .filter(|m| !m.is_reference())
            .collect(),
    };
    if !["table", "json"].contains(&a.format.as_str()) {
        return Err(Error::usage(format!(
            "unknown format '{}' (valid: table, json)",
            a.format
        )));
    }
    let plan = Plan {
        maps,
        workloads: vec![workload],
        dists: cm.dists,
        threads: cm.threads,
        keys: cm.keys,
        value: cm.value,
        value_size: cm.value_size,
        hasher: cm.hasher,
        options: cm.options,
        stop: cm.stop,
        seed: cm.seed,
        claim: None,
        progress: cm.progress,
        rounds: cm.rounds,
    };
    let advice = advise::advise(&plan)?;
    if a.format == "json" {
        let text =
            serde_json::to_string_pretty(&advice).map_err(|e| Error::msg(format!("JSON: {e}")))?;
        writeln!(out, "{text}").map_err(io)?;
    } else {
        write!(out, "{}", advise::render(&advice)).map_err(io)?;
    }
    if advice.recommended.is_none() {
        return Err(Error::msg(
            "no candidate map could run this workload (see the skipped maps above)",
        ));
    }
    Ok(())
}

fn list(out: &mut dyn Write) -> Result<(), Error> {
    let mut s = String::from("maps:\n");
    let w = MapKind::ALL
        .iter()
        .map(|m| m.name().len())
        .max()
        .unwrap_or(0);
    for m in MapKind::ALL {
        let _ = writeln!(s, "  {:w$}  {}", m.name(), m.about());
    }
    s.push_str("\nworkloads:\n");
    let all = Workload::all();
    let w = all.iter().map(|x| x.name.len()).max().unwrap_or(0);
    for x in &all {
        let _ = writeln!(
            s,
            "  {:w$}  {:13}  {}",
            x.name,
            format!("[{}]", x.family),
            x.about
        );
    }
    s.push_str(
        "\nkey distributions: uniform, zipf (exponent 0.99); values: u64, string, bytes; hashers: foldhash, std\n",
    );
    write!(out, "{s}").map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_durations() {
        assert_eq!(parse_count("64Ki"), Some(65536));
        assert_eq!(parse_count("16Mi"), Some(16 << 20));
        assert_eq!(parse_count("100k"), Some(100_000));
        assert_eq!(parse_count("1_000"), Some(1000));
        assert_eq!(parse_count("1.5M"), Some(1_500_000));
        assert_eq!(parse_count("x"), None);
        assert_eq!(parse_count("-3"), None);
        assert_eq!(parse_count("1.5"), None);
        assert_eq!(parse_count("0.5k"), Some(500));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0s"), None);
        assert_eq!(parse_duration("1ms"), Some(Duration::from_millis(1)));
        assert_eq!(parse_duration("1e-10"), None, "rounds to nothing");
        assert_eq!(parse_duration("999us"), None);
        assert_eq!(parse_duration("soon"), None);
    }

    #[test]
    fn duration_streams_stay_within_their_memory_budget() {
        assert_eq!(duration_stream_len(1), 1 << 18);
        assert_eq!(duration_stream_len(16), 1 << 18);
        let many = MAX_THREADS as u64;
        assert!(duration_stream_len(many) < 1 << 18);
        assert!(duration_stream_len(many) * many * STREAM_BYTES_PER_OP <= DURATION_STREAM_BYTES);
        assert_eq!(duration_stream_len(u64::MAX), 1 << 12);
    }

    #[test]
    fn thread_lists() {
        assert_eq!(parse_threads("1,2, 4,2").unwrap(), vec![1, 2, 4]);
        assert!(parse_threads("0").is_err());
        assert!(parse_threads("1,x").is_err());
        assert!(parse_threads("100000").is_err());
        assert!(parse_threads("").is_err());
        assert_eq!(default_threads(2), vec![1, 2]);
        assert_eq!(default_threads(6), vec![1, 2, 4, 6]);
    }

    #[test]
    fn map_and_workload_lists() {
        assert_eq!(
            parse_maps("syncmap,dashmap").unwrap(),
            vec![MapKind::SyncMap, MapKind::DashMap]
        );
        assert_eq!(parse_maps("all").unwrap().len(), MapKind::ALL.len());
        let e = parse_maps("syncmap,hashmap").unwrap_err().to_string();
        assert!(
            e.contains("unknown map 'hashmap'") && e.contains("scc-hashindex"),
            "{e}"
        );
        let e = parse_workloads("read99,read98").unwrap_err().to_string();
        assert!(
            e.contains("unknown workload 'read98'") && e.contains("churn10"),
            "{e}"
        );
        assert_eq!(
            parse_workloads("all").unwrap().len(),
            Workload::names().len()
        );
    }
}
