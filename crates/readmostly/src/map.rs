//! [`SyncMap`]: the safe public API over the read/dirty protocol in `raw`.
#![forbid(unsafe_code)]

use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;
use std::num::NonZeroUsize;

use std::sync::Arc;

use crate::raw::reclaim::{self, Guard, LocalGuard, OwnedGuard, DEFAULT_RETIRE_BATCH};
use crate::raw::DEFAULT_REBUILD_STEP;
use crate::raw::{Pinned, RawIter, RawMap, RawRef};
use crate::stats::{default_stripes, Stats, Stripes};

/// The default hasher: [foldhash](https://docs.rs/foldhash)'s fast hasher, seeded
/// randomly per map. Swap it through [`SyncMap::with_hasher`] or [`Builder::hasher`]
/// (for example for `std`'s SipHash when keys come from untrusted input and you want its
/// stronger flooding resistance).
pub type DefaultHashBuilder = foldhash::fast::RandomState;

/// When read misses promote the dirty table to the read table.
///
/// Every lookup that misses the read table's main hash table while keys were added since
/// the last promotion counts a *miss*: one that consults the recent table (see
/// [`RecentKeys`]) without the lock, found or not, or one that consults the dirty table
/// under the lock. Once the rule below says so, the dirty table becomes the new read
/// table by one pointer swap, and later lookups of its keys hit the main table again.
/// Misses answered by the recent table are counted per thread and the rule is checked
/// every few of them (every one for [`EveryMiss`](Self::EveryMiss),
/// every `min(n, 64)` rounded up to a power of two for
/// [`AfterMisses(n)`](Self::AfterMisses), every 64 for
/// [`DirtyLen`](Self::DirtyLen)), so the count it sees may lag by that much per thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Promotion {
    /// Go's rule: promote when the misses since the last promotion reach the number of
    /// entries in the dirty table, so the cost of the copy that follows the promotion is
    /// paid for by as many slow lookups. Lookups answered without the lock by the recent
    /// table (see [`RecentKeys`]) cost far less than a locked miss and count for a
    /// quarter of one each.
    #[default]
    DirtyLen,
    /// Promote on every miss (useful in tests: exercises promotion, rebuild and expunge
    /// constantly; costly in production).
    EveryMiss,
    /// Promote after a fixed number of misses.
    AfterMisses(NonZeroUsize),
}

impl Promotion {
    pub(crate) fn should_promote(self, misses: usize, dirty_len: usize) -> bool {
        match self {
            Promotion::DirtyLen => misses >= dirty_len,
            Promotion::EveryMiss => true,
            Promotion::AfterMisses(n) => misses >= n.get(),
        }
    }

    /// How many misses `recent` lookups answered by the recent table count for.
    ///
    /// For [`DirtyLen`](Self::DirtyLen), a quarter each: the rule balances the cost of the
    /// rebuild a promotion brings (about one entry copy per dirty entry) against what the
    /// misses cost, and a lookup the recent table answers costs one extra probe of a small
    /// array, not a lock. Counted in full they made churning maps promote and rebuild
    /// far more often (churn10 in `readmostly-bench` at 2 threads: ~80 promotions a second
    /// against one at a quarter, and about twice the throughput). The price:
    /// deleted entries and recent slots wait longer for the rebuild that drops them — a
    /// sliding window of keys (`tests/soak.rs`) holds about a third more memory per live
    /// key (~450 bytes against ~330, tables and garbage included). The explicit rules
    /// count every lookup as a miss.
    pub(crate) fn weigh_recent_lookups(self, recent: u64) -> u64 {
        match self {
            Promotion::DirtyLen => recent / 4,
            Promotion::EveryMiss | Promotion::AfterMisses(_) => recent,
        }
    }

    /// How many more recent-table lookups make the rule promote, given the misses
    /// counted so far (recent lookups already weighed in) and the dirty table's length:
    /// the inverse of [`weigh_recent_lookups`](Self::weigh_recent_lookups), so that
    /// readers can tell without the lock when the rule is worth checking.
    pub(crate) fn recent_lookups_until_due(self, misses: usize, dirty_len: usize) -> u64 {
        match self {
            Promotion::DirtyLen => (dirty_len.saturating_sub(misses) as u64).saturating_mul(4),
            Promotion::EveryMiss => 0,
            Promotion::AfterMisses(n) => n.get().saturating_sub(misses) as u64,
        }
    }

    /// Every how many recent-table lookups (per counter stripe) the rule is checked: a
    /// power of two (so the check is a mask, not a division), at least one.
    pub(crate) fn check_period(self) -> u64 {
        match self {
            Promotion::DirtyLen => 64,
            Promotion::EveryMiss => 1,
            Promotion::AfterMisses(n) => (n.get() as u64).min(64).next_power_of_two(),
        }
    }
}

/// How many keys added since the last promotion lock-free readers can find before the
/// next promotion: the size of the read table's *recent table*.
///
/// Go's `sync.Map` (and this map with [`Off`](Self::Off)) makes a new key reachable
/// only through the lock until the next promotion; worse, once any such key exists every
/// lookup of an absent key takes the lock too. Under key churn that puts most reads on
/// the mutex and makes each promotion an O(n) copy away. The recent table is an
/// insert-only array holding the entries of the keys added since the last promotion,
/// added to and read without the lock: adding a new key, reading it, and reading an
/// absent key stay lock-free. When it is full, the next new key promotes at once and
/// then goes into the new read table's recent table. That promotion does not copy the
/// full table: the new read table keeps it, read-only, beside its main table (lookups
/// that miss the main table probe it before the new recent table), and the rebuild of
/// the dirty table that the new key starts copies its entries in steps, so the next
/// promotion publishes them in the main table. The other promotions move the recent
/// table's entries into the new main table, a pause proportional to its size, reported
/// as [`Stats::longest_promotion_move`](crate::Stats::longest_promotion_move): bulk
/// loads always; promotions driven by lookups only when the table has room and the
/// recent table holds at most 256 rebuild steps' worth of keys (16,384 by default;
/// else they keep it as a level too); [`SyncMap::promote`] after making room (a recent table the rebuilt
/// table has no room for is first kept as a level; see there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RecentKeys {
    /// No recent table: Go's behaviour. New keys then go into the dirty table only, so
    /// each doubling of it rehashes the whole table under the lock.
    Off,
    /// Up to half the read table's size, at least 8 and at most 2^20 (the default). The
    /// slot array starts small when the first key is added after a promotion (room for
    /// 1/32 of the read table, at most 2^13 slots) and doubles as needed (16–32 bytes
    /// per recent key), copying the old array's entries in steps spread over the adds
    /// that follow; each new key pays for about two entry copies of the rebuild that
    /// follows the promotion a full recent table triggers, plus about two slot copies for
    /// the doublings.
    #[default]
    Auto,
    /// Up to `n` keys per promotion, at most 2^20 (larger values are clamped). Small
    /// values are useful in tests: they exercise the promotion a full recent table
    /// triggers.
    AtMost(NonZeroUsize),
}

/// A concurrent hash map for read-mostly data: lock-free reads from an immutable read
/// table; new keys added lock-free to its small recent table while it has room, and
/// through a mutex-protected dirty table to grow or promote it.
///
/// See the [crate documentation](crate) for the design, consistency guarantees and when
/// not to use it.
///
/// ```
/// use readmostly::SyncMap;
///
/// let map = SyncMap::new();
/// map.insert("timeout_ms", 250);
/// assert_eq!(map.get_cloned("timeout_ms"), Some(250));
///
/// // One guard can serve many operations; references live as long as it does.
/// let m = map.pin();
/// let (v, inserted) = m.get_or_insert("retries", 3);
/// assert_eq!((*v, inserted), (3, true));
/// assert_eq!(m.get("timeout_ms"), Some(&250));
/// ```
pub struct SyncMap<K, V, S = DefaultHashBuilder> {
    raw: RawMap<K, V>,
    hasher: S,
    /// The capacity limit enforced by `try_insert`.
    max_len: Option<usize>,
    /// The retire batch the collector was built with (for `Clone`).
    retire_batch: usize,
}

