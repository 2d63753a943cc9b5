//! Launchers for `kernels/cross_entropy.cu`: the fused log-softmax + negative log-likelihood
//! and its gradient. Logits F32 or BF16 [rows, V]; targets U32 [rows]; nll, lse and dnll F32.

use super::kernels::Source;
use super::launch;
use super::CudaData;
use crate::{Error, Result, Tensor};
use cudarc::driver::PushKernelArg;

/// The excluded class as the kernels' `int` (−1: none).
fn excluded_arg(excluded: Option<u32>) -> i32 {
    excluded.map_or(-1, |e| e as i32)
}

/// (rows, cols) of contiguous logits [.., cols] as `unsigned int`s.
fn rows_cols(op: &'static str, x: &Tensor, cols: usize) -> Result<(u32, u32)> {
    launch::count(op, x.shape())?;
    let rows = x.numel().checked_div(cols).unwrap_or(0);
    Ok((rows as u32, cols as u32))
}

fn targets_of<'a>(op: &'static str, t: &'a Tensor) -> Result<&'a cudarc::driver::CudaSlice<u32>> {
    match &launch::storage(op, t)?.data {
        CudaData::U32(v) => Ok(v),
        other => Err(launch::unsupported(op, other, "U32 targets")),
    }
}

fn f32_of<'a>(op: &'static str, t: &'a Tensor) -> Result<&'a cudarc::driver::CudaSlice<f32>> {
    match &launch::storage(op, t)?.data {
        CudaData::F32(v) => Ok(v),
        _ => Err(Error::dtype(op, "on CUDA lse and dnll must be F32")),
    }
}

/// (nll, lse), F32 and shaped like the targets, for contiguous logits and targets.
pub fn forward(
    x: &Tensor,
    targets: &Tensor,
    cols: usize,
    excluded: Option<u32>,
) -> Result<(Tensor, Tensor)> {
    let name = "cross_entropy";
    let (rows, cols) = rows_cols(name, x, cols)?;
    let (sx, ids) = (launch::storage(name, x)?, targets_of(name, targets)?);
    let (stream, f) = launch::kernel(
        sx.ordinal,
        Source::CrossEntropy,
        &format!("cross_entropy_{}", launch::suffix(&sx.data)),
    )?;
    let mut nll = launch::alloc::<f32>(name, &stream, rows as usize)?;
    let mut lse = launch::alloc::<f32>(name, &stream, rows as usize)?;
    if rows > 0 {
        let ex = excluded_arg(excluded);
        let mut b = stream.launch_builder(&f);
        b.arg(&cols).arg(&ex);
        match &sx.data {
            CudaData::F32(v) => b.arg(v),
            CudaData::BF16(v) => b.arg(v),
            other => return Err(launch::unsupported(name, other, "F32 or BF16 logits")),
        };
        b.arg(ids).arg(&mut nll).arg(&mut lse);
        // SAFETY: matches `cross_entropy_<T>(unsigned, int, const T*, const unsigned*, float*,
        // float*)`: x holds rows·cols elements, targets, nll and lse one per row.
        unsafe { b.launch(launch::rows_config(rows)) }.map_err(launch::driver_err(name))?;
    }
    let o = sx.ordinal;
    Ok((
        launch::tensor(CudaData::F32(nll), o, targets.shape()),
        launch::tensor(CudaData::F32(lse), o, targets.shape()),
    ))
}

/// dx, in the logits' dtype and shape, for contiguous operands.
pub fn backward(
    x: &Tensor,
    targets: &Tensor,
    lse: &Tensor,
    dnll: &Tensor,
    cols: usize,
    excluded: Option<u32>,
) -> Result<Tensor> {
    let name = "cross_entropy_backward";
    let (rows, cols) = rows_cols(name, x, cols)?;
    let (sx, ids) = (launch::storage(name, x)?, targets_of(name, targets)?);
    let (lse, dnll) = (f32_of(name, lse)?, f32_of(name, dnll)?);
    let sfx = launch::suffix(&sx.data);
    let (stream, f) = launch::kernel(
        sx.ordinal,
        Source::CrossEntropy,
        &format!("cross_entropy_backward_{sfx}"),
    )?;
    let n = rows as usize * cols as usize;
    let ex = excluded_arg(excluded);
    let cfg = launch::rows_config(rows);
    let data = match &sx.data {
        CudaData::F32(v) => {
            let mut dx = launch::alloc::<f32>(name, &stream, n)?;
            if rows > 0 {
                let mut b = stream.launch_builder(&f);
                b.arg(&cols)
                    .arg(&ex)
                    .arg(v)
                    .arg(ids)
                    .arg(lse)
                    .arg(dnll)
                    .arg(&mut dx);
                // SAFETY: matches `cross_entropy_backward_f32(unsigned, int, const float*,
                // const unsigned*, const float*, const float*, float*)`; dx has rows·cols.
                unsafe { b.launch(cfg) }.map_err(launch::driver_err(name))?;
            }
            CudaData::F32(dx)
        }
        CudaData::BF16(v) => {
            let mut dx = launch::alloc::<half::bf16>(name, &stream, n)?;
            if rows > 0 {
                let mut b = stream.launch_builder(&f);
                b.arg(&cols)
                    .arg(&ex)
                    .arg(v)
                    .arg(ids)
                    .arg(lse)
                    .arg(dnll)
                    .arg(&mut dx);
                // SAFETY: as above with `const bf16*` logits and a bf16 dx.
                unsafe { b.launch(cfg) }.map_err(launch::driver_err(name))?;
            }
            CudaData::BF16(dx)
        }
        other => return Err(launch::unsupported(name, other, "F32 or BF16 logits")),
    };
    Ok(launch::tensor(data, sx.ordinal, x.shape()))
}
