//! The attention pattern of one forward pass: RoPE tables for queries and keys, and which key
//! each query may see (the partition groups and the rule that relates them).

use crate::config::AttentionImpl;
use autograd::Var;
use nn::attention::{masked_attention, partition_attention, partition_mask, rope_tables};
use tensor::{DType, Device, GroupRule, Result, Tensor};

/// Everything an attention layer needs besides q, k and v.
pub struct AttentionPattern {
    q_cos: Tensor,
    q_sin: Tensor,
    k_cos: Tensor,
    k_sin: Tensor,
    q_groups: Tensor,
    k_groups: Tensor,
    rule: GroupRule,
    /// The [B, Nq, Nk] mask, built once, when attention is computed densely.
    dense_mask: Option<Tensor>,
    scale: f64,
}

impl AttentionPattern {
    /// Queries at positions `q_pos` [B, Nq] (U32) in groups `q_groups` [B, Nq] (U8), keys at
    /// `k_pos` [B, Nk] in `k_groups` [B, Nk]; query i may see key j as `rule` says (keys in
    /// `PAD_GROUP` are never seen).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        q_pos: &Tensor,
        k_pos: &Tensor,
        q_groups: &Tensor,
        k_groups: &Tensor,
        rule: GroupRule,
        head_dim: usize,
        how: AttentionImpl,
        dtype: DType,
    ) -> Result<Self> {
        let q_rope = rope_tables(q_pos, head_dim, dtype)?;
        let k_rope = if q_pos.same_storage(k_pos) {
            q_rope.clone()
        } else {
            rope_tables(k_pos, head_dim, dtype)?
        };
        Self::from_tables(q_rope, k_rope, q_groups, k_groups, rule, head_dim, how)
    }

    /// The same pattern from RoPE tables already looked up (`(cos, sin)` of the queries
    /// [B, Nq, d/2] and of the keys [B, Nk, d/2], e.g. from a [`RopeTable`]).
    pub fn from_tables(
        (q_cos, q_sin): (Tensor, Tensor),
        (k_cos, k_sin): (Tensor, Tensor),
        q_groups: &Tensor,
        k_groups: &Tensor,
        rule: GroupRule,
        head_dim: usize,
        how: AttentionImpl,
    ) -> Result<Self> {
        let dense_mask = match how {
            AttentionImpl::Dense => Some(partition_mask(q_groups, k_groups, rule)?),
            AttentionImpl::Gathered => None,
        };
        Ok(AttentionPattern {
            q_cos,
            q_sin,
            k_cos,
            k_sin,
            q_groups: q_groups.clone(),
            k_groups: k_groups.clone(),
            rule,
            dense_mask,
            scale: 1.0 / (head_dim as f64).sqrt(),
        })
    }

    /// RoPE on q and k, then attention. q [B, Nq, H, d], k and v [B, Nk, H, d] (any strides)
    /// → [B, Nq, H, d]. A query that may see no key gets zeros.
    pub fn attend(&self, q: &Var, k: &Var, v: &Var) -> Result<Var> {
        let q = q.rope(&self.q_cos, &self.q_sin)?;
        let k = k.rope(&self.k_cos, &self.k_sin)?;
        match &self.dense_mask {
            Some(mask) => masked_attention(&q, &k, v, mask, self.scale),
            None => partition_attention(
                &q,
                &k,
                v,
                &self.q_groups,
                &self.k_groups,
                self.rule,
                self.scale,
            ),
        }
    }
}

/// The RoPE cos and sin of every position 0..len, computed once (a sampler asks for the same
/// positions at every step) and looked up per token.
pub struct RopeTable {
    cos: Tensor,
    sin: Tensor,
}

impl RopeTable {
    /// Tables for positions 0..len: cos and sin [len, head_dim / 2] for x of `dtype`, on
    /// `device`.
    pub fn new(len: usize, head_dim: usize, dtype: DType, device: Device) -> Result<Self> {
        let pos = Tensor::arange(len, device)?;
        let (cos, sin) = rope_tables(&pos, head_dim, dtype)?;
        Ok(RopeTable { cos, sin })
    }
    /// `(cos, sin)` of `positions` (U32 [B, N], each below len, any device): [B, N,
    /// head_dim / 2] each, on the tables' device.
    pub fn lookup(&self, positions: &Tensor) -> Result<(Tensor, Tensor)> {
        let positions = positions.to_device(self.cos.device())?;
        Ok((
            self.cos.embedding(&positions)?,
            self.sin.embedding(&positions)?,
        ))
    }
}

/// Splits x [B, N, n·H·d] into n views of [B, N, H, d] (no copies).
pub fn split_heads(x: &Var, n: usize, heads: usize) -> Result<Vec<Var>> {
    let (b, len, width) = (x.dims()[0], x.dims()[1], x.dims()[2]);
    let d = width / (n * heads);
    let x = x.reshape([b, len, n, heads, d])?;
    (0..n).map(|i| x.narrow(2, i, 1)?.squeeze(2)).collect()
}

/// Joins heads back: [B, N, H, d] → [B, N, H·d].
pub fn merge_heads(x: &Var) -> Result<Var> {
    let d = x.dims();
    x.reshape([d[0], d[1], d[2] * d[3]])
}
