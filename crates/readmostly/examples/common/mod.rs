//! Helpers shared by the measuring examples (not an example itself).

#![allow(dead_code)] // each example uses a subset

/// A count on the command line: `65536`, `64Ki`, `1Mi` (underscores allowed).
pub(crate) fn count(s: &str) -> Result<u64, String> {
    let (digits, scale) = match s.strip_suffix("Ki") {
        Some(d) => (d, 1 << 10),
        None => match s.strip_suffix("Mi") {
            Some(d) => (d, 1 << 20),
            None => (s, 1),
        },
    };
    digits
        .replace('_', "")
        .parse::<u64>()
        .map(|n| n * scale)
        .map_err(|_| format!("not a count: {s}"))
}

/// A small deterministic generator (xorshift64*): every side of a comparison sees the
/// same keys.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// The median (mean of the middle two for an even count); sorts `v`.
pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}
