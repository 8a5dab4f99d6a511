//! The read/dirty protocol. All of the crate's `unsafe` code lives in this module, but
//! for one unchecked index into the statistics stripes (`stats.rs`).
//!
//! # Structure
//!
//! * `read`: an atomic pointer to a [`ReadTable`]: an immutable hash table of entry
//!   pointers, possibly a read-only [`Level`], the *recent* table and the `amended` flag
//!   ("the dirty table holds keys that none of these holds"). The hash table is never
//!   modified after it is published; only the entries' value slots change, and the
//!   recent table only gains slots. Readers load it through their guard and never take
//!   a lock.
//! * The recent table ([`Recent`]): an insert-only open-addressing array of
//!   `(hash, entry)` slots holding the entries of keys added since the read table was
//!   published. New keys are added to it *without the lock* (a reservation, then a
//!   compare-and-swap into an empty slot), and it is read without a lock, so neither
//!   adding a new key, nor reading it, nor reading an absent key takes the lock while it
//!   has room. Its entries are in no other table until a promotion closes it and moves
//!   them into the next main table, or keeps its slot array as the next read table's
//!   [`Level`]. When it is full the next new key promotes at once (keeping the array as
//!   a level: no copy under the lock, see [`Fold`]; but while the dirty table's rebuild
//!   lags, new keys go past the limit instead, a rebuild step each:
//!   [`Recent::add_overflow_locked`]) and then goes into the new read table's recent
//!   table (not into the dirty table
//!   before the promotion: a lock-free adder of the same key may still hold a
//!   reservation on the full table, and the promotion would publish both). Misses of
//!   the main table that the level or the recent table answers are counted per thread and
//!   still drive promotion. Disabled ([`RecentKeys::Off`]), the
//!   map behaves exactly like Go's: new keys go into the dirty table under the lock and
//!   are reachable only through the lock until a promotion.
//! * `dirty`: behind the mutex `mu`, an optional table of entry pointers that holds
//!   every non-expunged entry of the read table's main table and level (plus, with the
//!   recent table off, the keys added since the last promotion), the `misses` counter, and
//!   the list of entries expunged by the last rebuild.
//!   The dirty table is rebuilt from the read table (Go's lazy copy) *incrementally*:
//!   the first new key after a promotion (or the promotion itself, when it keeps a
//!   level) creates it empty and starts a [`Rebuild`]
//!   cursor over the read table's slots (the main table's, then the level's); that
//!   operation and every later one that
//!   takes `mu` to insert a new key or count a miss copies (or expunges) at most
//!   `rebuild_step` more entries, and so does each lock-free add of a new key that finds
//!   the lock free (`try_lock`: it never waits); a promotion finishes whatever is left.
//!   So the rebuild's pause is bounded by the step, not by the map's size (except a
//!   promotion that arrives before the rebuild is done). A promotion that moves the
//!   recent table's entries into the new main table pauses for a time bounded by the
//!   recent table's size (reported apart, `longest_promotion_move`); one that keeps it
//!   as a level does not copy it. Starting a rebuild allocates the dirty table at full
//!   size — room for the read table's entries (main table and level) plus the most
//!   recent entries a lookup-driven promotion moves (`move_max`), so that such a move
//!   never rehashes it (an explicit `promote()` keeps a larger recent table as a level
//!   first; only a bulk load's move may rehash) — zeroed by the allocator
//!   ([`zeroed`]): fresh pages, not written up front, so that operation's pause does
//!   not grow with the map either. Bulk copies under the lock (rebuild steps, the
//!   promotion's move, table growth) request a batch of entries and buckets from memory
//!   before touching the first ([`Inserter`]).
//!   The recent table's slot array doubles as keys are added; the new array is
//!   published empty, with the old one linked to it as its `prev` until later operations
//!   have copied the old entries over in bounded steps ([`Recent::step_locked`]), so
//!   a growth does not pause for a copy either.
//! * [`Entry`]: shared by both tables; see [`entry`] for its state machine.
//!
//! # Invariants (all under `mu`)
//!
//! 1. `read.amended` ⇒ `dirty.table.is_some()`, and so does a recent table that has a
//!    slot array (the first new key after a promotion starts the rebuild before it
//!    allocates the array).
//! 2. When `dirty.table` is `Some`, every entry of the read table's main table and level
//!    is in the dirty table, or expunged (the expunged ones are exactly those in
//!    `dirty.expunged` that are not in `dirty.revived`), or not yet
//!    visited by the rebuild (`dirty.rebuild`: slots at or after its cursor); an
//!    unvisited entry is not expunged and in no other table. A promotion finishes the
//!    rebuild before it publishes the dirty table.
//! 3. When `dirty.table` is `None`, the read table holds no expunged entry,
//!    `dirty.expunged` is empty and no rebuild is in progress.
//! 4. The dirty table never holds an expunged entry.
//! 5. An entry reachable from no table is expunged, and is retired exactly once: by
//!    the promotion that drops the read table holding it, by `remove` of a dirty-only
//!    key, or by `clear`.
//! 6. An entry of the recent table is in no other table, and is never expunged while its
//!    read table is published (only rebuilds expunge, and they visit only the main
//!    table and the level; a promotion moves the entries into the next main table as
//!    they are or keeps them as its level, and `clear` detaches them). No key is in two
//!    of the main table, the level and the recent table. Entries of the dirty table that
//!    are in no read-side table exist only while `read.amended` is set (recent table
//!    off).
//! 7. A recent table whose read table is no longer published is closed, and so is every
//!    slot array that is no longer current: no add is in flight on it and none can start
//!    (the [`CLOSED`] bit of its reservation count; a promotion or `clear` closes the
//!    recent table, and a growth the array it replaces, before publishing the
//!    replacement). So a closed array's slots no longer change, but for the copy steps
//!    of a growth (invariant 9), which `mu` orders: a promotion that keeps the closed
//!    array as a level finishes its copy first.
//! 8. A read table with a level has a dirty table: the promotion that keeps the level
//!    starts the next rebuild at once, and only promotions and `clear` drop the dirty
//!    table (publishing tables without a level, but for that one).
//! 9. A slot array's `prev` is closed and linked to that array only; the entries of its
//!    first `migrated` slots are in both arrays (the same entries), the others in `prev`
//!    only. Lookups probe `prev` first and adds check it before adding, so a key is never
//!    added twice; `prev` is unlinked (Release) only after all its entries were copied,
//!    and only then retired. A level's array has no `prev`, and an array is replaced only
//!    once its own migration is done.
//!
//! # Reclamation
//!
//! Every replaced read table, every detached entry and every replaced or removed value
//! is retired through the operation's guard *after* it became unreachable from the
//! published structures, so a thread that reached it did so inside a guard that was
//! active when it was retired, and seize frees it only after that guard is gone.
//!
//! # Orderings
//!
//! * Publishing a read table (promotion, `clear`) stores `read` with **Release**; every
//!   load of `read` is an **Acquire** (`Guard::protect`). Entries in a new table were
//!   created by earlier holders of `mu` or added to the recent table by lock-free adders,
//!   whose fills the promoter's close of the recent table made visible (fill counts,
//!   below); so their initialisation happens-before the Release store and thus before
//!   any reader that sees the table.
//! * Value slots are written with **Release** (inside AcqRel CAS/swap) after the value is
//!   boxed, and read with **Acquire**, so a reader that sees a pointer sees the value.
//! * `amended` is written only under `mu`. It only decides whether a reader takes the
//!   lock, after which the mutex orders everything.
//! * A recent slot is filled by a compare-and-swap of its entry pointer from null with
//!   **Release** (publishing the entry's initialisation); readers load the pointer with
//!   **Acquire**. The slot's copy of the hash is stored (Relaxed) just after; a reader
//!   that still sees 0 reads the entry's own hash instead. Slots are never emptied, so a
//!   reader that meets an empty slot knows every key it probes for was absent from that
//!   array when that slot was read (linear probing: a key lives past every slot that was
//!   full when it was added). The slot
//!   array pointer is replaced under `mu` with **Release** and loaded with **SeqCst** (what
//!   `Guard::protect` uses for protected pointers; Acquire is what the contents need).
//!   A migration step copies entries with the same Release compare-and-swap; the old
//!   array is unlinked from the new one with **Release** and loaded with **SeqCst** (as
//!   the array pointer), so a lookup that finds it unlinked sees every copy (see
//!   `SlotArray::prev`).
//! * Each slot array's [`Filter`] gets a key's bits (a **Relaxed** `fetch_or`) before the
//!   Release compare-and-swap that fills the key's slot, and lookups load the word
//!   **Relaxed** and report the key absent when its bits are missing: whoever is ordered
//!   after the fill is ordered after the bits, and a lookup that is not is concurrent
//!   with the add (see `Filter::insert`).
//!   `Recent::len` (reservations and the [`CLOSED`] bit) needs only its modification
//!   order to bound the filled slots and to order reservations against a close; a
//!   growth's reopening is **Release** and reservations **Acquire**, so an adder that
//!   reserves after it sees that its array was replaced. A fill is counted in its thread's
//!   stripe with **Release** after the slot's compare-and-swap; the closer sums the stripes
//!   with **Acquire** until the fills account for every reservation, so every fill
//!   happens-before its walk of the closed array (`Recent::close_locked`).

mod entry;
pub(crate) mod reaper;
pub(crate) mod reclaim;
mod table;
mod zeroed;

pub(crate) use self::table::spread;

use std::borrow::Borrow;
use std::convert::Infallible;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst};
use std::sync::Arc;

use self::entry::{is_value, reclaim_entry, squash, Entry, LoadOrStore};
use self::reclaim::{boxed, Collector, Guard, LocalGuard, OwnedGuard};
use self::table::{prefetch, Home, Table, BATCH};
#[cfg(not(any(loom, shuttle)))]
use self::zeroed::{Zeroable, ZeroedSlice, Zeroing};
use crate::map::{Promotion, RecentKeys};
use crate::stats::{count_hit, count_hits, HitCounter, LockedCounters, Stats, Stripes};
use crate::sync::{
    lock, try_lock, AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Mutex, MutexGuard,
};

type EntryPtr<K, V> = NonNull<Entry<K, V>>;

/// An entry reached through a table while holding a guard: a shared reference to it that
/// also keeps the table's pointer, whose provenance covers the entry's whole block (a
/// writer claiming an in-block slot needs it, see [`Entry::claim`]).
struct EntryRef<'a, K, V> {
    ptr: EntryPtr<K, V>,
    _guarded: PhantomData<&'a Entry<K, V>>,
}

impl<K, V> Clone for EntryRef<'_, K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, V> Copy for EntryRef<'_, K, V> {}

impl<'a, K, V> EntryRef<'a, K, V> {
    /// The entry, for as long as the guard.
    #[inline]
    fn get(self) -> &'a Entry<K, V> {
        // SAFETY: built by `RawRef::entry`, whose caller found the pointer in a table
        // while holding the guard that `'a` borrows (see there).
        unsafe { self.ptr.as_ref() }
    }
}

impl<K, V> std::ops::Deref for EntryRef<'_, K, V> {
    type Target = Entry<K, V>;
    #[inline]
    fn deref(&self) -> &Entry<K, V> {
        self.get()
    }
}

/// Keeps a frequently written `T` on cache lines of its own (128 bytes: x86's
/// adjacent-line prefetcher pairs lines), away from the read-mostly fields that every
/// lookup loads. Without it the mutex word and the dirty state shared a line with the
/// `read` pointer, and the recent table's length shared one with the main table's
/// header, so every new key and every lock acquisition made every reader miss.
#[repr(align(128))]
struct CacheAligned<T>(T);

impl<T> std::ops::Deref for CacheAligned<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Default for `Builder::rebuild_step`: read-table entries one operation copies into the
/// dirty table while it is being rebuilt (a few microseconds of work).
pub(crate) const DEFAULT_REBUILD_STEP: usize = 64;

/// The read table: an immutable hash table, possibly a read-only [`Level`], and the
/// insert-only recent table.
struct ReadTable<K, V> {
    /// Entry pointers, keyed by `Entry::hash`. Never modified after publication.
    table: Table<EntryPtr<K, V>>,
    /// The previous read table's recent table, when a promotion kept it as it was
    /// instead of moving its entries into `table` (see [`Level`]).
    level: Option<Level<K, V>>,
    /// Entries of keys added since this table was published (see [`Recent`]). Its
    /// length changes with every new key: on its own lines.
    recent: CacheAligned<Recent<K, V>>,
    /// Whether the dirty table holds keys that neither `table` nor `recent` holds. Set
    /// (never cleared) under `mu`; a promotion publishes a new table with the flag clear.
    amended: AtomicBool,
    /// Whether the dirty table is being rebuilt from this table: a hint for lock-free
    /// adders of new keys, which then try the lock to take a rebuild step. Written under
    /// `mu`; read Relaxed (a stale value only skips or wastes one `try_lock`).
    rebuilding: AtomicBool,
}

/// A closed recent slot array kept, read-only, in the next read table: a promotion that
/// finds the recent table full publishes it as it is instead of moving its entries into
/// the new main table under the lock (a pause that grew with the recent table: ~25 ms
/// for 1 Mi entries). The rebuild of the dirty table from that read table visits the
/// level's slots after the main table's, in bounded steps like the rest, so the
/// promotion after it publishes them in its main table.
///
/// Lookups that miss the main table probe the level, then the recent table. The array is
/// shared with the recent table it came from (the retired read table still holding it
/// may be in use by readers), hence the `Arc`.
struct Level<K, V> {
    array: Arc<SlotArray<K, V>>,
    /// Filled slots (exact: the array was closed).
    len: usize,
}

impl<K, V> ReadTable<K, V> {
    /// Estimated bytes of this table (for the `retired_bytes` statistic).
    fn bytes(&self) -> u64 {
        (self.table.heap_bytes() + std::mem::size_of::<Self>()) as u64
            + self.level_array().map_or(0, SlotArray::heap_bytes) as u64
            + self.recent.owned_bytes()
    }

    /// A read table to publish; `fills_base` is the map's current count of recent-table
    /// fills (see [`Recent::fills_base`]).
    fn new(
        table: Table<EntryPtr<K, V>>,
        level: Option<Level<K, V>>,
        recent: RecentKeys,
        fills_base: u64,
    ) -> *mut Self {
        let len = table.len() + level.as_ref().map_or(0, |l| l.len);
        let recent = CacheAligned(Recent::new(recent, len, fills_base));
        Box::into_raw(Box::new(ReadTable {
            table,
            level,
            recent,
            amended: AtomicBool::new(false),
            rebuilding: AtomicBool::new(false),
        }))
    }

    /// The level's slots (none without a level).
    #[inline]
    fn level_slots(&self) -> &[RecentSlot<K, V>] {
        self.level.as_ref().map_or(&[], |l| &l.array.slots[..])
    }

    /// The level's array, if there is a level.
    #[inline]
    fn level_array(&self) -> Option<&SlotArray<K, V>> {
        self.level.as_ref().map(|l| &*l.array)
    }

    /// Entries of the main table and the level: what a rebuild visits.
    fn len(&self) -> usize {
        self.table.len() + self.level.as_ref().map_or(0, |l| l.len)
    }

    /// Slots a rebuild walks: the main table's, then the level's.
    fn num_slots(&self) -> usize {
        self.table.num_slots() + self.level_slots().len()
    }

    /// The entry at slot `i` of the walk described in [`num_slots`](Self::num_slots).
    #[inline]
    fn slot(&self, i: usize) -> Option<EntryPtr<K, V>> {
        match i.checked_sub(self.table.num_slots()) {
            None => self.table.get_slot(i).copied(),
            // Acquire: as in `Recent::probe` (the level is closed: the slot is final).
            Some(j) => NonNull::new(self.level_slots()[j].entry.load(Acquire)),
        }
    }

    /// Every entry of the main table and the level.
    fn entries(&self) -> impl Iterator<Item = EntryPtr<K, V>> + '_ {
        (0..self.num_slots()).filter_map(|i| self.slot(i))
    }

    /// Finds `key` in the hash table, the level or the recent table.
    #[inline]
    fn find<Q>(&self, hash: u64, key: &Q) -> Option<EntryPtr<K, V>>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        find(&self.table, hash, key)
            .or_else(|| Recent::probe(self.level_array(), hash, key))
            .or_else(|| self.recent.find(hash, key))
    }
}

/// Frees a slot array retired by a growth (its pointer came from `Arc::into_raw`).
///
/// # Safety
/// As for `boxed`: `ptr` is unreachable and retired once; it holds one strong count.
unsafe fn arced<T>(ptr: *mut T, _collector: &Collector) {
    // SAFETY: forwarded from the caller.
    drop(unsafe { Arc::from_raw(ptr.cast_const()) });
}

/// The most keys a recent table may hold (2^20: arrays of at most 2^21 slots, 32 MiB).
pub(crate) const MAX_RECENT: usize = 1 << 20;

/// The bit of [`Recent::len`] that says the current slot array is closed: no add may
/// start on it (see [`Recent::close_locked`]).
const CLOSED: usize = 1 << (usize::BITS - 1);

/// One slot of the recent table: empty (null) or filled (an entry), for good once filled.
struct RecentSlot<K, V> {
    /// The entry's hash, written by the thread that filled the slot just after it did;
    /// 0 until then (see [`hash_of`](Self::hash_of)).
    hash: AtomicU64,
    /// Null while the slot is empty; the entry once filled.
    entry: AtomicPtr<Entry<K, V>>,
}

// SAFETY: a zero `AtomicU64` is 0 and a zero `AtomicPtr` is null: an empty slot. (Not
// under loom or shuttle, whose atomics are not plain integers.)
#[cfg(not(any(loom, shuttle)))]
unsafe impl<K, V> Zeroable for RecentSlot<K, V> {}

/// A slot array's *filter*: for each group of eight slots, a word with two bits set for
/// every key whose probe starts in the group (a blocked Bloom filter, one byte per slot),
/// so that a lookup of a key the array does not hold usually reads one word of this
/// small array, which stays cached, instead of a line of the slots (which, like the
/// entries, mostly does not): the recent table is probed by every lookup that misses the
/// main table, and in key churn most of those look for absent keys.
///
/// Bits are only ever set, and a key's bits are set before its slot is filled (by the
/// filler: [`SlotArray::add`] and [`SlotArray::insert_migrated`]), so a word without all
/// of a key's bits proves that no fill of that key had happened when the word was read;
/// a word with them (a key there, or a filled one, or about 2 % of absent keys at the
/// array's usual half load) sends the lookup on to the slots.
///
/// The bits come from hash bits that entries keep ([`squash`]: bits 21..27 and 57..63,
/// none of them part of a slot index, since arrays have at most 2^21 slots), so a
/// migration, which may know only the entry's copy of the hash, sets the same ones; the
/// group is the home slot's.
struct Filter {
    words: FilterWords,
}

/// A filter's words: allocated zeroed, or, under loom and shuttle, built one by one.
#[cfg(not(any(loom, shuttle)))]
type FilterWords = ZeroedSlice<AtomicU64>;
#[cfg(any(loom, shuttle))]
type FilterWords = Box<[AtomicU64]>;

impl Filter {
    /// Words of the filter of an array of `slots` slots.
    fn words_for(slots: usize) -> usize {
        (slots / 8).max(1)
    }

    /// A filter for an array of `slots` slots (a power of two).
    fn new(slots: usize) -> Self {
        let n = Self::words_for(slots);
        #[cfg(not(any(loom, shuttle)))]
        let words = ZeroedSlice::new(n);
        #[cfg(any(loom, shuttle))]
        let words = (0..n).map(|_| AtomicU64::new(0)).collect();
        Filter { words }
    }

    /// `hash`'s two bits.
    #[inline]
    fn bits(hash: u64) -> u64 {
        1 << ((hash >> 21) & 63) | 1 << ((hash >> 57) & 63)
    }

    /// The word of `hash`'s home group (slot `hash & (8 × words − 1)`).
    #[inline]
    fn word(&self, hash: u64) -> &AtomicU64 {
        &self.words[(hash >> 3) as usize & (self.words.len() - 1)]
    }

    /// Records `hash`; the caller then fills a slot with its entry.
    #[inline]
    fn insert(&self, hash: u64) {
        // Relaxed: what must hold is that a lookup whose read of the word misses these
        // bits is ordered before the fill that follows (so reporting the key absent is
        // right). The fill is sequenced after this read-modify-write and is a Release
        // compare-and-swap, so a lookup that synchronises with it (or with anything after
        // it) reads this value or a later one of the word (coherence); a lookup that
        // does not is concurrent with the add, which may then be ordered after it.
        self.word(hash).fetch_or(Self::bits(hash), Relaxed);
    }

    /// Whether a key with hash `hash` may be in the array: `false` if no fill of one had
    /// happened when the word was read.
    #[inline]
    fn may_hold(&self, hash: u64) -> bool {
        let bits = Self::bits(hash);
        // Relaxed: see `insert`; the entries are read through the slots' own Acquire.
        self.word(hash).load(Relaxed) & bits == bits
    }

    /// Heap bytes.
    fn heap_bytes(&self) -> usize {
        std::mem::size_of_val::<[AtomicU64]>(&self.words)
    }
}

