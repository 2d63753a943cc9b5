//! AVX-512F micro-kernels (x86-64, selected at run time when the CPU reports `avx512f`).
//!
//! Register tile: `MR = 14` rows × 2 vectors per row (`NR = 32` f32 or `16` f64 columns).
//! That is 28 accumulator `zmm` registers plus the 2 `zmm` holding the current row of the packed
//! B panel, 30 of the 32 architectural registers. The A element of each row is broadcast
//! straight from memory (`vfmadd231ps zmm, zmm, [mem]{1to16}`), so it needs no register. Per
//! step of `k` the kernel issues 28 FMAs against 2 vector loads and 14 broadcast loads, well
//! inside Zen 4's 3 loads per cycle while the FMA pipes are saturated (one 512-bit FMA per cycle:
//! Zen 4 double-pumps 512-bit operations through its two 256-bit FMA units). 28 independent
//! accumulators also hide the 4-cycle FMA latency many times over.

use std::arch::x86_64::*;

/// Rows of the register tile.
pub(crate) const MR: usize = 14;
/// Columns of the f32 register tile (two 16-lane vectors).
pub(crate) const NR_F32: usize = 32;
/// Columns of the f64 register tile (two 8-lane vectors).
pub(crate) const NR_F64: usize = 16;

/// Defines one AVX-512 micro-kernel: `C[MR × NR] (+)= Apanel · Bpanel` over `kc` steps.
macro_rules! avx512_kernel {
    ($name:ident, $t:ty, $lanes:expr, $set1:ident, $fmadd:ident, $loadu:ident, $storeu:ident,
     $add:ident, $zero:ident) => {
        /// Computes one `MR × 2·lanes` tile: `C = A·B`, or `C += A·B` when `accumulate`.
        ///
        /// # Safety
        /// The CPU must support AVX-512F. `a` must point to a packed A panel of `MR · kc`
        /// elements, `b` to a packed B panel of `kc · 2·lanes` elements, and `c` must be valid for
        /// reading and writing `MR` rows of `2·lanes` contiguous elements, `rsc` apart.
        #[target_feature(enable = "avx512f")]
        pub(crate) unsafe fn $name(
            kc: usize,
            a: *const $t,
            b: *const $t,
            c: *mut $t,
            rsc: usize,
            accumulate: bool,
        ) {
            const NR: usize = 2 * $lanes;
            // Warm the C tile (both ends of each row: a row may straddle cache lines) while the
            // k loop runs, so that the read-modify-write at the end hits L1.
            for i in 0..MR {
                // SAFETY: row `i` of the tile is inside C by the contract; prefetch never faults.
                unsafe {
                    _mm_prefetch::<_MM_HINT_T0>(c.add(i * rsc).cast::<i8>());
                    _mm_prefetch::<_MM_HINT_T0>(c.add(i * rsc + NR - 1).cast::<i8>());
                }
            }
            let mut acc = [[$zero(); 2]; MR];
            for p in 0..kc {
                // SAFETY: step `p` reads elements `p·NR .. p·NR + NR` of the B panel and
                // `p·MR .. p·MR + MR` of the A panel, both inside the panels by the contract.
                unsafe {
                    let b0 = $loadu(b.add(p * NR));
                    let b1 = $loadu(b.add(p * NR + $lanes));
                    let ap = a.add(p * MR);
                    for (i, row) in acc.iter_mut().enumerate() {
                        let ai = $set1(*ap.add(i));
                        row[0] = $fmadd(ai, b0, row[0]);
                        row[1] = $fmadd(ai, b1, row[1]);
                    }
                }
            }
            for (i, row) in acc.iter().enumerate() {
                // SAFETY: row `i` of the C tile holds `NR` elements at `c + i·rsc` by the contract.
                unsafe {
                    let p0 = c.add(i * rsc);
                    let p1 = p0.add($lanes);
                    if accumulate {
                        $storeu(p0, $add(row[0], $loadu(p0)));
                        $storeu(p1, $add(row[1], $loadu(p1)));
                    } else {
                        $storeu(p0, row[0]);
                        $storeu(p1, row[1]);
                    }
                }
            }
        }
    };
}

avx512_kernel!(
    kernel_f32,
    f32,
    16,
    _mm512_set1_ps,
    _mm512_fmadd_ps,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_add_ps,
    _mm512_setzero_ps
);

avx512_kernel!(
    kernel_f64,
    f64,
    8,
    _mm512_set1_pd,
    _mm512_fmadd_pd,
    _mm512_loadu_pd,
    _mm512_storeu_pd,
    _mm512_add_pd,
    _mm512_setzero_pd
);
