//! Alerts computed from [`Stats`] snapshots: the seed's miss-velocity rule (§4.3) and its
//! dirty-table growth guard (§4.1).
//!
//! Both monitors are driven by the caller: call [`MissVelocityMonitor::tick`] /
//! [`GrowthGuard::tick`] (or `sample` with a snapshot you already have) as often as you
//! like, from a timer loop or a metrics scrape; each takes a sample only once its `step`
//! has elapsed, so calling often costs one clock read. Time comes from a [`Clock`]:
//! [`SystemClock`] in production, [`ManualClock`] in tests. Levels reach you two ways:
//! polled ([`MissVelocityMonitor::level`], [`MissVelocityMonitor::last_report`]) or
//! pushed (a callback on every level change, [`MissVelocityMonitor::on_change`]).
//!
//! ```
//! use std::time::Duration;
//! use readmostly::monitor::{Level, ManualClock, MissVelocityConfig, MissVelocityMonitor};
//! use readmostly::SyncMap;
//!
//! let map: SyncMap<u64, u64> = SyncMap::new();
//! let clock = ManualClock::new();
//! let monitor = MissVelocityMonitor::with_clock(
//!     MissVelocityConfig::default().fixed_base_rate(100.0),
//!     clock.clone(),
//! );
//! monitor.tick(&map); // first sample: no rate yet
//! clock.advance(Duration::from_secs(5));
//! let report = monitor.tick(&map).expect("a step has elapsed");
//! assert_eq!(report.level, Level::Ok);
//! assert_eq!(report.threshold, 100.0 * (1.0 + 0.3 * 0.0) + 120.0);
//! ```
//!
//! In a service, tick from a thread (or an async interval):
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use readmostly::monitor::{GrowthGuard, MissVelocityMonitor};
//! use readmostly::SyncMap;
//!
//! let map: Arc<SyncMap<String, String>> = Arc::new(SyncMap::new());
//! let misses = MissVelocityMonitor::new(Default::default())
//!     .on_change(|c| eprintln!("miss velocity {:?} -> {:?}: {:?}", c.from, c.to, c.report));
//! let growth = GrowthGuard::new(Default::default())
//!     .on_change(|c| eprintln!("dirty table growth {:?}: {:?}", c.to, c.report));
//! std::thread::spawn(move || loop {
//!     let stats = map.stats();
//!     misses.sample(&stats);
//!     growth.sample(&stats);
//!     std::thread::sleep(Duration::from_secs(1));
//! });
//! ```
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU64, AtomicU8};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::{Stats, SyncMap};

// ------------------------------------------------------------------------------ clock

/// A monotonic time source: the time elapsed since a fixed, arbitrary origin.
pub trait Clock: Send + Sync {
    /// The current time. Must never go backwards.
    fn now(&self) -> Duration;
}

/// The real clock ([`Instant`]), with its origin at creation.
///
/// ```
/// use readmostly::monitor::{Clock, SystemClock};
/// let clock = SystemClock::new();
/// assert!(clock.now() < std::time::Duration::from_secs(60));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock starting at zero now.
    pub fn new() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that moves only when told to, for tests. Clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use readmostly::monitor::{Clock, ManualClock};
/// let clock = ManualClock::new();
/// let other = clock.clone();
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(other.now(), Duration::from_secs(5));
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward by `by` (stopping at the largest time it can show,
    /// `u64::MAX` nanoseconds: it never wraps around to an earlier time).
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        // Relaxed: a single value; tests that share the clock across threads order
        // their steps by other means.
        let _ = self
            .nanos
            .fetch_update(Relaxed, Relaxed, |now| Some(now.saturating_add(by)));
    }

    /// Sets the clock to `to` (it must not go backwards for the monitors' sake).
    pub fn set(&self, to: Duration) {
        // Relaxed: as in `advance`.
        self.nanos
            .store(u64::try_from(to.as_nanos()).unwrap_or(u64::MAX), Relaxed);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        // Relaxed: as in `advance`.
        Duration::from_nanos(self.nanos.load(Relaxed))
    }
}

// ----------------------------------------------------------------------- stats source

/// Something that produces [`Stats`] snapshots: a map, an `Arc` of one, or a closure.
///
/// ```
/// use readmostly::monitor::StatsSource;
/// let map = readmostly::ShardedMap::new();
/// map.insert(1, 1);
/// assert_eq!(StatsSource::stats(&map).len, 1);
/// let closure = || readmostly::Stats::default();
/// assert_eq!(closure.stats().len, 0);
/// ```
pub trait StatsSource {
    /// A snapshot.
    fn stats(&self) -> Stats;
}