/// A builder for a [`SyncMap`] with a custom hasher or promotion rule.
///
/// ```
/// use readmostly::{Promotion, SyncMap};
///
/// let map: SyncMap<u64, String, std::hash::RandomState> = SyncMap::builder()
///     .hasher(std::hash::RandomState::new())
///     .promotion(Promotion::EveryMiss)
///     .build();
/// map.insert(1, "one".to_string());
/// assert!(map.contains_key(&1));
/// ```
pub struct Builder<K, V, S = DefaultHashBuilder> {
    hasher: S,
    promotion: Promotion,
    recent_keys: RecentKeys,
    retire_batch: usize,
    rebuild_step: usize,
    max_len: Option<usize>,
    hit_statistics: bool,
    _marker: PhantomData<fn() -> (K, V)>,
}

impl<K, V> SyncMap<K, V> {
    /// An empty map with the default hasher and promotion rule. Allocates only the
    /// (empty) read table and the statistics stripes.
    ///
    /// ```
    /// let map: readmostly::SyncMap<u32, u32> = readmostly::SyncMap::new();
    /// assert!(map.is_empty());
    /// ```
    pub fn new() -> Self {
        Self::with_hasher(DefaultHashBuilder::default())
    }

    /// A [`Builder`] starting from the defaults.
    ///
    /// ```
    /// let map: readmostly::SyncMap<u32, u32> = readmostly::SyncMap::builder().build();
    /// assert!(map.is_empty());
    /// ```
    pub fn builder() -> Builder<K, V> {
        Builder {
            hasher: DefaultHashBuilder::default(),
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

impl<K, V, S> Builder<K, V, S> {
    /// Uses `hasher` to hash keys.
    ///
    /// ```
    /// let map: readmostly::SyncMap<u8, u8, std::hash::RandomState> =
    ///     readmostly::SyncMap::builder().hasher(Default::default()).build();
    /// map.insert(1, 2);
    /// assert_eq!(map.get_cloned(&1), Some(2));
    /// ```
    pub fn hasher<S2>(self, hasher: S2) -> Builder<K, V, S2> {
        Builder {
            hasher,
            promotion: self.promotion,
            recent_keys: self.recent_keys,
            retire_batch: self.retire_batch,
            rebuild_step: self.rebuild_step,
            max_len: self.max_len,
            hit_statistics: self.hit_statistics,
            _marker: PhantomData,
        }
    }

    /// Sets the promotion rule (default: [`Promotion::DirtyLen`]).
    ///
    /// ```
    /// use readmostly::{Promotion, SyncMap};
    /// let map: SyncMap<u8, u8> = SyncMap::builder().promotion(Promotion::EveryMiss).build();
    /// map.insert(1, 1);
    /// map.get_cloned(&1); // a miss: promotes at once
    /// assert_eq!(map.stats().promotions, 1);
    /// ```
    pub fn promotion(mut self, promotion: Promotion) -> Self {
        self.promotion = promotion;
        self
    }

    /// Sets the size of the recent table (default: [`RecentKeys::Auto`]).
    ///
    /// ```
    /// use readmostly::{RecentKeys, SyncMap};
    /// let go_like: SyncMap<u8, u8> = SyncMap::builder().recent_keys(RecentKeys::Off).build();
    /// go_like.insert(1, 1);
    /// assert_eq!(go_like.get_cloned(&2), None); // takes the lock: key 1 is dirty-only
    /// assert_eq!(go_like.stats().slow_reads, 1);
    ///
    /// let map: SyncMap<u8, u8> = SyncMap::builder().build();
    /// map.insert(1, 1);
    /// assert_eq!(map.get_cloned(&2), None); // lock-free
    /// assert_eq!(map.get_cloned(&1), Some(1)); // lock-free, from the recent table
    /// // Both lookups missed the main table and consulted the recent table.
    /// assert_eq!((map.stats().slow_reads, map.stats().recent_lookups), (0, 2));
    /// ```
    pub fn recent_keys(mut self, recent_keys: RecentKeys) -> Self {
        self.recent_keys = recent_keys;
        self
    }

    /// How many replaced values, removed entries and replaced tables a thread retires
    /// before handing them to the reclamation scheme together (default 512, rounded up
    /// to a power of two).
    ///
    /// Each hand-over costs a process-wide memory barrier (`membarrier`: an interrupt to
    /// every CPU running one of the process's threads), so small batches make
    /// overwrite-heavy loads slow as soon as several threads run; large batches keep up
    /// to this many retired objects per thread in memory until they are freed, and free
    /// them all at once. The batch also decides when an entry's in-block value slot is
    /// free again: a word-sized value overwritten again before its value before last was
    /// reclaimed (about one batch of the writing thread later) is boxed instead (see the
    /// crate docs, "Performance"). Raise it (2048–8192) for overwrite-heavy loads whose
    /// P99.9 matters, or that run on many cores (the barrier interrupts every CPU running
    /// the process, and its caller waits); lower it for large values, or for small maps
    /// whose keys are all rewritten more often than once per batch. `readmostly-bench
    /// --retire-batch N` measures the trade-off on the machine that matters.
    ///
    /// ```
    /// let map: readmostly::SyncMap<u64, Vec<u8>> =
    ///     readmostly::SyncMap::builder().retire_batch(64).build(); // big values
    /// map.insert(1, vec![0; 1 << 20]);
    /// map.insert(1, vec![1; 1 << 20]); // the first vector waits for its batch
    /// ```
    pub fn retire_batch(mut self, objects: usize) -> Self {
        self.retire_batch = objects;
        self
    }

    /// How many read-table entries one operation copies into the dirty table while the
    /// dirty table is being rebuilt (default 64; 0 counts as 1).
    ///
    /// After a promotion the map has no dirty table; the first new key creates it and
    /// starts copying the read table's live entries into it (Go copies all of them at
    /// once, under the lock, in that first insert). Here the copy advances by at most
    /// `entries` per operation that takes the lock to add a key or to count a miss, and
    /// per new key added without the lock that finds the lock free, so no single
    /// operation pauses for the whole map while the copy keeps up. A promotion must
    /// finish the copy. One driven by lookups or misses waits while more than 16 steps
    /// are left, and each due check of the rule (or locked miss) takes a step meanwhile,
    /// so readers finish a copy that writers left behind; an explicit
    /// [`SyncMap::promote`], and the promotion a full recent table forces when new keys
    /// come faster than the copy and the table has overflowed too, pay for the rest.
    /// `usize::MAX` copies everything in one go, like Go. [`Stats::longest_rebuild_step`]
    /// reports the longest step taken.
    ///
    /// ```
    /// let mut map: readmostly::SyncMap<u32, u32> =
    ///     readmostly::SyncMap::builder().rebuild_step(100).build();
    /// map.extend((0..1_000).map(|k| (k, k))); // one bulk-built table, no dirty table
    /// map.insert(1_000, 0); // starts the rebuild: copies 100 of the 1,000 entries
    /// assert_eq!(map.stats().longest_rebuild_step, 100);
    /// assert_eq!(map.stats().dirty_len, Some(1_001)); // counts what is left to copy
    /// ```
    pub fn rebuild_step(mut self, entries: usize) -> Self {
        self.rebuild_step = entries;
        self
    }

    /// Sets a capacity limit: [`SyncMap::try_insert`] refuses a new key once the map
    /// holds `max_len` keys (default: no limit). Other inserting methods ignore it.
    ///
    /// ```
    /// let map: readmostly::SyncMap<u32, u32> = readmostly::SyncMap::builder().max_len(1).build();
    /// assert!(map.try_insert(1, 1).is_ok());
    /// assert!(map.try_insert(2, 2).is_err());
    /// ```
    pub fn max_len(mut self, max_len: usize) -> Self {
        self.max_len = Some(max_len);
        self
    }

    /// Whether lock-free lookups count [`Stats::hits`] (default: `true`).
    ///
    /// A handle ([`pin`](SyncMap::pin)) looks up its thread's counter stripe once;
    /// each lookup it answers from the read table then costs one increment of that
    /// counter (two instructions, no shared write, no atomic read-modify-write).
    /// `readmostly-bench` measures the cost as the difference between its `syncmap`
    /// and `syncmap-nostats` maps, the `stats_overhead` example as an interleaved A/B.
    /// With `false`, `hits` stays 0; every other statistic is still kept (they are
    /// counted off the read path).
    ///
    /// ```
    /// let map: readmostly::SyncMap<u8, u8> =
    ///     readmostly::SyncMap::builder().hit_statistics(false).build();
    /// map.insert(1, 1);
    /// map.get_cloned(&1);
    /// map.get_cloned(&1);
    /// assert_eq!(map.stats().hits, 0);
    /// ```
    pub fn hit_statistics(mut self, on: bool) -> Self {
        self.hit_statistics = on;
        self
    }

    /// Builds the map.
    ///
    /// ```
    /// let map: readmostly::SyncMap<u8, u8> = readmostly::SyncMap::builder().build();
    /// assert_eq!(map.len(), 0);
    /// ```
    pub fn build(self) -> SyncMap<K, V, S> {
        let mut map = SyncMap::from_parts(
            self.hasher,
            self.promotion,
            self.recent_keys,
            self.retire_batch,
            self.rebuild_step,
            self.hit_statistics,
        );
        map.max_len = self.max_len;
        map
    }
}

impl<K, V, S: fmt::Debug> fmt::Debug for Builder<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("hasher", &self.hasher)
            .field("promotion", &self.promotion)
            .field("recent_keys", &self.recent_keys)
            .field("retire_batch", &self.retire_batch)
            .field("rebuild_step", &self.rebuild_step)
            .field("max_len", &self.max_len)
            .field("hit_statistics", &self.hit_statistics)
            .finish()
    }
}

impl<K, V, S> SyncMap<K, V, S> {
    fn from_parts(
        hasher: S,
        promotion: Promotion,
        recent_keys: RecentKeys,
        retire_batch: usize,
        rebuild_step: usize,
        hit_statistics: bool,
    ) -> Self {
        let collector = Arc::new(reclaim::collector(retire_batch));
        SyncMap {
            raw: RawMap::new(
                promotion,
                recent_keys,
                collector,
                Stripes::new(default_stripes()),
                hit_statistics,
                rebuild_step,
            ),
            hasher,
            max_len: None,
            retire_batch,
        }
    }

