//! AVX-512 packing for f32 operands whose depth is the contiguous direction (row-major A,
//! column-major / transposed B): the one case where packing is a transpose, which the portable
//! packer does one element at a time.
//!
//! Each `16 × 16` block (16 lanes × 16 depth steps) is read as 16 vector loads, transposed in
//! registers with 64 shuffles, and written as 16 masked vector stores of the panel's lanes. The
//! next panel's rows are prefetched while the current one is transposed, since for the large
//! activation matrices of a transformer A streams from DRAM. Every other layout is handed to
//! the portable packer.

use std::arch::x86_64::*;

use super::pack::pack_panels;

/// [`pack_panels`] for f32 with an AVX-512 transpose when the depth is contiguous.
///
/// # Safety
/// The CPU must support AVX-512F; otherwise the contract of [`pack_panels`].
#[target_feature(enable = "avx512f")]
unsafe fn pack_panels_f32<const W: usize>(
    len: usize,
    depth: usize,
    src: *const f32,
    s_lane: usize,
    s_depth: usize,
    out: *mut f32,
) {
    let full = len / W;
    if s_depth != 1 || full == 0 || depth == 0 {
        // SAFETY: same contract.
        return unsafe { pack_panels::<f32, W>(len, depth, src, s_lane, s_depth, out) };
    }
    for p in 0..full {
        for d0 in (0..depth).step_by(16) {
            let steps = 16.min(depth - d0);
            let step_mask: __mmask16 = (((1u32 << steps) - 1) & 0xffff) as __mmask16;
            for g in (0..W).step_by(16) {
                let lanes = 16.min(W - g);
                let mut r = [_mm512_setzero_ps(); 16];
                for (l, row) in r.iter_mut().enumerate().take(lanes) {
                    let lane = p * W + g + l;
                    // SAFETY: lane < full·W ≤ len and the masked load only touches depth steps
                    // d0 .. d0 + steps < depth, all inside the block (masked-off elements are
                    // not accessed). Prefetching the same steps of the next panel never faults,
                    // so its address may lie outside the block (hence `wrapping_add`).
                    unsafe {
                        *row = _mm512_maskz_loadu_ps(step_mask, src.add(lane * s_lane + d0));
                        let next = src.wrapping_add((lane + W) * s_lane + d0);
                        _mm_prefetch::<_MM_HINT_T1>(next.cast::<i8>());
                    }
                }
                let cols = transpose16(r);
                let lane_mask: __mmask16 = (((1u32 << lanes) - 1) & 0xffff) as __mmask16;
                for (t, col) in cols.iter().enumerate().take(steps) {
                    // SAFETY: panel p, depth step d0 + t < depth, lanes g .. g + lanes ≤ W:
                    // inside the `ceil(len / W) · W · depth` output by the contract.
                    unsafe {
                        let dst = out.add(p * W * depth + (d0 + t) * W + g);
                        _mm512_mask_storeu_ps(dst, lane_mask, *col);
                    }
                }
            }
        }
    }
    if full * W < len {
        // SAFETY: the remaining lanes form a smaller block of the same operand, and their
        // panel starts right after the full ones in `out`.
        unsafe {
            pack_panels::<f32, W>(
                len - full * W,
                depth,
                src.add(full * W * s_lane),
                s_lane,
                s_depth,
                out.add(full * W * depth),
            )
        };
    }
}

/// Transposes a 16 × 16 block of f32 held as 16 row vectors: returns its 16 columns.
#[target_feature(enable = "avx512f")]
fn transpose16(r: [__m512; 16]) -> [__m512; 16] {
    // Stage 1: interleave pairs of rows 32 bits at a time; t[2i] = a0 b0 a1 b1 | a4 b4 a5 b5 | …
    let mut t = [_mm512_setzero_ps(); 16];
    for i in 0..8 {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    // Stage 2: interleave 64 bits at a time; u[4q + j] holds column j (+4, +8, +12 per 128-bit
    // lane) of rows 4q .. 4q + 4.
    let mut u = [_mm512_setzero_ps(); 16];
    for q in 0..4 {
        let (a, b, c, d) = (t[4 * q], t[4 * q + 1], t[4 * q + 2], t[4 * q + 3]);
        let lo = |x: __m512, y: __m512| {
            _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(x), _mm512_castps_pd(y)))
        };
        let hi = |x: __m512, y: __m512| {
            _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(x), _mm512_castps_pd(y)))
        };
        u[4 * q] = lo(a, c);
        u[4 * q + 1] = hi(a, c);
        u[4 * q + 2] = lo(b, d);
        u[4 * q + 3] = hi(b, d);
    }
    // Stages 3 and 4: move 128-bit lanes so that vector j holds column j of all 16 rows.
    let mut v = [_mm512_setzero_ps(); 16];
    for j in 0..4 {
        v[j] = _mm512_shuffle_f32x4::<0x88>(u[j], u[4 + j]);
        v[4 + j] = _mm512_shuffle_f32x4::<0xdd>(u[j], u[4 + j]);
        v[8 + j] = _mm512_shuffle_f32x4::<0x88>(u[8 + j], u[12 + j]);
        v[12 + j] = _mm512_shuffle_f32x4::<0xdd>(u[8 + j], u[12 + j]);
    }
    let mut cols = [_mm512_setzero_ps(); 16];
    for j in 0..8 {
        cols[j] = _mm512_shuffle_f32x4::<0x88>(v[j], v[8 + j]);
        cols[8 + j] = _mm512_shuffle_f32x4::<0xdd>(v[j], v[8 + j]);
    }
    cols
}

