//! Seeded random tensors. [`Rng`] is a small xoshiro256++ generator whose whole state is four
//! u64s, so a training run can store it in a checkpoint and resume exactly. It implements
//! `rand::Rng`, so `rand_distr` draws from it.

use crate::{DType, Device, Error, Result, Shape, Tensor};
use rand_distr::{Distribution, Gumbel, Normal, Uniform};
use std::convert::Infallible;

/// A seeded pseudo-random generator (xoshiro256++).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng {
    s: [u64; 4],
}

/// One step of SplitMix64: advances `state` and returns a well-mixed 64-bit value.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut x = *state;
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The key of row `row` of the draws made with `seed`: one counter-based noise stream per row.
pub fn draw_key(seed: u64, row: u64) -> u64 {
    let mut z = seed ^ row.wrapping_mul(0xD605_BBB5_8C8A_BBDB);
    splitmix64(&mut z)
}

/// The `i`-th uniform in [0, 1) (53 bits) of the noise stream `key`: SplitMix64's output for
/// the state key + (i + 1)·γ, so any element can be computed on its own. The Gumbel-max
/// draw uses it on the CPU and, with the same integer arithmetic, in the CUDA kernel
/// (`kernels/sample.cu`): a draw does not depend on the device, the threads or the order.
pub fn draw_uniform(key: u64, i: u64) -> f64 {
    let mut z = key.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    (splitmix64(&mut z) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

impl Rng {
    /// A generator whose state is derived from `seed` with SplitMix64 (never all zeros). The
    /// stream of a seed is fixed for good: the built-in corpus and data orders depend on it.
    pub fn seed(seed: u64) -> Rng {
        let mut z = seed;
        Rng {
            s: [0; 4].map(|_| splitmix64(&mut z)),
        }
    }
    /// An independent generator for the pair (`seed`, `stream`), e.g. (run seed, epoch).
    pub fn seed_stream(seed: u64, stream: u64) -> Rng {
        let mut z = seed;
        let mut mixed = splitmix64(&mut z) ^ stream.wrapping_mul(0xD605_BBB5_8C8A_BBDB);
        Rng::seed(splitmix64(&mut mixed))
    }
    /// The full state, for checkpoints.
    pub fn state(&self) -> [u64; 4] {
        self.s
    }
    /// A generator restored from `state()`.
    pub fn from_state(s: [u64; 4]) -> Rng {
        Rng { s }
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let out = (s[0].wrapping_add(s[3])).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        out
    }
    /// A uniform draw in [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    /// A uniform integer in `0..n` without modulo bias (Lemire's method with rejection); 0
    /// when `n == 0`.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = (self.next_u64() as u128) * (n as u128);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }
    /// Shuffles `items` in place (Fisher–Yates), uniformly over all permutations.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

impl rand::TryRng for Rng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> std::result::Result<u32, Infallible> {
        Ok((self.next_u64() >> 32) as u32)
    }
    fn try_next_u64(&mut self) -> std::result::Result<u64, Infallible> {
        Ok(self.next_u64())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> std::result::Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes()[..chunk.len()]);
        }
        Ok(())
    }
}

impl Tensor {
    /// A float tensor of draws from `dist` (made in f64, stored as `dtype`).
    fn sample<D: Distribution<f64>>(
        shape: Shape,
        dist: D,
        dtype: DType,
        device: Device,
        rng: &mut Rng,
    ) -> Result<Tensor> {
        if !dtype.is_float() {
            return Err(Error::dtype(
                "random",
                format!("random tensors are floats, not {dtype:?}"),
            ));
        }
        let data: Vec<f64> = (0..shape.numel()).map(|_| dist.sample(rng)).collect();
        Tensor::from_vec(data, shape, Device::Cpu)?
            .to_dtype(dtype)?
            .to_device(device)
    }

