//! Frees large blocks on a background thread.
//!
//! Freeing a large block is not free: glibc returns a block of more than its mmap
//! threshold to the kernel with `munmap`, which releases every page the block touched.
//! Measured on the development machine with `examples/rebuild_pause --grow 4Mi`: the
//! operation whose guard ended last after a promotion, and so reclaimed the replaced read
//! table, took 1.4–5.2 ms, almost all of it in that free (its time grows with the table:
//! ~12 ms at 8 Mi keys). That operation was then the slowest of the run, slower than any
//! bounded step taken under the lock.
//!
//! So blocks of [`BACKGROUND_BYTES`] or more are handed to one process-wide thread that
//! frees them, started the first time one is handed over. Smaller blocks, and every block
//! when the thread is off ([`set_enabled`]), could not be started, or when this process
//! is a `fork` child of the one that started it, are freed where they are dropped, as
//! before. Under loom, shuttle and Miri every block is freed inline (the checkers model
//! the map's protocol, not the allocator, and would see the thread as a leak).
//!
//! The queue is a `std` mutex and condition variable: a handover is one uncontended lock
//! per block of a megabyte or more, rare next to the work that filled the block.

use std::alloc::{self, Layout};
use std::ptr::NonNull;

/// Blocks at least this large are freed in the background (see the module docs). Below
/// it a free costs at most a few tens of microseconds (256 pages).
#[cfg_attr(any(loom, shuttle, miri), allow(dead_code))]
pub(crate) const BACKGROUND_BYTES: usize = 1 << 20;

/// Frees `block` (allocated with `layout` by the global allocator): on the background
/// thread if it is large and the thread is available, else here.
///
/// # Safety
///
/// As for [`std::alloc::dealloc`]: `block` came from the global allocator with `layout`,
/// is freed once, and is not used afterwards (by anyone: the background thread frees it
/// later).
pub(crate) unsafe fn dealloc(block: NonNull<u8>, layout: Layout) {
    #[cfg(not(any(loom, shuttle, miri)))]
    if layout.size() >= BACKGROUND_BYTES {
        if let Err(Block { ptr, layout }) = background::hand_over(Block { ptr: block, layout }) {
            // SAFETY: forwarded from the caller (the block came back unfreed).
            unsafe { alloc::dealloc(ptr.as_ptr(), layout) };
        }
        return;
    }
    // SAFETY: forwarded from the caller.
    unsafe { alloc::dealloc(block.as_ptr(), layout) };
}

/// Turns the background thread on or off for blocks dropped from now on (on by
/// default). See [`crate::set_background_free`].
pub(crate) fn set_enabled(enabled: bool) {
    #[cfg(not(any(loom, shuttle, miri)))]
    background::ENABLED.store(enabled, std::sync::atomic::Ordering::Relaxed);
    #[cfg(any(loom, shuttle, miri))]
    let _ = enabled;
}

/// Blocks until every block handed to the background thread before the call has been
/// freed. See [`crate::wait_for_background_free`].
pub(crate) fn wait_idle() {
    #[cfg(not(any(loom, shuttle, miri)))]
    background::wait_idle();
}

/// Bytes handed to the background thread and not yet freed.
pub(crate) fn pending_bytes() -> usize {
    #[cfg(not(any(loom, shuttle, miri)))]
    return background::pending_bytes();
    #[cfg(any(loom, shuttle, miri))]
    0
}

/// A block waiting to be freed: raw memory, no values in it (their drops already ran).
#[cfg_attr(any(loom, shuttle, miri), allow(dead_code))]
struct Block {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: a `Block` is untyped memory that its owner gave up; the global allocator may
// free memory on any thread (`GlobalAlloc` implementations are thread-safe).
unsafe impl Send for Block {}

#[cfg(not(any(loom, shuttle, miri)))]
mod background {
    use super::Block;
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};

    /// Whether large blocks go to the thread (Relaxed: a switch, ordering nothing).
    pub(super) static ENABLED: AtomicBool = AtomicBool::new(true);

    /// The process that started the thread, once it was started; `None` if it could not
    /// be. A `fork` child inherits this but not the thread.
    static STARTED: OnceLock<Option<u32>> = OnceLock::new();

    static STATE: Mutex<State> = Mutex::new(State {
        blocks: VecDeque::new(),
        queued: 0,
        freed: 0,
        pending: 0,
    });

    /// Signalled when blocks are queued (to the thread) and when the thread has freed
    /// some (to waiters in `wait_idle`).
    static CHANGED: Condvar = Condvar::new();

    struct State {
        blocks: VecDeque<Block>,
        /// Blocks handed over, and freed, since the process started.
        queued: u64,
        freed: u64,
        /// Bytes queued and not yet freed.
        pending: usize,
    }

