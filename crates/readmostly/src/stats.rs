//! Statistics: striped counters for the hot paths and the public [`Stats`] snapshot.
// One `unsafe` block: the unchecked stripe index on the read path (see `Stripes::stripe`).
#![deny(unsafe_code)]

use std::fmt;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::Arc;
// Deliberately std atomics even under loom: these are statistics, not part of the
// protocol being model-checked, and modelling them would only blow up the state space.
use std::sync::atomic::{AtomicIsize, AtomicU64};

/// One cache-line-padded stripe (128 bytes: adjacent-line prefetch pairs lines on x86).
///
/// Two 64-byte halves: the first holds the counters of reads and overwrites (`hits` is
/// written by every read the read table answers), the second those of added and removed
/// keys. Whoever sums `len` (a capacity check before every `try_insert`) or `fills` (a
/// promotion) then reads lines that only writes of new or removed keys dirty, not lines
/// that every reader's hit counting takes away from the summing core.
#[repr(C, align(128))]
#[derive(Debug, Default)]
struct Stripe {
    hits: AtomicU64,
    /// Values replaced in place (lock-free overwrites and compare-exchanges).
    overwrites: AtomicU64,
    /// Lookups that consulted the recent table.
    recent_lookups: AtomicU64,
    /// Fills the first half up to 64 bytes.
    _read_half: [u64; 5],
    len: AtomicIsize,
    /// Keys removed (written together with `len`, so no extra cache line is touched).
    removes: AtomicU64,
    /// New keys added without the lock (the others are counted under it).
    new_keys: AtomicU64,
    /// Recent-table adds that filled a slot, lock-free or under the lock. Not a
    /// statistic: the protocol counter by which a thread closing a recent slot array
    /// learns that no add is in flight any more (`raw::Recent::close_locked`), so an
    /// atomic of the `sync` shim, modelled under loom and shuttle. Next to `new_keys` and
    /// `len`, which a lock-free add writes too: no extra cache line.
    fills: crate::sync::AtomicU64,
}

// The key counters start the second line (under loom and shuttle `fills` is their
// atomic, of another size: the layout is checked for the real build only).
#[cfg(not(any(loom, shuttle)))]
const _: () = {
    assert!(std::mem::offset_of!(Stripe, len) == 64);
    assert!(std::mem::size_of::<Stripe>() == 128);
};

/// The default stripe count: twice the available parallelism, at least 4, at most 256.
pub(crate) fn default_stripes() -> usize {
    let threads = std::thread::available_parallelism().map_or(4, usize::from);
    (threads * 2).clamp(4, 256)
}

/// The most stripes a statistics block has (128 KiB of counters): more than any
/// machine's threads can use, since threads pick a stripe by their reclamation id.
pub(crate) const MAX_STRIPES: usize = 1 << 10;

/// `n` rounded up to a power of two between one and [`MAX_STRIPES`].
fn stripe_count(n: usize) -> usize {
    // Clamped before rounding: `next_power_of_two` of more than 2^63 wraps to 0 in
    // release builds, and an empty array with a mask of `usize::MAX` would make the
    // stripe index out of bounds.
    n.clamp(1, MAX_STRIPES).next_power_of_two()
}

/// Per-thread striped counters.
///
/// A thread uses the stripe selected by its reclamation-thread id, so threads rarely
/// share a cache line; reads therefore never write a line that other threads write.
#[derive(Debug)]
pub(crate) struct Stripes {
    stripes: Box<[Stripe]>,
    mask: usize,
    /// The key count of the whole sharded map this map is a shard of, when that map
    /// keeps one ([`TotalLen`]); every change of `len` is added to it too.
    total: Option<Arc<TotalLen>>,
}

/// The key count of a whole [`ShardedMap`](crate::ShardedMap) with a capacity limit,
/// striped per thread like [`Stripes`] and updated by its shards together with their own
/// `len`.
///
/// `try_insert` checks the limit before each call; summing every shard's stripes for
/// that costs shards × stripes loads (1,024 lines with 64 shards and 16 stripes), while
/// this sum costs one load per stripe, of lines written only when a key is added or
/// removed. The price is a second increment, on a line of the writing thread's own, for
/// every added or removed key of such a map.
#[derive(Debug)]
pub(crate) struct TotalLen {
    counts: Box<[PaddedLen]>,
    mask: usize,
}

