//! The cache-blocked loop nest that runs on one thread: it walks one rectangle of C, packs
//! blocks of A and B into scratch memory and calls the micro-kernel on every register tile.
//!
//! Loop order, outermost first (`MC`, `KC`, `NC` from the [`Kernel`] descriptor):
//!
//! 1. `ic`: rows of C and A in blocks of `MC`.
//! 2. `pc`: the shared dimension in blocks of `KC`; the `MC × KC` block of A is packed here
//!    (once per `ic`, `pc`: every element of A is packed once per rectangle).
//! 3. `jc`: columns of C and B in blocks of `NC`; the `KC × NC` block of B is packed here
//!    (unless B was packed whole beforehand, [`PackedB`](super::PackedB)). It is sized to stay
//!    in the core's L2 while it is reused by every `MR` panel of the A block.
//! 4. `ir`: `MR`-row panels of the packed A block. One panel (`MR × KC`) is reused by every
//!    panel of the B block, so it stays in L1.
//! 5. `jr`: `NR`-column panels of the packed B block, streamed from L2.
//! 6. the micro-kernel: one `MR × NR` tile of C, `KC` rank-1 updates held in registers.
//!
//! Tiles that stick out past the edge of C (the packing pads A and B with zeros) are computed
//! into a small buffer and only their valid part is merged into C.

use super::dispatch::{Kernel, MAX_TILE};
use super::pack::with_scratch;
use super::GemmScalar;

/// The operands of one rectangle of the product, as raw pointers plus strides in elements.
///
/// Element `(i, kk)` of A is at `a + i·rsa + kk·csa`, element `(i, j)` of C at `c + i·rsc + j`.
#[derive(Clone, Copy)]
pub(crate) struct Problem<T> {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: *const T,
    pub rsa: usize,
    pub csa: usize,
    pub b: BPanels<T>,
    pub c: *mut T,
    pub rsc: usize,
    /// Add the product to C instead of overwriting it.
    pub accumulate: bool,
}

/// Where the micro-kernel's B panels come from.
#[derive(Clone, Copy)]
pub(crate) enum BPanels<T> {
    /// B in memory, element `(kk, j)` at `b + kk·rsb + j·csb`: each block is packed when needed.
    Strided { b: *const T, rsb: usize, csb: usize },
    /// B packed whole beforehand (the layout of [`PackedB`](super::PackedB), rows `n_padded`
    /// lanes wide); column 0 of this rectangle is column `col0` of the packed B, a multiple of
    /// `NR`.
    Packed {
        data: *const T,
        n_padded: usize,
        col0: usize,
    },
}

impl<T> BPanels<T> {
    /// The same B from column `c0` on (a multiple of `NR` for a packed B).
    ///
    /// # Safety
    /// Column `c0` must exist in B.
    pub unsafe fn columns_from(self, c0: usize) -> Self {
        match self {
            // SAFETY: column c0 exists, by the contract.
            BPanels::Strided { b, rsb, csb } => BPanels::Strided {
                b: unsafe { b.add(c0 * csb) },
                rsb,
                csb,
            },
            BPanels::Packed {
                data,
                n_padded,
                col0,
            } => BPanels::Packed {
                data,
                n_padded,
                col0: col0 + c0,
            },
        }
    }
}

// SAFETY: a `Problem` is only shared between the threads of one `gemm_with` call, which keeps
// the operands borrowed (A and B shared, C exclusively) until every thread has finished; the
// threads read A and B and write pairwise disjoint rectangles of C.
unsafe impl<T: Sync> Send for Problem<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for Problem<T> {}

