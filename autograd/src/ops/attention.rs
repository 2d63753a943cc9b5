//! Partition attention on `Var`s: the fused forward and its fused backward, which recomputes
//! the attention probabilities from the saved log-sum-exp.

use crate::Var;
use tensor::{GroupRule, Result, Tensor};

impl Var {
    /// Attention of queries `self` [B, Nq, H, d] over keys `k` and values `v` [B, Nk, H, d]
    /// (any strides), restricted to the pairs `rule` allows given the constant group ids
    /// `q_groups` [B, Nq] and `k_groups` [B, Nk] (U8, 255 = pad). Output contiguous
    /// [B, Nq, H, d]; a query with no allowed key outputs zeros and passes zero gradient.
    /// Only the allowed blocks are computed, forward and backward (`Tensor::partition_attention`).
    pub fn partition_attention(
        &self,
        k: &Var,
        v: &Var,
        q_groups: &Tensor,
        k_groups: &Tensor,
        rule: GroupRule,
        scale: f64,
    ) -> Result<Var> {
        let (out, lse) = self.value().partition_attention(
            k.value(),
            v.value(),
            q_groups,
            k_groups,
            rule,
            scale,
        )?;
        let (q, kt, vt) = (self.value().clone(), k.value().clone(), v.value().clone());
        let (qg, kg, out_saved) = (q_groups.clone(), k_groups.clone(), out.clone());
        Var::record("partition_attention", &[self, k, v], out, move |dy| {
            let (dq, dk, dv) = q.partition_attention_backward(
                &kt, &vt, &qg, &kg, rule, scale, &out_saved, &lse, dy,
            )?;
            Ok(vec![Some(dq), Some(dk), Some(dv)])
        })
    }
}