impl<K: Hash + Eq, V, S: BuildHasher> StatsSource for SyncMap<K, V, S> {
    fn stats(&self) -> Stats {
        SyncMap::stats(self)
    }
}

impl<K: Hash + Eq, V, S: BuildHasher, R> StatsSource for crate::ShardedMap<K, V, S, R> {
    fn stats(&self) -> Stats {
        crate::ShardedMap::stats(self)
    }
}

impl<T: StatsSource + ?Sized> StatsSource for Arc<T> {
    fn stats(&self) -> Stats {
        (**self).stats()
    }
}

impl<F: Fn() -> Stats> StatsSource for F {
    fn stats(&self) -> Stats {
        self()
    }
}

// ---------------------------------------------------------------------------- levels

/// An alert level.
///
/// ```
/// use readmostly::monitor::Level;
/// assert!(Level::Ok < Level::Warn && Level::Warn < Level::Crit);
/// assert_eq!(Level::Crit.to_string(), "CRIT");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Level {
    /// Below every threshold.
    #[default]
    Ok,
    /// At or above the warning threshold.
    Warn,
    /// At or above the critical threshold.
    Crit,
}

impl Level {
    /// `0`, `1`, `2` for `Ok`, `Warn`, `Crit` (the value of the level gauges).
    ///
    /// ```
    /// assert_eq!(readmostly::monitor::Level::Warn.as_u8(), 1);
    /// ```
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    fn from_u8(v: u8) -> Level {
        match v {
            0 => Level::Ok,
            1 => Level::Warn,
            _ => Level::Crit,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Ok => "OK",
            Level::Warn => "WARN",
            Level::Crit => "CRIT",
        })
    }
}

/// A level change, passed to the `on_change` callbacks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LevelChange<R> {
    /// The level before this sample.
    pub from: Level,
    /// The level after it.
    pub to: Level,
    /// The sample's report.
    pub report: R,
}

type Callback<R> = Box<dyn Fn(&LevelChange<R>) + Send + Sync>;

/// What both monitors share: the clock, the polled level and the callback.
struct Notify<R> {
    clock: Arc<dyn Clock>,
    level: AtomicU8,
    on_change: Option<Callback<R>>,
    name: Option<String>,
}

impl<R> Notify<R> {
    fn new(clock: Arc<dyn Clock>) -> Self {
        Notify {
            clock,
            level: AtomicU8::new(Level::Ok.as_u8()),
            on_change: None,
            name: None,
        }
    }

    fn level(&self) -> Level {
        // Relaxed: a polled status value; nothing else is published through it.
        Level::from_u8(self.level.load(Relaxed))
    }

    /// Records `to` as the polled level and returns the previous one. Called while the
    /// monitor's mutex is held, like the update of its last report, so the polled level
    /// is always the last report's, and consecutive samples' changes chain (each `from`
    /// is the previous sample's `to`).
    fn swap_locked(&self, to: Level) -> Level {
        // Relaxed: as in `level`; the monitor's mutex orders the swaps.
        Level::from_u8(self.level.swap(to.as_u8(), Relaxed))
    }

    /// Calls the callback if the level changed. Called with no lock held, so the callback
    /// may use the monitor (two threads sampling at once may run their callbacks in
    /// either order).
    fn notify(&self, from: Level, to: Level, report: R) {
        if from != to {
            if let Some(f) = &self.on_change {
                f(&LevelChange { from, to, report });
            }
        }
    }
}

impl<R> fmt::Debug for Notify<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notify")
            .field("level", &self.level())
            .field("name", &self.name)
            .field("on_change", &self.on_change.is_some())
            .finish_non_exhaustive()
    }
}

/// One snapshot of the counters a monitor needs.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Duration,
    misses: u64,
    reads: u64,
    writes: u64,
    size: usize,
}

impl Sample {
    fn new(at: Duration, s: &Stats) -> Self {
        Sample {
            at,
            misses: s.misses.wrapping_add(s.recent_lookups),
            reads: s.reads(),
            writes: s.writes(),
            size: dirty_size(s),
        }
    }
}

/// The size the growth guard watches: entries in the dirty table (present keys and
/// deleted entries not yet expunged), or the present keys when there is none
/// ([`Stats::dirty_size`], summed per shard for a `ShardedMap`; the maximum with `len`
/// and `dirty_len` covers snapshots built by hand, whose `dirty_size` may be 0).
fn dirty_size(s: &Stats) -> usize {
    s.dirty_size.max(s.len).max(s.dirty_len.unwrap_or(0))
}

/// Samples within a window, plus the step schedule.
#[derive(Debug, Default)]
struct Window {
    samples: VecDeque<Sample>,
}

