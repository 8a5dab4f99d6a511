//! One adapter per map under test, behind two small traits.
//!
//! [`BenchMap`] builds and prefills a map; [`Handle`] is what one worker thread uses in the
//! timed loop. Maps without guards use `&Map` as their handle. Guard-based maps (papaya,
//! `SyncMap`) pin once per call in their default adapter — what an ordinary caller does and
//! what the headline numbers use — and `syncmap-batch` keeps one pin across a batch of
//! operations to show what a caller that holds a `MapRef` gets.
//!
//! Every adapter reads the value it finds ([`Value::observe`]) and passes the result through
//! [`black_box`](std::hint::black_box), so no lookup can be optimised away.
//!
//! To add a map: write `adapters/<name>.rs` modelled on `syncmap.rs`, add a [`MapKind`]
//! variant with its name and description, and one arm in `by_map` below.

use std::hash::BuildHasher;
use std::sync::Arc;

pub mod arcswap_cow;
pub mod dashmap;
pub mod frozen_std;
pub mod mutex_std;
pub mod noop;
pub mod papaya;
pub mod rwlock_std;
pub mod scc_hashindex;
pub mod scc_hashmap;
pub mod sharded;
pub mod syncmap;
pub mod syncmap_batch;

/// Settings of readmostly's maps for a run (`compare --retire-batch`); `None`: the
/// library's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MapOptions {
    /// Objects a thread retires before handing them to the collector
    /// (`Builder::retire_batch`).
    pub retire_batch: Option<usize>,
}

/// The fixed seed of the default hasher (foldhash), the same for every map.
pub const HASH_SEED: u64 = 0x5eed_f01d_4a54_0b0e;

/// A value type the maps store.
pub trait Value: Clone + Send + Sync + 'static {
    /// Builds a value of about `size` payload bytes (ignored by `u64`).
    fn make(seed: u64, size: usize) -> Self;
    /// Reads the value (touching its payload), for [`black_box`](std::hint::black_box).
    fn observe(&self) -> u64;
}

impl Value for u64 {
    #[inline]
    fn make(seed: u64, _size: usize) -> Self {
        seed
    }
    #[inline]
    fn observe(&self) -> u64 {
        *self
    }
}

impl Value for String {
    #[inline]
    fn make(seed: u64, size: usize) -> Self {
        let c = (b'a' + (seed % 26) as u8) as char;
        std::iter::repeat_n(c, size).collect()
    }
    #[inline]
    fn observe(&self) -> u64 {
        self.len() as u64 + self.as_bytes().first().copied().unwrap_or(0) as u64
    }
}

impl Value for Arc<[u8]> {
    #[inline]
    fn make(seed: u64, size: usize) -> Self {
        std::iter::repeat_n(seed as u8, size).collect()
    }
    #[inline]
    fn observe(&self) -> u64 {
        self.len() as u64 + self.first().copied().unwrap_or(0) as u64
    }
}

/// Reads every value of an iteration; returns how many there were.
#[inline]
pub fn visit<'a, V: Value>(values: impl Iterator<Item = &'a V>) -> usize {
    values.fold(0, |n, v| {
        std::hint::black_box(v.observe());
        n + 1
    })
}

/// Bounds every hasher satisfies.
pub trait Hasher: BuildHasher + Clone + Send + Sync + 'static {}
impl<T: BuildHasher + Clone + Send + Sync + 'static> Hasher for T {}

/// A map under test, with `u64` keys.
pub trait BenchMap: Sync + Sized {
    /// Stored value type.
    type Value: Value;
    /// Hash builder.
    type Hasher: Hasher;
    /// What one worker thread uses in the timed loop.
    type Handle<'a>: Handle<Self::Value>
    where
        Self: 'a;
    /// A map that cannot be written once shared (the frozen limit): write workloads are skipped.
    const READ_ONLY: bool = false;

    /// An empty map using `hasher`.
    fn build(hasher: Self::Hasher) -> Self;

    /// An empty map using `hasher` and the run's [`MapOptions`]. Only readmostly's maps
    /// have such settings; the other adapters ignore them.
    fn build_with(hasher: Self::Hasher, options: MapOptions) -> Self {
        let _ = options;
        Self::build(hasher)
    }

    /// Inserts the prefill entries (single-threaded, before any handle exists).
    fn prefill(&mut self, items: impl Iterator<Item = (u64, Self::Value)>) {
        let mut h = self.handle();
        for (k, v) in items {
            h.insert(k, v);
        }
    }