    /// The key's hash as the tables use it (the hasher's output, mixed: see `spread`).
    #[inline]
    fn hash<Q: ?Sized + Hash>(&self, key: &Q) -> u64
    where
        S: BuildHasher,
    {
        crate::raw::spread(self.hasher.hash_one(key))
    }

    /// An empty map hashing keys with `hasher`.
    ///
    /// ```
    /// let map = readmostly::SyncMap::with_hasher(std::hash::RandomState::new());
    /// map.insert("k", 1);
    /// assert_eq!(map.len(), 1);
    /// ```
    pub fn with_hasher(hasher: S) -> Self {
        Self::from_parts(
            hasher,
            Promotion::default(),
            RecentKeys::default(),
            DEFAULT_RETIRE_BATCH,
            DEFAULT_REBUILD_STEP,
            true,
        )
    }

    /// The map's hasher.
    ///
    /// ```
    /// use std::hash::BuildHasher;
    /// let map: readmostly::SyncMap<u8, u8> = readmostly::SyncMap::new();
    /// let _h = map.hasher().hash_one(1u8);
    /// ```
    pub fn hasher(&self) -> &S {
        &self.hasher
    }

    /// The promotion rule this map was built with.
    ///
    /// ```
    /// let map: readmostly::SyncMap<u8, u8> = readmostly::SyncMap::new();
    /// assert_eq!(map.promotion(), readmostly::Promotion::DirtyLen);
    /// ```
    pub fn promotion(&self) -> Promotion {
        self.raw.promotion()
    }

    /// The recent-table size this map was built with.
    ///
    /// ```
    /// let map: readmostly::SyncMap<u8, u8> = readmostly::SyncMap::new();
    /// assert_eq!(map.recent_keys(), readmostly::RecentKeys::Auto);
    /// ```
    pub fn recent_keys(&self) -> RecentKeys {
        self.raw.recent_keys()
    }

    /// The rebuild step (see [`Builder::rebuild_step`]).
    ///
    /// ```
    /// let map: readmostly::SyncMap<u8, u8> = readmostly::SyncMap::new();
    /// assert_eq!(map.rebuild_step(), 64);
    /// ```
    pub fn rebuild_step(&self) -> usize {
        self.raw.rebuild_step()
    }

    /// The capacity limit [`try_insert`](Self::try_insert) enforces, if any (see
    /// [`Builder::max_len`]).
    ///
    /// ```
    /// let map: readmostly::SyncMap<u8, u8> = readmostly::SyncMap::new();
    /// assert_eq!(map.max_len(), None);
    /// ```
    pub fn max_len(&self) -> Option<usize> {
        self.max_len
    }

    /// The retire batch the map was built with, as given to [`Builder::retire_batch`]
    /// (the collector uses it rounded up to a power of two, at least 1).
    ///
    /// ```
    /// let map: readmostly::SyncMap<u8, u8> =
    ///     readmostly::SyncMap::builder().retire_batch(64).build();
    /// assert_eq!(map.retire_batch(), 64);
    /// ```
    pub fn retire_batch(&self) -> usize {
        self.retire_batch
    }

    /// Whether handles pinned now count hits (see [`Builder::hit_statistics`] and
    /// [`set_hit_statistics`](SyncMap::set_hit_statistics)).
    ///
    /// ```
    /// let map: readmostly::SyncMap<u8, u8> = readmostly::SyncMap::new();
    /// assert!(map.hit_statistics());
    /// map.set_hit_statistics(false);
    /// assert!(!map.hit_statistics());
    /// ```
    pub fn hit_statistics(&self) -> bool {
        self.raw.counts_hits()
    }

    /// A builder with this map's configuration: hasher, promotion rule, recent keys,
    /// retire batch, rebuild step, capacity limit and hit-statistics setting.
    fn config(&self) -> Builder<K, V, S>
    where
        S: Clone,
    {
        Builder {
            hasher: self.hasher.clone(),
            promotion: self.promotion(),
            recent_keys: self.recent_keys(),
            retire_batch: self.retire_batch,
            rebuild_step: self.rebuild_step(),
            max_len: self.max_len,
            hit_statistics: self.hit_statistics(),
            _marker: PhantomData,
        }
    }

    /// The number of keys present.
    ///
    /// Kept in striped counters updated by writers: exact when no write is in flight,
    /// otherwise a value the map had recently (it may lag concurrent writes).
    ///
    /// ```
    /// let map = readmostly::SyncMap::new();
    /// map.insert(1, 1);
    /// map.insert(2, 2);
    /// map.remove(&1);
    /// assert_eq!(map.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Whether [`len`](Self::len) is zero.
    ///
    /// ```
    /// let map: readmostly::SyncMap<u8, u8> = readmostly::SyncMap::new();
    /// assert!(map.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<K, V, S> SyncMap<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    /// Enters a read-side critical section and returns a handle for guard-scoped access.
    ///
    /// References returned through the handle stay valid until it is dropped, even if
    /// the entries are replaced or removed meanwhile (memory is reclaimed afterwards).
    /// Pinning is cheap (no lock, no allocation) and one pin may serve many operations;
    /// holding a pin for a long time delays reclamation of memory retired meanwhile, so
    /// do not keep one across unbounded waits. The handle is `!Send`; see
    /// [`pin_owned`](Self::pin_owned) for async code.
    ///
    /// ```
    /// let map = readmostly::SyncMap::new();
    /// map.insert(1, "a");
    /// let m = map.pin();
    /// assert_eq!(m.get(&1), Some(&"a"));
    /// ```
    ///
    /// A reference cannot outlive its guard:
    ///
    /// ```compile_fail
    /// let map = readmostly::SyncMap::new();
    /// map.insert(1, 1);
    /// let r = {
    ///     let m = map.pin();
    ///     m.get(&1).unwrap()
    /// };
    /// assert_eq!(*r, 1);
    /// ```
    ///
    /// The handle stays on its thread (use [`pin_owned`](Self::pin_owned) to send one):
    ///
    /// ```compile_fail
    /// let map = readmostly::SyncMap::new();
    /// map.insert(1, 1);
    /// std::thread::scope(|s| {
    ///     let m = map.pin();
    ///     s.spawn(move || assert_eq!(m.get(&1), Some(&1)));
    /// });
    /// ```
    ///
    /// A map is shared between threads only when its keys and values may be (both `Send`
    /// and `Sync`): readers on other threads see `&V`, and values are dropped wherever
    /// their memory is reclaimed.
    ///
    /// ```compile_fail
    /// let map = readmostly::SyncMap::new();
    /// map.insert(1, std::cell::Cell::new(1)); // Cell is not Sync
    /// std::thread::scope(|s| {
    ///     s.spawn(|| map.pin().get(&1).map(|c| c.set(2)));
    /// });
    /// ```
    #[inline]
    pub fn pin(&self) -> MapRef<'_, K, V, S, LocalGuard<'_>> {
        MapRef {
            map: self,
            pinned: self.raw.pin(),
        }
    }

