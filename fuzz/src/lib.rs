//! The fuzz targets' logic (the files in `fuzz_targets/` only decode the input and call
//! in here). See `differential` and `concurrent`.

use std::hash::{BuildHasher, DefaultHasher, Hasher};
use std::num::NonZeroUsize;

use arbitrary::Arbitrary;
use readmostly::Promotion;

pub mod concurrent;
pub mod differential;

/// A promotion rule chosen by the input.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Rule {
    DirtyLen,
    /// Promotes on every miss: promotion, rebuild and expunge all the time.
    EveryMiss,
    AfterMisses(u8),
}

impl Rule {
    pub fn promotion(self) -> Promotion {
        match self {
            Rule::DirtyLen => Promotion::DirtyLen,
            Rule::EveryMiss => Promotion::EveryMiss,
            Rule::AfterMisses(n) => {
                Promotion::AfterMisses(NonZeroUsize::new(usize::from(n % 8) + 1).unwrap())
            }
        }
    }
}

/// A deterministic hasher (runs reproduce exactly).
#[derive(Clone, Copy, Debug, Default)]
pub struct Fixed;

impl BuildHasher for Fixed {
    type Hasher = DefaultHasher;
    fn build_hasher(&self) -> DefaultHasher {
        DefaultHasher::new()
    }
}

/// A hasher with four possible hashes: every probe compares many keys with `Eq`, and
/// the tables' collision paths get exercised.
#[derive(Clone, Copy, Debug, Default)]
pub struct Colliding;

#[derive(Debug, Default)]
pub struct CollidingHasher(u64);

impl Hasher for CollidingHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.wrapping_add(u64::from(b));
        }
    }
    fn finish(&self) -> u64 {
        self.0 % 4
    }
}

impl BuildHasher for Colliding {
    type Hasher = CollidingHasher;
    fn build_hasher(&self) -> CollidingHasher {
        CollidingHasher::default()
    }
}
