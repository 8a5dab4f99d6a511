//! Differential fuzzing: the same operation sequence applied to a `SyncMap` and to a
//! `std::collections::HashMap`, every result compared.
//!
//! Every public operation of `SyncMap` and `MapRef` is covered (one-call and pinned
//! forms, `try_insert` with a capacity limit, `extend`, iteration with and without
//! mutation in the loop body, `retain`, `clear`, `len`, `stats`, `Debug`), under every
//! promotion rule and recent-table setting and with a colliding hasher; `Promote` forces a
//! promotion at any point (`SyncMap::promote`), and `Pinned` runs the
//! next operations through one long-lived pin (nested pins included) and checks that a
//! reference taken at its start still reads the same value at its end. Keys are strings
//! (lookups go through `&str`) and values boxed, so AddressSanitizer (cargo-fuzz's
//! default) sees any use after free, double free or leak.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;

use arbitrary::Arbitrary;
use readmostly::{MapRef, SyncMap};
use seize::Guard;

use crate::{Colliding, Fixed, Rule};

/// Number of distinct keys the fuzzer can name.
const KEYS: u8 = 24;
/// Operations run per input (longer inputs are cut), and the map size past which the
/// mutating iteration stops adding keys: each operation checks the whole map's length
/// and some visit every key, so both bound the time per input.
const MAX_OPS: usize = 512;
const MAX_LEN: usize = 256;

#[derive(Arbitrary, Debug)]
pub struct Input {
    rule: Rule,
    colliding: bool,
    /// A capacity limit for `try_insert`.
    max_len: Option<u8>,
    /// Built with `FromIterator` when `Some`.
    initial: Option<Vec<(u8, u16)>>,
    ops: Vec<Op>,
}

/// The expected value of `compare_exchange` / `remove_if`.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Expect {
    /// The key's current value (so the operation can succeed).
    Current,
    Value(u16),
}

#[derive(Arbitrary, Debug, Clone)]
pub enum Op {
    Get(u8),
    /// `MapRef::get_each` over these keys (batches of 16 inside).
    GetEach(Vec<u8>),
    GetCloned(u8),
    ContainsKey(u8),
    With(u8),
    /// `MapRef::insert` (previous value).
    Insert(u8, u16),
    /// `SyncMap::insert` (whether a value was replaced).
    Store(u8, u16),
    TryInsert(u8, u16),
    GetOrInsert(u8, u16),
    GetOrInsertWith(u8, u16),
    /// `MapRef::remove` (removed value).
    Remove(u8),
    /// `SyncMap::remove` (whether present).
    Delete(u8),
    RemoveIf(u8, Expect),
    CompareExchange(u8, Expect, u16),
    Iter,
    /// Iterates while removing, replacing and inserting keys in the loop body.
    IterMutate(u8),
    Retain(u8),
    Clear,
    Len,
    /// Forces a promotion if the dirty table holds new keys.
    Promote,
    /// Runs the next `count % 8` operations through one pin (`pin_owned` if `owned`).
    Pinned {
        owned: bool,
        count: u8,
        watch: u8,
    },
    Extend(Vec<(u8, u16)>),
    Stats,
    Debug,
}

fn key(k: u8) -> String {
    format!("k{}", k % KEYS)
}

type Model = HashMap<String, u32>;

/// Runs one input.
pub fn run(input: Input) {
    let Input {
        rule,
        colliding,
        max_len,
        initial,
        ops,
    } = input;
    if colliding {
        run_with(Colliding, rule, max_len, initial, &ops);
    } else {
        run_with(Fixed, rule, max_len, initial, &ops);
    }
}

fn run_with<S: BuildHasher + Default>(
    hasher: S,
    rule: Rule,
    max_len: Option<u8>,
    initial: Option<Vec<(u8, u16)>>,
    ops: &[Op],
) {
    let mut model = Model::new();
    let map: SyncMap<String, Box<u32>, S> = match initial {
        Some(pairs) => {
            let pairs: Vec<(String, u32)> =
                pairs.iter().map(|&(k, v)| (key(k), u32::from(v))).collect();
            model.extend(pairs.iter().cloned());
            pairs.into_iter().map(|(k, v)| (k, Box::new(v))).collect()
        }
        None => {
            let mut builder = SyncMap::builder()
                .hasher(hasher)
                .promotion(rule.promotion())
                .recent_keys(rule.recent_keys())
                .rebuild_step(rule.rebuild_step());
            if let Some(n) = max_len {
                builder = builder.max_len(usize::from(n % 32));
            }
            builder.build()
        }
    };
    assert_eq!(map.len(), model.len());
    let mut ctx = Ctx { map: &map, model };
    let mut ops = ops[..ops.len().min(MAX_OPS)].iter();
    while let Some(op) = ops.next() {
        let m = map.pin();
        ctx.apply(&m, op, &mut ops, 0);
    }
    ctx.check_contents(&map.pin());
    drop(ctx);
    // Dropping the map frees everything (LeakSanitizer checks).
    drop(map);
}

