//! Dense matrix multiply on the CPU: `C = A·B` or `C += A·B`, written from scratch.
//!
//! The structure is the classic Goto / BLIS one:
//!
//! * [`gemm`] checks the operands, picks a micro-kernel for the running CPU and splits C into
//!   one rectangle per rayon thread when the product is large enough to pay for it;
//! * [`gemm_packed`] does the same with a B packed once beforehand ([`PackedB`]), for a B that
//!   meets many different A (the keys and values of an attention block);
//! * `block` runs the cache-blocked loop nest over one rectangle;
//! * `dispatch` describes each micro-kernel (tile shape, blocking, packers) and picks one at
//!   run time with `is_x86_feature_detected!`;
//! * `pack` (portable) and `pack_avx512` copy blocks of A and B into contiguous, zero-padded
//!   panels, so the kernels see unit-stride memory whatever the strides of the operands (a
//!   transposed operand needs no separate copy);
//! * `kernel_avx512`, `kernel_avx2` and `kernel_generic` compute one register tile of C.
//!
//! # Ceiling on the development machine
//!
//! AMD EPYC (Zen 4, family 25 model 17) with 2 cores. Each core has two 256-bit FMA pipes, so
//! it retires 16 f32 FMAs = 32 f32 flop per cycle (AVX-512 does not raise this: Zen 4 runs a
//! 512-bit FMA as two 256-bit halves, one per cycle). A register-only FMA loop measures
//! 115.5 GFLOP/s on one core, i.e. a sustained clock of about 3.6 GHz, so the ceiling is
//!
//! ```text
//! 2 cores × 3.6 GHz × 32 flop/cycle ≈ 231 GFLOP/s (f32), ≈ 115 GFLOP/s (f64)
//! ```
//!
//! # Tiles and blocking on the development machine
//!
//! The AVX-512 f32 kernel (chosen when the CPU has AVX-512F) keeps a `14 × 32` tile of C in 28
//! `zmm` registers (see `kernel_avx512`). Blocking (see `dispatch`), for Zen 4's 32 KiB L1d and
//! 1 MiB L2 per core and 32 MiB shared L3:
//!
//! * `KC = 384`: one packed A panel (`14 × 384`, 21 KiB) stays in L1 while B panels stream past
//!   it, and each C tile is loaded and stored once per 384 rank-1 updates;
//! * `NC = 320`: the packed B block (`384 × 320`, 480 KiB) sits in L2 and is reused by every A
//!   panel of the A block;
//! * `MC = 672`: the packed A block (`672 × 384`, 1 MiB) comes from L3; B is repacked once per
//!   672 rows.
//!
//! The other kernels (AVX2 `6 × 16`, portable `4 × 8`, and the f64 variants) use the same byte
//! budgets. On this machine the AVX2 kernel is within 1–3 % of the AVX-512 one; AVX-512 wins
//! mostly through its in-register transpose when packing row-major A (`pack_avx512`).
//!
//! # Threads
//!
//! Products of at least `PARALLEL_MIN_MNK` multiply-adds are cut into one rectangle of C per
//! rayon thread (`split_grid`: on 2 cores, the longer side of C in two, along tile boundaries).
//! Each rectangle packs its own A rows and B columns, so the threads never wait for each other;
//! the price is that B (or A) is packed once per thread, a few percent at most at these sizes.
//! When C has more than `MC` rows per thread the rows are cut into `MC`-sized pieces instead
//! (B is repacked every `MC` rows anyway), so rayon can rebalance if a core is busy elsewhere.

#![deny(unsafe_op_in_unsafe_fn)]

mod block;
mod dispatch;
#[cfg(target_arch = "x86_64")]
mod kernel_avx2;
#[cfg(target_arch = "x86_64")]
mod kernel_avx512;
mod kernel_generic;
mod pack;
#[cfg(target_arch = "x86_64")]
mod pack_avx512;
#[cfg(test)]
mod tests;

use std::mem::MaybeUninit;
use std::ops::{Add, Mul};

use rayon::prelude::*;

use block::{gemm_rect, BPanels, Problem};
use dispatch::{Kernel, KernelKind};

