//! Elementwise kernels: unary maps, the fused unary backward, broadcasting two- and three-input
//! maps, strided copies and casts.

use super::{Float, PARALLEL_MIN_ELEMS};
use crate::op::UnaryOp;
use crate::{Layout, WithDType};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Elements per rayon task for elementwise work.
const CHUNK: usize = 1 << 13;

/// `out[i] = f(x[i])` over a contiguous slice, in parallel when large. The results are written
/// straight into the new allocation (no zero-fill pass first: that pass cost as much as a
/// cheap map itself).
pub fn map<T: Copy + Send + Sync, O: Copy + Send + Sync>(
    x: &[T],
    f: impl Fn(T) -> O + Sync,
) -> Vec<O> {
    let n = x.len();
    let mut out: Vec<O> = Vec::with_capacity(n);
    let slots = &mut out.spare_capacity_mut()[..n];
    let work = |o: &mut [MaybeUninit<O>], x: &[T]| {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F, checked just above.
            return unsafe { write_map_avx512(o, x, &f) };
        }
        write_map(o, x, &f)
    };
    if n >= PARALLEL_MIN_ELEMS {
        slots
            .par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(o, x)| work(o, x));
    } else {
        work(slots, x);
    }
    // SAFETY: `slots` and `x` both hold n elements and were cut into chunks of the same
    // lengths, so the zips above wrote every one of the n slots.
    unsafe { out.set_len(n) };
    out
}

#[inline(always)]
fn write_map<T: Copy, O>(o: &mut [MaybeUninit<O>], x: &[T], f: &impl Fn(T) -> O) {
    o.iter_mut().zip(x).for_each(|(o, &x)| {
        o.write(f(x));
    });
}

/// [`write_map`] compiled for AVX-512: sixteen lanes for the polynomial `tanh` and `exp` that
/// GELU and friends inline, four times the baseline build's SSE2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn write_map_avx512<T: Copy, O>(o: &mut [MaybeUninit<O>], x: &[T], f: &impl Fn(T) -> O) {
    write_map(o, x, f)
}

/// Expands `$body` once per unary op with `$op` a constant, so that each loop body is
/// straight-line code the compiler can vectorise (a `match` per element would stop that).
macro_rules! for_each_unary_op {
    ($op:expr, |$c:ident| $body:expr) => {
        match $op {
            UnaryOp::Neg => {
                const $c: UnaryOp = UnaryOp::Neg;
                $body
            }
            UnaryOp::Exp => {
                const $c: UnaryOp = UnaryOp::Exp;
                $body
            }
            UnaryOp::Log => {
                const $c: UnaryOp = UnaryOp::Log;
                $body
            }
            UnaryOp::Sqrt => {
                const $c: UnaryOp = UnaryOp::Sqrt;
                $body
            }
            UnaryOp::Sqr => {
                const $c: UnaryOp = UnaryOp::Sqr;
                $body
            }
            UnaryOp::Recip => {
                const $c: UnaryOp = UnaryOp::Recip;
                $body
            }
            UnaryOp::Tanh => {
                const $c: UnaryOp = UnaryOp::Tanh;
                $body
            }
            UnaryOp::Sigmoid => {
                const $c: UnaryOp = UnaryOp::Sigmoid;
                $body
            }
            UnaryOp::Silu => {
                const $c: UnaryOp = UnaryOp::Silu;
                $body
            }
            UnaryOp::GeluTanh => {
                const $c: UnaryOp = UnaryOp::GeluTanh;
                $body
            }
        }
    };
}

/// y = op(x) over a contiguous slice.
pub fn unary<T: Float>(x: &[T], op: UnaryOp) -> Vec<T> {
    for_each_unary_op!(op, |OP| map(x, |x| OP.forward(x)))
}

/// The backward of a unary op in one pass: dx = dy · op'(x), all three contiguous (as `map`:
/// no zero fill, AVX-512 where the CPU has it).
pub fn unary_backward<T: Float>(x: &[T], y: &[T], dy: &[T], op: UnaryOp) -> Vec<T> {
    for_each_unary_op!(op, |OP| {
        map_triples(x, y, dy, |x, y, dy| dy * OP.derivative(x, y))
    })
}