/// One stripe of a [`TotalLen`], on its own 128 bytes.
#[repr(align(128))]
#[derive(Debug, Default)]
struct PaddedLen(AtomicIsize);

impl TotalLen {
    /// `n` stripes, rounded as [`Stripes::new`] rounds its count (any count would do:
    /// a thread's stripe only spreads the writes).
    pub(crate) fn new(n: usize) -> Self {
        let n = stripe_count(n);
        TotalLen {
            counts: (0..n).map(|_| PaddedLen::default()).collect(),
            mask: n - 1,
        }
    }

    #[inline]
    fn add(&self, thread: usize, delta: isize) {
        // Safe indexing: on the write path of new and removed keys only, where a
        // bounds check is noise.
        // Relaxed: a counter, exact once writers have finished (as `Stripes::add_len`).
        self.counts[thread & self.mask].0.fetch_add(delta, Relaxed);
    }

    /// The sum of the stripes (0 if the racing updates of other threads make it
    /// negative).
    pub(crate) fn len(&self) -> usize {
        // Relaxed: see `add`.
        let sum: isize = self.counts.iter().map(|c| c.0.load(Relaxed)).sum();
        usize::try_from(sum).unwrap_or(0)
    }
}

/// Sums of the striped counters.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct StripedTotals {
    pub(crate) hits: u64,
    pub(crate) removes: u64,
    pub(crate) overwrites: u64,
    pub(crate) recent_lookups: u64,
    pub(crate) new_keys: u64,
    pub(crate) len: usize,
}

/// Adds `n` to a counter with a plain load + store instead of a locked
/// read-modify-write, and returns the new count. Two threads that share a stripe can
/// lose an increment (approximate count).
#[inline]
fn bump_by(counter: &AtomicU64, n: u64) -> u64 {
    // Relaxed: statistic only.
    let sum = counter.load(Relaxed).wrapping_add(n);
    // Relaxed: as above.
    counter.store(sum, Relaxed);
    sum
}

/// [`bump_by`] one.
#[inline]
fn bump(counter: &AtomicU64) -> u64 {
    bump_by(counter, 1)
}

/// A stripe's hit counter (a std atomic even under loom, like every statistic).
pub(crate) type HitCounter = AtomicU64;

/// Counts a read answered from the read table on a counter from
/// [`Stripes::hit_counter`].
///
/// A plain load + store rather than `fetch_add`: a locked read-modify-write costs as much
/// as a quarter of a cached lookup. Two threads that share a stripe can lose an
/// increment, so the hit count is approximate (exact with one thread per stripe).
#[inline]
pub(crate) fn count_hit(counter: &HitCounter) {
    bump(counter);
}

/// Counts `n` reads answered from the read table at once (approximate like
/// [`count_hit`]).
#[inline]
pub(crate) fn count_hits(counter: &HitCounter, n: u64) {
    bump_by(counter, n);
}

impl Stripes {
    /// `n` stripes, rounded up to a power of two, between one and [`MAX_STRIPES`].
    pub(crate) fn new(n: usize) -> Self {
        Self::with_total(n, None)
    }

    /// [`new`](Self::new), adding every change of the key count to `total` as well
    /// (the shards of a [`ShardedMap`](crate::ShardedMap) with a capacity limit).
    pub(crate) fn with_total(n: usize, total: Option<Arc<TotalLen>>) -> Self {
        let n = stripe_count(n);
        // Under loom, two stripes: closing a recent slot array sums the fill counters, and
        // every stripe is one more atomic in each explored execution.
        #[cfg(loom)]
        let n = n.min(2);
        Stripes {
            stripes: (0..n).map(|_| Stripe::default()).collect(),
            mask: n - 1,
            total,
        }
    }

    #[inline]
    #[allow(unsafe_code)]
    fn stripe(&self, thread: usize) -> &Stripe {
        let i = thread & self.mask;
        debug_assert!(i < self.stripes.len());
        // SAFETY: `stripes.len()` is a power of two and `mask` is `stripes.len() - 1`
        // (both set in `new`, never changed), so `i <= mask < stripes.len()`. Unchecked
        // because the bounds check is a third of what a hit costs to count.
        unsafe { self.stripes.get_unchecked(i) }
    }

    /// The hit counter of `thread`'s stripe, for [`count_hit`]: a handle looks it up once
    /// and then counts each hit with one increment.
    #[inline]
    pub(crate) fn hit_counter(&self, thread: usize) -> &HitCounter {
        &self.stripe(thread).hits
    }

