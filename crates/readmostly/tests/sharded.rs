//! `ShardedMap` tests: a model-based comparison against `std::collections::HashMap`
//! covering every operation (one shard and many, promotion on every miss and the default
//! rule, routing by hash and by tenant, a capacity limit), concurrent atomicity checks,
//! and tenant routing.
//!
//! `PROPTEST_CASES=N` raises the number of cases per property (default 256).

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use proptest::prelude::*;
use readmostly::{
    LocalGuard, OwnedGuard, Promotion, Router, ShardedMap, ShardedRef, Stats, SyncMap,
};

/// Distinct keys (tiny, so entries cycle through every state in every shard).
const KEYS: u8 = 8;
/// Distinct values (small, so `compare_exchange` and `remove_if` succeed often).
const VALS: u32 = 4;
/// The capacity limit of the configurations that have one.
const MAX_LEN: usize = 5;

#[derive(Debug, Clone)]
enum Op {
    Get(u8),
    InsertPrev(u8, u32),
    Insert(u8, u32),
    /// Odd: `ShardedMap::try_insert`; even: `ShardedRef::try_insert`.
    TryInsert(u8, u32, u8),
    GetOrInsert(u8, u32),
    GetOrInsertWith(u8, u32),
    /// `ShardedRef::get_or_try_insert_with`; the loader fails for odd values.
    GetOrTryInsertWith(u8, u32),
    RemovePrev(u8),
    Remove(u8),
    CompareExchange(u8, u32, u32),
    RemoveIf(u8, u32),
    /// Add `d` to the value; odd `d` through `ShardedMap::update`, even through
    /// `ShardedRef::update`.
    Update(u8, u32),
    /// Keep `(k, v)` iff `(k + v) % (m % 3 + 2) != 0`; odd `m` through `ShardedMap::retain`.
    Retain(u8),
    Iter,
    /// Iterate while inserting / removing other keys through the same pin.
    IterMutate(u32),
    /// Odd: `ShardedMap::clear`; even: `ShardedRef::clear`.
    Clear(u8),
    Len,
    ContainsKey(u8),
    GetCloned(u8),
    With(u8),
    Stats,
    Debug,
    /// Replace the long-lived pin (owned if true).
    Repin(bool),
    /// `Extend` on the owned map (a bulk load; needs every pin dropped).
    Extend(Vec<(u8, u32)>),
    GetKeyValue(u8),
    /// `keys`, `values` and `for (k, v) in &pin`.
    KeysValues,
    /// Clone the map and compare (see the `SyncMap` model's `CloneEq`).
    CloneEq(u8, bool),
}

fn key() -> impl Strategy<Value = u8> {
    0..KEYS
}

fn val() -> impl Strategy<Value = u32> {
    0..VALS
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => key().prop_map(Op::Get),
        5 => (key(), val()).prop_map(|(k, v)| Op::InsertPrev(k, v)),
        3 => (key(), val()).prop_map(|(k, v)| Op::Insert(k, v)),
        3 => (key(), val(), any::<u8>()).prop_map(|(k, v, m)| Op::TryInsert(k, v, m)),
        3 => (key(), val()).prop_map(|(k, v)| Op::GetOrInsert(k, v)),
        3 => (key(), val()).prop_map(|(k, v)| Op::GetOrInsertWith(k, v)),
        2 => (key(), val()).prop_map(|(k, v)| Op::GetOrTryInsertWith(k, v)),
        3 => key().prop_map(Op::RemovePrev),
        3 => key().prop_map(Op::Remove),
        4 => (key(), val(), val()).prop_map(|(k, c, n)| Op::CompareExchange(k, c, n)),
        3 => (key(), val()).prop_map(|(k, v)| Op::RemoveIf(k, v)),
        3 => (key(), val()).prop_map(|(k, d)| Op::Update(k, d)),
        1 => any::<u8>().prop_map(Op::Retain),
        2 => Just(Op::Iter),
        1 => val().prop_map(Op::IterMutate),
        1 => any::<u8>().prop_map(Op::Clear),
        2 => Just(Op::Len),
        2 => key().prop_map(Op::ContainsKey),
        2 => key().prop_map(Op::GetCloned),
        2 => key().prop_map(Op::With),
        1 => Just(Op::Stats),
        1 => Just(Op::Debug),
        1 => any::<bool>().prop_map(Op::Repin),
        1 => prop::collection::vec((key(), val()), 0..12).prop_map(Op::Extend),
        2 => key().prop_map(Op::GetKeyValue),
        1 => Just(Op::KeysValues),
        1 => (key(), any::<bool>()).prop_map(|(k, b)| Op::CloneEq(k, b)),
    ]
}

