//! Reductions over one dim, argmax, and the row-wise softmax / log-softmax with their backward.
//!
//! A contiguous tensor reduced over `dim` is viewed as [outer, size, inner]: the reduction runs
//! over the middle axis and the result is [outer, inner].

use super::{Float, PARALLEL_MIN_ELEMS};
use crate::op::ReduceOp;
use rayon::prelude::*;

/// Reduces x [outer, size, inner] over the middle axis → [outer, inner].
pub fn reduce<T: Float>(x: &[T], outer: usize, size: usize, inner: usize, op: ReduceOp) -> Vec<T> {
    let init = match op {
        ReduceOp::Sum => T::ZERO,
        ReduceOp::Max => T::NEG_INFINITY,
        ReduceOp::Min => -T::NEG_INFINITY,
    };
    let mut out = vec![init; outer * inner];
    if inner == 0 {
        return out;
    }
    let work = |(o, out): (usize, &mut [T])| {
        let block = &x[o * size * inner..(o + 1) * size * inner];
        // Walk the reduced axis in the outer loop so the inner loop reads memory in order.
        for row in block.chunks(inner) {
            for (acc, &v) in out.iter_mut().zip(row) {
                *acc = match op {
                    ReduceOp::Sum => *acc + v,
                    ReduceOp::Max => acc.max(v),
                    ReduceOp::Min => acc.min(v),
                };
            }
        }
    };
    if x.len() >= PARALLEL_MIN_ELEMS && outer > 1 {
        out.par_chunks_mut(inner).enumerate().for_each(work);
    } else {
        out.chunks_mut(inner).enumerate().for_each(work);
    }
    out
}

/// Index of the largest value along the middle axis of x [outer, size, inner] → [outer, inner].
/// Ties go to the first index; NaN counts as larger than everything.
pub fn argmax<T: Float>(x: &[T], outer: usize, size: usize, inner: usize) -> Vec<u32> {
    let mut out = vec![0u32; outer * inner];
    for o in 0..outer {
        for i in 0..inner {
            let mut best = x[o * size * inner + i];
            for k in 1..size {
                let v = x[(o * size + k) * inner + i];
                if v > best || (v.partial_cmp(&v).is_none() && best.partial_cmp(&best).is_some()) {
                    best = v;
                    out[o * inner + i] = k as u32;
                }
            }
        }
    }
    out
}

/// Runs `f(row_in, row_out)` over rows of `cols` elements, in parallel when large.
fn for_rows<T: Float>(x: &[T], cols: usize, f: impl Fn(&[T], &mut [T]) + Sync) -> Vec<T> {
    let mut out = vec![T::ZERO; x.len()];
    if cols == 0 {
        return out;
    }
    if x.len() >= PARALLEL_MIN_ELEMS {
        out.par_chunks_mut(cols)
            .zip(x.par_chunks(cols))
            .for_each(|(o, x)| f(x, o));
    } else {
        out.chunks_mut(cols)
            .zip(x.chunks(cols))
            .for_each(|(o, x)| f(x, o));
    }
    out
}

/// Softmax (or log-softmax when `log`) over each row of `cols` elements. A row whose entries
/// are all −∞ (every position masked) gives zeros for softmax and −∞ for log-softmax.
pub fn softmax_rows<T: Float>(x: &[T], cols: usize, log: bool) -> Vec<T> {
    for_rows(x, cols, |x, out| {
        let max = x.iter().fold(T::NEG_INFINITY, |m, &v| m.max(v));
        if max == T::NEG_INFINITY {
            out.fill(if log { T::NEG_INFINITY } else { T::ZERO });
            return;
        }
        let mut sum = T::ZERO;
        for (o, &v) in out.iter_mut().zip(x) {
            *o = (v - max).exp();
            sum += *o;
        }
        if log {
            let log_sum = sum.ln() + max;
            out.iter_mut().zip(x).for_each(|(o, &v)| *o = v - log_sum);
        } else {
            let inv = T::ONE / sum;
            out.iter_mut().for_each(|o| *o = *o * inv);
        }
    })
}

/// Backward of softmax / log-softmax per row, from the forward output y and the gradient dy:
/// softmax:     dx = y · (dy − Σ dy·y)
/// log-softmax: dx = dy − exp(y) · Σ dy
pub fn softmax_rows_backward<T: Float>(y: &[T], dy: &[T], cols: usize, log: bool) -> Vec<T> {
    let mut out = vec![T::ZERO; y.len()];
    if cols == 0 {
        return out;
    }
    let work = |(o, (y, dy)): (&mut [T], (&[T], &[T]))| {
        if log {
            let s: T = dy.iter().copied().sum();
            for i in 0..o.len() {
                // A −∞ entry (exp = 0) passes dy through; the masked fill that made it −∞
                // stops the gradient there.
                o[i] = dy[i] - y[i].exp() * s;
            }
        } else {
            let s: T = dy.iter().zip(y).map(|(&d, &y)| d * y).sum();
            for i in 0..o.len() {
                o[i] = y[i] * (dy[i] - s);
            }
        }
    };
    if y.len() >= PARALLEL_MIN_ELEMS {
        out.par_chunks_mut(cols)
            .zip(y.par_chunks(cols).zip(dy.par_chunks(cols)))
            .for_each(work);
    } else {
        out.chunks_mut(cols)
            .zip(y.chunks(cols).zip(dy.chunks(cols)))
            .for_each(work);
    }
    out
}
