//! `scc::HashMap`: per-bucket locks, lock-free bucket array resizing.

use std::hint::black_box;

use scc::hash_map::Entry;

use super::{BenchMap, Handle, Hasher, Value};

/// `scc::HashMap<u64, V, S>`.
#[derive(Debug)]
pub struct SccHashMap<V, S: Hasher> {
    map: scc::HashMap<u64, V, S>,
}

impl<V: Value, S: Hasher> BenchMap for SccHashMap<V, S> {
    type Value = V;
    type Hasher = S;
    type Handle<'a> = &'a Self;

    fn build(hasher: S) -> Self {
        SccHashMap {
            map: scc::HashMap::with_hasher(hasher),
        }
    }

    fn handle(&self) -> &Self {
        self
    }
}

impl<V: Value, S: Hasher> Handle<V> for &SccHashMap<V, S> {
    #[inline]
    fn get(&mut self, key: u64) -> bool {
        self.map
            .read_sync(&key, |_, v| black_box(v.observe()))
            .is_some()
    }

    #[inline]
    fn insert(&mut self, key: u64, value: V) {
        self.map.upsert_sync(key, value);
    }

    #[inline]
    fn remove(&mut self, key: u64) -> bool {
        self.map.remove_sync(&key).is_some()
    }

    #[inline]
    fn get_or_insert_with<F: FnOnce() -> V>(&mut self, key: u64, make: F) -> bool {
        // A read first (a shared bucket lock), as a caller would write it, and as every
        // other adapter (and SyncMap's own `get_or_insert`) does: `entry` alone takes
        // the exclusive lock even when the key is present.
        if self.get(key) {
            return false;
        }
        match self.map.entry_sync(key) {
            Entry::Occupied(o) => {
                black_box(o.get().observe());
                false
            }
            Entry::Vacant(v) => {
                v.insert_entry(make());
                true
            }
        }
    }

    fn iterate(&mut self) -> usize {
        let mut n = 0;
        self.map.iter_sync(|_, v| {
            black_box(v.observe());
            n += 1;
            true
        });
        n
    }
}
