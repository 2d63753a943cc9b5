//! Partition attention on the CPU: softmax(q·kᵀ·scale)·v restricted to the (query, key) pairs
//! that a group rule allows, computed only on those pairs (SPEC §3–4).
//!
//! # The gathered algorithm
//!
//! Per batch row the tokens are bucketed by group id (each bucket keeps its tokens in index
//! order). Every query group g with at least one allowed key forms one dense *block*: its
//! queries, and the keys they may attend to (rule `Same`: the keys of group g; rule
//! `Different`: the keys of every other non-pad group). Then, per (batch row, head) — the unit
//! of rayon parallelism — each block's K and V rows are gathered (or read in place when the keys
//! are consecutive tokens, as at inference) and packed once into the GEMM's panel layout
//! ([`PackedB`]) for all the block's query chunks, its queries are gathered in chunks of
//! [`QUERY_CHUNK`] rows, and the chunk runs dense attention with our GEMM: S = (scale·Q)·Kᵀ,
//! E = exp(S − rowmax), O = E·V, each row of O divided by its row sum of E as it is scattered
//! back to the queries' rows (d divisions per row instead of normalising n scores). The work is
//! Σ_g |Q_g|·|K(g)|: n0² + n1² pairs for `Same` and 2·n0·n1 for `Different` with two groups,
//! instead of the L² of masked dense attention.
//!
//! A query with no allowed key (pad query, empty other group, …) belongs to no block: its
//! output row is zero, its log-sum-exp is −∞ and it gets (and gives) zero gradient. Keys that
//! no query may see (pads) get zero gradient.
//!
//! # Backward: recompute, do not store
//!
//! The forward saves only the log-sum-exp of each query row, [B, H, Nq]. The backward
//! recomputes each chunk's probabilities P = exp(S − lse) with one extra GEMM (flash-attention
//! style) instead of keeping them. Measured at L = 1024, H = 12, d = 64, P(group 1) = 0.5 on the
//! 2-core development machine, the recomputation costs ≈ 5 ms of a 27 ms backward (13 ms
//! forward). Storing P instead would cost B·H·(n0² + n1²) floats per layer — ≈ 25 MB per
//! sequence per layer here, gigabytes for a training batch through 12 layers, the very [L, L]
//! memory this op exists to avoid — so we recompute. Chunking the queries keeps a chunk's S, P
//! and dP in L2.

use super::gemm::{gemm, gemm_packed, MatRef, PackedB};
use super::rows::filled_rows;
use super::Float;
use crate::Layout;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// The group id of padding tokens: a pad never attends and is never attended to.
pub const PAD_GROUP: u8 = 255;

/// Which keys a query may attend to, given the group ids of both (pads excluded either way).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupRule {
    /// Keys of the query's own group (the PGM encoder; inference encoder: all clean tokens
    /// are group 0).
    Same,
    /// Keys of any other group (the PGM decoder and GroupSwap cross-attention).
    Different,
}

impl GroupRule {
    /// Whether a query of group `q` may attend to a key of group `k`.
    #[inline]
    pub fn allows(self, q: u8, k: u8) -> bool {
        q != PAD_GROUP
            && k != PAD_GROUP
            && match self {
                GroupRule::Same => q == k,
                GroupRule::Different => q != k,
            }
    }
}

/// Queries are processed in chunks of this many rows, so a chunk's scores (and in the backward
/// its probabilities and their gradient) stay in L2 while the block's K and V are reused.
pub const QUERY_CHUNK: usize = 128;

/// The row operations of the attention softmax, per float type: f64 uses the exact library
/// `exp` (gradient checks), f32 a vectorised polynomial (the hot loop of forward and backward:
/// one exp per allowed pair each way, as costly as a GEMM when done one libm call at a time).
pub trait AttnFloat: Float {
    /// The largest value of a row (−∞ for an empty row).
    fn row_max(row: &[Self]) -> Self;
    /// Replaces each x of the row by exp(x − sub) and returns the sum of the new values.
    fn exp_sub_sum(row: &mut [Self], sub: Self) -> Self;
}

impl AttnFloat for f64 {
    fn row_max(row: &[f64]) -> f64 {
        row.iter().fold(f64::NEG_INFINITY, |a, &x| a.max(x))
    }
    fn exp_sub_sum(row: &mut [f64], sub: f64) -> f64 {
        row.iter_mut()
            .map(|x| {
                *x = (*x - sub).exp();
                *x
            })
            .sum()
    }
}