/// A matrix operand: a slice plus strides in elements (row stride, column stride), so a transposed
/// view is just swapped strides and needs no copy.
#[derive(Clone, Copy)]
pub struct MatRef<'a, T> {
    /// The elements; element `(i, j)` is `data[i·row_stride + j·col_stride]`.
    pub data: &'a [T],
    /// Distance in elements between consecutive rows.
    pub row_stride: usize,
    /// Distance in elements between consecutive columns.
    pub col_stride: usize,
}

impl<'a, T> MatRef<'a, T> {
    /// A row-major matrix of `cols` columns.
    pub fn row_major(data: &'a [T], cols: usize) -> Self {
        MatRef {
            data,
            row_stride: cols,
            col_stride: 1,
        }
    }
    /// The transpose: the same elements with the strides swapped.
    pub fn t(self) -> Self {
        MatRef {
            data: self.data,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }
}

/// Element types [`gemm`] supports: `f32` (SIMD kernels, the fast path) and `f64` (SIMD kernels
/// too; used for finite-difference gradient checks). Sealed: it cannot be implemented outside
/// this crate.
pub trait GemmScalar:
    Copy
    + Default
    + Send
    + Sync
    + PartialEq
    + Add<Output = Self>
    + Mul<Output = Self>
    + sealed::Sealed
    + 'static
{
}

impl GemmScalar for f32 {}

impl GemmScalar for f64 {}

mod sealed {
    use super::dispatch::{Kernel, KernelKind};

    /// Kernel selection per element type; private so that only this crate implements it.
    pub trait Sealed: Sized {
        /// The additive identity (named so as not to clash with other numeric traits' `ZERO`).
        const GEMM_ZERO: Self;

        /// The kernel of this kind for this type, or `None` when this build has none or the
        /// running CPU cannot execute it (see [`KernelKind::available`]).
        fn kernel(kind: KernelKind) -> Option<Kernel<Self>>;
    }
}

/// Products with fewer multiply-adds than this (`m·n·k`) stay on the calling thread: below it
/// the cost of waking a second thread is comparable with the work (≈ 2·128³ flop ≈ 40 µs on one
/// core of the development machine).
const PARALLEL_MIN_MNK: usize = 128 * 128 * 128;

/// `C[m×n]` (row-major, row stride `c_row_stride`, column stride 1) `= A[m×k]·B[k×n]`, or
/// `C += A·B` when `accumulate`.
///
/// A and B may have any strides (a transposed operand is the same data with its strides
/// swapped). When `k == 0` the product is zero: C is zeroed, or left unchanged when
/// `accumulate`. Products of at least `128³` multiply-adds are split over the rayon thread pool.
///
/// # Panics
/// If an operand's slice is too short for its shape and strides, or if `c_row_stride < n` while
/// `m > 1` (rows of C would overlap).
#[allow(clippy::too_many_arguments)]
pub fn gemm<T: GemmScalar>(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<T>,
    b: MatRef<T>,
    c: &mut [T],
    c_row_stride: usize,
    accumulate: bool,
) {
    let (kernel, threads) = best_kernel::<T>(m, n, k);
    // SAFETY: C is an initialised slice of T.
    unsafe {
        gemm_with(
            &kernel,
            threads,
            m,
            n,
            k,
            a,
            BOperand::Strided(b),
            as_uninit(c),
            c_row_stride,
            accumulate,
        )
    };
}

/// `C[m×n] = A[m×k]·B[k×n]` (or `C += A·B` when `accumulate`) with B packed beforehand by
/// [`PackedB::pack`]; otherwise as [`gemm`] (A with any strides, threads for large products).
///
/// # Panics
/// As [`gemm`].
pub fn gemm_packed<T: GemmScalar>(
    m: usize,
    a: MatRef<T>,
    b: &PackedB<T>,
    c: &mut [T],
    c_row_stride: usize,
    accumulate: bool,
) {
    let (n, k) = (b.n, b.k);
    let threads = best_kernel::<T>(m, n, k).1;
    let c = as_uninit(c);
    // SAFETY: C is an initialised slice of T; the packing's kernel reads its panels.
    unsafe {
        gemm_with(
            &b.kernel,
            threads,
            m,
            n,
            k,
            a,
            BOperand::Packed(b),
            c,
            c_row_stride,
            accumulate,
        )
    };
}

/// B (`k × n`) packed once into the micro-kernel's panels, for a product taken with many
/// different A: attention multiplies every chunk of queries by the same keys, and every
/// chunk's probabilities by the same values. [`gemm_packed`] reads the panels as they are,
/// where [`gemm`] packs B again on every call (and every `MC` rows of C).
///
/// Layout: the rows of B in blocks of `KC`; the block from row `pc` starts at element
/// `pc · n_padded` and holds the `kc × NR` panels of its columns (`pack::pack_b`), zero-padded
/// to `n_padded = ceil(n / NR) · NR` columns.
pub struct PackedB<T: GemmScalar> {
    kernel: Kernel<T>,
    k: usize,
    n: usize,
    data: Vec<T>,
}

impl<T: GemmScalar> Default for PackedB<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: GemmScalar> PackedB<T> {
    /// An empty packing for the best kernel of this CPU; [`pack`](Self::pack) fills it.
    pub fn new() -> Self {
        Self::for_kernel(best_kernel::<T>(0, 0, 0).0)
    }