/// The slots and filter of the array the next growth will publish, zeroed in steps
/// ([`Recent::zero_locked`]) so that the growth, under `mu`, neither allocates nor
/// writes them (large arrays only, see [`PREPARE_SLOTS`]).
#[cfg(not(any(loom, shuttle)))]
struct Prepared<K, V> {
    slots: Zeroing<RecentSlot<K, V>>,
    filter: Zeroing<AtomicU64>,
}

/// A slot array's storage: allocated zeroed (an empty slot is zero bytes), or, under
/// loom and shuttle, built slot by slot.
#[cfg(not(any(loom, shuttle)))]
type Slots<K, V> = ZeroedSlice<RecentSlot<K, V>>;
#[cfg(any(loom, shuttle))]
type Slots<K, V> = Box<[RecentSlot<K, V>]>;

impl<K, V> RecentSlot<K, V> {
    /// The hash of `e`, the entry this slot holds, read without touching the entry unless
    /// the filler has not written it yet.
    ///
    /// The caller loaded `e` from `entry` with Acquire (or holds `mu`) and holds a guard
    /// protecting the table.
    #[inline]
    fn hash_of(&self, e: EntryPtr<K, V>) -> u64 {
        // Relaxed: the slot's hash goes from 0 to the entry's hash once, so any non-zero
        // value is right; 0 (not written yet, or a real hash of 0) sends us to the entry's
        // own immutable copy.
        match self.hash.load(Relaxed) {
            // SAFETY: entries of a published read table's recent table are live while the
            // guard protecting the table is held (invariant 5); the Acquire load of the
            // slot made its initialisation visible.
            0 => unsafe { e.as_ref() }.hash(),
            h => h,
        }
    }
}

/// What [`SlotArray::add`] did.
enum Add<K, V> {
    /// The entry now fills a slot.
    Added,
    /// An entry with an equal key was already there (added concurrently): ours was not added.
    Found(EntryPtr<K, V>),
    /// The recent table holds as many keys as it may (only from [`Recent::add_locked`]).
    Full,
}

/// A recent table's slot array: a power-of-two number of slots, at most half of them
/// filled (three quarters when the table's limit is that close to it, see
/// [`Recent::limit`], or while a lagging rebuild lets the table overflow,
/// [`Recent::add_overflow_locked`]), so a probe always ends at an empty slot.
///
/// An array that replaced a smaller one keeps it as `prev` until every entry of it has
/// been copied over ([`Recent::step_locked`]): a growth publishes the new array at
/// once, empty, and the copying is spread over later operations in bounded steps.
struct SlotArray<K, V> {
    slots: Slots<K, V>,
    /// Which keys the slots may hold (see [`Filter`]).
    filter: Filter,
    /// The closed array this one replaced, while some of its entries may not have been
    /// copied here yet; null once all have (or if it replaced none). From
    /// `Arc::into_raw`, owned by this array. Set before the array is published, and
    /// cleared (once, with Release) under `mu` when the last entry has been copied.
    prev: AtomicPtr<SlotArray<K, V>>,
}

impl<K, V> Drop for SlotArray<K, V> {
    fn drop(&mut self) {
        // Relaxed: `&mut self`, no other thread can access the array.
        let prev = self.prev.load(Relaxed);
        if !prev.is_null() {
            // SAFETY: `prev` came from `Arc::into_raw` and this array owns its count (the
            // migration that clears it retires it instead).
            drop(unsafe { Arc::from_raw(prev.cast_const()) });
        }
    }
}

impl<K, V> SlotArray<K, V> {
    /// An array of `slots` (empty: see [`empty_slots`]), replacing `prev` (null, or an
    /// `Arc::into_raw` pointer whose count the array takes over).
    fn new(slots: Slots<K, V>, prev: *mut SlotArray<K, V>) -> Self {
        Self::with_filter(Filter::new(slots.len()), slots, prev)
    }

    /// As [`new`](Self::new), with an empty filter made for `slots.len()` slots.
    fn with_filter(filter: Filter, slots: Slots<K, V>, prev: *mut SlotArray<K, V>) -> Self {
        debug_assert_eq!(filter.words.len(), Filter::words_for(slots.len()));
        SlotArray {
            filter,
            slots,
            prev: AtomicPtr::new(prev),
        }
    }

    /// Heap bytes of the slots and the filter.
    fn heap_bytes(&self) -> usize {
        std::mem::size_of_val::<[RecentSlot<K, V>]>(&self.slots) + self.filter.heap_bytes()
    }

    /// The slots of the array this one replaced while its migration lasts (see `prev`),
    /// else none. Valid as for [`prev`](Self::prev).
    #[inline]
    fn prev_slots(&self) -> &[RecentSlot<K, V>] {
        self.prev().map_or(&[], |p| &p.slots[..])
    }

    /// The array this one replaced while its migration lasts (see `prev`), else none.
    /// Valid while the caller's guard (or `mu`) protects this array: a cleared `prev` is
    /// retired, not freed.
    #[inline]
    fn prev(&self) -> Option<&SlotArray<K, V>> {
        // SeqCst: as for `Recent::array` (see `Recent::arrays`), the pointer is protected
        // by the caller's guard; Acquire is what the contents need: pairs with the
        // Release that published this array (a non-null `prev`, closed, so its slots are
        // final), or with the Release that cleared it (null: every entry of it was
        // copied into this array before, and those copies are visible to our later
        // Acquire loads of its slots).
        let prev = NonNull::new(self.prev.load(SeqCst))?;
        // SAFETY: a non-null `prev` is live while this array is, and retired (not freed)
        // when cleared: the caller's guard outlives our use.
        Some(unsafe { prev.as_ref() })
    }

    /// Fills the first empty slot of `hash`'s probe sequence with `e`, an entry of the
    /// array this one replaced (a migration step, under `mu`). No key comparisons: the
    /// key cannot be here already (adders check `prev` first, see [`add`](Self::add)).
    /// Lock-free adders may be filling other slots meanwhile; compare-and-swap, as they
    /// do.
    fn insert_migrated(&self, e: EntryPtr<K, V>, hash: u64) {
        self.filter.insert(hash);
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        loop {
            let slot = &self.slots[i];
            // Release on success: publishes the entry (its initialisation, which we see
            // through the Acquire load of the old slot) to readers of this array, who
            // load the slot with Acquire. Relaxed on failure: we only move on.
            if slot
                .entry
                .compare_exchange(std::ptr::null_mut(), e.as_ptr(), Release, Relaxed)
                .is_ok()
            {
                // Relaxed: see `RecentSlot::hash_of`.
                slot.hash.store(hash, Relaxed);
                return;
            }
            i = (i + 1) & mask;
        }
    }

    /// Fills the first empty slot of `hash`'s probe sequence with `e`, a new key's entry
    /// that no other thread has seen, unless an entry with an equal key comes first, or
    /// is in `prev` (added to the replaced array by a thread that reserved room there
    /// before it was closed, possibly after our caller looked). Lock free: slots go from
    /// empty to filled by compare-and-swap, once, so two threads adding equal keys meet
    /// at the first slot either of them fills. The caller holds a reservation on the open
    /// array ([`Recent::try_reserve`]) and a guard protecting it; at most three quarters
    /// of the slots are filled, so the probe ends at an empty slot.
    fn add(&self, e: EntryPtr<K, V>, hash: u64) -> Add<K, V>
    where
        K: Eq,
    {
        // SAFETY: `e` is the caller's unpublished entry.
        let key = &unsafe { e.as_ref() }.key;
        // The replaced array is closed: no key is added to it any more, so one probe
        // settles it. If `prev` is already cleared, its entries are here (see
        // `SlotArray::prev`) and the loop below meets them.
        if let Some(other) = Recent::probe(self.prev(), hash, key) {
            return Add::Found(other);
        }
        // Before any fill (see `Filter`); the bits stay if an equal key is found instead.
        self.filter.insert(hash);
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        loop {
            let slot = &self.slots[i];
            // Acquire: as in `Recent::probe` (we may compare our key with the entry's).
            let mut p = slot.entry.load(Acquire);
            if p.is_null() {
                // Release on success: publishes our entry's initialisation to whoever
                // loads the pointer with Acquire. Acquire on failure: as above.
                match slot.entry.compare_exchange(p, e.as_ptr(), Release, Acquire) {
                    Ok(_) => {
                        // Relaxed: see `RecentSlot::hash_of`.
                        slot.hash.store(hash, Relaxed);
                        return Add::Added;
                    }
                    Err(actual) => p = actual,
                }
            }
            // Not null: the CAS failed, or the load saw a pointer.
            let other = NonNull::new(p).expect("a filled slot");
            // SAFETY: a filled slot's entry is live while our guard protects the array
            // (invariants 5 and 6).
            if squash(slot.hash_of(other)) == squash(hash) && unsafe { other.as_ref() }.key == *key
            {
                return Add::Found(other);
            }
            i = (i + 1) & mask;
        }
    }

    /// Whether `e` (whose hash is `hash`) fills a slot of `slots`: a probe comparing
    /// pointers, not keys (for iteration, which must not call `Eq`).
    fn holds(slots: &[RecentSlot<K, V>], e: EntryPtr<K, V>, hash: u64) -> bool {
        let Some(mask) = slots.len().checked_sub(1) else {
            return false;
        };
        let mut i = hash as usize & mask;
        loop {
            // Acquire: as in `Recent::probe`.
            match NonNull::new(slots[i].entry.load(Acquire)) {
                None => return false,
                Some(p) if p == e => return true,
                Some(_) => i = (i + 1) & mask,
            }
        }
    }
}

/// The recent table: entries of keys added since the read table was published, readable
/// and added to without the lock. Open addressing with linear probing in a [`SlotArray`].
///
/// * Adding a key reserves room first (`len`, see [`try_reserve`](Self::try_reserve)), then
///   fills an empty slot by compare-and-swap ([`SlotArray::add`]) and counts the fill in
///   its thread's stripe (`Stripes::recent_fill`). Adds that find no array, no room, or
///   the array closed take the lock and retry ([`add_locked`](Self::add_locked)), which
///   allocates the first array (so a read table to which no key is ever added costs
///   nothing), replaces one at its limit by one (at least) twice as large, or reports
///   the table full (the caller promotes).
/// * Growth closes the old array ([`close_locked`](Self::close_locked): one bit set in
///   `len`, then a wait for the adds already in flight) and publishes an empty array
///   twice as large with the old one as its `prev`, then reopens: an add either reserved
///   before the close, and is in the old array, or sees the bit (or, reserving after the
///   reopening, a different array) and retries under `mu`. Nothing is copied then:
///   lookups probe `prev` before the new array, adds check it before adding, and the old
///   entries are copied over in bounded steps ([`step_locked`](Self::step_locked))
///   by later operations, paced so that the copy is done before the new array needs to
///   grow or the table is full. The last step unlinks and retires `prev`. (Copying at
///   the growth cost up to 25 ms under the lock for 512 Ki entries: memory traffic.)
/// * A promotion (or `clear`) closes the array the same way before moving its entries
///   (and those of `prev` not copied yet) into the next main table, and never reopens
///   it; so no key is ever added to a recent table whose read table is no longer
///   published.
///
/// Closing writes nothing into the slots, so it costs the same for any array size (a
/// seal written into every empty slot by compare-and-swap cost 10–20 ms at 2 Mi slots).
/// Slots are never emptied. Once it holds `max_len` keys, the next new key promotes
/// (unless the rebuild lags: [`add_overflow_locked`](Self::add_overflow_locked)).
struct Recent<K, V> {
    /// The current slot array (from `Arc::into_raw`: a promotion may share it with the
    /// next read table as its [`Level`]), or null until the first add. Replaced under
    /// `mu`, with Release (see `arrays`).
    array: AtomicPtr<SlotArray<K, V>>,
    /// Slots of the first array: a power of two, or 0 when the recent table is off.
    first_capacity: usize,
    /// Most keys the table may hold.
    max_len: usize,
    /// The map's count of recent-table fills (`Stripes::recent_fills`) when this table
    /// was created: every add to an earlier recent table had been counted by then (their
    /// arrays were closed), and none to this one.
    fills_base: u64,
    /// Written by every new key: on their own lines, away from `array`, which every
    /// lookup that misses the main table reads.
    counts: CacheAligned<Counts>,
    /// The array the next growth will publish, being zeroed in steps (see [`Zeroing`]).
    /// Only under `mu` (the std mutex is never contended: it only lets `&self` reach it).
    #[cfg(not(any(loom, shuttle)))]
    next: std::sync::Mutex<Option<Prepared<K, V>>>,
}

/// A recent table's counts: what lock-free adders read and write, and the migration's
/// progress beside them.
struct Counts {
    /// Keys added plus adds in progress (reservations), and the [`CLOSED`] bit.
    len: AtomicUsize,
    /// The most keys lock-free adds may bring the table to: [`Recent::limit`] of the
    /// current array, or less while its `prev` is being copied (see
    /// [`Recent::step_locked`]). Written under `mu`; only rises while an array is
    /// current, and is set for a new array before the array is published (first array)
    /// or the table reopened (growth). Relaxed: an adder that reserved on the current
    /// array reads this array's value (the publication or the reopening orders it), and a
    /// stale one is lower: it only sends the add to the lock.
    open: AtomicUsize,
    /// Keys the table held when the current array was published. The rest are only
    /// under `mu` (std atomics: the lock orders them); see [`Recent::step_locked`].
    grown_at: std::sync::atomic::AtomicUsize,
    /// Slots of the current array's `prev` (0 if it replaced none).
    copy_total: std::sync::atomic::AtomicUsize,
    /// Slots of `prev` copied so far (`copy_total` once it is unlinked).
    migrated: std::sync::atomic::AtomicUsize,
    /// Slots of the array prepared for the next growth (`Recent::next`; 0 if none is
    /// planned).
    zero_total: std::sync::atomic::AtomicUsize,
    /// Slots of it zeroed so far.
    zeroed: std::sync::atomic::AtomicUsize,
}

/// The growth work left to the operations after a growth ([`Recent::step_locked`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Work {
    /// Copying the current array's `prev` into it.
    Copy,
    /// Zeroing the array the next growth will publish.
    Zero,
    /// Nothing left.
    Done,
}

/// The smallest slot array prepared ahead of its growth ([`Recent::zeroing_plan`]):
/// 2^14 slots, 256 KiB (below, `alloc_zeroed` costs microseconds at worst). Under Miri,
/// 64 slots, so that the unit tests' small tables run the preparation too.
const PREPARE_SLOTS: usize = if cfg!(miri) { 1 << 6 } else { 1 << 14 };

/// The largest first slot array a recent table allocates (2^13 slots, 128 KiB): it is
/// allocated zeroed under the lock, with nothing prepared for it (larger ones come from
/// growths, prepared ahead: [`Recent::zeroing_plan`]).
const FIRST_SLOTS_MAX: usize = 1 << 13;

/// `capacity` empty slots.
fn empty_slots<K, V>(capacity: usize) -> Slots<K, V> {
    #[cfg(not(any(loom, shuttle)))]
    {
        ZeroedSlice::new(capacity)
    }
    #[cfg(any(loom, shuttle))]
    {
        (0..capacity)
            .map(|_| RecentSlot {
                hash: AtomicU64::new(0),
                entry: AtomicPtr::new(std::ptr::null_mut()),
            })
            .collect()
    }
}

impl<K, V> Drop for Recent<K, V> {
    fn drop(&mut self) {
        // Relaxed: `&mut self`, no other thread can access the table.
        let array = self.array.load(Relaxed);
        if !array.is_null() {
            // SAFETY: the current array came from `Arc::into_raw` in `add_locked`, and
            // this table's strong count is given up only here (replaced arrays belong to
            // their successor's `prev`, and are retired when unlinked from it).
            drop(unsafe { Arc::from_raw(array.cast_const()) });
        }
    }
}

impl<K, V> Recent<K, V> {
    /// A recent table for a read table of `read_len` entries; `fills_base` as in the
    /// field's docs.
    fn new(policy: RecentKeys, read_len: usize, fills_base: u64) -> Self {
        let (first, max_len) = match policy {
            RecentKeys::Off => (0, 0),
            RecentKeys::AtMost(n) => {
                let n = n.get().min(MAX_RECENT);
                // Start with two slots (one key) and double: small tables exercise growth.
                (1_usize, n)
            }
            // Up to half the read table: a full recent table triggers a promotion and
            // then a rebuild copying `read_len` entries, so each new key pays for about
            // two copies, plus about two for the doublings of the array on the way. The
            // first array has room for 1/32 of the read table (growth sends the adds that
            // find the array closed to the lock, so it should not happen every few keys),
            // but at most `FIRST_SLOTS_MAX` slots (it is allocated under the lock with
            // nothing prepared: see there).
            RecentKeys::Auto => {
                let max_len = (read_len / 2).clamp(8, MAX_RECENT);
                ((read_len / 32).clamp(8, max_len), max_len)
            }
        };
        Recent {
            array: AtomicPtr::new(std::ptr::null_mut()),
            first_capacity: if first == 0 {
                0
            } else {
                (first * 2).next_power_of_two().min(FIRST_SLOTS_MAX)
            },
            max_len,
            fills_base,
            counts: CacheAligned(Counts {
                len: AtomicUsize::new(0),
                open: AtomicUsize::new(0),
                grown_at: std::sync::atomic::AtomicUsize::new(0),
                copy_total: std::sync::atomic::AtomicUsize::new(0),
                migrated: std::sync::atomic::AtomicUsize::new(0),
                zero_total: std::sync::atomic::AtomicUsize::new(0),
                zeroed: std::sync::atomic::AtomicUsize::new(0),
            }),
            #[cfg(not(any(loom, shuttle)))]
            next: std::sync::Mutex::new(None),
        }
    }

    /// The most keys an array of `capacity` slots may hold: half its slots, or up to three
    /// quarters when that reaches `max_len` (rather than doubling for a few more keys:
    /// it also leaves every growth at least a quarter of the old array's slots in new
    /// keys to pace the copy of the old entries over, see
    /// [`step_locked`](Self::step_locked)).
    fn limit(&self, capacity: usize) -> usize {
        if self.max_len <= capacity / 4 * 3 {
            self.max_len
        } else {
            self.max_len.min(capacity / 2)
        }
    }

