//! Concurrent hash maps for read-mostly data.
#![doc(test(attr(deny(warnings))))]
#![warn(missing_docs)]

mod map;
mod raw;
mod stats;
mod sync;

pub use map::{Builder, CompareExchangeError, DefaultHashBuilder, Iter, MapRef, Promotion, SyncMap};
pub use raw::reclaim::{LocalGuard, OwnedGuard};
pub use stats::Stats;

#[cfg(test)]
mod tests;
