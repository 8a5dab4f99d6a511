//! The entry: one key and an atomic slot holding its current value.
//!
//! An entry is shared by the read table and the dirty table (both store pointers to
//! it), so a value written through one table is seen through the other without
//! copying. The slot `value` is in exactly one of three states:
//!
//! | state      | `value` holds                  | meaning                                         |
//! |------------|--------------------------------|-------------------------------------------------|
//! | *present*  | a value pointer: one of the entry's in-block slots, or a box | the key maps to `*value` |
//! | *deleted*  | null                           | the key is absent; the entry is still in the dirty table whenever a dirty table exists |
//! | *expunged* | [`expunged()`]                 | the key is absent and the entry is **not** in the dirty table |
//!
//! Legal transitions and the lock each one needs (`mu` is the dirty-table mutex):
//!
//! | transition              | who                                                        | lock |
//! |-------------------------|------------------------------------------------------------|------|
//! | present → present       | `insert`, `compare_exchange` (replace the value)           | none |
//! | present → deleted       | `remove`, `remove_if`, `retain`                            | none |
//! | deleted → present       | `insert`, `get_or_insert` (reuse the entry)                | none |
//! | deleted → expunged      | dirty-table rebuild ([`Entry::try_expunge_locked`])        | `mu` |
//! | expunged → deleted      | a store of the key after a rebuild ([`Entry::unexpunge_locked`]), which also puts the entry back into the dirty table | `mu` |
//! | any → expunged          | detaching an entry from every table (`remove` of a dirty-only key, `clear`) | `mu` |
//!
//! Because the lock-free transitions never leave or enter *expunged*, a thread holding
//! `mu` that sees an entry expunged knows it will stay expunged until it itself changes
//! it. A lock-free store that finds *expunged* falls back to the locked path.
//!
//! An entry that is no longer reachable from any table is always *expunged*, so its
//! last value has already been retired by whoever detached it; reclaiming a retired
//! entry never drops a value. (The map's own teardown, and the clean-up of an entry
//! that was never published, drop the entry's live value with it.)
//!
//! # Values stored in the entry's block
//!
//! An entry is allocated together with its first value (`inline`), so a lookup of a key
//! whose value was never replaced touches one allocation, not two, and a `u64 → u64`
//! entry costs one heap block. A second slot, `spare`, one word wide, serves values that
//! fit a word (`u64`, `Arc<T>` or `Box<T>` of a sized `T`, references): an overwrite
//! writes the new value into whichever of the two slots is free and swaps the slot
//! pointer to it, so overwrites
//! of such values allocate nothing and lookups still touch one block. A value that does
//! not fit, or finds both slots busy (the other slot's value retired but not yet
//! reclaimed: a key rewritten within about one retire batch of the writing thread, or
//! twice under one guard), is boxed.
//!
//! The block therefore has up to three owners, one bit each in `state`: the entry itself
//! (released when the retired entry is reclaimed) and each slot that holds a value
//! (present in the value slot, claimed by a writer about to publish it, or retired and
//! waiting for its reclaimer, which drops it in place). A writer claims a free slot by
//! setting its bit; whoever clears the last bit frees the block.

use std::cell::UnsafeCell;
use std::mem::{offset_of, MaybeUninit};
use std::ptr::{self, NonNull};
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};

use super::reclaim::{Collector, Guard};
use crate::sync::AtomicPtr;

/// The sentinel address marking an expunged slot. It is never dereferenced, only
/// compared; no heap allocation (including a dangling `Box` of a zero-sized type, whose
/// address is its alignment) can have the address of this static.
static EXPUNGED_MARK: u8 = 0;

/// The *expunged* marker for a slot of type `V`.
#[inline]
pub(crate) fn expunged<V>() -> *mut V {
    std::ptr::addr_of!(EXPUNGED_MARK).cast::<V>().cast_mut()
}