/// A pin of either kind.
enum Pin<'m, S, R> {
    Local(ShardedRef<'m, u8, u32, S, R, LocalGuard<'m>>),
    Owned(ShardedRef<'m, u8, u32, S, R, OwnedGuard<'m>>),
}

/// Runs `$body` with `$m` bound to the `ShardedRef` inside a [`Pin`].
macro_rules! with_pin {
    ($pin:expr, $m:ident => $body:expr) => {
        match $pin {
            Pin::Local($m) => $body,
            Pin::Owned($m) => $body,
        }
    };
}

type Model = HashMap<u8, u32>;

fn check_stats<S: BuildHasher, R>(
    map: &ShardedMap<u8, u32, S, R>,
    model: &Model,
    last: &mut Stats,
) {
    let s = map.stats();
    assert_eq!(s.len, model.len(), "stats.len: {s:?}");
    // With a capacity limit, `len` reads the count the shards keep together.
    assert_eq!(map.len(), s.len, "len() against the shards' counts");
    let per_shard = map.shard_stats();
    assert_eq!(per_shard.len(), map.shard_count());
    assert_eq!(
        per_shard.iter().sum::<Stats>(),
        s,
        "aggregate = sum of shards (single-threaded, so exact)"
    );
    let p = *last;
    for (name, now, before) in [
        ("hits", s.hits, p.hits),
        ("misses", s.misses, p.misses),
        ("slow_reads", s.slow_reads, p.slow_reads),
        ("promotions", s.promotions, p.promotions),
        ("dirty_rebuilds", s.dirty_rebuilds, p.dirty_rebuilds),
        ("expunged", s.expunged, p.expunged),
        ("new_keys", s.new_keys, p.new_keys),
        ("overwrites", s.overwrites, p.overwrites),
        ("removes", s.removes, p.removes),
        ("retired", s.retired, p.retired),
        ("retired_bytes", s.retired_bytes, p.retired_bytes),
    ] {
        assert!(now >= before, "stats.{name} went backwards: {p:?} -> {s:?}");
    }
    // Keys come and go one by one: present = new keys - removes + re-inserts of deleted
    // entries, so removes can never exceed inserts of any kind.
    assert!(s.new_keys >= model.len() as u64, "{s:?}");
    assert!(s.removes <= s.writes(), "{s:?}");
    if map.promotion() == Promotion::EveryMiss {
        assert!(s.promotions >= s.misses, "EveryMiss: {s:?}");
    }
    assert!(!s.to_string().is_empty());
    *last = s;
}

