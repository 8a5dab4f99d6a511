//! `readmostly::SyncMap` with one pin kept across [`BATCH`] operations: what a caller that
//! holds a `MapRef` over a burst of lookups gets (the "one pin serves many reads" target).
//! With `EACH = true` (the `syncmap-each` map), runs of consecutive lookups also go
//! through one `MapRef::get_each` call (prefetching) instead of one `get` each.

use std::hint::black_box;

use readmostly::{LocalGuard, MapRef, SyncMap};

use super::{BenchMap, Handle, Hasher, MapOptions, Value};

/// Operations served by one pin before it is dropped and taken again.
pub const BATCH: u32 = 64;

/// `SyncMap<u64, V, S>`; its handle re-pins every [`BATCH`] operations.
pub struct SyncMapBatch<V, S, const EACH: bool = false> {
    map: SyncMap<u64, V, S>,
}

impl<V, S, const EACH: bool> std::fmt::Debug for SyncMapBatch<V, S, EACH> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SyncMapBatch")
    }
}

/// A thread's handle: the current pin and the operations left before re-pinning.
pub struct BatchHandle<'a, V, S, const EACH: bool> {
    map: &'a SyncMap<u64, V, S>,
    pin: MapRef<'a, u64, V, S, LocalGuard<'a>>,
    left: u32,
}

impl<V, S, const EACH: bool> std::fmt::Debug for BatchHandle<'_, V, S, EACH> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchHandle")
            .field("left", &self.left)
            .finish_non_exhaustive()
    }
}

impl<V: Value, S: Hasher, const EACH: bool> BatchHandle<'_, V, S, EACH> {
    /// Counts `n` operations; re-pins when the batch is used up (so retired memory can be
    /// reclaimed).
    #[inline]
    fn tick(&mut self, n: u32) {
        self.left = self.left.saturating_sub(n);
        if self.left == 0 {
            self.pin = self.map.pin();
            self.left = BATCH;
        }
    }
}

impl<V: Value, S: Hasher, const EACH: bool> BenchMap for SyncMapBatch<V, S, EACH> {
    type Value = V;
    type Hasher = S;
    type Handle<'a> = BatchHandle<'a, V, S, EACH>;

    fn build(hasher: S) -> Self {
        Self::build_with(hasher, MapOptions::default())
    }

    fn build_with(hasher: S, options: MapOptions) -> Self {
        let mut builder = SyncMap::builder().hasher(hasher);
        if let Some(batch) = options.retire_batch {
            builder = builder.retire_batch(batch);
        }
        SyncMapBatch {
            map: builder.build(),
        }
    }

    /// As for `syncmap`: a bulk load through `Extend`.
    fn prefill(&mut self, items: impl Iterator<Item = (u64, V)>) {
        self.map.extend(items);
    }

    fn handle(&self) -> BatchHandle<'_, V, S, EACH> {
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

impl<V: Value, S: Hasher, const EACH: bool> Handle<V> for BatchHandle<'_, V, S, EACH> {
    const BATCHED_GETS: bool = EACH;

    #[inline]
    fn get(&mut self, key: u64) -> bool {
        let found = self.pin.get(&key).map(|v| black_box(v.observe())).is_some();
        self.tick(1);
        found
    }

    /// One `get_each` for the run (with `EACH`; the runner calls it only then).
    #[inline]
    fn get_many(&mut self, keys: &[u64]) -> u64 {
        let mut found = 0;
        self.pin.get_each(keys, |_, v| {
            if let Some(v) = v {
                black_box(v.observe());
                found += 1;
            }
        });
        self.tick(keys.len() as u32);
        found
    }

    #[inline]
    fn insert(&mut self, key: u64, value: V) {
        self.pin.insert(key, value);
        self.tick(1);
    }

    #[inline]
    fn remove(&mut self, key: u64) -> bool {
        let found = self.pin.remove(&key).is_some();
        self.tick(1);
        found
    }

    #[inline]
    fn get_or_insert_with<F: FnOnce() -> V>(&mut self, key: u64, make: F) -> bool {
        let (v, inserted) = self.pin.get_or_insert_with(key, make);
        black_box(v.observe());
        self.tick(1);
        inserted
    }

    fn iterate(&mut self) -> usize {
        let n = super::visit(self.pin.iter().map(|(_, v)| v));
        self.tick(1);
        n
    }
}
