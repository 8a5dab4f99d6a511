//! The `metrics` feature end to end: a Prometheus exporter listening on 127.0.0.1 (a
//! free port), maps and monitors recording into it, and a scrape of `/metrics` over
//! plain TCP whose values must match the maps' statistics. Bounded in time: every
//! socket operation has a timeout and the whole scrape a deadline.
#![cfg(not(any(loom, miri)))]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::PrometheusBuilder;
use readmostly::monitor::{GrowthGuard, ManualClock, MissVelocityConfig, MissVelocityMonitor};
use readmostly::{ShardedMap, SyncMap};

/// A port that was free a moment ago (the exporter binds it right after).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port on 127.0.0.1")
}

/// `GET /metrics` over a plain TCP connection; retries until the listener is up.
fn scrape(addr: SocketAddr, deadline: Instant) -> String {
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.set_write_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
            let mut response = String::new();
            s.read_to_string(&mut response)?;
            Ok(response)
        })();
        match attempt {
            Ok(r) if r.starts_with("HTTP/1.1 200") => return r,
            other => {
                assert!(
                    Instant::now() < deadline,
                    "no scrape from {addr} before the deadline: {other:?}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Parses the exposition format into `name{labels}` → value.
fn samples(body: &str) -> HashMap<String, f64> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

#[test]
fn prometheus_scrape_reports_map_statistics() {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .expect("install the Prometheus exporter");

    // A SyncMap: 10 new keys (an explicit promotion after the first eight puts them in
    // the main table; the last two start a rebuild and stay in the recent table), reads
    // (hits and recent-table lookups), 3 overwrites, 2 removes. One entry per rebuild
    // step, so that the rebuild is still under way when the statistics are taken.
    let orders: SyncMap<u64, String> = SyncMap::builder().rebuild_step(1).build();
    for k in 0..8 {
        orders.insert(k, format!("order-{k}"));
    }
    assert!(orders.promote());
    for k in 8..10 {
        orders.insert(k, format!("order-{k}"));
    }
    for _ in 0..3 {
        for k in 0..10 {
            assert!(orders.contains_key(&k));
        }
    }
    for k in 0..3 {
        orders.insert(k, "updated".to_string());
    }
    orders.remove(&8);
    orders.remove(&9);
    // A ShardedMap routed by tenant.
    let tenants = ShardedMap::builder()
        .shards(8)
        .route_by_tenant(|k: &(u32, u32)| u64::from(k.0))
        .build();
    for t in 0..4 {
        for i in 0..5 {
            tenants.insert((t, i), i);
        }
    }

    // A map cleared in steps: 16 entries per step with one entry per rebuild step.
    let mut archive: SyncMap<u64, u64> = SyncMap::builder().rebuild_step(1).build();
    archive.extend((0..40).map(|k| (k, k)));
    archive.clear();
    assert!(archive.is_empty());

    let orders_stats = orders.stats();
    let tenants_stats = tenants.stats();
    readmostly::metrics::record_stats("orders", &orders_stats);
    readmostly::metrics::record_stats("tenants", &tenants_stats);
    readmostly::metrics::record_stats("archive", &archive.stats());

    // Named monitors record their reports: a miss storm on "orders".
    let clock = ManualClock::new();
    let monitor = MissVelocityMonitor::with_clock(
        MissVelocityConfig::default().fixed_base_rate(10.0),
        clock.clone(),
    )
    .named("orders");
    let mut stats = orders_stats;
    monitor.sample(&stats);
    stats.misses += 10_000;
    clock.advance(Duration::from_secs(5));
    let report = monitor.sample(&stats).unwrap();
    let growth = GrowthGuard::with_clock(Default::default(), clock.clone()).named("orders");
    growth.sample(&orders_stats).unwrap();

    let response = scrape(addr, Instant::now() + Duration::from_secs(20));
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    let got = samples(body);
    let value = |series: &str| -> f64 {
        *got.get(series)
            .unwrap_or_else(|| panic!("{series} missing from the scrape:\n{body}"))
    };

    assert_eq!(value(r#"readmostly_new_keys_total{map="orders"}"#), 10.0);
    assert_eq!(value(r#"readmostly_overwrites_total{map="orders"}"#), 3.0);
    assert_eq!(value(r#"readmostly_removes_total{map="orders"}"#), 2.0);
    assert_eq!(value(r#"readmostly_len{map="orders"}"#), 8.0);
    assert!(orders_stats.hits > 0);
    assert!(orders_stats.rebuild_pending > 0);
    // Every series that mirrors a `Stats` field of the "orders" map.
    let o = &orders_stats;
    let from_stats = [
        ("readmostly_hits_total", o.hits as f64),
        ("readmostly_misses_total", o.misses as f64),
        ("readmostly_promotions_total", o.promotions as f64),
        ("readmostly_retired_total", o.retired as f64),
        // Removed keys stay in the dirty table as deleted entries until a rebuild.
        ("readmostly_dirty_size", o.dirty_len.unwrap() as f64),
        ("readmostly_recent_lookups_total", o.recent_lookups as f64),
        ("readmostly_recent_len", o.recent_len as f64),
        (
            "readmostly_longest_rebuild_step",
            o.longest_rebuild_step as f64,
        ),
        (
            "readmostly_longest_promotion_move",
            o.longest_promotion_move as f64,
        ),
        (
            "readmostly_longest_recent_growth",
            o.longest_recent_growth as f64,
        ),
        ("readmostly_longest_clear_step", o.longest_clear_step as f64),
        ("readmostly_rebuild_pending", o.rebuild_pending as f64),
        (
            "readmostly_recent_growth_pending",
            o.recent_growth_pending as f64,
        ),
        ("readmostly_expunged_pending", o.expunged_pending as f64),
    ];
    for (name, want) in from_stats {
        assert_eq!(value(&format!(r#"{name}{{map="orders"}}"#)), want, "{name}");
    }
    assert_eq!(value(r#"readmostly_len{map="tenants"}"#), 20.0);
    assert_eq!(
        value(r#"readmostly_longest_clear_step{map="archive"}"#),
        16.0
    );
    assert_eq!(value(r#"readmostly_len{map="archive"}"#), 0.0);
    assert_eq!(value(r#"readmostly_new_keys_total{map="tenants"}"#), 20.0);
    assert_eq!(value(r#"readmostly_miss_velocity{map="orders"}"#), 2_000.0);
    assert_eq!(
        value(r#"readmostly_miss_threshold{map="orders"}"#),
        report.threshold
    );
    assert_eq!(value(r#"readmostly_miss_level{map="orders"}"#), 2.0, "CRIT");
    assert_eq!(value(r#"readmostly_growth_level{map="orders"}"#), 0.0);
    assert!(
        body.contains("# TYPE readmostly_hits_total counter"),
        "{body}"
    );
    assert!(body.contains("# TYPE readmostly_len gauge"), "{body}");
}