    /// Like [`pin`](Self::pin), with a guard that is `Send` and `Sync`, so the handle may
    /// be held across `.await` points in multi-threaded executors. Slightly more
    /// expensive to create than [`pin`](Self::pin).
    ///
    /// ```
    /// let map = readmostly::SyncMap::new();
    /// map.insert(1, 10);
    /// std::thread::scope(|s| {
    ///     let m = map.pin_owned();
    ///     s.spawn(move || assert_eq!(m.get(&1), Some(&10)));
    /// });
    /// ```
    #[inline]
    pub fn pin_owned(&self) -> MapRef<'_, K, V, S, OwnedGuard<'_>> {
        MapRef {
            map: self,
            pinned: self.raw.pin_owned(),
        }
    }

    /// A clone of the value for `key`.
    ///
    /// ```
    /// let map = readmostly::SyncMap::new();
    /// map.insert("a".to_string(), vec![1, 2]);
    /// assert_eq!(map.get_cloned("a"), Some(vec![1, 2]));
    /// assert_eq!(map.get_cloned("b"), None);
    /// ```
    pub fn get_cloned<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
        V: Clone,
    {
        self.pin().get(key).cloned()
    }

    /// Whether `key` is present.
    ///
    /// ```
    /// let map = readmostly::SyncMap::new();
    /// map.insert(7, ());
    /// assert!(map.contains_key(&7));
    /// assert!(!map.contains_key(&8));
    /// ```
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        self.pin().get(key).is_some()
    }

    /// Calls `f` with the value for `key`, if present, and returns its result. No lock is
    /// held while `f` runs, so `f` may use the map.
    ///
    /// ```
    /// let map = readmostly::SyncMap::new();
    /// map.insert("name", String::from("readmostly"));
    /// assert_eq!(map.with("name", |v| v.len()), Some(10));
    /// ```
    pub fn with<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        self.pin().get(key).map(f)
    }

    /// Sets the value for `key`. Returns whether a previous value was replaced (Go:
    /// `Store`; use [`MapRef::insert`] to see the previous value).
    ///
    /// Lock-free when the key is in the read table and was not removed by a dirty-table
    /// rebuild; otherwise takes the lock (and for a new key may rebuild the dirty table).
    ///
    /// ```
    /// let map = readmostly::SyncMap::new();
    /// assert!(!map.insert(1, "a"));
    /// assert!(map.insert(1, "b"));
    /// assert_eq!(map.get_cloned(&1), Some("b"));
    /// ```
    pub fn insert(&self, key: K, value: V) -> bool {
        self.pin().insert(key, value).is_some()
    }

    /// Like [`insert`](Self::insert), but refuses to add a **new** key once the map holds
    /// [`max_len`](Builder::max_len) keys, giving the key and value back in the error.
    /// Replacing the value of a present key always succeeds. Without a limit this is
    /// `Ok(insert(key, value))`.
    ///
    /// The limit turns a leak (keys that are never removed) into an error instead of an
    /// out-of-memory kill. It is checked against [`len`](Self::len) before inserting, so
    /// threads racing to insert new keys may overshoot it by at most their number.
    ///
    /// ```
    /// use readmostly::SyncMap;
    ///
    /// let map: SyncMap<&str, u32> = SyncMap::builder().max_len(2).build();
    /// assert_eq!(map.try_insert("a", 1), Ok(false));
    /// assert_eq!(map.try_insert("b", 2), Ok(false));
    /// assert_eq!(map.try_insert("a", 10), Ok(true)); // replacing is fine
    /// let err = map.try_insert("c", 3).unwrap_err();
    /// assert_eq!((err.key, err.value, err.max_len), ("c", 3, 2));
    /// println!("{err}"); // "capacity limit reached: ..."
    /// ```
    pub fn try_insert(&self, key: K, value: V) -> Result<bool, CapacityError<K, V>> {
        self.pin().try_insert(key, value).map(|prev| prev.is_some())
    }

    /// Removes `key`. Returns whether it was present (Go: `Delete`; use
    /// [`MapRef::remove`] to see the removed value).
    ///
    /// ```
    /// let map = readmostly::SyncMap::new();
    /// map.insert(1, 1);
    /// assert!(map.remove(&1));
    /// assert!(!map.remove(&1));
    /// ```
    pub fn remove<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        self.pin().remove(key).is_some()
    }

    /// Replaces the value for `key` with `f(value)`, atomically (see [`MapRef::update`]).
    /// Returns whether the key was present; `f` is not called if it was not.
    ///
    /// ```
    /// let map = readmostly::SyncMap::new();
    /// map.insert("hits", 1u64);
    /// assert!(map.update("hits", |n| n + 1));
    /// assert!(!map.update("misses", |n| n + 1));
    /// assert_eq!(map.get_cloned("hits"), Some(2));
    /// ```
    pub fn update<Q>(&self, key: &Q, f: impl FnMut(&V) -> V) -> bool
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        self.pin().update(key, f).is_some()
    }

    /// Keeps only the entries for which `keep` returns `true` (see [`MapRef::retain`]).
    ///
    /// ```
    /// let map: readmostly::SyncMap<u32, u32> = (0..10).map(|i| (i, i)).collect();
    /// map.retain(|_, v| v % 2 == 0);
    /// assert_eq!(map.len(), 5);
    /// ```
    pub fn retain(&self, keep: impl FnMut(&K, &V) -> bool) {
        self.pin().retain(keep);
    }

    /// Removes every key (Go: `Clear`).
    ///
    /// Takes the lock and publishes an empty read table: from then on lookups find
    /// nothing. Then it detaches the old entries (their values are dropped once no guard
    /// can still see them) in steps of 16 × [`Builder::rebuild_step`] entries (1,024 by
    /// default), releasing the lock between steps, so other writers wait for one step at
    /// a time, not for the whole map ([`Stats::longest_clear_step`](crate::Stats::longest_clear_step));
    /// the caller does all the steps and the map is empty when it returns. An insert that
    /// races with `clear` is ordered either before it (and removed) or after it (and
    /// kept).
    ///
    /// ```
    /// let map: readmostly::SyncMap<u32, u32> = (0..10).map(|i| (i, i)).collect();
    /// map.clear();
    /// assert!(map.is_empty());
    /// assert_eq!(map.get_cloned(&3), None);
    /// ```
    pub fn clear(&self) {
        self.pin().clear();
    }

    /// Publishes the dirty table as the read table now, if the read table's main hash
    /// table lacks some keys (keys added since the last promotion, held by the recent
    /// table, or with [`RecentKeys::Off`] by the dirty table only; or keys that an
    /// automatic promotion left in the previous recent table, see [`RecentKeys`]).
    /// Returns whether those keys were published: by this call, or by another thread's
    /// promotion while it stepped through a rebuild; `false` if there was nothing to
    /// publish.
    ///
    /// Promotion normally happens on its own, driven by misses; call this after loading
    /// many keys through a shared reference so that every key is found by the main table
    /// from the first lookup on (each lookup of a recent key otherwise probes the main
    /// table and then the recent table). The next new key then rebuilds the dirty table
    /// (a copy of the read table). With the map to yourself, [`Extend`] (and
    /// [`FromIterator`]) load many keys faster and leave them all in the main table.
    ///
    /// A rebuild of the dirty table still under way must finish before the promotion:
    /// this call finishes it in steps of 16 × [`Builder::rebuild_step`] entries,
    /// releasing the lock between them and letting threads waiting for it go first, so
    /// that other writers wait for one such step at a time rather than for the rest of
    /// the rebuild (the caller does the same work either way). The promotion itself
    /// then moves the recent table's keys into the main table in one go: up to the
    /// recent table's limit ([`RecentKeys`]), about 40 ns per key on the development
    /// machine. The rebuilt table has room for 256 rebuild steps' worth of recent keys
    /// (plus its power-of-two slack); a larger recent table is first kept as a level
    /// and this call steps through the rebuild that starts (sized for the recent
    /// table's whole limit) before moving what came meanwhile, rather than rehash the
    /// whole table under the lock (3 M keys, one writer: its slowest insert 12–13 ms,
    /// against 203–223 ms with the rehash; the call took 0.64–0.75 s instead of 0.4 s).
    /// `examples/promote_pause` (a map of 4 Mi keys, one thread inserting new
    /// keys without pause meanwhile): with the rebuild just started, the writer's
    /// slowest insert went from 199–202 ms to 26 ms (the largest locked section left is
    /// the move of the 0.8–1.0 M keys it added during the call); with 256 Ki new keys
    /// and no rebuild pending, 11 ms either way. Other promotions wait while this call
    /// steps; if a full recent table forces one anyway, the call steps through the
    /// rebuild that starts too, up to a cap, past which it finishes in one go. Keys that
    /// other threads add during the call can overflow the recent table past its limit;
    /// if they no longer fit the rebuilt table they stay in a read-only level (read
    /// lock-free, moved by the next promotion) instead of the table being rehashed
    /// under the lock, so without concurrent writers every key ends in the main table.
    ///
    /// Whether it promoted or not, the call then hands the entries of removed keys that
    /// earlier rebuilds expunged and that still wait ([`Stats::expunged_pending`]) to
    /// the reclaimer, in steps of the same size with the lock released between them.
    /// Promotions hand over up to 16,384 of them at once and later writes the rest a
    /// step at a time, so after removing many keys from a map that is then only read,
    /// call `promote()` to give their memory back.
    ///
    /// ```
    /// let map = readmostly::SyncMap::new();
    /// for k in 0..1_000 {
    ///     map.insert(k, k);
    /// }
    /// assert!(map.stats().recent_len > 0);
    /// assert!(map.promote());
    /// assert_eq!((map.stats().read_len, map.stats().recent_len), (1_000, 0));
    /// assert!(!map.promote()); // nothing left to publish
    /// ```
    pub fn promote(&self) -> bool {
        self.pin().raw().promote()
    }

    /// Items the read table's main table and the dirty table (if any) hold before they
    /// would grow (tests of the tables' sizing).
    #[cfg(test)]
    pub(crate) fn table_capacities(&self) -> (usize, Option<usize>) {
        self.pin().raw().table_capacities()
    }

    /// A snapshot of the map's statistics (takes the lock briefly).
    ///
    /// ```
    /// let map = readmostly::SyncMap::new();
    /// map.insert(1, 1);
    /// map.get_cloned(&1); // a new key: answered by the recent table, without the lock
    /// map.get_cloned(&2); // absent: answered without the lock too
    /// let stats = map.stats();
    /// assert_eq!((stats.recent_lookups, stats.hits, stats.slow_reads), (2, 0, 0));
    /// assert_eq!((stats.read_len, stats.recent_len, stats.dirty_len), (0, 1, Some(1)));
    /// println!("{stats}");
    /// ```
    pub fn stats(&self) -> Stats {
        self.pin().raw().stats()
    }

    /// Turns hit counting on or off at run time (the setting [`Builder::hit_statistics`]
    /// chose at construction): for example on only while an operator investigates a
    /// hit rate. Takes effect for handles pinned afterwards (a [`MapRef`] keeps the
    /// setting it was pinned with); `Stats::hits` keeps what was counted so far.
    ///
    /// ```
    /// let map = readmostly::SyncMap::new();
    /// map.insert(1, 1);
    /// map.promote();
    /// map.set_hit_statistics(false);
    /// map.get_cloned(&1);
    /// assert_eq!(map.stats().hits, 0);
    /// map.set_hit_statistics(true);
    /// map.get_cloned(&1);
    /// assert_eq!(map.stats().hits, 1);
    /// ```
    pub fn set_hit_statistics(&self, on: bool) {
        self.raw.set_count_hits(on);
    }
}

