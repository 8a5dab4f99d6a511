//! Model-based tests: random sequences of every public operation, applied to a
//! [`SyncMap`] and to `std::collections::HashMap`, comparing every result.
//!
//! The key space is tiny, so keys keep colliding and entries cycle through every state
//! (present / deleted / expunged, in the read table, the dirty table or both). Each
//! property runs under the default promotion rule, with promotion on every miss and
//! after two misses; pins are sometimes one per operation (local or owned) and
//! sometimes one for a whole run of operations, replaced at random.
//!
//! `PROPTEST_CASES=N` raises the number of cases per property (default 256).

use std::borrow::Borrow;
use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::hash::{BuildHasher, Hash, RandomState};
use std::num::NonZeroUsize;

use proptest::prelude::*;
use readmostly::{LocalGuard, MapRef, OwnedGuard, Promotion, RecentKeys, Stats, SyncMap};

/// Number of distinct keys.
const KEYS: u8 = 6;
/// Number of distinct values (small, so `compare_exchange` and `remove_if` succeed often).
const VALS: u32 = 4;

/// A key type for the harness, with the borrowed form lookups use.
trait TestKey: Hash + Eq + Clone + Debug + Borrow<Self::Q> {
    type Q: ?Sized + Hash + Eq;
    fn make(id: u8) -> Self;
    fn id(&self) -> u32;
    fn borrowed(&self) -> &Self::Q {
        self.borrow()
    }
}

impl TestKey for u8 {
    type Q = u8;
    fn make(id: u8) -> Self {
        id
    }
    fn id(&self) -> u32 {
        u32::from(*self)
    }
}

impl TestKey for String {
    type Q = str;
    fn make(id: u8) -> Self {
        format!("key-{id}")
    }
    fn id(&self) -> u32 {
        self["key-".len()..].parse().unwrap()
    }
}

/// A value type for the harness.
trait TestVal: Clone + PartialEq + Debug {
    fn make(id: u32) -> Self;
    fn id(&self) -> u32;
}

impl TestVal for u32 {
    fn make(id: u32) -> Self {
        id
    }
    fn id(&self) -> u32 {
        *self
    }
}

impl TestVal for String {
    fn make(id: u32) -> Self {
        format!("value-{id}")
    }
    fn id(&self) -> u32 {
        self["value-".len()..].parse().unwrap()
    }
}

#[derive(Debug, Clone)]
enum Op {
    Get(u8),
    /// `MapRef::get_each` over these keys (more than one prefetch batch when long).
    GetEach(Vec<u8>),
    /// `MapRef::insert` (returns the previous value).
    InsertPrev(u8, u32),
    /// `SyncMap::insert` (returns whether a value was replaced).
    Insert(u8, u32),
    GetOrInsert(u8, u32),
    GetOrInsertWith(u8, u32),
    /// `MapRef::get_or_try_insert_with`; the loader fails for odd values.
    GetOrTryInsertWith(u8, u32),
    /// `MapRef::remove`.
    RemovePrev(u8),
    /// `SyncMap::remove`.
    Remove(u8),
    CompareExchange(u8, u32, u32),
    RemoveIf(u8, u32),
    /// Add `d` to the value's id; odd `d` through `SyncMap::update`, even through
    /// `MapRef::update`.
    Update(u8, u32),
    /// Keep `(k, v)` iff `(k + v) % (m % 3 + 2) != 0`; odd `m` goes through `SyncMap::retain`.
    Retain(u8),
    Iter,
    /// Iterate while inserting / removing other keys through the same pin.
    IterMutate(u32),
    /// Odd: `SyncMap::clear`; even: `MapRef::clear`.
    Clear(u8),
    Len,
    ContainsKey(u8),
    GetCloned(u8),
    With(u8),
    Stats,
    Debug,
    /// Replace the long-lived pin (owned if true). No effect in pin-per-op mode.
    Repin(bool),
    /// `Extend` on the owned map (a bulk load; needs every pin dropped).
    Extend(Vec<(u8, u32)>),
    GetKeyValue(u8),
    /// `keys`, `values` and `for (k, v) in &pin`.
    KeysValues,
    /// Clone the map, compare the clone (contents, configuration, `==`), then change the
    /// clone (key `k`: removed if present, else inserted; or its value changed) and
    /// check that the maps differ and the original did not change.
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
        2 => prop::collection::vec(key(), 0..40).prop_map(Op::GetEach),
        5 => (key(), val()).prop_map(|(k, v)| Op::InsertPrev(k, v)),
        3 => (key(), val()).prop_map(|(k, v)| Op::Insert(k, v)),
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
enum Pin<'m, K, V, S> {
    Local(MapRef<'m, K, V, S, LocalGuard<'m>>),
    Owned(MapRef<'m, K, V, S, OwnedGuard<'m>>),
}

