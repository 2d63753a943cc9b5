//! The basic layers: Linear, LayerNorm, Embedding, the GELU MLP and dropout. Initialisation
//! follows PyTorch's defaults (SPEC §3) unless a constructor says otherwise.

use crate::params::{Bound, Init, Param, ParamStore};
use autograd::Var;
use tensor::{Result, Rng, Tensor};

/// y = x · Wᵀ (+ b), with W stored [out, in] as in PyTorch checkpoints.
#[derive(Clone, Debug)]
pub struct Linear {
    pub weight: Param,
    pub bias: Option<Param>,
    pub in_dim: usize,
    pub out_dim: usize,
}

impl Linear {
    /// PyTorch's default init: weight and bias U(−1/√in, 1/√in). Names `{name}.weight`, `{name}.bias`.
    pub fn new(
        store: &mut ParamStore,
        name: &str,
        in_dim: usize,
        out_dim: usize,
        bias: bool,
        rng: &mut Rng,
    ) -> Result<Self> {
        let bound = 1.0 / (in_dim as f64).sqrt();
        Linear::with_init(
            store,
            name,
            in_dim,
            out_dim,
            bias,
            Init::Uniform(bound),
            rng,
        )
    }
    /// Weight and bias start at zero (adaLN modulations, the output projection).
    pub fn zeros(
        store: &mut ParamStore,
        name: &str,
        in_dim: usize,
        out_dim: usize,
        bias: bool,
        rng: &mut Rng,
    ) -> Result<Self> {
        Linear::with_init(store, name, in_dim, out_dim, bias, Init::Zeros, rng)
    }
    fn with_init(
        store: &mut ParamStore,
        name: &str,
        in_dim: usize,
        out_dim: usize,
        bias: bool,
        init: Init,
        rng: &mut Rng,
    ) -> Result<Self> {
        let weight = store.add(format!("{name}.weight"), [out_dim, in_dim], init, rng)?;
        let bias = bias
            .then(|| store.add(format!("{name}.bias"), [out_dim], init, rng))
            .transpose()?;
        Ok(Linear {
            weight,
            bias,
            in_dim,
            out_dim,
        })
    }
    /// x [.., in] → [.., out]. The transposed weight is a view; the GEMM reads it by strides
    /// and accumulates onto the bias.
    pub fn forward(&self, p: &Bound, x: &Var) -> Result<Var> {
        let w = p.get(&self.weight)?.t()?;
        match &self.bias {
            Some(b) => x.matmul_add(&w, p.get(b)?),
            None => x.matmul(&w),
        }
    }
}

/// Layer norm over the last dim (eps 1e-5): weight init 1, optional bias init 0.
#[derive(Clone, Debug)]
pub struct LayerNorm {
    pub weight: Param,
    pub bias: Option<Param>,
}

pub const LAYER_NORM_EPS: f64 = 1e-5;

impl LayerNorm {
    pub fn new(
        store: &mut ParamStore,
        name: &str,
        dim: usize,
        bias: bool,
        rng: &mut Rng,
    ) -> Result<Self> {
        let weight = store.add(format!("{name}.weight"), [dim], Init::Ones, rng)?;
        let bias = bias
            .then(|| store.add(format!("{name}.bias"), [dim], Init::Zeros, rng))
            .transpose()?;
        Ok(LayerNorm { weight, bias })
    }
    /// x [.., D] → [.., D].
    pub fn forward(&self, p: &Bound, x: &Var) -> Result<Var> {
        let bias = self.bias.as_ref().map(|b| p.get(b)).transpose()?;
        x.layer_norm(p.get(&self.weight)?, bias, LAYER_NORM_EPS)
    }
    /// adaLN's `modulate(self.forward(x), shift, scale)` for x [B, N, D] and shift, scale
    /// [B or 1, 1, D]: one fused op when the norm has no bias (as in the DiT blocks), else the
    /// two steps.
    pub fn forward_modulated(&self, p: &Bound, x: &Var, shift: &Var, scale: &Var) -> Result<Var> {
        match self.bias {
            None => x.layer_norm_modulate(p.get(&self.weight)?, shift, scale, LAYER_NORM_EPS),
            Some(_) => crate::conditioning::modulate(&self.forward(p, x)?, shift, scale),
        }
    }
}

/// A [V, D] lookup table, initialised U(−1/√D, 1/√D).
#[derive(Clone, Debug)]
pub struct Embedding {
    pub table: Param,
}

impl Embedding {
    /// `name` is the full parameter name (e.g. `vocab_embed.embedding`).
    pub fn new(
        store: &mut ParamStore,
        name: &str,
        vocab: usize,
        dim: usize,
        rng: &mut Rng,
    ) -> Result<Self> {
        let table = store.add(
            name,
            [vocab, dim],
            Init::Uniform(1.0 / (dim as f64).sqrt()),
            rng,
        )?;
        Ok(Embedding { table })
    }
    /// ids (U32, any shape) → [ids.., D]. An id outside the table is an index error.
    pub fn forward(&self, p: &Bound, ids: &Tensor) -> Result<Var> {
        p.get(&self.table)?.embedding(ids)
    }
}

/// Linear(D, hidden) → GELU (tanh approximation) → Linear(hidden, D), with biases.
/// Names `{name}.0.*` and `{name}.2.*` as in the reference's nn.Sequential.
#[derive(Clone, Debug)]
pub struct Mlp {
    pub fc1: Linear,
    pub fc2: Linear,
}

impl Mlp {
    pub fn new(
        store: &mut ParamStore,
        name: &str,
        dim: usize,
        hidden: usize,
        rng: &mut Rng,
    ) -> Result<Self> {
        let fc1 = Linear::new(store, &format!("{name}.0"), dim, hidden, true, rng)?;
        let fc2 = Linear::new(store, &format!("{name}.2"), hidden, dim, true, rng)?;
        Ok(Mlp { fc1, fc2 })
    }
    pub fn forward(&self, p: &Bound, x: &Var) -> Result<Var> {
        self.fc2.forward(p, &self.fc1.forward(p, x)?.gelu_tanh()?)
    }
}

/// Inverted dropout: zeroes each element with probability `p` and scales the rest by
/// 1/(1 − p). With `rng` None (evaluation) or p = 0 it is the identity. The mask is drawn on
/// x's device from counter-based noise (`Tensor::dropout_mask`) with one seed taken from `rng`,
/// so a run gives the same masks on every device and draws nothing on the host.
pub fn dropout(x: &Var, p: f64, rng: Option<&mut Rng>) -> Result<Var> {
    let Some(rng) = rng.filter(|_| p > 0.0) else {
        return Ok(x.clone());
    };
    // Drawn where x lives, from one seed of `rng`: the same mask on the CPU and on a GPU.
    let (dtype, device) = (x.value().dtype(), x.value().device());
    let mask = Tensor::dropout_mask(x.shape().clone(), p, rng.next_u64(), dtype, device)?;
    x.mul(&Var::constant(mask))
}

/// A DiT block's residual branch, h + gate ⊙ dropout(branch), as one fused op
/// (`Var::gated_residual`): h and branch [B, N, D], gate [B or 1, 1, D]. Dropout as in
/// [`dropout`]: only with `rng` (training) and p > 0, with one seed taken from `rng`.
pub fn gated_residual(
    h: &Var,
    gate: &Var,
    branch: &Var,
    p: f64,
    rng: Option<&mut Rng>,
) -> Result<Var> {
    let dropout = rng.filter(|_| p > 0.0).map(|rng| (p, rng.next_u64()));
    h.gated_residual(gate, branch, dropout)
}
