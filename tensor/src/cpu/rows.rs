//! Outputs written row by row straight into a new allocation: no zero-fill pass first (in a
//! training step those fills of outputs about to be overwritten cost a few percent).

use super::PARALLEL_MIN_ELEMS;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// A [rows, cols] vector whose row r is written by `fill(r, row)`, and the value each call
/// returns (one per row, in order). Rows run in parallel when the whole is large.
///
/// # Safety
/// `fill` must write every slot of the row it is given.
pub(crate) unsafe fn filled_rows<T: Send, S: Send>(
    rows: usize,
    cols: usize,
    fill: impl Fn(usize, &mut [MaybeUninit<T>]) -> S + Sync,
) -> (Vec<T>, Vec<S>) {
    let n = rows * cols;
    if n == 0 {
        return (Vec::new(), (0..rows).map(|r| fill(r, &mut [])).collect());
    }
    let mut out: Vec<T> = Vec::with_capacity(n);
    let slots = &mut out.spare_capacity_mut()[..n];
    let per_row: Vec<S> = if n >= PARALLEL_MIN_ELEMS {
        let rows = slots.par_chunks_mut(cols).enumerate();
        rows.map(|(r, row)| fill(r, row)).collect()
    } else {
        let rows = slots.chunks_mut(cols).enumerate();
        rows.map(|(r, row)| fill(r, row)).collect()
    };
    // SAFETY: the n slots were cut into `rows` rows of `cols`, and `fill` writes every slot of
    // the row it is given (the caller's promise).
    unsafe { out.set_len(n) };
    (out, per_row)
}
