//! [`ShardedMap`]: a power-of-two number of read/dirty maps behind one hasher and one
//! reclamation domain, for key spaces where new keys churn or tenants multiply.
#![forbid(unsafe_code)]

use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;
use std::sync::Arc;

use crate::map::{
    CapacityError, CompareExchangeError, DefaultHashBuilder, IntoIter, Keys, Promotion, RecentKeys,
    Values,
};
use crate::raw::reclaim::{self, Collector, Guard, LocalGuard, OwnedGuard, DEFAULT_RETIRE_BATCH};
use crate::raw::DEFAULT_REBUILD_STEP;
use crate::raw::{RawIter, RawMap, RawRef};
use crate::stats::{Stats, Stripes, TotalLen};

/// The most shards a map may have: routing uses bits 32..48 of a 64-bit value.
pub const MAX_SHARDS: usize = 1 << 16;

/// The default shard count: four per hardware thread, rounded up to a power of two,
/// between 4 and 256 (64 on a 16-thread machine, the seed's figure).
fn default_shards() -> usize {
    let threads = std::thread::available_parallelism().map_or(4, usize::from);
    (threads * 4).next_power_of_two().clamp(4, 256)
}

/// The default number of statistics stripes per shard: one per hardware thread, rounded
/// up to a power of two, between 4 and 64.
///
/// A lookup that hits writes its thread's stripe of the shard it reads. With fewer
/// stripes than threads, threads that share a stripe would write the same cache line on
/// every read of that shard; one stripe per thread keeps reads free of shared writes at
/// the cost of `shards × stripes × 128` bytes (128 KiB for 64 shards × 16 stripes).
fn default_stripes_per_shard() -> usize {
    let threads = std::thread::available_parallelism().map_or(4, usize::from);
    threads.next_power_of_two().clamp(4, 64)
}

mod private {
    pub trait Sealed {}
}

/// How a [`ShardedMap`] picks the shard of a key: [`ByHash`] (the default) or
/// [`ByTenant`]. Sealed: the two routers cover key-hash and tenant routing, and a custom
/// grouping is a tenant function.
pub trait Router<Q: ?Sized>: private::Sealed {
    /// A 64-bit value whose bits 32 and up select the shard.
    #[doc(hidden)]
    fn route(&self, key: &Q, hash: u64) -> u64;
}

/// Routes each key by its hash (the default): keys spread evenly over the shards.
///
/// The shard is taken from bits 32 and up of the key's hash (the hasher's output after
/// the map mixes it, so every bit depends on the whole key). The tables inside each
/// shard use the low bits for the bucket index and the top 7 bits as the slot tag, so
/// bits 32..48 are independent of both for any table smaller than 2³² buckets: all keys
/// of one shard still spread over its whole table and keep distinct tags. (Routing by
/// the low bits would leave each shard's table using only a `1 / shards` slice of its
/// buckets' index bits.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByHash;

impl private::Sealed for ByHash {}

impl<Q: ?Sized> Router<Q> for ByHash {
    #[inline]
    fn route(&self, _key: &Q, hash: u64) -> u64 {
        hash
    }
}

/// Routes each key by a tenant id computed from it, so that all keys of one tenant live
/// in one shard (the seed's multi-tenant case: one tenant's writes and dirty-table
/// rebuilds never touch another shard's lock or copy another shard's keys).
///
/// The function sees the key as `&T`, any type the key borrows as (`str` for a `String`
/// key, the key type itself, ...), so lookups by a borrowed form route the same way as
/// inserts. The tenant id is mixed by a multiplicative hash before it picks the shard,
/// so every bit of the id counts and ids spread over the shards like hashes: a tenant's
/// keys always share a shard, and different tenants may too (consecutive ids are not
/// guaranteed distinct shards). Build one with [`ShardedBuilder::route_by_tenant`].
pub struct ByTenant<F, T: ?Sized> {
    tenant: F,
    _marker: PhantomData<fn(&T)>,
}

impl<F, T: ?Sized> private::Sealed for ByTenant<F, T> {}

impl<F, T, Q> Router<Q> for ByTenant<F, T>
where
    F: Fn(&T) -> u64,
    T: ?Sized,
    Q: ?Sized + Borrow<T>,
{
    #[inline]
    fn route(&self, key: &Q, _hash: u64) -> u64 {
        let t = (self.tenant)(key.borrow());
        // Fold the high half into the low half, then multiply by 2⁶⁴/φ: the product's
        // bits 32.., which pick the shard, depend on every bit of the id below them (and,
        // through the fold, on the high half). Not a bijection onto the shard bits:
        // ids that differ in a few bits can share a shard.
        (t ^ (t >> 32)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
}

impl<F: Clone, T: ?Sized> Clone for ByTenant<F, T> {
    fn clone(&self) -> Self {
        ByTenant {
            tenant: self.tenant.clone(),
            _marker: PhantomData,
        }
    }
}

impl<F, T: ?Sized> fmt::Debug for ByTenant<F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ByTenant")
    }
}

/// One shard, padded to its own cache lines so that writers of one shard do not slow
/// readers of its neighbours.
#[repr(align(128))]
struct Shard<K, V> {
    raw: RawMap<K, V>,
}

/// A concurrent map split into a power-of-two number of read/dirty shards, each a
/// [`SyncMap`](crate::SyncMap) in all but name, routed by key hash or by tenant.
///
/// It has the same API as `SyncMap`, and the same guarantees per key (every key lives
/// in exactly one shard). One pin covers every shard: the shards share one reclamation
/// domain, so a [`ShardedRef`] is one guard, whatever the number of shards.
///
/// What sharding buys: the dirty-table rebuild after a promotion copies only that
/// shard's keys, and runs beside the other shards' rebuilds, and the locked moments of a
/// new key (a shard's first new key after its promotion, a full recent table) take only
/// that shard's lock, so key churn, growing maps and many tenants scale with the shard
/// count instead of waiting for one thread's O(n) copy. What it costs: `len`, `stats`, `iter`, `clear` and `retain` visit every shard
/// (and `clear` is not atomic across shards), and memory grows by the per-shard
/// structures: an empty shard takes about 1.5 KiB plus 128 bytes per statistics stripe
/// (2 KiB with 4 stripes, 3.5 KiB with 16; measured with a counting allocator).
///
/// Where the API differs from `SyncMap`'s: [`promote`](ShardedMap::promote) returns
/// the number of shards it promoted (not a `bool`); the builder also sets the shard
/// count, the router and the statistics stripes per shard; and the owned map's `Extend`
/// buffers the items per shard and loads each shard in bulk or one by one from the
/// actual counts, where `SyncMap`'s decides from the iterator's size hint.
///
/// ```
/// use readmostly::ShardedMap;
///
/// let map = ShardedMap::new();
/// map.insert("timeout_ms", 250);
/// assert_eq!(map.get_cloned("timeout_ms"), Some(250));
///
/// let m = map.pin(); // one guard for all shards
/// let (v, inserted) = m.get_or_insert("retries", 3);
/// assert_eq!((*v, inserted), (3, true));
/// assert_eq!(m.iter().count(), 2);
/// ```
///
/// Routing by tenant keeps each tenant's keys in one shard:
///
/// ```
/// use readmostly::ShardedMap;
///
/// // Keys are (tenant, setting).
/// let map = ShardedMap::builder()
///     .shards(64)
///     .route_by_tenant(|k: &(u32, String)| u64::from(k.0))
///     .build();
/// map.insert((7, "plan".to_string()), "pro");
/// map.insert((7, "region".to_string()), "eu");
/// assert_eq!(
///     map.shard_of(&(7, "plan".to_string())),
///     map.shard_of(&(7, "region".to_string()))
/// );
/// ```
pub struct ShardedMap<K, V, S = DefaultHashBuilder, R = ByHash> {
    shards: Box<[Shard<K, V>]>,
    /// `shards.len() - 1`.
    mask: usize,
    hasher: S,
    router: R,
    max_len: Option<usize>,
    /// The key count of all shards together, kept with a capacity limit only (see
    /// [`TotalLen`]).
    total: Option<Arc<TotalLen>>,
    /// The builder's statistics stripes per shard and retire batch (for `Clone`).
    stripes: usize,
    retire_batch: usize,
}

