//! Fixed-length heap arrays allocated **zeroed by the allocator**, for the hash tables and
//! the recent table's slot arrays.
//!
//! Why not `vec![EMPTY; n]`: for a type the standard library cannot prove all-zero, that
//! writes every element, and even `alloc_zeroed` writes every byte when the alignment
//! exceeds what `calloc` guarantees (16 on the usual 64-bit targets; our buckets are
//! 64-aligned). A table for a million keys is 16 MiB: writing it cost milliseconds, under
//! the map's lock, in the operation that happened to start a rebuild (measured in
//! `examples/rebuild_pause.rs`: 37 ms for the 64 MiB table of 4 Mi keys). Requested from
//! the allocator with at most 16-byte alignment, a large zeroed block is fresh pages from
//! the operating system that nobody writes up front: the pages are zero-filled by the
//! kernel when first touched, spread over the operations that fill the table.
//!
//! So the array is allocated with alignment `min(align_of::<T>(), 16)` (plus, when `T`
//! needs more, `align_of::<T>() − 16` spare bytes), and starts at the first suitably
//! aligned address inside the block.

use std::alloc::{self, Layout};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// Types for which a value whose bytes are all zero is valid (and is the value the table
/// code treats as "empty").
///
/// # Safety
///
/// All-zero bytes must be a valid value of the implementing type.
pub(crate) unsafe trait Zeroable {}

// SAFETY: an integer: zero bytes are 0.
unsafe impl Zeroable for u8 {}
// SAFETY: an atomic integer has the bytes of its integer: zero bytes are 0.
unsafe impl Zeroable for std::sync::atomic::AtomicU64 {}

/// The largest alignment we ask the allocator for: what `calloc` guarantees on the
/// targets we care about, so that `alloc_zeroed` need not write the block itself.
const ALLOC_ALIGN: usize = 16;

/// A boxed slice of `len` zero-valued `T`s (see the module docs).
pub(crate) struct ZeroedSlice<T> {
    /// The first element (`align_of::<T>()`-aligned); dangling when the layout is empty.
    start: NonNull<T>,
    len: usize,
    /// The block the allocator returned, for `dealloc`; `None` when nothing was allocated.
    block: Option<(NonNull<u8>, Layout)>,
}

// SAFETY: the slice owns its elements like a `Box<[T]>`; sending or sharing it sends or
// shares `T`s.
unsafe impl<T: Send> Send for ZeroedSlice<T> {}
// SAFETY: as above; `&ZeroedSlice<T>` only hands out `&[T]`.
unsafe impl<T: Sync> Sync for ZeroedSlice<T> {}

impl<T: Zeroable> ZeroedSlice<T> {
    /// `len` zero-valued elements. Panics on capacity overflow; aborts (through
    /// `handle_alloc_error`) if the allocator fails, as `Vec` does.
    pub(crate) fn new(len: usize) -> Self {
        Self::allocate(len, true)
    }

    /// `len` elements, zeroed by the allocator if `zeroed`, else uninitialised: then the
    /// caller must zero every byte before the slice is dereferenced or dropped (see
    /// [`Zeroing`]).
    fn allocate(len: usize, zeroed: bool) -> Self {
        let align = std::mem::align_of::<T>();
        let bytes = std::mem::size_of::<T>()
            .checked_mul(len)
            .and_then(|b| b.checked_add(align.saturating_sub(ALLOC_ALIGN)))
            .expect("capacity overflow");
        if bytes == 0 {
            return ZeroedSlice {
                start: NonNull::dangling(),
                len,
                block: None,
            };
        }
        let layout =
            Layout::from_size_align(bytes, align.min(ALLOC_ALIGN)).expect("capacity overflow");
        // SAFETY: `layout` has a non-zero size.
        let block = unsafe {
            if zeroed {
                alloc::alloc_zeroed(layout)
            } else {
                alloc::alloc(layout)
            }
        };
        let Some(block) = NonNull::new(block) else {
            alloc::handle_alloc_error(layout)
        };
        // Bytes from the block's start to the first `align`-aligned address: 0 when
        // `align <= 16` (the block is 16-aligned); otherwise less than `align` and a
        // multiple of 16, so at most `align - 16`, the spare bytes requested. Address
        // arithmetic only; the pointer below is derived from `block` and keeps its
        // provenance.
        let offset = block.as_ptr().addr().wrapping_neg() & (align - 1);
        debug_assert!(offset + std::mem::size_of::<T>() * len <= bytes);
        // SAFETY: `offset` is 0 or at most the spare bytes, so `offset <= bytes`: inside
        // the block, or one past its end if the elements take no bytes; non-null.
        let start = unsafe { NonNull::new_unchecked(block.as_ptr().add(offset)) }.cast::<T>();
        ZeroedSlice {
            start,
            len,
            block: Some((block, layout)),
        }
    }
}

/// A [`ZeroedSlice`] being zeroed by its owner, a piece at a time, instead of by the
/// allocator.
///
/// `alloc_zeroed` is not always free: glibc serves blocks below its mmap threshold from
/// the heap and clears them with `memset`, and the threshold rises (up to 32 MiB) each
/// time a larger block is freed — so once a map has freed a few slot arrays, the next
/// 8 MiB one cost 2–6 ms to allocate, under the map's lock (`examples/rebuild_pause
/// --grow 4Mi`). A recent table that will need a larger slot array allocates it early,
/// uninitialised (no memset: `alloc` touches nothing), and zeroes it in bounded steps
/// taken by the operations before the growth (`Recent::step_locked`). Not used under
/// loom and shuttle, whose models grow the recent table without preparing arrays.
#[cfg_attr(any(loom, shuttle), allow(dead_code))]
pub(crate) struct Zeroing<T> {
    /// Elements from `zeroed` on are uninitialised bytes.
    slice: std::mem::ManuallyDrop<ZeroedSlice<T>>,
    zeroed: usize,
}