    /// An empty packing for `kernel`'s panels.
    pub(crate) fn for_kernel(kernel: Kernel<T>) -> Self {
        PackedB {
            kernel,
            k: 0,
            n: 0,
            data: Vec::new(),
        }
    }

    /// Packs `b` (`k × n`, any strides), reusing this packing's memory.
    ///
    /// # Panics
    /// If `b`'s slice is too short for its shape and strides.
    pub fn pack(&mut self, k: usize, n: usize, b: MatRef<T>) {
        let b_span = span(k, n, b.row_stride, b.col_stride).expect("gemm: B span overflows usize");
        assert!(
            b.data.len() >= b_span,
            "gemm: B has {} elements, {k}×{n} view needs {b_span}",
            b.data.len()
        );
        (self.k, self.n) = (k, n);
        let (kc, n_padded) = (self.kernel.kc, self.n_padded());
        let len = k * n_padded;
        self.data.clear();
        self.data.reserve(len);
        let out = self.data.as_mut_ptr();
        for pc in (0..k).step_by(kc).take_while(|_| n > 0) {
            // SAFETY: rows pc .. pc + kc of B lie inside its span (checked above), and the
            // block from row pc (kc · n_padded elements) inside the `len` reserved.
            unsafe {
                let rows = b.data.as_ptr().add(pc * b.row_stride);
                let block = out.add(pc * n_padded);
                let kc = kc.min(k - pc);
                (self.kernel.pack_b)(kc, n, rows, b.row_stride, b.col_stride, block);
            }
        }
        // SAFETY: the packer wrote every one of the `len` elements, zero padding included.
        unsafe { self.data.set_len(len) };
    }

