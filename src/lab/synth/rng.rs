//! A small, self-contained pseudo-random generator for the synthetic data.
//!
//! The generator must give the same image for the same seed on every run,
//! every machine and every future version of our dependencies, so it does
//! not borrow a crate's generator (whose streams may change between
//! releases): it is xoshiro256** seeded through SplitMix64, both fully
//! specified here. Each case gets its own stream derived from the dataset
//! seed and the case index, so case 17 is the same whether 20 or 20 000
//! cases are generated, and cases can be made in any order.

/// xoshiro256** state.
#[derive(Debug, Clone)]
pub struct Rng {
    state: [u64; 4],
}

fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator seeded from one number.
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        let state = [
            splitmix64(&mut x),
            splitmix64(&mut x),
            splitmix64(&mut x),
            splitmix64(&mut x),
        ];
        Rng { state }
    }

    /// An independent stream for `(seed, stream...)`, e.g. (dataset seed, case index).
    pub fn derive(seed: u64, stream: &[u64]) -> Rng {
        let mut x = seed;
        let mut mixed = splitmix64(&mut x);
        for &part in stream {
            let mut y = mixed ^ part.wrapping_mul(0xD6E8_FEB8_6659_FD93);
            mixed = splitmix64(&mut y);
        }
        Rng::new(mixed)
    }

    /// A child stream, so that one part of a case can draw any number of
    /// values without shifting what the next part draws.
    pub fn fork(&mut self) -> Rng {
        Rng::new(self.next_u64())
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform integer in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * n as f64) as usize % n.max(1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f32) -> bool {
        self.unit() < p
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = ((self.next_u64() >> 11) as f64 + 1.0) / ((1u64 << 53) as f64 + 1.0);
        let u2 = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }

    /// Normal with mean and standard deviation, clamped to ±2.5 sd so that
    /// anatomy never leaves its plausible range.
    pub fn around(&mut self, mean: f32, sd: f32) -> f32 {
        mean + sd * self.normal().clamp(-2.5, 2.5)
    }

    /// -1 or +1.
    pub fn sign(&mut self) -> f32 {
        if self.chance(0.5) { 1.0 } else { -1.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| Rng::derive(7, &[3]).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let mut b = Rng::derive(7, &[4]);
        assert_ne!(a[0], b.next_u64());
        let mut r = Rng::new(1);
        let xs: Vec<f32> = (0..1000).map(|_| r.unit()).collect();
        assert!(xs.iter().all(|&x| (0.0..1.0).contains(&x)));
        let mean = xs.iter().sum::<f32>() / 1000.0;
        assert!((mean - 0.5).abs() < 0.05, "mean {mean}");
    }
}