/// A key and its value slot. See the module docs for the state machine.
///
/// `repr(C)`: the reclaimers of the in-block values find the entry from a value's
/// address, and the fields a lookup reads (key, slot, inline value) come first and
/// together, so they share a cache line more often: with 16-byte-aligned blocks, a
/// `u64 → u64` lookup reads bytes 0..24 of the block, which cross a line boundary for one
/// block in four. A `u64 → u64` entry is 40 bytes, as it was with one inline slot and a
/// full 64-bit hash.
#[repr(C)]
pub(crate) struct Entry<K, V> {
    /// The key. Immutable for the entry's lifetime.
    pub(crate) key: K,
    /// The value slot: present / deleted / expunged.
    value: AtomicPtr<V>,
    /// The first value, and later every other value stored in the block when `V` does
    /// not fit [`spare`](Self::spare). Busy while [`INLINE`] is set in `state`.
    inline: UnsafeCell<MaybeUninit<V>>,
    /// A word-sized second slot for values that fit it ([`fits_spare`]). Busy while
    /// [`SPARE`] is set in `state`.
    spare: UnsafeCell<MaybeUninit<usize>>,
    /// The low 32 bits of the key's hash under the map's hasher (see [`Entry::hash`]),
    /// so tables can be rebuilt and resized without calling user `Hash` code.
    hash_lo: u32,
    /// Owner bits ([`ENTRY`], [`INLINE`], [`SPARE`]) and, in the top 7 bits, bits 57..64
    /// of the hash (immutable). A std atomic even under loom and shuttle, whose stand-in
    /// collector never reclaims before it is dropped: under the models a slot is claimed
    /// at most once and never reused, so the models check the value slot's protocol
    /// (which the in-block slots do not change) and not slot reuse. Slot reuse is checked
    /// by Miri (unit tests with `retire_batch(1)` under many seeds), the stress test under
    /// ThreadSanitizer and AddressSanitizer, and the counting-allocator tests.
    state: AtomicU32,
}

/// Owner bit of the entry itself.
const ENTRY: u32 = 1;
/// Owner bit of the inline slot.
const INLINE: u32 = 1 << 1;
/// Owner bit of the spare slot.
const SPARE: u32 = 1 << 2;
/// All owner bits.
const OWNERS: u32 = ENTRY | INLINE | SPARE;
/// Not an owner: the key was moved out ([`Entry::take_exclusive`]), so whoever frees the
/// block must not drop it. Set once, never cleared.
const KEY_MOVED: u32 = 1 << 3;
/// Where the hash's top 7 bits sit in `state`.
const HASH_HI_SHIFT: u32 = 25;

/// Whether values of type `V` can live in the word-sized spare slot. Zero-sized values
/// are boxed (a dangling pointer, no allocation) instead: a zero-sized inline value could
/// share the spare slot's address, and slots are told apart by address.
const fn fits_spare<V>() -> bool {
    std::mem::size_of::<V>() != 0
        && std::mem::size_of::<V>() <= std::mem::size_of::<usize>()
        && std::mem::align_of::<V>() <= std::mem::align_of::<usize>()
}

/// A hash as entries keep it: the low 32 bits and the top 7 (the bits tables use: the
/// home bucket is `hash & mask`, with fewer than 2^32 buckets, and the tag is bits
/// 57..64). Lookups in the recent table, which compare hashes, compare squashed ones.
#[inline]
pub(crate) fn squash(hash: u64) -> u64 {
    hash & (0xfe00_0000_0000_0000 | 0xffff_ffff)
}

/// What a [`Entry::try_load_or_store`] attempt did.
pub(crate) enum LoadOrStore<V> {
    /// The key was present: here is its value (the new value was not used).
    Loaded(*mut V),
    /// The slot was deleted and now holds the new value.
    Stored(*mut V),
    /// The slot is expunged; the caller must take the locked path.
    Expunged,
}

impl<K, V> Entry<K, V> {
    /// Allocates an entry in the *present* state holding `value` inline. Returns the
    /// entry and the slot's value pointer.
    pub(crate) fn alloc(hash: u64, key: K, value: V) -> (NonNull<Self>, *mut V) {
        let raw = Box::into_raw(Box::new(Entry {
            key,
            value: AtomicPtr::new(ptr::null_mut()),
            inline: UnsafeCell::new(MaybeUninit::new(value)),
            spare: UnsafeCell::new(MaybeUninit::uninit()),
            hash_lo: hash as u32,
            state: AtomicU32::new(((hash >> 57) as u32) << HASH_HI_SHIFT | ENTRY | INLINE),
        }));
        // SAFETY: `raw` is a fresh, valid allocation; `addr_of_mut!` creates no
        // reference, so the pointer keeps the whole allocation's provenance (the
        // reclaimer steps back from it to the entry).
        let inline = unsafe { ptr::addr_of_mut!((*raw).inline) }.cast::<V>();
        // SAFETY: as above; nobody else can see the entry yet.
        let entry = unsafe { &*raw };
        // Relaxed: the entry is unpublished; publication (table insert under `mu`, then
        // the Release store of a read table) orders this store for every reader.
        entry.value.store(inline, Relaxed);
        // SAFETY: `Box::into_raw` never returns null.
        (unsafe { NonNull::new_unchecked(raw) }, inline)
    }

