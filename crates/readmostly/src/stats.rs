//! Statistics: striped counters for the hot paths and the public [`Stats`] snapshot.
#![forbid(unsafe_code)]

use std::fmt;
use std::sync::atomic::Ordering::Relaxed;
// Deliberately std atomics even under loom: these are statistics, not part of the
// protocol being model-checked, and modelling them would only blow up the state space.
use std::sync::atomic::{AtomicIsize, AtomicU64};

/// One cache-line-padded stripe (128 bytes: adjacent-line prefetch pairs lines on x86).
#[repr(align(128))]
#[derive(Debug, Default)]
struct Stripe {
    hits: AtomicU64,
    len: AtomicIsize,
}

/// The default stripe count: twice the available parallelism, at least 4, at most 256.
pub(crate) fn default_stripes() -> usize {
    let threads = std::thread::available_parallelism().map_or(4, usize::from);
    (threads * 2).clamp(4, 256)
}

/// Per-thread striped counters.
///
/// A thread uses the stripe selected by its reclamation-thread id, so threads rarely
/// share a cache line; reads therefore never write a line that other threads write.
#[derive(Debug)]
pub(crate) struct Stripes {
    stripes: Box<[Stripe]>,
    mask: usize,
}

impl Stripes {
    /// `n` stripes, rounded up to a power of two (at least one).
    pub(crate) fn new(n: usize) -> Self {
        let n = n.max(1).next_power_of_two();
        Stripes {
            stripes: (0..n).map(|_| Stripe::default()).collect(),
            mask: n - 1,
        }
    }

    #[inline]
    fn stripe(&self, thread: usize) -> &Stripe {
        &self.stripes[thread & self.mask]
    }

    /// Counts a read answered from the read table.
    ///
    /// A plain load + store rather than `fetch_add`: a locked read-modify-write costs as
    /// much as a quarter of a cached lookup. Two threads that share a stripe can lose an
    /// increment, so the hit count is approximate (exact with one thread per stripe).
    #[inline]
    pub(crate) fn hit(&self, thread: usize) {
        let hits = &self.stripe(thread).hits;
        // Relaxed: statistic only.
        hits.store(hits.load(Relaxed).wrapping_add(1), Relaxed);
    }

    /// Adds `delta` to the number of present keys (writes only, so a real RMW).
    #[inline]
    pub(crate) fn add_len(&self, thread: usize, delta: isize) {
        // Relaxed: a counter; `len()` is documented as approximate under concurrency and
        // exact once writers have finished (their completion happens-before the reader).
        self.stripe(thread).len.fetch_add(delta, Relaxed);
    }

    pub(crate) fn hits(&self) -> u64 {
        // Relaxed: statistic only.
        self.stripes
            .iter()
            .map(|s| s.hits.load(Relaxed))
            .fold(0, u64::wrapping_add)
    }

    pub(crate) fn len(&self) -> usize {
        // Relaxed: see `add_len`.
        let sum: isize = self.stripes.iter().map(|s| s.len.load(Relaxed)).sum();
        usize::try_from(sum).unwrap_or(0)
    }
}

/// Counters kept under the dirty-table mutex (every event they count takes it anyway).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct LockedCounters {
    pub(crate) misses: u64,
    pub(crate) promotions: u64,
    pub(crate) rebuilds: u64,
    pub(crate) rebuild_copied: u64,
    pub(crate) expunged: u64,
    pub(crate) new_keys: u64,
}

/// A snapshot of a map's statistics, from [`SyncMap::stats`](crate::SyncMap::stats).
///
/// Counters are cumulative since the map was created. Under concurrent use the snapshot
/// is not atomic as a whole, and `hits` may slightly undercount (see the crate docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Lookups answered from the read table without taking the lock.
    pub hits: u64,
    /// Lookups that missed the read table and consulted the dirty table under the lock
    /// (the seed's `misses`; they drive promotion).
    pub misses: u64,
    /// Promotions of the dirty table to the read table.
    pub promotions: u64,
    /// Rebuilds of the dirty table from the read table (the lazy copy).
    pub dirty_rebuilds: u64,
    /// Entries copied by all rebuilds together.
    pub rebuild_copied: u64,
    /// Deleted entries turned into expunged ones by rebuilds.
    pub expunged: u64,
    /// Inserts of keys absent from both tables (each needs the lock and an entry).
    pub new_keys: u64,
    /// Entries in the current read table (present, deleted or expunged).
    pub read_len: usize,
    /// Entries in the dirty table, or `None` when there is none (right after a promotion).
    pub dirty_len: Option<usize>,
    /// Present keys (see [`SyncMap::len`](crate::SyncMap::len)).
    pub len: usize,
}

impl Stats {
    pub(crate) fn from_parts(
        hits: u64,
        c: LockedCounters,
        read_len: usize,
        dirty_len: Option<usize>,
        len: usize,
    ) -> Self {
        Stats {
            hits,
            misses: c.misses,
            promotions: c.promotions,
            dirty_rebuilds: c.rebuilds,
            rebuild_copied: c.rebuild_copied,
            expunged: c.expunged,
            new_keys: c.new_keys,
            read_len,
            dirty_len,
            len,
        }
    }

    /// Share of lookups answered without the lock, in `0.0..=1.0` (1.0 when there were none).
    pub fn hit_ratio(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            1.0
        } else {
            self.hits as f64 / total as f64
        }
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "keys            {}", self.len)?;
        writeln!(
            f,
            "lookups         {} hits, {} misses ({:.2} % lock-free)",
            self.hits,
            self.misses,
            self.hit_ratio() * 100.0
        )?;
        match self.dirty_len {
            Some(d) => writeln!(
                f,
                "tables          read {} entries, dirty {} entries",
                self.read_len, d
            )?,
            None => writeln!(
                f,
                "tables          read {} entries, no dirty table",
                self.read_len
            )?,
        }
        writeln!(f, "new keys        {}", self.new_keys)?;
        writeln!(f, "promotions      {}", self.promotions)?;
        write!(
            f,
            "dirty rebuilds  {} ({} entries copied, {} expunged)",
            self.dirty_rebuilds, self.rebuild_copied, self.expunged
        )
    }
}