struct Ctx<'a, S> {
    map: &'a SyncMap<String, Box<u32>, S>,
    model: Model,
}

impl<S: BuildHasher> Ctx<'_, S> {
    fn expected(&self, k: &str, e: Expect) -> u32 {
        match e {
            Expect::Current => self.model.get(k).copied().unwrap_or(0),
            Expect::Value(v) => u32::from(v),
        }
    }

    /// The whole map (through `iter` and `get`) equals the model.
    fn check_contents<G: Guard>(&self, m: &MapRef<'_, String, Box<u32>, S, G>) {
        let mut seen = HashMap::new();
        for (k, v) in m.iter() {
            assert!(
                seen.insert(k.clone(), **v).is_none(),
                "iter visited {k} twice"
            );
        }
        assert_eq!(seen, self.model, "iter disagrees with the model");
        for (k, v) in &self.model {
            assert_eq!(m.get(k.as_str()).map(|v| **v), Some(*v), "get({k})");
        }
        assert_eq!(m.len(), self.model.len(), "len");
    }

    /// Applies `op` through `m`; `Pinned` takes its operations from `rest`.
    fn apply<G: Guard>(
        &mut self,
        m: &MapRef<'_, String, Box<u32>, S, G>,
        op: &Op,
        rest: &mut std::slice::Iter<'_, Op>,
        depth: u32,
    ) {
        let map = self.map;
        match *op {
            Op::Get(k) => {
                let k = key(k);
                assert_eq!(m.get(k.as_str()).map(|v| **v), self.model.get(&k).copied());
            }
            Op::GetEach(ref ks) => {
                let keys: Vec<String> = ks.iter().map(|&k| key(k)).collect();
                let mut got = Vec::new();
                m.get_each::<String>(&keys, |i, v| got.push((i, v.map(|v| **v))));
                let want: Vec<_> = keys
                    .iter()
                    .enumerate()
                    .map(|(i, k)| (i, self.model.get(k).copied()))
                    .collect();
                assert_eq!(got, want);
            }
            Op::GetCloned(k) => {
                let k = key(k);
                assert_eq!(
                    map.get_cloned(k.as_str()).map(|v| *v),
                    self.model.get(&k).copied()
                );
            }
            Op::ContainsKey(k) => {
                let k = key(k);
                assert_eq!(map.contains_key(k.as_str()), self.model.contains_key(&k));
                assert_eq!(m.contains_key(k.as_str()), self.model.contains_key(&k));
            }
            Op::With(k) => {
                let k = key(k);
                assert_eq!(
                    map.with(k.as_str(), |v| **v + 1),
                    self.model.get(&k).map(|v| v + 1)
                );
            }
            Op::Insert(k, v) => {
                let (k, v) = (key(k), u32::from(v));
                let prev = m.insert(k.clone(), Box::new(v)).map(|p| **p);
                assert_eq!(prev, self.model.insert(k, v));
            }
            Op::Store(k, v) => {
                let (k, v) = (key(k), u32::from(v));
                assert_eq!(
                    map.insert(k.clone(), Box::new(v)),
                    self.model.insert(k, v).is_some()
                );
            }
            Op::TryInsert(k, v) => {
                let (k, v) = (key(k), u32::from(v));
                let full = map
                    .max_len()
                    .is_some_and(|n| self.model.len() >= n && !self.model.contains_key(&k));
                match m.try_insert(k.clone(), Box::new(v)) {
                    Ok(prev) => {
                        assert!(!full, "try_insert accepted a new key over max_len");
                        assert_eq!(prev.map(|p| **p), self.model.insert(k, v));
                    }
                    Err(e) => {
                        assert!(full, "try_insert refused {k} below max_len");
                        assert_eq!((e.key.as_str(), *e.value), (k.as_str(), v));
                        assert_eq!(Some(e.max_len), map.max_len());
                    }
                }
            }
            Op::GetOrInsert(k, v) => {
                let (k, v) = (key(k), u32::from(v));
                let (got, inserted) = m.get_or_insert(k.clone(), Box::new(v));
                let expected = match self.model.get(&k) {
                    Some(&x) => (x, false),
                    None => {
                        self.model.insert(k, v);
                        (v, true)
                    }
                };
                assert_eq!((**got, inserted), expected);
            }
            Op::GetOrInsertWith(k, v) => {
                let (k, v) = (key(k), u32::from(v));
                let mut calls = 0;
                let (got, inserted) = m.get_or_insert_with(k.clone(), || {
                    calls += 1;
                    Box::new(v)
                });
                let expected = match self.model.get(&k) {
                    Some(&x) => (x, false, 0),
                    None => {
                        self.model.insert(k, v);
                        (v, true, 1)
                    }
                };
                assert_eq!((**got, inserted, calls), expected);
            }
            Op::Remove(k) => {
                let k = key(k);
                assert_eq!(m.remove(k.as_str()).map(|v| **v), self.model.remove(&k));
            }
            Op::Delete(k) => {
                let k = key(k);
                assert_eq!(map.remove(k.as_str()), self.model.remove(&k).is_some());
            }
            Op::RemoveIf(k, e) => {
                let k = key(k);
                let expected = self.expected(&k, e);
                let mut calls = 0;
                let removed = m
                    .remove_if(k.as_str(), |v| {
                        calls += 1;
                        **v == expected
                    })
                    .map(|v| **v);
                let model_calls = usize::from(self.model.contains_key(&k));
                let model_removed = match self.model.get(&k) {
                    Some(&x) if x == expected => self.model.remove(&k),
                    _ => None,
                };
                assert_eq!((removed, calls), (model_removed, model_calls));
            }
            Op::CompareExchange(k, e, new) => {
                let (k, new) = (key(k), u32::from(new));
                let expected = self.expected(&k, e);
                let result = m
                    .compare_exchange(k.as_str(), &Box::new(expected), Box::new(new))
                    .map(|p| **p)
                    .map_err(|e| (e.current.map(|v| **v), *e.new));
                let model_result = match self.model.get(&k) {
                    Some(&x) if x == expected => {
                        self.model.insert(k, new);
                        Ok(x)
                    }
                    current => Err((current.copied(), new)),
                };
                assert_eq!(result, model_result);
            }
            Op::Iter => {
                let mut seen = HashMap::new();
                let it = m.iter();
                let (_, upper) = it.size_hint();
                for (k, v) in it {
                    assert!(
                        seen.insert(k.clone(), **v).is_none(),
                        "iter visited {k} twice"
                    );
                }
                assert_eq!(seen, self.model);
                assert!(upper.is_none_or(|u| u >= seen.len()), "size_hint too small");
            }
            Op::IterMutate(x) => self.iter_mutate(m, x),
            Op::Retain(r) => {
                let keep = |v: u32| (v + u32::from(r)) % 3 != 0;
                let mut seen = HashSet::new();
                m.retain(|k, v| {
                    assert!(seen.insert(k.clone()), "retain visited {k} twice");
                    assert_eq!(self.model.get(k), Some(&**v), "retain saw {k} = {v}");
                    keep(**v)
                });
                assert_eq!(seen.len(), self.model.len(), "retain skipped keys");
                self.model.retain(|_, v| keep(*v));
            }
            Op::Clear => {
                if depth % 2 == 0 {
                    map.clear();
                } else {
                    m.clear();
                }
                self.model.clear();
            }
            Op::Len => {
                assert_eq!(map.len(), self.model.len());
                assert_eq!(map.is_empty(), self.model.is_empty());
                assert_eq!(m.is_empty(), self.model.is_empty());
            }
            Op::Promote => {
                m.iter().next();
                map.promote();
                let stats = map.stats();
                assert_eq!(stats.dirty_len, None, "promote() left a dirty table");
                assert_eq!(stats.recent_len, 0, "promote() left recent keys");
                assert!(stats.read_len >= self.model.len(), "{stats:?}");
                assert_eq!(stats.len, self.model.len());
            }
            Op::Pinned {
                owned,
                count,
                watch,
            } => {
                if depth >= 2 {
                    return;
                }
                if owned {
                    self.session(&map.pin_owned(), count, watch, rest, depth);
                } else {
                    self.session(&map.pin(), count, watch, rest, depth);
                }
            }
            Op::Extend(ref pairs) => {
                let pairs: Vec<(String, u32)> =
                    pairs.iter().map(|&(k, v)| (key(k), u32::from(v))).collect();
                let mut target = map;
                target.extend(pairs.iter().map(|(k, v)| (k.clone(), Box::new(*v))));
                self.model.extend(pairs);
            }
            Op::Stats => {
                let stats = map.stats();
                assert!(!stats.to_string().is_empty());
                assert_eq!(stats.len, self.model.len());
                assert!(
                    stats.dirty_len.unwrap_or(stats.read_len) >= stats.len,
                    "{stats:?}"
                );
            }
            Op::Debug => {
                // The order differs, the length does not.
                let ours = format!("{map:?}");
                let theirs = format!("{:?}", self.model_boxed());
                assert_eq!(ours.len(), theirs.len(), "{ours} vs {theirs}");
                assert_eq!(format!("{m:?}").len(), ours.len());
            }
        }
        assert_eq!(map.len(), self.model.len(), "len after {op:?}");
    }

    fn model_boxed(&self) -> HashMap<&String, Box<u32>> {
        self.model.iter().map(|(k, v)| (k, Box::new(*v))).collect()
    }

    /// The next `count % 8` operations through `m`; a reference taken first must read
    /// the same value at the end, whatever happened to its key meanwhile.
    fn session<G: Guard>(
        &mut self,
        m: &MapRef<'_, String, Box<u32>, S, G>,
        count: u8,
        watch: u8,
        rest: &mut std::slice::Iter<'_, Op>,
        depth: u32,
    ) {
        let k = key(watch);
        let held = m.get(k.as_str()).map(|v| (v, **v));
        let held_iter = m.iter().next().map(|(k, v)| (k, v, **v));
        for _ in 0..count % 8 {
            let Some(op) = rest.next() else { break };
            self.apply(m, op, rest, depth + 1);
        }
        if let Some((v, x)) = held {
            assert_eq!(**v, x, "a pinned reference to {k} changed");
        }
        if let Some((k, v, x)) = held_iter {
            assert_eq!(**v, x, "a pinned iterator reference to {k} changed");
        }
    }

    /// Iterates and mutates from the loop body: every key present at the start (and
    /// not yet removed) is visited once with its model value; keys inserted by the loop
    /// may be visited (with their value) or not.
    fn iter_mutate<G: Guard>(&mut self, m: &MapRef<'_, String, Box<u32>, S, G>, x: u8) {
        let start: Vec<String> = self.model.keys().cloned().collect();
        let mut seen = HashSet::new();
        let mut added: HashMap<String, u32> = HashMap::new();
        for (k, v) in m.iter() {
            assert!(seen.insert(k.clone()), "iter visited {k} twice");
            if let Some(&a) = added.get(k) {
                assert_eq!(**v, a, "iter saw {k} = {v}, inserted {a}");
                continue;
            }
            assert_eq!(self.model.get(k), Some(&**v), "iter saw {k} = {v}");
            let v = **v;
            match (v + u32::from(x)) % 4 {
                0 => {
                    assert_eq!(m.remove(k.as_str()).map(|p| **p), self.model.remove(k));
                }
                1 => {
                    assert_eq!(
                        m.insert(k.clone(), Box::new(v + 1)).map(|p| **p),
                        self.model.insert(k.clone(), v + 1)
                    );
                }
                // Bounded: repeated iterations would otherwise grow the map exponentially.
                2 if self.model.len() < MAX_LEN => {
                    let nk = format!("{k}+{x}");
                    if !self.model.contains_key(&nk) && !seen.contains(&nk) {
                        assert_eq!(m.insert(nk.clone(), Box::new(v)), None);
                        self.model.insert(nk.clone(), v);
                        added.insert(nk, v);
                    }
                }
                _ => {}
            }
        }
        for k in start {
            assert!(seen.contains(&k), "iter skipped {k}, present throughout");
        }
    }
}
