//! The networks prepared for sampling: everything that is the same at every step is computed
//! once per sampling call.
//!
//! PGM and MDLM are not time conditioned (sigma is always 0, SPEC §3), so the conditioning c
//! and every adaLN modulation are constants, and they fold into the weights:
//!
//! - modulate(LN(x; w, b), shift, scale) = LN(x; w·(1 + scale), b·(1 + scale) + shift): one
//!   LayerNorm with a bias instead of a LayerNorm, a multiply and an add;
//! - gate ⊙ (x·Wᵀ + b) = x·(gate ⊙ W)ᵀ + gate ⊙ b, with gate scaling W's output rows: the
//!   gated residual branch becomes a plain Linear;
//! - the final layer's MASK logit is −∞ whatever the input: it goes into the output bias, so
//!   no masked fill runs per step.
//!
//! Besides: the RoPE tables of every position ([`RopeTable`]) and, in the default GroupSwap
//! modes, the processed query of every position ([`GroupSwap::query_table`](crate::group_swap::GroupSwap::query_table)) are computed
//! once and looked up. What is left per step is the work that depends on the tokens.
//!
//! Activations are fresh tensors per op (the tensor API has no output buffers to reuse); the
//! `sample` binary keeps freed blocks for reuse (glibc's heap below 32 MiB, `cli::alloc`;
//! `tensor::cpu::BlockCache` from there on), so a step reuses the memory of the step before
//! without page faults.

use crate::attend::{merge_heads, split_heads, AttentionPattern, RopeTable};
use crate::blocks::{DecoderBlock, DitBlock, FinalLayer};
use crate::config::ModelConfig;
use crate::mdlm_net::MdlmNetwork;
use crate::output::widened;
use crate::pgm_net::{InferenceInput, PgmNetwork};
use autograd::Var;
use nn::layers::{LayerNorm, Linear, LAYER_NORM_EPS};
use nn::Bound;
use tensor::{DType, GroupRule, Result, Tensor};

/// A LayerNorm whose constant modulation is folded in: y = LN(x)·weight + bias.
struct Norm {
    weight: Var,
    bias: Option<Var>,
}

impl Norm {
    /// The plain norm (no modulation).
    fn plain(p: &Bound, norm: &LayerNorm) -> Result<Norm> {
        Ok(Norm {
            weight: p.get(&norm.weight)?.clone(),
            bias: norm.bias.as_ref().map(|b| p.get(b).cloned()).transpose()?,
        })
    }
    /// modulate(LN(x), shift, scale) as one norm; shift and scale are [D].
    fn modulated(p: &Bound, norm: &LayerNorm, shift: &Var, scale: &Var) -> Result<Norm> {
        let one_plus = scale.add_scalar(1.0)?;
        let plain = Norm::plain(p, norm)?;
        let bias = match plain.bias {
            Some(b) => b.mul(&one_plus)?.add(shift)?,
            None => shift.clone(),
        };
        Ok(Norm {
            weight: plain.weight.mul(&one_plus)?,
            bias: Some(bias),
        })
    }
    fn forward(&self, x: &Var) -> Result<Var> {
        x.layer_norm(&self.weight, self.bias.as_ref(), LAYER_NORM_EPS)
    }
}

/// y = x·Wᵀ + b with W [out, in], possibly with a gate folded into its output rows.
struct Affine {
    weight: Var,
    bias: Option<Var>,
}

impl Affine {
    fn plain(p: &Bound, l: &Linear) -> Result<Affine> {
        Ok(Affine {
            weight: p.get(&l.weight)?.clone(),
            bias: l.bias.as_ref().map(|b| p.get(b).cloned()).transpose()?,
        })
    }
    /// gate ⊙ linear(x) as one linear; gate is [out].
    fn gated(p: &Bound, l: &Linear, gate: &Var) -> Result<Affine> {
        let plain = Affine::plain(p, l)?;
        Ok(Affine {
            weight: plain.weight.mul(&gate.unsqueeze(1)?)?,
            bias: plain.bias.map(|b| b.mul(gate)).transpose()?,
        })
    }
    fn forward(&self, x: &Var) -> Result<Var> {
        let w = self.weight.t()?;
        match &self.bias {
            Some(b) => x.matmul_add(&w, b),
            None => x.matmul(&w),
        }
    }
    /// residual + x·Wᵀ + b: the GEMM accumulates onto the residual stream (a residual branch
    /// with its gate folded in).
    fn forward_onto(&self, residual: &Var, x: &Var) -> Result<Var> {
        let start = match &self.bias {
            Some(b) => residual.add(b)?,
            None => residual.clone(),
        };
        x.matmul_add(&self.weight.t()?, &start)
    }
}