/// A builder for a [`ShardedMap`]: shard count, statistics stripes, hasher, promotion
/// rule, router and capacity limit.
///
/// ```
/// use readmostly::{Promotion, ShardedMap};
///
/// let map: ShardedMap<u64, u64> = ShardedMap::builder()
///     .shards(16)
///     .promotion(Promotion::EveryMiss)
///     .max_len(1_000_000)
///     .build();
/// assert_eq!(map.shard_count(), 16);
/// ```
pub struct ShardedBuilder<K, V, S = DefaultHashBuilder, R = ByHash> {
    hasher: S,
    router: R,
    shards: usize,
    stripes: usize,
    promotion: Promotion,
    recent_keys: RecentKeys,
    retire_batch: usize,
    rebuild_step: usize,
    max_len: Option<usize>,
    hit_statistics: bool,
    _marker: PhantomData<fn() -> (K, V)>,
}

impl<K, V> ShardedMap<K, V> {
    /// An empty map with the default shard count (four per hardware thread, between 4
    /// and 256), hasher and promotion rule, routed by key hash.
    ///
    /// ```
    /// let map: readmostly::ShardedMap<u32, u32> = readmostly::ShardedMap::new();
    /// assert!(map.is_empty());
    /// assert!(map.shard_count().is_power_of_two());
    /// ```
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A [`ShardedBuilder`] starting from the defaults.
    ///
    /// ```
    /// let map: readmostly::ShardedMap<u32, u32> =
    ///     readmostly::ShardedMap::builder().shards(8).build();
    /// assert_eq!(map.shard_count(), 8);
    /// ```
    pub fn builder() -> ShardedBuilder<K, V> {
        ShardedBuilder {
            hasher: DefaultHashBuilder::default(),
            router: ByHash,
            shards: default_shards(),
            stripes: default_stripes_per_shard(),
            promotion: Promotion::default(),
            recent_keys: RecentKeys::default(),
            retire_batch: DEFAULT_RETIRE_BATCH,
            rebuild_step: DEFAULT_REBUILD_STEP,
            max_len: None,
            hit_statistics: true,
            _marker: PhantomData,
        }
    }
}

impl<K, V, S> ShardedMap<K, V, S> {
    /// An empty map hashing keys with `hasher`, otherwise with the defaults.
    ///
    /// ```
    /// let map = readmostly::ShardedMap::with_hasher(std::hash::RandomState::new());
    /// map.insert("k", 1);
    /// assert_eq!(map.len(), 1);
    /// ```
    pub fn with_hasher(hasher: S) -> Self {
        ShardedMap::builder().hasher(hasher).build()
    }
}