/// out[i] = f(a[i], b[i], c[i]) over three contiguous slices of one length.
fn map_triples<T: Copy + Send + Sync>(
    a: &[T],
    b: &[T],
    c: &[T],
    f: impl Fn(T, T, T) -> T + Sync,
) -> Vec<T> {
    let n = a.len();
    let mut out: Vec<T> = Vec::with_capacity(n);
    let slots = &mut out.spare_capacity_mut()[..n];
    let work = |o: &mut [MaybeUninit<T>], a: &[T], b: &[T], c: &[T]| {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F, checked just above.
            return unsafe { write_triples_avx512(o, (a, b, c), &f) };
        }
        write_triples(o, (a, b, c), &f)
    };
    if n >= PARALLEL_MIN_ELEMS {
        let inputs = a
            .par_chunks(CHUNK)
            .zip(b.par_chunks(CHUNK))
            .zip(c.par_chunks(CHUNK));
        slots
            .par_chunks_mut(CHUNK)
            .zip(inputs)
            .for_each(|(o, ((a, b), c))| work(o, a, b, c));
    } else {
        work(slots, a, b, c);
    }
    // SAFETY: the slots and the three inputs all hold n elements, cut into chunks of the same
    // lengths, so every slot was written (as in `map`).
    unsafe { out.set_len(n) };
    out
}

#[inline(always)]
fn write_triples<T: Copy>(
    o: &mut [MaybeUninit<T>],
    (a, b, c): (&[T], &[T], &[T]),
    f: &impl Fn(T, T, T) -> T,
) {
    for (i, o) in o.iter_mut().enumerate() {
        o.write(f(a[i], b[i], c[i]));
    }
}

/// [`write_triples`] compiled for AVX-512 (as [`write_map_avx512`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn write_triples_avx512<T: Copy>(
    o: &mut [MaybeUninit<T>],
    inputs: (&[T], &[T], &[T]),
    f: &impl Fn(T, T, T) -> T,
) {
    write_triples(o, inputs, f)
}

/// The storage offsets where each output row starts, for each input layout. All layouts have
/// the output's shape (inputs were broadcast to it), so their odometers advance in lockstep.
fn row_starts(layouts: &[&Layout]) -> (Vec<Vec<usize>>, usize) {
    let row_len = layouts[0].dims().last().copied().unwrap_or(1);
    let starts = layouts.iter().map(|l| l.rows().0.collect()).collect();
    (starts, row_len)
}

/// out = f(a, b) where `la` and `lb` are layouts broadcast to the output shape (stride 0 on
/// broadcast dims). Walks output rows; each input is read at its own stride inside a row.
pub fn map2<A, B, O>(
    a: &[A],
    la: &Layout,
    b: &[B],
    lb: &Layout,
    f: impl Fn(A, B) -> O + Sync,
) -> Vec<O>
where
    A: Copy + Sync,
    B: Copy + Sync,
    O: Copy + Send + Default,
{
    let n = la.shape().numel();
    if la.is_contiguous() && lb.is_contiguous() {
        let (a, b) = (
            &a[la.offset()..la.offset() + n],
            &b[lb.offset()..lb.offset() + n],
        );
        let mut out: Vec<O> = Vec::with_capacity(n);
        let slots = &mut out.spare_capacity_mut()[..n];
        let work = |o: &mut [MaybeUninit<O>], a: &[A], b: &[B]| {
            o.iter_mut().zip(a.iter().zip(b)).for_each(|(o, (&a, &b))| {
                o.write(f(a, b));
            });
        };
        if n >= PARALLEL_MIN_ELEMS {
            slots
                .par_chunks_mut(CHUNK)
                .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
                .for_each(|(o, (a, b))| work(o, a, b));
        } else {
            work(slots, a, b);
        }
        // SAFETY: `slots`, `a` and `b` all hold n elements, cut into chunks of the same
        // lengths, so the zips above wrote every one of the n slots (as in `map`).
        unsafe { out.set_len(n) };
        return out;
    }
    let (starts, row_len) = row_starts(&[la, lb]);
    let (sa, sb) = (last_stride(la), last_stride(lb));
    let mut out = vec![O::default(); n];
    if row_len == 0 {
        return out;
    }
    let work = |(r, o): (usize, &mut [O])| {
        let (oa, ob) = (starts[0][r], starts[1][r]);
        match (sa, sb) {
            // The common cases (a bias row, a per-row scalar) as slice loops that vectorise.
            (1, 1) => {
                let rows = a[oa..oa + row_len].iter().zip(&b[ob..ob + row_len]);
                o.iter_mut()
                    .zip(rows)
                    .for_each(|(o, (&a, &b))| *o = f(a, b));
            }
            (1, 0) => {
                let b = b[ob];
                let row = &a[oa..oa + row_len];
                o.iter_mut().zip(row).for_each(|(o, &a)| *o = f(a, b));
            }
            _ => {
                for (j, o) in o.iter_mut().enumerate() {
                    *o = f(a[oa + j * sa], b[ob + j * sb]);
                }
            }
        }
    };
    if n >= PARALLEL_MIN_ELEMS {
        out.par_chunks_mut(row_len).enumerate().for_each(work);
    } else {
        out.chunks_mut(row_len).enumerate().for_each(work);
    }
    out
}