    /// The array this one's current array replaced while its entries are being copied
    /// into it (else none), and the current array (none until the first add): a lookup
    /// probes the former first. The references stay valid while the guard protecting
    /// the read table is held: replaced arrays are retired.
    #[inline]
    fn arrays(&self) -> PrevAndCurrent<'_, K, V> {
        // SeqCst, what `Guard::protect` uses for the pointers it protects (seize states its
        // guarantee for such loads; it is a plain load on x86): the caller's guard protects
        // the array. Acquire is what the contents need: pairs with the Release store in
        // `add_locked`, so the array's slots and their contents at publication are visible.
        let array = self.array.load(SeqCst);
        if array.is_null() {
            return (None, None);
        }
        // SAFETY: a non-null `array` was published by `add_locked` and is freed only after
        // it is replaced and retired (and the caller's guard is gone) or with `self`.
        let array = unsafe { &*array };
        (array.prev(), Some(array))
    }

    /// The current array, for a caller holding `mu` (which every replacement holds).
    fn array_locked(&self) -> Option<&SlotArray<K, V>> {
        // Relaxed: replaced only under `mu`, which the caller holds.
        // SAFETY: as in `arrays`.
        NonNull::new(self.array.load(Relaxed)).map(|a| unsafe { &*a.as_ptr() })
    }

    /// Another owner of the current array, for the [`Level`] of the next read table.
    /// Caller holds `mu`, has closed the table and finished the array's migration (a
    /// level has no `prev`).
    fn share_locked(&self) -> Option<Arc<SlotArray<K, V>>> {
        // Relaxed: replaced only under `mu`, which the caller holds.
        let array = NonNull::new(self.array.load(Relaxed))?;
        // SAFETY: the pointer came from `Arc::into_raw` and this table still holds its
        // strong count (given up only when the table is dropped), so the count is at
        // least one while we add ours and take it back as an `Arc`.
        let array = unsafe {
            Arc::increment_strong_count(array.as_ptr().cast_const());
            Arc::from_raw(array.as_ptr().cast_const())
        };
        // Relaxed: cleared only under `mu`, which the caller holds.
        debug_assert!(array.prev.load(Relaxed).is_null(), "a level has no prev");
        Some(array)
    }

    /// Bytes of the current array (and of its `prev`, and of the array prepared for the
    /// next growth) that this table alone owns (a shared one is counted with the
    /// [`Level`] that shares it), for the `retired_bytes` statistic.
    fn owned_bytes(&self) -> u64 {
        #[cfg(not(any(loom, shuttle)))]
        let prepared = self
            .next
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, |z| {
                (z.slots.len() * std::mem::size_of::<RecentSlot<K, V>>()
                    + z.filter.len() * std::mem::size_of::<AtomicU64>()) as u64
            });
        #[cfg(any(loom, shuttle))]
        let prepared = 0;
        // SeqCst: as in `arrays` (the caller's guard or `mu` keeps the array alive).
        let Some(array) = NonNull::new(self.array.load(SeqCst)) else {
            return prepared;
        };
        // SAFETY: as in `share_locked`; `ManuallyDrop` leaves the count as it was.
        let arc =
            std::mem::ManuallyDrop::new(unsafe { Arc::from_raw(array.as_ptr().cast_const()) });
        prepared
            + if Arc::strong_count(&arc) == 1 {
                (arc.heap_bytes() + arc.prev().map_or(0, SlotArray::heap_bytes)) as u64
            } else {
                0
            }
    }

    /// Finds `key`'s entry in `array` (from [`arrays`](Self::arrays), or a level).
    /// Lock-free; callers hold a guard protecting the read table. No array finds nothing.
    #[inline]
    fn probe<Q>(array: Option<&SlotArray<K, V>>, hash: u64, key: &Q) -> Option<EntryPtr<K, V>>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let array = array?;
        if !array.filter.may_hold(hash) {
            return None;
        }
        let slots = &array.slots[..];
        let mask = slots.len().checked_sub(1)?;
        let mut i = hash as usize & mask;
        loop {
            let slot = &slots[i];
            // Acquire: pairs with the Release that filled the slot (`SlotArray::add`, a
            // migration's `insert_migrated`, or the array's publication), making the
            // entry's initialisation visible.
            let p = slot.entry.load(Acquire);
            // An empty slot ends the probe: a key lives past every slot that was filled
            // when it was added.
            let e = NonNull::new(p)?;
            if squash(slot.hash_of(e)) == squash(hash) {
                // SAFETY: entries of a published read table's recent table are live while
                // the guard protecting the table is held (invariants 5 and 6).
                if unsafe { e.as_ref() }.key.borrow() == key {
                    return Some(e);
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// Finds `key`'s entry in the (prev, current) arrays from [`arrays`](Self::arrays),
    /// which loaded `prev` before either is probed. A key of `prev` is there (closed: it
    /// holds every key the table had when the current array replaced it), copied or not;
    /// if `prev` was already unlinked when loaded, its entries are in the current array,
    /// visible (see `SlotArray::prev`). (Loading `prev` only after probing the
    /// current array could miss a key copied just after that probe and unlinked before
    /// the load.)
    #[inline]
    fn probe_both<Q>(
        (prev, current): PrevAndCurrent<'_, K, V>,
        hash: u64,
        key: &Q,
    ) -> Option<EntryPtr<K, V>>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        if prev.is_none() {
            Self::probe(current, hash, key)
        } else {
            Self::probe(prev, hash, key).or_else(|| Self::probe(current, hash, key))
        }
    }

    /// Finds `key`'s entry. Lock-free; callers hold a guard protecting the read table.
    #[inline]
    fn find<Q>(&self, hash: u64, key: &Q) -> Option<EntryPtr<K, V>>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        Self::probe_both(self.arrays(), hash, key)
    }

    /// Reserves room for one key in the current array, without the lock. `None` (nothing
    /// reserved) when there is no array yet, the array is closed or was replaced, or the
    /// table has reached what lock-free adds may fill (`Counts::open`: the table full, the
    /// array at its [`limit`](Self::limit), or its migration behind): the caller takes the
    /// lock ([`add_locked`](Self::add_locked)).
    ///
    /// Every add holds a reservation, counted in `len` until the add fails, and the
    /// reservation that makes `len` exceed `open` is refused. Since filled slots are never
    /// emptied (and a migration copies only keys `len` already counts), the last
    /// reservation that filled a slot of an array saw every filled slot of it counted, so
    /// lock-free adds never fill more than the limit (adds under `mu` past `max_len` may
    /// fill up to three quarters: [`add_overflow_locked`](Self::add_overflow_locked)).
    #[inline]
    fn try_reserve(&self) -> Option<Reserved<'_, K, V>> {
        // SeqCst: as in `arrays`.
        let loaded = self.array.load(SeqCst);
        let array = NonNull::new(loaded)?;
        // SAFETY: as in `arrays`.
        let array = unsafe { &*array.as_ptr() };
        // Acquire: if the array we loaded was replaced by a growth that has reopened the
        // table, this reads the reopening's Release (or a later value of its release
        // sequence), so the load of `array` below sees the replacement. Otherwise the
        // count's modification order alone is what matters: it bounds the filled slots
        // (above), and our increment either precedes a close (which then waits for our
        // add, see `close_locked`) or sees its bit.
        let n = self.counts.len.fetch_add(1, Acquire) + 1;
        let reservation = Reservation(Some(self));
        if n & CLOSED != 0 || self.array.load(SeqCst) != loaded {
            return None; // closed, or closed and replaced since we loaded it
        }
        // Relaxed: see `Counts::open` (our array is current and stays so until our
        // reservation ends: a growth closes it first and waits for us).
        let open = self.counts.open.load(Relaxed);
        (n <= open).then(|| (array, reservation, open - n))
    }

    /// Gives back a reservation whose add did not fill a slot.
    fn unreserve(&self) {
        // Relaxed: as in `try_reserve`.
        self.counts.len.fetch_sub(1, Relaxed);
    }

    /// Closes the current array: sets [`CLOSED`] in `len`, so that no add can start on it,
    /// and waits until every add that reserved room before (but the caller's own `own`
    /// reservations) has filled its slot or given its reservation back. Afterwards the
    /// array's slots no longer change (but for migration steps, under `mu`) and every fill
    /// is visible to the caller. Caller holds `mu`, and the array is open (each array is
    /// closed once: by the growth that replaces it, or by the promotion or `clear` that
    /// retires its read table).
    ///
    /// The wait is for adds already between their reservation and their compare-and-swap
    /// (a probe of a few slots, and the key comparisons of equal hashes): it is long only
    /// if such a thread was preempted there, or its key's `Eq` is slow.
    /// Returns the number of keys the table holds (exact, once closed), not counting the
    /// caller's own reservations.
    fn close_locked(&self, stripes: &Stripes, own: usize) -> usize {
        // Relaxed: the bit needs only the count's modification order: an increment that
        // comes after this one in it sees the bit, one that comes before is waited for.
        let was = self.counts.len.fetch_or(CLOSED, Relaxed);
        debug_assert_eq!(was & CLOSED, 0, "an array is closed once");
        let mut round = 0;
        loop {
            // Every reservation taken before the close ends as one fill, counted in the
            // stripes, or one decrement of `len`; fills of earlier tables are in
            // `fills_base`, and no other table's adds count now (their arrays are closed).
            // The stripes are read first and may lag (they only grow); once closed, `len`
            // only rises for increments that are undone at once (a higher value only
            // delays the equality): so when the sum reaches `len`,
            // every reservation has ended and every fill's count was read, with Acquire,
            // after the fill (`Stripes::recent_fill`). (A migration's copies are neither:
            // `len` counted their keys when they were added to the old array.)
            let fills = stripes.recent_fills().wrapping_sub(self.fills_base);
            // Relaxed: as above (the fills' visibility comes from the stripes' Acquire).
            let reserved = self.counts.len.load(Relaxed) & !CLOSED;
            if fills == (reserved - own) as u64 {
                return reserved - own;
            }
            crate::sync::backoff(round);
            round += 1;
        }
    }

    /// Reopens the table after a growth published a new array. Caller holds `mu`.
    fn reopen_locked(&self) {
        // Release: an adder whose reservation reads this (Acquire) sees the new array
        // (stored before) when it checks that its array is still current, and the new
        // array's `open`.
        self.counts.len.fetch_and(!CLOSED, Release);
    }

    /// Takes a step of the work a growth leaves to later operations, under `mu`: copying
    /// the current array's `prev` into it (a migration step: `step_slots` slots of
    /// `prev`), then, for a table that will grow again into a large array, zeroing that
    /// array ahead of time (`4 × step_slots` slots, see [`Zeroing`]) — and more such
    /// steps, until lock-free adds are allowed `want` keys. Returns the number of
    /// entries copied.
    ///
    /// Pacing: a growth happens when the table holds `grown_at` keys; the new array's
    /// [`limit`](Self::limit) leaves `room` more (at least a quarter of `prev`'s slots).
    /// The work is shared out over that room: the copy over its first half and the
    /// zeroing over the second (either over all of it when it is the only work), and
    /// lock-free adds may bring the table to `grown_at` plus the room the work done so far
    /// pays for (`Counts::open`; see [`progress_locked`](Self::progress_locked)). Every add
    /// under `mu` first does enough for its own key. So the table reaches the new array's
    /// limit (the next growth, or `max_len`) only once the work is done (up to a few
    /// slots per add in flight), at an average of at most 8 slots copied and 32 zeroed
    /// per key added (half the room, at least an eighth of `prev`'s slots, for copying
    /// them; the other half for the new array's four times as many): no operation
    /// waits for more than a few steps, whatever the table's size. The last copy step unlinks `prev` and
    /// retires it through `guard`.
    fn step_locked(&self, guard: &impl Guard, want: usize, step_slots: usize) -> u64 {
        let Some(array) = self.array_locked() else {
            return 0;
        };
        let mut copied = 0;
        let mut steps = 0;
        loop {
            let (open, work) = self.progress_locked(array);
            // Relaxed: see `Counts::open` (only rises while the array is current).
            self.counts.open.store(open, Relaxed);
            if (open >= want && steps > 0) || work == Work::Done {
                return copied;
            }
            match work {
                Work::Copy => copied += self.copy_locked(array, guard, step_slots),
                Work::Zero => self.zero_locked(step_slots.saturating_mul(4)),
                Work::Done => unreachable!(),
            }
            steps += 1;
        }
    }

    /// What lock-free adds to the current array may bring the table to (`Counts::open`),
    /// and the work left: see [`step_locked`](Self::step_locked). Under `mu`.
    fn progress_locked(&self, array: &SlotArray<K, V>) -> (usize, Work) {
        // Relaxed: only under `mu` (see `Counts`).
        let load = |a: &std::sync::atomic::AtomicUsize| a.load(Relaxed);
        let c = &*self.counts;
        let (grown_at, copy_total, copied) =
            (load(&c.grown_at), load(&c.copy_total), load(&c.migrated));
        let (zero_total, zeroed) = (load(&c.zero_total), load(&c.zeroed));
        let limit = self.limit(array.slots.len());
        let room = limit.saturating_sub(grown_at);
        let copy_share = match (copy_total, zero_total) {
            (0, _) => 0,
            (_, 0) => room,
            _ => room / 2,
        };
        let zero_share = if zero_total == 0 {
            0
        } else {
            room - copy_share
        };
        let share = |part: usize, done: usize, total: usize| {
            if total == 0 {
                0
            } else {
                (part as u128 * done as u128 / total as u128) as usize
            }
        };
        let open = grown_at
            + (room - copy_share - zero_share)
            + share(copy_share, copied, copy_total)
            + share(zero_share, zeroed, zero_total);
        let work = if copied < copy_total {
            Work::Copy
        } else if zeroed < zero_total {
            Work::Zero
        } else {
            Work::Done
        };
        (open.min(limit), work)
    }

    /// Copies up to `slots` more slots' entries of `array`'s `prev` into it; unlinks and
    /// retires `prev` through `guard` after the last. Returns the entries copied. Under
    /// `mu`, `array` current.
    fn copy_locked(&self, array: &SlotArray<K, V>, guard: &impl Guard, slots: usize) -> u64 {
        // Relaxed: cleared only under `mu`, which we hold.
        let prev = array.prev.load(Relaxed);
        let Some(old) = NonNull::new(prev) else {
            return 0;
        };
        // SAFETY: a non-null `prev` is live while its array is (which `mu` keeps current).
        let old = unsafe { &old.as_ref().slots };
        let total = old.len();
        // Relaxed: only under `mu` (see `Counts`).
        let from = self.counts.migrated.load(Relaxed);
        let to = from.saturating_add(slots.max(1)).min(total);
        let mut copied = 0;
        for slot in &old[from..to] {
            // Acquire: as in `for_each_filled` (`prev` was closed before it was linked).
            if let Some(e) = NonNull::new(slot.entry.load(Acquire)) {
                array.insert_migrated(e, slot.hash_of(e));
                copied += 1;
            }
        }
        // Relaxed: only under `mu`.
        self.counts.migrated.store(to, Relaxed);
        if to == total {
            // Release: see `SlotArray::prev` (a lookup that sees null sees the
            // copies made above).
            array.prev.store(std::ptr::null_mut(), Release);
            // SAFETY: `prev` is no longer reachable from `array`, the only place it was
            // linked (a replaced array is never shared: only a promotion shares the
            // current one); it came from `Arc::into_raw` and is retired once (unlinked once).
            unsafe { guard.defer_retire(prev, arced::<SlotArray<K, V>>) };
        }
        copied
    }

    /// Zeroes up to `slots` more slots of the array the next growth will publish
    /// (allocating it, uninitialised, first). Under `mu`.
    #[cfg(not(any(loom, shuttle)))]
    fn zero_locked(&self, slots: usize) {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        // Relaxed: only under `mu` (see `Counts`).
        let total = self.counts.zero_total.load(Relaxed);
        let next = next.get_or_insert_with(|| Prepared {
            slots: Zeroing::new(total),
            filter: Zeroing::new(Filter::words_for(total)),
        });
        next.slots.zero(slots);
        // A word per eight slots: done no later than the slots.
        next.filter.zero(slots.div_ceil(8));
        // Relaxed: only under `mu`.
        self.counts.zeroed.store(next.slots.zeroed(), Relaxed);
    }

    /// No arrays are prepared under loom and shuttle (`zero_total` stays 0).
    #[cfg(any(loom, shuttle))]
    fn zero_locked(&self, _slots: usize) {
        unreachable!("no zeroing is planned under loom or shuttle");
    }

    /// A new array of `capacity` slots replacing `prev` (as for [`SlotArray::new`]): the
    /// slots and filter prepared for it (zeroing what is left of them: nothing, when the
    /// pacing kept up), else fresh ones. Under `mu`.
    fn take_array_locked(&self, capacity: usize, prev: *mut SlotArray<K, V>) -> SlotArray<K, V> {
        #[cfg(not(any(loom, shuttle)))]
        {
            let next = self.next.lock().unwrap_or_else(|e| e.into_inner()).take();
            // Relaxed: only under `mu` (see `Counts`).
            self.counts.zero_total.store(0, Relaxed);
            self.counts.zeroed.store(0, Relaxed);
            match next {
                Some(next) if next.slots.len() == capacity => {
                    debug_assert!(
                        next.slots.zeroed() < next.slots.len()
                            || next.filter.zeroed() == next.filter.len(),
                        "the filter is zeroed no later than the slots"
                    );
                    let words = next.filter.finish();
                    SlotArray::with_filter(Filter { words }, next.slots.finish(), prev)
                }
                _ => SlotArray::new(empty_slots(capacity), prev),
            }
        }
        #[cfg(any(loom, shuttle))]
        {
            SlotArray::new(empty_slots(capacity), prev)
        }
    }

    /// Slots to zero ahead of time for the growth after one to `capacity` slots: its array
    /// (twice as large), if that growth can happen and the array is large enough for its
    /// allocation to matter ([`PREPARE_SLOTS`]); else 0.
    fn zeroing_plan(&self, capacity: usize) -> usize {
        let next = capacity.saturating_mul(2);
        if cfg!(any(loom, shuttle)) || self.limit(capacity) >= self.max_len || next < PREPARE_SLOTS
        {
            0
        } else {
            next
        }
    }

    /// Whether the current array's growth work is unfinished (a hint for lock-free adders,
    /// which then try the lock to take a step). Relaxed: a stale answer only skips or
    /// wastes one `try_lock`.
    #[inline]
    fn has_steps(&self, array: &SlotArray<K, V>) -> bool {
        self.counts.open.load(Relaxed) < self.limit(array.slots.len())
    }

    /// Adds `e` (a new key's entry, which no other thread has seen) to the table under
    /// `mu`: allocates the first array, or replaces one at its limit by one at least twice
    /// as large,
    /// and keeps the migration of the old array's entries on pace (at least `step_slots`
    /// slots of it copied), as needed. `Full` when the table holds `max_len` keys or is
    /// off. Replaced arrays are retired through `guard`; the fill is counted in `guard`'s
    /// thread's stripe. `*copied` is increased by the number of entries migrated (part of
    /// this operation's pause).
    fn add_locked(
        &self,
        e: EntryPtr<K, V>,
        hash: u64,
        guard: &impl Guard,
        stripes: &Stripes,
        step_slots: usize,
        copied: &mut u64,
    ) -> Add<K, V>
    where
        K: Eq,
    {
        if self.max_len == 0 {
            return Add::Full; // off: no shared counter to touch
        }
        // Relaxed: as in `try_reserve` (we hold `mu`, so the table is open and our array
        // current).
        let n = self.counts.len.fetch_add(1, Relaxed) + 1;
        debug_assert_eq!(n & CLOSED, 0, "the current array is open under `mu`");
        let reservation = Reservation(Some(self));
        if n > self.max_len {
            return Add::Full;
        }
        // Relaxed: replaced only under `mu`, which we hold.
        let old = self.array.load(Relaxed);
        // SAFETY: a non-null array is live (retired only when replaced, below, under `mu`).
        let capacity = NonNull::new(old).map_or(0, |a| unsafe { a.as_ref() }.slots.len());
        if n > self.limit(capacity) {
            let capacity = (capacity * 2)
                .max(self.first_capacity)
                .max((n * 2).next_power_of_two());
            let held = if old.is_null() {
                0
            } else {
                // The pacing has (all but) finished the current array's own migration:
                // at most what reservations in flight made `n` run ahead is left.
                *copied += self.finish_migration_locked(guard);
                // Our own reservation (`n`) is the one not to wait for.
                self.close_locked(stripes, 1)
            };
            // The old array (closed) becomes the new one's `prev`: its entries are copied
            // over by later steps (our own, just below, first). The new slots were
            // prepared by the steps since the last growth if large.
            let array = self.take_array_locked(capacity, old);
            // SAFETY: a non-null `old` is a live array (see above).
            let old_slots = NonNull::new(old).map_or(0, |a| unsafe { a.as_ref() }.slots.len());
            let new = Arc::into_raw(Arc::new(array)).cast_mut();
            // Relaxed: only under `mu` (see `Counts`).
            let c = &*self.counts;
            c.grown_at.store(held, Relaxed);
            c.copy_total.store(old_slots, Relaxed);
            c.migrated.store(0, Relaxed);
            c.zero_total.store(self.zeroing_plan(capacity), Relaxed);
            c.zeroed.store(0, Relaxed);
            // SAFETY: `new` came from `Arc::into_raw` just above and is not shared yet.
            let (open, _) = self.progress_locked(unsafe { &*new });
            // Relaxed: see `Counts::open`: stored before the publication and the reopening
            // that order it for adders.
            c.open.store(open, Relaxed);
            // Release: see `arrays`.
            self.array.store(new, Release);
            if !old.is_null() {
                self.reopen_locked();
            }
        }
        // Keep the growth work on pace, with room for our key.
        *copied += self.step_locked(guard, n, step_slots);
        let array = self.array_locked().expect("allocated above if missing");
        match array.add(e, hash) {
            Add::Added => {
                reservation.keep();
                stripes.recent_fill(guard.thread_id());
                Add::Added
            }
            Add::Found(other) => Add::Found(other),
            Add::Full => unreachable!("`SlotArray::add` does not report a full table"),
        }
    }

    /// Adds `e` (as in [`add_locked`](Self::add_locked), which reported the table full)
    /// past `max_len`, while the dirty table's rebuild lags (see `new_entry_locked`): up
    /// to three quarters of the current array's slots (which has at least `4/3 × max_len`
    /// slots), without growing it (a probe still ends at an empty slot). `Full` beyond
    /// that, or when the table is off. Caller holds `mu`; the fill is counted in
    /// `guard`'s thread's stripe.
    fn add_overflow_locked(
        &self,
        e: EntryPtr<K, V>,
        hash: u64,
        guard: &impl Guard,
        stripes: &Stripes,
    ) -> Add<K, V>
    where
        K: Eq,
    {
        let Some(array) = self.array_locked() else {
            return Add::Full;
        };
        // A full table has copied its `prev` (see `step_locked`); this only finishes
        // what reservations in flight may have left.
        self.finish_migration_locked(guard);
        // Relaxed: as in `add_locked`. Lock-free adders are refused past `max_len`
        // (`try_reserve`): every add past it is made here, under `mu`.
        let n = self.counts.len.fetch_add(1, Relaxed) + 1;
        let reservation = Reservation(Some(self));
        if n > array.slots.len() / 4 * 3 {
            return Add::Full;
        }
        match array.add(e, hash) {
            Add::Added => {
                reservation.keep();
                stripes.recent_fill(guard.thread_id());
                Add::Added
            }
            other => other,
        }
    }

    /// Calls `f` with every entry of the table (with its hash): the current array's, and
    /// those of its `prev` not copied into it yet. Caller holds `mu` and has closed the
    /// table (or has exclusive access): the slots no longer change.
    fn for_each_closed(&self, mut f: impl FnMut(EntryPtr<K, V>, u64)) {
        let Some(array) = self.array_locked() else {
            return;
        };
        for_each_filled(&array.slots, &mut f);
        // Relaxed: only under `mu` (see `Counts`).
        let from = self.counts.migrated.load(Relaxed);
        let prev = array.prev_slots();
        if !prev.is_empty() {
            for_each_filled(&prev[from..], &mut f);
        }
    }

    /// Slots of the current array's `prev` not copied yet (0 without one). Under `mu`.
    fn growth_pending_locked(&self) -> usize {
        let Some(array) = self.array_locked() else {
            return 0;
        };
        // Relaxed: only under `mu` (see `Counts`).
        array
            .prev_slots()
            .len()
            .saturating_sub(self.counts.migrated.load(Relaxed))
    }

    /// Finishes copying the current array's `prev` (see [`step_locked`](Self::step_locked)).
    /// Under `mu`. Returns the entries copied: once the table is full (which is when
    /// promotions keep the array as a level) or at its array's limit (a growth), the
    /// pacing has done all but a few slots per lock-free add that was in flight (and
    /// counted in the reservations that made the table look full): a bound set by the
    /// number of threads, not the table's size.
    fn finish_migration_locked(&self, guard: &impl Guard) -> u64 {
        let Some(array) = self.array_locked() else {
            return 0;
        };
        let copied = self.copy_locked(array, guard, usize::MAX);
        let (open, _) = self.progress_locked(array);
        // Relaxed: see `Counts::open`.
        self.counts.open.store(open, Relaxed);
        copied
    }

    /// Keys added plus adds in progress. Relaxed: an estimate for statistics and the
    /// promotion rule (exact when no add is in progress).
    #[inline]
    fn len(&self) -> usize {
        self.counts.len.load(Relaxed) & !CLOSED
    }
}