impl<K, V, S, R> ShardedBuilder<K, V, S, R> {
    /// Sets the number of shards, rounded up to a power of two, between 1 and
    /// [`MAX_SHARDS`]. Each costs about 1.5 KiB plus 128 bytes per statistics stripe
    /// even when empty, so the largest counts cost hundreds of MiB (65,536 shards with
    /// 16 stripes: about 230 MiB), and `stats`, and `len` of a map without a capacity
    /// limit, visit every shard's stripes.
    ///
    /// ```
    /// let map: readmostly::ShardedMap<u8, u8> =
    ///     readmostly::ShardedMap::builder().shards(50).build();
    /// assert_eq!(map.shard_count(), 64);
    /// ```
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = shards.clamp(1, MAX_SHARDS).next_power_of_two();
        self
    }

    /// Sets the number of statistics stripes per shard (rounded up to a power of two,
    /// between 1 and 1024). The default, one per hardware thread (4 to 64), keeps lookups from writing cache
    /// lines that other threads write; fewer stripes save `128` bytes each per shard at
    /// the cost of shared writes on the read path when threads outnumber stripes.
    ///
    /// ```
    /// let map: readmostly::ShardedMap<u8, u8> =
    ///     readmostly::ShardedMap::builder().stripes_per_shard(2).build();
    /// map.insert(1, 1);
    /// assert_eq!(map.len(), 1);
    /// ```
    pub fn stripes_per_shard(mut self, stripes: usize) -> Self {
        self.stripes = stripes.max(1);
        self
    }

    /// Uses `hasher` to hash keys (one hasher for all shards).
    ///
    /// ```
    /// let map: readmostly::ShardedMap<u8, u8, std::hash::RandomState> =
    ///     readmostly::ShardedMap::builder().hasher(Default::default()).build();
    /// map.insert(1, 2);
    /// assert_eq!(map.get_cloned(&1), Some(2));
    /// ```
    pub fn hasher<S2>(self, hasher: S2) -> ShardedBuilder<K, V, S2, R> {
        ShardedBuilder {
            hasher,
            router: self.router,
            shards: self.shards,
            stripes: self.stripes,
            promotion: self.promotion,
            recent_keys: self.recent_keys,
            retire_batch: self.retire_batch,
            rebuild_step: self.rebuild_step,
            max_len: self.max_len,
            hit_statistics: self.hit_statistics,
            _marker: PhantomData,
        }
    }

    /// Sets every shard's promotion rule (default: [`Promotion::DirtyLen`]).
    ///
    /// ```
    /// use readmostly::{Promotion, ShardedMap};
    /// let map: ShardedMap<u8, u8> = ShardedMap::builder().promotion(Promotion::EveryMiss).build();
    /// map.insert(1, 1);
    /// map.get_cloned(&1); // a miss in key 1's shard: promotes that shard at once
    /// assert_eq!(map.stats().promotions, 1);
    /// ```
    pub fn promotion(mut self, promotion: Promotion) -> Self {
        self.promotion = promotion;
        self
    }

    /// Sets every shard's recent-table size (default: [`RecentKeys::Auto`]).
    ///
    /// ```
    /// use readmostly::{RecentKeys, ShardedMap};
    /// let map: ShardedMap<u8, u8> = ShardedMap::builder().recent_keys(RecentKeys::Off).build();
    /// assert_eq!(map.recent_keys(), RecentKeys::Off);
    /// ```
    pub fn recent_keys(mut self, recent_keys: RecentKeys) -> Self {
        self.recent_keys = recent_keys;
        self
    }

    /// How many retired objects a thread hands to the reclamation scheme at once
    /// (default 512; all shards share one scheme). See
    /// [`Builder::retire_batch`](crate::Builder::retire_batch).
    ///
    /// ```
    /// let map: readmostly::ShardedMap<u8, u8> =
    ///     readmostly::ShardedMap::builder().retire_batch(64).build();
    /// map.insert(1, 1);
    /// ```
    pub fn retire_batch(mut self, objects: usize) -> Self {
        self.retire_batch = objects;
        self
    }

    /// How many read-table entries one operation copies while a shard's dirty table is
    /// rebuilt (default 64). See [`Builder::rebuild_step`](crate::Builder::rebuild_step).
    ///
    /// ```
    /// let map: readmostly::ShardedMap<u8, u8> =
    ///     readmostly::ShardedMap::builder().rebuild_step(usize::MAX).build(); // like Go
    /// assert_eq!(map.rebuild_step(), usize::MAX);
    /// ```
    pub fn rebuild_step(mut self, entries: usize) -> Self {
        self.rebuild_step = entries;
        self
    }

    /// Sets a capacity limit for the whole map, enforced by
    /// [`ShardedMap::try_insert`] (default: none).
    ///
    /// A limited map keeps a count of all its keys beside the shards' own, striped per
    /// thread, so that the check before each `try_insert` reads one counter per stripe
    /// instead of one per stripe of every shard. Each added or removed key then updates
    /// one more counter, on a cache line of the writing thread's own.
    ///
    /// ```
    /// let map: readmostly::ShardedMap<u8, u8> =
    ///     readmostly::ShardedMap::builder().max_len(1).build();
    /// assert!(map.try_insert(1, 1).is_ok());
    /// assert!(map.try_insert(2, 2).is_err());
    /// ```
    pub fn max_len(mut self, max_len: usize) -> Self {
        self.max_len = Some(max_len);
        self
    }

    /// Whether lookups count hits (default `true`; see
    /// [`Builder::hit_statistics`](crate::Builder::hit_statistics)). Switchable later with
    /// [`ShardedMap::set_hit_statistics`].
    ///
    /// ```
    /// let map: readmostly::ShardedMap<u8, u8> =
    ///     readmostly::ShardedMap::builder().hit_statistics(false).build();
    /// map.insert(1, 1);
    /// map.get_cloned(&1);
    /// assert_eq!(map.stats().hits, 0);
    /// assert!(!map.hit_statistics());
    /// ```
    pub fn hit_statistics(mut self, on: bool) -> Self {
        self.hit_statistics = on;
        self
    }

    /// Routes keys by the tenant id `tenant` computes, so that all keys of a tenant
    /// share a shard (see [`ByTenant`]). `tenant` sees the key as `&T`, any type the key
    /// type and the lookup types borrow as; it must be cheap and must give equal keys
    /// the same id. It runs on every operation, with no lock held; if it panics, the
    /// operation panics before touching the map.
    ///
    /// ```
    /// use readmostly::ShardedMap;
    ///
    /// // "tenant/key" strings, looked up by `&str`.
    /// let map = ShardedMap::builder()
    ///     .route_by_tenant(|k: &str| {
    ///         let tenant = k.split('/').next().unwrap_or("");
    ///         tenant.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
    ///     })
    ///     .build();
    /// map.insert("acme/plan".to_string(), 1);
    /// map.insert("acme/seats".to_string(), 50);
    /// assert_eq!(map.get_cloned("acme/seats"), Some(50));
    /// assert_eq!(map.shard_of("acme/plan"), map.shard_of("acme/seats"));
    /// ```
    pub fn route_by_tenant<T, F>(self, tenant: F) -> ShardedBuilder<K, V, S, ByTenant<F, T>>
    where
        T: ?Sized,
        F: Fn(&T) -> u64,
    {
        ShardedBuilder {
            hasher: self.hasher,
            router: ByTenant {
                tenant,
                _marker: PhantomData,
            },
            shards: self.shards,
            stripes: self.stripes,
            promotion: self.promotion,
            recent_keys: self.recent_keys,
            retire_batch: self.retire_batch,
            rebuild_step: self.rebuild_step,
            max_len: self.max_len,
            hit_statistics: self.hit_statistics,
            _marker: PhantomData,
        }
    }

    /// Builds the map.
    ///
    /// ```
    /// let map: readmostly::ShardedMap<u8, u8> = readmostly::ShardedMap::builder().build();
    /// assert_eq!(map.len(), 0);
    /// ```
    pub fn build(self) -> ShardedMap<K, V, S, R> {
        let collector = Arc::new(reclaim::collector(self.retire_batch));
        // Only a capacity limit checks the whole map's count on every call.
        let total = self.max_len.map(|_| Arc::new(TotalLen::new(self.stripes)));
        let shards: Box<[Shard<K, V>]> = (0..self.shards)
            .map(|_| Shard {
                raw: RawMap::new(
                    self.promotion,
                    self.recent_keys,
                    collector.clone(),
                    Stripes::with_total(self.stripes, total.clone()),
                    self.hit_statistics,
                    self.rebuild_step,
                ),
            })
            .collect();
        ShardedMap {
            mask: shards.len() - 1,
            shards,
            total,
            hasher: self.hasher,
            router: self.router,
            max_len: self.max_len,
            stripes: self.stripes,
            retire_batch: self.retire_batch,
        }
    }
}

impl<K, V, S: fmt::Debug, R: fmt::Debug> fmt::Debug for ShardedBuilder<K, V, S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardedBuilder")
            .field("shards", &self.shards)
            .field("stripes_per_shard", &self.stripes)
            .field("hasher", &self.hasher)
            .field("router", &self.router)
            .field("promotion", &self.promotion)
            .field("recent_keys", &self.recent_keys)
            .field("retire_batch", &self.retire_batch)
            .field("rebuild_step", &self.rebuild_step)
            .field("max_len", &self.max_len)
            .field("hit_statistics", &self.hit_statistics)
            .finish()
    }
}

impl<K, V, S, R> ShardedMap<K, V, S, R> {
    /// The collector shared by every shard.
    #[inline]
    fn collector(&self) -> &Collector {
        self.shards[0].raw.collector()
    }

    /// Whether handles pinned now count hits (every shard has the same setting, but
    /// for the moment `set_hit_statistics` takes to go through them).
    #[inline]
    fn counts_hits(&self) -> bool {
        self.shards[0].raw.counts_hits()
    }

    /// The number of shards (a power of two).
    ///
    /// ```
    /// let map: readmostly::ShardedMap<u8, u8> =
    ///     readmostly::ShardedMap::builder().shards(4).build();
    /// assert_eq!(map.shard_count(), 4);
    /// ```
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The map's hasher.
    ///
    /// ```
    /// use std::hash::BuildHasher;
    /// let map: readmostly::ShardedMap<u8, u8> = readmostly::ShardedMap::new();
    /// let _h = map.hasher().hash_one(1u8);
    /// ```
    pub fn hasher(&self) -> &S {
        &self.hasher
    }

    /// The shards' promotion rule.
    ///
    /// ```
    /// let map: readmostly::ShardedMap<u8, u8> = readmostly::ShardedMap::new();
    /// assert_eq!(map.promotion(), readmostly::Promotion::DirtyLen);
    /// ```
    pub fn promotion(&self) -> Promotion {
        self.shards[0].raw.promotion()
    }

