//! The operation mix each workload actually produces, counted from generated streams.

use std::collections::HashSet;

use readmostly_bench::workloads::{
    count_kinds, generate, prefill_key, Dist, KeyGen, OpKind, Workload,
};

const KEYS: u64 = 1000;
const N: usize = 200_000;

fn present() -> HashSet<u64> {
    (0..KEYS).map(prefill_key).collect()
}

fn space(factor: u64) -> HashSet<u64> {
    (0..KEYS * factor).map(prefill_key).collect()
}

#[test]
fn every_workload_produces_its_declared_mix() {
    for dist in [Dist::Uniform, Dist::Zipf] {
        for w in Workload::all() {
            let gen = KeyGen::new(&w, KEYS, dist);
            let ops = generate(&w, &gen, 0, N, 7);
            assert_eq!(ops.len(), N);
            let counts = count_kinds(&ops);
            for kind in OpKind::ALL {
                let expected = w.per_mille(kind) as f64 / 1000.0;
                let got = counts.get(&kind).copied().unwrap_or(0) as f64 / N as f64;
                // Binomial standard deviation at N = 200k is at most 0.0011; allow ~4 sigma.
                assert!(
                    (got - expected).abs() < 0.0045,
                    "{} [{}]: {} expected {expected:.4}, got {got:.4}",
                    w.name,
                    dist.name(),
                    kind.name()
                );
                if expected == 0.0 {
                    assert_eq!(got, 0.0, "{} produces no {}", w.name, kind.name());
                }
            }
        }
    }
}

#[test]
fn named_mixes_match_the_anchor_definitions() {
    let pm = |name: &str, k: OpKind| Workload::by_name(name).unwrap().per_mille(k);
    assert_eq!(pm("read100", OpKind::Get), 1000);
    assert_eq!(
        (pm("read99", OpKind::Get), pm("read99", OpKind::Overwrite)),
        (990, 10)
    );
    assert_eq!(
        (pm("read95", OpKind::Get), pm("read95", OpKind::Overwrite)),
        (950, 50)
    );
    assert_eq!(
        (pm("read90", OpKind::Get), pm("read90", OpKind::Overwrite)),
        (900, 100)
    );
    assert_eq!(
        (pm("write50", OpKind::Get), pm("write50", OpKind::Overwrite)),
        (500, 500)
    );
    assert_eq!(
        (
            pm("churn10", OpKind::Get),
            pm("churn10", OpKind::Insert),
            pm("churn10", OpKind::Remove)
        ),
        (900, 50, 50)
    );
    assert_eq!(pm("config-snapshot", OpKind::Get), 999);
}