    fn lock() -> MutexGuard<'static, State> {
        // Nothing that can panic runs while the lock is held but `VecDeque::push_back`
        // (capacity overflow: then the state is unchanged), so poisoning carries nothing.
        crate::sync::lock(&STATE)
    }

    /// Whether the thread runs in this process (starting it if it was never started).
    fn running() -> bool {
        let started = STARTED.get_or_init(|| {
            std::thread::Builder::new()
                .name("readmostly-free".into())
                .spawn(run)
                .ok()
                .map(|_| pid())
        });
        ours(*started)
    }

    /// Whether the thread was started, by this process (without starting it).
    fn started_here() -> bool {
        STARTED.get().is_some_and(|started| ours(*started))
    }

    /// Whether a thread started by process `started` runs in this one: not in a `fork`
    /// child (which inherits `STARTED` but not the thread, and perhaps a `STATE` locked
    /// by it: nothing may lock it there).
    fn ours(started: Option<u32>) -> bool {
        // `getpid` is one system call, next to a free of a megabyte or more.
        started.is_some_and(|started| started == pid())
    }

    /// This process's id where `fork` exists; elsewhere (some targets have no process
    /// ids: `std::process::id` panics there) a constant.
    fn pid() -> u32 {
        #[cfg(unix)]
        return std::process::id();
        #[cfg(not(unix))]
        0
    }

    /// Queues `block` for the thread, or gives it back if the thread is off or missing.
    pub(super) fn hand_over(block: Block) -> Result<(), Block> {
        if !ENABLED.load(Relaxed) || !running() {
            return Err(block);
        }
        let size = block.layout.size();
        let mut state = lock();
        // First, so that the counts stay true if it panics (capacity overflow; out of
        // memory aborts). The block is then leaked, not freed twice.
        state.blocks.push_back(block);
        state.pending += size;
        state.queued += 1;
        drop(state);
        CHANGED.notify_all();
        Ok(())
    }

    /// The thread: frees queued blocks, oldest first, forever.
    fn run() {
        let mut state = lock();
        loop {
            match state.blocks.pop_front() {
                Some(block) => {
                    drop(state);
                    // SAFETY: `hand_over`'s caller gave up the block (see `dealloc`): it
                    // came from the global allocator with this layout and is freed once.
                    unsafe { std::alloc::dealloc(block.ptr.as_ptr(), block.layout) };
                    state = lock();
                    state.pending -= block.layout.size();
                    state.freed += 1;
                    CHANGED.notify_all();
                }
                None => state = CHANGED.wait(state).unwrap_or_else(PoisonError::into_inner),
            }
        }
    }

    pub(super) fn wait_idle() {
        if !started_here() {
            // Nothing was queued in this process (or, in a `fork` child, what was queued
            // is the parent's thread's to free: the child's copies are never freed).
            return;
        }
        let mut state = lock();
        let target = state.queued;
        while state.freed < target {
            state = CHANGED.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }

    pub(super) fn pending_bytes() -> usize {
        if started_here() {
            lock().pending
        } else {
            0
        }
    }

    /// Blocks handed over and blocks freed, since the process started.
    #[cfg(test)]
    pub(super) fn counts() -> (u64, u64) {
        let state = lock();
        (state.queued, state.freed)
    }
}

#[cfg(all(test, not(any(loom, shuttle, miri))))]
mod tests {
    use super::*;

    fn allocate(layout: Layout) -> NonNull<u8> {
        // SAFETY: the layouts used here have a non-zero size.
        NonNull::new(unsafe { alloc::alloc(layout) }).expect("allocation failed")
    }

    /// The two tests below each count hand-overs; other tests of the crate may add
    /// some at the same time (never take any away).
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn large_blocks_are_freed_by_the_thread_and_waited_for() {
        let _serial = SERIAL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let large = Layout::from_size_align(BACKGROUND_BYTES, 16).unwrap();
        let small = Layout::from_size_align(BACKGROUND_BYTES - 1, 16).unwrap();
        let (queued, _) = background::counts();
        for _ in 0..3 {
            // SAFETY: just allocated with that layout, freed once, not used again.
            unsafe { dealloc(allocate(large), large) };
            // SAFETY: as above.
            unsafe { dealloc(allocate(small), small) };
        }
        // Other tests may hand blocks over at the same time: at least ours went.
        let (now, _) = background::counts();
        assert!(
            now >= queued + 3,
            "{} large blocks handed over",
            now - queued
        );
        wait_idle();
        let (_, freed) = background::counts();
        assert!(freed >= queued + 3, "waited, but {} freed", freed - queued);
    }

    #[test]
    fn a_dropped_map_hands_its_large_tables_over() {
        let _serial = SERIAL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (queued, _) = background::counts();
        // 2^15 buckets of 64 bytes: a 2 MiB main table.
        let map: crate::SyncMap<u64, u64> = (0..150_000).map(|k| (k, k)).collect();
        drop(map);
        let (now, _) = background::counts();
        assert!(now > queued, "the table was freed inline");
        wait_idle();
    }
}