/// An empty map with `S::default()` as its hasher, as for std's `HashMap` and for
/// [`ShardedMap`](crate::ShardedMap) (so `#[derive(Default)]` works on a struct holding a
/// map with another hasher). As with `HashMap::default()`, an expression
/// `SyncMap::default()` needs its hasher type known; `SyncMap::new()` does not.
///
/// ```
/// let map: readmostly::SyncMap<u64, u64, std::hash::RandomState> = Default::default();
/// map.insert(1, 2);
/// assert_eq!(map.get_cloned(&1), Some(2));
/// ```
impl<K, V, S: Default> Default for SyncMap<K, V, S> {
    fn default() -> Self {
        Self::with_hasher(S::default())
    }
}

impl<K, V, S> Clone for SyncMap<K, V, S>
where
    K: Hash + Eq + Clone,
    V: Clone,
    S: BuildHasher + Clone,
{
    /// A new map with this map's configuration (the same hasher, promotion rule, recent
    /// keys, retire batch, rebuild step, capacity limit and hit-statistics setting) and
    /// a copy of every entry [`iter`](MapRef::iter) visits, loaded in one pass: all the
    /// clone's keys are in its read table, and its statistics start at zero.
    ///
    /// Not a snapshot: under concurrent writes the clone holds each key as the iteration
    /// found it, as `iter` describes. A panic in `K::clone` or `V::clone` drops the
    /// partial clone and leaves this map unchanged.
    ///
    /// ```
    /// let map: readmostly::SyncMap<u32, String> =
    ///     (0..3).map(|k| (k, k.to_string())).collect();
    /// let copy = map.clone();
    /// map.insert(3, "3".into());
    /// assert_eq!(copy.len(), 3);
    /// assert_eq!(copy.get_cloned(&2).as_deref(), Some("2"));
    /// assert_ne!(copy, map);
    /// ```
    fn clone(&self) -> Self {
        let mut copy = self.config().build();
        copy.extend(self.pin().iter().map(|(k, v)| (k.clone(), v.clone())));
        copy
    }
}

impl<K, V, S> PartialEq for SyncMap<K, V, S>
where
    K: Hash + Eq,
    V: PartialEq,
    S: BuildHasher,
{
    /// Whether both maps hold the same keys with equal values, as `std`'s `HashMap`
    /// compares: equal lengths, and every entry of `self` found with an equal value in
    /// `other`. The lookups in `other` count no hits (a key of `self` that `other` has
    /// only in its dirty table counts a miss there, as any lookup does).
    ///
    /// Not atomic: under concurrent writes to either map the result reflects no single
    /// moment (each map is read as [`iter`](MapRef::iter) and [`len`](SyncMap::len)
    /// describe).
    ///
    /// ```
    /// use readmostly::SyncMap;
    ///
    /// let a: SyncMap<&str, u32> = [("x", 1), ("y", 2)].into_iter().collect();
    /// let b: SyncMap<&str, u32> = SyncMap::new();
    /// b.insert("y", 2);
    /// assert_ne!(a, b);
    /// b.insert("x", 1);
    /// assert_eq!(a, b);
    /// ```
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.pin(), other.pin());
        if a.len() != b.len() {
            return false;
        }
        let b_raw = b.raw().uncounted();
        a.iter()
            .all(|(k, v)| b_raw.get(other.hash(k), k).is_some_and(|w| v == w))
    }
}

impl<K, V, S> Eq for SyncMap<K, V, S>
where
    K: Hash + Eq,
    V: Eq,
    S: BuildHasher,
{
}

impl<K, V, S> fmt::Debug for SyncMap<K, V, S>
where
    K: Hash + Eq + fmt::Debug,
    V: fmt::Debug,
    S: BuildHasher,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.pin().iter()).finish()
    }
}

impl<K, V, S> FromIterator<(K, V)> for SyncMap<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher + Default,
{
    /// Builds the map's table in one pass (see [`Extend`] for `SyncMap`).
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut map = SyncMap::with_hasher(S::default());
        map.extend(iter);
        map
    }
}