impl Window {
    /// Whether a sample is due at `now`: `step` after the last one, less a twentieth of
    /// a step, and never twice at the same instant (a zero step samples on every call
    /// whose clock reading is new, so calls at a clock that stands still cannot grow the
    /// window without bound). The slack keeps a caller that ticks every `step` with some
    /// jitter (a scrape interval, a timer measured on another clock) from skipping every
    /// other sample when a tick comes a little early; rates use the samples' actual times,
    /// so it costs no accuracy.
    fn due(&self, now: Duration, step: Duration) -> bool {
        let early = step / 20;
        self.samples.back().is_none_or(|last| {
            now > last.at && now.saturating_add(early) >= last.at.saturating_add(step)
        })
    }

    /// Adds `s` and drops samples older than needed: keeps the newest sample at or
    /// before `s.at - window` as the anchor, with the same twentieth of a `step` of slack
    /// as [`due`](Self::due), so rates span at least `window` less that slack once that
    /// much history exists. Without the slack, ticks that come a little early (which
    /// `due` accepts) would leave the sample one window back just after the cutoff and
    /// anchor the rate a whole step further back: a window of 15 s instead of 10, and a
    /// storm read about a quarter too low. Returns the anchor (the oldest sample kept),
    /// if not `s`.
    fn push(&mut self, s: Sample, window: Duration, step: Duration) -> Option<Sample> {
        self.samples.push_back(s);
        if let Some(cutoff) = s.at.checked_sub(window) {
            let cutoff = cutoff.saturating_add(step / 20);
            while self.samples.len() > 2 && self.samples[1].at <= cutoff {
                self.samples.pop_front();
            }
        }
        (self.samples.len() > 1).then(|| self.samples[0])
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

// ---------------------------------------------------------------- miss velocity (§4.3)

/// Where the miss-velocity rule's `base_rate` comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum BaseRate {
    /// A fixed steady-state miss velocity (misses per second).
    Fixed(f64),
    /// Learned: the configured percentile of the velocities seen in steady state. The
    /// first `warmup` samples only teach (the level stays `Ok` and `learning` is set in
    /// the reports); afterwards every sample that evaluates `Ok` is added, keeping the
    /// last `history` ones, so storms do not raise the baseline.
    ///
    /// The percentile is nearest-rank, so over fewer than 20 samples the P95 is the
    /// largest velocity seen: with the default 12 warm-up samples the baseline is the
    /// warm-up's maximum. A miss burst during the warm-up (which shows in two
    /// consecutive velocities of a 10 s window sampled every 5 s) therefore raises the
    /// threshold until enough steady samples outrank it (about 40, some 200 s at the
    /// defaults). When the first minute may not be steady, use a longer `warmup` or a
    /// [`Fixed`](BaseRate::Fixed) base rate.
    Learn {
        /// Samples observed before alerting starts (default 12: one minute at 5 s steps).
        warmup: usize,
        /// Steady-state samples kept (default 720: one hour at 5 s steps).
        history: usize,
    },
}

impl Default for BaseRate {
    fn default() -> Self {
        BaseRate::Learn {
            warmup: 12,
            history: 720,
        }
    }
}

/// Configuration of the [`MissVelocityMonitor`]. The defaults are the seed's rule:
/// misses per second over a 10-second window, sampled every 5 seconds; threshold
/// `base_rate × (1 + 0.3 × write_ratio) + 120`; `WARN` at or above the threshold, `CRIT`
/// at or above 1.5 × the threshold; `base_rate` the P95 of the steady-state velocity,
/// learned.
///
/// ```
/// use std::time::Duration;
/// use readmostly::monitor::MissVelocityConfig;
///
/// let mut config = MissVelocityConfig::default();
/// config.window = Duration::from_secs(30);
/// config.offset = 50.0;
/// assert_eq!(config.threshold(100.0, 0.5), 100.0 * 1.15 + 50.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct MissVelocityConfig {
    /// Velocity window (default 10 s).
    pub window: Duration,
    /// Sampling step (default 5 s; zero samples at every call with a new clock reading).
    /// A call up to a twentieth of a step early still samples, so jittery ticks every
    /// step do not skip samples.
    pub step: Duration,
    /// Where `base_rate` comes from (default: learned).
    pub base_rate: BaseRate,
    /// Percentile of the learned velocities used as `base_rate` (default 0.95).
    pub percentile: f64,
    /// Weight of the write ratio in the threshold (default 0.3).
    pub write_coefficient: f64,
    /// Constant added to the threshold, misses per second (default 120).
    pub offset: f64,
    /// `CRIT` at or above this multiple of the threshold (default 1.5).
    pub crit_factor: f64,
}

