//! Export through the [`metrics`](https://docs.rs/metrics) facade (feature `metrics`).
//!
//! Every function records under Prometheus-style names with a `map` label, into
//! whatever recorder the application installed (for example
//! `metrics-exporter-prometheus`; see `examples/prometheus.rs`). Nothing is recorded on
//! the map's own paths: call [`record_stats`] when you want the counters exported (from
//! the same loop that ticks the monitors, or before each scrape), and name the monitors
//! ([`MissVelocityMonitor::named`](crate::monitor::MissVelocityMonitor::named),
//! [`GrowthGuard::named`](crate::monitor::GrowthGuard::named)) to have every report
//! recorded.
//!
//! Counters are recorded as absolute values (the map's own totals). Two consequences
//! for a Prometheus-style counter, which must only rise: a map dropped and rebuilt under
//! the same `map` label starts again from 0, which an exporter keeping the highest value
//! seen (as `metrics-exporter-prometheus` does) shows as a counter standing still until
//! the new totals pass the old; and the hit, recent-lookup and overwrite totals are
//! summed from per-thread stripes bumped without a read-modify-write, so a preempted
//! bump can lose increments and the sum can step back slightly (see [`Stats`]). Give a
//! rebuilt map a new label, or reset the recorder, when the history matters.
//!
//! | name | kind | from |
//! |---|---|---|
//! | `readmostly_hits_total` | counter | [`Stats::hits`] |
//! | `readmostly_recent_lookups_total` | counter | [`Stats::recent_lookups`] |
//! | `readmostly_misses_total` | counter | [`Stats::misses`] |
//! | `readmostly_slow_reads_total` | counter | [`Stats::slow_reads`] |
//! | `readmostly_promotions_total` | counter | [`Stats::promotions`] |
//! | `readmostly_recent_full_promotions_total` | counter | [`Stats::recent_full_promotions`] |
//! | `readmostly_dirty_rebuilds_total` | counter | [`Stats::dirty_rebuilds`] |
//! | `readmostly_rebuild_copied_total` | counter | [`Stats::rebuild_copied`] |
//! | `readmostly_expunged_total` | counter | [`Stats::expunged`] |
//! | `readmostly_new_keys_total` | counter | [`Stats::new_keys`] |
//! | `readmostly_overwrites_total` | counter | [`Stats::overwrites`] |
//! | `readmostly_removes_total` | counter | [`Stats::removes`] |
//! | `readmostly_retired_total` | counter | [`Stats::retired`] |
//! | `readmostly_retired_bytes_total` | counter | [`Stats::retired_bytes`] |
//! | `readmostly_len` | gauge | [`Stats::len`] |
//! | `readmostly_read_len` | gauge | [`Stats::read_len`] |
//! | `readmostly_recent_len` | gauge | [`Stats::recent_len`] |
//! | `readmostly_dirty_len` | gauge | [`Stats::dirty_len`] (0 when there is no dirty table) |
//! | `readmostly_longest_rebuild_step` | gauge | [`Stats::longest_rebuild_step`] (entries) |
//! | `readmostly_longest_promotion_move` | gauge | [`Stats::longest_promotion_move`] (entries) |
//! | `readmostly_longest_recent_growth` | gauge | [`Stats::longest_recent_growth`] (entries) |
//! | `readmostly_longest_clear_step` | gauge | [`Stats::longest_clear_step`] (entries) |
//! | `readmostly_rebuild_pending` | gauge | [`Stats::rebuild_pending`] (entries) |
//! | `readmostly_recent_growth_pending` | gauge | [`Stats::recent_growth_pending`] (slots) |
//! | `readmostly_expunged_pending` | gauge | [`Stats::expunged_pending`] (entries) |
//! | `readmostly_miss_velocity` | gauge | [`MissReport::velocity`] (misses/s) |
//! | `readmostly_miss_threshold` | gauge | [`MissReport::threshold`] |
//! | `readmostly_miss_base_rate` | gauge | [`MissReport::base_rate`] |
//! | `readmostly_write_ratio` | gauge | [`MissReport::write_ratio`] |
//! | `readmostly_miss_level` | gauge | [`MissReport::level`]: 0 OK, 1 WARN, 2 CRIT |
//! | `readmostly_dirty_size` | gauge | [`GrowthReport::size`] |
//! | `readmostly_dirty_growth_per_minute` | gauge | [`GrowthReport::growth_per_minute`] (absent until known) |
//! | `readmostly_growth_level` | gauge | [`GrowthReport::level`]: 0 OK, 1 WARN, 2 CRIT |
//!
//! ```
//! use readmostly::SyncMap;
//!
//! let map = SyncMap::new();
//! map.insert("k", 1);
//! // With no recorder installed this is a no-op; with one, it sets the values above.
//! readmostly::metrics::record_stats("settings", &map.stats());
//! ```
#![forbid(unsafe_code)]