/// Whether `items` new items are worth a bulk load (one copy of the `len` existing
/// entries) rather than one insert each.
pub(crate) fn bulk_worthwhile(items: usize, len: usize) -> bool {
    items >= len / 4
}

impl<K, V, S> Extend<(K, V)> for SyncMap<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    /// A bulk load when the items are many: with the map to itself, `extend` builds a
    /// new read table from the existing entries and `iter`'s items in one pass and
    /// publishes it at once, so every key is then read lock-free from the main table, and
    /// no dirty-table rebuild or promotion runs on the way (inserting the items one by
    /// one, as `Extend` for `&SyncMap` does, promotes each time the recent table fills and
    /// copies the table each time). Because that copies the existing entries once, it is
    /// used when the iterator announces (by its size hint's lower bound) at least a
    /// quarter as many items as the map holds — always for an empty map, as in
    /// `collect()`; fewer items are inserted one by one. Later items win over earlier
    /// ones with the same key. A [`max_len`](Builder::max_len) is not enforced here, as
    /// by [`insert`](Self::insert).
    ///
    /// ```
    /// let mut map: readmostly::SyncMap<u32, u32> = (0..1000).map(|k| (k, k)).collect();
    /// map.extend((500..1500).map(|k| (k, k + 1)).chain([(7, 70)]));
    /// assert_eq!(map.get_cloned(&499), Some(499));
    /// assert_eq!(map.get_cloned(&500), Some(501));
    /// assert_eq!(map.get_cloned(&7), Some(70));
    /// assert_eq!(map.len(), 1500);
    /// let s = map.stats();
    /// // Every key in the main table(s); nothing was rebuilt on the way.
    /// assert_eq!((s.read_len, s.recent_len, s.dirty_len, s.rebuild_copied), (1500, 0, None, 0));
    /// ```
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        let iter = iter.into_iter();
        if !bulk_worthwhile(iter.size_hint().0, self.len()) {
            return (&*self).extend(iter);
        }
        let m = self.pin();
        m.pinned
            .raw()
            .insert_all(iter.map(|(k, v)| (self.hash(&k), k, v)));
    }
}

impl<K, V, S> Extend<(K, V)> for &SyncMap<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        let m = self.pin();
        for (k, v) in iter {
            m.insert(k, v);
        }
    }
}

/// A pinned handle to a [`SyncMap`], from [`SyncMap::pin`] or [`SyncMap::pin_owned`].
///
/// Every reference it returns lives as long as the handle. Holding it keeps memory that
/// is retired meanwhile (replaced values, old tables) from being freed, so drop it when
/// done. It holds no lock: any method of the map may be called while it exists, from
/// any thread.
pub struct MapRef<'m, K, V, S, G> {
    map: &'m SyncMap<K, V, S>,
    pinned: Pinned<'m, K, V, G>,
}