    /// The key's hash as [`squash`] keeps it: what tables need to place the entry.
    #[inline]
    pub(crate) fn hash(&self) -> u64 {
        // Relaxed: the hash bits never change.
        let hi = u64::from(self.state.load(Relaxed) >> HASH_HI_SHIFT);
        hi << 57 | u64::from(self.hash_lo)
    }

    /// The owner bit of the in-block slot at `p`, or `None` if `p` is not one of this
    /// entry's slots (a boxed value; address comparison only).
    #[inline]
    fn slot_bit(&self, p: *mut V) -> Option<u32> {
        if ptr::eq(p.cast_const(), self.inline.get().cast::<V>().cast_const()) {
            Some(INLINE)
        } else if fits_spare::<V>() && ptr::eq(p.cast_const(), self.spare.get().cast::<V>()) {
            Some(SPARE)
        } else {
            None
        }
    }

    /// Claims a free in-block slot for a value about to be stored, returning its address
    /// (writable by the caller alone until it publishes it with a CAS on the value slot or
    /// gives it back with [`Entry::unclaim`]), or `None` if both slots are busy.
    ///
    /// # Safety
    /// `this` points to a live entry (the caller found it through a table while holding
    /// the guard it still holds), with the block's provenance (a table's pointer, not one
    /// derived from a reference), since the returned address is later stepped back from
    /// to the entry and may end up freeing the block.
    #[inline]
    pub(crate) unsafe fn claim(this: NonNull<Self>) -> Option<*mut V> {
        let raw = this.as_ptr();
        // SAFETY: live (caller).
        let state = unsafe { &(*raw).state };
        // Relaxed: only picks which bit to try; the claim itself is the RMW below.
        let free = !state.load(Relaxed);
        let bit = if free & INLINE != 0 {
            INLINE
        } else if fits_spare::<V>() && free & SPARE != 0 {
            SPARE
        } else {
            return None;
        };
        // Acquire: pairs with the Release of the reclaimer that cleared the bit after
        // dropping the slot's previous value, so that drop happens before our write.
        if state.fetch_or(bit, Acquire) & bit != 0 {
            return None; // claimed by another writer meanwhile
        }
        // SAFETY: live (caller); `addr_of_mut!` keeps the block's provenance.
        Some(unsafe {
            if bit == INLINE {
                ptr::addr_of_mut!((*raw).inline).cast::<V>()
            } else {
                ptr::addr_of_mut!((*raw).spare).cast::<V>()
            }
        })
    }

    /// Gives back a slot from [`Entry::claim`] whose value the caller has moved out or
    /// dropped without publishing it.
    ///
    /// # Safety
    /// `p` came from `claim` on this entry (whose block is live: the caller still holds
    /// the guard it found the entry through), was not published, and holds no value any
    /// more; called once per claim.
    pub(crate) unsafe fn unclaim(&self, p: *mut V) {
        let bit = self.slot_bit(p).expect("a claimed slot of this entry");
        // SAFETY: forwarded.
        unsafe { release_at::<K, V>(p, bit) };
    }

    /// The reclaimer for `p`, a value that just left this entry's value slot: an in-block
    /// value is dropped in place and its slot released, a boxed one freed.
    #[inline]
    pub(crate) fn reclaimer(&self, p: *mut V) -> unsafe fn(*mut V, &Collector) {
        match self.slot_bit(p) {
            Some(INLINE) => reclaim_inline_value::<K, V>,
            Some(_) => reclaim_spare_value::<K, V>,
            None => super::reclaim::boxed::<V>,
        }
    }

    /// Loads the slot. Returns null, [`expunged()`], or a value pointer that stays valid
    /// for as long as `guard` is held.
    #[inline]
    pub(crate) fn load_raw(&self, guard: &impl Guard) -> *mut V {
        // Acquire: pairs with the Release half of the CAS/swap that stored the pointer,
        // so the boxed value's contents are visible before we hand out a reference.
        guard.protect(&self.value, Acquire)
    }

    /// The current value, if the slot is *present*.
    #[inline]
    pub(crate) fn load(&self, guard: &impl Guard) -> Option<*mut V> {
        let p = self.load_raw(guard);
        is_value(p).then_some(p)
    }