    /// Uniform draws in [lo, hi).
    pub fn rand_uniform(
        shape: impl Into<Shape>,
        lo: f64,
        hi: f64,
        dtype: DType,
        device: Device,
        rng: &mut Rng,
    ) -> Result<Tensor> {
        let dist = Uniform::new(lo, hi)
            .map_err(|e| Error::msg("rand_uniform", format!("[{lo}, {hi}): {e}")))?;
        Tensor::sample(shape.into(), dist, dtype, device, rng)
    }
    /// Normal draws with the given mean and standard deviation.
    pub fn randn(
        shape: impl Into<Shape>,
        mean: f64,
        std: f64,
        dtype: DType,
        device: Device,
        rng: &mut Rng,
    ) -> Result<Tensor> {
        let dist = Normal::new(mean, std)
            .map_err(|e| Error::msg("randn", format!("mean {mean}, std {std}: {e}")))?;
        Tensor::sample(shape.into(), dist, dtype, device, rng)
    }
    /// Standard Gumbel draws (location 0, scale 1), for the Gumbel-max trick.
    pub fn rand_gumbel(
        shape: impl Into<Shape>,
        dtype: DType,
        device: Device,
        rng: &mut Rng,
    ) -> Result<Tensor> {
        let dist = Gumbel::new(0.0, 1.0).map_err(|e| Error::msg("rand_gumbel", e.to_string()))?;
        Tensor::sample(shape.into(), dist, dtype, device, rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_is_in_range_and_roughly_uniform() {
        let mut r = Rng::seed(1);
        let mut counts = [0usize; 6];
        for _ in 0..60_000 {
            counts[r.below(6) as usize] += 1;
        }
        for c in counts {
            assert!((9_400..10_600).contains(&c), "{counts:?}");
        }
        assert_eq!(r.below(0), 0);
        assert_eq!(r.below(1), 0);
    }

    #[test]
    fn counter_noise_is_uniform_and_differs_between_rows() {
        let key = draw_key(11, 0);
        let n = 100_000;
        let u: Vec<f64> = (0..n).map(|i| draw_uniform(key, i)).collect();
        assert!(u.iter().all(|&x| (0.0..1.0).contains(&x)));
        let mean = u.iter().sum::<f64>() / n as f64;
        let var = u.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.005 && (var - 1.0 / 12.0).abs() < 0.002);
        // Neighbouring elements are uncorrelated, and rows and seeds give other streams.
        let lag1 = (1..n as usize)
            .map(|i| (u[i] - 0.5) * (u[i - 1] - 0.5))
            .sum::<f64>();
        assert!((lag1 / n as f64).abs() < 0.001);
        assert_ne!(draw_uniform(draw_key(11, 1), 0), u[0]);
        assert_ne!(draw_uniform(draw_key(12, 0), 0), u[0]);
    }

    #[test]
    fn streams_differ() {
        let a = Rng::seed_stream(5, 0).next_u64();
        let b = Rng::seed_stream(5, 1).next_u64();
        let c = Rng::seed_stream(6, 0).next_u64();
        assert!(a != b && a != c && b != c);
    }

    #[test]
    fn seeded_and_resumable() {
        let mut a = Rng::seed(7);
        let mut b = Rng::seed(7);
        let x = Tensor::randn([1000], 0.0, 1.0, DType::F64, Device::Cpu, &mut a).unwrap();
        let y = Tensor::randn([1000], 0.0, 1.0, DType::F64, Device::Cpu, &mut b).unwrap();
        assert_eq!(x.to_vec::<f64>().unwrap(), y.to_vec::<f64>().unwrap());
        let mut c = Rng::from_state(a.state());
        assert_eq!(a.next_u64(), c.next_u64());
        assert_ne!(Rng::seed(1).next_u64(), Rng::seed(2).next_u64());
    }

    #[test]
    fn moments_are_right() {
        let mut rng = Rng::seed(3);
        let n = 200_000;
        let stats = |t: Tensor| {
            let v = t.to_vec::<f64>().unwrap();
            let m = v.iter().sum::<f64>() / n as f64;
            (
                m,
                v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n as f64,
            )
        };
        let (m, var) =
            stats(Tensor::rand_uniform([n], -1.0, 3.0, DType::F64, Device::Cpu, &mut rng).unwrap());
        assert!(
            (m - 1.0).abs() < 0.02 && (var - 16.0 / 12.0).abs() < 0.02,
            "uniform {m} {var}"
        );
        let (m, var) =
            stats(Tensor::randn([n], 2.0, 0.5, DType::F64, Device::Cpu, &mut rng).unwrap());
        assert!(
            (m - 2.0).abs() < 0.01 && (var - 0.25).abs() < 0.01,
            "normal {m} {var}"
        );
        // Gumbel(0, 1): mean = Euler–Mascheroni constant, variance = π²/6.
        let (m, var) = stats(Tensor::rand_gumbel([n], DType::F64, Device::Cpu, &mut rng).unwrap());
        assert!(
            (m - 0.5772).abs() < 0.02 && (var - 1.6449).abs() < 0.04,
            "gumbel {m} {var}"
        );
    }
}