impl Default for MissVelocityConfig {
    fn default() -> Self {
        MissVelocityConfig {
            window: Duration::from_secs(10),
            step: Duration::from_secs(5),
            base_rate: BaseRate::default(),
            percentile: 0.95,
            write_coefficient: 0.3,
            offset: 120.0,
            crit_factor: 1.5,
        }
    }
}

impl MissVelocityConfig {
    /// Checks that the configuration can alert sensibly: a finite, non-negative fixed
    /// base rate; a percentile in `0..=1`; a finite, non-negative write coefficient and
    /// offset; a finite `crit_factor` of at least 1 (so `CRIT` is never below `WARN`); a
    /// learned history of at least one sample. The monitors' constructors panic with
    /// this message otherwise (a NaN base rate, say, would make every level `OK`).
    ///
    /// ```
    /// use readmostly::monitor::MissVelocityConfig;
    /// assert!(MissVelocityConfig::default().check().is_ok());
    /// let mut c = MissVelocityConfig::default();
    /// c.crit_factor = 0.5;
    /// assert!(c.check().unwrap_err().contains("crit_factor"));
    /// ```
    pub fn check(&self) -> Result<(), String> {
        let non_negative = |name: &str, x: f64| {
            if x.is_finite() && x >= 0.0 {
                Ok(())
            } else {
                Err(format!("{name} must be finite and non-negative, not {x}"))
            }
        };
        match self.base_rate {
            BaseRate::Fixed(b) => non_negative("the fixed base rate", b)?,
            BaseRate::Learn { history, .. } => {
                if history == 0 {
                    return Err("a learned base rate needs a history of at least 1".into());
                }
            }
        }
        if !(0.0..=1.0).contains(&self.percentile) {
            return Err(format!(
                "percentile must be in 0..=1, not {}",
                self.percentile
            ));
        }
        non_negative("write_coefficient", self.write_coefficient)?;
        non_negative("offset", self.offset)?;
        if !(self.crit_factor.is_finite() && self.crit_factor >= 1.0) {
            return Err(format!(
                "crit_factor must be finite and at least 1, not {}",
                self.crit_factor
            ));
        }
        Ok(())
    }

    /// The defaults with a fixed `base_rate` (misses per second) instead of a learned one.
    ///
    /// ```
    /// use readmostly::monitor::{BaseRate, MissVelocityConfig};
    /// let c = MissVelocityConfig::default().fixed_base_rate(80.0);
    /// assert_eq!(c.base_rate, BaseRate::Fixed(80.0));
    /// ```
    pub fn fixed_base_rate(mut self, base_rate: f64) -> Self {
        self.base_rate = BaseRate::Fixed(base_rate);
        self
    }

    /// The warning threshold: `base_rate × (1 + write_coefficient × write_ratio) + offset`.
    ///
    /// ```
    /// let c = readmostly::monitor::MissVelocityConfig::default();
    /// assert_eq!(c.threshold(100.0, 1.0), 250.0);
    /// ```
    pub fn threshold(&self, base_rate: f64, write_ratio: f64) -> f64 {
        base_rate * (1.0 + self.write_coefficient * write_ratio) + self.offset
    }

    /// The level of `velocity` against `threshold`.
    ///
    /// ```
    /// use readmostly::monitor::{Level, MissVelocityConfig};
    /// let c = MissVelocityConfig::default();
    /// assert_eq!(c.level(219.0, 220.0), Level::Ok);
    /// assert_eq!(c.level(220.0, 220.0), Level::Warn);
    /// assert_eq!(c.level(330.0, 220.0), Level::Crit);
    /// ```
    pub fn level(&self, velocity: f64, threshold: f64) -> Level {
        if velocity >= self.crit_factor * threshold {
            Level::Crit
        } else if velocity >= threshold {
            Level::Warn
        } else {
            Level::Ok
        }
    }
}

/// One evaluation of the miss-velocity rule.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct MissReport {
    /// When the sample was taken (the monitor's clock).
    pub at: Duration,
    /// Misses per second over the window — over the history there is until a full
    /// window exists (from the second sample on: the first report, one step after the
    /// first sample, is over one step).
    pub velocity: f64,
    /// Writes / (reads + writes) over the window (0 when there were no operations).
    /// Reads include hits only while the map counts them (`hit_statistics`, on by
    /// default): with hit counting off, reads are the lookups that missed the main
    /// table, so the ratio is overstated and the threshold higher than the same load
    /// with hits counted.
    pub write_ratio: f64,
    /// The `base_rate` used.
    pub base_rate: f64,
    /// The warning threshold; critical is `crit_factor ×` this.
    pub threshold: f64,
    /// The resulting level.
    pub level: Level,
    /// Whether the base rate is still being learned (no alerts yet).
    pub learning: bool,
}

