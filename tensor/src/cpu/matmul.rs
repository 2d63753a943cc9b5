//! Batched matrix multiply on the CPU: a loop over batch entries around our blocked GEMM.
//! Operands may be any strided view (a transposed operand is swapped strides, never a copy).

use super::elementwise::copy_strided;
use super::gemm::{gemm, MatRef};
use super::Float;
use crate::Layout;
use rayon::prelude::*;

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
    let accumulate = start.is_some();
    let mut out = match start {
        Some((c, lc)) => copy_strided(c, lc),
        None => vec![T::ZERO; batch * m * n],
    };
    if batch * m * n == 0 {
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
    let one = |(bi, c): (usize, &mut [T])| {
        let (oa, rsa, csa) = mat(la, bi);
        let (ob, rsb, csb) = mat(lb, bi);
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
        gemm(m, n, k, a, b, c, n, accumulate);
    };
    if batch > 1 {
        out.par_chunks_mut(m * n).enumerate().for_each(one);
    } else {
        one((0, &mut out));
    }
    out
}