fn apply<S: BuildHasher + Clone, R: Router<u8> + Clone>(
    map: &ShardedMap<u8, u32, S, R>,
    pin: &Pin<'_, S, R>,
    model: &mut Model,
    last: &mut Stats,
    op: &Op,
) {
    match *op {
        Op::Get(k) => {
            let got = with_pin!(pin, m => m.get(&k).copied());
            assert_eq!(got.as_ref(), model.get(&k), "get({k})");
        }
        Op::InsertPrev(k, v) => {
            let prev = with_pin!(pin, m => m.insert(k, v).copied());
            assert_eq!(prev, model.insert(k, v), "insert({k}) previous");
        }
        Op::Insert(k, v) => {
            assert_eq!(
                map.insert(k, v),
                model.insert(k, v).is_some(),
                "insert({k})"
            );
        }
        Op::TryInsert(k, v, m) => {
            let full = map
                .max_len()
                .is_some_and(|max| model.len() >= max && !model.contains_key(&k));
            let got = if m % 2 == 1 {
                map.try_insert(k, v).map(|replaced| replaced.then_some(()))
            } else {
                with_pin!(pin, p => p.try_insert(k, v).map(|prev| prev.map(|_| ())))
            };
            if full {
                let err = got.expect_err("over capacity");
                assert_eq!(
                    (err.key, err.value, Some(err.max_len)),
                    (k, v, map.max_len())
                );
                assert!(!err.to_string().is_empty());
            } else {
                let prev = model.insert(k, v);
                assert_eq!(got.ok(), Some(prev.map(|_| ())), "try_insert({k})");
            }
        }
        Op::GetOrInsert(k, v) => {
            let got = with_pin!(pin, m => {
                let (r, inserted) = m.get_or_insert(k, v);
                (*r, inserted)
            });
            let expected = match model.get(&k) {
                Some(x) => (*x, false),
                None => {
                    model.insert(k, v);
                    (v, true)
                }
            };
            assert_eq!(got, expected, "get_or_insert({k})");
        }
        Op::GetOrTryInsertWith(k, v) => {
            let fails = v % 2 == 1;
            let got = with_pin!(pin, m => m
                .get_or_try_insert_with(k, || if fails { Err(v) } else { Ok(v) })
                .map(|(r, inserted)| (*r, inserted)));
            let expected = match model.get(&k) {
                Some(x) => Ok((*x, false)),
                None if fails => Err(v),
                None => {
                    model.insert(k, v);
                    Ok((v, true))
                }
            };
            assert_eq!(got, expected, "get_or_try_insert_with({k})");
        }
        Op::GetOrInsertWith(k, v) => {
            let calls = Cell::new(0);
            let got = with_pin!(pin, m => {
                let (r, inserted) = m.get_or_insert_with(k, || {
                    calls.set(calls.get() + 1);
                    v
                });
                (*r, inserted)
            });
            assert_eq!(calls.get(), usize::from(!model.contains_key(&k)));
            let expected = match model.get(&k) {
                Some(x) => (*x, false),
                None => {
                    model.insert(k, v);
                    (v, true)
                }
            };
            assert_eq!(got, expected, "get_or_insert_with({k})");
        }
        Op::RemovePrev(k) => {
            let got = with_pin!(pin, m => m.remove(&k).copied());
            assert_eq!(got, model.remove(&k), "remove({k}) previous");
        }
        Op::Remove(k) => {
            assert_eq!(map.remove(&k), model.remove(&k).is_some(), "remove({k})");
        }
        Op::CompareExchange(k, cur, new) => {
            let got = with_pin!(pin, m => match m.compare_exchange(&k, &cur, new) {
                Ok(prev) => Ok(*prev),
                Err(e) => Err((e.current.copied(), e.new)),
            });
            match model.get(&k) {
                Some(x) if *x == cur => {
                    assert_eq!(got, Ok(cur), "compare_exchange({k}) should succeed");
                    model.insert(k, new);
                }
                found => assert_eq!(got, Err((found.copied(), new)), "compare_exchange({k})"),
            }
        }
        Op::Update(k, d) => {
            let expected = model.get(&k).map(|old| old.wrapping_add(d));
            if d % 2 == 1 {
                let present = map.update(&k, |v| v.wrapping_add(d));
                assert_eq!(present, expected.is_some(), "ShardedMap::update({k})");
            } else {
                let got = with_pin!(pin, m => m.update(&k, |v| v.wrapping_add(d)).copied());
                assert_eq!(got, expected, "update({k})");
            }
            if let Some(v) = expected {
                model.insert(k, v);
            }
        }
        Op::RemoveIf(k, x) => {
            let got = with_pin!(pin, m => m.remove_if(&k, |v| *v == x).copied());
            let expected = if model.get(&k) == Some(&x) {
                model.remove(&k)
            } else {
                None
            };
            assert_eq!(got, expected, "remove_if({k})");
        }
        Op::Retain(mm) => {
            let modulus = u32::from(mm % 3 + 2);
            let keep = |k: &u8, v: &u32| (u32::from(*k) + v) % modulus != 0;
            let mut visited = HashSet::new();
            let check = |k: &u8, v: &u32| {
                assert!(visited.insert(*k), "retain visited {k} twice");
                assert_eq!(Some(v), model.get(k), "retain saw a wrong value for {k}");
                keep(k, v)
            };
            if mm % 2 == 1 {
                map.retain(check);
            } else {
                with_pin!(pin, m => m.retain(check));
            }
            assert_eq!(visited, model.keys().copied().collect::<HashSet<_>>());
            model.retain(|k, v| keep(k, v));
        }
        Op::Iter => {
            let seen = with_pin!(pin, m => {
                let mut seen = HashMap::new();
                for (k, v) in m.iter() {
                    assert!(seen.insert(*k, *v).is_none(), "iter yielded {k} twice");
                }
                seen
            });
            assert_eq!(&seen, model, "iter must yield exactly the model's entries");
        }
        Op::IterMutate(x) => {
            let mut untouched: HashSet<u8> = model.keys().copied().collect();
            let mut visited = HashSet::new();
            with_pin!(pin, m => {
                for (i, (k, v)) in m.iter().enumerate() {
                    assert!(visited.insert(*k), "iter yielded {k} twice");
                    assert_eq!(Some(v), model.get(k), "iter saw a value {k} does not have now");
                    let other = ((u32::from(*k) + 1 + i as u32) % u32::from(KEYS)) as u8;
                    if (x + i as u32) % 2 == 0 {
                        assert_eq!(m.insert(other, x).copied(), model.insert(other, x));
                    } else {
                        assert_eq!(m.remove(&other).copied(), model.remove(&other));
                        untouched.remove(&other);
                    }
                }
            });
            assert!(
                untouched.is_subset(&visited),
                "iter missed keys present throughout: {untouched:?} vs {visited:?}"
            );
        }
        Op::Clear(n) => {
            if n % 2 == 1 {
                map.clear();
            } else {
                with_pin!(pin, m => m.clear());
            }
            model.clear();
            assert!(map.is_empty());
        }
        Op::Len => {
            assert_eq!(map.len(), model.len());
            assert_eq!(map.is_empty(), model.is_empty());
            assert_eq!(with_pin!(pin, m => m.len()), model.len());
            assert_eq!(with_pin!(pin, m => m.is_empty()), model.is_empty());
        }
        Op::ContainsKey(k) => {
            assert_eq!(map.contains_key(&k), model.contains_key(&k));
            assert_eq!(
                with_pin!(pin, m => m.contains_key(&k)),
                model.contains_key(&k)
            );
        }
        Op::GetCloned(k) => assert_eq!(map.get_cloned(&k).as_ref(), model.get(&k)),
        Op::With(k) => assert_eq!(map.with(&k, |v| v + 1), model.get(&k).map(|v| v + 1)),
        Op::Stats => check_stats(map, model, last),
        Op::Debug => {
            let a = format!("{map:?}");
            let b = with_pin!(pin, m => format!("{m:?}"));
            assert_eq!(a.len(), b.len());
            for (k, v) in model {
                assert!(a.contains(&format!("{k}: {v}")), "{a} lacks {k}: {v}");
            }
        }
        Op::GetKeyValue(k) => {
            let got = with_pin!(pin, m => m.get_key_value(&k).map(|(k, v)| (*k, *v)));
            assert_eq!(
                got,
                model.get_key_value(&k).map(|(k, v)| (*k, *v)),
                "get_key_value({k})"
            );
        }
        Op::KeysValues => {
            let (mut keys, mut values, pairs) = with_pin!(pin, m => {
                let keys: Vec<u8> = m.keys().copied().collect();
                let values: Vec<u32> = m.values().copied().collect();
                let mut pairs = Model::new();
                for (k, v) in m {
                    assert!(pairs.insert(*k, *v).is_none(), "&ShardedRef yielded {k} twice");
                }
                (keys, values, pairs)
            });
            let mut want_keys: Vec<u8> = model.keys().copied().collect();
            let mut want_values: Vec<u32> = model.values().copied().collect();
            for v in [&mut keys, &mut want_keys] {
                v.sort_unstable();
            }
            for v in [&mut values, &mut want_values] {
                v.sort_unstable();
            }
            assert_eq!((keys, values), (want_keys, want_values), "keys(), values()");
            assert_eq!(&pairs, model, "IntoIterator for &ShardedRef");
        }
        Op::CloneEq(k, change_value) => {
            let copy = map.clone();
            assert!(copy == *map, "a clone must equal its original");
            assert!(*map == copy, "equality must be symmetric");
            assert_eq!(
                (
                    copy.shard_count(),
                    copy.promotion(),
                    copy.recent_keys(),
                    copy.rebuild_step()
                ),
                (
                    map.shard_count(),
                    map.promotion(),
                    map.recent_keys(),
                    map.rebuild_step()
                ),
                "clone's configuration"
            );
            assert_eq!(
                (copy.max_len(), copy.retire_batch(), copy.hit_statistics()),
                (map.max_len(), map.retire_batch(), map.hit_statistics()),
                "clone's configuration"
            );
            for key in 0..KEYS {
                assert_eq!(copy.shard_of(&key), map.shard_of(&key), "clone's routing");
            }
            let s = copy.stats();
            assert_eq!(
                (
                    s.len,
                    s.read_len,
                    s.recent_len,
                    s.dirty_len,
                    s.hits,
                    s.misses
                ),
                (model.len(), model.len(), 0, None, 0, 0),
                "a clone is bulk-loaded into its read tables: {s:?}"
            );
            let seen: Model = copy.pin().iter().map(|(k, v)| (*k, *v)).collect();
            assert_eq!(&seen, model, "clone's contents");
            match model.get(&k) {
                Some(v) if change_value => {
                    copy.insert(k, v + 1);
                }
                Some(_) => {
                    copy.remove(&k);
                }
                None => {
                    copy.insert(k, 0);
                }
            }
            assert!(copy != *map, "changed clone still equal (key {k})");
            assert!(*map != copy, "inequality must be symmetric");
            assert_eq!(map.len(), model.len(), "cloning changed the original");
        }
        Op::Repin(_) | Op::Extend(_) => unreachable!("handled by the driver"),
    }
}

