//! The transformer blocks: the DiT block (PGM encoder and the MDLM baseline), the PGM decoder's
//! cross-attention block, and the final layer (SPEC §3–4).

use crate::attend::{merge_heads, split_heads, AttentionPattern};
use crate::config::ModelConfig;
use autograd::Var;
use nn::conditioning::AdaLn;
use nn::layers::{gated_residual, LayerNorm, Linear, Mlp};
use nn::{Bound, ParamStore};
use tensor::{Result, Rng};

/// One DiT block: adaLN-modulated self-attention and MLP, each a gated residual branch.
/// Names under `{name}`: norm1, norm2, attn_qkv, attn_out, mlp.{0,2}, adaLN_modulation.
pub struct DitBlock {
    pub(crate) norm1: LayerNorm,
    pub(crate) norm2: LayerNorm,
    pub(crate) attn_qkv: Linear,
    pub(crate) attn_out: Linear,
    pub(crate) mlp: Mlp,
    pub(crate) ada_ln: AdaLn,
    pub(crate) heads: usize,
    pub(crate) dropout: f64,
}

impl DitBlock {
    pub fn new(
        store: &mut ParamStore,
        name: &str,
        cfg: &ModelConfig,
        rng: &mut Rng,
    ) -> Result<Self> {
        let d = cfg.hidden_size;
        Ok(DitBlock {
            norm1: LayerNorm::new(store, &format!("{name}.norm1"), d, false, rng)?,
            norm2: LayerNorm::new(store, &format!("{name}.norm2"), d, false, rng)?,
            attn_qkv: Linear::new(store, &format!("{name}.attn_qkv"), d, 3 * d, false, rng)?,
            attn_out: Linear::new(store, &format!("{name}.attn_out"), d, d, false, rng)?,
            mlp: Mlp::new(store, &format!("{name}.mlp"), d, cfg.mlp_ratio * d, rng)?,
            ada_ln: AdaLn::new(
                store,
                &format!("{name}.adaLN_modulation"),
                cfg.cond_dim,
                d,
                6,
                rng,
            )?,
            heads: cfg.n_heads,
            dropout: cfg.dropout,
        })
    }

    /// h [B, N, D], conditioning c [1 or B, C] → [B, N, D]. `rng` enables dropout (training).
    pub fn forward(
        &self,
        p: &Bound,
        h: &Var,
        c: &Var,
        pattern: &AttentionPattern,
        mut rng: Option<&mut Rng>,
    ) -> Result<Var> {
        let m = self.ada_ln.forward(p, c)?; // shift_a, scale_a, gate_a, shift_m, scale_m, gate_m
        let a = self.norm1.forward_modulated(p, h, &m[0], &m[1])?;
        let qkv = split_heads(&self.attn_qkv.forward(p, &a)?, 3, self.heads)?;
        let attn = merge_heads(&pattern.attend(&qkv[0], &qkv[1], &qkv[2])?)?;
        let branch = self.attn_out.forward(p, &attn)?;
        let h = gated_residual(h, &m[2], &branch, self.dropout, rng.as_deref_mut())?;
        let a = self.norm2.forward_modulated(p, &h, &m[3], &m[4])?;
        gated_residual(&h, &m[5], &self.mlp.forward(p, &a)?, self.dropout, rng)
    }
}

/// One PGM decoder block: cross-attention from the query stream to the encoder output (no
/// self-attention), then an MLP; adaLN modulates the query stream only.
/// Names under `{name}`: q_norm1, kv_norm1, norm2, attn_q, attn_kv, attn_out, mlp, adaLN_modulation.
pub struct DecoderBlock {
    pub(crate) q_norm1: LayerNorm,
    pub(crate) kv_norm1: LayerNorm,
    pub(crate) norm2: LayerNorm,
    pub(crate) attn_q: Linear,
    pub(crate) attn_kv: Linear,
    pub(crate) attn_out: Linear,
    pub(crate) mlp: Mlp,
    pub(crate) ada_ln: AdaLn,
    pub(crate) heads: usize,
    pub(crate) dropout: f64,
}

