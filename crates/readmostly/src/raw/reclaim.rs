//! Memory reclamation.
//!
//! Normal builds use [`seize`]: every map owns a `seize::Collector`, operations run
//! inside a guard, and replaced tables, entries and values are retired through the
//! guard so that they are freed only once no thread that could have seen them is still
//! inside a guard.
//!
//! Under `--cfg loom` seize cannot run (its thread-local state and fences are invisible
//! to loom), so a minimal stand-in with the same interface defers every retired object
//! to the collector's drop. That is enough to model-check the read/dirty protocol,
//! which is what the loom tests are about. The shuttle tests (`--cfg shuttle`) use the
//! same stand-in: shuttle runs every model thread on one OS thread, where seize's
//! per-thread state would see them all as a single thread.

#[cfg(not(any(loom, shuttle)))]
pub(crate) use seize::{reclaim::boxed, Collector, Guard};
#[cfg(not(any(loom, shuttle)))]
pub use seize::{LocalGuard, OwnedGuard};

#[cfg(any(loom, shuttle))]
pub(crate) use self::model::{boxed, Collector, Guard};

/// Objects a thread retires before its batch is handed to the collector, by default.
///
/// Every hand-over costs a process-wide `membarrier` (seize's heavy barrier, which lets
/// its readers enter a guard with a plain store): an inter-processor interrupt to every
/// CPU running one of our threads, which the caller waits for. Several microseconds,
/// far more in a virtual machine, and the more CPUs it interrupts the more it costs.
/// seize's default (32, or the CPU count) collapsed overwrites as soon as two threads
/// ran (write50 at 2 threads: 2.0–2.5 Mops/s, P99 22–25 µs on the development machine;
/// 8–10 Mops/s and P99 0.5–1 µs with 512). At 512 the barrier is still the P99.9 of an
/// overwrite-heavy load (write50: 4.3 µs at 1 thread, 18.8 µs at 2; 0.7 and 2.2 µs
/// with 2048), but larger batches cost elsewhere (BENCHMARKS.md, session 20): up to a
/// batch of retired objects per thread stays in memory (the soak test: about 250 more
/// bytes per live key with 2048), in-block value slots stay busy longer (write50 at
/// 64 Ki keys: 0.016 allocations per operation instead of 0.006), a batch is freed all
/// at once on colder memory, and an oversubscribed churn soak ran about 8 % slower.
/// So the default stays here, and `Builder::retire_batch` says when to raise it.
pub(crate) const DEFAULT_RETIRE_BATCH: usize = 512;

/// A collector retiring objects in batches of `batch` (rounded up to a power of two).
pub(crate) fn collector(batch: usize) -> Collector {
    #[cfg(not(any(loom, shuttle)))]
    let collector = Collector::new().batch_size(batch.max(1));
    #[cfg(any(loom, shuttle))]
    let collector = {
        let _ = batch;
        Collector::new()
    };
    collector
}
#[cfg(any(loom, shuttle))]
pub use self::model::{LocalGuard, OwnedGuard};

#[cfg(any(loom, shuttle))]
mod model {
    use crate::sync::AtomicPtr;
    use std::sync::atomic::Ordering;
    use std::sync::{Mutex, PoisonError};

    /// A retired object with its type erased (so `K`/`V` need not be `'static`).
    struct SendDeferred {
        ptr: *mut (),
        reclaim: unsafe fn(*mut (), &Collector),
    }
    // SAFETY: the list is behind a std mutex (deliberately not modelled by loom or
    // shuttle) and retired objects are only freed when the collector is dropped.
    unsafe impl Send for SendDeferred {}

    /// Loom/shuttle stand-in for `seize::Collector`: frees everything retired when dropped.
    /// `pub` like the guard types whose trait names it (the module itself is private).
    pub struct Collector {
        retired: Mutex<Vec<SendDeferred>>,
    }