#[derive(Debug, Default)]
struct MissState {
    window: Window,
    /// Steady-state velocities (learned base rate).
    history: VecDeque<f64>,
    /// Samples evaluated so far (for the warm-up).
    evaluated: usize,
    last: Option<MissReport>,
}

/// The seed's miss-velocity alert (§4.3): misses per second over a sliding window,
/// against a threshold that rises with the share of writes.
///
/// Misses are lookups that the read table's main hash table could not answer, the
/// count that drives promotion: [`Stats::misses`] (the dirty table consulted under the
/// lock) plus [`Stats::recent_lookups`] (lookups that consulted the recent table of
/// keys added since the last promotion, without the lock). A hot key stored and read under a cache-aside
/// pattern, a flood of lookups of freshly inserted keys, or a promotion rule that never
/// fires all show up here before the backend behind the cache falls over.
pub struct MissVelocityMonitor {
    config: MissVelocityConfig,
    state: Mutex<MissState>,
    notify: Notify<MissReport>,
}

impl MissVelocityMonitor {
    /// A monitor on the system clock.
    ///
    /// # Panics
    ///
    /// If the configuration cannot alert sensibly (see [`MissVelocityConfig::check`]).
    ///
    /// ```
    /// let m = readmostly::monitor::MissVelocityMonitor::new(Default::default());
    /// assert_eq!(m.level(), readmostly::monitor::Level::Ok);
    /// ```
    pub fn new(config: MissVelocityConfig) -> Self {
        Self::with_clock(config, SystemClock::new())
    }

    /// A monitor on `clock` (a [`ManualClock`] in tests).
    ///
    /// # Panics
    ///
    /// If the configuration cannot alert sensibly (see [`MissVelocityConfig::check`]).
    ///
    /// ```
    /// use readmostly::monitor::{ManualClock, MissVelocityMonitor};
    /// let m = MissVelocityMonitor::with_clock(Default::default(), ManualClock::new());
    /// assert!(m.last_report().is_none());
    /// ```
    pub fn with_clock(config: MissVelocityConfig, clock: impl Clock + 'static) -> Self {
        if let Err(e) = config.check() {
            panic!("invalid MissVelocityConfig: {e}");
        }
        MissVelocityMonitor {
            config,
            state: Mutex::new(MissState::default()),
            notify: Notify::new(Arc::new(clock)),
        }
    }

    /// Calls `f` on every level change, after the sample that caused it, with no lock
    /// held (it may call back into the monitor). A panic in `f` propagates to the
    /// caller of `sample`/`tick`; the new level is already recorded.
    ///
    /// ```
    /// let m = readmostly::monitor::MissVelocityMonitor::new(Default::default())
    ///     .on_change(|change| eprintln!("{} -> {}", change.from, change.to));
    /// # drop(m);
    /// ```
    pub fn on_change(
        mut self,
        f: impl Fn(&LevelChange<MissReport>) + Send + Sync + 'static,
    ) -> Self {
        self.notify.on_change = Some(Box::new(f));
        self
    }