/// Runs `$body` with `$m` bound to the `MapRef` inside a [`Pin`], whatever its guard.
macro_rules! with_pin {
    ($pin:expr, $m:ident => $body:expr) => {
        match $pin {
            Pin::Local($m) => $body,
            Pin::Owned($m) => $body,
        }
    };
}

/// Harness state besides the model.
#[derive(Default)]
struct Tracker {
    /// The last statistics snapshot (counters must never go backwards).
    last: Stats,
    /// Operations that iterate or bulk-load (each may promote without counting a miss).
    iterations: u64,
}

fn present_keys<K: TestKey, V>(model: &HashMap<K, V>) -> HashSet<K> {
    model.keys().cloned().collect()
}

/// Applies `op` to the map (through `pin` or the one-call methods) and to the model,
/// asserting that they agree.
fn apply<K, V, S>(
    map: &SyncMap<K, V, S>,
    pin: &Pin<'_, K, V, S>,
    model: &mut HashMap<K, V>,
    t: &mut Tracker,
    op: &Op,
) where
    K: TestKey,
    V: TestVal,
    S: BuildHasher + Clone,
{
    match *op {
        Op::Get(k) => {
            let k = K::make(k);
            let got = with_pin!(pin, m => m.get(k.borrowed()).cloned());
            assert_eq!(got.as_ref(), model.get(k.borrowed()), "get({k:?})");
        }
        Op::GetEach(ref keys) => {
            let keys: Vec<K> = keys.iter().map(|&k| K::make(k)).collect();
            let mut got = Vec::new();
            with_pin!(pin, m => m.get_each::<K>(&keys, |i, v| got.push((i, v.cloned()))));
            let want: Vec<_> = keys
                .iter()
                .enumerate()
                .map(|(i, k)| (i, model.get(k.borrowed()).cloned()))
                .collect();
            assert_eq!(got, want, "get_each({keys:?})");
        }
        Op::InsertPrev(k, v) => {
            let (k, v) = (K::make(k), V::make(v));
            let prev = with_pin!(pin, m => m.insert(k.clone(), v.clone()).cloned());
            assert_eq!(prev, model.insert(k.clone(), v), "insert({k:?}) previous");
        }
        Op::Insert(k, v) => {
            let (k, v) = (K::make(k), V::make(v));
            let replaced = map.insert(k.clone(), v.clone());
            assert_eq!(
                replaced,
                model.insert(k.clone(), v).is_some(),
                "SyncMap::insert({k:?})"
            );
        }
        Op::GetOrInsert(k, v) => {
            let (k, v) = (K::make(k), V::make(v));
            let got = with_pin!(pin, m => {
                let (r, inserted) = m.get_or_insert(k.clone(), v.clone());
                (r.clone(), inserted)
            });
            let expected = match model.get(k.borrowed()) {
                Some(x) => (x.clone(), false),
                None => {
                    model.insert(k.clone(), v.clone());
                    (v, true)
                }
            };
            assert_eq!(got, expected, "get_or_insert({k:?})");
        }
        Op::GetOrTryInsertWith(k, v) => {
            let (k, fails) = (K::make(k), v % 2 == 1);
            let calls = Cell::new(0);
            let make = || {
                calls.set(calls.get() + 1);
                if fails {
                    Err(v)
                } else {
                    Ok(V::make(v))
                }
            };
            let got = with_pin!(pin, m => m
                .get_or_try_insert_with(k.clone(), make)
                .map(|(r, inserted)| (r.clone(), inserted)));
            let absent = !model.contains_key(k.borrowed());
            assert_eq!(
                calls.get(),
                usize::from(absent),
                "get_or_try_insert_with({k:?}): loader runs iff absent"
            );
            let expected = match model.get(k.borrowed()) {
                Some(x) => Ok((x.clone(), false)),
                None if fails => Err(v),
                None => {
                    model.insert(k.clone(), V::make(v));
                    Ok((V::make(v), true))
                }
            };
            assert_eq!(got, expected, "get_or_try_insert_with({k:?})");
        }
        Op::GetOrInsertWith(k, v) => {
            let (k, v) = (K::make(k), V::make(v));
            let calls = Cell::new(0);
            let make = || {
                calls.set(calls.get() + 1);
                v.clone()
            };
            let got = with_pin!(pin, m => {
                let (r, inserted) = m.get_or_insert_with(k.clone(), make);
                (r.clone(), inserted)
            });
            let absent = !model.contains_key(k.borrowed());
            assert_eq!(
                calls.get(),
                usize::from(absent),
                "get_or_insert_with({k:?}): closure runs iff absent"
            );
            let expected = match model.get(k.borrowed()) {
                Some(x) => (x.clone(), false),
                None => {
                    model.insert(k.clone(), v.clone());
                    (v, true)
                }
            };
            assert_eq!(got, expected, "get_or_insert_with({k:?})");
        }
        Op::RemovePrev(k) => {
            let k = K::make(k);
            let got = with_pin!(pin, m => m.remove(k.borrowed()).cloned());
            assert_eq!(got, model.remove(k.borrowed()), "remove({k:?}) previous");
        }
        Op::Remove(k) => {
            let k = K::make(k);
            assert_eq!(
                map.remove(k.borrowed()),
                model.remove(k.borrowed()).is_some(),
                "SyncMap::remove({k:?})"
            );
        }
        Op::CompareExchange(k, cur, new) => {
            let (k, cur, new) = (K::make(k), V::make(cur), V::make(new));
            let got = with_pin!(pin, m => match m.compare_exchange(k.borrowed(), &cur, new.clone()) {
                Ok(prev) => Ok(prev.clone()),
                Err(e) => Err((e.current.cloned(), e.new)),
            });
            match model.get(k.borrowed()) {
                Some(x) if *x == cur => {
                    assert_eq!(got, Ok(cur), "compare_exchange({k:?}) should succeed");
                    model.insert(k, new);
                }
                found => assert_eq!(
                    got,
                    Err((found.cloned(), new)),
                    "compare_exchange({k:?}) should fail"
                ),
            }
        }
        Op::Update(k, d) => {
            let k = K::make(k);
            let calls = Cell::new(0);
            let f = |v: &V| {
                calls.set(calls.get() + 1);
                V::make(v.id().wrapping_add(d))
            };
            let expected = model
                .get(k.borrowed())
                .map(|old| V::make(old.id().wrapping_add(d)));
            if d % 2 == 1 {
                let present = map.update(k.borrowed(), f);
                assert_eq!(present, expected.is_some(), "SyncMap::update({k:?})");
            } else {
                let got = with_pin!(pin, m => m.update(k.borrowed(), f).cloned());
                assert_eq!(got, expected, "update({k:?})");
            }
            assert_eq!(
                calls.get(),
                usize::from(expected.is_some()),
                "update({k:?}): f runs once if present (no other writer), never if absent"
            );
            if let Some(v) = expected {
                model.insert(k, v);
            }
        }
        Op::RemoveIf(k, x) => {
            let (k, x) = (K::make(k), V::make(x));
            let calls = Cell::new(0);
            let got = with_pin!(pin, m => m.remove_if(k.borrowed(), |v| {
                calls.set(calls.get() + 1);
                *v == x
            }).cloned());
            assert_eq!(
                calls.get(),
                usize::from(model.contains_key(k.borrowed())),
                "remove_if({k:?}): predicate calls"
            );
            let expected = if model.get(k.borrowed()) == Some(&x) {
                model.remove(k.borrowed())
            } else {
                None
            };
            assert_eq!(got, expected, "remove_if({k:?})");
        }
        Op::Retain(mm) => {
            t.iterations += 1;
            let modulus = u32::from(mm % 3 + 2);
            let keep = |k: &K, v: &V| (k.id() + v.id()) % modulus != 0;
            let mut visited = HashSet::new();
            let check = |k: &K, v: &V| {
                assert!(visited.insert(k.clone()), "retain visited {k:?} twice");
                assert_eq!(
                    Some(v),
                    model.get(k.borrowed()),
                    "retain saw a wrong value for {k:?}"
                );
                keep(k, v)
            };
            if mm % 2 == 1 {
                map.retain(check);
            } else {
                with_pin!(pin, m => m.retain(check));
            }
            assert_eq!(
                visited,
                present_keys(model),
                "retain must visit every key once"
            );
            model.retain(|k, v| keep(k, v));
        }
        Op::Iter => {
            t.iterations += 1;
            let seen = with_pin!(pin, m => {
                let it = m.iter();
                let upper = it.size_hint().1;
                let mut seen = HashMap::new();
                for (k, v) in it {
                    assert!(seen.insert(k.clone(), v.clone()).is_none(), "iter yielded {k:?} twice");
                }
                assert!(upper.is_none_or(|u| u >= seen.len()), "size_hint upper bound too small");
                seen
            });
            assert_eq!(&seen, model, "iter must yield exactly the model's entries");
        }
        Op::IterMutate(x) => {
            t.iterations += 1;
            // Keys present at the start and never removed during the loop must be visited.
            let mut untouched = present_keys(model);
            let mut visited = HashSet::new();
            with_pin!(pin, m => {
                for (i, (k, v)) in m.iter().enumerate() {
                    assert!(visited.insert(k.clone()), "iter yielded {k:?} twice");
                    assert_eq!(Some(v), model.get(k.borrowed()), "iter saw a value {k:?} does not have now");
                    // Mutate another key through the same pin while iterating.
                    let other = K::make(((k.id() + 1 + i as u32) % u32::from(KEYS)) as u8);
                    if (x + i as u32) % 2 == 0 {
                        let nv = V::make(x);
                        assert_eq!(m.insert(other.clone(), nv.clone()).cloned(), model.insert(other.clone(), nv));
                    } else {
                        assert_eq!(m.remove(other.borrowed()).cloned(), model.remove(other.borrowed()));
                        untouched.remove(other.borrowed());
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
            assert_eq!(map.len(), model.len(), "len");
            assert_eq!(map.is_empty(), model.is_empty(), "is_empty");
            assert_eq!(with_pin!(pin, m => m.len()), model.len(), "MapRef::len");
            assert_eq!(
                with_pin!(pin, m => m.is_empty()),
                model.is_empty(),
                "MapRef::is_empty"
            );
        }
        Op::ContainsKey(k) => {
            let k = K::make(k);
            assert_eq!(
                map.contains_key(k.borrowed()),
                model.contains_key(k.borrowed()),
                "contains_key({k:?})"
            );
            assert_eq!(
                with_pin!(pin, m => m.contains_key(k.borrowed())),
                model.contains_key(k.borrowed())
            );
        }
        Op::GetCloned(k) => {
            let k = K::make(k);
            assert_eq!(
                map.get_cloned(k.borrowed()).as_ref(),
                model.get(k.borrowed()),
                "get_cloned({k:?})"
            );
        }
        Op::With(k) => {
            let k = K::make(k);
            assert_eq!(
                map.with(k.borrowed(), |v| v.id() + 1),
                model.get(k.borrowed()).map(|v| v.id() + 1),
                "with({k:?})"
            );
        }
        Op::Stats => check_stats(map, model, t),
        Op::Debug => {
            t.iterations += 2;
            let a = format!("{map:?}");
            let b = with_pin!(pin, m => format!("{m:?}"));
            assert_eq!(a.len(), b.len());
            for (k, v) in model.iter() {
                let needle = format!("{k:?}: {v:?}");
                assert!(a.contains(&needle), "Debug output {a} lacks {needle}");
            }
        }
        Op::GetKeyValue(k) => {
            let k = K::make(k);
            let got = with_pin!(pin, m => m.get_key_value(k.borrowed()).map(|(k, v)| (k.clone(), v.clone())));
            let want = model
                .get_key_value(k.borrowed())
                .map(|(k, v)| (k.clone(), v.clone()));
            assert_eq!(got, want, "get_key_value({k:?})");
        }
        Op::KeysValues => {
            t.iterations += 3;
            let (keys, mut values, pairs) = with_pin!(pin, m => {
                let keys: Vec<K> = m.keys().cloned().collect();
                let values: Vec<u32> = m.values().map(TestVal::id).collect();
                let mut pairs = HashMap::new();
                for (k, v) in m {
                    assert!(pairs.insert(k.clone(), v.clone()).is_none(), "&MapRef yielded {k:?} twice");
                }
                (keys, values, pairs)
            });
            let key_set: HashSet<K> = keys.iter().cloned().collect();
            assert_eq!(key_set.len(), keys.len(), "keys() repeated a key: {keys:?}");
            assert_eq!(key_set, present_keys(model), "keys()");
            let mut want: Vec<u32> = model.values().map(TestVal::id).collect();
            values.sort_unstable();
            want.sort_unstable();
            assert_eq!(values, want, "values()");
            assert_eq!(&pairs, model, "IntoIterator for &MapRef");
        }
        Op::CloneEq(k, change_value) => {
            t.iterations += 2;
            let copy = map.clone();
            assert!(copy == *map, "a clone must equal its original");
            assert!(*map == copy, "equality must be symmetric");
            assert_eq!(
                (copy.promotion(), copy.recent_keys(), copy.rebuild_step()),
                (map.promotion(), map.recent_keys(), map.rebuild_step()),
                "clone's configuration"
            );
            assert_eq!(
                (copy.max_len(), copy.retire_batch(), copy.hit_statistics()),
                (map.max_len(), map.retire_batch(), map.hit_statistics()),
                "clone's configuration"
            );
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
                "a clone is bulk-loaded into its read table: {s:?}"
            );
            let seen: HashMap<K, V> = copy
                .pin()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            assert_eq!(&seen, model, "clone's contents");
            let k = K::make(k);
            match model.get(k.borrowed()) {
                Some(v) if change_value => {
                    copy.insert(k.clone(), V::make(v.id() + 1));
                }
                Some(_) => {
                    copy.remove(k.borrowed());
                }
                None => {
                    copy.insert(k.clone(), V::make(0));
                }
            }
            assert!(copy != *map, "changed clone still equal (key {k:?})");
            assert!(*map != copy, "inequality must be symmetric");
            assert_eq!(map.len(), model.len(), "cloning changed the original");
        }
        Op::Repin(_) | Op::Extend(_) => unreachable!("handled by the driver"),
    }
}

/// Statistics must agree with the model and never go backwards.
fn check_stats<K, V, S>(map: &SyncMap<K, V, S>, model: &HashMap<K, V>, t: &mut Tracker)
where
    K: TestKey,
    V: TestVal,
    S: BuildHasher + Clone,
{
    let s = map.stats();
    let p = t.last;
    assert_eq!(s.len, model.len(), "stats.len: {s:?}");
    for (name, now, before) in [
        ("hits", s.hits, p.hits),
        ("misses", s.misses, p.misses),
        ("promotions", s.promotions, p.promotions),
        ("dirty_rebuilds", s.dirty_rebuilds, p.dirty_rebuilds),
        ("rebuild_copied", s.rebuild_copied, p.rebuild_copied),
        ("expunged", s.expunged, p.expunged),
        ("new_keys", s.new_keys, p.new_keys),
    ] {
        assert!(now >= before, "stats.{name} went backwards: {p:?} -> {s:?}");
    }
    // Every present key is in the dirty table when there is one (raw invariant 2),
    // otherwise in the read table.
    match s.dirty_len {
        Some(d) => assert!(d >= model.len(), "dirty table lacks present keys: {s:?}"),
        None => assert!(
            s.read_len >= model.len(),
            "read table lacks present keys: {s:?}"
        ),
    }
    // Each present key has its own entry, and every entry was created as a new key.
    assert!(
        s.new_keys >= model.len() as u64,
        "fewer new keys than present keys: {s:?}"
    );
    // Promotions come from misses (locked or answered by the recent table), from
    // iteration, or from a full recent table.
    assert!(
        s.promotions <= s.misses + s.recent_lookups + t.iterations + s.recent_full_promotions,
        "more promotions than misses + iterations + full recent tables: {s:?}"
    );
    assert!(s.recent_full_promotions <= s.promotions, "{s:?}");
    if map.recent_keys() == RecentKeys::Off {
        assert_eq!((s.recent_lookups, s.recent_len), (0, 0), "{s:?}");
    }
    if map.promotion() == Promotion::EveryMiss {
        // Every miss happens with a dirty table (amended ⇒ dirty) and promotes it.
        assert!(s.promotions >= s.misses, "EveryMiss: {s:?}");
    }
    assert!((0.0..=1.0).contains(&s.hit_ratio()));
    assert!(!s.to_string().is_empty());
    t.last = s;
}

/// Full comparison of map and model.
fn check_all<K, V, S>(map: &SyncMap<K, V, S>, model: &HashMap<K, V>)
where
    K: TestKey,
    V: TestVal,
    S: BuildHasher + Clone,
{
    let m = map.pin();
    for id in 0..KEYS {
        let k = K::make(id);
        assert_eq!(
            m.get(k.borrowed()),
            model.get(k.borrowed()),
            "final get({k:?})"
        );
    }
    let seen: HashMap<K, V> = m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(&seen, model, "final contents");
    assert_eq!(map.len(), model.len(), "final len");
}

/// Runs `ops` against a fresh `map`; `per_op` selects one pin per operation (alternating
/// local and owned) instead of a long-lived pin replaced by `Op::Repin`.
fn run<K, V, S>(mut map: SyncMap<K, V, S>, ops: &[Op], per_op: bool)
where
    K: TestKey,
    V: TestVal,
    S: BuildHasher + Clone,
{
    let mut model = HashMap::new();
    let mut t = Tracker::default();
    // Segments end at an `Extend`, which needs the map to itself: the long-lived pin
    // lives within one segment.
    let mut i = 0;
    for segment in ops.split_inclusive(|op| matches!(op, Op::Extend(_))) {
        {
            let mut long_lived = (!per_op).then(|| Pin::Local(map.pin()));
            for op in segment {
                i += 1;
                match *op {
                    Op::Extend(_) => continue,
                    Op::Repin(owned) => {
                        if let Some(pin) = long_lived.as_mut() {
                            *pin = if owned {
                                Pin::Owned(map.pin_owned())
                            } else {
                                Pin::Local(map.pin())
                            };
                        }
                        continue;
                    }
                    _ => {}
                }
                let fresh;
                let pin = match &long_lived {
                    Some(pin) => pin,
                    None => {
                        fresh = if i % 2 == 0 {
                            Pin::Local(map.pin())
                        } else {
                            Pin::Owned(map.pin_owned())
                        };
                        &fresh
                    }
                };
                apply(&map, pin, &mut model, &mut t, op);
            }
            check_stats(&map, &model, &mut t);
        }
        if let Some(Op::Extend(items)) = segment.last() {
            let bulk = items.len() >= model.len() / 4; // as `SyncMap::extend` decides
            map.extend(items.iter().map(|&(k, v)| (K::make(k), V::make(v))));
            for &(k, v) in items {
                model.insert(K::make(k), V::make(v));
            }
            // A bulk load may promote what is pending, without a miss.
            t.iterations += 1;
            check_stats(&map, &model, &mut t);
            if bulk {
                let s = map.stats();
                assert_eq!(
                    (s.recent_len, s.dirty_len),
                    (0, None),
                    "after extend: {s:?}"
                );
            }
        }
    }
    check_all(&map, &model);
    // Taking the map apart yields exactly the model's pairs.
    let mut it = map.into_iter();
    assert_eq!(it.len(), model.len(), "into_iter len");
    let mut taken = HashMap::new();
    for (k, v) in it.by_ref() {
        assert!(
            taken.insert(k, v).is_none(),
            "into_iter yielded a key twice"
        );
    }
    assert_eq!(taken, model, "into_iter");
}

fn build<K: Hash + Eq, V>(promotion: Promotion, recent: u8) -> SyncMap<K, V> {
    SyncMap::builder()
        .promotion(promotion)
        .recent_keys(recent_keys(recent))
        .rebuild_step(rebuild_step(recent))
        .build()
}

/// The rebuild step the models run with (paired with the recent-table setting): one
/// entry per locked operation (partly rebuilt dirty tables most of the time), two, and
/// the default.
fn rebuild_step(choice: u8) -> usize {
    match choice % 3 {
        0 => 1,
        1 => 2,
        _ => readmostly::SyncMap::<u8, u8>::new().rebuild_step(),
    }
}

/// The recent-table settings the models run with: the default, Go's behaviour, and a
/// tiny table that fills (and forces a promotion) every other new key.
fn recent_keys(choice: u8) -> RecentKeys {
    match choice % 3 {
        0 => RecentKeys::Auto,
        1 => RecentKeys::Off,
        _ => RecentKeys::AtMost(NonZeroUsize::new(2).unwrap()),
    }
}

fn after(n: usize) -> Promotion {
    Promotion::AfterMisses(NonZeroUsize::new(n).unwrap())
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 1..200)
}

proptest! {
    #[test]
    fn model_default_promotion(ops in ops(), per_op in any::<bool>(), recent in 0..3u8) {
        run(build::<u8, u32>(Promotion::DirtyLen, recent), &ops, per_op);
    }

    #[test]
    fn model_promote_every_miss(ops in ops(), per_op in any::<bool>(), recent in 0..3u8) {
        run(build::<u8, u32>(Promotion::EveryMiss, recent), &ops, per_op);
    }

    #[test]
    fn model_promote_after_two_misses(ops in ops(), per_op in any::<bool>(), recent in 0..3u8) {
        run(build::<u8, u32>(after(2), recent), &ops, per_op);
    }

    /// `String` keys looked up by `&str`, `String` values, std's `RandomState`.
    #[test]
    fn model_string_keys_borrowed_lookup_std_hasher(ops in ops(), per_op in any::<bool>(), rule in 0..3u8, recent in 0..3u8) {
        let promotion = [Promotion::DirtyLen, Promotion::EveryMiss, after(2)][usize::from(rule)];
        let map: SyncMap<String, String, RandomState> = SyncMap::builder()
            .hasher(RandomState::new())
            .promotion(promotion)
            .recent_keys(recent_keys(recent))
            .build();
        run(map, &ops, per_op);
    }

    /// `with_hasher` (default promotion rule) with std's `RandomState`.
    #[test]
    fn model_with_hasher(ops in ops(), per_op in any::<bool>()) {
        run(SyncMap::<u8, u32, _>::with_hasher(RandomState::new()), &ops, per_op);
    }
}

/// `FromIterator` and `Extend` agree with the model too.
#[test]
fn from_iter_and_extend() {
    let pairs: Vec<(u8, u32)> = (0..40u32).map(|i| ((i * 7 % 13) as u8, i)).collect();
    let map: SyncMap<u8, u32> = pairs.iter().copied().collect();
    let model: HashMap<u8, u32> = pairs.iter().copied().collect();
    let seen: HashMap<u8, u32> = map.pin().iter().map(|(k, v)| (*k, *v)).collect();
    assert_eq!(seen, model);
    let mut map = map;
    let mut model = model;
    map.extend((0..20u32).map(|i| ((i % 17) as u8, i + 100)));
    model.extend((0..20u32).map(|i| ((i % 17) as u8, i + 100)));
    (&map).extend([(200u8, 1u32)]);
    model.insert(200, 1);
    let seen: HashMap<u8, u32> = map.pin().iter().map(|(k, v)| (*k, *v)).collect();
    assert_eq!(seen, model);
    assert_eq!(map.len(), model.len());
}