/// Calls `f` with each entry (and its hash) of `slots`, from a closed array (see
/// [`Recent::close_locked`]: no add is in flight or can start, so the slots no longer
/// change). A read-only pass: closing wrote nothing into the slots. Caller holds `mu`
/// (or has exclusive access: the map's `Drop`).
fn for_each_filled<K, V>(slots: &[RecentSlot<K, V>], f: &mut impl FnMut(EntryPtr<K, V>, u64)) {
    for slot in slots {
        // Acquire: the close already made every fill visible (`Recent::close_locked`);
        // kept so that the entry read below is ordered by the slot itself too.
        if let Some(e) = NonNull::new(slot.entry.load(Acquire)) {
            f(e, slot.hash_of(e));
        }
    }
}

/// A recent table's arrays: the one being copied into the current one (none when none
/// is), and the current one (none before the first add) ([`Recent::arrays`]).
type PrevAndCurrent<'r, K, V> = (Option<&'r SlotArray<K, V>>, Option<&'r SlotArray<K, V>>);

/// Whether a lock-free adder whose reservation left `headroom` more lock-free adds before
/// the growth work's pacing refuses them ([`Recent::step_locked`]) should try the lock
/// to take a step: when the limit is near, and otherwise one add in eight (trying the
/// lock is a compare-and-swap on the mutex's line, which every adder would otherwise
/// write while a growth's work lasts; on the 2-core development machine either choice
/// gave the same insert rate, within its noise). `headroom` stands in for the add's
/// rank, which is all that tells adders apart here.
#[inline]
fn step_now(headroom: usize) -> bool {
    headroom < 32 || headroom % 8 == 0
}

/// The array a lock-free add goes into, and its reservation ([`Recent::try_reserve`]).
/// Also how many more keys lock-free adds may add after this one (`Counts::open`).
type Reserved<'r, K, V> = (&'r SlotArray<K, V>, Reservation<'r, K, V>, usize);

/// A reservation of room in a recent table ([`Recent::try_reserve`], and the one
/// [`Recent::add_locked`] takes), counted in its `len`: given back when dropped, unless
/// the add filled a slot ([`keep`](Self::keep)). So an add that finds its key, finds the
/// array closed or the table full, or unwinds from a panic in user `Eq` while probing
/// never leaves `len` counting a key that was not added (nor keeps a close waiting).
struct Reservation<'r, K, V>(Option<&'r Recent<K, V>>);

impl<K, V> Reservation<'_, K, V> {
    /// The add filled a slot: the reservation stays counted.
    fn keep(mut self) {
        self.0 = None;
    }
}

impl<K, V> Drop for Reservation<'_, K, V> {
    fn drop(&mut self) {
        if let Some(recent) = self.0 {
            recent.unreserve();
        }
    }
}

/// State protected by `mu`.
struct Dirty<K, V> {
    /// The dirty table; `None` right after a promotion until the next new key.
    table: Option<Table<EntryPtr<K, V>>>,
    /// Lookups that consulted the dirty table since the last promotion.
    misses: usize,
    /// The striped recent-table hit total at the last promotion (misses answered by the
    /// recent table since then are the current total minus this).
    recent_lookups_base: u64,
    /// Entries expunged by the last rebuild (still in the read table, not in `table`).
    expunged: Vec<EntryPtr<K, V>>,
    /// The entries of `expunged` unexpunged since (live again, in `table`): the
    /// promotion hands both lists to `graves`, which must not retire these.
    revived: Vec<EntryPtr<K, V>>,
    /// Expunged entries of read tables replaced by promotions, waiting to be retired a
    /// step at a time (see [`Grave`]), oldest first.
    graves: std::collections::VecDeque<Grave<K, V>>,
    /// The rebuild of `table` from the read table, while it is in progress.
    rebuild: Option<Rebuild>,
    /// Explicit promotions stepping through a rebuild with `mu` released between steps
    /// ([`RawRef::promote`]): other promotions wait meanwhile.
    promoting: usize,
    counters: LockedCounters,
}

/// The entries a rebuild expunged, handed over by the promotion that replaced the read
/// table holding them: unreachable from every table published since, so they may be
/// retired at any later time (through the guard of the operation that retires them,
/// which covers every guard that could still see the old table). A promotion used to
/// retire them all at once under the lock: 92–121 ms for the 1.4 M entries of a 4 Mi-key
/// map with a third of its keys removed, plus seize freeing them all at the end of one
/// operation that had waited for the lock inside its guard (140–200 ms). Now the
/// promotion retires at most [`RawRef::bury_at_promotion`] of them (all, in a small
/// map) and the rest are retired in steps by the operations that take rebuild steps
/// ([`RawRef::bury_locked`]).
///
/// Whether an entry is still expunged cannot be asked later: one unexpunged before the
/// promotion is live again, and the next rebuild may expunge it again (it is then on two
/// lists). So unexpunges are recorded as they happen (`Dirty::revived`, rare: a store of
/// a key removed before the rebuild reached it) and skipped here.
struct Grave<K, V> {
    entries: Vec<EntryPtr<K, V>>,
    /// Entries of `entries` that are live (unexpunged before the promotion).
    revived: std::collections::HashSet<EntryPtr<K, V>>,
}

/// What a [`RawRef::clear`] still has to detach once it has swapped the tables: the old
/// tables are unpublished and private to the call, which walks them in steps.
struct Cleared<'t, K, V> {
    /// The old read table (unpublished; live because only the clearing call retires
    /// it, after the last step).
    old: &'t ReadTable<K, V>,
    /// Its slots that hold entries in no other table (not visited by the rebuild).
    unvisited: std::ops::Range<usize>,
    /// Entries the last rebuild expunged: still in the old read table only, unless
    /// revived since (then in the dirty table, and no longer expunged).
    expunged: Vec<EntryPtr<K, V>>,
    /// The old dirty table, walked from slot `slot`.
    table: Option<Table<EntryPtr<K, V>>>,
    slot: usize,
    /// The closed recent table's entries (in no other table, invariant 6).
    recent: Vec<EntryPtr<K, V>>,
    /// Debug builds: every entry handed out so far, to catch one handed out twice.
    #[cfg(debug_assertions)]
    handed: std::collections::HashSet<EntryPtr<K, V>>,
}

impl<K, V> Cleared<'_, K, V> {
    /// Hands up to `budget` entries to `detach`, each once, visiting at most 16 ×
    /// `budget` slots or list items (a sparse table cannot make a step long); returns
    /// whether all are handed out. The expunged list comes before the dirty table:
    /// detaching a dirty-table entry expunges it, and a revived entry is on both, so
    /// only one that is still expunged before any dirty-table entry is detached is in
    /// no other place.
    fn step(
        &mut self,
        budget: usize,
        guard: &impl Guard,
        mut detach: impl FnMut(EntryPtr<K, V>),
    ) -> bool {
        let mut detach = |e: EntryPtr<K, V>| {
            #[cfg(debug_assertions)]
            assert!(self.handed.insert(e), "an entry handed out twice");
            detach(e);
        };
        let (mut entries, mut visits) = (budget, budget.saturating_mul(16));
        let more = |entries: usize, visits: &mut usize| {
            let go = entries > 0 && *visits > 0;
            *visits = visits.saturating_sub(1);
            go
        };
        // Entries handed out from the slots, the dirty table and the recent table are
        // never expunged: one would be an entry handed out twice (a revived entry
        // detached through `expunged` first) or one that should not be here.
        // SAFETY: the entries are live until `detach` retires them (invariant 5).
        let live = |e: EntryPtr<K, V>| !unsafe { e.as_ref() }.is_expunged(guard);
        while !self.unvisited.is_empty() && more(entries, &mut visits) {
            if let Some(e) = self.old.slot(self.unvisited.start) {
                debug_assert!(live(e), "an unvisited read-table entry is expunged");
                detach(e);
                entries -= 1;
            }
            self.unvisited.start += 1;
        }
        while self.unvisited.is_empty() && !self.expunged.is_empty() && more(entries, &mut visits) {
            let e = self.expunged.pop().expect("not empty");
            // SAFETY: live until retired (invariant 5); only this call retires it.
            if unsafe { e.as_ref() }.is_expunged(guard) {
                detach(e);
                entries -= 1;
            }
        }
        if self.unvisited.is_empty() && self.expunged.is_empty() {
            if let Some(table) = &self.table {
                while self.slot < table.num_slots() && more(entries, &mut visits) {
                    if let Some(&e) = table.get_slot(self.slot) {
                        debug_assert!(live(e), "a dirty-table entry is expunged");
                        detach(e);
                        entries -= 1;
                    }
                    self.slot += 1;
                }
                if self.slot == table.num_slots() {
                    self.table = None;
                }
            }
        }
        if self.unvisited.is_empty() && self.expunged.is_empty() && self.table.is_none() {
            while !self.recent.is_empty() && more(entries, &mut visits) {
                let e = self.recent.pop().expect("not empty");
                debug_assert!(live(e), "a recent-table entry is expunged");
                detach(e);
                entries -= 1;
            }
        }
        self.unvisited.is_empty()
            && self.expunged.is_empty()
            && self.table.is_none()
            && self.recent.is_empty()
    }
}

/// Progress of an incremental rebuild of the dirty table from the published read table
/// (invariant 2). The read table is immutable and replaced only under `mu` by a
/// promotion (which finishes the rebuild first) or `clear` (which abandons it), so a
/// slot index stays meaningful across lock releases.
#[derive(Debug, Clone, Copy)]
struct Rebuild {
    /// The first slot not visited yet, of the read table's hash table and then its level
    /// (see [`ReadTable::slot`]).
    next_slot: usize,
    /// Entries visited so far (copied or expunged).
    visited: usize,
}

impl<K, V> Dirty<K, V> {
    /// The dirty table's size once its rebuild (if any) is finished and the recent
    /// table's entries are moved in (as a promotion does): entries copied so far, plus the
    /// read table's entries not visited yet, plus the recent table's. `None` without a
    /// dirty table.
    fn len(&self, read: &ReadTable<K, V>) -> Option<usize> {
        let copied = self.table.as_ref()?.len();
        let unvisited = self.rebuild.map_or(0, |r| read.len() - r.visited);
        Some(copied + unvisited + read.recent.len())
    }
}

/// Finds `key` in a table of entry pointers.
#[inline]
fn find<K, V, Q>(table: &Table<EntryPtr<K, V>>, hash: u64, key: &Q) -> Option<EntryPtr<K, V>>
where
    K: Borrow<Q>,
    Q: ?Sized + Eq,
{
    // Tables are read under a guard (read table) or `mu` (dirty table), and entries are
    // retired only after leaving every table (invariant 5).
    // SAFETY: so every pointer in a table reachable by the caller points to a live entry.
    let entry = |e: &EntryPtr<K, V>| unsafe { e.as_ref() };
    table.find(hash, |e| entry(e).key.borrow() == key).copied()
}

fn insert_entry<K, V>(table: &mut Table<EntryPtr<K, V>>, e: EntryPtr<K, V>) {
    // SAFETY: as in `find`: `e` and the entries in `table` are live (caller holds `mu`).
    let hash = unsafe { e.as_ref() }.hash();
    // SAFETY: as above.
    table.insert_unique(hash, e, |e| unsafe { e.as_ref() }.hash());
}

/// Gathers entries (with their hashes) for a large table and inserts them [`BATCH`] at a
/// time ([`Table::insert_unique_batch`]): the bulk copies under the lock (rebuild steps,
/// the promotion's move of the recent table, bulk loads) wait for memory about once per
/// batch instead of once per entry.
struct Inserter<'t, K, V> {
    table: &'t mut Table<EntryPtr<K, V>>,
    /// The queued entries: `batch[..len]` (no heap allocation per rebuild step; the
    /// placeholders beyond `len` are never used).
    batch: [(u64, EntryPtr<K, V>); BATCH],
    len: usize,
}

impl<'t, K, V> Inserter<'t, K, V> {
    fn new(table: &'t mut Table<EntryPtr<K, V>>) -> Self {
        Inserter {
            table,
            batch: [(0, NonNull::dangling()); BATCH],
            len: 0,
        }
    }

    /// Queues `e`, which `table` does not hold, with its hash (`hash`).
    fn push(&mut self, hash: u64, e: EntryPtr<K, V>) {
        self.batch[self.len] = (hash, e);
        self.len += 1;
        if self.len == BATCH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        // SAFETY: as in `insert_entry`: entries in the table are live (caller holds `mu`).
        let hasher = |e: &EntryPtr<K, V>| unsafe { e.as_ref() }.hash();
        self.table
            .insert_unique_batch(&self.batch[..self.len], hasher);
        self.len = 0;
    }
}

impl<K, V> Drop for Inserter<'_, K, V> {
    /// Inserts what is still queued. (No user code runs between a push and here, so a
    /// panic cannot leave entries queued but not inserted.)
    fn drop(&mut self) {
        self.flush();
    }
}

/// Looks up every key of `keys` in turn, as `raw(key, hash).get(hash, key)` would, and
/// hands `f` each result with its index; [`BATCH`] keys at a time, in three passes:
/// hash each key and prefetch its home bucket; take the entry each home bucket's first
/// matching tag points to (the *candidate*) and prefetch it; then, for each key whose
/// candidate holds an equal key, read the value from it directly, and look every other
/// key up the ordinary way (other slots, later buckets, the recent and dirty tables).
/// The direct path returns what `get` would return at that point (after `f` ran for the
/// keys before): it is taken only if the read table the candidate came from is still the
/// published one, and then the candidate is the entry `get`'s own search would stop at
/// (see [`RawRef::candidate_value`]). `raw` picks the map (the shard) of a key; with
/// `one_map` it returns the same map for every key, and the direct path's hits are
/// counted once per batch.
pub(crate) fn get_each<'a, K, V, G, Q>(
    keys: &[Q],
    hash: impl Fn(&Q) -> u64,
    raw: impl Fn(&Q, u64) -> RawRef<'a, K, V, G>,
    one_map: bool,
    mut f: impl FnMut(usize, Option<&'a V>),
) where
    K: Borrow<Q> + Eq + 'a,
    V: 'a,
    G: Guard + 'a,
    Q: Eq,
{
    let mut hashes = [0u64; BATCH];
    let mut tables: [*const ReadTable<K, V>; BATCH] = [std::ptr::null(); BATCH];
    let mut buckets: [Option<Home<'a, EntryPtr<K, V>>>; BATCH] = [None; BATCH];
    let mut candidates: [Option<EntryPtr<K, V>>; BATCH] = [None; BATCH];
    for (c, chunk) in keys.chunks(BATCH).enumerate() {
        let n = chunk.len();
        for (j, k) in chunk.iter().enumerate() {
            let h = hash(k);
            let read = raw(k, h).read();
            hashes[j] = h;
            tables[j] = read;
            buckets[j] = Some(read.table.prefetch_home(h));
        }
        for ((&h, bucket), candidate) in hashes[..n]
            .iter()
            .zip(&buckets[..n])
            .zip(&mut candidates[..n])
        {
            *candidate = bucket.and_then(|b| b.candidate(h).copied());
            if let Some(e) = candidate {
                prefetch(e.as_ptr());
            }
        }
        let mut hits = 0;
        for (j, k) in chunk.iter().enumerate() {
            let (h, raw) = (hashes[j], raw(k, hashes[j]));
            // `f` may have changed the map since the first pass (it may use the map, or
            // wait for a thread that does): the candidate answers only if the read table
            // it came from is still the published one (still the same object: the guard
            // keeps it from being freed, so its address cannot be reused).
            let direct = if std::ptr::eq(raw.read(), tables[j]) {
                raw.candidate_value(candidates[j], k)
            } else {
                None
            };
            let value = match direct {
                Some(value) if one_map => {
                    hits += 1;
                    value
                }
                Some(value) => {
                    raw.hit();
                    value
                }
                None => raw.get(h, k),
            };
            f(c * BATCH + j, value);
        }
        if hits > 0 {
            raw(&chunk[0], hashes[0]).count_hits(hits);
        }
    }
}

/// Entries allocated by [`RawRef::insert_all`] and not published yet: freed if a panic in
/// user code unwinds before they are.
struct Unpublished<K, V>(Vec<EntryPtr<K, V>>);

impl<K, V> Drop for Unpublished<K, V> {
    fn drop(&mut self) {
        for &e in &self.0 {
            // SAFETY: allocated by `Entry::alloc` and never published (only the private
            // table being built holds them, and it is dropped without touching its
            // items), so this is the only reference; each is listed once.
            unsafe { Entry::free_exclusive(e) };
        }
    }
}

/// A new key's entry that no other thread has seen yet: freed if a panic in user code
/// (`Eq`, while probing) unwinds before it is published or taken apart.
struct Fresh<K, V>(Option<EntryPtr<K, V>>);

impl<K, V> Fresh<K, V> {
    /// The entry is in a table now: the map owns it.
    fn published(mut self) {
        self.0 = None;
    }

    /// Gives back the key and value of an entry that was not published.
    fn into_parts(mut self) -> (K, V) {
        let e = self.0.take().expect("a fresh entry is taken apart once");
        // SAFETY: from `Entry::alloc`, never published (no table or slot holds it), so no
        // other thread has seen it and its slot still holds the inline value.
        unsafe { Entry::into_parts(e) }
    }
}

impl<K, V> Drop for Fresh<K, V> {
    fn drop(&mut self) {
        if let Some(e) = self.0 {
            // SAFETY: as in `into_parts`: unpublished, so this is the only reference.
            unsafe { Entry::free_exclusive(e) };
        }
    }
}

/// What a promotion does with the recent table's entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fold {
    /// Keeps its slot array as the new read table's [`Level`]: no copy under the lock.
    /// For the promotion a full recent table forces on the insert path: new keys keep
    /// coming, and the rebuild that the promotion starts (invariant 8) folds the level
    /// in, in steps, as they do.
    Keep,
    /// [`Keep`](Fold::Keep), and the rebuild that the promotion starts gets room for
    /// the recent table's whole limit: an explicit promotion whose move would not fit
    /// the rebuilt table, which moves the next recent table after that rebuild
    /// ([`RawRef::promote`]).
    KeepForMove,
    /// Moves them into the new main table if it has room, else keeps them (as
    /// [`Keep`](Fold::Keep)): the final promotion of an explicit `promote()`, which wants
    /// every key in the main table but never rehashes it under the lock. The call
    /// checked the room first, and made it ([`KeepForMove`](Fold::KeepForMove)) if
    /// needed, so only keys other threads added during the call, past the recent
    /// table's limit, can leave the table without room.
    Move,
    /// Moves them into the new main table, growing (rehashing) it if they do not fit:
    /// the bulk load of an owned map, which holds the lock throughout anyway.
    BulkMove,
    /// Moves them if the new main table has room and they are few (at most
    /// [`RawRef::move_max`]: a bounded pause), else keeps them (the recent table
    /// overflowed while the rebuild lagged, and the move would rehash the table; or it
    /// is large, and the move would take a time that grows with it): promotions driven
    /// by lookups outside the main table, which exist to make those cheaper (kept keys
    /// reach the main table at the promotion after, through the rebuild's steps).
    MoveIfRoom,
}

/// How an attempt to add a new key ended.
enum NewKey<'a, K, V> {
    /// Added; the slot's value pointer.
    Added(*mut V),
    /// The key has an entry (found, or added first by another thread): the entry, and our
    /// key and value back.
    Exists(EntryRef<'a, K, V>, K, V),
    /// The lock-free path cannot add it: take the lock (key and value back).
    Locked(K, V),
}

/// A value on its way into an entry's value slot: held, or placed where the slot can
/// point to it (a claimed in-block slot of the entry, see [`Entry::claim`], or a box).
/// Gives the placement back on drop unless published, so a panic in user code between
/// placing and publishing leaks nothing.
struct Pending<K, V> {
    value: Option<V>,
    /// Where the value was placed; null while `value` holds it.
    placed: *mut V,
    /// The entry whose in-block slot `placed` is, or `None` for a box.
    slot_of: Option<EntryPtr<K, V>>,
}