    /// Counts a lookup that consulted the recent table; returns the stripe's new count
    /// (approximate like [`count_hit`]).
    #[inline]
    pub(crate) fn recent_lookup(&self, thread: usize) -> u64 {
        bump(&self.stripe(thread).recent_lookups)
    }

    /// Lookups that consulted the recent table, summed over the stripes.
    pub(crate) fn recent_lookups(&self) -> u64 {
        self.stripes
            .iter()
            // Relaxed: statistic only.
            .map(|s| s.recent_lookups.load(Relaxed))
            .fold(0, u64::wrapping_add)
    }

    /// Counts a value replaced in place (approximate like [`count_hit`]: it is on
    /// the lock-free overwrite path).
    #[inline]
    pub(crate) fn overwrite(&self, thread: usize) {
        bump(&self.stripe(thread).overwrites);
    }

    /// Adds `delta` to the number of present keys (writes only, so a real RMW).
    #[inline]
    pub(crate) fn add_len(&self, thread: usize, delta: isize) {
        // Relaxed: a counter; `len()` is documented as approximate under concurrency and
        // exact once writers have finished (their completion happens-before the reader).
        self.stripe(thread).len.fetch_add(delta, Relaxed);
        if let Some(total) = &self.total {
            total.add(thread, delta);
        }
    }

    /// Counts a new key added without the lock.
    #[inline]
    pub(crate) fn new_key(&self, thread: usize) {
        // Relaxed: statistic only.
        self.stripe(thread).new_keys.fetch_add(1, Relaxed);
    }

    /// Counts a recent-table add that filled a slot (after the slot's compare-and-swap).
    #[inline]
    pub(crate) fn recent_fill(&self, thread: usize) {
        // Release: the fill, sequenced before, happens-before whoever reads this count
        // with Acquire (`recent_fills`): a thread closing the slot array, which then walks
        // the slots.
        self.stripe(thread).fills.fetch_add(1, Release);
    }

    /// Recent-table adds that filled a slot, summed over the stripes (wrapping).
    pub(crate) fn recent_fills(&self) -> u64 {
        self.stripes
            .iter()
            // Acquire: pairs with the Release in `recent_fill`.
            .map(|s| s.fills.load(Acquire))
            .fold(0, u64::wrapping_add)
    }

    /// Counts `n` removed keys: subtracts them from the length and adds them to `removes`.
    #[inline]
    pub(crate) fn remove_keys(&self, thread: usize, n: usize) {
        let stripe = self.stripe(thread);
        // Relaxed: as in `add_len`.
        stripe.len.fetch_sub(n as isize, Relaxed);
        // Relaxed: statistic only.
        stripe.removes.fetch_add(n as u64, Relaxed);
        if let Some(total) = &self.total {
            total.add(thread, -(n as isize));
        }
    }

    /// How many stripes there are.
    #[cfg(test)]
    pub(crate) fn stripe_count(&self) -> usize {
        self.stripes.len()
    }

    pub(crate) fn len(&self) -> usize {
        // Relaxed: see `add_len`.
        let sum: isize = self.stripes.iter().map(|s| s.len.load(Relaxed)).sum();
        usize::try_from(sum).unwrap_or(0)
    }

    /// Every striped counter, summed.
    pub(crate) fn totals(&self) -> StripedTotals {
        let mut t = StripedTotals::default();
        let mut len = 0isize;
        for s in self.stripes.iter() {
            // Relaxed: statistics only (and `len` as in `add_len`).
            t.hits = t.hits.wrapping_add(s.hits.load(Relaxed));
            t.removes = t.removes.wrapping_add(s.removes.load(Relaxed));
            t.overwrites = t.overwrites.wrapping_add(s.overwrites.load(Relaxed));
            t.new_keys = t.new_keys.wrapping_add(s.new_keys.load(Relaxed));
            t.recent_lookups = t
                .recent_lookups
                .wrapping_add(s.recent_lookups.load(Relaxed));
            len += s.len.load(Relaxed);
        }
        t.len = usize::try_from(len).unwrap_or(0);
        t
    }
}