/// Runs `ops` against `map`, with one long-lived pin replaced by `Op::Repin`.
fn run<S: BuildHasher + Clone, R: Router<u8> + Clone>(
    mut map: ShardedMap<u8, u32, S, R>,
    ops: &[Op],
) {
    let mut model = Model::new();
    let mut last = Stats::default();
    // Segments end at an `Extend`, which needs the map to itself.
    for segment in ops.split_inclusive(|op| matches!(op, Op::Extend(_))) {
        {
            let mut pin = Pin::Local(map.pin());
            for op in segment {
                match *op {
                    Op::Extend(_) => {}
                    Op::Repin(true) => pin = Pin::Owned(map.pin_owned()),
                    Op::Repin(false) => pin = Pin::Local(map.pin()),
                    _ => apply(&map, &pin, &mut model, &mut last, op),
                }
            }
            check_stats(&map, &model, &mut last);
        }
        if let Some(Op::Extend(items)) = segment.last() {
            map.extend(items.iter().copied());
            model.extend(items.iter().copied());
            check_stats(&map, &model, &mut last);
        }
    }
    let m = map.pin();
    for k in 0..KEYS {
        assert_eq!(m.get(&k), model.get(&k), "final get({k})");
        assert!(map.shard_of(&k) < map.shard_count());
    }
    let seen: Model = m.iter().map(|(k, v)| (*k, *v)).collect();
    assert_eq!(seen, model, "final contents");
    drop(m);
    let mut taken = Model::new();
    for (k, v) in map.into_iter() {
        assert!(taken.insert(k, v).is_none(), "into_iter yielded {k} twice");
    }
    assert_eq!(taken, model, "into_iter");
}