    /// Whether the slot is *expunged*. Only meaningful under `mu` (see module docs).
    pub(crate) fn is_expunged(&self, guard: &impl Guard) -> bool {
        self.load_raw(guard) == expunged()
    }

    /// Compare-and-swap on the slot.
    ///
    /// AcqRel on success: Release publishes `new`'s contents to readers; Acquire makes
    /// the old value's contents visible to us (we may hand it out as the previous value).
    /// Acquire on failure: we may dereference the value we found.
    #[inline]
    pub(crate) fn cas(
        &self,
        current: *mut V,
        new: *mut V,
        guard: &impl Guard,
    ) -> Result<*mut V, *mut V> {
        guard.compare_exchange(&self.value, current, new, AcqRel, Acquire)
    }

    /// Replaces the slot unconditionally. AcqRel for the same reasons as [`Entry::cas`].
    #[inline]
    pub(crate) fn swap(&self, new: *mut V, guard: &impl Guard) -> *mut V {
        guard.swap(&self.value, new, AcqRel)
    }

    /// Stores `new` unless the slot is expunged (present → present, deleted → present).
    /// Returns the previous pointer (null or a value), or `Err(())` if expunged, in which
    /// case `new` was not stored.
    #[inline]
    pub(crate) fn try_swap(&self, new: *mut V, guard: &impl Guard) -> Result<*mut V, ()> {
        let mut p = self.load_raw(guard);
        loop {
            if p == expunged() {
                return Err(());
            }
            match self.cas(p, new, guard) {
                Ok(prev) => return Ok(prev),
                Err(actual) => p = actual,
            }
        }
    }

    /// Returns the present value, or stores `new()`'s pointer into a deleted slot.
    /// `new` is called at most once, and only when a store is attempted; if the slot
    /// turns out to be present or expunged after `new` ran, the pointer is left with the
    /// caller (check the result).
    #[inline]
    pub(crate) fn try_load_or_store(
        &self,
        new: &mut dyn FnMut() -> *mut V,
        guard: &impl Guard,
    ) -> LoadOrStore<V> {
        let mut p = self.load_raw(guard);
        loop {
            if p == expunged() {
                return LoadOrStore::Expunged;
            }
            if !p.is_null() {
                return LoadOrStore::Loaded(p);
            }
            let fresh = new();
            match self.cas(std::ptr::null_mut(), fresh, guard) {
                Ok(_) => return LoadOrStore::Stored(fresh),
                Err(actual) => p = actual,
            }
        }
    }

    /// present → deleted. Returns the removed value, if there was one.
    #[inline]
    pub(crate) fn delete(&self, guard: &impl Guard) -> Option<*mut V> {
        let mut p = self.load_raw(guard);
        loop {
            if !is_value(p) {
                return None;
            }
            match self.cas(p, std::ptr::null_mut(), guard) {
                Ok(prev) => return Some(prev),
                Err(actual) => p = actual,
            }
        }
    }

    /// deleted → expunged, during a dirty-table rebuild. Returns whether it expunged the
    /// entry, which must then be left out of the new dirty table.
    ///
    /// Requires `mu`. A rebuild only walks a read table without expunged entries (raw
    /// invariant 3), so the slot is never expunged already.
    pub(crate) fn try_expunge_locked(&self, guard: &impl Guard) -> bool {
        let mut p = self.load_raw(guard);
        while p.is_null() {
            match self.cas(p, expunged(), guard) {
                Ok(_) => return true,
                Err(actual) => p = actual,
            }
        }
        debug_assert!(p != expunged(), "rebuild found an expunged entry");
        false
    }

    /// expunged → deleted. Returns whether the entry was expunged, in which case the
    /// caller must put it back into the dirty table before releasing `mu`.
    ///
    /// Requires `mu`.
    pub(crate) fn unexpunge_locked(&self, guard: &impl Guard) -> bool {
        self.cas(expunged(), std::ptr::null_mut(), guard).is_ok()
    }

    /// any → expunged: the entry is being detached from every table. Returns the value
    /// it held, if any, which the caller must retire.
    ///
    /// Requires `mu`.
    pub(crate) fn detach_locked(&self, guard: &impl Guard) -> Option<*mut V> {
        let p = self.swap(expunged(), guard);
        is_value(p).then_some(p)
    }