/// Counters kept under the dirty-table mutex (every event they count takes it anyway).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct LockedCounters {
    pub(crate) misses: u64,
    /// Lookups that took the lock (`find_entry_slow`).
    pub(crate) slow_reads: u64,
    pub(crate) promotions: u64,
    pub(crate) rebuilds: u64,
    pub(crate) rebuild_copied: u64,
    pub(crate) expunged: u64,
    /// The most read-table entries one operation visited (copied or expunged) while
    /// rebuilding the dirty table.
    pub(crate) longest_rebuild_step: u64,
    /// The most recent-table entries one promotion moved into the new main table (0 for
    /// one that kept them as a level).
    pub(crate) longest_promotion_move: u64,
    /// The most entries one operation copied to double the recent table's slot array.
    pub(crate) longest_recent_growth: u64,
    /// The most entries a `clear` detached under one hold of the lock.
    pub(crate) longest_clear_step: u64,
    pub(crate) new_keys: u64,
    /// Promotions forced by a full recent table.
    pub(crate) recent_full: u64,
    /// Entries retired (detached by `remove`/`clear`, dropped expunged by a promotion).
    pub(crate) retired_entries: u64,
    /// Read tables retired (replaced by a promotion or `clear`).
    pub(crate) retired_tables: u64,
    /// Estimated bytes of the retired read tables.
    pub(crate) retired_table_bytes: u64,
}

impl LockedCounters {
    /// A read table of `bytes` estimated bytes (measured when it was retired, recent
    /// slots included) was replaced and retired.
    pub(crate) fn table_replaced(&mut self, bytes: u64) {
        self.retired_tables += 1;
        self.retired_table_bytes += bytes;
    }
}

