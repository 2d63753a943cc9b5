//! The gated residual of a DiT block, `y = h + gate[g] ⊙ dropout(branch)`, in one pass, and its
//! backward. The dropout mask is never stored: element i is kept when the i-th uniform of the
//! stream `key` is ≥ p (as `Tensor::dropout_mask`), so the backward recomputes it.
//!
//! h, branch, y: [rows, cols], whose rows form G runs of equal length (one per sequence, or
//! one); gate: [G, cols].

use super::group_sums::rows_with_group_sums;
use super::rows::filled_rows;
use super::sample::{mask, DropoutNoise};
use super::Float;
use std::mem::MaybeUninit;

/// `y = h + gate[group] ⊙ dropout(branch)`.
pub fn gated_residual<T: Float>(
    h: &[T],
    gate: &[T],
    branch: &[T],
    cols: usize,
    dropout: Option<DropoutNoise>,
) -> Vec<T> {
    if cols == 0 || h.is_empty() {
        return vec![T::ZERO; h.len()];
    }
    let rows = h.len() / cols;
    let per_group = rows / (gate.len() / cols);
    let mask = mask::<T>(dropout);
    let row = |r: usize, y: &mut [MaybeUninit<T>]| {
        let gate = &gate[(r / per_group) * cols..][..cols];
        for (j, y) in y.iter_mut().enumerate() {
            let i = r * cols + j;
            y.write(h[i] + gate[j] * branch[i] * mask(i));
        }
    };
    // SAFETY: `row` writes each of the cols slots of its row.
    unsafe { filled_rows(rows, cols, row) }.0
}

/// (d branch [rows, cols], d gate [G, cols]) from dy; d h is dy itself.
/// d branch = dy ⊙ gate ⊙ mask, d gate = Σ over the group's rows of dy ⊙ dropout(branch).
pub fn gated_residual_backward<T: Float>(
    gate: &[T],
    branch: &[T],
    dy: &[T],
    cols: usize,
    dropout: Option<DropoutNoise>,
) -> (Vec<T>, Vec<T>) {
    let mut d_branch = vec![T::ZERO; dy.len()];
    let groups = gate.len() / cols.max(1);
    let rows = dy.len().checked_div(cols).unwrap_or(0);
    let per_group = rows.checked_div(groups).unwrap_or(0);
    let mask = mask::<T>(dropout);
    let d_gate = rows_with_group_sums(&mut d_branch, cols, groups, cols, |r, db, d_gate| {
        let gate = &gate[(r / per_group) * cols..][..cols];
        for j in 0..cols {
            let i = r * cols + j;
            let m = mask(i);
            db[j] = dy[i] * gate[j] * m;
            d_gate[j] += dy[i] * branch[i] * m;
        }
    });
    (d_branch, d_gate)
}
