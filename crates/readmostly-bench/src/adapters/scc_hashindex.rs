//! `scc::HashIndex`: lock-free reads; an update replaces the entry (copy-on-write per entry).

use std::hint::black_box;

use scc::hash_index::Entry;

use super::{BenchMap, Handle, Hasher, Value};

/// `scc::HashIndex<u64, V, S>`.
#[derive(Debug)]
pub struct SccHashIndex<V, S: Hasher> {
    map: scc::HashIndex<u64, V, S>,
}

impl<V: Value, S: Hasher> BenchMap for SccHashIndex<V, S> {
    type Value = V;
    type Hasher = S;
    type Handle<'a> = &'a Self;

    fn build(hasher: S) -> Self {
        SccHashIndex {
            map: scc::HashIndex::with_hasher(hasher),
        }
    }

    fn handle(&self) -> &Self {
        self
    }
}

impl<V: Value, S: Hasher> Handle<V> for &SccHashIndex<V, S> {
    #[inline]
    fn get(&mut self, key: u64) -> bool {
        self.map
            .peek_with(&key, |_, v| black_box(v.observe()))
            .is_some()
    }

    #[inline]
    fn insert(&mut self, key: u64, value: V) {
        match self.map.entry_sync(key) {
            Entry::Occupied(mut o) => o.update(value),
            Entry::Vacant(v) => {
                v.insert_entry(value);
            }
        }
    }

    #[inline]
    fn remove(&mut self, key: u64) -> bool {
        self.map.remove_sync(&key)
    }

    #[inline]
    fn get_or_insert_with<F: FnOnce() -> V>(&mut self, key: u64, make: F) -> bool {
        // Lock-free peek first, as a caller of HashIndex would write it.
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
        let guard = scc::Guard::new();
        super::visit(self.map.iter(&guard).map(|(_, v)| v))
    }
}
