//! The hash table behind the read and dirty tables: entry pointers in buckets of eight
//! slots, whose tags (one byte per slot) are kept apart from the pointers, in an array of
//! eight bytes per bucket, so that a lookup of an absent key waits only for tags.
//!
//! Layout: a power-of-two number of buckets. Bucket `i` is
//!
//! * `ctrl[i]`, eight bytes: one tag per slot, `0` for an empty slot, otherwise the top
//!   seven bits of the item's hash with the high bit set (so never `0`);
//! * `overflow[i]`, one byte: the bucket's *overflow count*, how many stored items probed
//!   past this bucket because it was full when they were inserted (saturating at 255,
//!   after which it is never decremented);
//! * `lines[i]`: eight `Option<T>` (for `T = NonNull<_>`, eight bytes each): one 64-byte
//!   cache line.
//!
//! Why three arrays. With the tags in the pointers' cache line (this table's first layout:
//! seven slots, seven tags and the overflow count in one line, as F14 has them), every
//! lookup read a line of an array as large as the table (1 MiB for 64 Ki keys, mostly out
//! of the cache), so a lookup of an absent key missed the cache as often as a hit did. The
//! tags alone are eight bytes per bucket (128 KiB for 64 Ki keys) and the overflow counts
//! one, and both stay cached while the map is in use: an absent key is usually answered
//! from them (unless a tag collides, about one lookup in twenty); the request for its
//! pointer line, made before the tags are read, is not waited for. A hit still reads one
//! line of pointers; [`Table::find`] asks for it before it reads the tags, so the two
//! loads overlap and a hit waits for memory no longer than before. The overflow count
//! is read only when a bucket's tags do not find the key. Memory: 73 bytes per eight
//! slots against 64 per seven before.
//!
//! An item's home bucket is `hash & mask`; insertion probes linearly from there to the
//! first bucket with an empty slot, incrementing the overflow count of every full bucket
//! it passes. A lookup compares the searched tag with all eight tags at once (SWAR on one
//! `u64`), checks the candidates, and stops at the first bucket whose overflow count is
//! zero: no item whose probe passed through it lies further on. Removal clears the slot
//! and decrements the overflow counts along the removed item's probe path. (The probing
//! scheme is the one of Facebook's F14 tables; the code here is ours.)
//!
//! At most [`LOAD`] of the eight slots per bucket are used on average before the table
//! doubles (7/8, hashbrown's maximum load). The tables are read lock-free only while
//! immutable (the published read table), and mutated only under the map's mutex (the
//! dirty table), so no atomics are needed here. The arrays are allocated zeroed
//! ([`ZeroedSlice`]: an empty bucket is all zero bytes), so creating a large table does
//! not write it.

use std::fmt;
use std::num::NonZeroU32;
use std::ptr::NonNull;

use super::zeroed::{Zeroable, ZeroedSlice};

/// Items a [`Table`] can hold: `Copy`, with `None::<Self>` all zero bytes, so that an
/// empty bucket is all zero bytes.
///
/// # Safety
///
/// All-zero bytes must be a valid `Option<Self>`, and be `None`.
pub(crate) unsafe trait Item: Copy {}

// SAFETY: `Option<NonNull<_>>` has the null-pointer niche: `None` is the zero address.
unsafe impl<T> Item for NonNull<T> {}
// SAFETY: `Option<NonZeroU32>` uses zero for `None` (guaranteed by the standard library).
unsafe impl Item for NonZeroU32 {}

// SAFETY: the tags are integers (zero: empty slot).
unsafe impl Zeroable for Ctrl {}
// SAFETY: the slots are `Option<T>` with `T: Item`, for which zero bytes are `None`: a
// zeroed line holds no items.
unsafe impl<T: Item> Zeroable for Line<T> {}

