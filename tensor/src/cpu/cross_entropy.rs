//! Cross-entropy over the rows of a logits matrix: log-softmax and the pick of the target's
//! log-probability fused, so the [rows, cols] log-probabilities are never written, and its
//! backward, which writes the logits' gradient in one pass.
//!
//! Per row x with target t, leaving out the class `excluded` (its logit counts as −∞):
//!   lse = log Σ_{j ≠ excluded} exp(x_j),   nll = lse − x_t   (+∞ when t is the excluded class)
//!   ∂nll/∂x_j = exp(x_j − lse) − [j = t],  and 0 for the excluded class.

use super::{Float, PARALLEL_MIN_ELEMS};
use rayon::prelude::*;

/// (nll `[rows]`, lse `[rows]`) for logits x `[rows, cols]` and targets `[rows]` (each below `cols`).
pub fn cross_entropy_rows<T: Float>(
    x: &[T],
    targets: &[u32],
    cols: usize,
    excluded: Option<usize>,
) -> (Vec<T>, Vec<T>) {
    let row = |(x, &t): (&[T], &u32)| {
        let max = kept(x, excluded).fold(T::NEG_INFINITY, |m, &v| m.max(v));
        let sum: T = kept(x, excluded).map(|&v| (v - max).exp()).sum();
        let lse = sum.ln() + max;
        let nll = if Some(t as usize) == excluded {
            -T::NEG_INFINITY
        } else {
            lse - x[t as usize]
        };
        (nll, lse)
    };
    if cols == 0 {
        return (Vec::new(), Vec::new());
    }
    if x.len() >= PARALLEL_MIN_ELEMS {
        x.par_chunks(cols).zip(targets).map(row).unzip()
    } else {
        x.chunks(cols).zip(targets).map(row).unzip()
    }
}

/// The entries of a row other than the excluded one.
fn kept<T>(x: &[T], excluded: Option<usize>) -> impl Iterator<Item = &T> {
    let e = excluded.unwrap_or(x.len()).min(x.len());
    x[..e].iter().chain(x.get(e + 1..).unwrap_or_default())
}

/// dx [rows, cols] = dnll · (softmax(x) − onehot(target)), 0 in the excluded column, from the
/// forward's `lse` `[rows]` and the gradient `dnll` `[rows]`.
pub fn cross_entropy_rows_backward<T: Float>(
    x: &[T],
    targets: &[u32],
    lse: &[T],
    dnll: &[T],
    cols: usize,
    excluded: Option<usize>,
) -> Vec<T> {
    let mut dx = vec![T::ZERO; x.len()];
    if cols == 0 {
        return dx;
    }
    let row = |(r, (dx, x)): (usize, (&mut [T], &[T]))| {
        let (g, lse) = (dnll[r], lse[r]);
        for (d, &v) in dx.iter_mut().zip(x) {
            *d = g * (v - lse).exp();
        }
        dx[targets[r] as usize] = dx[targets[r] as usize] - g;
        if let Some(e) = excluded {
            dx[e] = T::ZERO;
        }
    };
    if x.len() >= PARALLEL_MIN_ELEMS {
        dx.par_chunks_mut(cols)
            .zip(x.par_chunks(cols))
            .enumerate()
            .for_each(row);
    } else {
        dx.chunks_mut(cols)
            .zip(x.chunks(cols))
            .enumerate()
            .for_each(row);
    }
    dx
}