    impl Collector {
        pub(crate) fn new() -> Self {
            Collector {
                retired: Mutex::new(Vec::new()),
            }
        }
        pub(crate) fn enter(&self) -> LocalGuard<'_> {
            LocalGuard { collector: self }
        }
        pub(crate) fn enter_owned(&self) -> OwnedGuard<'_> {
            OwnedGuard { collector: self }
        }

        /// Frees everything retired so far (as `seize::Collector::reclaim_all`).
        ///
        /// # Safety
        /// No guard of this collector is active.
        pub(crate) unsafe fn reclaim_all(&self) {
            let retired =
                std::mem::take(&mut *self.retired.lock().unwrap_or_else(PoisonError::into_inner));
            for deferred in retired {
                // SAFETY: `reclaim` is the function passed to `defer_retire` for `ptr`
                // (see there); each entry is taken from the list, so it runs once, and
                // no guard can still see it (caller).
                unsafe { (deferred.reclaim)(deferred.ptr, self) };
            }
        }
    }

    impl Drop for Collector {
        fn drop(&mut self) {
            // SAFETY: `&mut self`: no guard, which borrows the collector, is active.
            unsafe { self.reclaim_all() };
        }
    }

    /// Loom stand-in for `seize::reclaim::boxed`.
    ///
    /// # Safety
    /// `ptr` must come from `Box::into_raw` and not be used afterwards.
    pub(crate) unsafe fn boxed<T>(ptr: *mut T, _collector: &Collector) {
        // SAFETY: guaranteed by the caller.
        drop(unsafe { Box::from_raw(ptr) });
    }

    /// Loom stand-in for `seize::Guard`.
    pub trait Guard {
        fn collector(&self) -> &Collector;
        fn thread_id(&self) -> usize {
            0
        }
        fn flush(&self) {}
        fn protect<T>(&self, ptr: &AtomicPtr<T>, order: Ordering) -> *mut T {
            ptr.load(order)
        }
        fn swap<T>(&self, ptr: &AtomicPtr<T>, value: *mut T, order: Ordering) -> *mut T {
            ptr.swap(value, order)
        }
        fn compare_exchange<T>(
            &self,
            ptr: &AtomicPtr<T>,
            current: *mut T,
            new: *mut T,
            success: Ordering,
            failure: Ordering,
        ) -> Result<*mut T, *mut T> {
            ptr.compare_exchange(current, new, success, failure)
        }
        /// # Safety
        /// `ptr` must be unreachable for threads entering later and valid for `reclaim`.
        unsafe fn defer_retire<T>(&self, ptr: *mut T, reclaim: unsafe fn(*mut T, &Collector)) {
            // SAFETY: `unsafe fn(*mut T, &Collector)` and `unsafe fn(*mut (), &Collector)`
            // are ABI-compatible (thin raw pointers), and the erased function is only ever
            // called with `ptr`, which is a `*mut T`.
            let reclaim = unsafe {
                std::mem::transmute::<unsafe fn(*mut T, &Collector), unsafe fn(*mut (), &Collector)>(
                    reclaim,
                )
            };
            self.collector()
                .retired
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(SendDeferred {
                    ptr: ptr.cast(),
                    reclaim,
                });
        }
    }

    /// Loom stand-in for `seize::LocalGuard`.
    #[derive(Debug)]
    pub struct LocalGuard<'a> {
        collector: &'a Collector,
    }
    /// Loom stand-in for `seize::OwnedGuard`.
    #[derive(Debug)]
    pub struct OwnedGuard<'a> {
        collector: &'a Collector,
    }
    // Like seize's guards, these have a destructor (a no-op here): code dropping a
    // guard early (`drop(map_ref)`) means the same under the models as in real builds.
    impl Drop for LocalGuard<'_> {
        fn drop(&mut self) {}
    }
    impl Drop for OwnedGuard<'_> {
        fn drop(&mut self) {}
    }
    impl Guard for LocalGuard<'_> {
        fn collector(&self) -> &Collector {
            self.collector
        }
    }
    impl Guard for OwnedGuard<'_> {
        fn collector(&self) -> &Collector {
            self.collector
        }
    }
    impl std::fmt::Debug for Collector {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Collector")
        }
    }
}