impl<'m, K, V, S, G> MapRef<'m, K, V, S, G>
where
    K: Hash + Eq,
    S: BuildHasher,
    G: Guard,
{
    /// The raw map paired with our guard.
    #[inline]
    fn raw(&self) -> RawRef<'_, K, V, G> {
        self.pinned.raw()
    }

    /// The value for `key` (Go: `Load`).
    ///
    /// When the key is in the read table: no lock, no allocation, no write to shared
    /// memory. Otherwise, if the dirty table may hold it, looks there under the lock and
    /// counts a miss (which may promote the dirty table).
    ///
    /// ```
    /// let map = readmostly::SyncMap::new();
    /// map.insert(String::from("a"), 1);
    /// assert_eq!(map.pin().get("a"), Some(&1));
    /// ```
    #[inline]
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        self.raw().get(self.map.hash(key), key)
    }

    /// The stored key and its value for `key` ([`get`](Self::get), with the key: useful
    /// when equal keys can differ, such as keys carrying data that `Eq` ignores).
    ///
    /// ```
    /// let map = readmostly::SyncMap::new();
    /// map.insert(String::from("a"), 1);
    /// assert_eq!(map.pin().get_key_value("a"), Some((&"a".to_string(), &1)));
    /// assert_eq!(map.pin().get_key_value("b"), None);
    /// ```
    pub fn get_key_value<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        self.raw().get_key_value(self.map.hash(key), key)
    }

    /// Looks up every key of `keys` and calls `f(i, value)` for each, in order: the same
    /// results as calling [`get`](Self::get) on each, but 16 keys at a time, first
    /// requesting all their buckets from memory, then the entry each bucket most likely
    /// holds for its key, then reading each value straight from that entry when it holds
    /// the key (any other key is looked up the ordinary way); so a batch of lookups into
    /// a map larger than the CPU's caches keeps many memory accesses in flight instead
    /// of waiting for each in turn, and most keys are located once, not twice. No
    /// allocation; the requests are prefetch hints and change nothing.
    ///
    /// ```
    /// let map: readmostly::SyncMap<u64, u64> = (0..100).map(|k| (k, k * 10)).collect();
    /// let m = map.pin();
    /// let mut sum = 0;
    /// m.get_each(&[3, 5, 1000], |i, v| {
    ///     assert_eq!(v.is_some(), i < 2);
    ///     sum += v.copied().unwrap_or(0);
    /// });
    /// assert_eq!(sum, 80);
    /// ```
    pub fn get_each<'s, Q>(&'s self, keys: &[Q], f: impl FnMut(usize, Option<&'s V>))
    where
        K: Borrow<Q>,
        Q: Hash + Eq,
    {
        crate::raw::get_each(keys, |k| self.map.hash(k), |_, _| self.raw(), true, f);
    }

    /// Whether `key` is present.
    ///
    /// ```
    /// let map = readmostly::SyncMap::new();
    /// map.insert(1, 1);
    /// assert!(map.pin().contains_key(&1));
    /// ```
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        self.get(key).is_some()
    }

    /// Sets the value for `key` and returns the previous one (Go: `Swap`).
    ///
    /// ```
    /// let map = readmostly::SyncMap::new();
    /// let m = map.pin();
    /// assert_eq!(m.insert(1, "a"), None);
    /// assert_eq!(m.insert(1, "b"), Some(&"a"));
    /// ```
    pub fn insert(&self, key: K, value: V) -> Option<&V> {
        self.raw().insert(self.map.hash(&key), key, value)
    }

    /// Like [`insert`](Self::insert), subject to the map's capacity limit (see
    /// [`SyncMap::try_insert`]). Returns the previous value.
    ///
    /// ```
    /// let map = readmostly::SyncMap::builder().max_len(1).build();
    /// let m = map.pin();
    /// assert_eq!(m.try_insert(1, "a"), Ok(None));
    /// assert_eq!(m.try_insert(1, "b"), Ok(Some(&"a")));
    /// assert!(m.try_insert(2, "c").is_err());
    /// ```
    pub fn try_insert(&self, key: K, value: V) -> Result<Option<&V>, CapacityError<K, V>> {
        if let Some(max_len) = self.map.max_len {
            // At the limit: is the key there (an overwrite)? Not counted as a hit: the
            // caller asked for a write.
            let present = || {
                let hash = self.map.hash(&key);
                self.raw().uncounted().get(hash, &key).is_some()
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
    /// inserted (Go: `LoadOrStore`). Atomic: of many racing calls exactly one inserts.
    /// `value` is dropped if not inserted.
    ///
    /// ```
    /// let map = readmostly::SyncMap::new();
    /// let m = map.pin();
    /// assert_eq!(m.get_or_insert("k", 1), (&1, true));
    /// assert_eq!(m.get_or_insert("k", 2), (&1, false));
    /// ```
    pub fn get_or_insert(&self, key: K, value: V) -> (&V, bool) {
        self.raw().get_or_insert(self.map.hash(&key), key, value)
    }

    /// Like [`get_or_insert`](Self::get_or_insert), building the value only when the key
    /// is absent. `make` runs at most once, with no lock held (it may use the map); if
    /// another thread inserts the key while `make` runs, that value wins and `make`'s
    /// result is dropped (the flag is then `false`).
    ///
    /// ```
    /// let map = readmostly::SyncMap::new();
    /// let m = map.pin();
    /// let (v, inserted) = m.get_or_insert_with("config", || String::from("loaded"));
    /// assert_eq!((v.as_str(), inserted), ("loaded", true));
    /// let (_, inserted) = m.get_or_insert_with("config", || unreachable!());
    /// assert!(!inserted);
    /// ```
    pub fn get_or_insert_with(&self, key: K, make: impl FnOnce() -> V) -> (&V, bool) {
        self.raw()
            .get_or_insert_with(self.map.hash(&key), key, make)
    }

    /// Like [`get_or_insert_with`](Self::get_or_insert_with) with a fallible `make` (a
    /// load from a backend that may fail): if `make` returns an error, nothing is
    /// inserted and the error is returned. `make` runs only if the key is absent, at most
    /// once, with no lock held.
    ///
    /// ```
    /// let map: readmostly::SyncMap<&str, u32> = readmostly::SyncMap::new();
    /// let m = map.pin();
    /// let load = |text: &str| text.parse::<u32>();
    /// assert!(m.get_or_try_insert_with("port", || load("eighty")).is_err());
    /// assert!(!map.contains_key("port"), "a failed load inserts nothing");
    /// assert_eq!(m.get_or_try_insert_with("port", || load("80")), Ok((&80, true)));
    /// assert_eq!(m.get_or_try_insert_with("port", || load("81")), Ok((&80, false)));
    /// ```
    pub fn get_or_try_insert_with<E>(
        &self,
        key: K,
        make: impl FnOnce() -> Result<V, E>,
    ) -> Result<(&V, bool), E> {
        self.raw()
            .get_or_try_insert_with(self.map.hash(&key), key, make)
    }

    /// Removes `key` and returns its value (Go: `LoadAndDelete`).
    ///
    /// ```
    /// let map = readmostly::SyncMap::new();
    /// map.insert(1, "a");
    /// let m = map.pin();
    /// assert_eq!(m.remove(&1), Some(&"a"));
    /// assert_eq!(m.remove(&1), None);
    /// ```
    pub fn remove<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        self.raw().remove(self.map.hash(key), key)
    }

    /// Replaces the value for `key` with `new` if it equals `current` (Go:
    /// `CompareAndSwap`). On success returns the replaced value; on failure gives `new`
    /// back with the value found (`None` if the key is absent).
    ///
    /// `V::eq` runs with no lock held and may run more than once if other threads
    /// replace the value concurrently.
    ///
    /// ```
    /// let map = readmostly::SyncMap::new();
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
        V: PartialEq,
    {
        self.raw()
            .compare_exchange(self.map.hash(key), key, current, new)
            .map_err(|(current, new)| CompareExchangeError { current, new })
    }

    /// Replaces the value for `key` with `f(value)` and returns the new value; `None`
    /// (without calling `f`) if the key is absent. Never inserts.
    ///
    /// Atomic with respect to the value `f` saw, like a loop of
    /// [`compare_exchange`](Self::compare_exchange) calls but comparing by identity
    /// (`V` needs no `PartialEq`): the new value is stored only if the value passed to
    /// `f` is still the key's value, otherwise `f` runs again with the value found. So
    /// concurrent updates are never lost, and `f` may run more than once: keep it free of
    /// side effects beyond computing the value. It runs with no lock held. If it panics,
    /// the map is unchanged.
    ///
    /// The key is looked up as [`get`](Self::get) does (under the lock only if the read
    /// table does not have it and the dirty table may); the lock is released before `f`
    /// runs, and the value is replaced with a compare-and-swap.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let map = Arc::new(readmostly::SyncMap::new());
    /// map.insert("requests", 0u64);
    /// let threads: Vec<_> = (0..4)
    ///     .map(|_| {
    ///         let map = Arc::clone(&map);
    ///         std::thread::spawn(move || {
    ///             for _ in 0..100 {
    ///                 map.pin().update("requests", |n| n + 1);
    ///             }
    ///         })
    ///     })
    ///     .collect();
    /// for t in threads {
    ///     t.join().unwrap();
    /// }
    /// assert_eq!(map.get_cloned("requests"), Some(400)); // no update lost
    /// assert_eq!(map.pin().update("absent", |n| n + 1), None);
    /// ```
    pub fn update<Q>(&self, key: &Q, f: impl FnMut(&V) -> V) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        self.raw().update(self.map.hash(key), key, f)
    }

    /// Removes `key` if `predicate` approves its value, and returns the removed value
    /// (Go: `CompareAndDelete`, generalised). Atomic with respect to the value the
    /// predicate saw; the predicate runs with no lock held and runs again if the value is
    /// replaced between the check and the removal.
    ///
    /// ```
    /// let map = readmostly::SyncMap::new();
    /// map.insert("session", 3);
    /// let m = map.pin();
    /// assert_eq!(m.remove_if("session", |v| *v > 5), None);
    /// assert_eq!(m.remove_if("session", |v| *v == 3), Some(&3));
    /// ```
    pub fn remove_if<Q>(&self, key: &Q, predicate: impl FnMut(&V) -> bool) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        self.raw().remove_if(self.map.hash(key), key, predicate)
    }

    /// Iterates over the entries (Go: `Range`).
    ///
    /// Takes a snapshot of the key set and reads each value when visited. With
    /// [`RecentKeys::Off`], a dirty table holding new keys is promoted first, as
    /// [`SyncMap::promote`] does: a pending rebuild is finished in bounded steps, the
    /// lock released between them, so this call's time grows with the map but other
    /// threads wait for one step at a time; with the recent table on (the default),
    /// taking the snapshot is O(1). Every key present for the
    /// whole iteration is visited exactly once, with a value it had during the
    /// iteration; keys inserted or removed meanwhile may or may not be visited; no key is
    /// visited twice. No lock is held while iterating: the loop body may call any method.
    ///
    /// ```
    /// let map: readmostly::SyncMap<u32, u32> = (0..4).map(|i| (i, i * 10)).collect();
    /// let m = map.pin();
    /// let mut seen: Vec<_> = m.iter().map(|(k, v)| (*k, *v)).collect();
    /// seen.sort();
    /// assert_eq!(seen, [(0, 0), (1, 10), (2, 20), (3, 30)]);
    /// for (k, _) in m.iter() {
    ///     m.remove(k); // allowed while iterating
    /// }
    /// assert!(map.is_empty());
    /// ```
    ///
    /// The iterator of a [`pin_owned`](SyncMap::pin_owned) handle is `Send` (it may live
    /// across `.await`); that of a [`pin`](SyncMap::pin) handle stays on its thread:
    ///
    /// ```compile_fail
    /// let map: readmostly::SyncMap<u32, u32> = (0..4).map(|k| (k, k)).collect();
    /// let m = map.pin();
    /// let mut it = m.iter();
    /// std::thread::scope(|s| {
    ///     s.spawn(move || it.next());
    /// });
    /// ```
    pub fn iter(&self) -> Iter<'_, K, V, G> {
        Iter {
            raw: self.raw().iter(),
        }
    }

    /// The keys, visited as [`iter`](Self::iter) visits entries.
    ///
    /// ```
    /// let map: readmostly::SyncMap<u32, u32> = (0..3).map(|k| (k, 0)).collect();
    /// let mut keys: Vec<u32> = map.pin().keys().copied().collect();
    /// keys.sort();
    /// assert_eq!(keys, [0, 1, 2]);
    /// ```
    pub fn keys(&self) -> Keys<Iter<'_, K, V, G>> {
        Keys::new(self.iter())
    }

    /// The values, visited as [`iter`](Self::iter) visits entries.
    ///
    /// ```
    /// let map: readmostly::SyncMap<u32, u32> = (0..3).map(|k| (k, k * 10)).collect();
    /// assert_eq!(map.pin().values().sum::<u32>(), 30);
    /// ```
    pub fn values(&self) -> Values<Iter<'_, K, V, G>> {
        Values::new(self.iter())
    }

    /// Keeps only the entries for which `keep` returns `true`, visiting entries as
    /// [`iter`](Self::iter) does. Each removal is conditional on the value `keep` saw; if
    /// another thread replaces it first, `keep` is asked again about the new value.
    ///
    /// ```
    /// let map: readmostly::SyncMap<u32, u32> = (0..6).map(|i| (i, i)).collect();
    /// map.pin().retain(|k, _| *k < 3);
    /// assert_eq!(map.len(), 3);
    /// ```
    pub fn retain(&self, keep: impl FnMut(&K, &V) -> bool) {
        self.raw().retain(keep);
    }

    /// Removes every key (see [`SyncMap::clear`]).
    ///
    /// ```
    /// let map = readmostly::SyncMap::new();
    /// map.insert(1, 1);
    /// map.pin().clear();
    /// assert!(map.is_empty());
    /// ```
    pub fn clear(&self) {
        self.raw().clear();
    }

    /// The number of keys present (see [`SyncMap::len`]).
    ///
    /// ```
    /// let map = readmostly::SyncMap::new();
    /// map.insert(1, 1);
    /// assert_eq!(map.pin().len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the map is empty.
    ///
    /// ```
    /// let map: readmostly::SyncMap<u8, u8> = readmostly::SyncMap::new();
    /// assert!(map.pin().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<K, V, S, G> fmt::Debug for MapRef<'_, K, V, S, G>
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

