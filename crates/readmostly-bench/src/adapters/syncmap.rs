//! `readmostly::SyncMap`, one pin per call: what a caller that does one lookup at a time
//! writes (`map.pin().get(&k)`), and the configuration of the headline numbers.

use std::hint::black_box;

use readmostly::{RecentKeys, SyncMap};

use super::{BenchMap, Handle, Hasher, MapOptions, Value};

/// `SyncMap<u64, V, S>` with the default promotion rule; `STATS = false` turns hit
/// counting off (the `syncmap-nostats` map, which measures what statistics cost reads);
/// `RECENT = false` turns the recent table off and rebuilds the dirty table in one go
/// (the `syncmap-go` map: Go's design).
pub struct SyncMapAdapter<V, S, const STATS: bool = true, const RECENT: bool = true> {
    pub(crate) map: SyncMap<u64, V, S>,
}

impl<V, S, const STATS: bool, const RECENT: bool> std::fmt::Debug
    for SyncMapAdapter<V, S, STATS, RECENT>
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SyncMapAdapter")
    }
}

impl<V: Value, S: Hasher, const STATS: bool, const RECENT: bool> BenchMap
    for SyncMapAdapter<V, S, STATS, RECENT>
{
    type Value = V;
    type Hasher = S;
    type Handle<'a> = &'a Self;

    fn build(hasher: S) -> Self {
        Self::build_with(hasher, MapOptions::default())
    }

    fn build_with(hasher: S, options: MapOptions) -> Self {
        let mut builder = SyncMap::builder().hasher(hasher).hit_statistics(STATS);
        if let Some(batch) = options.retire_batch {
            builder = builder.retire_batch(batch);
        }
        if !RECENT {
            builder = builder
                .recent_keys(RecentKeys::Off)
                .rebuild_step(usize::MAX);
        }
        SyncMapAdapter {
            map: builder.build(),
        }
    }

    fn handle(&self) -> &Self {
        self
    }

    /// The documented bulk load: `Extend` on the owned map builds the read table in one
    /// pass, every key in the main table and no dirty table until the next new key (as
    /// after Go's first read pass), and no rebuild on the way. The statistics recorded
    /// after the run count the whole cell — the prefill's new keys, the read pass, the
    /// warm-up and the timed run — but the bulk load takes no pause, so the longest
    /// pauses (`longest_rebuild_step` and the others) come from the operations.
    fn prefill(&mut self, items: impl Iterator<Item = (u64, V)>) {
        self.map.extend(items);
    }

    fn stats(&self) -> Option<String> {
        Some(format!("{:?}", self.map.stats()))
    }
}

impl<V: Value, S: Hasher, const STATS: bool, const RECENT: bool> Handle<V>
    for &SyncMapAdapter<V, S, STATS, RECENT>
{
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