/// A snapshot of a map's statistics, from [`SyncMap::stats`](crate::SyncMap::stats) or
/// [`ShardedMap::stats`](crate::ShardedMap::stats).
///
/// Counters are cumulative since the map was created. Under concurrent use the snapshot
/// is not atomic as a whole, and `hits` and `overwrites` may slightly undercount (see the
/// crate docs). Snapshots of several maps (the shards of a `ShardedMap`) add up with
/// [`Sum`](std::iter::Sum) / [`merge`](Stats::merge).
///
/// ```
/// let map = readmostly::SyncMap::new();
/// map.insert(1, "a");
/// map.insert(1, "b");
/// map.remove(&1);
/// let s = map.stats();
/// assert_eq!((s.new_keys, s.overwrites, s.removes), (1, 1, 1));
/// // Retired: the values "a" (overwritten) and "b" (removed), plus the entry and the
/// // tables the map detached or replaced on the way.
/// assert!(s.retired >= 2 && s.retired_bytes > 0);
/// println!("{s}");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Lookups answered from the read table's main hash table without taking the lock
    /// (including lookups of absent keys while no key has been added since the last
    /// promotion).
    pub hits: u64,
    /// Lookups that missed the main hash table and consulted the read table's recent
    /// table (keys added since the last promotion; and the previous promotion's, when
    /// that promotion kept them apart: see [`RecentKeys`](crate::RecentKeys)) without the
    /// lock, whether they found the key there or not. They count towards the promotion rule like
    /// [`misses`](Self::misses) (a quarter of a miss each under the default
    /// [`Promotion::DirtyLen`](crate::Promotion::DirtyLen)). Approximate under
    /// concurrency, like `hits`.
    pub recent_lookups: u64,
    /// Operations that missed the read table and consulted the dirty table under the
    /// lock (the seed's `misses`: lookups, and `get_or_insert`/`remove` of keys only the
    /// dirty table holds). With the recent table on (the default) they are rare: it
    /// answers lookups of new keys and of absent keys without the lock. They drive
    /// promotion, together with [`recent_lookups`](Self::recent_lookups).
    pub misses: u64,
    /// Lookups (`get` and every method built on it) that had to take the lock. Most of
    /// them are misses; the rest found the key in a read table promoted meanwhile.
    pub slow_reads: u64,
    /// Promotions of the dirty table to the read table.
    pub promotions: u64,
    /// Promotions forced because the recent table was full (included in `promotions`).
    pub recent_full_promotions: u64,
    /// Rebuilds of the dirty table from the read table (the lazy copy).
    pub dirty_rebuilds: u64,
    /// Entries copied by all rebuilds together.
    pub rebuild_copied: u64,
    /// Deleted entries turned into expunged ones by rebuilds.
    pub expunged: u64,
    /// The most read-table entries a single operation copied or expunged while
    /// rebuilding the dirty table: the longest pause a rebuild caused, in entries. At
    /// most [`Builder::rebuild_step`](crate::Builder::rebuild_step) unless a promotion
    /// had to finish a rebuild (16 steps at most for one driven by lookups or misses;
    /// see there).
    pub longest_rebuild_step: u64,
    /// The most recent-table entries a single promotion moved into the new main table
    /// (keys added without the lock since the previous promotion): the other part of a
    /// promotion's pause, in entries. At most the recent table's size (see
    /// [`RecentKeys`](crate::RecentKeys)). Explicit promotions and bulk loads move;
    /// promotions driven by lookups or misses move at most 256 rebuild steps' worth
    /// (else they keep the table, like the one a full recent table forces: 0).
    pub longest_promotion_move: u64,
    /// The most entries a single operation copied from the recent table's old slot array
    /// into the one that replaced it when it doubled (under the lock: the third kind of
    /// pause, in entries). The copy is spread over the operations that follow a growth,
    /// a step each (twice [`Builder::rebuild_step`](crate::Builder::rebuild_step) slots
    /// of the old array, plus a few per key added to keep pace, and a few per add in
    /// flight when the array fills), so this stays near that step whatever the table's
    /// size.
    pub longest_recent_growth: u64,
    /// The most entries a [`clear`](crate::SyncMap::clear) detached under one hold of
    /// the lock: it swaps the tables for empty ones at once, then detaches and retires
    /// the old entries in steps of 16 ×
    /// [`rebuild_step`](crate::Builder::rebuild_step) (1,024 by default), letting
    /// waiting threads take the lock between steps. 0 before the first `clear` of more
    /// than an empty map.
    pub longest_clear_step: u64,
    /// Slots of the recent table's old slot array not yet visited by the copy into its
    /// replacement (0 when no copy is in progress).
    pub recent_growth_pending: usize,
    /// Read-table entries the rebuild in progress has not visited yet (0 when no
    /// rebuild is in progress).
    pub rebuild_pending: usize,
    /// Entries expunged by earlier rebuilds (deleted keys) that are unreachable but not
    /// yet handed to the reclamation scheme. A promotion hands over at most 256 ×
    /// [`rebuild_step`](crate::Builder::rebuild_step) of them at once (16,384 by
    /// default); the rest go a step at a time with the rebuild steps of later
    /// operations (new keys, lookups that find the rule due), instead of all at once
    /// under the lock. They stay allocated while no such operation runs; an explicit
    /// [`promote`](crate::SyncMap::promote) hands them all over, in steps.
    pub expunged_pending: usize,
    /// Inserts of keys absent from both tables (each allocates an entry; with the recent
    /// table on, most need no lock).
    pub new_keys: u64,
    /// Values of present keys replaced (`insert` of a present key, successful
    /// `compare_exchange`, `update`). Approximate under concurrency, like `hits`.
    pub overwrites: u64,
    /// Keys removed (`remove`, `remove_if`, `retain`, `clear`).
    pub removes: u64,
    /// Objects handed to the reclamation scheme: replaced and removed values, detached
    /// entries, replaced read tables.
    pub retired: u64,
    /// Estimated bytes of [`retired`](Self::retired) objects (shallow sizes: a value's
    /// own heap allocations are not counted). Cumulative: the reclamation scheme frees
    /// them in batches once no guard that could see them is active, but offers no hook
    /// to count what it has freed, so the amount still waiting is not tracked; it stays
    /// small unless a guard is held for long (see the crate docs).
    pub retired_bytes: u64,
    /// Entries in the current read table's main hash table (present, deleted or
    /// expunged), including the keys of the previous recent table when the promotion
    /// that published it kept them apart (see [`RecentKeys`](crate::RecentKeys)).
    pub read_len: usize,
    /// Entries in the current read table's recent table (keys added since the last
    /// promotion), plus adds in progress.
    pub recent_len: usize,
    /// Entries in the dirty table, or `None` when there is none (right after a promotion).
    /// Counts what the next promotion will publish: while the table is being rebuilt, the
    /// read table's entries not copied yet, and the recent table's entries.
    pub dirty_len: Option<usize>,
    /// Present keys (see [`SyncMap::len`](crate::SyncMap::len)).
    pub len: usize,
    /// What the growth guard ([`GrowthGuard`](crate::monitor::GrowthGuard)) watches:
    /// the dirty table's entries (present keys and deleted ones not yet expunged), or the
    /// present keys when there is no dirty table — per map, then summed over merged maps.
    /// (Computing it from merged `len` and `dirty_len` would lose the deleted entries of
    /// the shards that have a dirty table whenever the other shards hold more keys.)
    pub dirty_size: usize,
}

