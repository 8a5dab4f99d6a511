//! The fuzz targets' logic (the files in `fuzz_targets/` only decode the input and call
//! in here). See `differential` and `concurrent`.

use std::hash::{BuildHasher, DefaultHasher, Hasher};
use std::num::NonZeroUsize;

use arbitrary::Arbitrary;
use readmostly::{Promotion, RecentKeys};

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

    /// The recent-table setting, derived from the rule so that the input format (and the
    /// committed corpus) stays as it was: the default and a tiny table that fills and
    /// grows all the time for `DirtyLen` and `EveryMiss`, all three for `AfterMisses`.
    pub fn recent_keys(self) -> RecentKeys {
        let choice = match self {
            Rule::DirtyLen => 0,
            Rule::EveryMiss => 2,
            Rule::AfterMisses(n) => n / 8 % 3,
        };
        match choice {
            0 => RecentKeys::Auto,
            1 => RecentKeys::Off,
            _ => RecentKeys::AtMost(NonZeroUsize::new(2).unwrap()),
        }
    }

    /// The dirty-table rebuild step, derived from the rule like the recent-table setting:
    /// one entry per locked operation (rebuilds half done most of the time) for
    /// `DirtyLen` and half of the `AfterMisses` rules, the default otherwise.
    pub fn rebuild_step(self) -> usize {
        match self {
            Rule::DirtyLen => 1,
            Rule::EveryMiss => 64,
            Rule::AfterMisses(n) if n / 24 % 2 == 0 => 1,
            Rule::AfterMisses(_) => 64,
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