/// One of the configurations: shard count, promotion rule, router, capacity limit.
fn run_config(config: u8, ops: &[Op]) {
    let shards = [1, 4, 64][usize::from(config % 3)];
    let promotion = if (config / 3) % 2 == 0 {
        Promotion::EveryMiss
    } else {
        Promotion::DirtyLen
    };
    let builder = ShardedMap::builder().shards(shards).promotion(promotion);
    let builder = if (config / 6) % 2 == 1 {
        builder.max_len(MAX_LEN)
    } else {
        builder
    };
    if (config / 12) % 2 == 1 {
        // Tenant routing: keys k and k + 3 share a tenant.
        run(
            builder.route_by_tenant(|k: &u8| u64::from(k % 3)).build(),
            ops,
        );
    } else {
        run(builder.build(), ops);
    }
}

proptest! {
    /// Every configuration: shards ∈ {1, 4, 64} × {EveryMiss, DirtyLen} × {no limit,
    /// max_len} × {by hash, by tenant}.
    #[test]
    fn model(config in 0..24u8, ops in prop::collection::vec(op(), 1..160)) {
        run_config(config, &ops);
    }

    /// std's SipHash (`RandomState`) as the hasher.
    #[test]
    fn model_std_hasher(ops in prop::collection::vec(op(), 1..120)) {
        run(ShardedMap::builder().shards(8).hasher(RandomState::new()).build(), &ops);
    }
}