/// The modulation vectors of an adaLN for the constant c [1, C], each [D].
fn modulations(p: &Bound, ada_ln: &nn::conditioning::AdaLn, c: &Var) -> Result<Vec<Var>> {
    ada_ln
        .forward(p, c)?
        .iter()
        .map(|m| m.squeeze(0)?.squeeze(0))
        .collect()
}

/// A DiT block with its modulations folded in (same output as `DitBlock::forward`).
struct FoldedDit {
    norm1: Norm,
    qkv: Affine,
    out: Affine,
    norm2: Norm,
    fc1: Affine,
    fc2: Affine,
    heads: usize,
}

impl FoldedDit {
    fn new(p: &Bound, b: &DitBlock, c: &Var) -> Result<Self> {
        let m = modulations(p, &b.ada_ln, c)?; // shift_a, scale_a, gate_a, shift_m, scale_m, gate_m
        Ok(FoldedDit {
            norm1: Norm::modulated(p, &b.norm1, &m[0], &m[1])?,
            qkv: Affine::plain(p, &b.attn_qkv)?,
            out: Affine::gated(p, &b.attn_out, &m[2])?,
            norm2: Norm::modulated(p, &b.norm2, &m[3], &m[4])?,
            fc1: Affine::plain(p, &b.mlp.fc1)?,
            fc2: Affine::gated(p, &b.mlp.fc2, &m[5])?,
            heads: b.heads,
        })
    }
    /// h [B, N, D] → [B, N, D].
    fn forward(&self, h: &Var, pattern: &AttentionPattern) -> Result<Var> {
        let qkv = split_heads(&self.qkv.forward(&self.norm1.forward(h)?)?, 3, self.heads)?;
        let attn = merge_heads(&pattern.attend(&qkv[0], &qkv[1], &qkv[2])?)?;
        let h = self.out.forward_onto(h, &attn)?;
        let hidden = self.fc1.forward(&self.norm2.forward(&h)?)?.gelu_tanh()?;
        self.fc2.forward_onto(&h, &hidden)
    }
}

/// A PGM decoder block with its modulations folded in.
struct FoldedDecoder {
    q_norm: Norm,
    kv_norm: Norm,
    q: Affine,
    kv: Affine,
    out: Affine,
    norm2: Norm,
    fc1: Affine,
    fc2: Affine,
    heads: usize,
}

impl FoldedDecoder {
    fn new(p: &Bound, b: &DecoderBlock, c: &Var) -> Result<Self> {
        let m = modulations(p, &b.ada_ln, c)?;
        Ok(FoldedDecoder {
            q_norm: Norm::modulated(p, &b.q_norm1, &m[0], &m[1])?,
            kv_norm: Norm::plain(p, &b.kv_norm1)?,
            q: Affine::plain(p, &b.attn_q)?,
            kv: Affine::plain(p, &b.attn_kv)?,
            out: Affine::gated(p, &b.attn_out, &m[2])?,
            norm2: Norm::modulated(p, &b.norm2, &m[3], &m[4])?,
            fc1: Affine::plain(p, &b.mlp.fc1)?,
            fc2: Affine::gated(p, &b.mlp.fc2, &m[5])?,
            heads: b.heads,
        })
    }
    /// y [B, M, D] queries, h [B, N, D] encoder output → [B, M, D].
    fn forward(&self, y: &Var, h: &Var, pattern: &AttentionPattern) -> Result<Var> {
        let q = split_heads(&self.q.forward(&self.q_norm.forward(y)?)?, 1, self.heads)?.remove(0);
        let kv = split_heads(&self.kv.forward(&self.kv_norm.forward(h)?)?, 2, self.heads)?;
        let attn = merge_heads(&pattern.attend(&q, &kv[0], &kv[1])?)?;
        let y = self.out.forward_onto(y, &attn)?;
        let hidden = self.fc1.forward(&self.norm2.forward(&y)?)?.gelu_tanh()?;
        self.fc2.forward_onto(&y, &hidden)
    }
}

