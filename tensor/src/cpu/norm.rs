//! Layer normalisation over the last dim, forward and backward side by side.
//!
//! x is [rows, cols]; y = (x − mean) · rstd · weight (+ bias), rstd = 1 / sqrt(var + eps),
//! with the biased variance. The forward also returns mean and rstd [rows] for the backward.

use super::{Float, PARALLEL_MIN_ELEMS};
use rayon::prelude::*;

/// Returns (y [rows, cols], mean [rows], rstd [rows]).
pub fn layer_norm<T: Float>(
    x: &[T],
    w: &[T],
    b: Option<&[T]>,
    cols: usize,
    eps: f64,
) -> (Vec<T>, Vec<T>, Vec<T>) {
    let rows = x.len().checked_div(cols).unwrap_or(0);
    let mut y = vec![T::ZERO; x.len()];
    let mut stats = vec![(T::ZERO, T::ZERO); rows];
    let n = T::from_f64(cols as f64);
    type Row<'a, T> = ((&'a mut [T], &'a mut (T, T)), &'a [T]);
    let work = |((y, st), x): Row<T>| {
        let mean = sum_of(x, |v| v) / n;
        let var = sum_of(x, |v| (v - mean) * (v - mean)) / n;
        let rstd = T::ONE / (var + T::from_f64(eps)).sqrt();
        match b {
            Some(b) => {
                for (((y, &x), &w), &b) in y.iter_mut().zip(x).zip(w).zip(b) {
                    *y = (x - mean) * rstd * w + b;
                }
            }
            None => {
                for ((y, &x), &w) in y.iter_mut().zip(x).zip(w) {
                    *y = (x - mean) * rstd * w;
                }
            }
        }
        *st = (mean, rstd);
    };
    if cols > 0 {
        if x.len() >= PARALLEL_MIN_ELEMS {
            y.par_chunks_mut(cols)
                .zip(stats.par_iter_mut())
                .zip(x.par_chunks(cols))
                .for_each(work);
        } else {
            y.chunks_mut(cols)
                .zip(stats.iter_mut())
                .zip(x.chunks(cols))
                .for_each(work);
        }
    }
    let (mean, rstd) = stats.into_iter().unzip();
    (y, mean, rstd)
}

/// Σ f(x_i) with eight running sums, so the loop vectorises (a single running sum is a chain
/// of dependent additions the compiler may not reorder).
#[inline(always)]
fn sum_of<T: Float>(x: &[T], f: impl Fn(T) -> T) -> T {
    let mut acc = [T::ZERO; 8];
    let chunks = x.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f(v);
        }
    }
    let tail_sum = tail.iter().fold(T::ZERO, |s, &v| s + f(v));
    acc.iter().fold(tail_sum, |s, &a| s + a)
}

/// Returns (dx [rows, cols], dweight [cols], dbias [cols]).
///
/// With x̂ = (x − mean)·rstd and g = dy·w: dx = rstd · (g − mean(g) − x̂ · mean(g·x̂));
/// dweight = Σ_rows dy·x̂; dbias = Σ_rows dy.
pub fn layer_norm_backward<T: Float>(
    x: &[T],
    w: &[T],
    mean: &[T],
    rstd: &[T],
    dy: &[T],
    cols: usize,
) -> (Vec<T>, Vec<T>, Vec<T>) {
    let rows = mean.len();
    let mut dx = vec![T::ZERO; x.len()];
    let n = T::from_f64(cols as f64);
    // Each task handles a band of rows and keeps its own partial dweight/dbias.
    let band = (PARALLEL_MIN_ELEMS / cols.max(1)).max(1);
    let partials: Vec<(Vec<T>, Vec<T>)> = dx
        .par_chunks_mut(band * cols.max(1))
        .enumerate()
        .map(|(bi, dx_band)| {
            let (mut dw, mut db) = (vec![T::ZERO; cols], vec![T::ZERO; cols]);
            for (ri, dx) in dx_band.chunks_mut(cols.max(1)).enumerate() {
                let r = bi * band + ri;
                let (x, dy) = (&x[r * cols..(r + 1) * cols], &dy[r * cols..(r + 1) * cols]);
                let (m, s) = (mean[r], rstd[r]);
                let (mut mean_g, mut mean_gx) = (T::ZERO, T::ZERO);
                for i in 0..cols {
                    let xhat = (x[i] - m) * s;
                    let g = dy[i] * w[i];
                    mean_g += g;
                    mean_gx += g * xhat;
                    dw[i] += dy[i] * xhat;
                    db[i] += dy[i];
                }
                mean_g = mean_g / n;
                mean_gx = mean_gx / n;
                for i in 0..cols {
                    let xhat = (x[i] - m) * s;
                    dx[i] = s * (dy[i] * w[i] - mean_g - xhat * mean_gx);
                }
            }
            (dw, db)
        })
        .collect();
    let (mut dw, mut db) = (vec![T::ZERO; cols], vec![T::ZERO; cols]);
    for (pw, pb) in partials {
        dw.iter_mut().zip(pw).for_each(|(a, b)| *a += b);
        db.iter_mut().zip(pb).for_each(|(a, b)| *a += b);
    }
    debug_assert!(rows == 0 || dx.len() == rows * cols);
    (dx, dw, db)
}
