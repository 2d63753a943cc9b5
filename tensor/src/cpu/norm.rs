//! Layer normalisation over the last dim followed by a per-group affine map, forward and
//! backward side by side. Plain layer norm and adaLN's modulate are both this one kernel.
//!
//! x is [rows, cols], split into `groups` runs of consecutive rows (a group is one sequence of
//! the batch, or all rows). With x̂ = (x − mean) · rstd, rstd = 1 / sqrt(var + eps) and the
//! biased variance, row r of group g gives
//!   `y = x̂ · mul[g] + add[g]`,   mul and add `[groups, cols]`.
//! Layer norm is one group with mul = weight, add = bias; modulate has mul = weight·(1 + scale)
//! and add = shift per sequence. The forward also returns mean and rstd `[rows]`.

use super::group_sums::rows_with_group_sums;
use super::rows::filled_rows;
use super::Float;
use std::mem::MaybeUninit;

/// Returns (y `[rows, cols]`, mean `[rows]`, rstd `[rows]`). `mul` and `add` are `[groups, cols]` with
/// `groups` dividing rows.
pub fn norm_affine<T: Float>(
    x: &[T],
    mul: &[T],
    add: &[T],
    cols: usize,
    eps: f64,
) -> (Vec<T>, Vec<T>, Vec<T>) {
    let rows = x.len().checked_div(cols).unwrap_or(0);
    let per_group = rows.checked_div(mul.len() / cols.max(1)).unwrap_or(0);
    let n = T::from_f64(cols as f64);
    let row = |r: usize, y: &mut [MaybeUninit<T>]| {
        let (g, x) = (r / per_group, &x[r * cols..][..cols]);
        let (mul, add) = (&mul[g * cols..][..cols], &add[g * cols..][..cols]);
        let mean = sum_of(x, |v| v) / n;
        let var = sum_of(x, |v| (v - mean) * (v - mean)) / n;
        let rstd = T::ONE / (var + T::from_f64(eps)).sqrt();
        for (((y, &x), &m), &a) in y.iter_mut().zip(x).zip(mul).zip(add) {
            y.write((x - mean) * rstd * m + a);
        }
        (mean, rstd)
    };
    // SAFETY: `row` writes all cols slots of its row (the zip runs over cols elements).
    let (y, stats) = unsafe { filled_rows(rows, cols, row) };
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

/// Returns (dx [rows, cols], Σ dy·x̂ [groups, cols], Σ dy [groups, cols]), the sums running
/// over each group's rows; the parameter gradients follow from them (plain layer norm:
/// dweight = Σ dy·x̂, dbias = Σ dy).
///
/// With `g = dy · mul[group]`: dx = rstd · (g − mean(g) − x̂ · mean(g·x̂)).
pub fn norm_affine_backward<T: Float>(
    x: &[T],
    mul: &[T],
    mean: &[T],
    rstd: &[T],
    dy: &[T],
    cols: usize,
) -> (Vec<T>, Vec<T>, Vec<T>) {
    let (rows, groups) = (mean.len(), mul.len() / cols.max(1));
    let mut dx = vec![T::ZERO; x.len()];
    if rows == 0 || cols == 0 {
        return (dx, vec![T::ZERO; mul.len()], vec![T::ZERO; mul.len()]);
    }
    let (per_group, n) = (rows / groups, T::from_f64(cols as f64));
    // Per group, [Σ dy·x̂ (cols) | Σ dy (cols)].
    let sums = rows_with_group_sums(&mut dx, cols, groups, 2 * cols, |r, dx, sums| {
        let (x, dy) = (&x[r * cols..][..cols], &dy[r * cols..][..cols]);
        let mul = &mul[(r / per_group) * cols..][..cols];
        let (m, s) = (mean[r], rstd[r]);
        let (s_xhat, s_dy) = sums.split_at_mut(cols);
        let (mut mean_g, mut mean_gx) = (T::ZERO, T::ZERO);
        for i in 0..cols {
            let xhat = (x[i] - m) * s;
            let g = dy[i] * mul[i];
            mean_g += g;
            mean_gx += g * xhat;
            s_xhat[i] += dy[i] * xhat;
            s_dy[i] += dy[i];
        }
        mean_g = mean_g / n;
        mean_gx = mean_gx / n;
        for i in 0..cols {
            let xhat = (x[i] - m) * s;
            dx[i] = s * (dy[i] * mul[i] - mean_g - xhat * mean_gx);
        }
    });
    let (s_xhat, s_dy): (Vec<&[T]>, Vec<&[T]>) =
        sums.chunks(2 * cols).map(|g| g.split_at(cols)).unzip();
    (dx, s_xhat.concat(), s_dy.concat())
}