impl<K, V> Pending<K, V> {
    fn new(value: V) -> Self {
        Pending {
            value: Some(value),
            placed: std::ptr::null_mut(),
            slot_of: None,
        }
    }

    /// A pointer to the value to store into `e`'s slot: in a free in-block slot of `e`
    /// if there is one, else boxed. Placed on first use, and kept across calls for the
    /// same entry (a CAS retry); a slot of another entry is given back first.
    fn ptr(&mut self, e: EntryRef<'_, K, V>) -> *mut V {
        if !self.placed.is_null() {
            match self.slot_of {
                Some(owner) if owner != e.ptr => self.unplace(),
                _ => return self.placed,
            }
        }
        let value = self
            .value
            .take()
            .expect("a pending value is held or placed");
        // SAFETY: `e` was found through a table under the guard the caller still holds
        // (an `EntryRef` is only built so, by `RawRef::entry`): live, and `e.ptr` is the
        // table's pointer, with the block's provenance.
        if let Some(slot) = unsafe { Entry::claim(e.ptr) } {
            // SAFETY: the claimed slot is ours alone until published or given back.
            unsafe { slot.write(value) };
            self.placed = slot;
            self.slot_of = Some(e.ptr);
        } else {
            self.placed = Box::into_raw(Box::new(value));
        }
        self.placed
    }

    /// Moves a placed value back into `value`, giving back its slot or box.
    fn unplace(&mut self) {
        let placed = std::mem::replace(&mut self.placed, std::ptr::null_mut());
        let value = match self.slot_of.take() {
            Some(owner) => {
                // SAFETY: `placed` is a slot we claimed and wrote and never published.
                let value = unsafe { placed.read() };
                // SAFETY: the owner is live (found under the guard still held by the
                // operation that owns this `Pending`); the slot is empty now.
                unsafe { owner.as_ref().unclaim(placed) };
                value
            }
            // SAFETY: `placed` came from `Box::into_raw` in `ptr` and was never published.
            None => *unsafe { Box::from_raw(placed) },
        };
        self.value = Some(value);
    }

    /// The pointer was stored into a slot: the map owns it now.
    fn published(mut self) {
        self.placed = std::ptr::null_mut();
    }

    /// Gives the value back (it was not stored).
    fn into_inner(mut self) -> V {
        if !self.placed.is_null() {
            self.unplace();
        }
        self.value
            .take()
            .expect("a pending value is held or placed")
    }
}

impl<K, V> Drop for Pending<K, V> {
    fn drop(&mut self) {
        if !self.placed.is_null() {
            // Dropped by the caller of `drop`, after the placement is given back.
            self.unplace();
        }
    }
}

/// When readers whose lookups the recent table answered should check the promotion
/// rule (which needs the lock). Both counters are heuristics, not part of the protocol:
/// a stale value only makes a reader take the lock for nothing or a promotion come a
/// little later, and the rule itself is always evaluated under `mu`. Relaxed throughout.
#[derive(Debug)]
struct PromotionClock {
    /// Recent-table lookups, counted in whole check periods: a thread adds the period
    /// each time its stripe's count crosses a multiple of it (so it lags the stripes'
    /// sum by less than a period per thread).
    ticks: std::sync::atomic::AtomicU64,
    /// The value of `ticks` at which the rule would promote if nothing else changed;
    /// `u64::MAX` while there is no dirty table. Written under `mu`.
    due: std::sync::atomic::AtomicU64,
    /// Threads blocked waiting for `mu` (see [`RawMap::lock`]): a hint for a thread that
    /// releases and retakes it between the steps of a long job
    /// ([`RawMap::let_waiters_in`]). Here, not beside `mu`, to cost no cache line of its
    /// own; written only by threads about to block, which are slow anyway.
    waiting: std::sync::atomic::AtomicUsize,
}

/// One read/dirty map. Used through a [`RawRef`], which pairs it with a guard of its
/// collector. Several maps may share a collector (the shards of a `ShardedMap`), so that
/// one guard protects them all. Hashing is the caller's job: every operation takes the
/// key's hash, which must come from the same hasher for the map's whole life.
pub(crate) struct RawMap<K, V> {
    /// The published read table. Never null, except once the map is taken apart
    /// ([`teardown`](Self::teardown)), after which it is only dropped.
    read: AtomicPtr<ReadTable<K, V>>,
    /// `mu` and the state it protects, on their own cache lines: the rest of the struct is
    /// read by every lookup.
    dirty: CacheAligned<Mutex<Dirty<K, V>>>,
    /// Striped hit and length counters.
    stripes: Stripes,
    /// When a reader should take the lock to check the promotion rule. Written by
    /// readers every check period: on its own cache lines.
    clock: CacheAligned<PromotionClock>,
    promotion: Promotion,
    /// How large each read table's recent table is.
    recent: RecentKeys,
    /// How many read-table entries one operation visits at most while the dirty table
    /// is being rebuilt (at least 1).
    rebuild_step: usize,
    /// Whether lock-free lookups count hits (the only statistic on the read path). Read
    /// once per handle. A std atomic even under loom and shuttle: a setting, not part of
    /// the protocol.
    count_hits: std::sync::atomic::AtomicBool,
    /// Declared last: dropped after `Drop::drop` freed the live structures; the last map
    /// sharing the collector reclaims everything still retired.
    collector: Arc<Collector>,
}

// SAFETY: the map owns its keys and values (boxed behind raw pointers); sending the map
// sends them, so it needs `K: Send, V: Send`.
unsafe impl<K: Send, V: Send> Send for RawMap<K, V> {}
// SAFETY: through `&RawMap` threads read keys and values concurrently (`K, V: Sync`) and
// insert values created on one thread that are dropped on another (`K, V: Send`). All
// shared mutation goes through atomics and `mu`.
unsafe impl<K: Send + Sync, V: Send + Sync> Sync for RawMap<K, V> {}

impl<K, V> RawMap<K, V> {
    /// A map retiring memory through `collector`, counting on `stripes`.
    pub(crate) fn new(
        promotion: Promotion,
        recent: RecentKeys,
        collector: Arc<Collector>,
        stripes: Stripes,
        count_hits: bool,
        rebuild_step: usize,
    ) -> Self {
        let read = ReadTable::new(Table::new(), None, recent, 0);
        RawMap {
            read: AtomicPtr::new(read),
            dirty: CacheAligned(Mutex::new(Dirty {
                table: None,
                misses: 0,
                recent_lookups_base: 0,
                expunged: Vec::new(),
                revived: Vec::new(),
                graves: std::collections::VecDeque::new(),
                rebuild: None,
                promoting: 0,
                counters: LockedCounters::default(),
            })),
            stripes,
            clock: CacheAligned(PromotionClock {
                ticks: std::sync::atomic::AtomicU64::new(0),
                due: std::sync::atomic::AtomicU64::new(u64::MAX),
                waiting: std::sync::atomic::AtomicUsize::new(0),
            }),
            promotion,
            recent,
            rebuild_step: rebuild_step.max(1),
            count_hits: std::sync::atomic::AtomicBool::new(count_hits),
            collector,
        }
    }

    pub(crate) fn promotion(&self) -> Promotion {
        self.promotion
    }

    pub(crate) fn recent_keys(&self) -> RecentKeys {
        self.recent
    }

    pub(crate) fn rebuild_step(&self) -> usize {
        self.rebuild_step
    }

    /// Present keys (approximate while writers run).
    pub(crate) fn len(&self) -> usize {
        self.stripes.len()
    }

    /// The collector whose guards protect this map.
    pub(crate) fn collector(&self) -> &Arc<Collector> {
        &self.collector
    }

    /// Pairs the map with a guard for a sequence of operations.
    ///
    /// # Panics
    /// If `guard` does not belong to this map's collector (a bug in this crate: the
    /// public types only ever pair a map with a guard of its own collector).
    #[inline]
    pub(crate) fn bind<'a, G: Guard>(&'a self, guard: &'a G) -> RawRef<'a, K, V, G> {
        self.bind_counting(guard, self.counts_hits())
    }

    /// Like [`bind`](Self::bind), counting hits if `count_hits` (the setting a handle
    /// was pinned with) rather than by the map's current setting.
    #[inline]
    pub(crate) fn bind_counting<'a, G: Guard>(
        &'a self,
        guard: &'a G,
        count_hits: bool,
    ) -> RawRef<'a, K, V, G> {
        self.check_collector(guard);
        RawRef {
            map: self,
            guard,
            hits: count_hits.then(|| self.stripes.hit_counter(guard.thread_id())),
        }
    }

    /// Whether handles pinned now count hits.
    #[inline]
    pub(crate) fn counts_hits(&self) -> bool {
        // Relaxed: a setting; handles pinned around a change may count or not (the
        // statistics are approximate anyway).
        self.count_hits.load(Relaxed)
    }

    /// Enters this map's collector for a handle that serves many operations; the
    /// hit-counter lookup happens once, here.
    #[inline]
    pub(crate) fn pin(&self) -> Pinned<'_, K, V, LocalGuard<'_>> {
        // Our own collector's guard: no check needed.
        self.pinned(self.collector.enter())
    }

    /// Like [`pin`](Self::pin), with a guard that is `Send` and `Sync`.
    #[inline]
    pub(crate) fn pin_owned(&self) -> Pinned<'_, K, V, OwnedGuard<'_>> {
        self.pinned(self.collector.enter_owned())
    }

    /// Pairs `guard`, which the caller took from this map's collector, with the map.
    #[inline]
    fn pinned<'m, G: Guard>(&'m self, guard: G) -> Pinned<'m, K, V, G> {
        debug_assert!(std::ptr::eq(guard.collector(), &*self.collector));
        Pinned {
            map: self,
            hits: self.hit_counter(&guard),
            guard,
        }
    }

    /// Panics unless `guard` comes from this map's collector (what every `unsafe` block
    /// that relies on the guard's protection assumes).
    #[inline]
    fn check_collector<G: Guard>(&self, guard: &G) {
        assert!(
            std::ptr::eq(guard.collector(), &*self.collector),
            "guard from another collector"
        );
    }

    /// The counter that hits through `guard` go to: its thread's stripe, or `None` if
    /// the map does not count hits.
    #[inline]
    pub(crate) fn hit_counter<G: Guard>(&self, guard: &G) -> Option<&HitCounter> {
        self.counts_hits()
            .then(|| self.stripes.hit_counter(guard.thread_id()))
    }

    /// Turns hit counting on or off for handles pinned from now on.
    pub(crate) fn set_count_hits(&self, on: bool) {
        // Relaxed: as in `hit_counter`.
        self.count_hits.store(on, Relaxed);
    }

    /// Locks `mu`, counting the thread in [`PromotionClock::waiting`] while it blocks.
    fn lock(&self) -> MutexGuard<'_, Dirty<K, V>> {
        // Under loom and shuttle, a plain lock: the count is a scheduling hint that
        // decides nothing, and every extra operation multiplies the schedules explored.
        #[cfg(not(any(loom, shuttle)))]
        if let Some(dirty) = try_lock(&self.dirty) {
            return dirty;
        }
        // Relaxed (both): a hint; a stale count only makes `let_waiters_in` wait a little
        // longer or not at all.
        #[cfg(not(any(loom, shuttle)))]
        self.clock.waiting.fetch_add(1, Relaxed);
        let dirty = lock(&self.dirty);
        #[cfg(not(any(loom, shuttle)))]
        self.clock.waiting.fetch_sub(1, Relaxed);
        dirty
    }

    /// Called between the steps of a long job, with `mu` released: gives the threads
    /// blocked on it a chance to take it before the job retakes it. A std mutex is not
    /// fair: a thread that unlocks and locks again at once wins nearly every time against
    /// a waiter that must first be woken, and a writer waited for an explicit promotion's
    /// whole stepped rebuild (75–118 ms at 4 Mi keys on the development machine) instead
    /// of one step. Waits until no thread is blocked (each takes the lock, then counts
    /// itself out), or for at most a few hundred microseconds.
    fn let_waiters_in(&self) {
        let mut round = 0;
        // Relaxed: see `lock`.
        while self.clock.waiting.load(Relaxed) > 0 && round < 256 {
            crate::sync::backoff(round);
            round += 1;
        }
    }
}

impl<K, V> Drop for RawMap<K, V> {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no other thread can access the map, and `free_exclusive`
        // frees each live entry (with its value) once.
        unsafe { self.teardown(|e| Entry::free_exclusive(e)) };
    }
}

impl<K, V> RawMap<K, V> {
    /// Hands every live entry to `consume` (once each) and frees the read table, leaving
    /// the map empty of tables: `read` null (the map may only be dropped afterwards, and
    /// its `Drop` then does nothing more). A no-op when `read` is already null.
    ///
    /// # Safety
    /// No other thread can access the map (`&mut self`: every handle borrows the map, so
    /// none is in use; one leaked with `mem::forget` can no longer be used either; objects
    /// retired through it stay with the collector, which never touches live entries);
    /// `consume` takes ownership of each entry (live, in no table any more) and must free
    /// it (`Entry::free_exclusive` or `Entry::take_exclusive`).
    unsafe fn teardown(&mut self, mut consume: impl FnMut(EntryPtr<K, V>)) {
        // Relaxed: `&mut self` — no other thread can access the map any more.
        let read = self.read.swap(std::ptr::null_mut(), Relaxed);
        if read.is_null() {
            return;
        }
        let mut dirty = self.lock();
        match dirty.table.take() {
            Some(table) => {
                // Invariant 2: read entries are in the dirty table, in `expunged`, or
                // not yet visited by the rebuild (and then in the read table only).
                if let Some(r) = dirty.rebuild.take() {
                    // SAFETY: `read` is the live published table; we have exclusive access.
                    let read = unsafe { &*read };
                    for i in r.next_slot..read.num_slots() {
                        if let Some(e) = read.slot(i) {
                            // Live, in no other table, and visited once here.
                            consume(e);
                        }
                    }
                }
                // Check the list first: an entry on it that was unexpunged since is in
                // the dirty table and is consumed there.
                for e in std::mem::take(&mut dirty.expunged) {
                    // SAFETY: live (invariant 5: not yet retired); no other thread.
                    let still_expunged = unsafe { &mut *e.as_ptr() }.is_expunged_mut();
                    if still_expunged {
                        // In the read table only, which is dropped below without
                        // touching its entries.
                        consume(e);
                    }
                }
                for &e in table.iter() {
                    // Each dirty entry appears once in the dirty table.
                    consume(e);
                }
            }
            None => {
                // SAFETY: `read` is the live published table; we have exclusive access.
                for e in unsafe { &*read }.entries() {
                    // Invariant 3: every entry is live and appears once.
                    consume(e);
                }
            }
        }
        // Graves: the entries not revived are expunged and in no table (each on one
        // grave once); the revived ones are live, in a table, and consumed there.
        for grave in std::mem::take(&mut dirty.graves) {
            for e in grave.entries {
                if !grave.revived.contains(&e) {
                    // As above: unreachable, consumed once.
                    consume(e);
                }
            }
        }
        drop(dirty);
        // Invariant 6: the recent table's entries are in no other table (and each is
        // visited once: those of a `prev` already copied are skipped).
        // SAFETY: `read` is the live published table; we have exclusive access.
        unsafe { &*read }.recent.for_each_closed(|e, _| {
            // Live, in no other table, and visited once.
            consume(e);
        });
        // SAFETY: the published table came from `Box::into_raw` and is freed once, here
        // (`read` is null from now on).
        drop(unsafe { Box::from_raw(read) });
    }

    /// Takes the map apart, appending every present key with its value to `pairs`, in
    /// no particular order. Deleted entries' keys are dropped. Values retired earlier
    /// stay with the collector, which drops them when it is dropped (at the latest with
    /// this map, or with the last shard of a `ShardedMap`); their entries' blocks are
    /// freed then.
    pub(crate) fn into_pairs(mut self, pairs: &mut Vec<(K, V)>) {
        pairs.reserve(self.len());
        // SAFETY: we own the map, so no other thread can access it (every handle borrows
        // the map); `take_exclusive` takes each live entry apart once.
        unsafe {
            self.teardown(|e| {
                if let Some(pair) = Entry::take_exclusive(e) {
                    pairs.push(pair);
                }
            });
        }
    }
}

/// A map paired with a guard of its collector: every method's results live as long as
/// the guard's borrow `'a`.
pub(crate) struct RawRef<'a, K, V, G> {
    map: &'a RawMap<K, V>,
    guard: &'a G,
    /// The hit counter of the guard's thread stripe; `None` when hits are not counted.
    hits: Option<&'a HitCounter>,
}

/// A guard of its map's collector (from [`RawMap::pin`] or [`RawMap::pin_owned`]), with
/// the map and its thread's hit counter: [`Pinned::raw`] binds them per operation at no
/// cost.
pub(crate) struct Pinned<'m, K, V, G> {
    map: &'m RawMap<K, V>,
    guard: G,
    hits: Option<&'m HitCounter>,
}

impl<K, V, G: Guard> Pinned<'_, K, V, G> {
    /// The map bound to our guard.
    #[inline]
    pub(crate) fn raw(&self) -> RawRef<'_, K, V, G> {
        RawRef {
            map: self.map,
            guard: &self.guard,
            hits: self.hits,
        }
    }
}

type SlotIter<'g, K, V> = std::slice::Iter<'g, RecentSlot<K, V>>;

/// Iterator over the read table snapshot taken by [`RawRef::iter`]: the main table's
/// entries, then the level's and the recent table's (a key is in one of them only; the
/// recent table's old array, while its entries are being copied into the current one,
/// first, and the current array's copies of them skipped).
pub(crate) struct RawIter<'g, K, V, G> {
    entries: table::Iter<'g, EntryPtr<K, V>>,
    /// The level's slots, then those of the recent table's `prev` (if any).
    older: std::iter::Chain<SlotIter<'g, K, V>, SlotIter<'g, K, V>>,
    /// The recent table's `prev` (if any): entries of the current array found in it
    /// were already seen.
    prev: &'g [RecentSlot<K, V>],
    /// The recent table's current array.
    current: SlotIter<'g, K, V>,
    guard: &'g G,
}

// SAFETY: a `RawIter` holds only shared references: to tables that stay immutable while
// the guard protects them (their items are entry pointers, dereferenced only under that
// guard), to recent-table slots read through atomics, and to the guard itself; it frees
// and mutates nothing. Moving or sharing it hands another thread `&K` and `&V` (hence
// `K: Sync`, `V: Sync`) and a use of `&G` (hence `G: Sync`: an `OwnedGuard` qualifies, a
// `LocalGuard` keeps the iterator on its thread). So that a `pin_owned` handle's
// iterator can live across `.await` (tests/auto_traits.rs).
unsafe impl<K: Sync, V: Sync, G: Sync> Send for RawIter<'_, K, V, G> {}
// SAFETY: as for `Send`; through `&RawIter` only `size_hint` runs, which reads the
// iterator's own fields (no interior mutability).
unsafe impl<K: Sync, V: Sync, G: Sync> Sync for RawIter<'_, K, V, G> {}

impl<'g, K, V, G: Guard> RawIter<'g, K, V, G> {
    /// The next entry of the snapshot, in any state.
    fn next_entry(&mut self) -> Option<&'g Entry<K, V>> {
        let e = match self.entries.next() {
            Some(e) => *e,
            // Acquire: as in `Recent::find`. Slots filled after the iteration started may
            // or may not be seen; each key fills one slot of an array, so none is seen
            // twice (a key copied from `prev`, closed and complete, is seen there).
            None => loop {
                if let Some(slot) = self.older.next() {
                    if let Some(e) = NonNull::new(slot.entry.load(Acquire)) {
                        break e;
                    }
                    continue;
                }
                let slot = self.current.next()?;
                if let Some(e) = NonNull::new(slot.entry.load(Acquire)) {
                    if self.prev.is_empty() || !SlotArray::holds(self.prev, e, slot.hash_of(e)) {
                        break e;
                    }
                }
            },
        };
        // SAFETY: the snapshot table (main table, level and recent table) is protected by
        // `guard` and so are its entries (invariants 5 and 6: entries are retired only
        // after leaving every table).
        Some(unsafe { e.as_ref() })
    }
}

impl<'g, K, V, G: Guard> Iterator for RawIter<'g, K, V, G> {
    type Item = (&'g K, &'g V);