/// [`pack_a`](super::pack::pack_a) for f32 using the AVX-512 transpose.
///
/// # Safety
/// The CPU must support AVX-512F; otherwise the contract of `pack_a`.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn pack_a_f32<const MR: usize>(
    mc: usize,
    kc: usize,
    a: *const f32,
    rsa: usize,
    csa: usize,
    out: *mut f32,
) {
    // SAFETY: A's rows are the lanes and its columns the depth; same contract.
    unsafe { pack_panels_f32::<MR>(mc, kc, a, rsa, csa, out) }
}

/// [`pack_b`](super::pack::pack_b) for f32 using the AVX-512 transpose.
///
/// # Safety
/// The CPU must support AVX-512F; otherwise the contract of `pack_b`.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn pack_b_f32<const NR: usize>(
    kc: usize,
    nc: usize,
    b: *const f32,
    rsb: usize,
    csb: usize,
    out: *mut f32,
) {
    // SAFETY: B's columns are the lanes and its rows the depth; same contract.
    unsafe { pack_panels_f32::<NR>(nc, kc, b, csb, rsb, out) }
}

#[cfg(test)]
mod tests {
    use super::super::pack::{pack_a, pack_b};
    use super::*;

    /// The AVX-512 packers must produce exactly what the portable ones do, for every layout,
    /// panel width and ragged depth/lane count.
    #[test]
    fn matches_portable_packer() {
        if !is_x86_feature_detected!("avx512f") {
            eprintln!("skipped: no AVX-512F on this CPU");
            return;
        }
        fn case<const W: usize>(len: usize, depth: usize) {
            // Lane-major (depth contiguous) with padding, depth-major, and general strides.
            for (s_lane, s_depth) in [(depth + 3, 1), (depth, 1), (1, len + 2), (2, 2 * len + 1)] {
                let span = (len - 1) * s_lane + (depth - 1) * s_depth + 1;
                let data: Vec<f32> = (0..span).map(|i| i as f32 * 0.5 - 7.0).collect();
                let size = len.div_ceil(W) * W * depth;
                let (mut want, mut got) = (vec![f32::NAN; size], vec![f32::NAN; size]);
                // SAFETY: `data` spans the block at these strides, the outputs have the packed
                // size, and the CPU has AVX-512F (checked above).
                unsafe {
                    pack_a::<f32, W>(
                        len,
                        depth,
                        data.as_ptr(),
                        s_lane,
                        s_depth,
                        want.as_mut_ptr(),
                    );
                    pack_a_f32::<W>(len, depth, data.as_ptr(), s_lane, s_depth, got.as_mut_ptr());
                }
                assert_eq!(
                    got, want,
                    "pack_a W={W} len={len} depth={depth} strides=({s_lane},{s_depth})"
                );
                // SAFETY: as above, with the B roles (depth stride first).
                unsafe {
                    pack_b::<f32, W>(
                        depth,
                        len,
                        data.as_ptr(),
                        s_depth,
                        s_lane,
                        want.as_mut_ptr(),
                    );
                    pack_b_f32::<W>(depth, len, data.as_ptr(), s_depth, s_lane, got.as_mut_ptr());
                }
                assert_eq!(
                    got, want,
                    "pack_b W={W} len={len} depth={depth} strides=({s_lane},{s_depth})"
                );
            }
        }
        for &(len, depth) in &[(14, 16), (14, 1), (29, 37), (3, 5), (70, 300), (28, 17)] {
            case::<14>(len, depth);
        }
        for &(len, depth) in &[(32, 16), (33, 31), (7, 2), (96, 257)] {
            case::<32>(len, depth);
        }
        for &(len, depth) in &[(6, 16), (13, 40)] {
            case::<6>(len, depth);
        }
    }
}