impl Stats {
    /// Builds a snapshot; `value_size` and `entry_size` are the shallow sizes used for
    /// the `retired_bytes` estimate.
    pub(crate) fn from_parts(
        striped: StripedTotals,
        c: LockedCounters,
        read_len: usize,
        recent_len: usize,
        dirty_len: Option<usize>,
        value_size: usize,
        entry_size: usize,
    ) -> Self {
        let retired_values = striped.overwrites + striped.removes;
        Stats {
            hits: striped.hits,
            recent_lookups: striped.recent_lookups,
            misses: c.misses,
            slow_reads: c.slow_reads,
            promotions: c.promotions,
            recent_full_promotions: c.recent_full,
            dirty_rebuilds: c.rebuilds,
            rebuild_copied: c.rebuild_copied,
            expunged: c.expunged,
            longest_rebuild_step: c.longest_rebuild_step,
            longest_promotion_move: c.longest_promotion_move,
            longest_recent_growth: c.longest_recent_growth,
            longest_clear_step: c.longest_clear_step,
            rebuild_pending: 0,
            expunged_pending: 0,
            recent_growth_pending: 0,
            new_keys: c.new_keys + striped.new_keys,
            overwrites: striped.overwrites,
            removes: striped.removes,
            retired: retired_values + c.retired_entries + c.retired_tables,
            retired_bytes: retired_values * value_size as u64
                + c.retired_entries * entry_size as u64
                + c.retired_table_bytes,
            read_len,
            recent_len,
            dirty_len,
            len: striped.len,
            dirty_size: striped.len.max(dirty_len.unwrap_or(0)),
        }
    }

    /// Share of lookups answered without the lock, in `0.0..=1.0` (1.0 when there were none).
    ///
    /// ```
    /// let s = readmostly::Stats::default();
    /// assert_eq!(s.hit_ratio(), 1.0);
    /// ```
    pub fn hit_ratio(&self) -> f64 {
        let total = self.reads();
        if total == 0 {
            1.0
        } else {
            total.saturating_sub(self.slow_reads) as f64 / total as f64
        }
    }

    /// Lookups: [`hits`](Self::hits) + [`recent_lookups`](Self::recent_lookups) +
    /// [`slow_reads`](Self::slow_reads).
    ///
    /// ```
    /// let map = readmostly::SyncMap::<u8, u8>::new();
    /// map.get_cloned(&1);
    /// assert_eq!(map.stats().reads(), 1);
    /// ```
    pub fn reads(&self) -> u64 {
        self.hits
            .wrapping_add(self.recent_lookups)
            .wrapping_add(self.slow_reads)
    }

    /// Writes that changed the map: [`new_keys`](Self::new_keys) +
    /// [`overwrites`](Self::overwrites) + [`removes`](Self::removes).
    ///
    /// ```
    /// let map = readmostly::SyncMap::new();
    /// map.insert(1, 1);
    /// map.insert(1, 2);
    /// assert_eq!(map.stats().writes(), 2);
    /// ```
    pub fn writes(&self) -> u64 {
        self.new_keys
            .wrapping_add(self.overwrites)
            .wrapping_add(self.removes)
    }

