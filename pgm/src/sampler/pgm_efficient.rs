//! PGM's efficient samplers (SPEC §6): the encoder runs over the clean tokens only (packed,
//! each with its true position) and the decoder over the positions drawn this step.
//!
//! - `efficient-uniform`: every row reveals the same number of positions per step (the targets
//!   split evenly, see [`uniform_sizes`]), so every row has the same clean count: no padding.
//! - `efficient-non-uniform`: per row and step, Binomial(L, (alpha(s) − alpha(t)) / (1 −
//!   alpha(t))) positions (with the full L, not the remaining count, as the reference does),
//!   capped by what remains; a final step fills the leftovers. Rows then differ in clean and
//!   query counts: both are right-padded and the per-row real lengths keep pads out of
//!   attention.
//!
//! Which positions come next is a random permutation per row, or left to right.

use super::draw::draw_rows;
use super::folded::FoldedPgm;
use super::plan::{binomial, reveal_probability, target_order, time_grid, uniform_sizes};
use super::{Order, SampleOptions, SamplerKind, Samples};
use crate::pgm_net::InferenceInput;
use tensor::{Device, Error, Result, Rng, Tensor};

/// One sequence being generated: its clean tokens in generation order and what comes next.
struct Row {
    tokens: Vec<u32>,
    positions: Vec<u32>,
    order: Vec<u32>,
    next: usize,
}

impl Row {
    fn remaining(&self) -> usize {
        self.order.len() - self.next
    }
}

/// Packs one field of every row into a right-padded [B, width] tensor (pads are 0).
fn packed(rows: &[Row], width: usize, field: impl Fn(&Row) -> &[u32]) -> Result<Tensor> {
    let mut v = vec![0u32; rows.len() * width];
    for (r, row) in rows.iter().enumerate() {
        let f = field(row);
        v[r * width..r * width + f.len()].copy_from_slice(f);
    }
    Tensor::from_vec(v, [rows.len(), width], Device::Cpu)
}

/// Runs `efficient-uniform` or `efficient-non-uniform` (chosen by `opts.sampler`).
pub fn sample_efficient(
    net: &FoldedPgm,
    opts: &SampleOptions,
    batch: usize,
    rng: &mut Rng,
) -> Result<Samples> {
    let len = net.config().seq_len;
    let given = opts.given(len);
    let mut rows: Vec<Row> = (0..batch)
        .map(|_| {
            let random = (opts.order == Order::Random).then_some(&mut *rng);
            let mut row = Row {
                tokens: vec![opts.bos],
                positions: vec![0],
                order: target_order(len, &given, random),
                next: 0,
            };
            for &(p, t) in &opts.prompt {
                row.tokens.push(t);
                row.positions.push(p as u32);
            }
            row
        })
        .collect();
    let uniform = opts.sampler == SamplerKind::EfficientUniform;
    let sizes = uniform_sizes(opts.targets(len), opts.steps);
    let grid = time_grid(opts.steps);
    let mut calls = 0;
    let mut counts = vec![0usize; batch];
    for i in 0..=opts.steps {
        for (r, row) in rows.iter().enumerate() {
            counts[r] = if i == opts.steps {
                row.remaining() // the final clean-up (non-uniform only; uniform has none left)
            } else if uniform {
                sizes[i]
            } else {
                let pr = reveal_probability(grid[i], grid[i + 1]);
                binomial(len, pr, rng).min(row.remaining())
            };
        }
        let m = *counts.iter().max().unwrap_or(&0);
        if m == 0 {
            continue;
        }
        let n = rows.iter().map(|r| r.tokens.len()).max().unwrap_or(0);
        let clean_len: Vec<usize> = rows.iter().map(|r| r.tokens.len()).collect();
        let queries: Vec<&[u32]> = (rows.iter().zip(&counts))
            .map(|(r, &c)| &r.order[r.next..r.next + c])
            .collect();
        let mut q = vec![0u32; batch * m];
        for (r, qs) in queries.iter().enumerate() {
            q[r * m..r * m + qs.len()].copy_from_slice(qs);
        }
        let tokens = packed(&rows, n, |r| &r.tokens)?;
        let positions = packed(&rows, n, |r| &r.positions)?;
        let query_positions = Tensor::from_vec(q, [batch, m], Device::Cpu)?;
        let lp = net.forward(&InferenceInput {
            tokens: &tokens,
            positions: &positions,
            clean_len: &clean_len,
            query_positions: &query_positions,
            query_len: Some(&counts),
        })?;
        calls += 1;
        let v = lp.dims()[2];
        // The real (non-pad) queries of every row, as rows of lp [B·M, V].
        let real: Vec<usize> = (0..batch)
            .flat_map(|r| (0..counts[r]).map(move |j| r * m + j))
            .collect();
        let lp = lp.reshape([batch * m, v])?;
        let mut tokens = draw_rows(&lp, &real, opts.draw, rng)?.into_iter();
        for (r, row) in rows.iter_mut().enumerate() {
            for token in tokens.by_ref().take(counts[r]) {
                let pos = row.order[row.next];
                row.tokens.push(token);
                row.positions.push(pos);
                row.next += 1;
            }
        }
    }
    let tokens = rows
        .iter()
        .map(|row| scatter(row, len))
        .collect::<Result<_>>()?;
    Ok(Samples {
        tokens,
        model_calls: calls,
    })
}

/// The sequence of a finished row: each clean token at its position. Fails unless every
/// position is filled exactly once.
fn scatter(row: &Row, len: usize) -> Result<Vec<u32>> {
    let mut seq = vec![None; len];
    for (&t, &p) in row.tokens.iter().zip(&row.positions) {
        if seq[p as usize].replace(t).is_some() {
            return Err(Error::msg(
                "sample",
                format!("position {p} was filled twice"),
            ));
        }
    }
    seq.into_iter()
        .enumerate()
        .map(|(p, t)| {
            t.ok_or_else(|| Error::msg("sample", format!("position {p} was never filled")))
        })
        .collect()
}
