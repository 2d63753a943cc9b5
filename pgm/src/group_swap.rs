//! GroupSwap (SPEC §4.3): turns the encoder states of one group into a query stream for the
//! positions of the other group. No residual, no adaLN; it reads the raw encoder output.

use crate::attend::{merge_heads, split_heads, AttentionPattern};
use crate::config::{ModelConfig, PreQueryMode, QueryProcessor};
use autograd::Var;
use nn::conditioning::sinusoidal_features;
use nn::layers::{LayerNorm, Linear};
use nn::{Bound, Init, Param, ParamStore};
use tensor::op::CmpOp;
use tensor::{DType, Result, Rng, Tensor};

/// Standard deviation of the learned base pre-query at initialisation.
const BASE_INIT_STD: f64 = 0.02;

enum QueryProc {
    Linear(Linear),
    Mlp4(Linear, Linear),
}

/// Names under `decoder.group_swap`: base_embedding [1, D], pre_query_norm (with bias),
/// query_processor (Linear, or `.0`/`.2` for mlp4), hidden_to_key_value, output_linear.
pub struct GroupSwap {
    base: Param,
    pre_query_norm: LayerNorm,
    query_processor: QueryProc,
    hidden_to_kv: Linear,
    output_linear: Linear,
    mode: PreQueryMode,
    heads: usize,
}

impl GroupSwap {
    pub fn new(store: &mut ParamStore, cfg: &ModelConfig, rng: &mut Rng) -> Result<Self> {
        let (d, name) = (cfg.hidden_size, "decoder.group_swap");
        let query_processor = match cfg.query_processor {
            QueryProcessor::Linear => QueryProc::Linear(Linear::new(
                store,
                &format!("{name}.query_processor"),
                d,
                d,
                true,
                rng,
            )?),
            QueryProcessor::Mlp4 => QueryProc::Mlp4(
                Linear::new(
                    store,
                    &format!("{name}.query_processor.0"),
                    d,
                    4 * d,
                    true,
                    rng,
                )?,
                Linear::new(
                    store,
                    &format!("{name}.query_processor.2"),
                    4 * d,
                    d,
                    true,
                    rng,
                )?,
            ),
        };
        Ok(GroupSwap {
            base: store.add(
                format!("{name}.base_embedding"),
                [1, d],
                Init::Normal(BASE_INIT_STD),
                rng,
            )?,
            pre_query_norm: LayerNorm::new(store, &format!("{name}.pre_query_norm"), d, true, rng)?,
            query_processor,
            hidden_to_kv: Linear::new(
                store,
                &format!("{name}.hidden_to_key_value"),
                d,
                2 * d,
                true,
                rng,
            )?,
            output_linear: Linear::new(store, &format!("{name}.output_linear"), d, d, true, rng)?,
            mode: cfg.pre_query_mode,
            heads: cfg.n_heads,
        })
    }

    /// h [B, N, D] encoder output; queries at `q_pos` [B, M] in `q_groups` [B, M]; keys in
    /// `k_groups` [B, N] → the query stream [B, M, D].
    pub fn forward(
        &self,
        p: &Bound,
        h: &Var,
        q_pos: &Tensor,
        q_groups: &Tensor,
        k_groups: &Tensor,
        pattern: &AttentionPattern,
    ) -> Result<Var> {
        let mut q0 = self.pre_queries(p, q_pos, h.value().dtype())?;
        if !self.queries_depend_on_position_only() {
            q0 = q0.add(&other_group_summary(h, q_groups, k_groups, self.mode)?)?;
        }
        self.attend(p, h, &self.process_queries(p, &q0)?, pattern)
    }

    /// Whether a query depends on its position only (modes `learn` and `learn+freqs`), so that
    /// a sampler may compute the queries of every position once ([`GroupSwap::query_table`]).
    pub fn queries_depend_on_position_only(&self) -> bool {
        matches!(self.mode, PreQueryMode::Learn | PreQueryMode::LearnFreqs)
    }

    /// The processed queries of positions 0..len, [len, D], for the modes whose queries depend
    /// on the position only; None for the modes that add a summary of the encoder states.
    pub fn query_table(&self, p: &Bound, len: usize, dtype: DType) -> Result<Option<Var>> {
        if !self.queries_depend_on_position_only() {
            return Ok(None);
        }
        let pos = Tensor::arange(len, tensor::Device::Cpu)?.unsqueeze(0)?; // [1, len]
        let q = self.process_queries(p, &self.pre_queries(p, &pos, dtype)?)?;
        Ok(Some(q.squeeze(0)?))
    }

