//! The masked-diffusion loop of SPEC §6 (`ddpm`), shared by MDLM's `ddpm` and `ddpm-cache` and
//! PGM's `naive`: x starts as MASK everywhere but BOS and the prompt; step t → s reveals each
//! masked position with probability (alpha(s) − alpha(t)) / (1 − alpha(t)) (or, with a fixed
//! order, the next positions of the order) and draws a token there; a final step at t = 1e-5
//! fills whatever is still masked.
//!
//! This is the lean implementation the throughput comparison uses (SPEC §6b): the positions to
//! reveal are decided *before* the model runs, the output layer and the draws run only at those
//! positions (not over the full [B, L, V] tensor), and `ddpm-cache` runs the trunk only when a
//! position is revealed and x changed since its last run (the model is not time conditioned,
//! so its output depends on x only). Drawing x0 everywhere and keeping the revealed positions,
//! as the reference does, gives the same distribution.

use super::draw::draw_rows;
use super::folded::FoldedMdlm;
use super::plan::{reveal_probability, target_order, time_grid, uniform_sizes};
use super::{Order, SampleOptions, SamplerKind, Samples};
use crate::pgm_net::PgmNetwork;
use nn::Bound;
use tensor::{Device, Result, Rng, Tensor};

/// Which flat positions (row·L + position) a step reveals.
struct RevealPlan {
    len: usize,
    /// Per row, the positions in generation order and how many are taken (fixed order only).
    orders: Option<(Vec<Vec<u32>>, Vec<usize>)>,
    sizes: Vec<usize>,
    grid: Vec<f64>,
}

impl RevealPlan {
    fn new(opts: &SampleOptions, len: usize, batch: usize) -> Self {
        let orders = (opts.order == Order::LeftToRight).then(|| {
            let order = target_order(len, &opts.given(len), None);
            (vec![order; batch], vec![0; batch])
        });
        RevealPlan {
            len,
            orders,
            sizes: uniform_sizes(opts.targets(len), opts.steps),
            grid: time_grid(opts.steps),
        }
    }

    /// The positions step `i` reveals among the masked positions of x [B·L]
    /// (`i == steps`: all that are left).
    fn reveal(&mut self, i: usize, x: &[u32], mask_id: u32, rng: &mut Rng) -> Vec<u32> {
        let masked = |j: &usize| x[*j] == mask_id;
        if i == self.sizes.len() {
            return (0..x.len()).filter(masked).map(|j| j as u32).collect();
        }
        match &mut self.orders {
            Some((orders, next)) => {
                let mut rows = Vec::new();
                for (r, order) in orders.iter().enumerate() {
                    let take = &order[next[r]..next[r] + self.sizes[i]];
                    rows.extend(take.iter().map(|&p| (r * self.len) as u32 + p));
                    next[r] += self.sizes[i];
                }
                rows
            }
            None => {
                let pr = reveal_probability(self.grid[i], self.grid[i + 1]);
                (0..x.len())
                    .filter(|j| masked(j) && rng.uniform() < pr)
                    .map(|j| j as u32)
                    .collect()
            }
        }
    }
}

/// Runs the loop. `log_probs(x, rows)` is called once per step with x [B·L] and the flat
/// positions to draw (possibly none) and returns their log-probabilities [K, V] (or None
/// when there are none to draw).
fn run(
    opts: &SampleOptions,
    len: usize,
    mask_id: u32,
    batch: usize,
    rng: &mut Rng,
    mut log_probs: impl FnMut(&[u32], &[u32]) -> Result<Option<Tensor>>,
) -> Result<Vec<Vec<u32>>> {
    let mut x: Vec<u32> = (0..batch)
        .flat_map(|_| opts.start_row(len, mask_id))
        .collect();
    let mut plan = RevealPlan::new(opts, len, batch);
    for i in 0..=opts.steps {
        let rows = plan.reveal(i, &x, mask_id, rng);
        if i == opts.steps && rows.is_empty() {
            break; // nothing left for the final step
        }
        let Some(lp) = log_probs(&x, &rows)? else {
            continue;
        };
        let every: Vec<usize> = (0..rows.len()).collect();
        let tokens = draw_rows(&lp, &every, opts.draw, rng)?;
        for (&row, token) in rows.iter().zip(tokens) {
            x[row as usize] = token;
        }
    }
    Ok(x.chunks(len).map(|r| r.to_vec()).collect())
}

/// MDLM `ddpm` (the trunk runs every step) or `ddpm-cache` (only when needed).
pub fn sample_mdlm(
    net: &FoldedMdlm,
    opts: &SampleOptions,
    batch: usize,
    rng: &mut Rng,
) -> Result<Samples> {
    let cfg = net.config();
    let (len, mask_id) = (cfg.seq_len, cfg.mask_id());
    let cache = opts.sampler == SamplerKind::DdpmCache;
    let mut trunk: Option<Tensor> = None;
    let mut stale = true; // x changed since the trunk last ran
    let mut calls = 0;
    let tokens = run(opts, len, mask_id, batch, rng, |x, rows| {
        if !cache || (stale && !rows.is_empty()) {
            let x_t = Tensor::from_vec(x.to_vec(), [batch, len], Device::Cpu)?;
            trunk = Some(net.trunk(&x_t)?);
            calls += 1;
            stale = false;
        }
        if rows.is_empty() {
            return Ok(None);
        }
        stale = true; // the draws below unmask these positions
        let trunk = trunk.as_ref().expect("the trunk ran");
        net.log_probs_at(trunk, rows).map(Some)
    })?;
    Ok(Samples {
        tokens,
        model_calls: calls,
    })
}

/// PGM `naive`: the training forward over all L positions, clean tokens as group 0 and masked
/// ones as group 1 (their MASK input is isolated by the group mask), read at the drawn positions.
pub fn sample_naive(
    net: &PgmNetwork,
    p: &Bound,
    opts: &SampleOptions,
    batch: usize,
    rng: &mut Rng,
) -> Result<Samples> {
    let (len, mask_id) = (net.config.seq_len, net.config.mask_id());
    let mut calls = 0;
    let tokens = run(opts, len, mask_id, batch, rng, |x, rows| {
        if rows.is_empty() {
            return Ok(None);
        }
        let groups: Vec<u8> = x.iter().map(|&t| (t == mask_id) as u8).collect();
        let groups = Tensor::from_vec(groups, [batch, len], Device::Cpu)?;
        let tokens = Tensor::from_vec(x.to_vec(), [batch, len], Device::Cpu)?;
        let lp = net.forward_train(p, &tokens, &groups, None)?;
        calls += 1;
        let v = lp.dims()[2];
        let ids = Tensor::from_vec(rows.to_vec(), [rows.len()], lp.value().device())?;
        Ok(Some(
            lp.value()
                .reshape([batch * len, v])?
                .index_select(0, &ids)?,
        ))
    })?;
    Ok(Samples {
        tokens,
        model_calls: calls,
    })
}
