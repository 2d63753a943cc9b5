//! Attention for the PGM encoder, GroupSwap and decoder (SPEC §3–4), and RoPE at explicit
//! positions.
//!
//! Layouts: queries, keys and values are [B, N, H, d] — a Linear's [B, N, H·d] output reshaped
//! to heads, no copy — and every attention output is contiguous [B, Nq, H, d], so reshaping it
//! back to [B, Nq, H·d] is free.
//!
//! Who may attend to whom is given by group ids (U8 tensors, [`PAD_GROUP`] = 255 for pads) and a
//! [`GroupRule`]: key j is allowed for query i iff neither is a pad and (`Same`) their groups
//! are equal or (`Different`) they differ.
//!
//! | use | q groups | k groups | rule |
//! |---|---|---|---|
//! | training encoder | g ∈ {0, 1} | the same g | `Same` |
//! | training GroupSwap / decoder | g | the same g | `Different` |
//! | inference encoder | clean 0, pads 255 | the same | `Same` |
//! | inference GroupSwap / decoder | queries 1 | clean 0, pads 255 | `Different` |
//!
//! [`partition_attention`] is the one the layers call: the fused, gathered op that computes only
//! the allowed blocks. [`masked_attention`] with [`partition_mask`] is the dense reference
//! (all L² scores, then a mask) it is tested and benchmarked against.

use autograd::Var;
use tensor::op::CmpOp;
use tensor::{bail_shape, DType, Result, Tensor};

pub use tensor::{GroupRule, PAD_GROUP};

/// The RoPE base of the GPT-NeoX layout the reference uses.
pub const ROPE_BASE: f64 = 10_000.0;

/// The RoPE tables for `positions` (U32 [B, N], each token's position in the final sequence):
/// `(cos, sin)`, each [B, N, head_dim / 2] for x of `dtype` (F64 tables for F64, F32
/// otherwise), base [`ROPE_BASE`].
pub fn rope_tables(positions: &Tensor, head_dim: usize, dtype: DType) -> Result<(Tensor, Tensor)> {
    Tensor::rope_tables(positions, head_dim, ROPE_BASE, dtype)
}

/// RoPE of x [B, N, H, d] (q or k, any strides) with tables [B, N, d/2] from [`rope_tables`];
/// output contiguous [B, N, H, d].
pub fn rope(x: &Var, cos: &Tensor, sin: &Tensor) -> Result<Var> {
    x.rope(cos, sin)
}

/// The allowed-pairs mask of a group rule: U8 [B, Nq, Nk], 1 where query i may attend to key j,
/// from `q_groups` [B, Nq] and `k_groups` [B, Nk] (U8).
pub fn partition_mask(q_groups: &Tensor, k_groups: &Tensor, rule: GroupRule) -> Result<Tensor> {
    let name = "partition_mask";
    let (&[b, nq], &[b2, nk]) = (q_groups.dims(), k_groups.dims()) else {
        bail_shape!(
            name,
            "groups must be [B, Nq] and [B, Nk], got {:?} and {:?}",
            q_groups.shape(),
            k_groups.shape()
        );
    };
    if b != b2 {
        bail_shape!(
            name,
            "batch sizes differ: {:?} and {:?}",
            q_groups.shape(),
            k_groups.shape()
        );
    }
    let (qg, kg) = (q_groups.to_vec::<u8>()?, k_groups.to_vec::<u8>()?);
    let mut mask = Vec::with_capacity(b * nq * nk);
    for bi in 0..b {
        for &g in &qg[bi * nq..(bi + 1) * nq] {
            mask.extend(
                kg[bi * nk..(bi + 1) * nk]
                    .iter()
                    .map(|&h| rule.allows(g, h) as u8),
            );
        }
    }
    Tensor::from_vec(mask, [b, nq, nk], q_groups.device())
}

/// Dense masked attention, the reference: q [B, Nq, H, d], k and v [B, Nk, H, d] (any
/// strides), `mask` U8 [B, Nq, Nk] (nonzero = may attend) shared by every head. Computes all
/// Nq·Nk scores per head, sets the disallowed ones to −∞, softmax (a row with no allowed key
/// gives zeros, and zero gradient), times v. Output contiguous [B, Nq, H, d].
pub fn masked_attention(q: &Var, k: &Var, v: &Var, mask: &Tensor, scale: f64) -> Result<Var> {
    let name = "masked_attention";
    let (&[b, nq, h, d], &[_, nk, _, _]) = (q.dims(), k.dims()) else {
        bail_shape!(
            name,
            "q and k must be [B, N, H, d], got {:?} and {:?}",
            q.shape(),
            k.shape()
        );
    };
    if k.dims() != [b, nk, h, d] || v.dims() != k.dims() || mask.dims() != [b, nq, nk] {
        bail_shape!(
            name,
            "q {:?}, k {:?}, v {:?} need a mask [{b}, {nq}, {nk}], got {:?}",
            q.shape(),
            k.shape(),
            v.shape(),
            mask.shape()
        );
    }
    let qh = q.permute(&[0, 2, 1, 3])?; // [B, H, Nq, d]
    let kt = k.permute(&[0, 2, 3, 1])?; // [B, H, d, Nk]
    let vh = v.permute(&[0, 2, 1, 3])?; // [B, H, Nk, d]
    let scores = qh.matmul(&kt)?.mul_scalar(scale)?; // [B, H, Nq, Nk]

    // masked_fill fills where its mask is nonzero: fill the disallowed pairs.
    let zero = Tensor::zeros((), DType::U8, mask.device())?;
    let blocked = mask.cmp(&zero, CmpOp::Eq)?.unsqueeze(1)?; // [B, 1, Nq, Nk]
    let probs = scores.masked_fill(&blocked, f64::NEG_INFINITY)?.softmax()?;
    probs.matmul(&vh)?.permute(&[0, 2, 1, 3])?.contiguous()
}

/// Partition attention, the fused gathered op the layers use: q [B, Nq, H, d], k and v
/// [B, Nk, H, d] (any strides), groups `q_groups` [B, Nq] and `k_groups` [B, Nk] (U8, 255 =
/// pad), output contiguous [B, Nq, H, d]. Equal to
/// `masked_attention(q, k, v, &partition_mask(q_groups, k_groups, rule)?, scale)` but computes
/// only the allowed blocks (n0² + n1² pairs for `Same`, 2·n0·n1 for `Different`), forward and
/// backward. A query with no allowed key outputs zeros and passes zero gradient.
pub fn partition_attention(
    q: &Var,
    k: &Var,
    v: &Var,
    q_groups: &Tensor,
    k_groups: &Tensor,
    rule: GroupRule,
    scale: f64,
) -> Result<Var> {
    q.partition_attention(k, v, q_groups, k_groups, rule, scale)
}