/// Computes `C = A·B` (or `C += A·B`) for one rectangle on the calling thread.
///
/// # Safety
/// `k > 0`; every element of A (`m × k`) and B (`k × n`) must be readable at the addresses
/// described on [`Problem`], every element of C (`m × n`) readable and writable, and no other
/// thread may access this rectangle of C while the call runs.
pub(crate) unsafe fn gemm_rect<T: GemmScalar>(kern: &Kernel<T>, p: &Problem<T>) {
    let (mr, nr) = (kern.mr, kern.nr);
    // Never pack more than the problem needs: small products get small buffers.
    let mc_max = kern.mc.min(p.m.div_ceil(mr) * mr);
    let kc_max = kern.kc.min(p.k);
    let nc_max = match p.b {
        BPanels::Strided { .. } => kern.nc.min(p.n.div_ceil(nr) * nr),
        BPanels::Packed { .. } => 0,
    };
    with_scratch::<T, _>(mc_max * kc_max, kc_max * nc_max, |abuf, bbuf| {
        for ic in (0..p.m).step_by(kern.mc) {
            let mc = kern.mc.min(p.m - ic);
            for pc in (0..p.k).step_by(kern.kc) {
                let kc = kern.kc.min(p.k - pc);
                // Later KC blocks always add to what the first one wrote.
                let accumulate = p.accumulate || pc > 0;
                // SAFETY: the A block (ic.., pc..) of mc × kc lies inside A; `abuf` holds
                // mc_max · kc_max ≥ ceil(mc / mr) · mr · kc elements.
                unsafe {
                    (kern.pack_a)(mc, kc, p.a.add(ic * p.rsa + pc * p.csa), p.rsa, p.csa, abuf)
                };
                for jc in (0..p.n).step_by(kern.nc) {
                    let nc = kern.nc.min(p.n - jc);
                    let bblock: *const T = match p.b {
                        BPanels::Strided { b, rsb, csb } => {
                            // SAFETY: the B block (pc.., jc..) of kc × nc lies inside B; `bbuf`
                            // holds kc_max · nc_max ≥ kc · ceil(nc / nr) · nr elements.
                            unsafe {
                                (kern.pack_b)(kc, nc, b.add(pc * rsb + jc * csb), rsb, csb, bbuf)
                            };
                            bbuf
                        }
                        // The KC-row block from row pc starts at pc · n_padded; its panels are
                        // kc · nr elements each, and column col0 + jc (a multiple of nr) starts
                        // panel (col0 + jc) / nr.
                        // SAFETY: that panel exists in the packed B, which has n_padded columns.
                        BPanels::Packed {
                            data,
                            n_padded,
                            col0,
                        } => unsafe { data.add(pc * n_padded + (col0 + jc) * kc) },
                    };
                    for ir in (0..mc).step_by(mr) {
                        // SAFETY: panel ir / mr of the packed A block (mr · kc elements).
                        let ap = unsafe { abuf.add(ir * kc) };
                        for jr in (0..nc).step_by(nr) {
                            // SAFETY: panel jr / nr of the packed B block (kc · nr elements), and
                            // the tile's top-left corner (ic + ir, jc + jr), which is inside C.
                            let (bp, ct) = unsafe {
                                (bblock.add(jr * kc), p.c.add((ic + ir) * p.rsc + jc + jr))
                            };
                            let rows = mr.min(mc - ir);
                            let cols = nr.min(nc - jr);
                            // SAFETY: the panels are as above; the C tile is either entirely
                            // inside C (full tile) or the local `mr × nr` buffer, and the merge
                            // only touches the `rows × cols` part that is inside C.
                            unsafe {
                                if rows == mr && cols == nr {
                                    (kern.micro)(kc, ap, bp, ct, p.rsc, accumulate);
                                } else {
                                    let mut tile = [T::GEMM_ZERO; MAX_TILE];
                                    (kern.micro)(kc, ap, bp, tile.as_mut_ptr(), nr, false);
                                    merge_tile(
                                        &tile[..mr * nr],
                                        nr,
                                        rows,
                                        cols,
                                        ct,
                                        p.rsc,
                                        accumulate,
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    });
}

/// Writes (or adds, when `accumulate`) the top-left `rows × cols` part of a computed tile,
/// stored row-major with row stride `nr`, into C at `c` with row stride `rsc`.
///
/// # Safety
/// `rows × cols` elements at `c + i·rsc + j` must be valid for reading and writing.
unsafe fn merge_tile<T: GemmScalar>(
    tile: &[T],
    nr: usize,
    rows: usize,
    cols: usize,
    c: *mut T,
    rsc: usize,
    accumulate: bool,
) {
    for (i, src) in tile.chunks_exact(nr).take(rows).enumerate() {
        // SAFETY: row `i < rows` of the valid part, `cols` elements, by the contract.
        let dst = unsafe { std::slice::from_raw_parts_mut(c.add(i * rsc), cols) };
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = if accumulate { *d + s } else { s };
        }
    }
}
