//! A small shim that swaps the standard library's synchronisation primitives for
//! loom's when the crate is built with `--cfg loom`, or for shuttle's with
//! `--cfg shuttle`, so the read/dirty protocol can be model-checked (loom) or run under
//! randomized schedules (shuttle) without changing its code.

#[cfg(not(any(loom, shuttle)))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize};
#[cfg(not(any(loom, shuttle)))]
pub(crate) use std::sync::{Mutex, MutexGuard};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize};
#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};

#[cfg(all(shuttle, not(loom)))]
pub(crate) use shuttle::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize};
#[cfg(all(shuttle, not(loom)))]
pub(crate) use shuttle::sync::{Mutex, MutexGuard};

/// Locks `mutex`, ignoring poisoning.
///
/// Every critical section of the dirty table runs user code (`Eq`) only where the
/// protected state is consistent: before it mutates anything, between complete steps (a
/// rebuild step, a doubling of the recent table's slot array or a promotion, each
/// finished before the next lookup), or, in a bulk insert, while it fills a private
/// table that is published at the end; a reservation taken before a lookup is given back
/// by its drop guard. So a panic while the lock is held never leaves the state
/// half-updated; the poison flag therefore carries no information we need.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Locks `mutex` if it is free right now (poisoning ignored, as in [`lock`]); `None` if
/// another thread holds it.
pub(crate) fn try_lock<T>(mutex: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match mutex.try_lock() {
        Ok(guard) => Some(guard),
        Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

/// Waits a little before a thread checks again for another thread's progress (the
/// close of a recent slot array waiting for adds in flight): spins at first, then yields
/// the processor, since the thread waited for may have been preempted. Under loom and
/// shuttle, always a yield, so that the checker schedules the other threads.
pub(crate) fn backoff(round: u32) {
    #[cfg(loom)]
    {
        let _ = round;
        loom::thread::yield_now();
    }
    #[cfg(all(shuttle, not(loom)))]
    {
        let _ = round;
        shuttle::thread::yield_now();
    }
    #[cfg(not(any(loom, shuttle)))]
    if round < 64 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}