/// Mixes a hasher's output before the tables use it: one 64 × 64 → 128-bit multiply by
/// 2⁶⁴/φ, folding the high half onto the low half, so that every output bit depends on
/// every input bit.
///
/// The tables take the bucket index from the low bits and the tag from the top seven, so
/// they need both ends well mixed, and a fast hasher does not always deliver that: with
/// `foldhash::fast` (the default hasher), integer keys 0..100 hashed into 32 buckets left
/// on average 1.3 buckets empty in most processes (as uniform hashing does) but 6 to 17
/// in about one process in ten (its random seed decides), with tags just as skewed —
/// longer probes and tag collisions, decided by a per-process lottery. After this step,
/// 1.2 to 1.5 in every process tried; identity-like hashers (`k << 12`) spread too.
#[inline]
pub(crate) fn spread(hash: u64) -> u64 {
    let product = u128::from(hash) * 0x9e37_79b9_7f4a_7c15;
    (product as u64) ^ ((product >> 64) as u64)
}

/// Slots per bucket.
const SLOTS: usize = 8;
/// Items per bucket, on average, before the table grows (7 / 8 of slots).
const LOAD: usize = 7;
/// One in each byte.
const LO: u64 = 0x0101_0101_0101_0101;
/// The low seven bits of each byte.
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
/// The high bit of each tag byte.
const TAG_HIGH: u64 = 0x8080_8080_8080_8080;

/// The tag of a hash: its top seven bits, high bit set.
#[inline]
fn tag(hash: u64) -> u8 {
    (hash >> 57) as u8 | 0x80
}

/// High bit set in each tag byte of `x` that is zero; exact (no false
/// positives from borrows, unlike the shorter `(x - LO) & !x` trick).
#[inline]
fn zero_tags(x: u64) -> u64 {
    !(((x & LOW7) + LOW7) | x | LOW7) & TAG_HIGH
}

/// Candidate slots for a lookup: high bit set in each tag byte of `x` that is zero, and
/// possibly in a byte just above a zero byte that is 1 (a borrow: the short trick's false
/// positive). Lookups check candidates lowest first and compare keys, so a false
/// positive can only cost a key comparison after a tag collision below it; never use
/// this to find empty slots.
#[inline]
fn candidate_tags(x: u64) -> u64 {
    x.wrapping_sub(LO) & !x & TAG_HIGH
}

/// Slot index of the lowest bit set in a [`zero_tags`] mask.
#[inline]
fn first_slot(mask: u64) -> usize {
    (mask.trailing_zeros() / 8) as usize
}

/// Asks the CPU to start loading the cache line at `p` (a hint: no effect on results).
/// A plain no-op where we have no prefetch instruction (and under Miri).
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse", not(miri)))]
    // SAFETY: a prefetch never faults and has no architectural effect, whatever the
    // address (SSE is statically enabled, checked by the `cfg`).
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>());
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse", not(miri))))]
    let _ = p;
}

/// Items per [`Table::insert_unique_batch`] call that callers gather: enough to keep the
/// CPU's outstanding cache misses busy, few enough that the prefetched lines are still
/// there when they are used.
pub(crate) const BATCH: usize = 16;

/// A bucket's tags (see the module docs).
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct Ctrl {
    tags: [u8; SLOTS],
}

impl Ctrl {
    #[inline]
    fn word(self) -> u64 {
        u64::from_le_bytes(self.tags)
    }
}

/// A bucket's slots: one cache line.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct Line<T> {
    slots: [Option<T>; SLOTS],
}

// A line of pointers is one cache line.
const _: () = assert!(std::mem::size_of::<Line<std::ptr::NonNull<u8>>>() == 64);

/// A bucket as [`Table::prefetch_home`] hands it out: for batched lookups, which take its
/// [`candidate`](Self::candidate) after both its halves have been requested from memory.
#[derive(Clone, Copy)]
pub(crate) struct Home<'a, T> {
    ctrl: &'a Ctrl,
    line: &'a Line<T>,
}

