//! A counting global allocator (installed by the `readmostly-bench` binary).
//!
//! Two counters, chosen so that counting does not distort what is measured:
//! - allocations made by the current thread, in a thread-local (no shared cache line is
//!   written, so counting costs the timed loop one thread-local increment per allocation);
//! - live heap bytes of the whole process, in a shared atomic that is updated only while
//!   [`track_live_bytes`] is on — during the single-threaded prefill, never in timed regions.

#![allow(unsafe_code)] // `GlobalAlloc` is an unsafe trait; every block forwards to `System`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// The counting allocator; wraps [`System`].
#[derive(Debug, Default)]
pub struct CountingAlloc;

static INSTALLED: AtomicBool = AtomicBool::new(false);
static TRACK: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicI64 = AtomicI64::new(0);

thread_local! {
    static THREAD_ALLOCS: Cell<u64> = const { Cell::new(0) };
}

impl CountingAlloc {
    #[inline]
    fn on_alloc(size: usize) {
        // Ignore the access error during thread teardown; nothing is counted then.
        let _ = THREAD_ALLOCS.try_with(|c| c.set(c.get() + 1));
        // Relaxed: statistic only; the flag and the counter are read after joins/barriers.
        if TRACK.load(Ordering::Relaxed) {
            LIVE.fetch_add(size as i64, Ordering::Relaxed);
        }
    }

    #[inline]
    fn on_free(size: usize) {
        // Relaxed: statistic only.
        if TRACK.load(Ordering::Relaxed) {
            LIVE.fetch_sub(size as i64, Ordering::Relaxed);
        }
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract is `System`'s; the bookkeeping around it never allocates (const-
// initialised thread-local `Cell`, atomics).
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::on_alloc(layout.size());
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::on_alloc(layout.size());
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        Self::on_free(layout.size());
        // SAFETY: forwarded unchanged; `ptr` came from this allocator, i.e. from `System`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::on_alloc(new_size);
        Self::on_free(layout.size());
        // SAFETY: forwarded unchanged; `ptr` came from `System` with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Marks the counting allocator as installed (call from `main` of a binary that installs it);
/// without it, allocation figures are reported as unavailable.
pub fn mark_installed() {
    INSTALLED.store(true, Ordering::Relaxed);
}

/// Whether allocation figures are available.
pub fn installed() -> bool {
    INSTALLED.load(Ordering::Relaxed)
}

/// Allocations made so far by the calling thread.
pub fn thread_allocs() -> u64 {
    THREAD_ALLOCS.with(|c| c.get())
}

/// Turns live-byte tracking on or off (only for single-threaded phases).
pub fn track_live_bytes(on: bool) {
    TRACK.store(on, Ordering::SeqCst);
}

/// Net bytes allocated while tracking was on.
pub fn live_bytes() -> i64 {
    LIVE.load(Ordering::SeqCst)
}