    /// The packed width: n rounded up to whole panels.
    fn n_padded(&self) -> usize {
        self.n.div_ceil(self.kernel.nr) * self.kernel.nr
    }
}

/// The B operand of [`gemm_with`]: in memory with strides, or packed beforehand.
#[derive(Clone, Copy)]
pub(crate) enum BOperand<'a, T: GemmScalar> {
    Strided(MatRef<'a, T>),
    Packed(&'a PackedB<T>),
}

/// [`gemm`] with `accumulate` false into memory that need not be initialised: every element of
/// the `m × n` view of C is written (zeros when `k == 0`), none is read.
///
/// # Panics
/// As [`gemm`].
#[allow(clippy::too_many_arguments)]
pub fn gemm_uninit<T: GemmScalar>(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<T>,
    b: MatRef<T>,
    c: &mut [MaybeUninit<T>],
    c_row_stride: usize,
) {
    let (kernel, threads) = best_kernel::<T>(m, n, k);
    // SAFETY: without `accumulate` C is never read.
    unsafe {
        gemm_with(
            &kernel,
            threads,
            m,
            n,
            k,
            a,
            BOperand::Strided(b),
            c,
            c_row_stride,
            false,
        )
    };
}

/// The best kernel for this CPU, and the threads an `m × n × k` product runs on: all of rayon's
/// when it is large enough to pay for them, else one.
fn best_kernel<T: GemmScalar>(m: usize, n: usize, k: usize) -> (Kernel<T>, usize) {
    let threads = if m.saturating_mul(n).saturating_mul(k) >= PARALLEL_MIN_MNK {
        rayon::current_num_threads()
    } else {
        1
    };
    let kernel = T::kernel(KernelKind::best()).expect("the best kernel kind always exists");
    (kernel, threads)
}

/// `c` seen as possibly uninitialised memory, for [`gemm_with`], which writes only values of T
/// into it (so it stays initialised).
fn as_uninit<T>(c: &mut [T]) -> &mut [MaybeUninit<T>] {
    // SAFETY: MaybeUninit<T> has T's layout, and no uninitialised value is ever written
    // through the result.
    unsafe { &mut *(c as *mut [T] as *mut [MaybeUninit<T>]) }
}

/// Number of elements an `rows × cols` view with these strides spans (0 for an empty view),
/// or `None` on overflow.
fn span(rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> Option<usize> {
    if rows == 0 || cols == 0 {
        return Some(0);
    }
    (rows - 1)
        .checked_mul(row_stride)?
        .checked_add((cols - 1).checked_mul(col_stride)?)?
        .checked_add(1)
}

/// [`gemm`] with an explicit kernel and thread count (tests use it to exercise every kernel and
/// the parallel split on small shapes). C is read only when `accumulate`.
///
/// A `Kernel` can only be obtained from `Sealed::kernel`, which refuses kinds the running CPU
/// cannot execute, so any `kern` is safe to run here.
///
/// # Panics
/// As [`gemm`].
///
/// # Safety
/// With `accumulate`, every element of the `m × n` view of C must be initialised.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_with<T: GemmScalar>(
    kern: &Kernel<T>,
    threads: usize,
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<T>,
    b: BOperand<T>,
    c: &mut [MaybeUninit<T>],
    c_row_stride: usize,
    accumulate: bool,
) {
    let a_span = span(m, k, a.row_stride, a.col_stride).expect("gemm: A span overflows usize");
    let c_span = span(m, n, c_row_stride, 1).expect("gemm: C span overflows usize");
    assert!(
        a.data.len() >= a_span,
        "gemm: A has {} elements, {m}×{k} view needs {a_span}",
        a.data.len()
    );
    let b = match b {
        BOperand::Strided(b) => {
            let b_span =
                span(k, n, b.row_stride, b.col_stride).expect("gemm: B span overflows usize");
            assert!(
                b.data.len() >= b_span,
                "gemm: B has {} elements, {k}×{n} view needs {b_span}",
                b.data.len()
            );
            BPanels::Strided {
                b: b.data.as_ptr(),
                rsb: b.row_stride,
                csb: b.col_stride,
            }
        }
        BOperand::Packed(b) => {
            assert!(
                (b.k, b.n) == (k, n),
                "gemm: packed B is {}×{}, not {k}×{n}",
                b.k,
                b.n
            );
            assert!(
                (b.kernel.nr, b.kernel.kc) == (kern.nr, kern.kc),
                "gemm: B was packed for another kernel"
            );
            BPanels::Packed {
                data: b.data.as_ptr(),
                n_padded: b.n_padded(),
                col0: 0,
            }
        }
    };
    assert!(
        c.len() >= c_span,
        "gemm: C has {} elements, {m}×{n} view needs {c_span}",
        c.len()
    );
    assert!(
        m <= 1 || c_row_stride >= n,
        "gemm: C row stride {c_row_stride} < n = {n}: rows overlap"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for row in c.chunks_mut(c_row_stride.max(n)).take(m) {
                row[..n].iter_mut().for_each(|x| {
                    x.write(T::GEMM_ZERO);
                });
            }
        }
        return;
    }

    // Split C into a gm × gn grid of rectangles, one per thread, cut along tile boundaries.
    // Each rectangle packs its own A rows and B columns, so there is no synchronisation beyond
    // the final join; with gm × gn pieces A is packed gn times and B gm times, which is why the
    // grid follows the shape of C (on 2 cores: cut the longer side in two).
    let (tiles_m, tiles_n) = (m.div_ceil(kern.mr), n.div_ceil(kern.nr));
    let (gm, gn) = split_grid(threads.min(tiles_m * tiles_n), m, n, tiles_m, tiles_n);
    // Tall C: B is repacked every MC rows anyway, so cutting the rows into pieces of at most
    // MC costs no extra packing, and the surplus pieces let rayon rebalance when a core is
    // busy with something else. Keep gm a multiple of its first value so that every thread
    // still gets the same share.
    let gm = if gm * gn > 1 {
        m.div_ceil(kern.mc).next_multiple_of(gm).clamp(gm, tiles_m)
    } else {
        1
    };
    let problem = Problem {
        m,
        n,
        k,
        a: a.data.as_ptr(),
        rsa: a.row_stride,
        csa: a.col_stride,
        b,
        c: c.as_mut_ptr().cast::<T>(),
        rsc: c_row_stride,
        accumulate,
    };
    // Closures capture this reference (a `Problem` is Sync), not the raw-pointer fields.
    let whole = &problem;
    let rect = |piece: usize| -> Problem<T> {
        let base = *whole;
        let (pi, pj) = (piece / gn, piece % gn);
        let (r0, r1) = (
            tiles_m * pi / gm * kern.mr,
            (tiles_m * (pi + 1) / gm * kern.mr).min(m),
        );
        let (c0, c1) = (
            tiles_n * pj / gn * kern.nr,
            (tiles_n * (pj + 1) / gn * kern.nr).min(n),
        );
        // SAFETY: split_grid gives every piece at least one tile, so r0 < m and c0 < n (and
        // k > 0): the offsets address elements (r0, 0) of A, (0, c0) of B and (r0, c0) of C.
        unsafe {
            Problem {
                m: r1 - r0,
                n: c1 - c0,
                a: base.a.add(r0 * base.rsa),
                b: base.b.columns_from(c0),
                c: base.c.add(r0 * base.rsc + c0),
                ..base
            }
        }
    };
    if gm * gn == 1 {
        // SAFETY: the slices were checked to cover the views above, and `c` is borrowed mutably.
        unsafe { gemm_rect(kern, &problem) };
        return;
    }
    (0..gm * gn).into_par_iter().for_each(|piece| {
        let p = rect(piece);
        if p.m == 0 || p.n == 0 {
            return;
        }
        // SAFETY: the pieces are disjoint rectangles of C (their row and column ranges
        // partition 0..m and 0..n), A and B are only read, and `c` stays mutably borrowed by
        // this function until `for_each` has joined every piece.
        unsafe { gemm_rect(kern, &p) };
    });
}

/// Chooses a `gm × gn` grid with `gm · gn ≤ threads` that cuts C into rectangles as close to
/// square as possible (minimising repeated packing), using no more rows (columns) of pieces
/// than there are row (column) tiles.
fn split_grid(
    threads: usize,
    m: usize,
    n: usize,
    tiles_m: usize,
    tiles_n: usize,
) -> (usize, usize) {
    let threads = threads.max(1);
    let mut best = (1, 1);
    let mut best_cost = f64::INFINITY;
    for gm in 1..=threads.min(tiles_m) {
        let gn = (threads / gm).min(tiles_n);
        // Total packed elements per unit k: each piece packs its m/gm rows of A and n/gn
        // columns of B; prefer using all threads, then the least packing.
        let pack = (gm * gn) as f64 * (m as f64 / gm as f64 + n as f64 / gn as f64);
        let cost = (threads - gm * gn) as f64 * 1e30 + pack;
        // On ties keep the larger gm (cut rows): B, usually the cheaper operand to pack
        // (row-major B is a plain copy), is then the one packed repeatedly.
        if cost <= best_cost {
            best_cost = cost;
            best = (gm, gn);
        }
    }
    best
}