    fn next(&mut self) -> Option<Self::Item> {
        while let Some(entry) = self.next_entry() {
            if let Some(v) = entry.load(self.guard) {
                // SAFETY: `v` was loaded through `guard`, which outlives `'g`.
                return Some((&entry.key, unsafe { &*v }));
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let slots = self.older.size_hint().1.zip(self.current.size_hint().1);
        let upper = (self.entries.size_hint().1.zip(slots)).map(|(a, (b, c))| a + b + c);
        (0, upper)
    }
}

impl<'a, K, V, G> RawRef<'a, K, V, G>
where
    K: Eq,
    G: Guard,
{
    #[inline]
    fn thread(&self) -> usize {
        self.guard.thread_id()
    }

    /// The published read table.
    #[inline]
    fn read(&self) -> &'a ReadTable<K, V> {
        // Acquire: pairs with the Release store that published the table (promotion,
        // `clear`), making its contents and entries visible.
        let table = self.guard.protect(&self.map.read, Acquire);
        // SAFETY: `read` always holds a live table; one that is replaced later is
        // retired after the swap, so it stays valid while `self.guard` is held.
        unsafe { &*table }
    }

    /// An entry reached through a table while holding our guard.
    #[inline]
    fn entry(&self, e: EntryPtr<K, V>) -> EntryRef<'a, K, V> {
        // The caller found `e` in the read table (protected by our guard) or the dirty
        // table (under `mu`, with our guard active). Entries are retired only after leaving
        // every table (invariant 5), hence after we found it: seize keeps it alive until
        // our guard (borrowed for `'a`) drops, which `EntryRef::get` relies on.
        EntryRef {
            ptr: e,
            _guarded: PhantomData,
        }
    }

