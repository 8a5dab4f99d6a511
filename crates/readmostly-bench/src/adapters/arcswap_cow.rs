//! `ArcSwap<HashMap>` with copy-on-write updates: reads are one atomic load; every write
//! copies the whole map under a writer mutex and publishes the copy. The natural baseline for
//! "rarely written configuration".

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use super::{BenchMap, Handle, Hasher, Value};

/// `ArcSwap<HashMap<u64, V, S>>` plus a writer lock.
#[derive(Debug)]
pub struct ArcSwapCow<V, S> {
    map: ArcSwap<HashMap<u64, V, S>>,
    writer: Mutex<()>,
}

impl<V: Value, S: Hasher> ArcSwapCow<V, S> {
    /// Copies the current map, applies `f` to the copy and publishes it; returns `f`'s result.
    fn update<R>(&self, f: impl FnOnce(&mut HashMap<u64, V, S>) -> R) -> R {
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = HashMap::clone(&self.map.load_full());
        let r = f(&mut next);
        self.map.store(Arc::new(next));
        r
    }
}

impl<V: Value, S: Hasher> BenchMap for ArcSwapCow<V, S> {
    type Value = V;
    type Hasher = S;
    type Handle<'a> = &'a Self;

    fn build(hasher: S) -> Self {
        ArcSwapCow {
            map: ArcSwap::from_pointee(HashMap::with_hasher(hasher)),
            writer: Mutex::new(()),
        }
    }

    /// One copy for the whole prefill (inserting one by one would copy the map per key).
    fn prefill(&mut self, items: impl Iterator<Item = (u64, V)>) {
        self.update(|m| m.extend(items));
    }

    fn handle(&self) -> &Self {
        self
    }
}

impl<V: Value, S: Hasher> Handle<V> for &ArcSwapCow<V, S> {
    #[inline]
    fn get(&mut self, key: u64) -> bool {
        let m = self.map.load();
        m.get(&key).map(|v| black_box(v.observe())).is_some()
    }

    fn insert(&mut self, key: u64, value: V) {
        self.update(|m| m.insert(key, value));
    }

    fn remove(&mut self, key: u64) -> bool {
        if !self.map.load().contains_key(&key) {
            return false;
        }
        self.update(|m| m.remove(&key).is_some())
    }

    fn get_or_insert_with<F: FnOnce() -> V>(&mut self, key: u64, make: F) -> bool {
        if self.get(key) {
            return false;
        }
        self.update(|m| match m.entry(key) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(make());
                true
            }
        })
    }

    fn iterate(&mut self) -> usize {
        let m = self.map.load();
        super::visit(m.values())
    }
}