    /// The shards' recent-table size.
    ///
    /// ```
    /// let map: readmostly::ShardedMap<u8, u8> = readmostly::ShardedMap::new();
    /// assert_eq!(map.recent_keys(), readmostly::RecentKeys::Auto);
    /// ```
    pub fn recent_keys(&self) -> RecentKeys {
        self.shards[0].raw.recent_keys()
    }

    /// Every shard's rebuild step (see [`ShardedBuilder::rebuild_step`]).
    ///
    /// ```
    /// let map: readmostly::ShardedMap<u8, u8> = readmostly::ShardedMap::new();
    /// assert_eq!(map.rebuild_step(), 64);
    /// ```
    pub fn rebuild_step(&self) -> usize {
        self.shards[0].raw.rebuild_step()
    }

    /// The capacity limit [`try_insert`](Self::try_insert) enforces, if any.
    ///
    /// ```
    /// let map: readmostly::ShardedMap<u8, u8> = readmostly::ShardedMap::new();
    /// assert_eq!(map.max_len(), None);
    /// ```
    pub fn max_len(&self) -> Option<usize> {
        self.max_len
    }

    /// The retire batch the map was built with, as given to
    /// [`ShardedBuilder::retire_batch`] (the collector uses it rounded up to a power of
    /// two, at least 1).
    ///
    /// ```
    /// let map: readmostly::ShardedMap<u8, u8> =
    ///     readmostly::ShardedMap::builder().retire_batch(64).build();
    /// assert_eq!(map.retire_batch(), 64);
    /// ```
    pub fn retire_batch(&self) -> usize {
        self.retire_batch
    }

    /// Whether handles pinned now count hits (see
    /// [`set_hit_statistics`](ShardedMap::set_hit_statistics)).
    ///
    /// ```
    /// let map: readmostly::ShardedMap<u8, u8> = readmostly::ShardedMap::new();
    /// assert!(map.hit_statistics());
    /// map.set_hit_statistics(false);
    /// assert!(!map.hit_statistics());
    /// ```
    pub fn hit_statistics(&self) -> bool {
        self.counts_hits()
    }

    /// The number of keys present: the sum of the shards' striped counters (exact when
    /// no write is in flight). Costs one load per stripe of every shard, or, in a map
    /// with a capacity limit ([`ShardedBuilder::max_len`]), one load per stripe of a
    /// count that the shards keep for the whole map.
    ///
    /// ```
    /// let map = readmostly::ShardedMap::new();
    /// map.insert(1, 1);
    /// map.insert(2, 2);
    /// map.remove(&1);
    /// assert_eq!(map.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        match &self.total {
            Some(total) => total.len(),
            None => self.shards.iter().map(|s| s.raw.len()).sum(),
        }
    }

    /// Whether [`len`](Self::len) is zero.
    ///
    /// ```
    /// let map: readmostly::ShardedMap<u8, u8> = readmostly::ShardedMap::new();
    /// assert!(map.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Enters a read-side critical section covering every shard and returns a handle
    /// for guard-scoped access (see [`SyncMap::pin`](crate::SyncMap::pin)). The handle
    /// is `!Send`; see [`pin_owned`](Self::pin_owned) for async code.
    ///
    /// ```
    /// let map = readmostly::ShardedMap::new();
    /// map.insert(1, "a");
    /// let m = map.pin();
    /// assert_eq!(m.get(&1), Some(&"a"));
    /// ```
    ///
    /// A reference cannot outlive its guard:
    ///
    /// ```compile_fail
    /// let map = readmostly::ShardedMap::new();
    /// map.insert(1, 1);
    /// let r = {
    ///     let m = map.pin();
    ///     m.get(&1).unwrap()
    /// };
    /// assert_eq!(*r, 1);
    /// ```
    #[inline]
    pub fn pin(&self) -> ShardedRef<'_, K, V, S, R, LocalGuard<'_>> {
        ShardedRef {
            map: self,
            guard: self.collector().enter(),
            count_hits: self.counts_hits(),
        }
    }

    /// Like [`pin`](Self::pin), with a `Send + Sync` guard that may be held across
    /// `.await` points.
    ///
    /// ```
    /// let map = readmostly::ShardedMap::new();
    /// map.insert(1, 10);
    /// std::thread::scope(|s| {
    ///     let m = map.pin_owned();
    ///     s.spawn(move || assert_eq!(m.get(&1), Some(&10)));
    /// });
    /// ```
    #[inline]
    pub fn pin_owned(&self) -> ShardedRef<'_, K, V, S, R, OwnedGuard<'_>> {
        ShardedRef {
            map: self,
            guard: self.collector().enter_owned(),
            count_hits: self.counts_hits(),
        }
    }
}