    /// Names the monitored map. With the `metrics` feature every report is recorded
    /// under this name (see [`metrics`](crate#features)).
    ///
    /// ```
    /// let m = readmostly::monitor::MissVelocityMonitor::new(Default::default()).named("sessions");
    /// assert_eq!(m.name(), Some("sessions"));
    /// ```
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.notify.name = Some(name.into());
        self
    }

    /// The name set by [`named`](Self::named).
    pub fn name(&self) -> Option<&str> {
        self.notify.name.as_deref()
    }

    /// The configuration.
    pub fn config(&self) -> &MissVelocityConfig {
        &self.config
    }

    /// The current level (polled state).
    pub fn level(&self) -> Level {
        self.notify.level()
    }

    /// The latest report, if any sample produced one.
    pub fn last_report(&self) -> Option<MissReport> {
        lock(&self.state).last
    }

    /// Reads `source`'s statistics and evaluates them, if a step has elapsed since the
    /// last sample; otherwise does nothing (without reading the statistics). Returns the
    /// new report, or `None` when no sample was due or this was the very first sample.
    pub fn tick(&self, source: &(impl StatsSource + ?Sized)) -> Option<MissReport> {
        let now = self.notify.clock.now();
        if !lock(&self.state).window.due(now, self.config.step) {
            return None;
        }
        self.sample_at(now, &source.stats())
    }

    /// Evaluates `stats` if a step has elapsed since the last sample (see
    /// [`tick`](Self::tick)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use readmostly::monitor::{Level, ManualClock, MissVelocityConfig, MissVelocityMonitor};
    /// use readmostly::Stats;
    ///
    /// let clock = ManualClock::new();
    /// let m = MissVelocityMonitor::with_clock(
    ///     MissVelocityConfig::default().fixed_base_rate(100.0),
    ///     clock.clone(),
    /// );
    /// let mut stats = Stats::default();
    /// assert!(m.sample(&stats).is_none()); // the first sample only sets the origin
    /// clock.advance(Duration::from_secs(5));
    /// stats.misses = 5 * 400; // 400 misses/s, no writes: threshold 220, critical 330
    /// let r = m.sample(&stats).unwrap();
    /// assert_eq!((r.velocity, r.level), (400.0, Level::Crit));
    /// ```
    pub fn sample(&self, stats: &Stats) -> Option<MissReport> {
        self.sample_at(self.notify.clock.now(), stats)
    }

    fn sample_at(&self, now: Duration, stats: &Stats) -> Option<MissReport> {
        let c = &self.config;
        let mut st = lock(&self.state);
        if !st.window.due(now, c.step) {
            return None;
        }
        let current = Sample::new(now, stats);
        let anchor = st.window.push(current, c.window, c.step)?;
        let span = secs(now.saturating_sub(anchor.at));
        if span <= 0.0 {
            return None;
        }
        // Saturating: striped sums can step back. Hit and recent-lookup counters are
        // bumped with a plain load + store, so a thread preempted between the two can
        // write back an older count and erase increments made meanwhile; a snapshot
        // built by hand can also be lower. A window that straddles such a step reads 0
        // (not a wrapped huge rate); later windows, anchored on the lower sum, count
        // from there. Keeping the highest sum seen instead would under-count every
        // later window until the counter caught up, so the lost increments are
        // simply lost.
        let velocity = current.misses.saturating_sub(anchor.misses) as f64 / span;
        let reads = current.reads.saturating_sub(anchor.reads);
        let writes = current.writes.saturating_sub(anchor.writes);
        let ops = reads.saturating_add(writes);
        let write_ratio = if ops == 0 {
            0.0
        } else {
            writes as f64 / ops as f64
        };
        st.evaluated += 1;
        let (base_rate, learning) = match c.base_rate {
            BaseRate::Fixed(b) => (b, false),
            BaseRate::Learn { warmup, .. } => (
                percentile(&st.history, c.percentile),
                st.evaluated <= warmup,
            ),
        };
        let threshold = c.threshold(base_rate, write_ratio);
        let level = if learning {
            Level::Ok
        } else {
            c.level(velocity, threshold)
        };
        if let BaseRate::Learn { history, .. } = c.base_rate {
            if level == Level::Ok {
                st.history.push_back(velocity);
                while st.history.len() > history.max(1) {
                    st.history.pop_front();
                }
            }
        }
        let report = MissReport {
            at: now,
            velocity,
            write_ratio,
            base_rate,
            threshold,
            level,
            learning,
        };
        st.last = Some(report);
        let from = self.notify.swap_locked(level);
        // Under the lock too: the gauges follow the samples' order.
        #[cfg(feature = "metrics")]
        if let Some(name) = &self.notify.name {
            crate::metrics::record_miss_report(name, &report);
        }
        drop(st);
        self.notify.notify(from, level, report);
        Some(report)
    }
}

impl fmt::Debug for MissVelocityMonitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MissVelocityMonitor")
            .field("config", &self.config)
            .field("notify", &self.notify)
            .field("last", &self.last_report())
            .finish()
    }
}