/// `FromIterator`, `Extend`, `Default`, and `String` keys looked up by `&str`.
#[test]
fn traits_and_borrowed_lookups() {
    let pairs: Vec<(u8, u32)> = (0..40u32).map(|i| ((i * 7 % 13) as u8, i)).collect();
    let mut map: ShardedMap<u8, u32> = pairs.iter().copied().collect();
    let mut model: Model = pairs.iter().copied().collect();
    map.extend((0..20u32).map(|i| ((i % 17) as u8, i + 100)));
    model.extend((0..20u32).map(|i| ((i % 17) as u8, i + 100)));
    (&map).extend([(200u8, 1u32)]);
    model.insert(200, 1);
    let seen: Model = map.pin().iter().map(|(k, v)| (*k, *v)).collect();
    assert_eq!(seen, model);

    let strings: ShardedMap<String, String> = ShardedMap::default();
    strings.insert("alpha".into(), "1".into());
    assert_eq!(strings.get_cloned("alpha").as_deref(), Some("1"));
    assert!(strings.remove("alpha"));
    assert!(strings.is_empty());
}

/// A tenant router keeps every key of a tenant in one shard, for lookups by the key
/// type and by a borrowed form, and spreads tenants over the shards.
#[test]
fn tenant_router_keeps_a_tenants_keys_in_one_shard() {
    const TENANTS: u32 = 200;
    const PER_TENANT: u32 = 25;
    let map = ShardedMap::builder()
        .shards(16)
        .route_by_tenant(|k: &(u32, u32)| u64::from(k.0))
        .build();
    for t in 0..TENANTS {
        for i in 0..PER_TENANT {
            map.insert((t, i), t * 1000 + i);
        }
    }
    let mut shard_of_tenant = HashMap::new();
    for t in 0..TENANTS {
        let shard = map.shard_of(&(t, 0));
        for i in 0..PER_TENANT {
            assert_eq!(map.shard_of(&(t, i)), shard, "tenant {t} key {i}");
        }
        shard_of_tenant.insert(t, shard);
    }
    // The shards' own contents agree: each shard holds exactly its tenants' keys.
    let per_shard = map.shard_stats();
    for (shard, s) in per_shard.iter().enumerate() {
        let tenants = shard_of_tenant.values().filter(|&&x| x == shard).count();
        assert_eq!(s.len, tenants * PER_TENANT as usize, "shard {shard}");
    }
    // Consecutive tenant ids spread evenly (the multiplier is a bijection mod 16).
    let used: HashSet<usize> = shard_of_tenant.values().copied().collect();
    assert_eq!(used.len(), 16);

    // String keys "tenant/key" routed by the tenant prefix, looked up by `&str`.
    let tenant_of = |k: &str| -> u64 { k.split('/').next().unwrap().parse().unwrap() };
    let strings = ShardedMap::builder()
        .shards(64)
        .route_by_tenant(tenant_of)
        .build();
    for t in 0..50 {
        for i in 0..10 {
            strings.insert(format!("{t}/key{i}"), i);
        }
    }
    for t in 0..50 {
        let shard = strings.shard_of(format!("{t}/key0").as_str());
        for i in 0..10 {
            let k = format!("{t}/key{i}");
            assert_eq!(strings.shard_of(k.as_str()), shard);
            assert_eq!(strings.shard_of(&k), shard, "by &String too");
            assert_eq!(strings.get_cloned(k.as_str()), Some(i));
        }
    }
    // Per-shard new-key counts: every tenant's 10 keys were created in its shard.
    let total_new: u64 = strings.shard_stats().iter().map(|s| s.new_keys).sum();
    assert_eq!(total_new, 500);
}