impl<K, V, S, R> ShardedMap<K, V, S, R>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    /// The shard that holds `key` (or would hold it), in `0..shard_count()`.
    ///
    /// ```
    /// let map: readmostly::ShardedMap<u32, u32> = readmostly::ShardedMap::new();
    /// assert!(map.shard_of(&7) < map.shard_count());
    /// ```
    pub fn shard_of<Q>(&self, key: &Q) -> usize
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
        R: Router<Q>,
    {
        self.index(key, self.hash(key))
    }

    /// The key's hash as routing and the shards' tables use it (the hasher's output,
    /// mixed: see `spread`).
    #[inline]
    fn hash<Q: ?Sized + Hash>(&self, key: &Q) -> u64
    where
        S: BuildHasher,
    {
        crate::raw::spread(self.hasher.hash_one(key))
    }

    #[inline]
    fn index<Q>(&self, key: &Q, hash: u64) -> usize
    where
        Q: ?Sized,
        R: Router<Q>,
    {
        (self.router.route(key, hash) >> 32) as usize & self.mask
    }

    /// A clone of the value for `key`.
    ///
    /// ```
    /// let map = readmostly::ShardedMap::new();
    /// map.insert("a".to_string(), vec![1, 2]);
    /// assert_eq!(map.get_cloned("a"), Some(vec![1, 2]));
    /// ```
    pub fn get_cloned<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
        R: Router<Q>,
        V: Clone,
    {
        self.pin().get(key).cloned()
    }

    /// Whether `key` is present.
    ///
    /// ```
    /// let map = readmostly::ShardedMap::new();
    /// map.insert(7, ());
    /// assert!(map.contains_key(&7));
    /// assert!(!map.contains_key(&8));
    /// ```
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
        R: Router<Q>,
    {
        self.pin().get(key).is_some()
    }

    /// Calls `f` with the value for `key`, if present (no lock held while `f` runs).
    ///
    /// ```
    /// let map = readmostly::ShardedMap::new();
    /// map.insert("name", String::from("readmostly"));
    /// assert_eq!(map.with("name", |v| v.len()), Some(10));
    /// ```
    pub fn with<Q, T>(&self, key: &Q, f: impl FnOnce(&V) -> T) -> Option<T>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
        R: Router<Q>,
    {
        self.pin().get(key).map(f)
    }

    /// Sets the value for `key`; returns whether a previous value was replaced.
    ///
    /// ```
    /// let map = readmostly::ShardedMap::new();
    /// assert!(!map.insert(1, "a"));
    /// assert!(map.insert(1, "b"));
    /// ```
    pub fn insert(&self, key: K, value: V) -> bool
    where
        R: Router<K>,
    {
        self.pin().insert(key, value).is_some()
    }

    /// Like [`insert`](Self::insert), but refuses a **new** key once the whole map holds
    /// [`max_len`](ShardedBuilder::max_len) keys (see
    /// [`SyncMap::try_insert`](crate::SyncMap::try_insert) for the exact rule). Each call
    /// (overwrites too) reads [`len`](Self::len) first: one load per statistics stripe
    /// of a count the shards of a limited map keep together, whatever the number of
    /// shards.
    ///
    /// That sum is taken stripe by stripe, not as one snapshot: while other threads
    /// remove keys and add others, it can see more or fewer keys than the map ever held
    /// at once. The limit can then be passed, or a new key refused below it, by up to the
    /// number of keys moved while the sum was taken. Without such concurrent churn it
    /// behaves like `SyncMap`'s. It turns a leak into an error; it is not an exact
    /// occupancy limit.
    ///
    /// ```
    /// let map: readmostly::ShardedMap<&str, u32> =
    ///     readmostly::ShardedMap::builder().max_len(1).build();
    /// assert_eq!(map.try_insert("a", 1), Ok(false));
    /// assert_eq!(map.try_insert("a", 2), Ok(true));
    /// let err = map.try_insert("b", 3).unwrap_err();
    /// assert_eq!(err.into_inner(), ("b", 3));
    /// ```
    pub fn try_insert(&self, key: K, value: V) -> Result<bool, CapacityError<K, V>>
    where
        R: Router<K>,
    {
        self.pin().try_insert(key, value).map(|prev| prev.is_some())
    }

    /// Removes `key`; returns whether it was present.
    ///
    /// ```
    /// let map = readmostly::ShardedMap::new();
    /// map.insert(1, 1);
    /// assert!(map.remove(&1));
    /// assert!(!map.remove(&1));
    /// ```
    pub fn remove<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
        R: Router<Q>,
    {
        self.pin().remove(key).is_some()
    }

    /// Replaces the value for `key` with `f(value)`, atomically (see
    /// [`MapRef::update`](crate::MapRef::update)); returns whether the key was present.
    ///
    /// ```
    /// let map = readmostly::ShardedMap::new();
    /// map.insert("hits", 1u64);
    /// assert!(map.update("hits", |n| n + 1));
    /// assert!(!map.update("misses", |n| n + 1));
    /// assert_eq!(map.get_cloned("hits"), Some(2));
    /// ```
    pub fn update<Q>(&self, key: &Q, f: impl FnMut(&V) -> V) -> bool
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
        R: Router<Q>,
    {
        self.pin().update(key, f).is_some()
    }

    /// Keeps only the entries for which `keep` returns `true`, shard by shard.
    ///
    /// ```
    /// let map: readmostly::ShardedMap<u32, u32> = (0..10).map(|i| (i, i)).collect();
    /// map.retain(|_, v| v % 2 == 0);
    /// assert_eq!(map.len(), 5);
    /// ```
    pub fn retain(&self, keep: impl FnMut(&K, &V) -> bool) {
        self.pin().retain(keep);
    }

    /// Removes every key, shard by shard. Each shard is cleared atomically (as
    /// [`SyncMap::clear`](crate::SyncMap::clear)); the map as a whole is not, so an
    /// insert racing with `clear` may survive in a shard cleared before it.
    ///
    /// ```
    /// let map: readmostly::ShardedMap<u32, u32> = (0..10).map(|i| (i, i)).collect();
    /// map.clear();
    /// assert!(map.is_empty());
    /// ```
    pub fn clear(&self) {
        self.pin().clear();
    }

    /// Promotes every shard whose read table lacks some of its keys, and hands every
    /// shard's expunged entries still waiting to the reclaimer (see
    /// [`SyncMap::promote`](crate::SyncMap::promote)). Returns how many shards it
    /// promoted.
    ///
    /// ```
    /// let map = readmostly::ShardedMap::new();
    /// for k in 0..1_000 {
    ///     map.insert(k, k);
    /// }
    /// assert!(map.promote() > 0);
    /// assert_eq!(map.stats().recent_len, 0);
    /// ```
    pub fn promote(&self) -> usize {
        let guard = self.collector().enter();
        self.shards
            .iter()
            .filter(|s| s.raw.bind(&guard).promote())
            .count()
    }

    /// The statistics of all shards added up (see [`Stats::merge`]); takes each shard's
    /// lock briefly, one at a time.
    ///
    /// ```
    /// let map = readmostly::ShardedMap::new();
    /// map.insert(1, 1);
    /// map.insert(2, 2);
    /// let s = map.stats();
    /// assert_eq!((s.len, s.new_keys), (2, 2));
    /// ```
    pub fn stats(&self) -> Stats {
        self.shard_stats().iter().sum()
    }

    /// Turns hit counting on or off at run time in every shard, like
    /// [`SyncMap::set_hit_statistics`](crate::SyncMap::set_hit_statistics): for handles
    /// pinned afterwards (a [`ShardedRef`] keeps the setting it was pinned with).
    ///
    /// ```
    /// let map = readmostly::ShardedMap::new();
    /// map.insert(1, 1);
    /// map.promote();
    /// map.set_hit_statistics(false);
    /// map.get_cloned(&1);
    /// assert_eq!(map.stats().hits, 0);
    /// ```
    pub fn set_hit_statistics(&self, on: bool) {
        for shard in self.shards.iter() {
            shard.raw.set_count_hits(on);
        }
    }

    /// The statistics of each shard, in shard order: shows skew (a hot tenant, a shard
    /// that keeps promoting).
    ///
    /// ```
    /// let map: readmostly::ShardedMap<u32, u32> =
    ///     readmostly::ShardedMap::builder().shards(4).build();
    /// map.insert(1, 1);
    /// let per_shard = map.shard_stats();
    /// assert_eq!(per_shard.len(), 4);
    /// assert_eq!(per_shard[map.shard_of(&1)].len, 1);
    /// ```
    pub fn shard_stats(&self) -> Vec<Stats> {
        let guard = self.collector().enter();
        self.shards
            .iter()
            .map(|s| s.raw.bind(&guard).stats())
            .collect()
    }
}

impl<K, V, S: Default> Default for ShardedMap<K, V, S> {
    fn default() -> Self {
        ShardedMap::with_hasher(S::default())
    }
}

