//! AVX2 + FMA micro-kernels (x86-64, selected at run time when the CPU reports `avx2` and `fma`
//! but not `avx512f`).
//!
//! Register tile: `MR = 6` rows × 2 vectors per row (`NR = 16` f32 or `8` f64 columns), the
//! classic Haswell-style tile. That is 12 accumulator `ymm` registers, 2 `ymm` for the current row
//! of the packed B panel and 1 for the broadcast A element: 15 of the 16 architectural registers
//! (AVX2 FMAs cannot take a broadcast memory operand). Per step of `k` the kernel issues 12 FMAs
//! (6 cycles on two FMA pipes) against 2 vector loads and 6 broadcast loads, and 12 independent
//! accumulators cover the FMA latency × throughput product (4 × 2 = 8).

use std::arch::x86_64::*;

/// Rows of the register tile.
pub(crate) const MR: usize = 6;
/// Columns of the f32 register tile (two 8-lane vectors).
pub(crate) const NR_F32: usize = 16;
/// Columns of the f64 register tile (two 4-lane vectors).
pub(crate) const NR_F64: usize = 8;

/// Defines one AVX2 micro-kernel: `C[MR × NR] (+)= Apanel · Bpanel` over `kc` steps.
macro_rules! avx2_kernel {
    ($name:ident, $t:ty, $lanes:expr, $set1:ident, $fmadd:ident, $loadu:ident, $storeu:ident,
     $add:ident, $zero:ident) => {
        /// Computes one `MR × 2·lanes` tile: `C = A·B`, or `C += A·B` when `accumulate`.
        ///
        /// # Safety
        /// The CPU must support AVX2 and FMA. `a` must point to a packed A panel of `MR · kc`
        /// elements, `b` to a packed B panel of `kc · 2·lanes` elements, and `c` must be valid for
        /// reading and writing `MR` rows of `2·lanes` contiguous elements, `rsc` apart.
        #[target_feature(enable = "avx2,fma")]
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

avx2_kernel!(
    kernel_f32,
    f32,
    8,
    _mm256_set1_ps,
    _mm256_fmadd_ps,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_add_ps,
    _mm256_setzero_ps
);

avx2_kernel!(
    kernel_f64,
    f64,
    4,
    _mm256_set1_pd,
    _mm256_fmadd_pd,
    _mm256_loadu_pd,
    _mm256_storeu_pd,
    _mm256_add_pd,
    _mm256_setzero_pd
);
