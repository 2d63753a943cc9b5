//! Portable micro-kernel, used on CPUs and architectures without a dedicated SIMD kernel.
//!
//! Register tile: `MR = 4` rows × `NR = 8` columns held in a local `[[T; NR]; MR]` array that
//! the compiler keeps in registers (32 accumulators: 8 SSE2 / NEON registers of f32, 16 of f64)
//! and vectorises along the `NR` columns with whatever SIMD the target baseline offers. Plain
//! multiply-then-add is used rather than `mul_add`, which would be a slow library call on targets
//! without hardware FMA.

use super::GemmScalar;

/// Rows of the register tile.
pub(crate) const MR: usize = 4;
/// Columns of the register tile.
pub(crate) const NR: usize = 8;

/// Computes one `MR × NR` tile: `C = A·B`, or `C += A·B` when `accumulate`.
///
/// # Safety
/// `a` must point to a packed A panel of `MR · kc` elements, `b` to a packed B panel of
/// `kc · NR` elements, and `c` must be valid for reading and writing `MR` rows of `NR`
/// contiguous elements, `rsc` apart.
pub(crate) unsafe fn kernel<T: GemmScalar>(
    kc: usize,
    a: *const T,
    b: *const T,
    c: *mut T,
    rsc: usize,
    accumulate: bool,
) {
    // SAFETY: the panels have exactly these lengths by the contract.
    let (a, b) = unsafe {
        (
            std::slice::from_raw_parts(a, MR * kc),
            std::slice::from_raw_parts(b, NR * kc),
        )
    };
    let mut acc = [[T::GEMM_ZERO; NR]; MR];
    for (ak, bk) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
        for (row, &ai) in acc.iter_mut().zip(ak) {
            for (x, &bj) in row.iter_mut().zip(bk) {
                *x = *x + ai * bj;
            }
        }
    }
    for (i, row) in acc.iter().enumerate() {
        // SAFETY: row `i` of the C tile holds `NR` elements at `c + i·rsc` by the contract, and
        // nothing else refers to it while the kernel runs.
        let crow = unsafe { std::slice::from_raw_parts_mut(c.add(i * rsc), NR) };
        for (d, &x) in crow.iter_mut().zip(row) {
            *d = if accumulate { *d + x } else { x };
        }
    }
}
