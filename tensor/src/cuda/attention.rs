//! Partition attention on CUDA, the correct version first: dense scores through cuBLAS, the
//! masked softmax of `kernels/attention.cu`, and cuBLAS again, forward and backward.
//!
//! Unlike the gathered CPU kernel this computes all Nq·Nk scores and masks the disallowed
//! ones, so its cost is that of masked dense attention; a fused kernel that skips the masked
//! blocks is the next step. F32 computes as is; BF16 operands are widened to F32 for the
//! scores and the softmax, their products run on the TF32 tensor cores (10 mantissa bits
//! against bf16's 7; exact F32 products would cost several times the rest of a bf16 step at
//! the paper's size) and the results are rounded back once.
//!
//! Shapes: q [B, Nq, H, d], k and v [B, Nk, H, d] (any strides); the head-major views
//! [B, H, N, d] the GEMMs need are permutations, which cuBLAS reads without copies where it
//! can.

use super::kernels::Source;
use super::launch;
use super::CudaData;
use crate::cpu::attention::GroupRule;
use crate::{DType, Result, Shape, Tensor};
use cudarc::driver::PushKernelArg;

/// [B, N, H, d] ↔ [B, H, N, d] (a view; the permutation is its own inverse).
fn swap_heads(x: &Tensor) -> Result<Tensor> {
    x.permute(&[0, 2, 1, 3])
}

/// a · b for F32 operands; on the TF32 tensor cores when they were widened from BF16.
fn product(a: &Tensor, b: &Tensor, from_bf16: bool) -> Result<Tensor> {
    if from_bf16 {
        a.matmul_tf32(b)
    } else {
        a.matmul(b)
    }
}

/// The attention probabilities P [B, H, Nq, Nk] (zero on disallowed pairs) and the
/// log-sum-exp [B, H, Nq] of each query's allowed scaled scores, from F32 q and k.
fn probabilities(
    (q, k): (&Tensor, &Tensor),
    q_groups: &Tensor,
    k_groups: &Tensor,
    rule: GroupRule,
    scale: f64,
    from_bf16: bool,
) -> Result<(Tensor, Tensor)> {
    let name = "partition_attention";
    let kt = swap_heads(k)?.t()?;
    let scores = product(&swap_heads(q)?, &kt, from_bf16)?.contiguous()?; // [B, H, Nq, Nk]
    let [b, h, nq, nk]: [usize; 4] = scores.dims().try_into().expect("rank 4");
    let (qg, kg) = (q_groups.contiguous()?, k_groups.contiguous()?);
    let s = launch::storage(name, &scores)?;
    let (CudaData::F32(sv), CudaData::U8(qgv), CudaData::U8(kgv)) = (
        &s.data,
        &launch::storage(name, &qg)?.data,
        &launch::storage(name, &kg)?.data,
    ) else {
        return Err(launch::unsupported(name, &s.data, "F32 scores, U8 groups"));
    };
    let rows = launch::count(name, &Shape::from([b, h, nq]))?;
    let (stream, f) = launch::kernel(s.ordinal, Source::Attention, "masked_softmax_f32")?;
    let mut p = launch::alloc::<f32>(name, &stream, scores.numel())?;
    let mut lse = launch::alloc::<f32>(name, &stream, rows as usize)?;
    let (rule_code, scale32) = (rule as i32, scale as f32);
    let (heads, nq32, nk32) = (h as u32, nq as u32, nk as u32);
    let mut l = stream.launch_builder(&f);
    l.arg(&rule_code)
        .arg(&scale32)
        .arg(&heads)
        .arg(&nq32)
        .arg(&nk32)
        .arg(qgv)
        .arg(kgv)
        .arg(sv)
        .arg(&mut p)
        .arg(&mut lse);
    if rows > 0 {
        // SAFETY: matches `masked_softmax_f32(int, float, unsigned×3, const u8*×2, const
        // float*, float*, float*)`; one block per query row, every row of P and lse written.
        unsafe { l.launch(launch::rows_config(name, rows)?) }.map_err(launch::driver_err(name))?;
    }
    Ok((
        launch::tensor(CudaData::F32(p), s.ordinal, [b, h, nq, nk]),
        launch::tensor(CudaData::F32(lse), s.ordinal, [b, h, nq]),
    ))
}