    /// A handle for one thread.
    fn handle(&self) -> Self::Handle<'_>;

    /// Map-specific statistics after a run (for `SyncMap`: its `stats()`).
    fn stats(&self) -> Option<String> {
        None
    }
}

/// The operations of the timed loop. Keys are already mixed.
pub trait Handle<V> {
    /// Whether the timed loop hands runs of consecutive lookups to
    /// [`get_many`](Self::get_many) (only maps that offer a batch lookup API say so).
    const BATCHED_GETS: bool = false;
    /// Looks `key` up and reads its value; `true` if found.
    fn get(&mut self, key: u64) -> bool;
    /// Looks every key up, reading each value found; returns how many were found.
    #[inline]
    fn get_many(&mut self, keys: &[u64]) -> u64 {
        keys.iter().map(|&k| u64::from(self.get(k))).sum()
    }
    /// Stores `value` for `key`, replacing any previous value.
    fn insert(&mut self, key: u64, value: V);
    /// Removes `key`; `true` if it was present.
    fn remove(&mut self, key: u64) -> bool;
    /// Atomic get-or-insert; `make` runs only when the map needs the value. `true` if inserted.
    fn get_or_insert_with<F: FnOnce() -> V>(&mut self, key: u64, make: F) -> bool;
    /// Visits every entry once, reading each value; returns the number visited.
    fn iterate(&mut self) -> usize;
    /// Cache-aside read: a lookup, and on a miss a plain store of a "loaded" value (the
    /// pattern that makes miss storms). `true` on a hit.
    #[inline]
    fn read_or_fill<F: FnOnce() -> V>(&mut self, key: u64, make: F) -> bool {
        if self.get(key) {
            true
        } else {
            self.insert(key, make());
            false
        }
    }
}

/// The maps the CLI knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MapKind {
    /// `readmostly::SyncMap`, one pin per call.
    SyncMap,
    /// `readmostly::SyncMap`, one pin held across a batch of operations.
    SyncMapBatch,
    /// As `SyncMapBatch`, with runs of lookups done by one `get_each` (prefetching).
    SyncMapEach,
    /// `readmostly::SyncMap` with hit counting off, one pin per call.
    SyncMapNoStats,
    /// `readmostly::SyncMap` without the recent table (Go's design), one pin per call.
    SyncMapGo,
    /// `readmostly::ShardedMap`, one pin per call.
    Sharded,
    /// `std::sync::RwLock<HashMap>`.
    RwLockStd,
    /// `std::sync::Mutex<HashMap>`.
    MutexStd,
    /// `dashmap::DashMap`.
    DashMap,
    /// `papaya::HashMap`, one pin per call.
    Papaya,
    /// `scc::HashMap`.
    SccHashMap,
    /// `scc::HashIndex`.
    SccHashIndex,
    /// `ArcSwap<HashMap>` with copy-on-write updates.
    ArcSwapCow,
    /// A `HashMap` shared without synchronisation: read-only limit.
    FrozenStd,
    /// Does nothing: measures the harness itself.
    Noop,
}

impl MapKind {
    /// Every map, in report order.
    pub const ALL: [MapKind; 15] = [
        MapKind::SyncMap,
        MapKind::SyncMapBatch,
        MapKind::SyncMapEach,
        MapKind::SyncMapNoStats,
        MapKind::SyncMapGo,
        MapKind::Sharded,
        MapKind::RwLockStd,
        MapKind::MutexStd,
        MapKind::DashMap,
        MapKind::Papaya,
        MapKind::SccHashMap,
        MapKind::SccHashIndex,
        MapKind::ArcSwapCow,
        MapKind::FrozenStd,
        MapKind::Noop,
    ];

