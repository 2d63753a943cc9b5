//! Batched matrix multiply on the CPU: a loop over batch entries around our blocked GEMM.
//! Operands may be any strided view (a transposed operand is swapped strides, never a copy).

use super::elementwise::copy_strided;
use super::gemm::{gemm, gemm_uninit, MatRef};
use super::Float;
use crate::Layout;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// out [batch.., m, n] = a [batch.., m, k] · b [batch.., k, n] (+ start), where `la` and `lb`
/// have the same batch dims (already broadcast; a broadcast batch dim has stride 0) and
/// `start`, when given, is laid out as the output (a broadcast view): the output starts as its
/// copy and the GEMM accumulates into it.
pub fn batched_matmul<T: Float>(
    a: &[T],
    la: &Layout,
    b: &[T],
    lb: &Layout,
    start: Option<(&[T], &Layout)>,
) -> Vec<T> {
    let rank = la.dims().len();
    let (m, k, n) = (
        la.dims()[rank - 2],
        la.dims()[rank - 1],
        lb.dims()[rank - 1],
    );
    let batch_dims = &la.dims()[..rank - 2];
    let batch: usize = batch_dims.iter().product();
    let total = batch * m * n;
    let accumulate = start.is_some();
    let mut out = match start {
        Some((c, lc)) => copy_strided(c, lc),
        None => Vec::with_capacity(total), // written by the GEMMs, no zero fill first
    };
    if total == 0 {
        return out;
    }
    let offsets = |l: &Layout, mut bi: usize| -> usize {
        // Decode the batch index into a multi-index and apply the layout's batch strides.
        let mut off = l.offset();
        for d in (0..rank - 2).rev() {
            off += (bi % batch_dims[d]) * l.strides()[d];
            bi /= batch_dims[d];
        }
        off
    };
    // (offset, row stride, column stride) of batch entry `bi` of an operand.
    let mat =
        |l: &Layout, bi: usize| (offsets(l, bi), l.strides()[rank - 2], l.strides()[rank - 1]);
    // Batch entry bi of each operand.
    let operands = |bi: usize| {
        let ((oa, rsa, csa), (ob, rsb, csb)) = (mat(la, bi), mat(lb, bi));
        let a = MatRef {
            data: &a[oa..],
            row_stride: rsa,
            col_stride: csa,
        };
        let b = MatRef {
            data: &b[ob..],
            row_stride: rsb,
            col_stride: csb,
        };
        (a, b)
    };
    if accumulate {
        let one = |(bi, c): (usize, &mut [T])| {
            let (a, b) = operands(bi);
            gemm(m, n, k, a, b, c, n, true);
        };
        if batch > 1 {
            out.par_chunks_mut(m * n).enumerate().for_each(one);
        } else {
            one((0, &mut out));
        }
    } else {
        let one = |(bi, c): (usize, &mut [MaybeUninit<T>])| {
            let (a, b) = operands(bi);
            gemm_uninit(m, n, k, a, b, c, n);
        };
        let slots = &mut out.spare_capacity_mut()[..total];
        if batch > 1 {
            slots.par_chunks_mut(m * n).enumerate().for_each(one);
        } else {
            one((0, slots));
        }
        // SAFETY: each of the `batch` chunks of m·n slots was written whole by `gemm_uninit`.
        unsafe { out.set_len(total) };
    }
    out
}