    /// Finds `key` in `table`, returning an entry that lives as long as our guard.
    #[inline]
    fn find_in<Q>(
        &self,
        table: &Table<EntryPtr<K, V>>,
        hash: u64,
        key: &Q,
    ) -> Option<EntryRef<'a, K, V>>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        find(table, hash, key).map(|e| self.entry(e))
    }

    /// Turns a value pointer loaded through our guard into a reference.
    #[inline]
    fn value(&self, p: *mut V) -> &'a V {
        debug_assert!(is_value(p));
        // SAFETY: `p` is a present value loaded or published through `self.guard`;
        // values are retired only after leaving their slot, so it lives until the guard
        // (borrowed for as long as the returned reference) is dropped.
        unsafe { &*p }
    }

    /// Retires a value that we just removed from `e`'s slot, and returns it.
    fn retire_value(&self, e: &Entry<K, V>, p: *mut V) -> &'a V {
        // `p` left `e`'s slot (by our CAS/swap), so threads that start later cannot reach
        // it, and it is retired once: an in-block slot's owner bit stays set until its
        // reclaimer runs, so no writer can claim it and store it again before then.
        // SAFETY: so `defer_retire` keeps it alive until our guard is dropped, which
        // makes the returned borrow valid; `reclaimer` picks the function for `p`'s kind
        // (in-block slot of `e`, or a box from `Box::into_raw`).
        unsafe { self.guard.defer_retire(p, e.reclaimer(p)) };
        self.value(p)
    }

    /// Retires a detached entry.
    ///
    /// # Safety
    /// `e` is in no table any more (invariant 5), is expunged, and is retired once.
    unsafe fn retire_entry(&self, e: EntryPtr<K, V>) {
        // SAFETY: forwarded from the caller; the reclaimer releases the entry's own
        // ownership of its block.
        unsafe { self.guard.defer_retire(e.as_ptr(), reclaim_entry::<K, V>) };
    }

    /// Result of a store into `e` that replaced `prev` (null when the key was absent).
    fn replaced(&self, e: &Entry<K, V>, prev: *mut V) -> Option<&'a V> {
        if prev.is_null() {
            self.map.stripes.add_len(self.thread(), 1);
            None
        } else {
            self.map.stripes.overwrite(self.thread());
            Some(self.retire_value(e, prev))
        }
    }

    /// Result of a removal from `e`.
    fn removed(&self, e: &Entry<K, V>, prev: Option<*mut V>) -> Option<&'a V> {
        let prev = prev?;
        self.map.stripes.remove_keys(self.thread(), 1);
        Some(self.retire_value(e, prev))
    }

    /// The same binding without a hit counter: its lookups answered from the main table
    /// are not counted as hits (for lookups the caller makes on its own account, such as
    /// `try_insert`'s check at the capacity limit). Recent-table lookups and misses are
    /// still counted: they drive promotion.
    #[inline]
    pub(crate) fn uncounted(self) -> Self {
        RawRef { hits: None, ..self }
    }

    /// Counts a lookup answered from the read table (unless disabled).
    #[inline]
    fn hit(&self) {
        if let Some(counter) = self.hits {
            count_hit(counter);
        }
    }

    /// The entry for `key` (in any state), consulting the dirty table on a read miss.
    #[inline(always)]
    fn find_entry<Q>(&self, hash: u64, key: &Q) -> Option<EntryRef<'a, K, V>>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let read = self.read();
        if let Some(e) = self.find_in(&read.table, hash, key) {
            self.hit();
            return Some(e);
        }
        self.find_entry_miss(read, hash, key)
    }

    /// [`find_entry`](Self::find_entry) after a miss of the main table: out of line, so
    /// that the hit path inlined into every caller stays small.
    #[inline(never)]
    fn find_entry_miss<Q>(
        &self,
        read: &'a ReadTable<K, V>,
        hash: u64,
        key: &Q,
    ) -> Option<EntryRef<'a, K, V>>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let level = read.level_array();
        let arrays = read.recent.arrays();
        // A `prev` implies a current array.
        let counted = arrays.1.is_some() || level.is_some();
        if counted {
            // A miss of the main table that the level and the recent table answer,
            // either way (they count alike: keys outside the main table).
            let found =
                Recent::probe(level, hash, key).or_else(|| Recent::probe_both(arrays, hash, key));
            self.recent_lookup();
            if let Some(e) = found {
                return Some(self.entry(e));
            }
        }
        // Acquire: pairs with the Release store in `new_entry_locked`. Not needed for
        // memory safety (if set, the lock orders what follows); it keeps the flag
        // ordered after the table load on weakly ordered CPUs.
        if !read.amended.load(Acquire) {
            if !counted {
                self.hit();
            }
            return None;
        }
        self.find_entry_slow(hash, key)
    }

    /// Counts a miss of the main table answered (found or absent) by the recent table;
    /// every so often (per thread) advances the promotion clock, and once the clock says
    /// the rule may be met, takes the lock to apply it, so that keys read often leave the
    /// recent table for the main one and lookups of absent keys stop probing it. (Taking
    /// the lock at every check made these checks a large share of all lock acquisitions
    /// under key churn.)
    #[inline]
    fn recent_lookup(&self) {
        let n = self.map.stripes.recent_lookup(self.thread());
        let period = self.map.promotion.check_period();
        if n & (period - 1) == 0 {
            let clock = &self.map.clock;
            // Relaxed: see `PromotionClock`.
            let ticks = clock.ticks.fetch_add(period, Relaxed).wrapping_add(period);
            if ticks >= clock.due.load(Relaxed) {
                self.promote_if_due();
            }
        }
    }

    /// Sets when readers should next check the promotion rule: after `until_due` more
    /// recent-table lookups (`u64::MAX`: not before the state changes under `mu`).
    fn set_promotion_due_locked(&self, until_due: u64) {
        let clock = &self.map.clock;
        // Relaxed: see `PromotionClock`.
        let due = clock.ticks.load(Relaxed).saturating_add(until_due);
        clock.due.store(due, Relaxed);
    }

    #[cold]
    #[inline(never)]
    fn promote_if_due(&self) {
        let mut dirty = self.map.lock();
        let read = self.read();
        self.rebuild_step_locked(&mut dirty, read, self.map.rebuild_step);
        let Some(len) = dirty.len(read) else {
            return;
        };
        let recent = self
            .map
            .stripes
            .recent_lookups()
            .wrapping_sub(dirty.recent_lookups_base);
        let recent = self.map.promotion.weigh_recent_lookups(recent);
        let misses = dirty
            .misses
            .saturating_add(usize::try_from(recent).unwrap_or(usize::MAX));
        if !self.map.promotion.should_promote(misses, len) {
            self.set_promotion_due_locked(self.map.promotion.recent_lookups_until_due(misses, len));
        } else if self.promotion_waits_locked(&dirty, read) {
            // Due, but promoting now would finish the rebuild in one go (a pause that
            // grows with the map; after the writers that drove it stop, the rebuild is
            // not advanced by anyone else), or the copy of a grown recent array. Take a
            // step at every check period instead (the rebuild's above, the copy's here)
            // until little is left.
            self.growth_step_locked(&mut dirty, read, self.migration_step());
            self.set_promotion_due_locked(0);
        } else {
            self.promote_locked(&mut dirty, Fold::MoveIfRoom);
        }
    }

    /// Whether the rebuild in progress has more than [`finish_max`](Self::finish_max)
    /// entries left, or the recent table's last growth more than 16 copy steps' worth of
    /// slots to copy: then a promotion driven by lookups or misses waits (each such
    /// lookup or miss taking steps meanwhile) rather than finish either in one go (the
    /// promotion finishes the rebuild, and the copy too when it keeps the recent table
    /// as a level). Also while an explicit [`promote`](Self::promote) steps through the
    /// rebuild: a promotion that kept the recent table as a level would start another
    /// rebuild of the whole map for it to chase. Under `mu`.
    fn promotion_waits_locked(&self, dirty: &Dirty<K, V>, read: &ReadTable<K, V>) -> bool {
        dirty.promoting > 0 || self.steps_pending_locked(dirty, read)
    }

    /// Whether more than 16 steps of the rebuild, or of the copy of a grown recent
    /// array, are left (see [`promotion_waits_locked`](Self::promotion_waits_locked)).
    fn steps_pending_locked(&self, dirty: &Dirty<K, V>, read: &ReadTable<K, V>) -> bool {
        dirty
            .rebuild
            .is_some_and(|r| read.len().saturating_sub(r.visited) > self.finish_max())
            || read.recent.growth_pending_locked() > self.migration_step().saturating_mul(16)
    }

    /// A step of the recent table's growth work (see `Recent::step_locked`) of `slots`
    /// slots, counted in `longest_recent_growth`. Under `mu`.
    fn growth_step_locked(&self, dirty: &mut Dirty<K, V>, read: &ReadTable<K, V>, slots: usize) {
        let copied = read.recent.step_locked(self.guard, 0, slots);
        let c = &mut dirty.counters;
        c.longest_recent_growth = c.longest_recent_growth.max(copied);
    }

    /// The most entries of a rebuild a promotion driven by lookups or misses finishes in
    /// one go: 16 rebuild steps.
    fn finish_max(&self) -> usize {
        self.map.rebuild_step.saturating_mul(16)
    }

    /// The expunged entries a promotion retires at once (see [`Grave`]): as many as it
    /// may move ([`move_max`](Self::move_max), 16,384 by default, about 0.4 ms of
    /// retiring), so that only large lists wait in a grave and small maps keep no dead
    /// entries allocated. Under Miri, 16 steps' worth, so that its small maps exercise
    /// graves too.
    fn bury_at_promotion(&self) -> usize {
        if cfg!(miri) {
            self.finish_max()
        } else {
            self.move_max()
        }
    }

    /// The most recent-table entries a promotion driven by lookups or misses moves into
    /// the new main table (see [`Fold::MoveIfRoom`]): 256 rebuild steps' worth, 16,384
    /// with the default step (about a millisecond of copying).
    fn move_max(&self) -> usize {
        self.map.rebuild_step.saturating_mul(256)
    }

    #[cold]
    #[inline(never)]
    fn find_entry_slow<Q>(&self, hash: u64, key: &Q) -> Option<EntryRef<'a, K, V>>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let mut dirty = self.map.lock();
        dirty.counters.slow_reads += 1;
        let read = self.read();
        if let Some(e) = read.find(hash, key) {
            return Some(self.entry(e));
        }
        // Relaxed: `amended` is only written under `mu`, which we hold.
        if !read.amended.load(Relaxed) {
            return None;
        }
        let e = dirty
            .table
            .as_ref()
            .and_then(|t| self.find_in(t, hash, key));
        self.miss_locked(&mut dirty);
        e
    }

    /// Counts a miss and promotes the dirty table when the threshold is reached.
    fn miss_locked(&self, dirty: &mut Dirty<K, V>) {
        dirty.misses += 1;
        dirty.counters.misses += 1;
        let read = self.read();
        self.rebuild_step_locked(dirty, read, self.map.rebuild_step);
        let Some(len) = dirty.len(read) else {
            return;
        };
        // While the rebuild or a growth's copy lags, each miss takes its steps instead:
        // see `promote_if_due`.
        if self.map.promotion.should_promote(dirty.misses, len) {
            if self.promotion_waits_locked(dirty, read) {
                self.growth_step_locked(dirty, read, self.migration_step());
            } else {
                self.promote_locked(dirty, Fold::MoveIfRoom);
            }
        }
    }

    /// Publishes the dirty table as the new read table (one pointer swap), with the recent
    /// table's entries moved into it or kept as the new table's [`Level`] (`fold`).
    #[cold]
    #[inline(never)]
    fn promote_locked(&self, dirty: &mut Dirty<K, V>, fold: Fold) {
        // Invariant 2: the dirty table must hold every live read entry before it replaces
        // the read table.
        let read = self.read();
        self.rebuild_step_locked(dirty, read, usize::MAX);
        let Some(mut table) = dirty.table.take() else {
            debug_assert!(read.recent.array_locked().is_none(), "invariant 1");
            debug_assert!(read.level.is_none(), "invariant 8");
            return;
        };
        // Close the recent table: from here on, adders fall back to the lock, which we
        // hold until the new table is out.
        let (mut level, mut filled, mut fits) = (None, 0, true);
        if read.recent.array_locked().is_some() {
            let len = read.recent.close_locked(&self.map.stripes, 0);
            filled = len;
            // The table was sized for the read table's entries plus `move_max`
            // (`start_rebuild_locked`): a move of up to that many fits unless a lagging
            // rebuild let the recent table overflow (`new_entry_locked`).
            fits = table.len() + len <= table.capacity();
            let keep = match fold {
                Fold::Keep | Fold::KeepForMove => true,
                Fold::Move => !fits,
                Fold::MoveIfRoom => !fits || len > self.move_max(),
                Fold::BulkMove => false,
            };
            if keep {
                // A level has no `prev`: the copy is all but done once the table is full,
                // which is when these promotions keep it (`Recent::step_locked`).
                let copied = read.recent.finish_migration_locked(self.guard);
                let c = &mut dirty.counters;
                c.longest_recent_growth = c.longest_recent_growth.max(copied);
                let array = read.recent.share_locked().expect("the array just closed");
                level = Some(Level { array, len });
            }
        }
        // Or move its entries into the new main table.
        if read.recent.array_locked().is_some() && level.is_none() {
            // No rehash but for a bulk load's move of more than the table has room for
            // (`reserve` grows the table then; the other folds keep such a table as a
            // level). The move uses the slots' hash copies: it touches the new table, not
            // the entries.
            debug_assert!(fits || fold == Fold::BulkMove, "a rehash under the lock");
            // SAFETY: as in `insert_entry`.
            table.reserve(filled, |e| unsafe { e.as_ref() }.hash());
            let mut moved = 0u64;
            let mut inserter = Inserter::new(&mut table);
            read.recent.for_each_closed(|e, hash| {
                inserter.push(hash, e);
                moved += 1;
            });
            drop(inserter);
            // Part of this operation's pause (reported apart from the rebuild steps).
            let c = &mut dirty.counters;
            c.longest_promotion_move = c.longest_promotion_move.max(moved);
        }
        self.publish_locked(dirty, table, level);
        // The entries still expunged are now unreachable: retired in steps (a rebuild
        // may have expunged millions), the first now.
        let entries = std::mem::take(&mut dirty.expunged);
        let revived = std::mem::take(&mut dirty.revived);
        if !entries.is_empty() {
            dirty.graves.push_back(Grave {
                entries,
                revived: revived.into_iter().collect(),
            });
            self.bury_locked(dirty, self.bury_at_promotion());
        }
        dirty.misses = 0;
        dirty.recent_lookups_base = self.map.stripes.recent_lookups();
        self.map.clock.due.store(u64::MAX, Relaxed); // no dirty table, nothing to promote
        dirty.counters.promotions += 1;
        if self.read().level.is_some() {
            // Invariant 8: before `mu` is released or anything else can fail.
            self.start_rebuild_locked(dirty, self.read(), fold == Fold::KeepForMove);
        }
        // A replaced table can be large: hand our batch of retired objects to the
        // collector now instead of waiting for the batch to fill up (which, with rare
        // promotions, could hold many old tables per thread).
        self.guard.flush();
    }

    /// Publishes `table` as the read table's main table (with `level` and an empty recent
    /// table) and retires the old read table, which must hold no entry that `table` and
    /// `level` lack other than ones the caller retires itself. Caller holds `mu`.
    fn publish_locked(
        &self,
        dirty: &mut Dirty<K, V>,
        table: Table<EntryPtr<K, V>>,
        level: Option<Level<K, V>>,
    ) {
        // Every recent table's array is closed by now (so its fills are all counted).
        let fills = self.map.stripes.recent_fills();
        let new = ReadTable::new(table, level, self.map.recent, fills);
        // Release: publishes the new table and (through `mu`) its entries to readers.
        let old = self.map.read.swap(new, Release);
        // SAFETY: `old` was published until now and is retired only below; we hold `mu`
        // (no slot array can be added to it concurrently) and a guard.
        let bytes = unsafe { &*old }.bytes();
        // SAFETY: `old` is no longer reachable from `read`; it came from `Box::into_raw`.
        // Dropping a `ReadTable` does not touch its entries.
        unsafe { self.guard.defer_retire(old, boxed::<ReadTable<K, V>>) };
        dirty.counters.table_replaced(bytes);
    }

    /// Starts rebuilding the dirty table from the read table if there is none (Go's
    /// lazy copy, done in steps), then takes one step. `room_for_all_recent`: the
    /// table gets room for the recent table's whole limit (the rebuild a
    /// [`Fold::KeepForMove`] promotion starts, whose move follows).
    #[cold]
    #[inline(never)]
    fn start_rebuild_locked(
        &self,
        dirty: &mut Dirty<K, V>,
        read: &ReadTable<K, V>,
        room_for_all_recent: bool,
    ) {
        debug_assert!(dirty.expunged.is_empty(), "invariant 3");
        debug_assert!(dirty.rebuild.is_none(), "invariant 3");
        // Room for the read table's entries (the rebuild copies at most those) plus as
        // many recent entries as a lookup-driven promotion moves (`move_max`): such a
        // promotion never rehashes, and one with more keeps them as a level anyway. Not
        // room for the recent table's whole `max_len` (half the read table): rounded up
        // to a power of two, that doubled the table that every later read probes
        // (churn10 at 16 threads, 64 Ki keys: 2 MiB instead of 1 MiB, -19 %). A full
        // recent table is kept as a level (no move); an explicit `promote` of more than
        // the table has room for keeps them as a level too (`Fold::KeepForMove`), and
        // the rebuild that starts, whose move follows, gets room for them all; only a
        // bulk load (the map owned) may rehash the table at its move.
        let room = if room_for_all_recent {
            read.recent.max_len
        } else {
            read.recent.max_len.min(self.move_max())
        };
        dirty.table = Some(Table::with_capacity(read.len().saturating_add(room)));
        // Relaxed: a hint (see `ReadTable::rebuilding`).
        read.rebuilding.store(true, Relaxed);
        dirty.rebuild = Some(Rebuild {
            next_slot: 0,
            visited: 0,
        });
        // The first time the rule could be met. Later new keys only push it further
        // away; a reader that finds it stale recomputes it under the lock.
        self.set_promotion_due_locked(
            self.map
                .promotion
                .recent_lookups_until_due(dirty.misses, read.len()),
        );
        dirty.counters.rebuilds += 1;
        self.rebuild_step_locked(dirty, read, self.map.rebuild_step);
    }

    /// If a rebuild is in progress, visits up to `budget` more entries of the read table
    /// (and at most 16 × `budget` slots, so a sparse table cannot make a step long),
    /// copying each into the dirty table or expunging it if deleted.
    fn rebuild_step_locked(&self, dirty: &mut Dirty<K, V>, read: &ReadTable<K, V>, budget: usize) {
        if let Some(cursor) = dirty.rebuild {
            self.rebuild_step_cold(dirty, read, budget, cursor);
        }
        // A step of retirements too, as long as the rebuild's (not for a promotion
        // finishing a rebuild: unbounded).
        if !dirty.graves.is_empty() && budget != usize::MAX {
            self.bury_locked(dirty, budget);
        }
    }

    /// Retires up to `budget` entries of the oldest graves (see [`Grave`]).
    #[cold]
    #[inline(never)]
    fn bury_locked(&self, dirty: &mut Dirty<K, V>, mut budget: usize) {
        let Dirty {
            graves, counters, ..
        } = dirty;
        while budget > 0 {
            let Some(grave) = graves.front_mut() else {
                break;
            };
            let n = budget.min(grave.entries.len());
            let start = grave.entries.len() - n;
            for e in grave.entries.drain(start..) {
                if !grave.revived.contains(&e) {
                    // SAFETY: an entry on a grave's list that was not revived is still
                    // expunged and unreachable since the promotion that made the grave
                    // (see `Grave`); each is on one grave once and drained once.
                    unsafe { self.retire_entry(e) };
                    counters.retired_entries += 1;
                }
            }
            budget -= n;
            if grave.entries.is_empty() {
                graves.pop_front();
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn rebuild_step_cold(
        &self,
        dirty: &mut Dirty<K, V>,
        read: &ReadTable<K, V>,
        budget: usize,
        mut cursor: Rebuild,
    ) {
        let Dirty {
            table,
            expunged,
            counters,
            rebuild,
            ..
        } = dirty;
        let table = table
            .as_mut()
            .expect("invariant 3: a rebuild implies a dirty table");
        let slots = read.num_slots();
        let last = cursor
            .next_slot
            .saturating_add(budget.saturating_mul(16))
            .min(slots);
        let (mut copied, mut newly_expunged) = (0usize, 0usize);
        let mut inserter = Inserter::new(table);
        // Entries are visited in groups: the entries of a group are requested from memory
        // before the first is examined (each is a cache miss in a large map).
        let mut group = [None; BATCH];
        while copied + newly_expunged < budget && cursor.next_slot < last {
            let room = (budget - copied - newly_expunged).min(BATCH);
            let mut n = 0;
            while n < room && cursor.next_slot < last {
                if let Some(e) = read.slot(cursor.next_slot) {
                    prefetch(e.as_ptr());
                    group[n] = Some(e);
                    n += 1;
                }
                cursor.next_slot += 1;
            }
            for &e in group[..n].iter().flatten() {
                // SAFETY: entries of the published read table are live (invariant 5).
                let entry = unsafe { e.as_ref() };
                if entry.try_expunge_locked(self.guard) {
                    expunged.push(e);
                    newly_expunged += 1;
                } else {
                    inserter.push(entry.hash(), e);
                    copied += 1;
                }
            }
        }
        drop(inserter);
        let visited = copied + newly_expunged;
        cursor.visited += visited;
        counters.rebuild_copied += copied as u64;
        counters.expunged += newly_expunged as u64;
        counters.longest_rebuild_step = counters.longest_rebuild_step.max(visited as u64);
        *rebuild = (cursor.next_slot < slots).then_some(cursor);
        if rebuild.is_none() {
            // Relaxed: a hint (see `ReadTable::rebuilding`).
            read.rebuilding.store(false, Relaxed);
        }
    }

    /// Adds a new key under `mu`: to the recent table, or (recent table off or full) to the
    /// dirty table, rebuilding the dirty table first if needed. The key may have been
    /// added to the recent table by a lock-free adder since the caller looked:
    /// [`NewKey::Exists`] then hands the key and value back.
    fn new_entry_locked(
        &self,
        dirty: &mut Dirty<K, V>,
        read: &ReadTable<K, V>,
        hash: u64,
        key: K,
        value: V,
    ) -> NewKey<'a, K, V> {
        if dirty.table.is_none() {
            self.start_rebuild_locked(dirty, read, false);
        } else {
            self.rebuild_step_locked(dirty, read, self.map.rebuild_step);
        }
        let (e, p) = Entry::alloc(hash, key, value);
        let fresh = Fresh(Some(e));
        let mut copied = 0;
        let added = read.recent.add_locked(
            e,
            hash,
            self.guard,
            &self.map.stripes,
            self.migration_step(),
            &mut copied,
        );
        let c = &mut dirty.counters;
        c.longest_recent_growth = c.longest_recent_growth.max(copied);
        let mut full = match added {
            Add::Added => false,
            Add::Found(other) => {
                let (key, value) = fresh.into_parts();
                return NewKey::Exists(self.entry(other), key, value);
            }
            Add::Full => true,
        };
        if full && (dirty.rebuild.is_some() || dirty.promoting > 0) {
            // (Or an explicit promotion is under way: see `promotion_waits_locked`.)
            // The rebuild lags behind the new keys (they come faster than lock-free adders
            // find the lock free to take steps). Promoting now would finish it in one go:
            // a pause that grows with the map (93 ms at 4 Mi keys, 4 threads on 2 cores).
            // Instead the key goes past the recent table's limit, without growing its
            // array, and so does every new key until the rebuild is done: each takes the
            // lock and one rebuild step first (above), so new keys wait in turn for one
            // step each rather than all for the whole rest.
            match read
                .recent
                .add_overflow_locked(e, hash, self.guard, &self.map.stripes)
            {
                Add::Added => full = false,
                Add::Found(other) => {
                    let (key, value) = fresh.into_parts();
                    return NewKey::Exists(self.entry(other), key, value);
                }
                Add::Full => {}
            }
        }
        if full && self.map.recent != RecentKeys::Off {
            // The recent table is full: publish the dirty table now, rather than make
            // readers of new and absent keys take the lock. But not with our entry in
            // it: a lock-free adder of the same key may hold a reservation on this table
            // and fill a slot after our caller's lookup; the promotion would then move
            // that entry into the new main table beside ours (two entries for one key).
            // So promote first: closing the array, it waits for such an add, whose entry
            // the new read table then holds in its level (and we find it below), or makes
            // an add that comes later fail and retry under `mu` (and find ours). Then add
            // the key to the new read table's (empty) recent table.
            let (key, value) = fresh.into_parts();
            dirty.counters.recent_full += 1;
            self.promote_locked(dirty, Fold::Keep);
            let read = self.read();
            if let Some(other) = read.find(hash, &key) {
                // The rebuild the promotion started (invariant 8) may have expunged it, if
                // it was deleted since it was added: put it back, as for any key found
                // expunged under the lock.
                return NewKey::Exists(self.unexpunge_locked(dirty, other), key, value);
            }
            return self.new_entry_locked(dirty, read, hash, key, value);
        }
        fresh.published();
        dirty.counters.new_keys += 1;
        if full {
            // The recent table is off: the key goes into the dirty table only.
            let table = dirty
                .table
                .as_mut()
                .expect("the dirty table was just created if missing");
            insert_entry(table, e);
            // Relaxed: `amended` is only written under `mu`, which we hold.
            if !read.amended.load(Relaxed) {
                // Release: pairs with the Acquire load in `find_entry`.
                read.amended.store(true, Release);
            }
        }
        NewKey::Added(p)
    }

    /// Adds a new key to the recent table without the lock, if it can: the common path
    /// of every new key while the recent table has room. [`NewKey::Locked`] hands the key
    /// and value back when the caller must take the lock (no recent table yet, no room,
    /// the array closed by a promotion or growth); [`NewKey::Exists`] when another thread
    /// added the key first. The caller found the key in neither of `read`'s tables.
    fn try_new_entry(
        &self,
        read: &'a ReadTable<K, V>,
        hash: u64,
        key: K,
        value: V,
    ) -> NewKey<'a, K, V> {
        let Some((array, reservation, headroom)) = read.recent.try_reserve() else {
            return NewKey::Locked(key, value);
        };
        let (e, p) = Entry::alloc(hash, key, value);
        let fresh = Fresh(Some(e));
        match array.add(e, hash) {
            Add::Added => {
                reservation.keep();
                // After the fill: a close waiting for our add counts it (Release there).
                self.map.stripes.recent_fill(self.thread());
            }
            Add::Found(other) => {
                drop(reservation);
                let (key, value) = fresh.into_parts();
                return NewKey::Exists(self.entry(other), key, value);
            }
            Add::Full => unreachable!("`SlotArray::add` does not report a full table"),
        }
        fresh.published();
        self.map.stripes.new_key(self.thread());
        // Keep the rebuild moving (it is what bounds a promotion's pause), and the copy of
        // a grown array's old entries (otherwise adds are sent to the lock once it falls
        // behind, see `Recent::step_locked`), but never wait for the lock here: whoever
        // holds it is doing the same work or more.
        // Relaxed: a hint (see `ReadTable::rebuilding`).
        if read.rebuilding.load(Relaxed) || (read.recent.has_steps(array) && step_now(headroom)) {
            if let Some(mut dirty) = try_lock(&self.map.dirty) {
                // A promotion since we loaded `read` finished its rebuild and closed the
                // recent table.
                if std::ptr::eq(self.read(), read) {
                    self.rebuild_step_locked(&mut dirty, read, self.map.rebuild_step);
                    let copied = read
                        .recent
                        .step_locked(self.guard, 0, self.migration_step());
                    let c = &mut dirty.counters;
                    c.longest_recent_growth = c.longest_recent_growth.max(copied);
                }
            }
        }
        NewKey::Added(p)
    }

    /// Slots of a grown recent array's old array that one migration step copies at least
    /// (see `Recent::step_locked`): twice the rebuild step, about as many entries as a
    /// rebuild step copies (the old array is at most half full).
    fn migration_step(&self) -> usize {
        self.map.rebuild_step.saturating_mul(2)
    }

    /// If the read-table entry `e` is expunged, unexpunges it and puts it back into the
    /// dirty table. Returns the entry.
    fn unexpunge_locked(&self, dirty: &mut Dirty<K, V>, e: EntryPtr<K, V>) -> EntryRef<'a, K, V> {
        let entry = self.entry(e);
        if entry.unexpunge_locked(self.guard) {
            dirty.revived.push(e);
            let table = dirty
                .table
                .as_mut()
                .expect("invariant 2: expunged entries imply a dirty table");
            // The original pointer (not one derived from `entry`): the table's pointers
            // are later turned back into `Box`es.
            insert_entry(table, e);
        }
        entry
    }

    // ---------------------------------------------------------------- operations

    #[inline(always)]
    pub(crate) fn get<Q>(&self, hash: u64, key: &Q) -> Option<&'a V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let e = self.find_entry(hash, key)?;
        e.load(self.guard).map(|p| self.value(p))
    }

    /// [`get`](Self::get), with the stored key.
    #[inline]
    pub(crate) fn get_key_value<Q>(&self, hash: u64, key: &Q) -> Option<(&'a K, &'a V)>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let e = self.find_entry(hash, key)?;
        e.load(self.guard).map(|p| (&e.get().key, self.value(p)))
    }

    /// What [`get`](Self::get) would return now, if `candidate` holds `key`: its value,
    /// without searching again and without counting the hit (the caller counts). `None`
    /// if the candidate holds another key (or there is none): look the key up the
    /// ordinary way.
    ///
    /// `candidate` must be the item at the first slot whose tag matches `key`'s hash in
    /// the home bucket of the main table of the read table published *now*
    /// ([`Home::candidate`]; the caller took it earlier under the same guard and checks
    /// that the table is still published). A main table holds one entry per key, and
    /// `get` searches the home bucket's matching slots first, in the same order, so an
    /// equal key there is the entry `get` would stop at, and reading its slot is what
    /// `get` does next.
    #[inline]
    pub(crate) fn candidate_value<Q>(
        &self,
        candidate: Option<EntryPtr<K, V>>,
        key: &Q,
    ) -> Option<Option<&'a V>>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        // `candidate` came from a published read table under `self.guard`.
        let entry = self.entry(candidate?);
        (entry.key.borrow() == key).then(|| entry.load(self.guard).map(|p| self.value(p)))
    }

    /// Counts `n` lookups answered from the main table (unless hits are not counted).
    #[inline]
    pub(crate) fn count_hits(&self, n: u64) {
        if let Some(counter) = self.hits {
            count_hits(counter, n);
        }
    }

    /// The lock-free start of every insert: `key`'s entry from the read table (main or
    /// recent), or the new key added to the recent table without the lock (counted), or
    /// the key and value back when the lock is needed.
    #[inline]
    fn find_or_add(&self, hash: u64, key: K, value: V) -> NewKey<'a, K, V> {
        let read = self.read();
        match read.find(hash, &key) {
            Some(e) => NewKey::Exists(self.entry(e), key, value),
            None => {
                let added = self.try_new_entry(read, hash, key, value);
                if let NewKey::Added(_) = added {
                    self.map.stripes.add_len(self.thread(), 1);
                }
                added
            }
        }
    }

    pub(crate) fn insert(&self, hash: u64, key: K, value: V) -> Option<&'a V> {
        let (e, key, value) = match self.find_or_add(hash, key, value) {
            NewKey::Added(_) => return None,
            NewKey::Exists(e, key, value) => (e, key, value),
            NewKey::Locked(key, value) => return self.insert_slow(hash, key, Pending::new(value)),
        };
        let mut pending = Pending::new(value);
        if let Ok(prev) = e.try_swap(pending.ptr(e), self.guard) {
            pending.published();
            return self.replaced(&e, prev);
        }
        self.insert_slow(hash, key, pending)
    }

    #[cold]
    #[inline(never)]
    fn insert_slow(&self, hash: u64, key: K, mut pending: Pending<K, V>) -> Option<&'a V> {
        // The caller's key when the map already holds an equal one: dropped after the
        // lock is released (a user `Drop` that uses the map must not run under it).
        let mut duplicate = None;
        let mut dirty = self.map.lock();
        let read = self.read();
        let e = if let Some(e) = read.find(hash, &key) {
            self.unexpunge_locked(&mut dirty, e)
        } else if let Some(e) = dirty
            .table
            .as_ref()
            .and_then(|t| self.find_in(t, hash, &key))
        {
            e
        } else {
            match self.new_entry_locked(&mut dirty, read, hash, key, pending.into_inner()) {
                NewKey::Added(_) => {
                    drop(dirty);
                    self.map.stripes.add_len(self.thread(), 1);
                    return None;
                }
                // In the current recent table (invariant 6), or in the main table or
                // level a full recent table's promotion just published, whose first
                // rebuild step may have expunged it: `new_entry_locked` put it back, with
                // `mu` held since: not expunged.
                NewKey::Exists(e, key, value) => {
                    duplicate = Some(key);
                    pending = Pending::new(value);
                    e
                }
                NewKey::Locked(..) => unreachable!("only the lock-free path gives up"),
            }
        };
        let prev = e.swap(pending.ptr(e), self.guard);
        pending.published();
        drop(dirty);
        drop(duplicate);
        self.replaced(&e, prev)
    }

    pub(crate) fn get_or_insert(&self, hash: u64, key: K, value: V) -> (&'a V, bool) {
        self.get_or_insert_hashed(hash, key, value)
    }

    pub(crate) fn get_or_insert_with(
        &self,
        hash: u64,
        key: K,
        make: impl FnOnce() -> V,
    ) -> (&'a V, bool) {
        match self.get_or_try_insert_with(hash, key, || Ok::<V, Infallible>(make())) {
            Ok(found) => found,
            Err(never) => match never {},
        }
    }

    /// [`get_or_insert_with`](Self::get_or_insert_with) with a fallible `make`: its error
    /// is returned and nothing is inserted.
    pub(crate) fn get_or_try_insert_with<E>(
        &self,
        hash: u64,
        key: K,
        make: impl FnOnce() -> Result<V, E>,
    ) -> Result<(&'a V, bool), E> {
        if let Some(p) = self.find_entry(hash, &key).and_then(|e| e.load(self.guard)) {
            return Ok((self.value(p), false));
        }
        // No lock is held here: `make` may use the map freely.
        let value = make()?;
        Ok(self.get_or_insert_hashed(hash, key, value))
    }

    fn get_or_insert_hashed(&self, hash: u64, key: K, value: V) -> (&'a V, bool) {
        let (e, key, value) = match self.find_or_add(hash, key, value) {
            NewKey::Added(p) => return (self.value(p), true),
            NewKey::Exists(e, key, value) => (e, key, value),
            NewKey::Locked(key, value) => {
                return self.get_or_insert_slow(hash, key, Pending::new(value))
            }
        };
        let mut pending = Pending::new(value);
        match e.try_load_or_store(&mut || pending.ptr(e), self.guard) {
            LoadOrStore::Loaded(p) => (self.value(p), false),
            LoadOrStore::Stored(p) => self.stored(p, pending),
            LoadOrStore::Expunged => self.get_or_insert_slow(hash, key, pending),
        }
    }

    #[cold]
    #[inline(never)]
    fn get_or_insert_slow(&self, hash: u64, key: K, mut pending: Pending<K, V>) -> (&'a V, bool) {
        // As in `insert_slow`: a duplicate key is dropped after the lock.
        let mut duplicate = None;
        let mut dirty = self.map.lock();
        let read = self.read();
        let result = if let Some(e) = read.find(hash, &key) {
            let e = self.unexpunge_locked(&mut dirty, e);
            e.try_load_or_store(&mut || pending.ptr(e), self.guard)
        } else if let Some(e) = dirty
            .table
            .as_ref()
            .and_then(|t| self.find_in(t, hash, &key))
        {
            let result = e.try_load_or_store(&mut || pending.ptr(e), self.guard);
            self.miss_locked(&mut dirty);
            result
        } else {
            match self.new_entry_locked(&mut dirty, read, hash, key, pending.into_inner()) {
                NewKey::Added(p) => {
                    drop(dirty);
                    self.map.stripes.add_len(self.thread(), 1);
                    return (self.value(p), true);
                }
                // In the current recent table (invariant 6), or in the main table or
                // level a full recent table's promotion just published, whose first
                // rebuild step may have expunged it: `new_entry_locked` put it back, with
                // `mu` held since: not expunged.
                NewKey::Exists(e, key, value) => {
                    duplicate = Some(key);
                    pending = Pending::new(value);
                    e.try_load_or_store(&mut || pending.ptr(e), self.guard)
                }
                NewKey::Locked(..) => unreachable!("only the lock-free path gives up"),
            }
        };
        drop(dirty);
        drop(duplicate);
        match result {
            LoadOrStore::Loaded(p) => (self.value(p), false),
            LoadOrStore::Stored(p) => self.stored(p, pending),
            LoadOrStore::Expunged => unreachable!("entries are unexpunged under the lock"),
        }
    }

    fn stored(&self, p: *mut V, pending: Pending<K, V>) -> (&'a V, bool) {
        pending.published();
        self.map.stripes.add_len(self.thread(), 1);
        (self.value(p), true)
    }

    pub(crate) fn remove<Q>(&self, hash: u64, key: &Q) -> Option<&'a V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let read = self.read();
        if let Some(e) = read.find(hash, key) {
            let e = self.entry(e);
            return self.removed(&e, e.delete(self.guard));
        }
        // Acquire: as in `find_entry`.
        if !read.amended.load(Acquire) {
            return None;
        }
        self.remove_slow(hash, key)
    }

    #[cold]
    #[inline(never)]
    fn remove_slow<Q>(&self, hash: u64, key: &Q) -> Option<&'a V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let mut dirty = self.map.lock();
        let read = self.read();
        if let Some(e) = read.find(hash, key) {
            drop(dirty);
            let e = self.entry(e);
            return self.removed(&e, e.delete(self.guard));
        }
        // Relaxed: written only under `mu`, which we hold.
        if !read.amended.load(Relaxed) {
            return None;
        }
        let detached = dirty.table.as_mut().and_then(|t| {
            // SAFETY: as in `find`.
            t.remove(hash, |e| unsafe { e.as_ref() }.key.borrow() == key)
        });
        self.miss_locked(&mut dirty);
        let e = detached?;
        dirty.counters.retired_entries += 1;
        let entry = self.entry(e);
        let prev = entry.detach_locked(self.guard);
        // SAFETY: the key was not in the read table, so the entry was only in the dirty
        // table, which no longer holds it: it is unreachable and expunged (invariant 5).
        unsafe { self.retire_entry(e) };
        drop(dirty);
        self.removed(&entry, prev)
    }

    pub(crate) fn compare_exchange<Q>(
        &self,
        hash: u64,
        key: &Q,
        current: &V,
        new: V,
    ) -> Result<&'a V, (Option<&'a V>, V)>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
        V: PartialEq,
    {
        let Some(e) = self.find_entry(hash, key) else {
            return Err((None, new));
        };
        let mut pending = Pending::new(new);
        let mut p = e.load_raw(self.guard);
        loop {
            // Expunged or deleted: the key is absent at this instant.
            if !is_value(p) {
                return Err((None, pending.into_inner()));
            }
            let found = self.value(p);
            if found != current {
                return Err((Some(found), pending.into_inner()));
            }
            match e.cas(p, pending.ptr(e), self.guard) {
                Ok(prev) => {
                    pending.published();
                    self.map.stripes.overwrite(self.thread());
                    return Ok(self.retire_value(&e, prev));
                }
                Err(actual) => p = actual,
            }
        }
    }

    /// Replaces the value of `key` with `f(value)`, atomically with respect to the value
    /// `f` saw: the result is stored only if that value is still in the slot, otherwise
    /// `f` runs again on the value found. Returns the stored value, or `None` (without
    /// calling `f`) if the key is absent.
    pub(crate) fn update<Q>(&self, hash: u64, key: &Q, mut f: impl FnMut(&V) -> V) -> Option<&'a V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let e = self.find_entry(hash, key)?;
        let mut p = e.load_raw(self.guard);
        loop {
            // Expunged or deleted: the key is absent at this instant.
            if !is_value(p) {
                return None;
            }
            // `f` runs before anything is claimed: if it panics, there is nothing to give
            // back.
            let mut pending = Pending::new(f(self.value(p)));
            let new = pending.ptr(e);
            match e.cas(p, new, self.guard) {
                Ok(prev) => {
                    pending.published();
                    self.map.stripes.overwrite(self.thread());
                    self.retire_value(&e, prev);
                    // Published through our guard: it is retired only after leaving the
                    // slot, and reclaimed only after the guard is dropped.
                    return Some(self.value(new));
                }
                // Another thread replaced the value: `pending` gives its slot or box
                // back and drops the value computed from the old one.
                Err(actual) => p = actual,
            }
        }
    }

    pub(crate) fn remove_if<Q>(
        &self,
        hash: u64,
        key: &Q,
        mut predicate: impl FnMut(&V) -> bool,
    ) -> Option<&'a V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let e = self.find_entry(hash, key)?;
        self.delete_if(&e, |_, v| predicate(v))
    }

    /// present → deleted if `predicate` approves the value it sees (re-asked on races).
    fn delete_if(
        &self,
        e: &Entry<K, V>,
        mut predicate: impl FnMut(&K, &V) -> bool,
    ) -> Option<&'a V> {
        let mut p = e.load_raw(self.guard);
        loop {
            if !is_value(p) || !predicate(&e.key, self.value(p)) {
                return None;
            }
            match e.cas(p, std::ptr::null_mut(), self.guard) {
                Ok(prev) => return self.removed(e, Some(prev)),
                Err(actual) => p = actual,
            }
        }
    }

    /// The read table to iterate (main and recent tables), promoting the dirty table
    /// first if it holds keys that neither holds (only possible with the recent table
    /// off), so the snapshot contains every key present at this moment. That promotion
    /// is an explicit one ([`promote`](Self::promote)): a pending rebuild is finished in
    /// bounded steps, the lock released between them, not in one go under it.
    fn iteration_table(&self) -> &'a ReadTable<K, V> {
        // Acquire: as in `find_entry`.
        if self.read().amended.load(Acquire) {
            // Keys added after this call's promotion are "inserted meanwhile" (they may
            // or may not be visited); every key present now is in the table it publishes
            // or in any later one.
            self.promote();
        }
        self.read()
    }

    pub(crate) fn iter(&self) -> RawIter<'a, K, V, G> {
        let read = self.iteration_table();
        let slots = |a: Option<&'a SlotArray<K, V>>| a.map_or(&[][..], |a| &a.slots[..]);
        let (prev, current) = read.recent.arrays();
        let (prev, current) = (slots(prev), slots(current));
        RawIter {
            entries: read.table.iter(),
            older: read.level_slots().iter().chain(prev.iter()),
            prev,
            current: current.iter(),
            guard: self.guard,
        }
    }

    /// Inserts many entries in one pass, under the lock: promotes whatever is pending,
    /// builds a new main table from the read table's entries plus the new keys (values of
    /// keys already present are replaced, later items winning), and publishes it with
    /// one pointer swap, like a promotion. No rebuild, no recent table, no intermediate
    /// promotions: `n` items cost `n` entry insertions plus one copy of the existing
    /// entries. Lookups running meanwhile see the old table until the swap (lock-free
    /// overwrites and removes of existing keys act on the shared entries, so they are
    /// kept); writers of new keys wait for the lock, as during any promotion.
    ///
    /// The lock is held throughout, so the public API offers this only where the caller
    /// owns the map (`Extend` on `SyncMap` itself, `FromIterator`).
    pub(crate) fn insert_all(&self, items: impl Iterator<Item = (u64, K, V)>) {
        let mut dirty = self.map.lock();
        let read = self.read();
        // Relaxed: `amended` is written under `mu`. (A recent table with a slot array
        // implies a dirty table, invariant 1; the promotion closes it.)
        if dirty.table.is_some() || read.amended.load(Relaxed) {
            self.promote_locked(&mut dirty, Fold::BulkMove);
        }
        // Invariant 3 now holds: the read table's main table and level hold every entry,
        // none of them expunged, and there is no dirty table or rebuild.
        let read = self.read();
        // Room for the announced items, up to a sane bound (a size hint may lie; the
        // table grows if more come).
        let announced = items.size_hint().0.min(1 << 20);
        let mut table = Table::with_capacity(read.len() + announced);
        let mut inserter = Inserter::new(&mut table);
        for e in read.entries() {
            // SAFETY: entries of the published read table are live (invariant 5).
            inserter.push(unsafe { e.as_ref() }.hash(), e);
        }
        drop(inserter);
        let mut added = 0usize;
        // User code runs below (the iterator, `Eq`, `Hash`): if it panics, the entries
        // allocated so far are in no published table, and `unpublished` frees them.
        let mut unpublished = Unpublished(Vec::new());
        for (hash, key, value) in items {
            // (`table`, like the dirty table, is only read under `mu`; it holds live
            // entries of the read table and entries allocated here.)
            if let Some(e) = self.find_in(&table, hash, &key) {
                let mut pending = Pending::new(value);
                // Not expunged (invariant 3, and expunging needs `mu`): a plain swap.
                let prev = e.swap(pending.ptr(e), self.guard);
                pending.published();
                // Counted at once (a revived deleted entry adds a key): the swap is
                // visible to readers already, whatever happens next.
                self.replaced(&e, prev);
            } else {
                let (e, _) = Entry::alloc(hash, key, value);
                unpublished.0.push(e);
                insert_entry(&mut table, e);
                added += 1;
            }
        }
        // About to be published (no user code runs from here on): nothing to free.
        unpublished.0.clear();
        // Counted only now: a panic above frees the new entries, which were never keys.
        dirty.counters.new_keys += added as u64;
        // Its entries are those of the old table (main table and level) plus the new ones.
        self.publish_locked(&mut dirty, table, None);
        drop(dirty);
        self.guard.flush(); // as in `promote_locked`
        let added = isize::try_from(added).expect("fewer entries than isize::MAX");
        self.map.stripes.add_len(self.thread(), added);
    }

    /// Promotes the dirty table now if it holds keys the read table's main table lacks.
    /// Returns whether it did.
    ///
    /// A rebuild in progress (and the copy of a grown recent array) must be finished
    /// first; this call does that in steps of 16 rebuild steps
    /// ([`finish_max`](Self::finish_max) entries), releasing the lock between them and
    /// letting waiting threads in ([`RawMap::let_waiters_in`]), so that other threads
    /// wait for one such step at a time instead of the whole rebuild; the caller does
    /// the same work as in one go. The promotion itself then moves the recent table's
    /// entries into the new main table in one go: a pause bounded by the recent table's
    /// limit ([`RecentKeys`]; plus an overflow while a rebuild lagged), which is what
    /// the call is for. Keeping every large recent table as a level instead would bound
    /// that pause too, but then every key must reach the main table through a second
    /// rebuild of the whole map (9 ms → 220 ms for 256 Ki recent keys in a map of 4 Mi,
    /// measured), so that is done only when the move would not fit: the rebuilt table is
    /// sized for `move_max` recent entries (larger tables slow every read), and moving
    /// more than its slack takes would rehash the whole table under the lock. Then the
    /// recent table is kept as a level, and the rebuild this starts, sized for the
    /// recent table's whole limit ([`Fold::KeepForMove`]), is stepped through too
    /// before the move. Meanwhile other promotions wait (`Dirty::promoting`): one keeping the
    /// recent table as a level would start a new rebuild of the whole map to chase. Only
    /// a full recent table whose overflow is full too promotes anyway; the steps are
    /// capped at twice the work in sight plus 64, re-armed at most twice when another
    /// promotion replaced the table, and past the cap the promotion finishes what is
    /// left in one go. If keys other threads added meanwhile no longer fit the rebuilt
    /// table, the final promotion keeps them as a level too ([`Fold::Move`]) rather
    /// than rehash the table under the lock.
    ///
    /// Then it retires the expunged entries waiting in graves (see [`Grave`];
    /// [`bury_pending`](Self::bury_pending)), whether it promoted or not, so that an
    /// explicit promotion gives back the memory of a mass removal even when no writes
    /// follow.
    pub(crate) fn promote(&self) -> bool {
        let promoted = self.promote_in_steps();
        self.bury_pending();
        promoted
    }

    /// Retires, in steps of [`finish_max`](Self::finish_max) entries with the lock
    /// released between them (as [`promote`](Self::promote) steps through a rebuild), the
    /// entries that wait in graves now: at most as many as wait when it starts, so a
    /// promotion that adds a grave meanwhile cannot keep it going.
    fn bury_pending(&self) {
        let mut dirty = self.map.lock();
        let mut left: usize = dirty.graves.iter().map(|g| g.entries.len()).sum();
        let step = self.finish_max().max(1);
        while !dirty.graves.is_empty() {
            let n = step.min(left);
            self.bury_locked(&mut dirty, n);
            left -= n;
            if left == 0 {
                break;
            }
            drop(dirty);
            self.map.let_waiters_in();
            dirty = self.map.lock();
        }
    }

    /// [`promote`](Self::promote) up to the graves.
    fn promote_in_steps(&self) -> bool {
        let mut dirty = self.map.lock();
        if !self.promotion_needed_locked(self.read()) {
            return false;
        }
        let step = self.finish_max();
        // The steps in sight: the rebuild and copy pending, twice, plus 64. Re-armed (at
        // most twice) if another promotion replaced the read table meanwhile (one that
        // could not wait: a full recent table that also filled its overflow) and so
        // started a new rebuild.
        let budget = |dirty: &Dirty<K, V>, read: &ReadTable<K, V>| {
            let work = dirty
                .rebuild
                .map_or(0, |r| read.len().saturating_sub(r.visited))
                .saturating_add(read.recent.growth_pending_locked());
            (work / step.max(1)).saturating_mul(2).saturating_add(64)
        };
        let mut steps = budget(&dirty, self.read());
        let (mut table, mut rearmed) = (self.map.read.load(Relaxed), 0);
        let mut kept = false;
        dirty.promoting += 1;
        loop {
            while steps > 0 && self.steps_pending_locked(&dirty, self.read()) {
                let read = self.read();
                self.rebuild_step_locked(&mut dirty, read, step);
                if read.recent.growth_pending_locked() > 0 {
                    // Copy steps of the same length (twice as many slots, as usual); not
                    // the zeroing of a next array, which the promotion would discard.
                    self.growth_step_locked(&mut dirty, read, step.saturating_mul(2));
                }
                steps -= 1;
                drop(dirty);
                self.map.let_waiters_in();
                dirty = self.map.lock();
                // Relaxed: under `mu`, which orders the swaps of `read`.
                let now = self.map.read.load(Relaxed);
                if now != table && rearmed < 2 {
                    (table, rearmed) = (now, rearmed + 1);
                    steps = budget(&dirty, self.read());
                }
            }
            if kept || !self.promotion_needed_locked(self.read()) || self.move_fits_locked(&dirty) {
                break;
            }
            // The recent table holds more keys than the dirty table has room for (it was
            // sized for what a lookup-driven promotion moves): moving them would rehash
            // the whole table under the lock. Keep them as a level instead (no copy), and
            // step through the rebuild that starts, sized for the recent table's whole
            // limit, before the final move. The caller rebuilds the map twice; other
            // threads wait for one step at a time.
            self.promote_locked(&mut dirty, Fold::KeepForMove);
            kept = true;
            // Relaxed: under `mu`.
            table = self.map.read.load(Relaxed);
            steps = budget(&dirty, self.read());
        }
        dirty.promoting -= 1;
        if !self.promotion_needed_locked(self.read()) {
            // Another thread's promotion published everything meanwhile.
            return true;
        }
        // Moves the recent table if it fits, else keeps it as a level. The keep above
        // made room for the recent table's limit, but while this call stepped with the
        // lock released, other threads' new keys could overflow that table past its
        // limit (other promotions wait meanwhile), or fill the overflow too and force a
        // promotion whose rebuild has room for `move_max` only: those keys reach the
        // main table at the next promotion instead of through a rehash under the lock.
        self.promote_locked(&mut dirty, Fold::Move);
        true
    }

    /// Whether the recent table's entries fit in the dirty table once its rebuild is
    /// done (the entries left to copy counted at their most). Under `mu`.
    fn move_fits_locked(&self, dirty: &Dirty<K, V>) -> bool {
        let read = self.read();
        let Some(table) = dirty.table.as_ref() else {
            return true;
        };
        let left = dirty
            .rebuild
            .map_or(0, |r| read.len().saturating_sub(r.visited));
        table
            .len()
            .saturating_add(left)
            .saturating_add(read.recent.len())
            <= table.capacity()
    }

    /// Whether the read table's main table lacks keys that a promotion would give it.
    /// Under `mu`.
    fn promotion_needed_locked(&self, read: &ReadTable<K, V>) -> bool {
        // Relaxed: `amended` is written under `mu`. A slot array holds at least one key
        // (the add that allocated it, or the one it found), and is replaced only under `mu`.
        // A level implies a dirty table (invariant 8), whose rebuild, finished by the
        // promotion, copies the level's entries into it.
        read.amended.load(Relaxed) || read.recent.array_locked().is_some() || read.level.is_some()
    }

    pub(crate) fn retain(&self, mut keep: impl FnMut(&K, &V) -> bool) {
        let mut entries = self.iter();
        while let Some(e) = entries.next_entry() {
            self.delete_if(e, |k, v| !keep(k, v));
        }
    }

    /// Removes every key. The tables are swapped for empty ones at once, under the lock
    /// (the linearization point: lookups that start later find nothing); then the old
    /// entries are detached (expunged, their values retired) and retired in steps of
    /// [`finish_max`](Self::finish_max) entries, releasing the lock between steps and
    /// letting waiting threads in ([`RawMap::let_waiters_in`]), as
    /// [`promote`](Self::promote) does. Detaching every entry under one lock hold took
    /// 630–670 ms for a 4 Mi-key map on the development machine, and a writer that had
    /// waited for the lock inside its guard then freed all of them at the end of its
    /// operation (1.1–3.2 s).
    ///
    /// Once the tables are swapped, the old entries are reachable only through tables
    /// that operations loaded before the swap, so those operations overlap the clear:
    /// one that finds an old entry not detached yet is ordered before the clear (a
    /// lock-free write into it is then cleared with it: its value is retired when the
    /// entry is detached), one that finds it detached (*expunged*) after it (a lookup
    /// answers "absent"; a write falls back to the lock). Every path that takes the lock
    /// looks the key up again in the current tables, so no operation under the lock
    /// acts on an old entry; the steps still expunge under the lock, as every
    /// transition to *expunged* does. The old tables themselves are private to this
    /// call.
    ///
    /// `len` drops at the swap: the striped count is reduced by what it reads then, and
    /// at the end given back whatever of that the detach did not find present. The net
    /// change is exactly the entries detached with a value, as before, so `len` is exact
    /// once writers finish; meanwhile it counts the new tables' keys (give or take
    /// writes through old tables), not old keys waiting for their step (which made
    /// `try_insert` refuse keys below `max_len`).
    pub(crate) fn clear(&self) {
        let mut dirty = self.map.lock();
        // Close the recent table first, so that no lock-free adder can add a key to it once
        // we have collected its entries (invariant 6: they are in no other table).
        let mut recent = Vec::new();
        let read = self.read();
        if read.recent.array_locked().is_some() {
            read.recent.close_locked(&self.map.stripes, 0);
            read.recent.for_each_closed(|e, _| recent.push(e));
        }
        // AcqRel: Release publishes the empty table; Acquire pairs with the publication
        // of the old one, whose entries we walk below (also ordered by `mu`).
        let new = ReadTable::new(
            Table::new(),
            None,
            self.map.recent,
            self.map.stripes.recent_fills(),
        );
        let old_ptr = self.map.read.swap(new, AcqRel);
        // SAFETY: `old_ptr` was published; we hold a guard, so it is live, and only this
        // call retires it (at the end, after its last use through `work`).
        let old = unsafe { &*old_ptr };
        dirty.counters.table_replaced(old.bytes());
        let counted = isize::try_from(self.map.stripes.len()).unwrap_or(isize::MAX);
        self.map.stripes.add_len(self.thread(), -counted);
        let table = dirty.table.take();
        // Invariant 2: with a dirty table, the entries its rebuild has not visited are
        // in the old read table only; without one, the read table holds them all.
        let unvisited = match (&table, dirty.rebuild.take()) {
            (Some(_), Some(r)) => r.next_slot..old.num_slots(),
            (Some(_), None) => 0..0,
            (None, _) => 0..old.num_slots(),
        };
        let mut work = Cleared {
            old,
            unvisited,
            expunged: std::mem::take(&mut dirty.expunged),
            table,
            slot: 0,
            recent,
            #[cfg(debug_assertions)]
            handed: std::collections::HashSet::new(),
        };
        // (The revived entries of `expunged` are in the dirty table.)
        dirty.revived.clear();
        dirty.misses = 0;
        dirty.recent_lookups_base = self.map.stripes.recent_lookups();
        self.map.clock.due.store(u64::MAX, Relaxed); // as in `promote_locked`
        let step = self.finish_max().max(1);
        let mut removed = 0usize;
        loop {
            let mut entries = 0u64;
            let done = work.step(step, self.guard, |e| {
                let entry = self.entry(e);
                if let Some(v) = entry.detach_locked(self.guard) {
                    self.retire_value(&entry, v);
                    removed += 1;
                }
                // SAFETY: the entry is in no published table any more (the old read
                // table is unpublished, the dirty table taken), and `Cleared` hands out
                // each entry once.
                unsafe { self.retire_entry(e) };
                entries += 1;
            });
            let c = &mut dirty.counters;
            c.retired_entries += entries;
            c.longest_clear_step = c.longest_clear_step.max(entries);
            if done {
                break;
            }
            drop(dirty);
            self.map.let_waiters_in();
            dirty = self.map.lock();
        }
        drop(dirty);
        self.map.stripes.add_len(self.thread(), counted);
        self.map.stripes.remove_keys(self.thread(), removed);
        // The old dirty table's buckets.
        drop(work);
        // Retired after its entries: seize frees a guard's batches newest first, so the
        // table (and a recent slot array of 64 KiB or more, freed inline) goes before
        // millions of small entries fill the allocator's free lists, not after them
        // (which made the allocator consolidate them all: +1 s at 4 Mi keys).
        // SAFETY: `old_ptr` is unpublished, came from `Box::into_raw`, and is retired
        // once (here); `work`, its last user, is gone.
        unsafe { self.guard.defer_retire(old_ptr, boxed::<ReadTable<K, V>>) };
        self.guard.flush(); // as in `promote_locked`
    }

    /// See `SyncMap::table_capacities`.
    #[cfg(test)]
    pub(crate) fn table_capacities(&self) -> (usize, Option<usize>) {
        let dirty = self.map.lock();
        let dirty_capacity = dirty.table.as_ref().map(Table::capacity);
        (self.read().table.capacity(), dirty_capacity)
    }

    pub(crate) fn stats(&self) -> Stats {
        let dirty = self.map.lock();
        let read = self.read();
        let mut stats = Stats::from_parts(
            self.map.stripes.totals(),
            dirty.counters,
            read.len(),
            read.recent.len(),
            dirty.len(read),
            std::mem::size_of::<V>(),
            std::mem::size_of::<Entry<K, V>>(),
        );
        stats.rebuild_pending = dirty.rebuild.map_or(0, |r| read.len() - r.visited);
        stats.expunged_pending = dirty.graves.iter().map(|g| g.entries.len()).sum();
        stats.recent_growth_pending = read.recent.growth_pending_locked();
        stats
    }
}

