//! Key generation: the bijective key mixer, a small PRNG and a Zipf sampler.
//!
//! Workloads pick key *indices* (`0..keys` are the prefilled keys); the key that reaches a
//! map is `mix64(index)`. The mixer is a bijection on `u64`, so distinct indices give
//! distinct keys, and consecutive indices give keys that look random to a hasher (a map
//! cannot profit from sequential keys).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Bijective 64-bit finalizer (xor-shift / multiply rounds, each step invertible).
#[inline]
pub fn mix64(mut x: u64) -> u64 {
    x ^= x >> 32;
    x = x.wrapping_mul(0xd6e8_feb8_6659_fd93);
    x ^= x >> 32;
    x = x.wrapping_mul(0xd6e8_feb8_6659_fd93);
    x ^= x >> 32;
    x
}

/// A small, fast, seedable PRNG (SplitMix64). Used only outside timed regions.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x6a09_e667_f3bc_c909)
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`), by the multiply-high method.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    #[inline]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Zipf-distributed ranks in `0..n` (rank 0 the most frequent), exponent `theta < 1`.
///
/// Uses the closed-form inversion of Gray et al. ("Quickly generating billion-record
/// synthetic databases", 1994), the generator YCSB popularised. `zeta(n)` is summed exactly
/// up to one million terms and the tail is added with the Euler–Maclaurin integral estimate,
/// so building a sampler for hundreds of millions of items stays cheap.
#[derive(Debug, Clone)]
pub struct Zipf {
    n: u64,
    theta: f64,
    alpha: f64,
    zeta_n: f64,
    eta: f64,
    half_pow_theta: f64,
}

impl Zipf {
    /// A sampler over `0..n` with exponent `theta` (`0 < theta < 1`).
    pub fn new(n: u64, theta: f64) -> Self {
        assert!(n > 0 && theta > 0.0 && theta < 1.0);
        let zeta_n = zeta(n, theta);
        let zeta_2 = zeta(2.min(n), theta);
        let eta = if n <= 2 {
            1.0
        } else {
            (1.0 - (2.0 / n as f64).powf(1.0 - theta)) / (1.0 - zeta_2 / zeta_n)
        };
        Zipf {
            n,
            theta,
            alpha: 1.0 / (1.0 - theta),
            zeta_n,
            eta,
            half_pow_theta: 0.5f64.powf(theta),
        }
    }

    /// One rank in `0..n`.
    #[inline]
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        let u = rng.unit();
        let uz = u * self.zeta_n;
        if uz < 1.0 || self.n == 1 {
            return 0;
        }
        if uz < 1.0 + self.half_pow_theta {
            return 1;
        }
        let r = (self.n as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        r.min(self.n - 1)
    }

    /// The exponent.
    pub fn theta(&self) -> f64 {
        self.theta
    }
}

/// `sum_{i=1..n} i^-theta`, exact for the first million terms, integral estimate beyond.
fn zeta(n: u64, theta: f64) -> f64 {
    const EXACT: u64 = 1 << 20;
    let m = n.min(EXACT);
    let mut sum = 0.0;
    for i in 1..=m {
        sum += (i as f64).powf(-theta);
    }
    if n > m {
        // Euler–Maclaurin: sum_{m+1..n} f(i) ~ integral_m^n f + (f(n) - f(m)) / 2.
        let (a, b) = (m as f64, n as f64);
        let integral = (b.powf(1.0 - theta) - a.powf(1.0 - theta)) / (1.0 - theta);
        sum += integral + (b.powf(-theta) - a.powf(-theta)) / 2.0;
    }
    sum
}

/// A shared, cached Zipf sampler for `(n, theta)`: building one for 16 Mi keys sums a million
/// powers, so each size is built once per process.
pub fn zipf_cached(n: u64, theta: f64) -> Arc<Zipf> {
    type Cache = Mutex<HashMap<(u64, u64), Arc<Zipf>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    cache
        .entry((n, theta.to_bits()))
        .or_insert_with(|| Arc::new(Zipf::new(n, theta)))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_is_injective_on_a_range() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..100_000u64 {
            assert!(seen.insert(mix64(i)));
        }
    }

    #[test]
    fn below_stays_in_range() {
        let mut rng = Rng::new(7);
        for n in [1u64, 2, 3, 1000, u64::MAX] {
            for _ in 0..1000 {
                assert!(rng.below(n) < n);
            }
        }
    }

    #[test]
    fn zipf_is_skewed_and_in_range() {
        let z = Zipf::new(10_000, 0.99);
        let mut rng = Rng::new(1);
        let mut top = 0;
        for _ in 0..100_000 {
            let r = z.sample(&mut rng);
            assert!(r < 10_000);
            if r < 10 {
                top += 1;
            }
        }
        // With theta 0.99 over 10^4 items the ten hottest ranks take about 30 % of draws;
        // uniform would give 0.1 %.
        assert!(top > 20_000 && top < 40_000, "top-10 share {top}");
    }

    #[test]
    fn zeta_tail_estimate_is_close() {
        let exact: f64 = (1..=3_000_000u64).map(|i| (i as f64).powf(-0.99)).sum();
        let est = zeta(3_000_000, 0.99);
        assert!((exact - est).abs() / exact < 1e-6, "{exact} vs {est}");
    }
}