impl<K, V, S, R> Clone for ShardedMap<K, V, S, R>
where
    K: Hash + Eq + Clone,
    V: Clone,
    S: BuildHasher + Clone,
    R: Router<K> + Clone,
{
    /// A new map with this map's configuration (shard count, statistics stripes, hasher,
    /// router, promotion rule, recent keys, retire batch, rebuild step, capacity limit
    /// and hit-statistics setting) and a copy of every entry
    /// [`iter`](ShardedRef::iter) visits, each shard loaded in one pass (see
    /// [`Clone`] for [`SyncMap`](crate::SyncMap), whose caveats apply).
    ///
    /// ```
    /// let map = readmostly::ShardedMap::builder()
    ///     .shards(8)
    ///     .route_by_tenant(|k: &(u32, u32)| u64::from(k.0))
    ///     .build();
    /// map.insert((1, 1), "a");
    /// let copy = map.clone();
    /// assert_eq!(copy.shard_count(), 8);
    /// assert_eq!(copy.shard_of(&(1, 1)), map.shard_of(&(1, 1)));
    /// assert_eq!(copy, map);
    /// ```
    fn clone(&self) -> Self {
        let first = &self.shards[0].raw;
        let mut copy = ShardedBuilder {
            hasher: self.hasher.clone(),
            router: self.router.clone(),
            shards: self.shards.len(),
            stripes: self.stripes,
            promotion: first.promotion(),
            recent_keys: first.recent_keys(),
            retire_batch: self.retire_batch,
            rebuild_step: first.rebuild_step(),
            max_len: self.max_len,
            hit_statistics: self.counts_hits(),
            _marker: PhantomData,
        }
        .build();
        copy.extend(self.pin().iter().map(|(k, v)| (k.clone(), v.clone())));
        copy
    }
}

impl<K, V, S, R> IntoIterator for ShardedMap<K, V, S, R> {
    type Item = (K, V);
    type IntoIter = IntoIter<K, V>;

    /// Takes the map apart, yielding every key with its value, shard by shard (see
    /// [`IntoIterator`] for [`SyncMap`](crate::SyncMap): one buffer of `len` pairs).
    ///
    /// ```
    /// let map: readmostly::ShardedMap<u32, String> =
    ///     (0..4).map(|k| (k, k.to_string())).collect();
    /// let mut pairs: Vec<(u32, String)> = map.into_iter().collect();
    /// pairs.sort();
    /// assert_eq!(pairs.len(), 4);
    /// assert_eq!(pairs[3], (3, "3".to_string()));
    /// ```
    fn into_iter(self) -> IntoIter<K, V> {
        let mut pairs = Vec::with_capacity(self.len());
        for shard in self.shards.into_vec() {
            shard.raw.into_pairs(&mut pairs);
        }
        IntoIter::new(pairs)
    }
}

impl<K, V, S, R> PartialEq for ShardedMap<K, V, S, R>
where
    K: Hash + Eq,
    V: PartialEq,
    S: BuildHasher,
    R: Router<K>,
{
    /// Whether both maps hold the same keys with equal values (see [`PartialEq`] for
    /// [`SyncMap`](crate::SyncMap), whose caveats apply). The maps may differ in shard
    /// count or routing.
    ///
    /// ```
    /// let a: readmostly::ShardedMap<u32, u32> = (0..10).map(|k| (k, k)).collect();
    /// let mut b: readmostly::ShardedMap<u32, u32> =
    ///     readmostly::ShardedMap::builder().shards(2).build();
    /// b.extend((0..10).map(|k| (k, k)));
    /// assert_eq!(a, b);
    /// b.insert(3, 4);
    /// assert_ne!(a, b);
    /// ```
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.pin(), other.pin());
        a.len() == b.len()
            && a.iter().all(|(k, v)| {
                let hash = other.hash(k);
                b.shard(k, hash)
                    .uncounted()
                    .get(hash, k)
                    .is_some_and(|w| v == w)
            })
    }
}

impl<K, V, S, R> Eq for ShardedMap<K, V, S, R>
where
    K: Hash + Eq,
    V: Eq,
    S: BuildHasher,
    R: Router<K>,
{
}

impl<K, V, S, R> fmt::Debug for ShardedMap<K, V, S, R>
where
    K: Hash + Eq + fmt::Debug,
    V: fmt::Debug,
    S: BuildHasher,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.pin().iter()).finish()
    }
}

impl<K, V, S> FromIterator<(K, V)> for ShardedMap<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher + Default,
{
    /// Builds each shard's table in one pass (see [`Extend`] for `ShardedMap`).
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut map = ShardedMap::with_hasher(S::default());
        map.extend(iter);
        map
    }
}

impl<K, V, S, R> Extend<(K, V)> for ShardedMap<K, V, S, R>
where
    K: Hash + Eq,
    S: BuildHasher,
    R: Router<K>,
{
    /// A bulk load, as [`Extend`] for [`SyncMap`](crate::SyncMap): the items are sorted
    /// into their shards first (buffered), then each shard that receives at least a
    /// quarter as many items as it holds builds a new read table from its entries and
    /// its items in one pass; the others insert theirs one by one. Later items win over
    /// earlier ones.
    ///
    /// ```
    /// let mut map: readmostly::ShardedMap<u32, u32> = (0..1000).map(|k| (k, k)).collect();
    /// map.extend((500..1500).map(|k| (k, k + 1)).chain([(7, 70)]));
    /// assert_eq!(map.get_cloned(&499), Some(499));
    /// assert_eq!(map.get_cloned(&500), Some(501));
    /// assert_eq!(map.get_cloned(&7), Some(70));
    /// assert_eq!(map.len(), 1500);
    /// let s = map.stats();
    /// // Every key in the main table(s); nothing was rebuilt on the way.
    /// assert_eq!((s.read_len, s.recent_len, s.rebuild_copied), (1500, 0, 0));
    /// ```
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        let mut per_shard: Vec<Vec<(u64, K, V)>> = self.shards.iter().map(|_| Vec::new()).collect();
        for (k, v) in iter {
            let hash = self.hash(&k);
            per_shard[self.index(&k, hash)].push((hash, k, v));
        }
        let guard = self.collector().enter();
        for (shard, items) in self.shards.iter().zip(per_shard) {
            let raw = shard.raw.bind(&guard);
            if items.is_empty() {
                continue;
            } else if crate::map::bulk_worthwhile(items.len(), shard.raw.len()) {
                raw.insert_all(items.into_iter());
            } else {
                for (hash, key, value) in items {
                    raw.insert(hash, key, value);
                }
            }
        }
    }
}

impl<K, V, S, R> Extend<(K, V)> for &ShardedMap<K, V, S, R>
where
    K: Hash + Eq,
    S: BuildHasher,
    R: Router<K>,
{
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        let m = self.pin();
        for (k, v) in iter {
            m.insert(k, v);
        }
    }
}

/// A pinned handle to a [`ShardedMap`], from [`ShardedMap::pin`] or
/// [`ShardedMap::pin_owned`]: one guard for every shard.
///
/// Every reference it returns lives as long as the handle. It holds no lock: any method
/// of the map may be called while it exists.
pub struct ShardedRef<'m, K, V, S, R, G> {
    map: &'m ShardedMap<K, V, S, R>,
    guard: G,
    /// The hit-statistics setting when pinned (kept, like a `MapRef`'s).
    count_hits: bool,
}

