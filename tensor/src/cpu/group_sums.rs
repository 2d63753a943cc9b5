//! A row-wise pass that also sums per group: the shape of every backward whose parameter is
//! broadcast over the rows of a group (a layer norm's or adaLN's per-sequence vectors).

use super::{Float, PARALLEL_MIN_ELEMS};
use rayon::prelude::*;

/// Runs `f(r, out_row, sums)` for every row r of `out` [rows, cols], whose rows form `groups`
/// runs of equal length, and returns the sums [groups, width]: `f` adds row r's contribution
/// into `sums` (zeroed, `width` long). Groups run in parallel, and so do bands of rows within a
/// group; each band has its own sums, added in order, so the result does not depend on the
/// thread schedule.
pub fn rows_with_group_sums<T: Float>(
    out: &mut [T],
    cols: usize,
    groups: usize,
    width: usize,
    f: impl Fn(usize, &mut [T], &mut [T]) + Sync,
) -> Vec<T> {
    let rows = out.len().checked_div(cols).unwrap_or(0);
    if rows == 0 || groups == 0 {
        return vec![T::ZERO; groups * width];
    }
    let per_group = rows / groups;
    let band = (PARALLEL_MIN_ELEMS / cols).clamp(1, per_group);
    let per_group_sums: Vec<Vec<T>> = out
        .par_chunks_mut(per_group * cols)
        .enumerate()
        .map(|(g, group)| {
            let bands: Vec<Vec<T>> = group
                .par_chunks_mut(band * cols)
                .enumerate()
                .map(|(b, rows_of_band)| {
                    let mut sums = vec![T::ZERO; width];
                    for (i, row) in rows_of_band.chunks_mut(cols).enumerate() {
                        f(g * per_group + b * band + i, row, &mut sums);
                    }
                    sums
                })
                .collect();
            bands.into_iter().fold(vec![T::ZERO; width], |mut acc, s| {
                acc.iter_mut().zip(s).for_each(|(a, s)| *a += s);
                acc
            })
        })
        .collect();
    per_group_sums.concat()
}
