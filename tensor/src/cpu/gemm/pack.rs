//! Packing of A and B blocks into the contiguous, zero-padded panel layouts the micro-kernels read,
//! and the per-thread scratch memory the packed blocks live in.
//!
//! * A block (`mc × kc`) → `ceil(mc / MR)` panels; panel `p` holds rows `p·MR .. p·MR + MR`
//!   stored column by column: element `(i, kk)` of the panel is at `kk·MR + i`. The kernel
//!   broadcasts the `MR` values of one column per step of `kk`.
//! * B block (`kc × nc`) → `ceil(nc / NR)` panels; panel `q` holds columns `q·NR .. q·NR + NR`
//!   stored row by row: element `(kk, j)` is at `kk·NR + j`. The kernel loads the `NR` values of
//!   one row as SIMD vectors per step of `kk`.
//!
//! Rows of A (columns of B) past the edge of the matrix are written as zeros, so the kernels
//! always compute full `MR × NR` tiles and never read outside the packed buffers.
//!
//! Both are the same operation ([`pack_panels`]) with the roles of the strides swapped. This
//! portable version is used by every kernel except the AVX-512 f32 one, which transposes
//! row-major A with SIMD instead (`pack_avx512`).

use std::cell::RefCell;

use super::GemmScalar;

/// Packs the `mc × kc` block of A whose element `(i, kk)` is at `a + i·rsa + kk·csa` into
/// `ceil(mc / MR)` panels of `MR × kc` (see the module documentation for the layout).
///
/// # Safety
/// Every element `(i, kk)` with `i < mc`, `kk < kc` must be readable at the address above, and
/// `out` must be valid for writing `ceil(mc / MR) · MR · kc` elements.
pub(crate) unsafe fn pack_a<T: GemmScalar, const MR: usize>(
    mc: usize,
    kc: usize,
    a: *const T,
    rsa: usize,
    csa: usize,
    out: *mut T,
) {
    // SAFETY: A's rows are the panel lanes and its columns the depth; same contract.
    unsafe { pack_panels::<T, MR>(mc, kc, a, rsa, csa, out) }
}

/// Packs the `kc × nc` block of B whose element `(kk, j)` is at `b + kk·rsb + j·csb` into
/// `ceil(nc / NR)` panels of `kc × NR` (see the module documentation for the layout).
///
/// # Safety
/// Every element `(kk, j)` with `kk < kc`, `j < nc` must be readable at the address above, and
/// `out` must be valid for writing `ceil(nc / NR) · NR · kc` elements.
pub(crate) unsafe fn pack_b<T: GemmScalar, const NR: usize>(
    kc: usize,
    nc: usize,
    b: *const T,
    rsb: usize,
    csb: usize,
    out: *mut T,
) {
    // SAFETY: B's columns are the panel lanes and its rows the depth; same contract.
    unsafe { pack_panels::<T, NR>(nc, kc, b, csb, rsb, out) }
}

/// The one packing operation behind [`pack_a`] and [`pack_b`]: `len` lanes (rows of A, columns
/// of B) of `depth` elements each, lane `l` element `d` at `src + l·s_lane + d·s_depth`, go to
/// panel `l / W` at offset `d·W + l % W`; lanes past `len` in the last panel are zeros.
///
/// # Safety
/// Every element with `l < len`, `d < depth` must be readable at the address above, and `out`
/// must be valid for writing `ceil(len / W) · W · depth` elements.
pub(crate) unsafe fn pack_panels<T: GemmScalar, const W: usize>(
    len: usize,
    depth: usize,
    src: *const T,
    s_lane: usize,
    s_depth: usize,
    out: *mut T,
) {
    let panels = len.div_ceil(W);
    let full = len / W;
    // SAFETY: exactly the output the contract lets us write.
    let out = unsafe { std::slice::from_raw_parts_mut(out, panels * W * depth) };
    if s_lane == 1 && full > 0 {
        // Lanes contiguous (row-major B, column-major A): read each depth step as one sequential
        // run across all full panels, writing `W` elements into each panel's stream.
        for d in 0..depth {
            // SAFETY: lanes 0 .. full·W of depth step `d` are inside the block.
            let run = unsafe { std::slice::from_raw_parts(src.add(d * s_depth), full * W) };
            for (p, chunk) in run.chunks_exact(W).enumerate() {
                let at = p * W * depth + d * W;
                out[at..at + W].copy_from_slice(chunk);
            }
        }
    } else if s_depth == 1 && full > 0 {
        // Depth contiguous (row-major A, column-major B): a transpose, done in chunks of
        // `CHUNK` depth steps so that the `W × CHUNK` piece being written stays in L1 while each
        // lane's run of `CHUNK` contiguous elements is read and scattered into it.
        const CHUNK: usize = 32;
        for (p, panel) in out.chunks_exact_mut(W * depth).take(full).enumerate() {
            // SAFETY: lane p·W is a full lane inside the block; its elements start here.
            let base = unsafe { src.add(p * W * s_lane) };
            let mut d0 = 0;
            while d0 < depth {
                let len = CHUNK.min(depth - d0);
                let piece = &mut panel[d0 * W..(d0 + len) * W];
                for l in 0..W {
                    // SAFETY: elements d0 .. d0 + len of lane p·W + l are inside the block.
                    let run = unsafe { std::slice::from_raw_parts(base.add(l * s_lane + d0), len) };
                    for (t, &v) in run.iter().enumerate() {
                        piece[t * W + l] = v;
                    }
                }
                d0 += len;
            }
        }
    } else {
        for (p, panel) in out.chunks_exact_mut(W * depth).take(full).enumerate() {
            for (d, step) in panel.chunks_exact_mut(W).enumerate() {
                for (l, x) in step.iter_mut().enumerate() {
                    // SAFETY: lane p·W + l < len and d < depth: inside the block.
                    *x = unsafe { *src.add((p * W + l) * s_lane + d * s_depth) };
                }
            }
        }
    }
    // The last, partial panel (general strides, zero padding).
    if full < panels {
        let rest = len - full * W;
        let panel = &mut out[full * W * depth..];
        for (d, step) in panel.chunks_exact_mut(W).enumerate() {
            for (l, x) in step.iter_mut().enumerate() {
                *x = if l < rest {
                    // SAFETY: lane full·W + l < len and d < depth: inside the block.
                    unsafe { *src.add((full * W + l) * s_lane + d * s_depth) }
                } else {
                    T::GEMM_ZERO
                };
            }
        }
    }
}

