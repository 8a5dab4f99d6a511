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
//! growth guard (both named, so their reports are exported too; their windows are
//! shortened so that the default 30 s run shows them at work). Every 8 s after the
//! monitor has learned, a new tenant's keys are added and read back, so misses spike and
//! the dirty table grows: both levels can be seen moving. The exporter listens on 127.0.0.1 only, on a free port.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::PrometheusBuilder;
use readmostly::monitor::{
    BaseRate, GrowthConfig, GrowthGuard, MissVelocityConfig, MissVelocityMonitor,
};
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
    // The seed's rule, on a faster clock so that a short run shows it: a 2 s window
    // sampled every second, the base rate learned over the first 10 s (the defaults,
    // 10 s / 5 s and a minute of learning, need runs of several minutes).
    let mut config = MissVelocityConfig::default();
    config.window = Duration::from_secs(2);
    config.step = Duration::from_secs(1);
    config.base_rate = BaseRate::Learn {
        warmup: 10,
        history: 600,
    };
    let misses = MissVelocityMonitor::new(config)
        .named("settings")
        .on_change(|c| println!("miss velocity {} -> {}: {:?}", c.from, c.to, c.report));
    // Growth over 10 s instead of a minute, for the same reason.
    let mut growth_config = GrowthConfig::default();
    growth_config.window = Duration::from_secs(10);
    growth_config.step = Duration::from_secs(1);
    let growth = GrowthGuard::new(growth_config)
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
                        m.insert(key, u64::from(i + t));
                    } else {
                        std::hint::black_box(m.get(&key));
                    }
                    i = i.wrapping_add(1);
                }
            });
        }
        let start = Instant::now();
        let mut bursts = 0;
        while Instant::now() < end {
            std::thread::sleep(Duration::from_secs(1));
            // After the monitor has learned (10 s), every 8 s: a new tenant's 20,000 keys,
            // each read back twice before the next promotion (lookups outside the main
            // table count as misses), as when a tenant is onboarded.
            let secs = start.elapsed().as_secs();
            if secs >= 12 && secs / 8 > bursts {
                bursts = secs / 8;
                let m = settings.pin();
                let tenant = 1_000 + bursts as u32;
                for k in 0..20_000 {
                    m.insert((tenant, k), 1);
                }
                for k in (0..20_000).chain(0..20_000) {
                    std::hint::black_box(m.get(&(tenant, k)));
                }
            }
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
