//! Launchers for `kernels/cross_entropy.cu`: the fused log-softmax + negative log-likelihood
//! and its gradient. Logits F32 or BF16 [rows, V]; targets U32 [rows]; nll, lse and dnll F32.

use super::kernels::Source;
use super::launch;
use super::CudaData;
use crate::{Error, Result, Tensor};
use cudarc::driver::{CudaFunction, CudaSlice, CudaStream, DeviceRepr, PushKernelArg};
use std::sync::Arc;

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

fn targets_of<'a>(op: &'static str, t: &'a Tensor) -> Result<&'a CudaSlice<u32>> {
    match &launch::storage(op, t)?.data {
        CudaData::U32(v) => Ok(v),
        other => Err(launch::unsupported(op, other, "U32 targets")),
    }
}

fn f32_of<'a>(op: &'static str, t: &'a Tensor) -> Result<&'a CudaSlice<f32>> {
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
    let sfx = launch::float_suffix(name, &sx.data)?;
    let (stream, f) = launch::kernel(
        sx.ordinal,
        Source::CrossEntropy,
        &format!("cross_entropy_{sfx}"),
    )?;
    let mut nll = launch::alloc::<f32>(name, &stream, rows as usize)?;
    let mut lse = launch::alloc::<f32>(name, &stream, rows as usize)?;
    if rows > 0 {
        let ex = excluded_arg(excluded);
        let mut b = stream.launch_builder(&f);
        b.arg(&cols).arg(&ex);
        launch::arg_data(&mut b, &sx.data);
        b.arg(ids).arg(&mut nll).arg(&mut lse);
        // SAFETY: matches `cross_entropy_<T>(unsigned, int, const T*, const unsigned*, float*,
        // float*)`: x holds rows·cols elements, targets, nll and lse one per row.
        unsafe { b.launch(launch::rows_config(name, rows)?) }.map_err(launch::driver_err(name))?;
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
    let sfx = launch::float_suffix(name, &sx.data)?;
    let (stream, f) = launch::kernel(
        sx.ordinal,
        Source::CrossEntropy,
        &format!("cross_entropy_backward_{sfx}"),
    )?;
    let args = BackwardArgs {
        rows,
        cols,
        excluded: excluded_arg(excluded),
        targets: ids,
        lse,
        dnll,
    };
    let data = match &sx.data {
        CudaData::F32(v) => CudaData::F32(args.run(&stream, &f, v)?),
        CudaData::BF16(v) => CudaData::BF16(args.run(&stream, &f, v)?),
        other => return Err(launch::unsupported(name, other, "F32 or BF16 logits")),
    };
    Ok(launch::tensor(data, sx.ordinal, x.shape()))
}

/// The backward kernel's arguments other than the logits and dx.
struct BackwardArgs<'a> {
    rows: u32,
    cols: u32,
    excluded: i32,
    targets: &'a CudaSlice<u32>,
    lse: &'a CudaSlice<f32>,
    dnll: &'a CudaSlice<f32>,
}

impl BackwardArgs<'_> {
    /// Launches `f` (`cross_entropy_backward_<T>`) over logits `x`; returns dx like x.
    fn run<T: DeviceRepr>(
        &self,
        stream: &Arc<CudaStream>,
        f: &CudaFunction,
        x: &CudaSlice<T>,
    ) -> Result<CudaSlice<T>> {
        let name = "cross_entropy_backward";
        let mut dx = launch::alloc::<T>(name, stream, self.rows as usize * self.cols as usize)?;
        if self.rows > 0 {
            let mut b = stream.launch_builder(f);
            b.arg(&self.cols)
                .arg(&self.excluded)
                .arg(x)
                .arg(self.targets);
            b.arg(self.lse).arg(self.dnll).arg(&mut dx);
            // SAFETY: matches `cross_entropy_backward_<T>(unsigned, int, const T*, const
            // unsigned*, const float*, const float*, T*)`; dx has rows·cols elements.
            unsafe { b.launch(launch::rows_config(name, self.rows)?) }
                .map_err(launch::driver_err(name))?;
        }
        Ok(dx)
    }
}