/// One 64-byte, 64-byte-aligned unit of scratch memory (a cache line; also the AVX-512 vector
/// size, so packed panels start on vector boundaries).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct CacheLine([u8; 64]);

thread_local! {
    /// Per-thread packing scratch, kept between calls so that large products do not pay for
    /// allocating (and page-faulting) fresh buffers every time.
    static SCRATCH: RefCell<Vec<CacheLine>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with two 64-byte-aligned scratch buffers of `len_a` and `len_b` elements of `T`.
///
/// The buffers are the calling thread's cached scratch when it is free (the common case), or a
/// fresh allocation when it is already in use further up this thread's stack. Their contents
/// are unspecified: callers must write before they read.
pub(crate) fn with_scratch<T: GemmScalar, R>(
    len_a: usize,
    len_b: usize,
    f: impl FnOnce(*mut T, *mut T) -> R,
) -> R {
    const LINE: usize = std::mem::size_of::<CacheLine>();
    let bytes_a = (len_a * std::mem::size_of::<T>()).div_ceil(LINE) * LINE;
    let bytes_b = len_b * std::mem::size_of::<T>();
    let lines = (bytes_a + bytes_b).div_ceil(LINE);
    let run = |buf: &mut Vec<CacheLine>| {
        if buf.len() < lines {
            buf.resize(lines, CacheLine([0; 64]));
        }
        let base = buf.as_mut_ptr().cast::<u8>();
        // SAFETY: `bytes_a` is a multiple of 64 and `bytes_a + bytes_b ≤ lines · 64`, so the
        // B region starts 64-byte aligned inside the buffer. The cast is sound because T is f32
        // or f64 (alignment ≤ 64) and every bit pattern of the buffer is a valid T.
        let (pa, pb) = unsafe { (base.cast::<T>(), base.add(bytes_a).cast::<T>()) };
        f(pa, pb)
    };
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => run(&mut buf),
        Err(_) => run(&mut Vec::new()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Element `(i, j)` of a test matrix, distinct everywhere so misplaced copies are caught.
    fn val(i: usize, j: usize) -> f64 {
        (i * 1000 + j) as f64
    }

    #[test]
    fn pack_a_layout_all_strides() {
        const MR: usize = 4;
        let (m, k) = (7, 5);
        // Row-major, column-major and a padded general stride.
        for (rs, cs) in [(k, 1), (1, m), (2 * k + 3, 2)] {
            let mut data = vec![f64::NAN; (m - 1) * rs + (k - 1) * cs + 1];
            for i in 0..m {
                for j in 0..k {
                    data[i * rs + j * cs] = val(i, j);
                }
            }
            let panels = m.div_ceil(MR);
            let mut out = vec![f64::NAN; panels * MR * k];
            // SAFETY: `data` covers the m×k block at these strides; `out` has the panel size.
            unsafe { pack_a::<f64, MR>(m, k, data.as_ptr(), rs, cs, out.as_mut_ptr()) };
            for p in 0..panels {
                for kk in 0..k {
                    for i in 0..MR {
                        let row = p * MR + i;
                        let want = if row < m { val(row, kk) } else { 0.0 };
                        assert_eq!(out[p * MR * k + kk * MR + i], want, "rs={rs} cs={cs}");
                    }
                }
            }
        }
    }

    #[test]
    fn pack_b_layout_all_strides() {
        const NR: usize = 8;
        let (k, n) = (5, 19);
        for (rs, cs) in [(n, 1), (1, k), (3, 2 * k + 1)] {
            let mut data = vec![f64::NAN; (k - 1) * rs + (n - 1) * cs + 1];
            for i in 0..k {
                for j in 0..n {
                    data[i * rs + j * cs] = val(i, j);
                }
            }
            let panels = n.div_ceil(NR);
            let mut out = vec![f64::NAN; panels * NR * k];
            // SAFETY: `data` covers the k×n block at these strides; `out` has the panel size.
            unsafe { pack_b::<f64, NR>(k, n, data.as_ptr(), rs, cs, out.as_mut_ptr()) };
            for q in 0..panels {
                for kk in 0..k {
                    for j in 0..NR {
                        let col = q * NR + j;
                        let want = if col < n { val(kk, col) } else { 0.0 };
                        assert_eq!(out[q * NR * k + kk * NR + j], want, "rs={rs} cs={cs}");
                    }
                }
            }
        }
    }

    #[test]
    fn scratch_is_aligned_and_reentrant() {
        with_scratch::<f32, _>(3, 5, |a, b| {
            assert_eq!(a as usize % 64, 0);
            assert_eq!(b as usize % 64, 0);
            assert!(b as usize >= a as usize + 3 * 4);
            // A nested request while the thread's scratch is borrowed gets its own buffer.
            with_scratch::<f64, _>(2, 2, |a2, b2| {
                assert_eq!(a2 as usize % 64, 0);
                assert_eq!(b2 as usize % 64, 0);
                assert_ne!(a2 as usize, a as usize);
            });
        });
    }
}