impl<'a, T> Home<'a, T> {
    /// The item at the first slot whose tag matches `hash`: the item a lookup of `hash`
    /// that starts at this bucket compares first (no key is compared).
    #[inline]
    pub(crate) fn candidate(self, hash: u64) -> Option<&'a T> {
        let matches = candidate_tags(self.ctrl.word() ^ (u64::from(tag(hash)) * LO));
        if matches == 0 {
            return None;
        }
        self.line.slots[first_slot(matches)].as_ref()
    }
}

/// A hash table of `Copy` items (entry pointers) whose hashes the caller supplies: on
/// insert and lookup, and through a closure when the table grows.
pub(crate) struct Table<T> {
    /// Each bucket's tags.
    ctrl: ZeroedSlice<Ctrl>,
    /// Each bucket's overflow count.
    overflow: ZeroedSlice<u8>,
    /// Each bucket's slots (as many as `ctrl`).
    lines: ZeroedSlice<Line<T>>,
    /// Buckets − 1.
    mask: usize,
    len: usize,
}

impl<T: Item> Table<T> {
    /// An empty table (one bucket: lookups need no emptiness check).
    pub(crate) fn new() -> Self {
        Self::with_capacity(0)
    }

    /// A table that holds `capacity` items without growing.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let buckets = capacity.div_ceil(LOAD).max(1).next_power_of_two();
        // Entries keep only the low 32 bits of a hash below the tag (`entry::squash`):
        // enough for a home bucket while there are fewer than 2^32 buckets (a table of
        // 256 GiB of pointer lines alone).
        debug_assert!(buckets as u64 <= 1 << 32, "{buckets} buckets");
        Table {
            ctrl: ZeroedSlice::new(buckets),
            overflow: ZeroedSlice::new(buckets),
            lines: ZeroedSlice::new(buckets),
            mask: buckets - 1,
            len: 0,
        }
    }

    /// Items stored.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Items the table holds before it grows.
    pub(crate) fn capacity(&self) -> usize {
        self.buckets() * LOAD
    }

    /// Number of buckets.
    #[inline]
    fn buckets(&self) -> usize {
        self.mask + 1
    }

    /// Heap bytes of the three arrays.
    pub(crate) fn heap_bytes(&self) -> usize {
        std::mem::size_of_val::<[Ctrl]>(&self.ctrl)
            + self.overflow.len()
            + std::mem::size_of_val::<[Line<T>]>(&self.lines)
    }

    /// The item with hash `hash` for which `eq` holds.
    #[inline(always)]
    pub(crate) fn find(&self, hash: u64, eq: impl FnMut(&T) -> bool) -> Option<&T> {
        let (at, slot) = self.position(hash, eq)?;
        self.line(at).slots[slot].as_ref()
    }

    // The lookup path's accessors: unchecked, because a lookup's indexes are masked and
    // checking them cost about ten instructions per lookup (cachegrind) that the
    // compiler did not remove, even from slices cut to `mask + 1` first.

    /// Bucket `i`'s tags (`i <= mask`, as every masked index is).
    #[inline(always)]
    fn ctrl(&self, i: usize) -> Ctrl {
        debug_assert!(i <= self.mask);
        // SAFETY: the three arrays have `mask + 1` elements (`with_capacity`; they are
        // only ever replaced together), and `i <= mask`.
        unsafe { *self.ctrl.get_unchecked(i) }
    }

    /// Bucket `i`'s overflow count (`i <= mask`).
    #[inline(always)]
    fn overflow(&self, i: usize) -> u8 {
        debug_assert!(i <= self.mask);
        // SAFETY: as in `ctrl`.
        unsafe { *self.overflow.get_unchecked(i) }
    }

    /// Bucket `i`'s slots (`i <= mask`).
    #[inline(always)]
    fn line(&self, i: usize) -> &Line<T> {
        debug_assert!(i <= self.mask);
        // SAFETY: as in `ctrl`.
        unsafe { self.lines.get_unchecked(i) }
    }

    /// The home bucket of `hash`, with requests to load both its halves started (a
    /// hint; see [`prefetch`]).
    #[inline]
    pub(crate) fn prefetch_home(&self, hash: u64) -> Home<'_, T> {
        let i = hash as usize & self.mask;
        let home = Home {
            ctrl: &self.ctrl[i],
            line: &self.lines[i],
        };
        prefetch(home.ctrl);
        prefetch(home.line);
        home
    }

    /// Where the item with hash `hash` for which `eq` holds is: (bucket, slot).
    #[inline(always)]
    fn position(&self, hash: u64, mut eq: impl FnMut(&T) -> bool) -> Option<(usize, usize)> {
        let wanted = u64::from(tag(hash)) * LO;
        let mask = self.mask;
        let mut i = hash as usize & mask;
        // The home bucket's slots, requested before its tags are read: for a hit the two
        // loads overlap (the tags are usually cached, the line usually not); for an
        // absent key nobody waits for the line.
        prefetch(self.line(i));
        // Visit each bucket at most once: overflow counts can be non-zero all the way
        // round (two items displaced past each other's home buckets, everything else
        // removed), and a lookup of an absent key would then never stop.
        for _ in 0..=mask {
            let mut matches = candidate_tags(self.ctrl(i).word() ^ wanted);
            while matches != 0 {
                let slot = first_slot(matches);
                if self.line(i).slots[slot].as_ref().is_some_and(&mut eq) {
                    return Some((i, slot));
                }
                matches &= matches - 1;
            }
            if self.overflow(i) == 0 {
                return None;
            }
            i = (i + 1) & mask;
        }
        None
    }

    /// Inserts an item the table does not hold (the caller checked), growing the table
    /// (rehashing every item through `hasher`) if it is at capacity.
    pub(crate) fn insert_unique(&mut self, hash: u64, item: T, hasher: impl Fn(&T) -> u64) {
        if self.len == self.capacity() {
            self.grow(hasher);
        }
        self.place(hash, item);
        self.len += 1;
    }

    /// Puts `item` into the first free slot on its probe path. The table has a free slot
    /// (`len < capacity <= SLOTS × buckets`).
    fn place(&mut self, hash: u64, item: T) {
        let mut i = hash as usize & self.mask;
        loop {
            let ctrl = &mut self.ctrl[i];
            let free = zero_tags(ctrl.word());
            if free != 0 {
                let slot = first_slot(free);
                ctrl.tags[slot] = tag(hash);
                self.lines[i].slots[slot] = Some(item);
                return;
            }
            self.overflow[i] = self.overflow[i].saturating_add(1);
            i = (i + 1) & self.mask;
        }
    }

    fn grow(&mut self, hasher: impl Fn(&T) -> u64) {
        self.rehash(self.capacity() * 2, hasher);
    }

    /// Makes room for `additional` more items without further growth (one rehash at
    /// most, instead of one per doubling).
    pub(crate) fn reserve(&mut self, additional: usize, hasher: impl Fn(&T) -> u64) {
        let needed = self.len.saturating_add(additional);
        if needed > self.capacity() {
            self.rehash(needed, hasher);
        }
    }

    /// Moves every item into a table for `capacity` items.
    fn rehash(&mut self, capacity: usize, hasher: impl Fn(&T) -> u64) {
        let mut bigger = Self::with_capacity(capacity);
        let mut batch = Vec::with_capacity(BATCH);
        for &item in self.iter() {
            batch.push((hasher(&item), item));
            if batch.len() == BATCH {
                bigger.place_batch(&batch);
                batch.clear();
            }
        }
        bigger.place_batch(&batch);
        bigger.len = self.len;
        *self = bigger;
    }

    /// Inserts items the table does not hold, with their hashes, growing it first if
    /// needed: like [`insert_unique`](Self::insert_unique) on each, but the home
    /// buckets of all of them are requested from memory before the first is placed, so
    /// a batch of inserts into a large table waits for memory about once, not once per
    /// item.
    pub(crate) fn insert_unique_batch(&mut self, items: &[(u64, T)], hasher: impl Fn(&T) -> u64) {
        self.reserve(items.len(), hasher);
        self.place_batch(items);
        self.len += items.len();
    }

    /// Places items (there is room for all of them) after prefetching their home buckets.
    fn place_batch(&mut self, items: &[(u64, T)]) {
        for &(hash, _) in items {
            self.prefetch_home(hash);
        }
        for &(hash, item) in items {
            self.place(hash, item);
        }
    }

    /// Removes and returns the item with hash `hash` for which `eq` holds.
    pub(crate) fn remove(&mut self, hash: u64, eq: impl FnMut(&T) -> bool) -> Option<T> {
        let (at, slot) = self.position(hash, eq)?;
        let mut i = hash as usize & self.mask;
        while i != at {
            let overflow = &mut self.overflow[i];
            // A saturated count no longer knows how many items passed: it stays. A zero
            // one can only mean the caller's hash is not the one the item was placed
            // with (a `Borrow` form hashing unlike the key, which breaks the map's
            // contract): leave it rather than underflow under the lock.
            if *overflow != u8::MAX {
                *overflow = overflow.saturating_sub(1);
            }
            i = (i + 1) & self.mask;
        }
        self.ctrl[at].tags[slot] = 0;
        self.len -= 1;
        self.lines[at].slots[slot].take()
    }

    /// Every item, in slot order.
    pub(crate) fn iter(&self) -> Iter<'_, T> {
        Iter {
            lines: self.lines.iter(),
            slots: [].iter(),
        }
    }

    /// Number of slots: the range of [`get_slot`](Self::get_slot)'s index. Stable while
    /// the table is not mutated (the read table never is).
    pub(crate) fn num_slots(&self) -> usize {
        self.buckets() * SLOTS
    }

    /// The item in slot `index` (`< num_slots()`), if that slot is full.
    pub(crate) fn get_slot(&self, index: usize) -> Option<&T> {
        self.lines[index / SLOTS].slots[index % SLOTS].as_ref()
    }
}

