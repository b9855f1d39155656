//! Counter-based randomness: every random choice is a pure function of (seed, what, ids).
//!
//! Days are generated in parallel and in any order; deriving each (device, day) stream from a hash
//! instead of one shared sequence keeps the output identical for a seed whatever the scheduling.
//! SplitMix64 is tiny, fast and statistically fine for synthetic data.

#[derive(Debug, Clone)]
pub struct Rng(u64);

/// SplitMix64's finalizer: a strong 64-bit mix.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Hash of a seed and a tuple of ids.
pub fn hash(seed: u64, parts: &[u64]) -> u64 {
    parts.iter().fold(mix(seed ^ 0x5eed), |h, &p| {
        mix(h ^ p.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    })
}

/// A uniform number in [0, 1) from a hash.
pub fn unit(h: u64) -> f64 {
    (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

impl Rng {
    pub fn new(seed: u64, parts: &[u64]) -> Rng {
        Rng(hash(seed, parts))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        unit(self.next_u64())
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// Uniform in [lo, hi); `lo` when the range is empty.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            lo
        } else {
            lo + (self.next_u64() % (hi - lo) as u64) as i64
        }
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.f64().max(1e-12);
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    pub fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }

    /// Exponential with the given mean.
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.f64()).ln()
    }

    /// Index drawn with the given weights.
    pub fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.f64() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }

    /// An item of a `(value, weight)` table.
    pub fn pick<T: Copy>(&mut self, table: &[(T, f64)]) -> T {
        let mut x = self.f64() * table.iter().map(|(_, w)| w).sum::<f64>();
        for (v, w) in table {
            if x < *w {
                return *v;
            }
            x -= w;
        }
        table[table.len() - 1].0
    }
}

/// Poisson(`lambda`) by inversion of a given uniform `u` (so the caller can reuse the draw that
/// already decided "any events today?").
pub fn poisson_from_unit(lambda: f64, u: f64) -> u32 {
    let mut p = (-lambda).exp();
    let mut cdf = p;
    let mut k = 0u32;
    while u >= cdf && k < 1000 {
        k += 1;
        p *= lambda / k as f64;
        cdf += p;
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_deterministic_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| Rng::new(7, &[1, 2]).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(
            Rng::new(7, &[1, 2]).next_u64(),
            Rng::new(7, &[2, 1]).next_u64()
        );
    }

    #[test]
    fn poisson_inversion_has_the_right_mean() {
        let mut r = Rng::new(1, &[]);
        let n = 200_000;
        let mean = (0..n)
            .map(|_| poisson_from_unit(2.5, r.f64()) as f64)
            .sum::<f64>()
            / n as f64;
        assert!((mean - 2.5).abs() < 0.03, "{mean}");
    }
}