/// The nearest-rank percentile `p` of `values` (0 when empty).
fn percentile(values: &VecDeque<f64>, p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted: Vec<f64> = values.iter().copied().collect();
    sorted.sort_by(f64::total_cmp);
    let rank = (p.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while the lock is held (none of our code under it can panic short of a
    // bug) leaves the state consistent enough for statistics: ignore poisoning.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// ------------------------------------------------------------------ growth guard (§4.1)

/// Configuration of the [`GrowthGuard`]; defaults are the seed's: 50,000 entries, 2,000
/// new entries per minute.
///
/// ```
/// let mut c = readmostly::monitor::GrowthConfig::default();
/// assert_eq!((c.max_size, c.max_growth_per_minute), (50_000, 2_000.0));
/// c.max_size = 1_000_000;
/// let guard = readmostly::monitor::GrowthGuard::new(c);
/// assert_eq!(guard.config().max_size, 1_000_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct GrowthConfig {
    /// `CRIT` when the dirty table holds more entries than this (default 50,000).
    pub max_size: usize,
    /// `WARN` when the dirty table grew by more than this many entries per minute over
    /// the last `window` (default 2,000).
    pub max_growth_per_minute: f64,
    /// Window of the growth rate (default one minute).
    pub window: Duration,
    /// Sampling step (default 5 s; zero samples at every call with a new clock reading).
    /// A call up to a twentieth of a step early still samples, so jittery ticks every
    /// step do not skip samples.
    pub step: Duration,
}

impl GrowthConfig {
    /// Checks that the configuration can alert sensibly: `max_growth_per_minute` finite
    /// and non-negative (a NaN limit would never fire). The guard's constructors panic
    /// with this message otherwise.
    ///
    /// ```
    /// use readmostly::monitor::GrowthConfig;
    /// assert!(GrowthConfig::default().check().is_ok());
    /// let mut c = GrowthConfig::default();
    /// c.max_growth_per_minute = f64::NAN;
    /// assert!(c.check().is_err());
    /// ```
    pub fn check(&self) -> Result<(), String> {
        let g = self.max_growth_per_minute;
        if !(g.is_finite() && g >= 0.0) {
            return Err(format!(
                "max_growth_per_minute must be finite and non-negative, not {g}"
            ));
        }
        Ok(())
    }
}

impl Default for GrowthConfig {
    fn default() -> Self {
        GrowthConfig {
            max_size: 50_000,
            max_growth_per_minute: 2_000.0,
            window: Duration::from_secs(60),
            step: Duration::from_secs(5),
        }
    }
}

/// One evaluation of the growth guard.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct GrowthReport {
    /// When the sample was taken.
    pub at: Duration,
    /// Entries in the dirty table (present keys and deleted entries not yet expunged),
    /// or the present keys when there is no dirty table.
    pub size: usize,
    /// Growth of `size` over the last `window`, in entries per minute; `None` until a
    /// full window has been observed.
    pub growth_per_minute: Option<f64>,
    /// `size > max_size`.
    pub size_exceeded: bool,
    /// `growth_per_minute > max_growth_per_minute`.
    pub growth_exceeded: bool,
    /// `Crit` if the size limit is exceeded, else `Warn` if the growth limit is, else `Ok`.
    pub level: Level,
}

/// The seed's dirty-table growth guard (§4.1): alerts when the dirty table exceeds a
/// size or grows faster than a rate, so that a leak (keys that are never removed) is
/// seen long before the process runs out of memory. Pair it with a capacity limit
/// ([`Builder::max_len`](crate::Builder::max_len) and `try_insert`) to turn the leak into
/// an error.
///
/// ```
/// use readmostly::monitor::{GrowthConfig, GrowthGuard, Level, ManualClock};
/// use readmostly::SyncMap;
///
/// let map = SyncMap::new();
/// let clock = ManualClock::new();
/// let mut config = GrowthConfig::default();
/// config.max_size = 100;
/// let guard = GrowthGuard::with_clock(config, clock.clone());
/// for k in 0..150u32 {
///     map.insert(k, k);
/// }
/// let report = guard.tick(&map).unwrap();
/// assert_eq!((report.size, report.level), (150, Level::Crit));
/// ```
pub struct GrowthGuard {
    config: GrowthConfig,
    state: Mutex<GrowthState>,
    notify: Notify<GrowthReport>,
}

#[derive(Debug, Default)]
struct GrowthState {
    window: Window,
    last: Option<GrowthReport>,
}

impl GrowthGuard {
    /// A guard on the system clock.
    ///
    /// # Panics
    ///
    /// If the configuration cannot alert sensibly (see [`GrowthConfig::check`]).
    ///
    /// ```
    /// let g = readmostly::monitor::GrowthGuard::new(Default::default());
    /// assert_eq!(g.level(), readmostly::monitor::Level::Ok);
    /// ```
    pub fn new(config: GrowthConfig) -> Self {
        Self::with_clock(config, SystemClock::new())
    }

    /// A guard on `clock`.
    ///
    /// # Panics
    ///
    /// If the configuration cannot alert sensibly (see [`GrowthConfig::check`]).
    pub fn with_clock(config: GrowthConfig, clock: impl Clock + 'static) -> Self {
        if let Err(e) = config.check() {
            panic!("invalid GrowthConfig: {e}");
        }
        GrowthGuard {
            config,
            state: Mutex::new(GrowthState::default()),
            notify: Notify::new(Arc::new(clock)),
        }
    }

    /// Calls `f` on every level change (see [`MissVelocityMonitor::on_change`]).
    pub fn on_change(
        mut self,
        f: impl Fn(&LevelChange<GrowthReport>) + Send + Sync + 'static,
    ) -> Self {
        self.notify.on_change = Some(Box::new(f));
        self
    }

    /// Names the guarded map (the `map` label of the `metrics` feature).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.notify.name = Some(name.into());
        self
    }

    /// The name set by [`named`](Self::named).
    pub fn name(&self) -> Option<&str> {
        self.notify.name.as_deref()
    }

    /// The configuration.
    pub fn config(&self) -> &GrowthConfig {
        &self.config
    }

    /// The current level (polled state).
    pub fn level(&self) -> Level {
        self.notify.level()
    }

    /// The latest report.
    pub fn last_report(&self) -> Option<GrowthReport> {
        lock(&self.state).last
    }

    /// Reads `source`'s statistics and evaluates them if a step has elapsed since the
    /// last sample (the first call always samples). Returns the report of a sample taken.
    pub fn tick(&self, source: &(impl StatsSource + ?Sized)) -> Option<GrowthReport> {
        let now = self.notify.clock.now();
        if !lock(&self.state).window.due(now, self.config.step) {
            return None;
        }
        self.sample_at(now, &source.stats())
    }

    /// Evaluates `stats` if a step has elapsed since the last sample.
    pub fn sample(&self, stats: &Stats) -> Option<GrowthReport> {
        self.sample_at(self.notify.clock.now(), stats)
    }

    fn sample_at(&self, now: Duration, stats: &Stats) -> Option<GrowthReport> {
        let c = &self.config;
        let mut st = lock(&self.state);
        if !st.window.due(now, c.step) {
            return None;
        }
        let current = Sample::new(now, stats);
        let growth_per_minute = st
            .window
            .push(current, c.window, c.step)
            .and_then(|anchor| {
                let span = now.saturating_sub(anchor.at);
                (span >= c.window && !span.is_zero())
                    .then(|| (current.size as f64 - anchor.size as f64) / secs(span) * 60.0)
            });
        let size_exceeded = current.size > c.max_size;
        let growth_exceeded = growth_per_minute.is_some_and(|g| g > c.max_growth_per_minute);
        let level = if size_exceeded {
            Level::Crit
        } else if growth_exceeded {
            Level::Warn
        } else {
            Level::Ok
        };
        let report = GrowthReport {
            at: now,
            size: current.size,
            growth_per_minute,
            size_exceeded,
            growth_exceeded,
            level,
        };
        st.last = Some(report);
        let from = self.notify.swap_locked(level);
        // Under the lock too: the gauges follow the samples' order.
        #[cfg(feature = "metrics")]
        if let Some(name) = &self.notify.name {
            crate::metrics::record_growth_report(name, &report);
        }
        drop(st);
        self.notify.notify(from, level, report);
        Some(report)
    }
}