    /// Drops the value a slot holds at the map's `Drop` and releases the entry's own
    /// ownership: the last owner frees the block.
    ///
    /// # Safety
    /// `e` is live and no other thread can access it; called once per entry.
    pub(crate) unsafe fn free_exclusive(e: NonNull<Self>) {
        let raw = e.as_ptr();
        // SAFETY: exclusive access (caller).
        let value = unsafe { (*raw).value_mut() };
        if is_value(value) {
            // SAFETY: exclusive access (caller).
            if let Some(bit) = unsafe { &*raw }.slot_bit(value) {
                // SAFETY: an in-block value in the slot was never retired: we drop it
                // (once) and release its slot.
                unsafe { reclaim_at::<K, V>(value, bit) };
            } else {
                // SAFETY: a boxed slot value came from `Box::into_raw`; it is owned by
                // the slot and freed once, here.
                drop(unsafe { Box::from_raw(value) });
            }
        }
        // SAFETY: the entry's own ownership, released once.
        unsafe { release(raw, ENTRY) };
    }

    /// Takes apart a live entry at the map's teardown, giving back its key and the value
    /// it holds (if any) instead of dropping them, and releases the entry's ownership
    /// and that of the value's slot. The block is freed by whoever releases it last:
    /// here, or the reclaimer of a value retired from it earlier (which then frees it
    /// without dropping the key: [`KEY_MOVED`]).
    ///
    /// # Safety
    /// `e` is live, no other thread can access it, and this is called once per entry
    /// (and not with [`free_exclusive`](Self::free_exclusive)).
    pub(crate) unsafe fn take_exclusive(e: NonNull<Self>) -> Option<(K, V)> {
        let raw = e.as_ptr();
        // SAFETY: exclusive access (caller).
        let value = unsafe { (*raw).value_mut() };
        let (value, slot) = if is_value(value) {
            // SAFETY: exclusive access (caller).
            match unsafe { &*raw }.slot_bit(value) {
                // SAFETY: an in-block value in the slot was never retired, so it is
                // initialised; it is moved out once, here, and its slot is released
                // below as empty (nobody drops a released slot's contents).
                Some(bit) => (Some(unsafe { ptr::read(value) }), bit),
                // SAFETY: a boxed slot value came from `Box::into_raw`; it is owned by the
                // slot and taken once, here.
                None => (Some(*unsafe { Box::from_raw(value) }), 0),
            }
        } else {
            (None, 0)
        };
        // SAFETY: the key is initialised and moved out once, here; `KEY_MOVED`, set
        // before our bits are released, tells the last owner not to drop it.
        let key = unsafe { ptr::read(&(*raw).key) };
        // Relaxed: the `AcqRel` release below publishes it to the last owner.
        // SAFETY: live (caller).
        unsafe { &(*raw).state }.fetch_or(KEY_MOVED, Relaxed);
        // SAFETY: the entry's own ownership and, for an in-block value, its slot's
        // (present, so owned by the slot and never retired), each released once.
        unsafe { release(raw, ENTRY | slot) };
        value.map(|v| (key, v))
    }

    /// Takes apart an entry that was never published, giving back its key and first value
    /// (a lock-free insert that found the key already added by another thread).
    ///
    /// # Safety
    /// `e` came from [`Entry::alloc`], no other thread has seen it, and its slot still
    /// holds the inline value (so the spare slot is free).
    pub(crate) unsafe fn into_parts(e: NonNull<Self>) -> (K, V) {
        // SAFETY: `e` came from `Box::into_raw` in `alloc` and is ours alone (caller).
        let entry = *unsafe { Box::from_raw(e.as_ptr()) };
        let Entry { key, inline, .. } = entry;
        // SAFETY: initialised at allocation and never dropped or moved out (caller: the
        // slot still holds it, so nobody retired it).
        (key, unsafe { inline.into_inner().assume_init() })
    }

    /// Whether the slot is expunged, with exclusive access (`Drop` of the map).
    pub(crate) fn is_expunged_mut(&mut self) -> bool {
        self.value_mut() == expunged()
    }

    /// The slot, for `Drop` of the map (exclusive access, no concurrency).
    pub(crate) fn value_mut(&mut self) -> *mut V {
        #[cfg(not(loom))]
        {
            *self.value.get_mut()
        }
        #[cfg(loom)]
        {
            self.value.with_mut(|p| *p)
        }
    }
}

/// Whether a slot pointer is a value (neither deleted nor expunged).
#[inline]
pub(crate) fn is_value<V>(p: *mut V) -> bool {
    !p.is_null() && p != expunged()
}