impl<T> fmt::Debug for Table<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("len", &self.len)
            .field("buckets", &(self.mask + 1))
            .finish()
    }
}

/// Iterator over a [`Table`]'s items.
pub(crate) struct Iter<'a, T> {
    lines: std::slice::Iter<'a, Line<T>>,
    slots: std::slice::Iter<'a, Option<T>>,
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = &'a T;

    fn next(&mut self) -> Option<&'a T> {
        loop {
            if let Some(item) = self.slots.by_ref().flatten().next() {
                return Some(item);
            }
            self.slots = self.lines.next()?.slots.iter();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    #[cfg_attr(miri, ignore = "safe integer code: Miri adds nothing but minutes")]
    fn zero_tags_is_exact() {
        // Every byte value in every tag position, next to bytes that cause borrows in the
        // shorter trick.
        for b in 0..=255u64 {
            for pos in 0..8 {
                for filler in [0x00, 0x01, 0x80, 0xff] {
                    let mut word = filler * LO;
                    word &= !(0xff << (pos * 8));
                    word |= b << (pos * 8);
                    let got = zero_tags(word);
                    let want = (0..SLOTS)
                        .filter(|&p| (word >> (p * 8)) & 0xff == 0)
                        .fold(0, |m, p| m | 0x80 << (p * 8));
                    assert_eq!(got, want, "word {word:#018x}");
                }
            }
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "safe integer code: Miri adds nothing but minutes")]
    fn candidate_tags_never_miss_a_zero_tag() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Bytes drawn from {0, 1, 0x7f, 0x80, 0xff, random}, to provoke borrows.
            let word = (0..8).fold(0u64, |w, p| {
                let b = match (x >> (p * 5)) & 7 {
                    0 | 1 => 0,
                    2 => 1,
                    3 => 0x7f,
                    4 => 0x80,
                    5 => 0xff,
                    _ => (x >> (p * 8)) & 0xff,
                };
                w | b << (p * 8)
            });
            let exact = zero_tags(word);
            assert_eq!(candidate_tags(word) & exact, exact, "word {word:#018x}");
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u16),
        /// Through `insert_unique_batch` (duplicates and present keys skipped).
        InsertMany(Vec<u16>),
        Reserve(u8),
        Remove(u16),
        Find(u16),
    }

    /// Tables hold items whose `None` is zero: the item of key `k` is `k + 1`.
    fn item(k: u16) -> NonZeroU32 {
        NonZeroU32::MIN.saturating_add(u32::from(k))
    }

    fn key(item: NonZeroU32) -> u16 {
        (item.get() - 1) as u16
    }

    /// Item `k` of the integer tests (`k < u32::MAX`).
    fn nz(k: u32) -> NonZeroU32 {
        NonZeroU32::MIN.saturating_add(k)
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => any::<u16>().prop_map(Op::Insert),
            1 => prop::collection::vec(any::<u16>(), 0..40).prop_map(Op::InsertMany),
            1 => any::<u8>().prop_map(Op::Reserve),
            2 => any::<u16>().prop_map(Op::Remove),
            2 => any::<u16>().prop_map(Op::Find),
        ]
    }

    proptest! {
        /// Against `HashMap` with hashes that collide a lot (few distinct home buckets
        /// and tags), so probing, overflow counts and their saturation are exercised.
        #[test]
        #[cfg_attr(miri, ignore = "safe code, and minutes per case under Miri; the map's own tests run the table under Miri")]
        fn behaves_like_a_map(
            ops in prop::collection::vec(op(), 1..600),
            bits in 0u32..6,
            capacity in 0usize..40,
        ) {
            // The item is the key; its hash keeps `bits` low bits and a tag from the key.
            let hash = move |k: u16| -> u64 {
                (u64::from(k) & ((1 << bits) - 1)) | (u64::from(k % 3) << 57)
            };
            let mut table: Table<NonZeroU32> = Table::with_capacity(capacity);
            let mut model = HashMap::new();
            for op in ops {
                match op {
                    Op::Insert(k) => {
                        if model.insert(k, ()).is_none() {
                            table.insert_unique(hash(k), item(k), |&x| hash(key(x)));
                        }
                    }
                    Op::InsertMany(keys) => {
                        let new: Vec<_> = keys
                            .into_iter()
                            .filter(|&k| model.insert(k, ()).is_none())
                            .map(|k| (hash(k), item(k)))
                            .collect();
                        table.insert_unique_batch(&new, |&x| hash(key(x)));
                    }
                    Op::Reserve(n) => {
                        let n = usize::from(n);
                        table.reserve(n, |&x| hash(key(x)));
                        prop_assert!(table.capacity() >= table.len() + n);
                    }
                    Op::Remove(k) => {
                        let got = table.remove(hash(k), |&x| key(x) == k);
                        prop_assert_eq!(got, model.remove(&k).map(|()| item(k)));
                    }
                    Op::Find(k) => {
                        let got = table.find(hash(k), |&x| key(x) == k).copied();
                        prop_assert_eq!(got, model.contains_key(&k).then(|| item(k)));
                    }
                }
                prop_assert_eq!(table.len(), model.len());
            }
            let mut all: Vec<u16> = table.iter().map(|&x| key(x)).collect();
            all.sort_unstable();
            let mut want: Vec<u16> = model.keys().copied().collect();
            want.sort_unstable();
            prop_assert_eq!(&all, &want);
            let by_slot = (0..table.num_slots()).filter_map(|i| table.get_slot(i)).count();
            prop_assert_eq!(by_slot, want.len());
            for k in want {
                prop_assert_eq!(table.find(hash(k), |&x| key(x) == k), Some(&item(k)));
            }
        }
    }

    #[test]
    fn spread_mixes_structured_hashes_into_index_and_tag_bits() {
        // Hashers whose output varies only in some bits (identity-like hashes of
        // pointer-sized keys, or of keys in the high half): without mixing, the low bits
        // (bucket index) or the top seven (tag) would take a single value.
        for shape in [|k: u64| k << 12, |k: u64| k << 40, |k: u64| k] {
            let (mut buckets, mut tags) = ([0u32; 1024], [0u32; 128]);
            for k in 0..4096 {
                let h = spread(shape(k));
                buckets[(h & 1023) as usize] += 1;
                tags[(h >> 57) as usize] += 1;
            }
            // Uniform hashing leaves 1024 · e⁻⁴ ≈ 19 of 1024 buckets empty and, with 32
            // per tag value, essentially no tag value unused.
            let empty = buckets.iter().filter(|&&n| n == 0).count();
            assert!(empty < 40, "{empty} empty buckets");
            assert!(tags.iter().all(|&n| n > 0), "unused tag values");
        }
    }

    #[test]
    fn overflow_counts_all_the_way_round_end_a_lookup() {
        // Two buckets. Item 100 (home 0) is displaced into bucket 1 while bucket 0 is
        // full; bucket 0 is emptied; item 200 (home 1) is displaced into bucket 0 while
        // bucket 1 is full; bucket 1's other items are removed. Both overflow counts are
        // now 1, so probing alone would go round forever for an absent key.
        let hash = |k: u32| u64::from(k >= 150 || (20..30).contains(&k)) | u64::from(k % 5) << 57;
        let mut table: Table<NonZeroU32> = Table::with_capacity(12);
        let insert = |t: &mut Table<NonZeroU32>, k| {
            t.insert_unique(hash(k), nz(k), |&x| hash(x.get() - 1));
        };
        let full = SLOTS as u32;
        for k in 0..full {
            insert(&mut table, k);
        }
        insert(&mut table, 100);
        for k in 0..full {
            assert_eq!(table.remove(hash(k), |&x| x == nz(k)), Some(nz(k)));
        }
        for k in 20..20 + full - 1 {
            insert(&mut table, k);
        }
        insert(&mut table, 200);
        for k in 20..20 + full - 1 {
            assert_eq!(table.remove(hash(k), |&x| x == nz(k)), Some(nz(k)));
        }
        assert_eq!(table.buckets(), 2, "no growth on the way");
        assert!(table.overflow.iter().all(|&c| c == 1));
        for absent in [1, 21, 160] {
            assert_eq!(table.find(hash(absent), |&x| x == nz(absent)), None);
            assert_eq!(table.remove(hash(absent), |&x| x == nz(absent)), None);
        }
        assert_eq!(table.find(hash(100), |&x| x == nz(100)), Some(&nz(100)));
        assert_eq!(table.find(hash(200), |&x| x == nz(200)), Some(&nz(200)));
    }

    #[test]
    #[cfg_attr(miri, ignore = "safe integer code: Miri adds nothing but minutes")]
    fn saturated_overflow_counts_stay_correct() {
        // 300 items with one home bucket: its overflow count saturates at 255; removing
        // them all must still leave every remaining item findable at each step.
        let hash = |k: u32| u64::from(k % 2) << 57;
        let mut table: Table<NonZeroU32> = Table::new();
        for k in 0..300 {
            table.insert_unique(hash(k), nz(k), |&x| hash(x.get() - 1));
        }
        for k in 0..300 {
            assert_eq!(table.remove(hash(k), |&x| x == nz(k)), Some(nz(k)));
            for j in (k + 1..300).step_by(37) {
                assert_eq!(table.find(hash(j), |&x| x == nz(j)), Some(&nz(j)));
            }
        }
        assert_eq!(table.len(), 0);
        assert_eq!(table.iter().count(), 0);
    }
}