    /// The pre-queries base + f(p) at `q_pos` [B, M] → [B, M, D] (no encoder summary).
    fn pre_queries(&self, p: &Bound, q_pos: &Tensor, dtype: DType) -> Result<Var> {
        let base = p.get(&self.base)?;
        let (b, m, d) = (q_pos.dims()[0], q_pos.dims()[1], base.dims()[1]);
        let q0 = base.broadcast_as([b, m, d])?;
        if self.mode == PreQueryMode::Learn {
            return Ok(q0);
        }
        let pos: Vec<f64> = q_pos.to_vec::<u32>()?.into_iter().map(f64::from).collect();
        let feats =
            sinusoidal_features(&pos, d, dtype, base.value().device())?.reshape([b, m, d])?;
        q0.add(&Var::constant(feats))
    }

    /// Pre-query norm and query processor: [B, M, D] → [B, M, D].
    fn process_queries(&self, p: &Bound, q0: &Var) -> Result<Var> {
        let q0 = self.pre_query_norm.forward(p, q0)?;
        match &self.query_processor {
            QueryProc::Linear(l) => l.forward(p, &q0),
            QueryProc::Mlp4(a, b) => b.forward(p, &a.forward(p, &q0)?.silu()?),
        }
    }

    /// Cross-attention of the processed queries q [B, M, D] to the encoder output h [B, N, D]
    /// → the query stream [B, M, D].
    pub fn attend(&self, p: &Bound, h: &Var, q: &Var, pattern: &AttentionPattern) -> Result<Var> {
        let q = split_heads(q, 1, self.heads)?.remove(0);
        let kv = split_heads(&self.hidden_to_kv.forward(p, h)?, 2, self.heads)?;
        self.output_linear
            .forward(p, &merge_heads(&pattern.attend(&q, &kv[0], &kv[1])?)?)
    }
}

/// Per query, the mean or the log-sum-exp (per feature) of the encoder states of the *other*
/// group: keys in group 1 − g for a query in group g (pads belong to no group). An empty
/// group gives 0. h [B, N, D] → [B, M, D].
fn other_group_summary(
    h: &Var,
    q_groups: &Tensor,
    k_groups: &Tensor,
    mode: PreQueryMode,
) -> Result<Var> {
    let dtype = h.value().dtype();
    let mut summaries = Vec::with_capacity(2);
    for g in 0..2u8 {
        let group = Tensor::full(g as f64, (), DType::U8, k_groups.device())?;
        let member = k_groups.cmp(&group, CmpOp::Eq)?.unsqueeze(2)?; // [B, N, 1] U8
        let count = member.to_dtype(dtype)?.sum(1, false)?; // [B, 1]
        let nonempty = count.cmp(&Tensor::zeros((), dtype, count.device())?, CmpOp::Gt)?;
        let summary = match mode {
            PreQueryMode::LearnFreqsMean => {
                let sum = h
                    .mul(&Var::constant(member.to_dtype(dtype)?))?
                    .sum(1, false)?; // [B, D]
                sum.div(&Var::constant(count.maximum(&Tensor::ones(
                    (),
                    dtype,
                    count.device(),
                )?)?))?
            }
            _ => {
                // log Σ exp over members, shifted by the (constant) max for stability: the shift's
                // gradient cancels exactly, so it needs none. Non-members sit at −1e30 → exp 0.
                let floor = Var::constant(Tensor::full(-1e30, (), dtype, h.value().device())?);
                let masked = Var::where_cond(&member, h, &floor)?;
                let max = masked.value().max(1, true)?;
                let shifted = masked
                    .sub(&Var::constant(max.clone()))?
                    .exp()?
                    .sum(1, false)?
                    .log()?;
                let lse = shifted.add(&Var::constant(max.squeeze(1)?))?;
                let zero = Var::constant(Tensor::zeros((), dtype, h.value().device())?);
                Var::where_cond(&nonempty, &lse, &zero)?
            }
        };
        summaries.push(summary.unsqueeze(1)?); // [B, 1, D]
    }
    let per_group = Var::cat(&[&summaries[0], &summaries[1]], 1)?; // [B, 2, D]

    // Column k of the selector is 1 where the query's group is 1 − k.
    let selector: Vec<Tensor> = (0..2u8)
        .map(|k| {
            let other = Tensor::full((1 - k) as f64, (), DType::U8, q_groups.device())?;
            q_groups
                .cmp(&other, CmpOp::Eq)?
                .to_dtype(dtype)?
                .unsqueeze(2)
        })
        .collect::<Result<_>>()?;
    let selector = Tensor::cat(&[&selector[0], &selector[1]], 2)?; // [B, M, 2]
    Var::constant(selector).matmul(&per_group)
}