    /// Adds `other` into `self`: counters and sizes (`dirty_size` too) add up (`longest_rebuild_step`,
    /// `longest_promotion_move`, `longest_recent_growth` and `longest_clear_step` take the larger); `dirty_len`
    /// is the sum over the maps that have a dirty table (`None` if neither has one).
    ///
    /// ```
    /// let a = readmostly::SyncMap::new();
    /// let b = readmostly::SyncMap::new();
    /// a.insert(1, 1);
    /// b.insert(2, 2);
    /// let mut s = a.stats();
    /// s.merge(&b.stats());
    /// assert_eq!((s.len, s.new_keys), (2, 2));
    /// ```
    pub fn merge(&mut self, other: &Stats) {
        self.hits = self.hits.wrapping_add(other.hits);
        self.recent_lookups = self.recent_lookups.wrapping_add(other.recent_lookups);
        self.misses = self.misses.wrapping_add(other.misses);
        self.slow_reads = self.slow_reads.wrapping_add(other.slow_reads);
        self.promotions = self.promotions.wrapping_add(other.promotions);
        self.recent_full_promotions = self
            .recent_full_promotions
            .wrapping_add(other.recent_full_promotions);
        self.dirty_rebuilds = self.dirty_rebuilds.wrapping_add(other.dirty_rebuilds);
        self.rebuild_copied = self.rebuild_copied.wrapping_add(other.rebuild_copied);
        self.expunged = self.expunged.wrapping_add(other.expunged);
        self.longest_rebuild_step = self.longest_rebuild_step.max(other.longest_rebuild_step);
        self.longest_promotion_move = self
            .longest_promotion_move
            .max(other.longest_promotion_move);
        self.longest_recent_growth = self.longest_recent_growth.max(other.longest_recent_growth);
        self.longest_clear_step = self.longest_clear_step.max(other.longest_clear_step);
        self.rebuild_pending += other.rebuild_pending;
        self.expunged_pending += other.expunged_pending;
        self.recent_growth_pending += other.recent_growth_pending;
        self.new_keys = self.new_keys.wrapping_add(other.new_keys);
        self.overwrites = self.overwrites.wrapping_add(other.overwrites);
        self.removes = self.removes.wrapping_add(other.removes);
        self.retired = self.retired.wrapping_add(other.retired);
        self.retired_bytes = self.retired_bytes.wrapping_add(other.retired_bytes);
        self.read_len += other.read_len;
        self.recent_len += other.recent_len;
        self.dirty_len = match (self.dirty_len, other.dirty_len) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
        };
        self.len += other.len;
        self.dirty_size += other.dirty_size;
    }
}

impl std::iter::Sum for Stats {
    fn sum<I: Iterator<Item = Stats>>(iter: I) -> Stats {
        iter.fold(Stats::default(), |mut acc, s| {
            acc.merge(&s);
            acc
        })
    }
}

impl<'a> std::iter::Sum<&'a Stats> for Stats {
    fn sum<I: Iterator<Item = &'a Stats>>(iter: I) -> Stats {
        iter.fold(Stats::default(), |mut acc, s| {
            acc.merge(s);
            acc
        })
    }
}

/// Bytes in a human unit (for `Display`).
struct Bytes(u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
        let mut v = self.0 as f64;
        let mut unit = 0;
        while v >= 1024.0 && unit + 1 < UNITS.len() {
            v /= 1024.0;
            unit += 1;
        }
        if unit == 0 {
            write!(f, "{} B", self.0)
        } else {
            write!(f, "{v:.1} {}", UNITS[unit])
        }
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "keys            {}", self.len)?;
        writeln!(
            f,
            "lookups         {} hits, {} recent, {} slow ({:.2} % lock-free)",
            self.hits,
            self.recent_lookups,
            self.slow_reads,
            self.hit_ratio() * 100.0
        )?;
        writeln!(
            f,
            "misses          {} (dirty table consulted under the lock)",
            self.misses
        )?;
        writeln!(
            f,
            "writes          {} new keys, {} overwrites, {} removes",
            self.new_keys, self.overwrites, self.removes
        )?;
        match self.dirty_len {
            Some(d) => writeln!(
                f,
                "tables          read {} + {} recent entries, dirty {} entries",
                self.read_len, self.recent_len, d
            )?,
            None => writeln!(
                f,
                "tables          read {} + {} recent entries, no dirty table",
                self.read_len, self.recent_len
            )?,
        }
        writeln!(
            f,
            "recent table    longest growth step copied {} entries ({} old slots to go)",
            self.longest_recent_growth, self.recent_growth_pending
        )?;
        writeln!(
            f,
            "promotions      {} ({} with a full recent table; longest move {} entries)",
            self.promotions, self.recent_full_promotions, self.longest_promotion_move
        )?;
        writeln!(
            f,
            "dirty rebuilds  {} ({} entries copied, {} expunged; longest step {} entries, {} to go)",
            self.dirty_rebuilds,
            self.rebuild_copied,
            self.expunged,
            self.longest_rebuild_step,
            self.rebuild_pending
        )?;
        write!(
            f,
            "retired         {} objects, ~{} (cumulative); {} expunged entries to retire; \
             longest clear step {} entries",
            self.retired,
            Bytes(self.retired_bytes),
            self.expunged_pending,
            self.longest_clear_step
        )
    }
}