/// out = f(c, a, b) for three inputs broadcast to the output shape (used by `where`).
pub fn map3<C, T, O>(
    c: &[C],
    lc: &Layout,
    a: &[T],
    la: &Layout,
    b: &[T],
    lb: &Layout,
    f: impl Fn(C, T, T) -> O + Sync,
) -> Vec<O>
where
    C: Copy + Sync,
    T: Copy + Sync,
    O: Copy + Send + Default,
{
    let n = la.shape().numel();
    let (starts, row_len) = row_starts(&[lc, la, lb]);
    let (sc, sa, sb) = (last_stride(lc), last_stride(la), last_stride(lb));
    let mut out = vec![O::default(); n];
    if row_len == 0 {
        return out;
    }
    let work = |(r, o): (usize, &mut [O])| {
        let (oc, oa, ob) = (starts[0][r], starts[1][r], starts[2][r]);
        for (j, o) in o.iter_mut().enumerate() {
            *o = f(c[oc + j * sc], a[oa + j * sa], b[ob + j * sb]);
        }
    };
    if n >= PARALLEL_MIN_ELEMS {
        out.par_chunks_mut(row_len).enumerate().for_each(work);
    } else {
        out.chunks_mut(row_len).enumerate().for_each(work);
    }
    out
}

fn last_stride(l: &Layout) -> usize {
    l.strides().last().copied().unwrap_or(1)
}

/// The elements of a strided view, copied into row-major order (written straight into the new
/// allocation; rows of stride 1 are plain copies and rows of stride 0, a broadcast bias, fills).
pub fn copy_strided<T: Copy + Send + Sync>(src: &[T], l: &Layout) -> Vec<T> {
    let n = l.shape().numel();
    if l.is_contiguous() {
        return src[l.offset()..l.offset() + n].to_vec();
    }
    if n == 0 {
        return Vec::new();
    }
    let (starts, row_len, stride) = l.rows();
    let starts: Vec<usize> = starts.collect();
    let work = |(r, o): (usize, &mut [MaybeUninit<T>])| {
        let s = starts[r];
        match stride {
            1 => o.iter_mut().zip(&src[s..s + row_len]).for_each(|(o, &x)| {
                o.write(x);
            }),
            0 => o.iter_mut().for_each(|o| {
                o.write(src[s]);
            }),
            _ => o.iter_mut().enumerate().for_each(|(j, o)| {
                o.write(src[s + j * stride]);
            }),
        }
    };
    let mut out: Vec<T> = Vec::with_capacity(n);
    let slots = &mut out.spare_capacity_mut()[..n];
    if n >= PARALLEL_MIN_ELEMS {
        slots.par_chunks_mut(row_len).enumerate().for_each(work);
    } else {
        slots.chunks_mut(row_len).enumerate().for_each(work);
    }
    // SAFETY: n = rows · row_len, each chunk is one whole row, and every arm of `work` writes
    // each element of its row.
    unsafe { out.set_len(n) };
    out
}

/// Writes the contiguous `src` into the region of `dst` that layout `l` describes, a row at a
/// time (a plain copy for rows of stride 1).
pub fn write_strided<T: Copy>(dst: &mut [T], l: &Layout, src: &[T]) {
    let (starts, row_len, stride) = l.rows();
    if row_len == 0 {
        return;
    }
    for (start, row) in starts.zip(src.chunks_exact(row_len)) {
        if stride == 1 {
            dst[start..start + row_len].copy_from_slice(row);
        } else {
            for (j, &x) in row.iter().enumerate() {
                dst[start + j * stride] = x;
            }
        }
    }
}

/// Converts every element between dtypes (floats round to nearest; floats to integers truncate).
pub fn cast<S: WithDType, D: WithDType + Default>(src: &[S]) -> Vec<D> {
    map(src, |x| D::from_f64(x.to_f64()))
}
