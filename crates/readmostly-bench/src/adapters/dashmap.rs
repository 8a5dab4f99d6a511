//! `dashmap::DashMap`: a fixed number of `RwLock`-protected shards.

use std::hint::black_box;

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;

use super::{BenchMap, Handle, Hasher, Value};

/// `DashMap<u64, V, S>`.
#[derive(Debug)]
pub struct DashMapAdapter<V, S: Hasher> {
    map: DashMap<u64, V, S>,
}

impl<V: Value, S: Hasher> BenchMap for DashMapAdapter<V, S> {
    type Value = V;
    type Hasher = S;
    type Handle<'a> = &'a Self;

    fn build(hasher: S) -> Self {
        DashMapAdapter {
            map: DashMap::with_hasher(hasher),
        }
    }

    fn handle(&self) -> &Self {
        self
    }
}

impl<V: Value, S: Hasher> Handle<V> for &DashMapAdapter<V, S> {
    #[inline]
    fn get(&mut self, key: u64) -> bool {
        self.map.get(&key).map(|r| black_box(r.observe())).is_some()
    }

    #[inline]
    fn insert(&mut self, key: u64, value: V) {
        self.map.insert(key, value);
    }

    #[inline]
    fn remove(&mut self, key: u64) -> bool {
        self.map.remove(&key).is_some()
    }

    #[inline]
    fn get_or_insert_with<F: FnOnce() -> V>(&mut self, key: u64, make: F) -> bool {
        // A read first (a read lock on the key's shard), as a caller would write it, and as every
        // other adapter (and SyncMap's own `get_or_insert`) does: `entry` alone takes
        // the exclusive lock even when the key is present.
        if self.get(key) {
            return false;
        }
        match self.map.entry(key) {
            Entry::Occupied(o) => {
                black_box(o.get().observe());
                false
            }
            Entry::Vacant(v) => {
                v.insert(make());
                true
            }
        }
    }

    fn iterate(&mut self) -> usize {
        self.map.iter().fold(0, |n, r| {
            black_box(r.observe());
            n + 1
        })
    }
}