impl AttnFloat for f32 {
    fn row_max(row: &[f32]) -> f32 {
        // Sixteen running maxima, so the loop vectorises.
        let mut acc = [f32::NEG_INFINITY; 16];
        let mut chunks = row.chunks_exact(16);
        for c in &mut chunks {
            for (a, &x) in acc.iter_mut().zip(c) {
                *a = a.max(x);
            }
        }
        let tail = chunks
            .remainder()
            .iter()
            .fold(f32::NEG_INFINITY, |a, &x| a.max(x));
        acc.iter().fold(tail, |a, &x| a.max(x))
    }
    fn exp_sub_sum(row: &mut [f32], sub: f32) -> f32 {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F, checked just above.
            return unsafe { exp_sub_sum_avx512(row, sub) };
        }
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports AVX2 and FMA, checked just above.
            return unsafe { exp_sub_sum_avx2(row, sub) };
        }
        exp_sub_sum_f32(row, sub)
    }
}

/// [`exp_sub_sum_f32`] compiled for AVX-512 (sixteen lanes).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn exp_sub_sum_avx512(row: &mut [f32], sub: f32) -> f32 {
    exp_sub_sum_f32(row, sub)
}

/// [`exp_sub_sum_f32`] compiled for AVX2 + FMA (eight lanes instead of SSE2's four).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn exp_sub_sum_avx2(row: &mut [f32], sub: f32) -> f32 {
    exp_sub_sum_f32(row, sub)
}

#[inline(always)]
fn exp_sub_sum_f32(row: &mut [f32], sub: f32) -> f32 {
    let mut acc = [0f32; 16];
    let mut chunks = row.chunks_exact_mut(16);
    for c in &mut chunks {
        for (a, x) in acc.iter_mut().zip(c) {
            *x = exp_f32(*x - sub);
            *a += *x;
        }
    }
    let mut tail = 0f32;
    for x in chunks.into_remainder() {
        *x = exp_f32(*x - sub);
        tail += *x;
    }
    tail + acc.iter().sum::<f32>()
}

/// e^x for f32 without a library call, so loops over it vectorise: x = n·ln2 + r with
/// |r| ≤ ln2/2 (ln2 split in two for an exact product), e^r by the Cephes `expf` polynomial,
/// 2^n through the exponent bits. Relative error about 1e-7 (two ulps); inputs below −87 give
/// e^−87 ≈ 1.6e−38 instead of a denormal or 0, which no softmax sum can tell apart.
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5·2^23: adding it rounds to an integer (round to nearest even), branch-free.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let er = p * r * r + r + 1.0;
    // t's bits are those of 1.5·2^23 plus n in the low mantissa bits, and the shift keeps only
    // their low 9 bits: (n + 127) << 23 is 2^n. (No `as i32`: its saturation does not vectorise.)
    er * f32::from_bits(t.to_bits().wrapping_add(127) << 23)
}

/// Dims, strides (in elements) and storage offset of a [B, N, H, d] view.
#[derive(Clone, Copy, Debug)]
pub struct HeadsLayout {
    pub dims: [usize; 4],
    pub strides: [usize; 4],
    pub offset: usize,
}