#[test]
fn keys_come_from_the_declared_spaces() {
    let p = present();
    let two = space(2);
    let ten = space(10);
    let stream = |name: &str, dist: Dist| {
        let w = Workload::by_name(name).unwrap();
        generate(&w, &KeyGen::new(&w, KEYS, dist), 0, 50_000, 11)
    };

    for dist in [Dist::Uniform, Dist::Zipf] {
        // Mixes read and overwrite prefilled keys only.
        for name in [
            "read100",
            "read99",
            "write50",
            "config-snapshot",
            "multi-tenant",
        ] {
            assert!(
                stream(name, dist).iter().all(|o| p.contains(&o.key)),
                "{name}"
            );
        }
        // churn10: everything within twice the key space, and both halves used.
        let ops = stream("churn10", dist);
        assert!(ops.iter().all(|o| two.contains(&o.key)));
        assert!(ops.iter().any(|o| !p.contains(&o.key)));
        // mostly-miss: reads of absent keys about 90 %.
        let ops = stream("mostly-miss", dist);
        let absent = ops.iter().filter(|o| !p.contains(&o.key)).count() as f64 / ops.len() as f64;
        assert!((0.88..0.92).contains(&absent), "absent share {absent}");
        assert!(ops.iter().all(|o| ten.contains(&o.key)));
    }

    // Uniform churn: about half the reads target absent keys.
    let ops = stream("churn10", Dist::Uniform);
    let reads: Vec<_> = ops.iter().filter(|o| o.kind == OpKind::Get).collect();
    let miss = reads.iter().filter(|o| !p.contains(&o.key)).count() as f64 / reads.len() as f64;
    assert!((0.45..0.55).contains(&miss), "{miss}");

    // One hot key.
    for name in ["hot-key", "goi-collide"] {
        let ops = stream(name, Dist::Uniform);
        assert!(ops.iter().all(|o| o.key == prefill_key(0)), "{name}");
    }

    // ttl-cache: inserts are all new keys, distinct from each other and from the prefill.
    let ops = stream("ttl-cache", Dist::Uniform);
    let inserts: Vec<u64> = ops
        .iter()
        .filter(|o| o.kind == OpKind::Insert)
        .map(|o| o.key)
        .collect();
    let distinct: HashSet<u64> = inserts.iter().copied().collect();
    assert_eq!(distinct.len(), inserts.len());
    assert!(inserts.iter().all(|k| !p.contains(k)));
    assert!(ops
        .iter()
        .filter(|o| o.kind == OpKind::Insert)
        .all(|o| o.fresh));

    // insert-after-promote: after the first insert, every read targets the newest inserted key.
    let ops = stream("insert-after-promote", Dist::Uniform);
    let mut newest = None;
    for o in &ops {
        match o.kind {
            OpKind::Insert => newest = Some(o.key),
            OpKind::Get => {
                if let Some(k) = newest {
                    assert_eq!(o.key, k);
                }
            }
            _ => unreachable!(),
        }
    }
}

#[test]
fn zipf_concentrates_and_uniform_spreads() {
    let w = Workload::by_name("read100").unwrap();
    let hot = prefill_key(0);
    let share = |dist| {
        let ops = generate(&w, &KeyGen::new(&w, KEYS, dist), 0, N, 3);
        ops.iter().filter(|o| o.key == hot).count() as f64 / N as f64
    };
    // Zipf 0.99 over 1000 keys gives the top key about 13 % of draws; uniform 0.1 %.
    assert!(share(Dist::Zipf) > 0.08, "{}", share(Dist::Zipf));
    assert!(share(Dist::Uniform) < 0.005);
}

#[test]
fn streams_are_deterministic_per_seed_and_differ_per_thread() {
    let w = Workload::by_name("read95").unwrap();
    let g = KeyGen::new(&w, KEYS, Dist::Uniform);
    assert_eq!(generate(&w, &g, 3, 1000, 9), generate(&w, &g, 3, 1000, 9));
    assert_ne!(generate(&w, &g, 3, 1000, 9), generate(&w, &g, 4, 1000, 9));
    assert_ne!(generate(&w, &g, 3, 1000, 9), generate(&w, &g, 3, 1000, 10));
}

#[test]
fn custom_workloads_follow_the_percentages() {
    let w = Workload::custom(80.0, 10.0, 5.0, 5.0).unwrap();
    let ops = generate(&w, &KeyGen::new(&w, KEYS, Dist::Uniform), 0, N, 5);
    let c = count_kinds(&ops);
    for (kind, pct) in [
        (OpKind::Get, 0.80),
        (OpKind::Overwrite, 0.10),
        (OpKind::Insert, 0.05),
        (OpKind::Remove, 0.05),
    ] {
        let got = c[&kind] as f64 / N as f64;
        assert!((got - pct).abs() < 0.005, "{}: {got}", kind.name());
    }
    // Without removes, inserts are of new keys.
    let w = Workload::custom(95.0, 0.0, 5.0, 0.0).unwrap();
    let p = present();
    let ops = generate(&w, &KeyGen::new(&w, KEYS, Dist::Uniform), 0, 10_000, 5);
    assert!(ops
        .iter()
        .filter(|o| o.kind == OpKind::Insert)
        .all(|o| !p.contains(&o.key)));
}