impl fmt::Debug for GrowthGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrowthGuard")
            .field("config", &self.config)
            .field("notify", &self.notify)
            .field("last", &self.last_report())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_nearest_rank() {
        let v: VecDeque<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.95), 95.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
        assert_eq!(percentile(&VecDeque::from([3.0]), 0.95), 3.0);
        assert_eq!(percentile(&VecDeque::new(), 0.95), 0.0);
    }

    #[test]
    fn a_zero_step_samples_once_per_clock_reading() {
        let clock = ManualClock::new();
        let config = MissVelocityConfig {
            step: Duration::ZERO,
            ..MissVelocityConfig::default()
        };
        let monitor = MissVelocityMonitor::with_clock(config, clock.clone());
        let stats = Stats::default();
        for _ in 0..1_000 {
            monitor.sample(&stats);
        }
        assert_eq!(lock(&monitor.state).window.samples.len(), 1);
        clock.advance(Duration::from_millis(1));
        assert!(monitor.sample(&stats).is_some());
        assert!(monitor.sample(&stats).is_none());
        assert_eq!(lock(&monitor.state).window.samples.len(), 2);
    }

    #[test]
    fn window_keeps_an_anchor_at_least_a_window_old() {
        const FIVE: Duration = Duration::from_secs(5);
        let mut w = Window::default();
        let s = |t: u64| Sample {
            at: Duration::from_secs(t),
            misses: t,
            reads: 0,
            writes: 0,
            size: 0,
        };
        assert!(w.push(s(0), Duration::from_secs(10), FIVE).is_none());
        assert_eq!(
            w.push(s(5), Duration::from_secs(10), FIVE)
                .unwrap()
                .at
                .as_secs(),
            0
        );
        assert_eq!(
            w.push(s(10), Duration::from_secs(10), FIVE)
                .unwrap()
                .at
                .as_secs(),
            0
        );
        assert_eq!(
            w.push(s(15), Duration::from_secs(10), FIVE)
                .unwrap()
                .at
                .as_secs(),
            5
        );
        // Late sample: the anchor stays at least a window back.
        assert_eq!(
            w.push(s(27), Duration::from_secs(10), FIVE)
                .unwrap()
                .at
                .as_secs(),
            15
        );
        assert!(!w.due(Duration::from_secs(31), Duration::from_secs(5)));
        assert!(w.due(Duration::from_secs(32), Duration::from_secs(5)));
    }
}
