//! `readmostly::SyncMap` with one pin kept across [`BATCH`] operations: what a caller that
//! holds a `MapRef` over a burst of lookups gets (the "one pin serves many reads" target).

use std::hint::black_box;

use readmostly::{LocalGuard, MapRef, SyncMap};

use super::{BenchMap, Handle, Hasher, Value};

/// Operations served by one pin before it is dropped and taken again.
pub const BATCH: u32 = 64;

/// `SyncMap<u64, V, S>`; its handle re-pins every [`BATCH`] operations.
pub struct SyncMapBatch<V, S> {
    map: SyncMap<u64, V, S>,
}

impl<V, S> std::fmt::Debug for SyncMapBatch<V, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SyncMapBatch")
    }
}

/// A thread's handle: the current pin and the operations left before re-pinning.
pub struct BatchHandle<'a, V, S> {
    map: &'a SyncMap<u64, V, S>,
    pin: MapRef<'a, u64, V, S, LocalGuard<'a>>,
    left: u32,
}

impl<V, S> std::fmt::Debug for BatchHandle<'_, V, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchHandle")
            .field("left", &self.left)
            .finish_non_exhaustive()
    }
}

impl<V: Value, S: Hasher> BatchHandle<'_, V, S> {
    /// Counts one operation; re-pins when the batch is used up (so retired memory can be
    /// reclaimed).
    #[inline]
    fn tick(&mut self) {
        self.left -= 1;
        if self.left == 0 {
            self.pin = self.map.pin();
            self.left = BATCH;
        }
    }
}

impl<V: Value, S: Hasher> BenchMap for SyncMapBatch<V, S> {
    type Value = V;
    type Hasher = S;
    type Handle<'a> = BatchHandle<'a, V, S>;

    fn build(hasher: S) -> Self {
        SyncMapBatch {
            map: SyncMap::builder().hasher(hasher).build(),
        }
    }

    /// As for `syncmap`: a bulk load through `Extend`.
    fn prefill(&mut self, items: impl Iterator<Item = (u64, V)>) {
        self.map.extend(items);
    }

    fn handle(&self) -> BatchHandle<'_, V, S> {
        BatchHandle {
            map: &self.map,
            pin: self.map.pin(),
            left: BATCH,
        }
    }

    fn stats(&self) -> Option<String> {
        Some(format!("{:?}", self.map.stats()))
    }
}

impl<V: Value, S: Hasher> Handle<V> for BatchHandle<'_, V, S> {
    #[inline]
    fn get(&mut self, key: u64) -> bool {
        let found = self.pin.get(&key).map(|v| black_box(v.observe())).is_some();
        self.tick();
        found
    }

    #[inline]
    fn insert(&mut self, key: u64, value: V) {
        self.pin.insert(key, value);
        self.tick();
    }

    #[inline]
    fn remove(&mut self, key: u64) -> bool {
        let found = self.pin.remove(&key).is_some();
        self.tick();
        found
    }

    #[inline]
    fn get_or_insert_with<F: FnOnce() -> V>(&mut self, key: u64, make: F) -> bool {
        let (v, inserted) = self.pin.get_or_insert_with(key, make);
        black_box(v.observe());
        self.tick();
        inserted
    }

    fn iterate(&mut self) -> usize {
        let n = super::visit(self.pin.iter().map(|(_, v)| v));
        self.tick();
        n
    }
}