/// Routing by hash spreads keys over every shard.
#[test]
fn hash_router_spreads_keys() {
    let map: ShardedMap<u64, u64> = ShardedMap::builder().shards(64).build();
    for k in 0..10_000 {
        map.insert(k, k);
    }
    let per_shard = map.shard_stats();
    let min = per_shard.iter().map(|s| s.len).min().unwrap();
    let max = per_shard.iter().map(|s| s.len).max().unwrap();
    assert!(min > 60 && max < 260, "uneven: {min}..{max}");
    assert_eq!(map.len(), 10_000);
}

/// Concurrent atomicity and final state, for one shard and many:
/// * compare-exchange increments of shared counters never lose an update;
/// * of racing `get_or_insert` calls on a key exactly one inserts;
/// * each thread's private keys behave sequentially (every result checked against a
///   per-thread model while the other threads hammer their own keys and the shared ones);
/// * at the end `len`, `iter` and `stats` agree with the union of the models.
#[test]
fn concurrent_atomicity_and_final_state() {
    const THREADS: usize = 4;
    const ROUNDS: u32 = if cfg!(miri) { 20 } else { 1_500 };
    const COUNTERS: u64 = 4;
    const RACE_KEYS: u64 = 64;
    const PRIVATE: u64 = 32;
    // The last configuration has a capacity limit it never reaches: its `len` is the
    // count the shards keep together, checked against the entries at the end.
    for (shards, promotion, limited) in [
        (1, Promotion::EveryMiss, false),
        (1, Promotion::DirtyLen, false),
        (16, Promotion::EveryMiss, false),
        (16, Promotion::DirtyLen, false),
        (16, Promotion::DirtyLen, true),
    ] {
        let builder = ShardedMap::builder().shards(shards).promotion(promotion);
        let map: ShardedMap<u64, u64> = if limited {
            builder.max_len(usize::MAX).build()
        } else {
            builder.build()
        };
        for c in 0..COUNTERS {
            map.insert(c, 0);
        }
        let inserted = AtomicUsize::new(0);
        let models: Vec<HashMap<u64, u64>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (map, inserted) = (&map, &inserted);
                    s.spawn(move || {
                        let base = 1_000 + t as u64 * 1_000;
                        let mut model = HashMap::new();
                        let mut rng = 0x9e37_79b9_u64 + t as u64;
                        let mut next = || {
                            rng ^= rng << 13;
                            rng ^= rng >> 7;
                            rng ^= rng << 17;
                            rng
                        };
                        for round in 0..ROUNDS {
                            let m = map.pin();
                            // Shared counter: CAS loop.
                            let c = u64::from(round) % COUNTERS;
                            loop {
                                let cur = *m.get(&c).unwrap();
                                if m.compare_exchange(&c, &cur, cur + 1).is_ok() {
                                    break;
                                }
                            }
                            // Racing get_or_insert on shared keys.
                            let r = 100 + u64::from(round) % RACE_KEYS;
                            let (v, ins) = m.get_or_insert(r, t as u64);
                            assert!(*v < THREADS as u64);
                            if ins {
                                inserted.fetch_add(1, Relaxed);
                            }
                            // Private keys: sequential semantics.
                            let k = base + next() % PRIVATE;
                            let v = u64::from(round);
                            match next() % 4 {
                                0 => assert_eq!(m.insert(k, v).copied(), model.insert(k, v)),
                                1 => assert_eq!(m.remove(&k).copied(), model.remove(&k)),
                                2 => {
                                    let (got, ins) = m.get_or_insert(k, v);
                                    let absent = !model.contains_key(&k);
                                    let exp = *model.entry(k).or_insert(v);
                                    assert_eq!((*got, ins), (exp, absent));
                                }
                                _ => assert_eq!(m.get(&k), model.get(&k)),
                            }
                            if round % 500 == 499 {
                                // Iterate while others write.
                                let mut seen = HashSet::new();
                                for (k, _) in m.iter() {
                                    assert!(seen.insert(*k), "iter yielded {k} twice");
                                }
                                for k in model.keys() {
                                    assert!(seen.contains(k), "iter missed private key {k}");
                                }
                            }
                        }
                        model
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let m = map.pin();
        for c in 0..COUNTERS {
            let expected = THREADS as u64 * u64::from(ROUNDS) / COUNTERS;
            assert_eq!(m.get(&c), Some(&expected), "counter {c}: lost an update");
        }
        assert_eq!(
            inserted.load(Relaxed),
            RACE_KEYS as usize,
            "get_or_insert winners"
        );
        let mut expected: HashMap<u64, u64> = models.into_iter().flatten().collect();
        for c in 0..COUNTERS {
            expected.insert(c, *m.get(&c).unwrap());
        }
        for r in 100..100 + RACE_KEYS {
            expected.insert(r, *m.get(&r).unwrap());
        }
        let seen: HashMap<u64, u64> = m.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(seen, expected, "{shards} shards, {promotion:?}");
        assert_eq!(map.len(), expected.len());
        assert_eq!(map.stats().len, expected.len());
    }
}

/// Capacity limit on a plain `SyncMap` too: new keys refused, replacements allowed,
/// room again after a removal.
#[test]
fn syncmap_try_insert_capacity() {
    let map: SyncMap<u32, u32> = SyncMap::builder().max_len(3).build();
    assert_eq!(map.max_len(), Some(3));
    for k in 0..3 {
        assert_eq!(map.try_insert(k, k), Ok(false));
    }
    let err = map.try_insert(3, 3).unwrap_err();
    assert_eq!(err.into_inner(), (3, 3));
    assert_eq!(map.try_insert(1, 10), Ok(true));
    assert!(map.remove(&0));
    assert_eq!(map.try_insert(3, 3), Ok(false));
    assert_eq!(map.len(), 3);
    let unlimited: SyncMap<u32, u32> = SyncMap::new();
    for k in 0..100 {
        assert!(unlimited.try_insert(k, k).is_ok());
    }
    let e: Box<dyn std::error::Error> = Box::new(map.try_insert(9, 9).unwrap_err());
    assert!(e.to_string().contains("max_len"));
}
