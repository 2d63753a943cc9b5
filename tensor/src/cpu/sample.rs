//! Draws from counter-based noise (`draw_key`, `draw_uniform`): the Gumbel-max draw of one
//! token per row of log-probabilities, and dropout masks. The CUDA kernels of
//! `kernels/sample.cu` compute the same noise, so both backends draw the same values.
//!
//! Row r draws argmax_i p_i / (−ln(u_i + 1e-10) + 1e-10), with p_i = exp(log p_i) and u_i the
//! i-th uniform of the row's counter-based stream (`draw_key(seed, r)`): index i wins with
//! probability p_i (the reference sampler's form of the trick, in f64). Ties go to the first
//! index; impossible ids (−∞) score 0 and lose to any possible one.

use super::{Float, PARALLEL_MIN_ELEMS};
use crate::random::{draw_key, draw_uniform};
use rayon::prelude::*;

/// One token per row of `log_probs` [rows, cols].
pub fn gumbel_argmax_rows<T: Float>(log_probs: &[T], cols: usize, seed: u64) -> Vec<u32> {
    let row = |(r, lp): (usize, &[T])| gumbel_argmax(lp, draw_key(seed, r as u64), None);
    if cols == 0 {
        Vec::new()
    } else if log_probs.len() >= PARALLEL_MIN_ELEMS {
        log_probs.par_chunks(cols).enumerate().map(row).collect()
    } else {
        log_probs.chunks(cols).enumerate().map(row).collect()
    }
}

/// The Gumbel-max draw from one row with the noise stream `key`. With `keep`, ids it marks
/// false score −∞ (a nucleus restriction; the argmax needs no renormalisation).
pub fn gumbel_argmax<T: Float>(log_probs: &[T], key: u64, keep: Option<&[bool]>) -> u32 {
    let mut best = (f64::NEG_INFINITY, 0usize);
    for (i, &lp) in log_probs.iter().enumerate() {
        if keep.is_some_and(|k| !k[i]) {
            continue;
        }
        let exponential = -(draw_uniform(key, i as u64) + 1e-10).ln() + 1e-10;
        let score = lp.to_f64().exp() / exponential;
        if score > best.0 {
            best = (score, i);
        }
    }
    best.1 as u32
}

/// Inverted dropout drawn from counter-based noise: element i is dropped when the i-th uniform
/// of the stream `key` is below `p`, and survivors are scaled by 1/(1 − p).
#[derive(Clone, Copy, Debug)]
pub struct DropoutNoise {
    pub p: f64,
    pub key: u64,
}

/// The mask as a function of the element index: 1/(1 − p) if kept, 0 if dropped; 1 for every
/// element without dropout.
pub(crate) fn mask<T: Float>(dropout: Option<DropoutNoise>) -> impl Fn(usize) -> T + Sync {
    let scale = T::from_f64(dropout.map_or(1.0, |d| 1.0 / (1.0 - d.p)));
    move |i| match dropout {
        Some(d) if draw_uniform(d.key, i as u64) < d.p => T::ZERO,
        _ => scale,
    }
}

/// The dropout mask of `n` elements, as values.
pub fn dropout_mask<T: Float>(n: usize, noise: DropoutNoise) -> Vec<T> {
    let mut out = vec![T::ZERO; n];
    let mask = mask::<T>(Some(noise));
    let fill = |(c, chunk): (usize, &mut [T])| {
        for (j, o) in chunk.iter_mut().enumerate() {
            *o = mask(c * MASK_CHUNK + j);
        }
    };
    if n >= PARALLEL_MIN_ELEMS {
        out.par_chunks_mut(MASK_CHUNK).enumerate().for_each(fill);
    } else {
        out.chunks_mut(MASK_CHUNK).enumerate().for_each(fill);
    }
    out
}

/// Elements per task of `dropout_mask`.
const MASK_CHUNK: usize = 1 << 14;