impl HeadsLayout {
    /// The layout of a rank-4 view, or None for another rank.
    pub fn of(l: &Layout) -> Option<HeadsLayout> {
        Some(HeadsLayout {
            dims: l.dims().try_into().ok()?,
            strides: l.strides().try_into().ok()?,
            offset: l.offset(),
        })
    }
    /// The row-major layout of a fresh [B, N, H, d] tensor.
    pub fn contiguous(dims: [usize; 4]) -> HeadsLayout {
        let [_, n, h, d] = dims;
        HeadsLayout {
            dims,
            strides: [n * h * d, h * d, d, 1],
            offset: 0,
        }
    }
    /// The head-`h` vectors of batch row `b` from token `first` on, as a matrix [.., d] read
    /// in place (rows `s1` apart); the caller bounds its row count.
    fn rows_at<'a, T>(&self, src: &'a [T], b: usize, h: usize, first: usize) -> MatRef<'a, T> {
        let [s0, s1, s2, s3] = self.strides;
        MatRef {
            data: &src[self.offset + b * s0 + first * s1 + h * s2..],
            row_stride: s1,
            col_stride: s3,
        }
    }
    /// Copies the head-`h` vectors of tokens `rows` of batch row `b`, times `mul`, into `dst`
    /// ([rows.len(), d] row-major).
    fn gather<T: Float>(
        &self,
        src: &[T],
        b: usize,
        h: usize,
        rows: &[usize],
        mul: T,
        dst: &mut Vec<T>,
    ) {
        let [s0, s1, s2, s3] = self.strides;
        let d = self.dims[3];
        dst.clear();
        for &i in rows {
            let off = self.offset + b * s0 + i * s1 + h * s2;
            if s3 == 1 {
                dst.extend(src[off..off + d].iter().map(|&x| x * mul));
            } else {
                dst.extend((0..d).map(|e| src[off + e * s3] * mul));
            }
        }
    }
}

/// The first token when `rows` are consecutive tokens (first, first + 1, …).
fn first_of_run(rows: &[usize]) -> Option<usize> {
    let first = *rows.first()?;
    let consecutive = rows.iter().enumerate().all(|(i, &r)| r == first + i);
    consecutive.then_some(first)
}