impl<'m, K, V, S, R, G> ShardedRef<'m, K, V, S, R, G>
where
    K: Hash + Eq,
    S: BuildHasher,
    G: Guard,
{
    /// The shard for `key` (with `hash`) paired with our guard.
    #[inline]
    fn shard<Q>(&self, key: &Q, hash: u64) -> RawRef<'_, K, V, G>
    where
        Q: ?Sized,
        R: Router<Q>,
    {
        self.map.shards[self.map.index(key, hash)]
            .raw
            .bind_counting(&self.guard, self.count_hits)
    }

    /// The value for `key` (see [`MapRef::get`](crate::MapRef::get)).
    ///
    /// ```
    /// let map = readmostly::ShardedMap::new();
    /// map.insert(String::from("a"), 1);
    /// assert_eq!(map.pin().get("a"), Some(&1));
    /// ```
    #[inline]
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
        R: Router<Q>,
    {
        let hash = self.map.hash(key);
        self.shard(key, hash).get(hash, key)
    }

    /// The stored key and its value for `key` (see
    /// [`MapRef::get_key_value`](crate::MapRef::get_key_value)).
    ///
    /// ```
    /// let map = readmostly::ShardedMap::new();
    /// map.insert(String::from("a"), 1);
    /// assert_eq!(map.pin().get_key_value("a"), Some((&"a".to_string(), &1)));
    /// ```
    pub fn get_key_value<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
        R: Router<Q>,
    {
        let hash = self.map.hash(key);
        self.shard(key, hash).get_key_value(hash, key)
    }

    /// Looks up every key of `keys` and calls `f(i, value)` for each, in order, with
    /// prefetching (see [`MapRef::get_each`](crate::MapRef::get_each)).
    ///
    /// ```
    /// let map: readmostly::ShardedMap<u64, u64> = (0..100).map(|k| (k, k)).collect();
    /// let mut found = 0;
    /// map.pin().get_each(&[1, 2, 500], |_, v| found += v.is_some() as u32);
    /// assert_eq!(found, 2);
    /// ```
    pub fn get_each<'s, Q>(&'s self, keys: &[Q], f: impl FnMut(usize, Option<&'s V>))
    where
        K: Borrow<Q>,
        Q: Hash + Eq,
        R: Router<Q>,
    {
        crate::raw::get_each(
            keys,
            |k| self.map.hash(k),
            |k, h| self.shard(k, h),
            false,
            f,
        );
    }

    /// Whether `key` is present.
    ///
    /// ```
    /// let map = readmostly::ShardedMap::new();
    /// map.insert(1, 1);
    /// assert!(map.pin().contains_key(&1));
    /// ```
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
        R: Router<Q>,
    {
        self.get(key).is_some()
    }

    /// Sets the value for `key` and returns the previous one.
    ///
    /// ```
    /// let map = readmostly::ShardedMap::new();
    /// let m = map.pin();
    /// assert_eq!(m.insert(1, "a"), None);
    /// assert_eq!(m.insert(1, "b"), Some(&"a"));
    /// ```
    pub fn insert(&self, key: K, value: V) -> Option<&V>
    where
        R: Router<K>,
    {
        let hash = self.map.hash(&key);
        self.shard(&key, hash).insert(hash, key, value)
    }

    /// Like [`insert`](Self::insert), subject to the map's capacity limit (see
    /// [`ShardedMap::try_insert`]).
    ///
    /// ```
    /// let map = readmostly::ShardedMap::builder().max_len(1).build();
    /// let m = map.pin();
    /// assert_eq!(m.try_insert(1, "a"), Ok(None));
    /// assert!(m.try_insert(2, "b").is_err());
    /// ```
    pub fn try_insert(&self, key: K, value: V) -> Result<Option<&V>, CapacityError<K, V>>
    where
        R: Router<K>,
    {
        if let Some(max_len) = self.map.max_len {
            // As in `MapRef::try_insert`: the check counts no hit.
            let present = || {
                let hash = self.map.hash(&key);
                self.shard(&key, hash).uncounted().get(hash, &key).is_some()
            };
            if self.map.len() >= max_len && !present() {
                return Err(CapacityError {
                    key,
                    value,
                    max_len,
                });
            }
        }
        Ok(self.insert(key, value))
    }

    /// The value for `key`, inserting `value` if absent; the flag says whether it was
    /// inserted (atomic: of racing calls exactly one inserts).
    ///
    /// ```
    /// let map = readmostly::ShardedMap::new();
    /// let m = map.pin();
    /// assert_eq!(m.get_or_insert("k", 1), (&1, true));
    /// assert_eq!(m.get_or_insert("k", 2), (&1, false));
    /// ```
    pub fn get_or_insert(&self, key: K, value: V) -> (&V, bool)
    where
        R: Router<K>,
    {
        let hash = self.map.hash(&key);
        self.shard(&key, hash).get_or_insert(hash, key, value)
    }

    /// Like [`get_or_insert`](Self::get_or_insert), building the value only when the
    /// key is absent (see [`MapRef::get_or_insert_with`](crate::MapRef::get_or_insert_with)).
    ///
    /// ```
    /// let map = readmostly::ShardedMap::new();
    /// let m = map.pin();
    /// let (v, inserted) = m.get_or_insert_with("config", || String::from("loaded"));
    /// assert_eq!((v.as_str(), inserted), ("loaded", true));
    /// ```
    pub fn get_or_insert_with(&self, key: K, make: impl FnOnce() -> V) -> (&V, bool)
    where
        R: Router<K>,
    {
        let hash = self.map.hash(&key);
        self.shard(&key, hash).get_or_insert_with(hash, key, make)
    }

    /// Like [`get_or_insert_with`](Self::get_or_insert_with) with a fallible `make` (see
    /// [`MapRef::get_or_try_insert_with`](crate::MapRef::get_or_try_insert_with)): on an
    /// error nothing is inserted and the error is returned.
    ///
    /// ```
    /// let map: readmostly::ShardedMap<u32, String> = readmostly::ShardedMap::new();
    /// let m = map.pin();
    /// assert_eq!(m.get_or_try_insert_with(1, || Err("backend down")), Err("backend down"));
    /// assert_eq!(map.len(), 0);
    /// let (v, inserted) = m.get_or_try_insert_with(1, || Ok::<_, ()>("one".into())).unwrap();
    /// assert_eq!((v.as_str(), inserted), ("one", true));
    /// ```
    pub fn get_or_try_insert_with<E>(
        &self,
        key: K,
        make: impl FnOnce() -> Result<V, E>,
    ) -> Result<(&V, bool), E>
    where
        R: Router<K>,
    {
        let hash = self.map.hash(&key);
        self.shard(&key, hash)
            .get_or_try_insert_with(hash, key, make)
    }

    /// Removes `key` and returns its value.
    ///
    /// ```
    /// let map = readmostly::ShardedMap::new();
    /// map.insert(1, "a");
    /// let m = map.pin();
    /// assert_eq!(m.remove(&1), Some(&"a"));
    /// assert_eq!(m.remove(&1), None);
    /// ```
    pub fn remove<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
        R: Router<Q>,
    {
        let hash = self.map.hash(key);
        self.shard(key, hash).remove(hash, key)
    }

    /// Replaces the value for `key` with `new` if it equals `current` (see
    /// [`MapRef::compare_exchange`](crate::MapRef::compare_exchange)).
    ///
    /// ```
    /// let map = readmostly::ShardedMap::new();
    /// map.insert("v", 1);
    /// let m = map.pin();
    /// assert_eq!(m.compare_exchange("v", &1, 2), Ok(&1));
    /// let err = m.compare_exchange("v", &1, 3).unwrap_err();
    /// assert_eq!((err.current, err.new), (Some(&2), 3));
    /// ```
    pub fn compare_exchange<Q>(
        &self,
        key: &Q,
        current: &V,
        new: V,
    ) -> Result<&V, CompareExchangeError<'_, V>>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
        R: Router<Q>,
        V: PartialEq,
    {
        let hash = self.map.hash(key);
        self.shard(key, hash)
            .compare_exchange(hash, key, current, new)
            .map_err(|(current, new)| CompareExchangeError { current, new })
    }

    /// Replaces the value for `key` with `f(value)` and returns the new value, or `None`
    /// (without calling `f`) if the key is absent (see
    /// [`MapRef::update`](crate::MapRef::update): atomic with respect to the value `f`
    /// saw, which may run more than once).
    ///
    /// ```
    /// let map = readmostly::ShardedMap::new();
    /// map.insert("version", 7u32);
    /// let m = map.pin();
    /// assert_eq!(m.update("version", |v| v + 1), Some(&8));
    /// assert_eq!(m.update("other", |v| v + 1), None);
    /// ```
    pub fn update<Q>(&self, key: &Q, f: impl FnMut(&V) -> V) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
        R: Router<Q>,
    {
        let hash = self.map.hash(key);
        self.shard(key, hash).update(hash, key, f)
    }

    /// Removes `key` if `predicate` approves its value (see
    /// [`MapRef::remove_if`](crate::MapRef::remove_if)).
    ///
    /// ```
    /// let map = readmostly::ShardedMap::new();
    /// map.insert("session", 3);
    /// let m = map.pin();
    /// assert_eq!(m.remove_if("session", |v| *v > 5), None);
    /// assert_eq!(m.remove_if("session", |v| *v == 3), Some(&3));
    /// ```
    pub fn remove_if<Q>(&self, key: &Q, predicate: impl FnMut(&V) -> bool) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
        R: Router<Q>,
    {
        let hash = self.map.hash(key);
        self.shard(key, hash).remove_if(hash, key, predicate)
    }

    /// Iterates over the entries of every shard, shard by shard, each as
    /// [`MapRef::iter`](crate::MapRef::iter) does: every key present for the whole
    /// iteration is visited exactly once; keys inserted or removed meanwhile may or may
    /// not be; no key is visited twice. No lock is held while iterating.
    ///
    /// ```
    /// let map: readmostly::ShardedMap<u32, u32> = (0..4).map(|i| (i, i * 10)).collect();
    /// let m = map.pin();
    /// let mut seen: Vec<_> = m.iter().map(|(k, v)| (*k, *v)).collect();
    /// seen.sort();
    /// assert_eq!(seen, [(0, 0), (1, 10), (2, 20), (3, 30)]);
    /// for (k, _) in m.iter() {
    ///     m.remove(k); // allowed while iterating
    /// }
    /// assert!(map.is_empty());
    /// ```
    pub fn iter(&self) -> ShardedIter<'_, K, V, G> {
        ShardedIter {
            shards: self.map.shards.iter(),
            guard: &self.guard,
            current: None,
        }
    }

    /// The keys, visited as [`iter`](Self::iter) visits entries.
    ///
    /// ```
    /// let map: readmostly::ShardedMap<u32, u32> = (0..3).map(|k| (k, 0)).collect();
    /// let mut keys: Vec<u32> = map.pin().keys().copied().collect();
    /// keys.sort();
    /// assert_eq!(keys, [0, 1, 2]);
    /// ```
    pub fn keys(&self) -> Keys<ShardedIter<'_, K, V, G>> {
        Keys::new(self.iter())
    }

    /// The values, visited as [`iter`](Self::iter) visits entries.
    ///
    /// ```
    /// let map: readmostly::ShardedMap<u32, u32> = (0..3).map(|k| (k, k * 10)).collect();
    /// assert_eq!(map.pin().values().sum::<u32>(), 30);
    /// ```
    pub fn values(&self) -> Values<ShardedIter<'_, K, V, G>> {
        Values::new(self.iter())
    }

    /// Keeps only the entries for which `keep` returns `true` (see
    /// [`MapRef::retain`](crate::MapRef::retain)), shard by shard.
    ///
    /// ```
    /// let map: readmostly::ShardedMap<u32, u32> = (0..6).map(|i| (i, i)).collect();
    /// map.pin().retain(|k, _| *k < 3);
    /// assert_eq!(map.len(), 3);
    /// ```
    pub fn retain(&self, mut keep: impl FnMut(&K, &V) -> bool) {
        for shard in self.map.shards.iter() {
            shard
                .raw
                .bind_counting(&self.guard, self.count_hits)
                .retain(&mut keep);
        }
    }

    /// Removes every key (see [`ShardedMap::clear`]).
    ///
    /// ```
    /// let map = readmostly::ShardedMap::new();
    /// map.insert(1, 1);
    /// map.pin().clear();
    /// assert!(map.is_empty());
    /// ```
    pub fn clear(&self) {
        for shard in self.map.shards.iter() {
            shard
                .raw
                .bind_counting(&self.guard, self.count_hits)
                .clear();
        }
    }

    /// The number of keys present (see [`ShardedMap::len`]).
    ///
    /// ```
    /// let map = readmostly::ShardedMap::new();
    /// map.insert(1, 1);
    /// assert_eq!(map.pin().len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the map is empty.
    ///
    /// ```
    /// let map: readmostly::ShardedMap<u8, u8> = readmostly::ShardedMap::new();
    /// assert!(map.pin().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<K, V, S, R, G> fmt::Debug for ShardedRef<'_, K, V, S, R, G>