    /// Name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            MapKind::SyncMap => "syncmap",
            MapKind::SyncMapBatch => "syncmap-batch",
            MapKind::SyncMapEach => "syncmap-each",
            MapKind::SyncMapNoStats => "syncmap-nostats",
            MapKind::SyncMapGo => "syncmap-go",
            MapKind::Sharded => "sharded",
            MapKind::RwLockStd => "rwlock-std",
            MapKind::MutexStd => "mutex-std",
            MapKind::DashMap => "dashmap",
            MapKind::Papaya => "papaya",
            MapKind::SccHashMap => "scc-hashmap",
            MapKind::SccHashIndex => "scc-hashindex",
            MapKind::ArcSwapCow => "arcswap-cow",
            MapKind::FrozenStd => "frozen-std",
            MapKind::Noop => "noop",
        }
    }

    /// One-line description.
    pub fn about(self) -> &'static str {
        match self {
            MapKind::SyncMap => "readmostly::SyncMap, one pin (guard) per call: the headline configuration",
            MapKind::SyncMapBatch => {
                "readmostly::SyncMap, one pin kept across 64 operations (a caller holding a MapRef)"
            }
            MapKind::SyncMapEach => {
                "as syncmap-batch, each run of lookups done by one MapRef::get_each (prefetched 16 at a time)"
            }
            MapKind::SyncMapNoStats => {
                "readmostly::SyncMap with hit statistics off, one pin per call (measures their cost)"
            }
            MapKind::SyncMapGo => {
                "readmostly::SyncMap without the recent table (RecentKeys::Off: Go's design), one pin per call"
            }
            MapKind::Sharded => {
                "readmostly::ShardedMap (read/dirty shards, default count, routed by key hash), one pin per call"
            }
            MapKind::RwLockStd => "std RwLock<HashMap>",
            MapKind::MutexStd => "std Mutex<HashMap>",
            MapKind::DashMap => "dashmap 6 DashMap (sharded RwLocks)",
            MapKind::Papaya => "papaya 0.2 HashMap, one pin per call",
            MapKind::SccHashMap => "scc 3 HashMap (bucket locks)",
            MapKind::SccHashIndex => "scc 3 HashIndex (lock-free reads, copy-on-write entries)",
            MapKind::ArcSwapCow => {
                "ArcSwap<HashMap>: lock-free reads, every write copies the whole map"
            }
            MapKind::FrozenStd => {
                "std HashMap shared without synchronisation: the read-only limit (skips write workloads)"
            }
            MapKind::Noop => "does nothing: measures the harness's own cost per operation",
        }
    }

    /// Parses a name (see [`MapKind::name`]).
    pub fn parse(s: &str) -> Option<MapKind> {
        Self::ALL.into_iter().find(|m| m.name() == s)
    }

    /// Whether the map is a reference point rather than a candidate (frozen limit, no-op).
    pub fn is_reference(self) -> bool {
        matches!(self, MapKind::FrozenStd | MapKind::Noop)
    }

    /// Whether the map is readmostly's own.
    pub fn is_ours(self) -> bool {
        matches!(
            self,
            MapKind::SyncMap
                | MapKind::SyncMapBatch
                | MapKind::SyncMapEach
                | MapKind::SyncMapNoStats
                | MapKind::SyncMapGo
                | MapKind::Sharded
        )
    }
}

/// Value types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// `u64` stored inline.
    U64,
    /// `String` payload on the heap.
    String,
    /// `Arc<[u8]>` payload on the heap.
    Bytes,
}

impl ValueKind {
    /// All value kinds.
    pub const ALL: [ValueKind; 3] = [ValueKind::U64, ValueKind::String, ValueKind::Bytes];

    /// Name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ValueKind::U64 => "u64",
            ValueKind::String => "string",
            ValueKind::Bytes => "bytes",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<ValueKind> {
        Self::ALL.into_iter().find(|v| v.name() == s)
    }
}

/// Hash builders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HasherKind {
    /// `foldhash::fast::FixedState` with [`HASH_SEED`] (the anchors' hasher).
    Foldhash,
    /// `std::hash::RandomState` (SipHash-1-3).
    Std,
}

impl HasherKind {
    /// All hashers.
    pub const ALL: [HasherKind; 2] = [HasherKind::Foldhash, HasherKind::Std];

    /// Name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            HasherKind::Foldhash => "foldhash",
            HasherKind::Std => "std",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<HasherKind> {
        Self::ALL.into_iter().find(|v| v.name() == s)
    }
}

/// Something to run with a concrete map type (the runner).
pub trait WithMap {
    /// What the run returns.
    type Output;
    /// Runs with map type `M`, built from `hasher`.
    fn run<M: BenchMap>(self, map: MapKind, hasher: M::Hasher) -> Self::Output;
}

/// Calls `f.run::<M>` with the concrete map type for `(map, value, hasher)`.
pub fn dispatch<F: WithMap>(map: MapKind, value: ValueKind, hasher: HasherKind, f: F) -> F::Output {
    match hasher {
        HasherKind::Foldhash => by_value(
            map,
            value,
            foldhash::fast::FixedState::with_seed(HASH_SEED),
            f,
        ),
        HasherKind::Std => by_value(map, value, std::hash::RandomState::new(), f),
    }
}

