//! The entry: one key and an atomic slot holding its current value.
//!
//! An entry is shared by the read table and the dirty table (both store pointers to
//! it), so a value written through one table is seen through the other without
//! copying. The slot `value` is in exactly one of three states:
//!
//! | state      | `value` holds                  | meaning                                         |
//! |------------|--------------------------------|-------------------------------------------------|
//! | *present*  | a pointer from `Box::into_raw` | the key maps to `*value`                        |
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
//! last value has already been retired by whoever detached it; dropping an entry never
//! drops a value.
//!
//! # Inline first value
//!
//! An entry is allocated together with its first value (`inline`), so a lookup of a key
//! whose value was never replaced touches one allocation, not two, and a `u64 → u64`
//! entry costs one heap block. Values stored later are boxed. The allocation therefore
//! has two owners, counted in `owners`: the entry itself (released when the retired
//! entry is reclaimed) and the inline value (released when that value, retired after
//! leaving the slot, is dropped in place). Whichever is reclaimed last frees the block.

use std::cell::UnsafeCell;
use std::mem::{offset_of, MaybeUninit};
use std::ptr::{self, NonNull};
use std::sync::atomic::AtomicUsize;
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
/// `repr(C)`: the reclaimer of the inline value finds the entry from the value's address,
/// and the fields a lookup reads (key, slot, inline value) come first and together, so
/// they share a cache line more often: with 16-byte-aligned blocks, a `u64 → u64` lookup
/// reads bytes 0..24 of the block, which cross a line boundary for one block in four
/// (bytes 8..40 with the hash first: one in two).
#[repr(C)]
pub(crate) struct Entry<K, V> {
    /// The key. Immutable for the entry's lifetime.
    pub(crate) key: K,
    /// The value slot: present / deleted / expunged.
    value: AtomicPtr<V>,
    /// The first value. Initialised at allocation; dropped in place (once) by
    /// [`reclaim_inline`] or by the map's `Drop`, never by the entry's own drop.
    inline: UnsafeCell<MaybeUninit<V>>,
    /// The key's hash under the map's hasher, so tables can be rebuilt and resized
    /// without calling user `Hash` code (and without any chance of it panicking).
    pub(crate) hash: u64,
    /// Owners of the allocation (see "Inline first value"): starts at 2. A std atomic even
    /// under loom and shuttle: it is only touched by reclaimers, which they do not model.
    owners: AtomicUsize,
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
            hash,
            key,
            value: AtomicPtr::new(ptr::null_mut()),
            owners: AtomicUsize::new(2),
            inline: UnsafeCell::new(MaybeUninit::new(value)),
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

    /// Whether `p` is this entry's inline value (address comparison only).
    #[inline]
    pub(crate) fn is_inline(&self, p: *mut V) -> bool {
        ptr::eq(p.cast_const(), self.inline.get().cast::<V>().cast_const())
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
            if unsafe { &*raw }.is_inline(value) {
                // SAFETY: the inline value is in the slot, so it was never retired: we
                // drop it (once) and release its ownership.
                unsafe { reclaim_inline::<K, V>(value) };
            } else {
                // SAFETY: a boxed slot value came from `Box::into_raw`; it is owned by
                // the slot and freed once, here.
                drop(unsafe { Box::from_raw(value) });
            }
        }
        // SAFETY: the entry's own ownership, released once.
        unsafe { release(raw) };
    }

    /// Takes apart an entry that was never published, giving back its key and first value
    /// (a lock-free insert that found the key already added by another thread).
    ///
    /// # Safety
    /// `e` came from [`Entry::alloc`], no other thread has seen it, and its slot still
    /// holds the inline value.
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

/// Releases one ownership of an entry's block; the last owner frees it.
///
/// # Safety
/// `e` is a live entry from [`Entry::alloc`] and the caller owns one ownership.
unsafe fn release<K, V>(e: *mut Entry<K, V>) {
    // AcqRel: Release publishes this owner's accesses to the block; the last owner's
    // Acquire sees the other owner's, so the free happens after both.
    // SAFETY: live (caller).
    if unsafe { &(*e).owners }.fetch_sub(1, AcqRel) == 1 {
        // SAFETY: both owners are done; the block came from `Box::into_raw`. Dropping the
        // entry drops the key; `inline` is `MaybeUninit` and is not touched.
        drop(unsafe { Box::from_raw(e) });
    }
}

/// Drops an inline value in place and releases its ownership of the entry's block.
///
/// # Safety
/// `p` is the inline value pointer of a live entry (as stored in its slot, so it
/// carries the allocation's provenance), no thread can access the value any more, and
/// this is called once per entry.
unsafe fn reclaim_inline<K, V>(p: *mut V) {
    // SAFETY: initialised at allocation, dropped only here (caller).
    unsafe { ptr::drop_in_place(p) };
    // SAFETY: `p` points `offset_of!(inline)` bytes into the entry's block (`repr(C)`),
    // with the block's provenance.
    let e = unsafe { p.byte_sub(offset_of!(Entry<K, V>, inline)) }.cast::<Entry<K, V>>();
    // SAFETY: the inline value's ownership, released once.
    unsafe { release(e) };
}

/// Reclaimer for a retired inline value (see [`reclaim_inline`]).
///
/// # Safety
/// As [`reclaim_inline`]; seize calls it once, after no guard can see the value.
pub(crate) unsafe fn reclaim_inline_value<K, V>(p: *mut V, _: &Collector) {
    // SAFETY: forwarded.
    unsafe { reclaim_inline::<K, V>(p) };
}

/// Reclaimer for a retired entry: releases the entry's own ownership.
///
/// # Safety
/// `e` is a detached entry retired once; seize calls this once, after no guard can see it.
pub(crate) unsafe fn reclaim_entry<K, V>(e: *mut Entry<K, V>, _: &Collector) {
    // SAFETY: forwarded.
    unsafe { release(e) };
}