/// K and V [n, d] of a block in batch row `b`, head `h`: read in place when the keys are
/// consecutive tokens (all clean tokens at inference), else gathered into `kb` and `vb`.
fn block_kv<'a, T: Float>(
    blk: &Block,
    (k, lk): (&'a [T], &HeadsLayout),
    (v, lv): (&'a [T], &HeadsLayout),
    b: usize,
    h: usize,
    (kb, vb): (&'a mut Vec<T>, &'a mut Vec<T>),
) -> (MatRef<'a, T>, MatRef<'a, T>) {
    match first_of_run(&blk.keys) {
        Some(first) => (lk.rows_at(k, b, h, first), lv.rows_at(v, b, h, first)),
        None => {
            let d = lk.dims[3];
            lk.gather(k, b, h, &blk.keys, T::ONE, kb);
            lv.gather(v, b, h, &blk.keys, T::ONE, vb);
            (MatRef::row_major(kb, d), MatRef::row_major(vb, d))
        }
    }
}

/// Problem sizes shared by the forward and the backward.
#[derive(Clone, Copy, Debug)]
pub struct AttnDims {
    pub batch: usize,
    pub nq: usize,
    pub nk: usize,
    pub heads: usize,
    pub head_dim: usize,
}

/// One dense block of a batch row: queries (token indices, ascending) and the keys they may
/// attend to.
struct Block {
    queries: Vec<usize>,
    keys: Vec<usize>,
}

/// The blocks of one batch row, from its query groups [Nq] and key groups [Nk].
fn blocks(qg: &[u8], kg: &[u8], rule: GroupRule) -> Vec<Block> {
    let mut q_by: Vec<Vec<usize>> = vec![Vec::new(); 256];
    let mut k_by: Vec<Vec<usize>> = vec![Vec::new(); 256];
    for (i, &g) in qg.iter().enumerate() {
        q_by[g as usize].push(i);
    }
    for (j, &g) in kg.iter().enumerate() {
        k_by[g as usize].push(j);
    }
    let mut out = Vec::new();
    for (g, queries) in q_by.into_iter().enumerate() {
        if queries.is_empty() || g == PAD_GROUP as usize {
            continue;
        }
        let keys: Vec<usize> = match rule {
            GroupRule::Same => k_by[g].clone(),
            GroupRule::Different => (0..PAD_GROUP as usize)
                .filter(|&o| o != g)
                .flat_map(|o| k_by[o].iter().copied())
                .collect(),
        };
        if !keys.is_empty() {
            out.push(Block { queries, keys });
        }
    }
    out
}

/// Blocks of every batch row.
fn all_blocks(dims: &AttnDims, qg: &[u8], kg: &[u8], rule: GroupRule) -> Vec<Vec<Block>> {
    (0..dims.batch)
        .map(|b| {
            let q = &qg[b * dims.nq..(b + 1) * dims.nq];
            let k = &kg[b * dims.nk..(b + 1) * dims.nk];
            blocks(q, k, rule)
        })
        .collect()
}

/// C [m, n] += Aᵀ · B with A [k, m] and B [k, n], both row-major.
fn gemm_atb_acc<T: Float>(m: usize, n: usize, k: usize, a: &[T], b: &[T], c: &mut [T]) {
    let a = MatRef {
        data: a,
        row_stride: 1,
        col_stride: m,
    };
    let b = MatRef {
        data: b,
        row_stride: n,
        col_stride: 1,
    };
    gemm(m, n, k, a, b, c, n, true);
}

/// Reassembles per-(b, h) buffers `parts[b·H + h]` of [N, d] into a contiguous [B, N, H, d].
fn interleave_heads<T: Float>(
    parts: &[Vec<T>],
    batch: usize,
    n: usize,
    heads: usize,
    d: usize,
) -> Vec<T> {
    if batch * n * heads * d == 0 {
        return Vec::new();
    }
    let row = |r: usize, row: &mut [MaybeUninit<T>]| {
        let (b, i) = (r / n, r % n);
        for (h, dst) in row.chunks_mut(d).enumerate() {
            let src = &parts[b * heads + h][i * d..(i + 1) * d];
            dst.iter_mut().zip(src).for_each(|(o, &x)| {
                o.write(x);
            });
        }
    };
    // SAFETY: `row` writes its heads·d slots: heads chunks of d, each from a d-long source.
    unsafe { filled_rows(batch * n, heads * d, row) }.0
}

/// The forward pass. q [B, Nq, H, d], k and v [B, Nk, H, d] with any strides (their layouts);
/// q_groups [B, Nq] and k_groups [B, Nk] contiguous. Returns out, contiguous [B, Nq, H, d], and
/// the log-sum-exp of each query's scores, [B, H, Nq] (−∞ for a query with no allowed key).
#[allow(clippy::too_many_arguments)]
pub fn partition_attention<T: AttnFloat>(
    dims: &AttnDims,
    (q, lq): (&[T], &HeadsLayout),
    (k, lk): (&[T], &HeadsLayout),
    (v, lv): (&[T], &HeadsLayout),
    q_groups: &[u8],
    k_groups: &[u8],
    rule: GroupRule,
    scale: f64,
) -> (Vec<T>, Vec<T>) {
    let AttnDims {
        batch,
        nq,
        heads,
        head_dim: d,
        ..
    } = *dims;
    let all = all_blocks(dims, q_groups, k_groups, rule);
    let scale = T::from_f64(scale);
    let parts: Vec<(Vec<T>, Vec<T>)> = (0..batch * heads)
        .into_par_iter()
        .map(|bh| {
            let (b, h) = (bh / heads, bh % heads);
            let mut o = vec![T::ZERO; nq * d];
            let mut lse = vec![T::NEG_INFINITY; nq];
            let (mut kb, mut vb, mut qa, mut s, mut oa) = (vec![], vec![], vec![], vec![], vec![]);
            let (mut kt, mut vp) = (PackedB::new(), PackedB::new());
            let mut inv_sums = vec![];
            for blk in &all[b] {
                let n = blk.keys.len();
                // Kᵀ [d, n] and V [n, d] of the block, packed once for all its query chunks.
                let (kv, vv) = block_kv(blk, (k, lk), (v, lv), b, h, (&mut kb, &mut vb));
                kt.pack(d, n, kv.t());
                vp.pack(n, d, vv);
                for rows in blk.queries.chunks(QUERY_CHUNK) {
                    let m = rows.len();
                    lq.gather(q, b, h, rows, scale, &mut qa);
                    s.resize(m * n, T::ZERO);
                    gemm_packed(m, MatRef::row_major(&qa, d), &kt, &mut s, n, false);
                    // Unnormalised probabilities; each output row is divided by its sum below.
                    inv_sums.clear();
                    for (r, srow) in s.chunks_mut(n).enumerate() {
                        let max = T::row_max(srow);
                        let sum = T::exp_sub_sum(srow, max);
                        inv_sums.push(T::ONE / sum);
                        lse[rows[r]] = max + sum.ln();
                    }
                    oa.resize(m * d, T::ZERO);
                    gemm_packed(m, MatRef::row_major(&s, n), &vp, &mut oa, d, false);
                    for (r, (&i, &inv)) in rows.iter().zip(&inv_sums).enumerate() {
                        let row = &oa[r * d..(r + 1) * d];
                        for (o, &x) in o[i * d..(i + 1) * d].iter_mut().zip(row) {
                            *o = x * inv;
                        }
                    }
                }
            }
            (o, lse)
        })
        .collect();
    let (os, lses): (Vec<Vec<T>>, Vec<Vec<T>>) = parts.into_iter().unzip();
    let out = interleave_heads(&os, batch, nq, heads, d);
    (out, lses.concat())
}

/// The backward pass: (dq, dk, dv), contiguous, from the forward's inputs, its contiguous
/// output `out` [B, Nq, H, d] and log-sum-exp `lse` [B, H, Nq], and `dout` (contiguous
/// [B, Nq, H, d]). Per chunk: P = exp(S − lse), dV += Pᵀ·dO, dP = dO·Vᵀ,
/// dS = P ⊙ (dP − rowsum(dO ⊙ O)), dQ = scale·dS·K, dK += dS·(scale·Q).
#[allow(clippy::too_many_arguments)]
pub fn partition_attention_backward<T: AttnFloat>(
    dims: &AttnDims,
    (q, lq): (&[T], &HeadsLayout),
    (k, lk): (&[T], &HeadsLayout),
    (v, lv): (&[T], &HeadsLayout),
    q_groups: &[u8],
    k_groups: &[u8],
    rule: GroupRule,
    scale: f64,
    out: &[T],
    lse: &[T],
    dout: &[T],
) -> (Vec<T>, Vec<T>, Vec<T>) {
    let AttnDims {
        batch,
        nq,
        nk,
        heads,
        head_dim: d,
    } = *dims;
    let all = all_blocks(dims, q_groups, k_groups, rule);
    let scale = T::from_f64(scale);
    let lo = HeadsLayout::contiguous([batch, nq, heads, d]);
    let parts: Vec<(Vec<T>, Vec<T>, Vec<T>)> = (0..batch * heads)
        .into_par_iter()
        .map(|bh| {
            let (b, h) = (bh / heads, bh % heads);
            let lse = &lse[bh * nq..(bh + 1) * nq];
            let mut dq = vec![T::ZERO; nq * d];
            let mut dk = vec![T::ZERO; nk * d];
            let mut dv = vec![T::ZERO; nk * d];
            let (mut kb, mut vb, mut dkb, mut dvb) = (vec![], vec![], vec![], vec![]);
            let (mut qa, mut oa, mut doa, mut dqa) = (vec![], vec![], vec![], vec![]);
            let (mut p, mut dp, mut delta) = (vec![], vec![], vec![]);
            let (mut kt, mut vt, mut kp) = (PackedB::new(), PackedB::new(), PackedB::new());
            for blk in &all[b] {
                let n = blk.keys.len();
                // Kᵀ and Vᵀ [d, n] and K [n, d] of the block, packed once for all its chunks.
                let (kv, vv) = block_kv(blk, (k, lk), (v, lv), b, h, (&mut kb, &mut vb));
                kt.pack(d, n, kv.t());
                vt.pack(d, n, vv.t());
                kp.pack(n, d, kv);
                dkb.clear();
                dkb.resize(n * d, T::ZERO);
                dvb.clear();
                dvb.resize(n * d, T::ZERO);
                for rows in blk.queries.chunks(QUERY_CHUNK) {
                    let m = rows.len();
                    lq.gather(q, b, h, rows, scale, &mut qa);
                    lo.gather(out, b, h, rows, T::ONE, &mut oa);
                    lo.gather(dout, b, h, rows, T::ONE, &mut doa);
                    // delta_i = Σ_e dO[i, e]·O[i, e] = Σ_j P[i, j]·dP[i, j].
                    delta.clear();
                    delta.extend(
                        oa.chunks(d.max(1))
                            .zip(doa.chunks(d.max(1)))
                            .map(|(o, g)| o.iter().zip(g).map(|(&x, &y)| x * y).sum::<T>()),
                    );
                    p.resize(m * n, T::ZERO);
                    gemm_packed(m, MatRef::row_major(&qa, d), &kt, &mut p, n, false);
                    for (r, prow) in p.chunks_mut(n).enumerate() {
                        let l = lse[rows[r]];
                        T::exp_sub_sum(prow, l);
                    }
                    gemm_atb_acc(n, d, m, &p, &doa, &mut dvb);
                    dp.resize(m * n, T::ZERO);
                    gemm_packed(m, MatRef::row_major(&doa, d), &vt, &mut dp, n, false);
                    // dS = P ⊙ (dP − delta), in place in dp.
                    for ((dprow, prow), &dl) in dp.chunks_mut(n).zip(p.chunks(n)).zip(&delta) {
                        for (g, &pr) in dprow.iter_mut().zip(prow) {
                            *g = pr * (*g - dl);
                        }
                    }
                    dqa.resize(m * d, T::ZERO);
                    gemm_packed(m, MatRef::row_major(&dp, n), &kp, &mut dqa, d, false);
                    for (r, &i) in rows.iter().enumerate() {
                        let src = &dqa[r * d..(r + 1) * d];
                        for (x, &g) in dq[i * d..(i + 1) * d].iter_mut().zip(src) {
                            *x = g * scale;
                        }
                    }
                    gemm_atb_acc(n, d, m, &dp, &qa, &mut dkb);
                }
                // A key may sit in several blocks (rule Different with three or more groups).
                for (r, &j) in blk.keys.iter().enumerate() {
                    let (src_k, src_v) = (&dkb[r * d..(r + 1) * d], &dvb[r * d..(r + 1) * d]);
                    for (x, &g) in dk[j * d..(j + 1) * d].iter_mut().zip(src_k) {
                        *x += g;
                    }
                    for (x, &g) in dv[j * d..(j + 1) * d].iter_mut().zip(src_v) {
                        *x += g;
                    }
                }
            }
            (dq, dk, dv)
        })
        .collect();
    let mut dqs = Vec::with_capacity(parts.len());
    let mut dks = Vec::with_capacity(parts.len());
    let mut dvs = Vec::with_capacity(parts.len());
    for (a, b, c) in parts {
        dqs.push(a);
        dks.push(b);
        dvs.push(c);
    }
    (
        interleave_heads(&dqs, batch, nq, heads, d),
        interleave_heads(&dks, batch, nk, heads, d),
        interleave_heads(&dvs, batch, nk, heads, d),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_is_accurate() {
        let mut worst = 0f64;
        let mut x = -90.0f32;
        while x <= 1.0 {
            let want = (x as f64).exp();
            let got = exp_f32(x) as f64;
            if x >= -87.0 {
                worst = worst.max((got - want).abs() / want);
            } else {
                assert!(got < 2e-38);
            }
            x += 0.001_3;
        }
        assert!(worst < 3e-7, "relative error {worst}");
        let mut row: Vec<f32> = (0..37).map(|i| i as f32 * 0.25 - 4.0).collect();
        let want: f64 = row.iter().map(|&x| ((x - 5.0) as f64).exp()).sum();
        let got = f32::exp_sub_sum(&mut row, 5.0) as f64;
        assert!((got - want).abs() < 1e-6 * want);
        assert_eq!(f32::row_max(&row), row[36]);
    }

    #[test]
    fn rules_and_blocks() {
        assert!(GroupRule::Same.allows(0, 0) && !GroupRule::Same.allows(0, 1));
        assert!(GroupRule::Different.allows(1, 0) && !GroupRule::Different.allows(1, 1));
        assert!(!GroupRule::Same.allows(PAD_GROUP, PAD_GROUP));
        assert!(!GroupRule::Different.allows(0, PAD_GROUP));
        let qg = [0, 1, 0, 2, PAD_GROUP];
        let kg = [1, 0, PAD_GROUP, 0, 2];
        let same = blocks(&qg, &kg, GroupRule::Same);
        assert_eq!(same.len(), 3);
        assert_eq!(
            (same[0].queries.clone(), same[0].keys.clone()),
            (vec![0, 2], vec![1, 3])
        );
        let diff = blocks(&qg, &kg, GroupRule::Different);
        assert_eq!(diff[0].keys, vec![0, 4]);
        assert_eq!(diff[1].keys, vec![1, 3, 4]);
        assert_eq!(diff[2].keys, vec![1, 3, 0]);
        // A group with no allowed key gives no block.
        assert!(blocks(&[1, 1], &[0, PAD_GROUP], GroupRule::Same).is_empty());
    }
}
