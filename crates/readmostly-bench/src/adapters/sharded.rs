//! `readmostly::ShardedMap`, one pin per call, routed by key hash with the default shard
//! count (four per hardware thread): the configuration for churn and multi-tenant key
//! spaces. Keys in the timed loop are already mixed, so hash routing spreads the
//! `multi-tenant` workload's tenants over the shards like any other keys.

use std::hint::black_box;

use readmostly::ShardedMap;

use super::{BenchMap, Handle, Hasher, MapOptions, Value};

/// `ShardedMap<u64, V, S>` with the default shard count and promotion rule.
pub struct ShardedAdapter<V, S> {
    pub(crate) map: ShardedMap<u64, V, S>,
}

impl<V, S> std::fmt::Debug for ShardedAdapter<V, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShardedAdapter")
    }
}

impl<V: Value, S: Hasher> BenchMap for ShardedAdapter<V, S> {
    type Value = V;
    type Hasher = S;
    type Handle<'a> = &'a Self;

    fn build(hasher: S) -> Self {
        Self::build_with(hasher, MapOptions::default())
    }

    fn build_with(hasher: S, options: MapOptions) -> Self {
        let mut builder = ShardedMap::builder().hasher(hasher);
        if let Some(batch) = options.retire_batch {
            builder = builder.retire_batch(batch);
        }
        ShardedAdapter {
            map: builder.build(),
        }
    }

    fn handle(&self) -> &Self {
        self
    }

    /// As for `syncmap`: a bulk load through `Extend`.
    fn prefill(&mut self, items: impl Iterator<Item = (u64, V)>) {
        self.map.extend(items);
    }

    fn stats(&self) -> Option<String> {
        Some(format!(
            "{} shards: {:?}",
            self.map.shard_count(),
            self.map.stats()
        ))
    }
}

impl<V: Value, S: Hasher> Handle<V> for &ShardedAdapter<V, S> {
    #[inline]
    fn get(&mut self, key: u64) -> bool {
        let m = self.map.pin();
        m.get(&key).map(|v| black_box(v.observe())).is_some()
    }

    #[inline]
    fn insert(&mut self, key: u64, value: V) {
        self.map.pin().insert(key, value);
    }

    #[inline]
    fn remove(&mut self, key: u64) -> bool {
        self.map.pin().remove(&key).is_some()
    }

    #[inline]
    fn get_or_insert_with<F: FnOnce() -> V>(&mut self, key: u64, make: F) -> bool {
        let m = self.map.pin();
        let (v, inserted) = m.get_or_insert_with(key, make);
        black_box(v.observe());
        inserted
    }

    fn iterate(&mut self) -> usize {
        let m = self.map.pin();
        super::visit(m.iter().map(|(_, v)| v))
    }
}
