//! Rotary position embedding (GPT-NeoX "rotate half" layout) at explicit per-token positions.
//!
//! For a head vector v of size d split into halves (v1, v2) and the angles θ_k of its token
//! (k < d/2), the rotation is `(v1·cos θ − v2·sin θ, v2·cos θ + v1·sin θ)`. Its inverse (the
//! rotation by −θ) is also its backward, since a rotation is orthogonal.

use super::attention::HeadsLayout;
use super::{Float, PARALLEL_MIN_ELEMS};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// cos and sin tables [rows, d/2] for `positions` (one per row): angle(p, k) = p · base^(−2k/d),
/// computed in f64 and rounded once to `T`.
pub fn rope_tables<T: Float>(positions: &[u32], head_dim: usize, base: f64) -> (Vec<T>, Vec<T>) {
    let half = head_dim / 2;
    let inv_freq: Vec<f64> = (0..half)
        .map(|k| base.powf(-((2 * k) as f64) / head_dim as f64))
        .collect();
    let mut cos = Vec::with_capacity(positions.len() * half);
    let mut sin = Vec::with_capacity(positions.len() * half);
    for &p in positions {
        for &f in &inv_freq {
            let (s, c) = (p as f64 * f).sin_cos();
            cos.push(T::from_f64(c));
            sin.push(T::from_f64(s));
        }
    }
    (cos, sin)
}

/// Rotates every head of x [B, N, H, d] (any strides, see `lx`) by the angles of its token:
/// cos and sin are contiguous [B, N, d/2]. With `inverse` the rotation is by −θ (the backward).
/// Returns a contiguous [B, N, H, d] result.
pub fn rope<T: Float>(x: &[T], lx: &HeadsLayout, cos: &[T], sin: &[T], inverse: bool) -> Vec<T> {
    let [b, n, h, d] = lx.dims;
    let [s0, s1, s2, s3] = lx.strides;
    let half = d / 2;
    let row = h * d;
    let len = b * n * row;
    if len == 0 {
        return Vec::new();
    }
    // One (batch, token) row of h heads per call; `r` is its index b·N + n.
    let work = |(r, o): (usize, &mut [MaybeUninit<T>])| {
        let base = lx.offset + (r / n) * s0 + (r % n) * s1;
        let (c, s) = (
            &cos[r * half..(r + 1) * half],
            &sin[r * half..(r + 1) * half],
        );
        for (hi, o) in o.chunks_mut(d).enumerate() {
            let off = base + hi * s2;
            let (o1, o2) = o.split_at_mut(half);
            let mut rotate = |k: usize, x1: T, x2: T| {
                let sk = if inverse { -s[k] } else { s[k] };
                o1[k].write(x1 * c[k] - x2 * sk);
                o2[k].write(x2 * c[k] + x1 * sk);
            };
            if s3 == 1 {
                // Unit stride (the common case): slices, so the loop vectorises.
                let (x1, x2) = (&x[off..off + half], &x[off + half..off + d]);
                (0..half).for_each(|k| rotate(k, x1[k], x2[k]));
            } else {
                (0..half).for_each(|k| rotate(k, x[off + k * s3], x[off + (k + half) * s3]));
            }
        }
    };
    let mut out: Vec<T> = Vec::with_capacity(len);
    let slots = &mut out.spare_capacity_mut()[..len];
    if len >= PARALLEL_MIN_ELEMS {
        slots.par_chunks_mut(row).enumerate().for_each(work);
    } else {
        slots.chunks_mut(row).enumerate().for_each(work);
    }
    // SAFETY: len = B·N rows of `row` = H·d elements; `work` writes both halves of every head
    // of its row.
    unsafe { out.set_len(len) };
    out
}