fn by_value<S: Hasher, F: WithMap>(map: MapKind, value: ValueKind, s: S, f: F) -> F::Output {
    match value {
        ValueKind::U64 => by_map::<u64, S, F>(map, s, f),
        ValueKind::String => by_map::<String, S, F>(map, s, f),
        ValueKind::Bytes => by_map::<Arc<[u8]>, S, F>(map, s, f),
    }
}

fn by_map<V: Value, S: Hasher, F: WithMap>(map: MapKind, s: S, f: F) -> F::Output {
    match map {
        MapKind::SyncMap => f.run::<syncmap::SyncMapAdapter<V, S>>(map, s),
        MapKind::SyncMapBatch => f.run::<syncmap_batch::SyncMapBatch<V, S>>(map, s),
        MapKind::SyncMapEach => f.run::<syncmap_batch::SyncMapBatch<V, S, true>>(map, s),
        MapKind::SyncMapNoStats => f.run::<syncmap::SyncMapAdapter<V, S, false>>(map, s),
        MapKind::SyncMapGo => f.run::<syncmap::SyncMapAdapter<V, S, true, false>>(map, s),
        MapKind::Sharded => f.run::<sharded::ShardedAdapter<V, S>>(map, s),
        MapKind::RwLockStd => f.run::<rwlock_std::RwLockStd<V, S>>(map, s),
        MapKind::MutexStd => f.run::<mutex_std::MutexStd<V, S>>(map, s),
        MapKind::DashMap => f.run::<dashmap::DashMapAdapter<V, S>>(map, s),
        MapKind::Papaya => f.run::<papaya::PapayaAdapter<V, S>>(map, s),
        MapKind::SccHashMap => f.run::<scc_hashmap::SccHashMap<V, S>>(map, s),
        MapKind::SccHashIndex => f.run::<scc_hashindex::SccHashIndex<V, S>>(map, s),
        MapKind::ArcSwapCow => f.run::<arcswap_cow::ArcSwapCow<V, S>>(map, s),
        MapKind::FrozenStd => f.run::<frozen_std::FrozenStd<V, S>>(map, s),
        MapKind::Noop => f.run::<noop::Noop<V, S>>(map, s),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Exercises every operation of a map through its handle, single-threaded.
    pub(crate) fn smoke<M: BenchMap<Value = u64>>(hasher: M::Hasher) {
        let mut m = M::build(hasher);
        m.prefill((0..100u64).map(|k| (k, k)));
        let mut h = m.handle();
        assert!(h.get(5));
        assert!(!h.get(500));
        assert_eq!(h.get_many(&[5, 500, 6, 7]), 3);
        if M::READ_ONLY {
            assert_eq!(h.iterate(), 100);
            return;
        }
        h.insert(500, 1);
        assert!(h.get(500));
        assert!(h.remove(500));
        assert!(!h.remove(500));
        assert!(!h.get(500));
        assert!(h.get_or_insert_with(600, || 6));
        assert!(!h.get_or_insert_with(600, || 7));
        assert!(!h.read_or_fill(700, || 7));
        assert!(h.read_or_fill(700, || 7));
        assert_eq!(h.iterate(), 102);
    }

    #[test]
    fn names_round_trip() {
        for m in MapKind::ALL {
            assert_eq!(MapKind::parse(m.name()), Some(m));
        }
        for v in ValueKind::ALL {
            assert_eq!(ValueKind::parse(v.name()), Some(v));
        }
    }

    #[test]
    fn every_real_map_passes_smoke() {
        type S = foldhash::fast::FixedState;
        let s = || S::with_seed(HASH_SEED);
        smoke::<syncmap::SyncMapAdapter<u64, S>>(s());
        smoke::<syncmap::SyncMapAdapter<u64, S, true, false>>(s());
        smoke::<syncmap_batch::SyncMapBatch<u64, S>>(s());
        smoke::<syncmap_batch::SyncMapBatch<u64, S, true>>(s());
        smoke::<sharded::ShardedAdapter<u64, S>>(s());
        smoke::<rwlock_std::RwLockStd<u64, S>>(s());
        smoke::<mutex_std::MutexStd<u64, S>>(s());
        smoke::<dashmap::DashMapAdapter<u64, S>>(s());
        smoke::<papaya::PapayaAdapter<u64, S>>(s());
        smoke::<scc_hashmap::SccHashMap<u64, S>>(s());
        smoke::<scc_hashindex::SccHashIndex<u64, S>>(s());
        smoke::<arcswap_cow::ArcSwapCow<u64, S>>(s());
        smoke::<frozen_std::FrozenStd<u64, S>>(s());
    }
}