#[cfg(all(test, not(any(loom, shuttle))))]
mod filter_tests {
    use super::{squash, Filter, MAX_RECENT};

    /// xorshift64: hashes as the map's mixed hashes look (every bit uniform).
    fn hashes(seed: u64) -> impl Iterator<Item = u64> {
        let mut x = seed;
        std::iter::repeat_with(move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        })
    }

    #[test]
    fn a_filter_uses_only_the_hash_bits_entries_keep() {
        // A migration may know only an entry's copy of the hash (`squash`): it must set
        // the bits a lookup with the full hash checks, at every array size (under Miri,
        // the smallest few: minutes otherwise).
        let (largest, n) = if cfg!(miri) {
            (64, 50)
        } else {
            (MAX_RECENT * 2, 2_000)
        };
        let mut slots = 8;
        while slots <= largest {
            let filter = Filter::new(slots);
            for h in hashes(0x1234_5678_9abc_def1).take(n) {
                assert_eq!(Filter::bits(h), Filter::bits(squash(h)));
                assert!(
                    std::ptr::eq(filter.word(h), filter.word(squash(h))),
                    "{slots} slots"
                );
                // The group is the home slot's.
                let home = h as usize & (slots - 1);
                let word = (filter.word(h) as *const _ as usize - filter.words.as_ptr() as usize)
                    / std::mem::size_of::<u64>();
                assert_eq!(word, home / 8, "{slots} slots");
            }
            slots *= 4;
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "integer code: Miri adds nothing but minutes")]
    fn a_filter_never_forgets_and_rarely_admits_an_absent_key() {
        for slots in [8, 1 << 10, 1 << 16, MAX_RECENT * 2] {
            let filter = Filter::new(slots);
            // Half full, an array's usual limit.
            let present: Vec<u64> = hashes(7).take(slots / 2).collect();
            for &h in &present {
                filter.insert(h);
            }
            assert!(present.iter().all(|&h| filter.may_hold(h)));
            let trials = 20_000;
            let admitted = hashes(99)
                .take(trials)
                .filter(|&h| filter.may_hold(h))
                .count();
            // Two bits of 64 per key, four keys per word on average: about 2 % of absent
            // keys pass (the bound leaves room for uneven groups, not for a broken filter:
            // one bit per key, or a shared word, admits 6 % or more).
            assert!(
                admitted * 100 < trials * 4,
                "{admitted} of {trials} at {slots} slots"
            );
        }
    }
}
