//! Serves a map's statistics and monitor levels to Prometheus.
//!
//! ```sh
//! cargo run --example prometheus --features metrics            # runs for 30 s
//! cargo run --example prometheus --features metrics -- 300     # or as long as you like
//! curl http://127.0.0.1:<port>/metrics                          # the port is printed
//! ```
//!
//! A `ShardedMap` of per-tenant settings is read and written by a few threads; once a
//! second the main thread records its statistics and ticks a miss-velocity monitor and a
//! growth guard (both named, so their reports are exported too). Every few seconds a
//! burst of lookups of freshly inserted keys makes misses spike, so the miss level can be
//! seen moving. The exporter listens on 127.0.0.1 only, on a free port.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::PrometheusBuilder;
use readmostly::monitor::{GrowthGuard, MissVelocityConfig, MissVelocityMonitor};
use readmostly::ShardedMap;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(30);

    // Ask the OS for a free port, then hand it to the exporter.
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()?;
    println!("serving metrics on http://{addr}/metrics for {seconds} s");

    let settings = ShardedMap::<(u32, u32), u64>::builder()
        .route_by_tenant(|k: &(u32, u32)| u64::from(k.0))
        .build();
    for tenant in 0..100 {
        for key in 0..50 {
            settings.insert((tenant, key), 0);
        }
    }
    let misses = MissVelocityMonitor::new(MissVelocityConfig::default())
        .named("settings")
        .on_change(|c| println!("miss velocity {} -> {}: {:?}", c.from, c.to, c.report));
    let growth = GrowthGuard::new(Default::default())
        .named("settings")
        .on_change(|c| println!("dirty growth {} -> {}: {:?}", c.from, c.to, c.report));

    let stop = AtomicBool::new(false);
    let end = Instant::now() + Duration::from_secs(seconds);
    std::thread::scope(|s| {
        for t in 0..3u32 {
            let (settings, stop) = (&settings, &stop);
            s.spawn(move || {
                let mut i = 0u32;
                while !stop.load(Relaxed) {
                    let m = settings.pin();
                    let key = (i.wrapping_mul(2_654_435_761) % 100, i % 50);
                    if i % 20 == 0 {
                        m.insert(key, u64::from(i));
                    } else {
                        std::hint::black_box(m.get(&key));
                    }
                    if t == 0 && i % 2_000_000 == 0 {
                        // Burst: new keys read back before the next promotion.
                        for k in 0..5_000 {
                            m.insert((1_000 + i, k), 1);
                            std::hint::black_box(m.get(&(1_000 + i, k)));
                        }
                    }
                    i = i.wrapping_add(1);
                }
            });
        }
        while Instant::now() < end {
            std::thread::sleep(Duration::from_secs(1));
            let stats = settings.stats();
            readmostly::metrics::record_stats("settings", &stats);
            misses.sample(&stats);
            growth.sample(&stats);
        }
        stop.store(true, Relaxed);
    });
    println!("{}", settings.stats());
    Ok(())
}
