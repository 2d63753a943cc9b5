//! Indexing kernels along one dim, with the tensor viewed as [outer, size, inner] around it.
//! Indices are u32 and already checked against the dim size by the caller (`check_indices`).

use super::PARALLEL_MIN_ELEMS;
use crate::{Error, ErrorKind, Result};
use rayon::prelude::*;
use std::ops::AddAssign;

/// Fails with the first index that is not below `size`.
pub fn check_indices(op: &'static str, ids: &[u32], size: usize, dim: usize) -> Result<()> {
    match ids.iter().find(|&&i| i as usize >= size) {
        Some(&bad) => Err(Error {
            op,
            kind: ErrorKind::Index {
                index: bad as u64,
                size,
                dim,
            },
        }),
        None => Ok(()),
    }
}

/// `out[o, j, i] = x[o, ids[j], i]`: x `[outer, size, inner]` → out `[outer, ids.len(), inner]`.
pub fn index_select<T: Copy + Send + Sync + Default>(
    x: &[T],
    size: usize,
    inner: usize,
    ids: &[u32],
) -> Vec<T> {
    let outer = x.len().checked_div(size * inner).unwrap_or(0);
    let mut out = vec![T::default(); outer * ids.len() * inner];
    if inner == 0 {
        return out;
    }
    let work = |(r, row): (usize, &mut [T])| {
        let (o, j) = (r / ids.len(), r % ids.len());
        let src = (o * size + ids[j] as usize) * inner;
        row.copy_from_slice(&x[src..src + inner]);
    };
    if out.len() >= PARALLEL_MIN_ELEMS {
        out.par_chunks_mut(inner).enumerate().for_each(work);
    } else {
        out.chunks_mut(inner).enumerate().for_each(work);
    }
    out
}

/// `dst[o, ids[j], i] += src[o, j, i]`: the adjoint of `index_select` (repeated ids accumulate).
pub fn index_add<T: Copy + AddAssign>(
    dst: &mut [T],
    size: usize,
    inner: usize,
    ids: &[u32],
    src: &[T],
) {
    let n = ids.len();
    let outer = src.len().checked_div(n * inner).unwrap_or(0);
    for o in 0..outer {
        for (j, &id) in ids.iter().enumerate() {
            let d = (o * size + id as usize) * inner;
            let s = (o * n + j) * inner;
            for i in 0..inner {
                dst[d + i] += src[s + i];
            }
        }
    }
}

/// out[o, j, i] = x[o, idx[o, j, i], i]: x [outer, size, inner], idx [outer, n, inner].
pub fn gather<T: Copy + Send + Sync + Default>(
    x: &[T],
    size: usize,
    inner: usize,
    idx: &[u32],
    n: usize,
) -> Vec<T> {
    let mut out = vec![T::default(); idx.len()];
    if n * inner == 0 {
        return out;
    }
    let work = |(o, (out, idx)): (usize, (&mut [T], &[u32]))| {
        let block = &x[o * size * inner..(o + 1) * size * inner];
        for (k, (out, &id)) in out.iter_mut().zip(idx).enumerate() {
            *out = block[id as usize * inner + k % inner];
        }
    };
    if idx.len() >= PARALLEL_MIN_ELEMS {
        out.par_chunks_mut(n * inner)
            .zip(idx.par_chunks(n * inner))
            .enumerate()
            .for_each(work);
    } else {
        out.chunks_mut(n * inner)
            .zip(idx.chunks(n * inner))
            .enumerate()
            .for_each(work);
    }
    out
}

/// dst[o, idx[o, j, i], i] += src[o, j, i]: the adjoint of `gather`.
pub fn scatter_add<T: Copy + Send + Sync + AddAssign>(
    dst: &mut [T],
    size: usize,
    inner: usize,
    idx: &[u32],
    src: &[T],
    n: usize,
) {
    if n * inner == 0 || size == 0 {
        return;
    }
    let work = |(dst, (idx, src)): (&mut [T], (&[u32], &[T]))| {
        for (k, (&id, &v)) in idx.iter().zip(src).enumerate() {
            dst[id as usize * inner + k % inner] += v;
        }
    };
    if idx.len() >= PARALLEL_MIN_ELEMS {
        dst.par_chunks_mut(size * inner)
            .zip(idx.par_chunks(n * inner).zip(src.par_chunks(n * inner)))
            .for_each(work);
    } else {
        dst.chunks_mut(size * inner)
            .zip(idx.chunks(n * inner).zip(src.chunks(n * inner)))
            .for_each(work);
    }
}