/// The final layer with its modulation folded in and the MASK logit pinned to −∞ through the
/// bias; its output goes straight into log_softmax.
struct FoldedOutput {
    norm: Norm,
    linear: Affine,
}

impl FoldedOutput {
    fn new(p: &Bound, f: &FinalLayer, c: &Var, mask_id: u32) -> Result<Self> {
        let m = modulations(p, &f.ada_ln, c)?;
        let linear = Affine::plain(p, &f.linear)?;
        let weight = linear.weight.value();
        let bias = match &linear.bias {
            Some(b) => b.value().clone(),
            None => Tensor::zeros([f.linear.out_dim], weight.dtype(), weight.device())?,
        };
        let mut is_mask = vec![0u8; f.linear.out_dim];
        is_mask[mask_id as usize] = 1;
        let is_mask = Tensor::from_vec(is_mask, [f.linear.out_dim], weight.device())?;
        Ok(FoldedOutput {
            norm: Norm::modulated(p, &f.norm, &m[0], &m[1])?,
            linear: Affine {
                weight: linear.weight,
                bias: Some(Var::constant(
                    bias.masked_fill(&is_mask, f64::NEG_INFINITY)?,
                )),
            },
        })
    }
    /// x [.., D] → log-probabilities [.., V] (MASK at −∞), in f32 for half-precision x.
    fn log_probs(&self, x: &Var) -> Result<Tensor> {
        let logits = self.linear.forward(&self.norm.forward(x)?)?;
        Ok(widened(&logits)?.log_softmax()?.value().clone())
    }
}

/// A PGM ready to sample: `forward` gives the same log-probabilities as
/// `PgmNetwork::forward_inference`, recomputing nothing constant.
pub struct FoldedPgm<'a> {
    net: &'a PgmNetwork,
    p: &'a Bound,
    embed: Var,
    encoder: Vec<FoldedDit>,
    /// Processed GroupSwap queries of every position [L, D], when they depend on it only.
    query_table: Option<Var>,
    decoder: Vec<FoldedDecoder>,
    output: FoldedOutput,
    rope: RopeTable,
}

