//! `std::sync::RwLock<HashMap>`: the classic baseline (Go's `RWMutex` + `map`).

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::RwLock;

use super::{BenchMap, Handle, Hasher, Value};

/// `RwLock<HashMap<u64, V, S>>`.
#[derive(Debug)]
pub struct RwLockStd<V, S> {
    map: RwLock<HashMap<u64, V, S>>,
}

impl<V: Value, S: Hasher> BenchMap for RwLockStd<V, S> {
    type Value = V;
    type Hasher = S;
    type Handle<'a> = &'a Self;

    fn build(hasher: S) -> Self {
        RwLockStd {
            map: RwLock::new(HashMap::with_hasher(hasher)),
        }
    }

    fn handle(&self) -> &Self {
        self
    }
}

impl<V: Value, S: Hasher> Handle<V> for &RwLockStd<V, S> {
    #[inline]
    fn get(&mut self, key: u64) -> bool {
        let m = self.map.read().unwrap_or_else(|e| e.into_inner());
        m.get(&key).map(|v| black_box(v.observe())).is_some()
    }

    #[inline]
    fn insert(&mut self, key: u64, value: V) {
        let old = self
            .map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, value);
        drop(old); // dropped outside the lock
    }

    #[inline]
    fn remove(&mut self, key: u64) -> bool {
        let old = self
            .map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
        old.is_some()
    }

    #[inline]
    fn get_or_insert_with<F: FnOnce() -> V>(&mut self, key: u64, make: F) -> bool {
        // Read lock first (the common hit), write lock only to insert.
        if self.get(key) {
            return false;
        }
        let mut m = self.map.write().unwrap_or_else(|e| e.into_inner());
        match m.entry(key) {
            std::collections::hash_map::Entry::Occupied(o) => {
                black_box(o.get().observe());
                false
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(make());
                true
            }
        }
    }

    fn iterate(&mut self) -> usize {
        let m = self.map.read().unwrap_or_else(|e| e.into_inner());
        super::visit(m.values())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn smoke() {
        super::super::tests::smoke::<super::RwLockStd<u64, std::hash::RandomState>>(
            std::hash::RandomState::new(),
        );
    }
}
