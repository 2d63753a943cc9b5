//! Conditioning: sinusoidal features, the time embedding (`sigma_map`) and adaLN modulation.

use crate::layers::Linear;
use crate::params::{Bound, ParamStore};
use autograd::Var;
use tensor::{DType, Device, Result, Rng, Tensor};

/// Sinusoidal features of each value: [cos(v·f_0), …, cos(v·f_{h−1}), sin(v·f_0), …] with
/// h = dim/2 frequencies f_k = exp(−ln(10000)·k/h). Returns [values.len(), dim] (dim even).
pub fn sinusoidal_features(
    values: &[f64],
    dim: usize,
    dtype: DType,
    device: Device,
) -> Result<Tensor> {
    let half = dim / 2;
    let freqs: Vec<f64> = (0..half)
        .map(|k| (-(10000f64.ln()) * k as f64 / half as f64).exp())
        .collect();
    let mut out = vec![0.0; values.len() * dim];
    for (row, &v) in out.chunks_exact_mut(dim.max(1)).zip(values) {
        let (cos, sin) = row.split_at_mut(half);
        for ((c, s), &f) in cos.iter_mut().zip(sin.iter_mut()).zip(&freqs) {
            (*s, *c) = (v * f).sin_cos();
        }
    }
    Tensor::from_vec(out, [values.len(), dim], Device::Cpu)?
        .to_dtype(dtype)?
        .to_device(device)
}

/// Number of sinusoidal features fed to the time embedding.
pub const TIME_FEATURES: usize = 256;

/// `sigma_map`: sinusoidal features of sigma (256) → Linear(256, C) → SiLU → Linear(C, C).
#[derive(Clone, Debug)]
pub struct TimestepEmbedder {
    pub fc1: Linear,
    pub fc2: Linear,
}

impl TimestepEmbedder {
    pub fn new(store: &mut ParamStore, cond_dim: usize, rng: &mut Rng) -> Result<Self> {
        let fc1 = Linear::new(store, "sigma_map.mlp.0", TIME_FEATURES, cond_dim, true, rng)?;
        let fc2 = Linear::new(store, "sigma_map.mlp.2", cond_dim, cond_dim, true, rng)?;
        Ok(TimestepEmbedder { fc1, fc2 })
    }
    /// The conditioning vector c = SiLU(sigma_map(sigma)) for each sigma: [n, C].
    pub fn condition(&self, p: &Bound, sigma: &[f64]) -> Result<Var> {
        let w = p.get(&self.fc1.weight)?.value();
        let feats = Var::constant(sinusoidal_features(
            sigma,
            TIME_FEATURES,
            w.dtype(),
            w.device(),
        )?);
        self.fc2
            .forward(p, &self.fc1.forward(p, &feats)?.silu()?)?
            .silu()
    }
}

/// adaLN: a zero-initialised Linear(C, n·D) whose output is cut into n modulation vectors.
#[derive(Clone, Debug)]
pub struct AdaLn {
    pub linear: Linear,
    pub chunks: usize,
}

impl AdaLn {
    /// Names `{name}.weight` and `{name}.bias` (`…adaLN_modulation.{weight,bias}` in SPEC §4).
    pub fn new(
        store: &mut ParamStore,
        name: &str,
        cond_dim: usize,
        dim: usize,
        chunks: usize,
        rng: &mut Rng,
    ) -> Result<Self> {
        Ok(AdaLn {
            linear: Linear::zeros(store, name, cond_dim, chunks * dim, true, rng)?,
            chunks,
        })
    }
    /// c [B, C] → `chunks` vectors of [B, 1, D], in order (shift, scale, gate, …).
    pub fn forward(&self, p: &Bound, c: &Var) -> Result<Vec<Var>> {
        let m = self.linear.forward(p, c)?.unsqueeze(1)?; // [B, 1, n·D]
        let d = self.linear.out_dim / self.chunks;
        (0..self.chunks).map(|i| m.narrow(-1, i * d, d)).collect()
    }
}

/// x · (1 + scale) + shift, with shift and scale [B, 1, D] broadcast over tokens.
pub fn modulate(x: &Var, shift: &Var, scale: &Var) -> Result<Var> {
    x.mul(&scale.add_scalar(1.0)?)?.add(shift)
}