impl<'a> FoldedPgm<'a> {
    /// Folds the network's constants; `p` must be bound without a tape.
    pub fn new(net: &'a PgmNetwork, p: &'a Bound) -> Result<Self> {
        let cfg = &net.config;
        let embed = p.get(&net.embed.table)?.clone();
        let (dtype, device) = (embed.value().dtype(), embed.value().device());
        let c = net.sigma_map.condition(p, &[0.0])?; // [1, C]
        Ok(FoldedPgm {
            net,
            p,
            encoder: (net.encoder.iter())
                .map(|b| FoldedDit::new(p, b, &c))
                .collect::<Result<_>>()?,
            query_table: net.group_swap.query_table(p, cfg.seq_len, dtype)?,
            decoder: (net.decoder.iter())
                .map(|b| FoldedDecoder::new(p, b, &c))
                .collect::<Result<_>>()?,
            output: FoldedOutput::new(p, &net.output, &c, cfg.mask_id())?,
            rope: RopeTable::new(cfg.seq_len, cfg.head_dim(), dtype, device)?,
            embed,
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.net.config
    }

    /// The clean set and query positions → log-probabilities [B, M, V] at the queries (the
    /// rows of pad queries hold values to ignore). Positions must be below L.
    pub fn forward(&self, input: &InferenceInput) -> Result<Tensor> {
        let (clean_groups, query_groups) = input.groups("folded pgm")?;
        // The inputs are built on the host; they follow the weights to their device.
        let device = self.embed.value().device();
        let (clean_groups, query_groups) = (
            clean_groups.to_device(device)?,
            query_groups.to_device(device)?,
        );
        let (tokens, query_positions) = (
            input.tokens.to_device(device)?,
            input.query_positions.to_device(device)?,
        );
        let (hd, how) = (self.net.config.head_dim(), self.net.config.attention);
        let k_rope = self.rope.lookup(input.positions)?;
        let q_rope = self.rope.lookup(input.query_positions)?;
        let same = GroupRule::Same;
        let enc = AttentionPattern::from_tables(
            k_rope.clone(),
            k_rope.clone(),
            &clean_groups,
            &clean_groups,
            same,
            hd,
            how,
        )?;
        let cross = AttentionPattern::from_tables(
            q_rope,
            k_rope,
            &query_groups,
            &clean_groups,
            GroupRule::Different,
            hd,
            how,
        )?;
        let mut h = self.embed.embedding(&tokens)?;
        for block in &self.encoder {
            h = block.forward(&h, &enc)?;
        }
        let gs = &self.net.group_swap;
        let mut y = match &self.query_table {
            Some(table) => gs.attend(self.p, &h, &table.embedding(&query_positions)?, &cross)?,
            None => gs.forward(
                self.p,
                &h,
                &query_positions,
                &query_groups,
                &clean_groups,
                &cross,
            )?,
        };
        for block in &self.decoder {
            y = block.forward(&y, &h, &cross)?;
        }
        self.output.log_probs(&y)
    }
}

/// An MDLM ready to sample: the trunk over all L positions, and the output layer applied only
/// at the positions a step draws.
pub struct FoldedMdlm<'a> {
    net: &'a MdlmNetwork,
    embed: Var,
    blocks: Vec<FoldedDit>,
    output: FoldedOutput,
    rope: RopeTable,
    dtype: DType,
}

impl<'a> FoldedMdlm<'a> {
    /// Folds the network's constants; `p` must be bound without a tape.
    pub fn new(net: &'a MdlmNetwork, p: &'a Bound) -> Result<Self> {
        let cfg = &net.config;
        let embed = p.get(&net.embed.table)?.clone();
        let (dtype, device) = (embed.value().dtype(), embed.value().device());
        let c = net.sigma_map.condition(p, &[0.0])?;
        Ok(FoldedMdlm {
            net,
            blocks: (net.blocks.iter())
                .map(|b| FoldedDit::new(p, b, &c))
                .collect::<Result<_>>()?,
            output: FoldedOutput::new(p, &net.output, &c, cfg.mask_id())?,
            rope: RopeTable::new(cfg.seq_len, cfg.head_dim(), dtype, device)?,
            embed,
            dtype,
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.net.config
    }

    /// x_t [B, L] (U32, MASK where masked) → the last block's output [B·L, D], the input of
    /// the output layer.
    pub fn trunk(&self, x_t: &Tensor) -> Result<Tensor> {
        let (b, l) = (x_t.dims()[0], x_t.dims()[1]);
        let device = self.embed.value().device();
        let pos = Tensor::arange(l, device)?
            .unsqueeze(0)?
            .broadcast_as([b, l])?
            .contiguous()?;
        let rope = self.rope.lookup(&pos)?;
        let one_group = Tensor::zeros([b, l], DType::U8, device)?;
        // Full attention: one group, through the gathered kernel (no mask at all).
        let pattern = AttentionPattern::from_tables(
            rope.clone(),
            rope,
            &one_group,
            &one_group,
            GroupRule::Same,
            self.net.config.head_dim(),
            crate::config::AttentionImpl::Gathered,
        )?;
        let mut h = self.embed.embedding(&x_t.to_device(device)?)?;
        for block in &self.blocks {
            h = block.forward(&h, &pattern)?;
        }
        let d = h.dims()[2];
        h.value().reshape([b * l, d])
    }

    /// Log-probabilities [K, V] (MASK at −∞) at rows `rows` (indices into the trunk's B·L
    /// rows), from the trunk output [B·L, D]. MDLM's carry-over is not applied: samplers ask
    /// only for masked positions.
    pub fn log_probs_at(&self, trunk: &Tensor, rows: &[u32]) -> Result<Tensor> {
        let ids = Tensor::from_vec(rows.to_vec(), [rows.len()], trunk.device())?;
        let x = Var::constant(trunk.index_select(0, &ids)?.to_dtype(self.dtype)?);
        self.output.log_probs(&x)
    }
}