impl DecoderBlock {
    pub fn new(
        store: &mut ParamStore,
        name: &str,
        cfg: &ModelConfig,
        rng: &mut Rng,
    ) -> Result<Self> {
        let d = cfg.hidden_size;
        Ok(DecoderBlock {
            q_norm1: LayerNorm::new(store, &format!("{name}.q_norm1"), d, false, rng)?,
            kv_norm1: LayerNorm::new(store, &format!("{name}.kv_norm1"), d, false, rng)?,
            norm2: LayerNorm::new(store, &format!("{name}.norm2"), d, false, rng)?,
            attn_q: Linear::new(store, &format!("{name}.attn_q"), d, d, false, rng)?,
            attn_kv: Linear::new(store, &format!("{name}.attn_kv"), d, 2 * d, false, rng)?,
            attn_out: Linear::new(store, &format!("{name}.attn_out"), d, d, false, rng)?,
            mlp: Mlp::new(store, &format!("{name}.mlp"), d, cfg.mlp_ratio * d, rng)?,
            ada_ln: AdaLn::new(
                store,
                &format!("{name}.adaLN_modulation"),
                cfg.cond_dim,
                d,
                6,
                rng,
            )?,
            heads: cfg.n_heads,
            dropout: cfg.dropout,
        })
    }

    /// y [B, M, D] (queries), h [B, N, D] (encoder output) → [B, M, D].
    pub fn forward(
        &self,
        p: &Bound,
        y: &Var,
        h: &Var,
        c: &Var,
        pattern: &AttentionPattern,
        mut rng: Option<&mut Rng>,
    ) -> Result<Var> {
        let m = self.ada_ln.forward(p, c)?;
        let a = self.q_norm1.forward_modulated(p, y, &m[0], &m[1])?;
        let q = split_heads(&self.attn_q.forward(p, &a)?, 1, self.heads)?.remove(0);
        let kv = split_heads(
            &self.attn_kv.forward(p, &self.kv_norm1.forward(p, h)?)?,
            2,
            self.heads,
        )?;
        let attn = merge_heads(&pattern.attend(&q, &kv[0], &kv[1])?)?;
        let branch = self.attn_out.forward(p, &attn)?;
        let y = gated_residual(y, &m[2], &branch, self.dropout, rng.as_deref_mut())?;
        let a = self.norm2.forward_modulated(p, &y, &m[3], &m[4])?;
        gated_residual(&y, &m[5], &self.mlp.forward(p, &a)?, self.dropout, rng)
    }
}

/// LayerNorm → modulate (shift, scale from a zero-init adaLN) → Linear(D, V), zero-init.
/// Names: output_layer.{norm_final, linear, adaLN_modulation}.
pub struct FinalLayer {
    pub(crate) norm: LayerNorm,
    pub(crate) linear: Linear,
    pub(crate) ada_ln: AdaLn,
}

impl FinalLayer {
    pub fn new(store: &mut ParamStore, cfg: &ModelConfig, rng: &mut Rng) -> Result<Self> {
        let d = cfg.hidden_size;
        Ok(FinalLayer {
            norm: LayerNorm::new(store, "output_layer.norm_final", d, false, rng)?,
            linear: Linear::zeros(store, "output_layer.linear", d, cfg.vocab_size, true, rng)?,
            ada_ln: AdaLn::new(
                store,
                "output_layer.adaLN_modulation",
                cfg.cond_dim,
                d,
                2,
                rng,
            )?,
        })
    }
    /// x [B, N, D] → logits [B, N, V].
    pub fn forward(&self, p: &Bound, x: &Var, c: &Var) -> Result<Var> {
        let m = self.ada_ln.forward(p, c)?;
        self.linear
            .forward(p, &self.norm.forward_modulated(p, x, &m[0], &m[1])?)
    }
}