where
    K: Hash + Eq + fmt::Debug,
    V: fmt::Debug,
    S: BuildHasher,
    G: Guard,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Iterator over a [`ShardedMap`]'s entries, from [`ShardedRef::iter`].
pub struct ShardedIter<'g, K, V, G> {
    shards: std::slice::Iter<'g, Shard<K, V>>,
    guard: &'g G,
    current: Option<RawIter<'g, K, V, G>>,
}

impl<'g, K: Eq, V, G: Guard> Iterator for ShardedIter<'g, K, V, G> {
    type Item = (&'g K, &'g V);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.current.as_mut().and_then(Iterator::next) {
                return Some(item);
            }
            // Each shard's snapshot is taken when the iteration reaches it.
            self.current = Some(self.shards.next()?.raw.bind(self.guard).iter());
        }
    }
}

/// Once exhausted it stays exhausted: the shards are walked once, in order.
impl<K: Eq, V, G: Guard> std::iter::FusedIterator for ShardedIter<'_, K, V, G> {}

impl<'g, 'm, K, V, S, R, G> IntoIterator for &'g ShardedRef<'m, K, V, S, R, G>
where
    K: Hash + Eq,
    S: BuildHasher,
    G: Guard,
{
    type Item = (&'g K, &'g V);
    type IntoIter = ShardedIter<'g, K, V, G>;

    /// [`ShardedRef::iter`], for `for` loops.
    ///
    /// ```
    /// let map: readmostly::ShardedMap<u32, u32> = (0..4).map(|k| (k, k)).collect();
    /// let m = map.pin();
    /// let mut sum = 0;
    /// for (k, v) in &m {
    ///     sum += k + v;
    /// }
    /// assert_eq!(sum, 12);
    /// ```
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<K, V, G> fmt::Debug for ShardedIter<'_, K, V, G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardedIter").finish_non_exhaustive()
    }
}