/// The F32 or BF16 operands widened to F32 (a no-op for F32), and the dtype to round results
/// back to.
fn widened(ts: [&Tensor; 3]) -> Result<([Tensor; 3], DType)> {
    let dtype = ts[0].dtype();
    if let Some(t) = ts
        .iter()
        .find(|t| t.dtype() != dtype || !matches!(dtype, DType::F32 | DType::BF16))
    {
        let data = &launch::storage("partition_attention", t)?.data;
        return Err(launch::unsupported(
            "partition_attention",
            data,
            "q, k, v all F32 or all BF16",
        ));
    }
    let wide = |t: &Tensor| t.to_dtype(DType::F32);
    Ok(([wide(ts[0])?, wide(ts[1])?, wide(ts[2])?], dtype))
}

/// `(out [B, Nq, H, d], lse [B, H, Nq])`, as `Tensor::partition_attention`.
pub fn forward(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    q_groups: &Tensor,
    k_groups: &Tensor,
    rule: GroupRule,
    scale: f64,
) -> Result<(Tensor, Tensor)> {
    let ([q, k, v], dtype) = widened([q, k, v])?;
    let from_bf16 = dtype == DType::BF16;
    let (p, lse) = probabilities((&q, &k), q_groups, k_groups, rule, scale, from_bf16)?;
    let out = swap_heads(&product(&p, &swap_heads(&v)?, from_bf16)?)?.contiguous()?;
    Ok((out.to_dtype(dtype)?, lse.to_dtype(dtype)?))
}

/// `(dq, dk, dv)`, as `Tensor::partition_attention_backward`: P is recomputed, then
/// dV = Pᵀ·dO, dP = dO·Vᵀ, dS = P ⊙ (dP − rowsum(dO ⊙ O))·scale, dQ = dS·K, dK = dSᵀ·Q.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    q_groups: &Tensor,
    k_groups: &Tensor,
    rule: GroupRule,
    scale: f64,
    out: &Tensor,
    dout: &Tensor,
) -> Result<(Tensor, Tensor, Tensor)> {
    let ([q, k, v], dtype) = widened([q, k, v])?;
    let from_bf16 = dtype == DType::BF16;
    let mm = |a: &Tensor, b: &Tensor| product(a, b, from_bf16);
    let (out, dout) = (out.to_dtype(DType::F32)?, dout.to_dtype(DType::F32)?);
    let (p, _) = probabilities((&q, &k), q_groups, k_groups, rule, scale, from_bf16)?;
    let (qh, kh, vh, doh) = (
        swap_heads(&q)?,
        swap_heads(&k)?,
        swap_heads(&v)?,
        swap_heads(&dout)?,
    );
    let dv = mm(&p.t()?, &doh)?; // [B, H, Nk, d]
    let dp = mm(&doh, &vh.t()?)?; // [B, H, Nq, Nk]

    // rowsum(dO ⊙ O) per (b, h, query): [B, Nq, H] → [B, H, Nq, 1].
    let delta = dout
        .mul(&out)?
        .sum(-1, false)?
        .permute(&[0, 2, 1])?
        .unsqueeze(3)?;
    let ds = p.mul(&dp.sub(&delta)?)?.mul_scalar(scale)?;
    let dq = mm(&ds, &kh)?;
    let dk = mm(&ds.t()?, &qh)?;
    let back = |x: Tensor| swap_heads(&x)?.contiguous()?.to_dtype(dtype);
    Ok((back(dq)?, back(dk)?, back(dv)?))
}