impl<K, V, S> IntoIterator for SyncMap<K, V, S> {
    type Item = (K, V);
    type IntoIter = IntoIter<K, V>;

    /// Takes the map apart, yielding every key with its value, in no particular order.
    ///
    /// It owns the map, so no other thread can be using it: every present key and value
    /// is moved out of its entry (no `Clone` needed) into a buffer that the iterator
    /// drains (one allocation of `len` pairs). Values replaced or removed earlier and
    /// not yet freed are dropped before this returns, with the map's reclamation state.
    ///
    /// ```
    /// use readmostly::SyncMap;
    ///
    /// let map: SyncMap<String, Vec<u8>> = SyncMap::new();
    /// map.insert("a".into(), vec![1]);
    /// map.insert("b".into(), vec![2]);
    /// map.remove("a");
    /// let mut pairs: Vec<(String, Vec<u8>)> = map.into_iter().collect();
    /// pairs.sort();
    /// assert_eq!(pairs, [("b".to_string(), vec![2])]);
    /// ```
    fn into_iter(self) -> IntoIter<K, V> {
        let mut pairs = Vec::new();
        self.raw.into_pairs(&mut pairs);
        IntoIter::new(pairs)
    }
}

/// Owning iterator over a map's keys and values, from [`IntoIterator`] for [`SyncMap`]
/// or [`ShardedMap`](crate::ShardedMap).
pub struct IntoIter<K, V> {
    pairs: std::vec::IntoIter<(K, V)>,
}

impl<K, V> IntoIter<K, V> {
    pub(crate) fn new(pairs: Vec<(K, V)>) -> Self {
        IntoIter {
            pairs: pairs.into_iter(),
        }
    }
}

impl<K, V> Iterator for IntoIter<K, V> {
    type Item = (K, V);

    fn next(&mut self) -> Option<(K, V)> {
        self.pairs.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.pairs.size_hint()
    }
}

impl<K, V> ExactSizeIterator for IntoIter<K, V> {}

impl<K, V> std::iter::FusedIterator for IntoIter<K, V> {}

impl<K, V> fmt::Debug for IntoIter<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntoIter")
            .field("remaining", &self.pairs.len())
            .finish()
    }
}

/// Iterator over a [`SyncMap`]'s entries, from [`MapRef::iter`].
pub struct Iter<'g, K, V, G> {
    raw: RawIter<'g, K, V, G>,
}

impl<'g, K, V, G: Guard> Iterator for Iter<'g, K, V, G> {
    type Item = (&'g K, &'g V);

    fn next(&mut self) -> Option<Self::Item> {
        self.raw.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.raw.size_hint()
    }
}

/// Once exhausted it stays exhausted: the snapshot's tables are walked once, in order.
impl<K, V, G: Guard> std::iter::FusedIterator for Iter<'_, K, V, G> {}

impl<K, V, G> fmt::Debug for Iter<'_, K, V, G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").finish_non_exhaustive()
    }
}

impl<'g, 'm, K, V, S, G> IntoIterator for &'g MapRef<'m, K, V, S, G>
where
    K: Hash + Eq,
    S: BuildHasher,
    G: Guard,
{
    type Item = (&'g K, &'g V);
    type IntoIter = Iter<'g, K, V, G>;

    /// [`MapRef::iter`], for `for` loops.
    ///
    /// ```
    /// let map: readmostly::SyncMap<u32, u32> = (0..4).map(|k| (k, k)).collect();
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

/// Iterator over a map's keys, from [`MapRef::keys`] or
/// [`ShardedRef::keys`](crate::ShardedRef::keys).
pub struct Keys<I> {
    inner: I,
}

impl<'g, K: 'g, V: 'g, I: Iterator<Item = (&'g K, &'g V)>> Iterator for Keys<I> {
    type Item = &'g K;

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|(k, _)| k)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<'g, K: 'g, V: 'g, I: std::iter::FusedIterator<Item = (&'g K, &'g V)>> std::iter::FusedIterator
    for Keys<I>
{
}

impl<I> fmt::Debug for Keys<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys").finish_non_exhaustive()
    }
}

/// Iterator over a map's values, from [`MapRef::values`] or
/// [`ShardedRef::values`](crate::ShardedRef::values).
pub struct Values<I> {
    inner: I,
}

impl<'g, K: 'g, V: 'g, I: Iterator<Item = (&'g K, &'g V)>> Iterator for Values<I> {
    type Item = &'g V;

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|(_, v)| v)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<'g, K: 'g, V: 'g, I: std::iter::FusedIterator<Item = (&'g K, &'g V)>> std::iter::FusedIterator
    for Values<I>
{
}

impl<I> fmt::Debug for Values<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Values").finish_non_exhaustive()
    }
}

impl<I> Keys<I> {
    pub(crate) fn new(inner: I) -> Self {
        Keys { inner }
    }
}

impl<I> Values<I> {
    pub(crate) fn new(inner: I) -> Self {
        Values { inner }
    }
}

/// The error of [`MapRef::compare_exchange`]: the value found and the value not stored.
#[derive(Debug, PartialEq, Eq)]
pub struct CompareExchangeError<'g, V> {
    /// The value the key had when the comparison failed (`None`: absent).
    pub current: Option<&'g V>,
    /// The value that was not stored, given back.
    pub new: V,
}

impl<V> fmt::Display for CompareExchangeError<'_, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.current {
            Some(_) => f.write_str(
                "compare_exchange failed: the current value differs from the expected one",
            ),
            None => f.write_str("compare_exchange failed: the key is absent"),
        }
    }
}

impl<V: fmt::Debug> std::error::Error for CompareExchangeError<'_, V> {}

/// The error of `try_insert` ([`SyncMap::try_insert`], [`ShardedMap::try_insert`](crate::ShardedMap::try_insert)):
/// the key was new and the map's count of its keys, when checked, was at least
/// `max_len`. Concurrent callers can each pass the check before any of them inserts, and
/// a [`ShardedMap`](crate::ShardedMap) sums its count shard by shard (see its
/// `try_insert`), so the limit bounds growth rather than fixing an exact occupancy.
/// Gives the key and the value back.
///
/// ```
/// let map = readmostly::SyncMap::builder().max_len(0).build();
/// let err = map.try_insert("k", 1).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "capacity limit reached: the map counted at least 0 keys (max_len), a new key was not inserted"
/// );
/// let (k, v) = err.into_inner();
/// assert_eq!((k, v), ("k", 1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapacityError<K, V> {
    /// The key that was not inserted.
    pub key: K,
    /// The value that was not inserted.
    pub value: V,
    /// The map's capacity limit.
    pub max_len: usize,
}

impl<K, V> CapacityError<K, V> {
    /// The key and value that were not inserted.
    ///
    /// ```
    /// let map = readmostly::SyncMap::builder().max_len(0).build();
    /// assert_eq!(map.try_insert(1, 2).unwrap_err().into_inner(), (1, 2));
    /// ```
    pub fn into_inner(self) -> (K, V) {
        (self.key, self.value)
    }
}

impl<K, V> fmt::Display for CapacityError<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "capacity limit reached: the map counted at least {} keys (max_len), a new key was not inserted",
            self.max_len
        )
    }
}

impl<K: fmt::Debug, V: fmt::Debug> std::error::Error for CapacityError<K, V> {}