/// Releases the ownership `bit` of an entry's block; the last owner frees it.
///
/// # Safety
/// `e` is a live entry from [`Entry::alloc`] and the caller owns `bit`.
unsafe fn release<K, V>(e: *mut Entry<K, V>, bit: u32) {
    // AcqRel: Release publishes this owner's accesses to the block (a slot's drop, for
    // the next claimer too; the key moved out at a teardown); the last owner's Acquire
    // sees the other owners', so the free happens after all of them.
    // SAFETY: live (caller).
    let before = unsafe { &(*e).state }.fetch_and(!bit, AcqRel);
    debug_assert!(
        before & bit == bit,
        "released an owner bit that was not set"
    );
    if before & OWNERS == bit {
        if before & KEY_MOVED == 0 {
            // SAFETY: every owner is done; the block came from `Box::into_raw`. Dropping
            // the entry drops the key; the slots are `MaybeUninit` and are not touched.
            drop(unsafe { Box::from_raw(e) });
        } else {
            // SAFETY: as above, but the key was moved out: free the block as a
            // `MaybeUninit<Entry>` (same layout), dropping nothing in it.
            drop(unsafe { Box::from_raw(e.cast::<MaybeUninit<Entry<K, V>>>()) });
        }
    }
}

/// The block and owner bit of the in-block slot `p`, which is the slot named by `bit`.
///
/// # Safety
/// `p` is the address of that slot of a live entry, with the block's provenance (as
/// stored in the value slot or returned by [`Entry::claim`]).
unsafe fn slot_block<K, V>(p: *mut V, bit: u32) -> *mut Entry<K, V> {
    let offset = if bit == INLINE {
        offset_of!(Entry<K, V>, inline)
    } else {
        offset_of!(Entry<K, V>, spare)
    };
    // SAFETY: the slot lies `offset` bytes into the block (`repr(C)`); `p` carries the
    // block's provenance (caller).
    unsafe { p.byte_sub(offset) }.cast::<Entry<K, V>>()
}

/// Drops the value in slot `bit` at `p` in place and releases the slot.
///
/// # Safety
/// As [`slot_block`]; the slot holds a value no thread can access any more, and this is
/// called once per value.
unsafe fn reclaim_at<K, V>(p: *mut V, bit: u32) {
    // SAFETY: the slot holds an initialised value, dropped only here (caller).
    unsafe { ptr::drop_in_place(p) };
    // SAFETY: forwarded; the caller owned the slot's bit.
    unsafe { release(slot_block::<K, V>(p, bit), bit) };
}

/// Releases slot `bit` at `p`, which holds no value (given back unpublished).
///
/// # Safety
/// As [`slot_block`]; the caller claimed the slot and moved its value out or dropped it.
unsafe fn release_at<K, V>(p: *mut V, bit: u32) {
    // SAFETY: forwarded.
    unsafe { release(slot_block::<K, V>(p, bit), bit) };
}

/// Reclaimer for a retired inline value: drops it in place and releases the slot.
///
/// # Safety
/// `p` is the inline slot of a live entry, retired once after leaving the value slot;
/// seize calls this once, after no guard can see the value.
pub(crate) unsafe fn reclaim_inline_value<K, V>(p: *mut V, _: &Collector) {
    // SAFETY: forwarded.
    unsafe { reclaim_at::<K, V>(p, INLINE) };
}

/// Reclaimer for a retired spare-slot value (as [`reclaim_inline_value`]).
///
/// # Safety
/// As `reclaim_inline_value`, for the spare slot.
pub(crate) unsafe fn reclaim_spare_value<K, V>(p: *mut V, _: &Collector) {
    // SAFETY: forwarded.
    unsafe { reclaim_at::<K, V>(p, SPARE) };
}

/// Reclaimer for a retired entry: releases the entry's own ownership.
///
/// # Safety
/// `e` is a detached entry retired once; seize calls this once, after no guard can see it.
pub(crate) unsafe fn reclaim_entry<K, V>(e: *mut Entry<K, V>, _: &Collector) {
    // SAFETY: forwarded.
    unsafe { release(e, ENTRY) };
}

// A `u64 → u64` entry stays at five words (a 48-byte heap block with glibc's malloc).
#[cfg(all(target_pointer_width = "64", not(any(loom, shuttle))))]
const _: () = assert!(std::mem::size_of::<Entry<u64, u64>>() == 40);