#[cfg_attr(any(loom, shuttle), allow(dead_code))]
impl<T: Zeroable> Zeroing<T> {
    /// `len` elements to zero, allocated uninitialised.
    pub(crate) fn new(len: usize) -> Self {
        Zeroing {
            slice: std::mem::ManuallyDrop::new(ZeroedSlice::allocate(len, false)),
            zeroed: 0,
        }
    }

    /// Elements in all.
    pub(crate) fn len(&self) -> usize {
        self.slice.len
    }

    /// Elements zeroed so far.
    pub(crate) fn zeroed(&self) -> usize {
        self.zeroed
    }

    /// Zeroes up to `n` more elements. Returns how many it zeroed.
    pub(crate) fn zero(&mut self, n: usize) -> usize {
        let n = n.min(self.slice.len - self.zeroed);
        // SAFETY: elements `zeroed..zeroed + n` are inside the block (see `allocate`), and
        // nothing else refers to them: the slice is not handed out before it is complete.
        // Writing bytes needs no valid value there.
        unsafe { self.slice.start.as_ptr().add(self.zeroed).write_bytes(0, n) };
        self.zeroed += n;
        n
    }

    /// The slice, once every element is zero (zeroing the rest now).
    pub(crate) fn finish(mut self) -> ZeroedSlice<T> {
        self.zero(usize::MAX);
        let mut this = std::mem::ManuallyDrop::new(self);
        // SAFETY: taken once; `this` is not dropped (so `Zeroing::drop` does not run).
        // Every element is zero: a valid `T` (`Zeroable`).
        unsafe { std::mem::ManuallyDrop::take(&mut this.slice) }
    }
}

impl<T> Drop for Zeroing<T> {
    fn drop(&mut self) {
        // Free the block without dropping the elements (some are not initialised; a
        // `Zeroable` element needs no drop: its zero value owns nothing, and none was
        // ever written but zeroes).
        if let Some((block, layout)) = self.slice.block {
            // SAFETY: `block` came from `alloc(layout)` and is freed once; the slice itself
            // is never dropped (`ManuallyDrop`).
            unsafe { super::reaper::dealloc(block, layout) };
        }
    }
}

// SAFETY: as for `ZeroedSlice`: owns its elements.
unsafe impl<T: Send> Send for Zeroing<T> {}

impl<T> Deref for ZeroedSlice<T> {
    type Target = [T];

    #[inline]
    fn deref(&self) -> &[T] {
        // Dangling is fine for an empty or zero-sized layout.
        // SAFETY: `start` is aligned and, with `len` elements, inside the block, zeroed by
        // the allocator or by `Zeroing::finish`: valid `T`s (`Zeroable`, required by both).
        unsafe { std::slice::from_raw_parts(self.start.as_ptr(), self.len) }
    }
}

impl<T> DerefMut for ZeroedSlice<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`; `&mut self` makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.start.as_ptr(), self.len) }
    }
}

impl<T> Drop for ZeroedSlice<T> {
    fn drop(&mut self) {
        // SAFETY: the elements are valid (see `deref`) and dropped once, here; nothing
        // uses them afterwards.
        unsafe {
            std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(
                self.start.as_ptr(),
                self.len,
            ));
        }
        if let Some((block, layout)) = self.block {
            // SAFETY: `block` came from `alloc_zeroed(layout)` (or `alloc(layout)`, then
            // zeroed by `Zeroing`) and is freed once.
            unsafe { super::reaper::dealloc(block, layout) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

    #[repr(align(64))]
    struct Line([u64; 8]);
    // SAFETY: an array of integers.
    unsafe impl Zeroable for Line {}
    // SAFETY: a unit struct has no bytes.
    unsafe impl Zeroable for () {}

    #[test]
    fn elements_are_zero_aligned_and_usable() {
        for len in [0, 1, 3, 64, 1000] {
            let lines = ZeroedSlice::<Line>::new(len);
            assert_eq!(lines.len(), len);
            assert!(lines.iter().all(|l| l.0 == [0; 8]));
            assert_eq!(lines.as_ptr().addr() % 64, 0);
            let counters = ZeroedSlice::<AtomicU64>::new(len);
            for (i, c) in counters.iter().enumerate() {
                assert_eq!(c.load(Relaxed), 0);
                c.store(i as u64, Relaxed);
            }
            assert!(counters
                .iter()
                .enumerate()
                .all(|(i, c)| c.load(Relaxed) == i as u64));
        }
    }

    #[test]
    fn zeroing_in_steps_gives_zero_elements() {
        for len in [0, 1, 100, 4096] {
            let mut z = Zeroing::<AtomicU64>::new(len);
            assert_eq!((z.len(), z.zeroed()), (len, 0));
            let mut done = 0;
            while z.zeroed() < len {
                done += z.zero(7);
            }
            assert_eq!(done, len);
            assert_eq!(z.zero(5), 0);
            let counters = z.finish();
            assert!(counters.iter().all(|c| c.load(Relaxed) == 0));
            // Dropped unfinished: frees the block without reading it.
            let mut half = Zeroing::<Line>::new(len);
            half.zero(len / 2);
            drop(half);
            assert!(Zeroing::<Line>::new(len)
                .finish()
                .iter()
                .all(|l| l.0 == [0; 8]));
        }
    }

    #[test]
    fn zero_sized_elements() {
        let units = ZeroedSlice::<()>::new(5);
        assert_eq!(units.len(), 5);
    }
}