use ::metrics::{counter, gauge};

use crate::monitor::{GrowthReport, MissReport};
use crate::Stats;

/// Records every counter and size of `stats` under `map` (counters are set to their
/// absolute value, so calling this repeatedly is idempotent).
pub fn record_stats(map: &str, stats: &Stats) {
    let counters: [(&'static str, u64); 14] = [
        ("readmostly_hits_total", stats.hits),
        ("readmostly_recent_lookups_total", stats.recent_lookups),
        ("readmostly_misses_total", stats.misses),
        ("readmostly_slow_reads_total", stats.slow_reads),
        ("readmostly_promotions_total", stats.promotions),
        (
            "readmostly_recent_full_promotions_total",
            stats.recent_full_promotions,
        ),
        ("readmostly_dirty_rebuilds_total", stats.dirty_rebuilds),
        ("readmostly_rebuild_copied_total", stats.rebuild_copied),
        ("readmostly_expunged_total", stats.expunged),
        ("readmostly_new_keys_total", stats.new_keys),
        ("readmostly_overwrites_total", stats.overwrites),
        ("readmostly_removes_total", stats.removes),
        ("readmostly_retired_total", stats.retired),
        ("readmostly_retired_bytes_total", stats.retired_bytes),
    ];
    for (name, value) in counters {
        counter!(name, "map" => map.to_owned()).absolute(value);
    }
    let gauges: [(&'static str, usize); 11] = [
        ("readmostly_len", stats.len),
        ("readmostly_read_len", stats.read_len),
        ("readmostly_recent_len", stats.recent_len),
        ("readmostly_dirty_len", stats.dirty_len.unwrap_or(0)),
        (
            "readmostly_longest_rebuild_step",
            usize::try_from(stats.longest_rebuild_step).unwrap_or(usize::MAX),
        ),
        (
            "readmostly_longest_promotion_move",
            usize::try_from(stats.longest_promotion_move).unwrap_or(usize::MAX),
        ),
        (
            "readmostly_longest_recent_growth",
            usize::try_from(stats.longest_recent_growth).unwrap_or(usize::MAX),
        ),
        (
            "readmostly_longest_clear_step",
            usize::try_from(stats.longest_clear_step).unwrap_or(usize::MAX),
        ),
        ("readmostly_rebuild_pending", stats.rebuild_pending),
        (
            "readmostly_recent_growth_pending",
            stats.recent_growth_pending,
        ),
        ("readmostly_expunged_pending", stats.expunged_pending),
    ];
    for (name, value) in gauges {
        gauge!(name, "map" => map.to_owned()).set(value as f64);
    }
}

/// Records a miss-velocity report under `map` (done automatically by a named
/// [`MissVelocityMonitor`](crate::monitor::MissVelocityMonitor)).
pub fn record_miss_report(map: &str, report: &MissReport) {
    gauge!("readmostly_miss_velocity", "map" => map.to_owned()).set(report.velocity);
    gauge!("readmostly_miss_threshold", "map" => map.to_owned()).set(report.threshold);
    gauge!("readmostly_miss_base_rate", "map" => map.to_owned()).set(report.base_rate);
    gauge!("readmostly_write_ratio", "map" => map.to_owned()).set(report.write_ratio);
    gauge!("readmostly_miss_level", "map" => map.to_owned()).set(f64::from(report.level.as_u8()));
}

/// Records a growth report under `map` (done automatically by a named
/// [`GrowthGuard`](crate::monitor::GrowthGuard)).
pub fn record_growth_report(map: &str, report: &GrowthReport) {
    gauge!("readmostly_dirty_size", "map" => map.to_owned()).set(report.size as f64);
    if let Some(g) = report.growth_per_minute {
        gauge!("readmostly_dirty_growth_per_minute", "map" => map.to_owned()).set(g);
    }
    gauge!("readmostly_growth_level", "map" => map.to_owned()).set(f64::from(report.level.as_u8()));
}
