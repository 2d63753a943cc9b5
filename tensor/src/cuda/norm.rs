//! Launchers for `kernels/layernorm.cu`: layer norm over the last dim fused with a per-group
//! affine map (plain layer norm and adaLN's modulate), forward and backward. x, mul, add and dy
//! share a dtype (F32 or BF16); mean, rstd and the backward's partial sums are F32.

use super::kernels::Source;
use super::launch;
use super::CudaData;
use crate::{Error, Result, Tensor};
use cudarc::driver::{CudaSlice, DeviceRepr, PushKernelArg};

/// The sizes every kernel of the file takes, as `unsigned int`s.
#[derive(Clone, Copy)]
struct Dims {
    rows: u32,
    cols: u32,
    groups: u32,
    rows_per_group: u32,
}

impl Dims {
    fn of(op: &'static str, x: &Tensor, groups: usize) -> Result<Dims> {
        launch::count(op, x.shape())?;
        let cols = x.dims().last().copied().unwrap_or(1) as u32;
        let rows = (x.numel() as u32).checked_div(cols).unwrap_or(0);
        let groups = groups as u32;
        Ok(Dims {
            rows,
            cols,
            groups,
            rows_per_group: rows / groups.max(1),
        })
    }
}

fn dtype_error(op: &'static str) -> Error {
    Error::dtype(op, "on CUDA x, mul, add and dy must all be F32 or all BF16")
}

/// (y, mean, rstd) for contiguous x [.., D] and mul, add [groups, D].
pub fn norm_affine(
    x: &Tensor,
    mul: &Tensor,
    add: &Tensor,
    groups: usize,
    eps: f64,
) -> Result<(Tensor, Tensor, Tensor)> {
    let name = "layer_norm_affine";
    let dims = Dims::of(name, x, groups)?;
    let (sx, sm, sa) = (
        launch::storage(name, x)?,
        launch::storage(name, mul)?,
        launch::storage(name, add)?,
    );
    let o = sx.ordinal;
    let stream = super::stream(o)?;
    let mut mean = launch::alloc::<f32>(name, &stream, dims.rows as usize)?;
    let mut rstd = launch::alloc::<f32>(name, &stream, dims.rows as usize)?;
    let stats = (&mut mean, &mut rstd);
    let eps = eps as f32;
    let y = match (&sx.data, &sm.data, &sa.data) {
        (CudaData::F32(xv), CudaData::F32(mv), CudaData::F32(av)) => {
            CudaData::F32(forward(o, "f32", dims, eps, (xv, mv, av), stats)?)
        }
        (CudaData::BF16(xv), CudaData::BF16(mv), CudaData::BF16(av)) => {
            CudaData::BF16(forward(o, "bf16", dims, eps, (xv, mv, av), stats)?)
        }
        _ => return Err(dtype_error(name)),
    };
    let rows_shape = &x.dims()[..x.rank().saturating_sub(1)];
    Ok((
        launch::tensor(y, o, x.shape()),
        launch::tensor(CudaData::F32(mean), o, rows_shape),
        launch::tensor(CudaData::F32(rstd), o, rows_shape),
    ))
}

/// Launches `norm_affine_<sfx>`, one block per row; returns y [rows, cols].
fn forward<T: DeviceRepr>(
    ordinal: usize,
    sfx: &str,
    d: Dims,
    eps: f32,
    (x, mul, add): (&CudaSlice<T>, &CudaSlice<T>, &CudaSlice<T>),
    (mean, rstd): (&mut CudaSlice<f32>, &mut CudaSlice<f32>),
) -> Result<CudaSlice<T>> {
    let name = "layer_norm_affine";
    let (stream, f) = launch::kernel(ordinal, Source::LayerNorm, &format!("norm_affine_{sfx}"))?;
    let mut y = launch::alloc(name, &stream, (d.rows * d.cols) as usize)?;
    if d.rows > 0 {
        let mut b = stream.launch_builder(&f);
        b.arg(&d.cols).arg(&d.rows_per_group).arg(&eps);
        b.arg(x).arg(mul).arg(add).arg(&mut y).arg(mean).arg(rstd);
        // SAFETY: matches `norm_affine_<T>(unsigned cols, unsigned rows_per_group, float eps,
        // const T* x, const T* mul, const T* add, T* y, float* mean, float* rstd)`; a block per
        // row, and mul/add hold groups = rows / rows_per_group rows of cols.
        unsafe { b.launch(launch::rows_config(name, d.rows)?) }
            .map_err(launch::driver_err(name))?;
    }
    Ok(y)
}

/// (dx, Σ dy·x̂ [groups, D], Σ dy [groups, D]) from contiguous x [.., D], mul [groups, D], F32
/// stats [rows] and dy like x.
pub fn norm_affine_backward(
    x: &Tensor,
    mul: &Tensor,
    mean: &Tensor,
    rstd: &Tensor,
    dy: &Tensor,
    groups: usize,
) -> Result<(Tensor, Tensor, Tensor)> {
    let name = "layer_norm_affine_backward";
    let dims = Dims::of(name, x, groups)?;
    let (sx, sm, sd) = (
        launch::storage(name, x)?,
        launch::storage(name, mul)?,
        launch::storage(name, dy)?,
    );
    let (smean, srstd) = (launch::storage(name, mean)?, launch::storage(name, rstd)?);
    let (CudaData::F32(m), CudaData::F32(r)) = (&smean.data, &srstd.data) else {
        return Err(Error::dtype(name, "CUDA layer-norm stats must be F32"));
    };
    let o = sx.ordinal;
    let (dx, s_xhat, s_dy) = match (&sx.data, &sm.data, &sd.data) {
        (CudaData::F32(xv), CudaData::F32(wv), CudaData::F32(dv)) => {
            let (a, b, c) = backward(o, "f32", dims, (xv, wv, dv), (m, r))?;
            (CudaData::F32(a), CudaData::F32(b), CudaData::F32(c))
        }
        (CudaData::BF16(xv), CudaData::BF16(wv), CudaData::BF16(dv)) => {
            let (a, b, c) = backward(o, "bf16", dims, (xv, wv, dv), (m, r))?;
            (CudaData::BF16(a), CudaData::BF16(b), CudaData::BF16(c))
        }
        _ => return Err(dtype_error(name)),
    };
    let sums = [dims.groups as usize, dims.cols as usize];
    Ok((
        launch::tensor(dx, o, x.shape()),
        launch::tensor(s_xhat, o, sums),
        launch::tensor(s_dy, o, sums),
    ))
}

type Grads<T> = (CudaSlice<T>, CudaSlice<T>, CudaSlice<T>);

/// Launches the dx kernel (a block per row), then the column sums in two deterministic steps:
/// per-chunk partials, and their sum per group.
fn backward<T: DeviceRepr>(
    ordinal: usize,
    sfx: &str,
    d: Dims,
    (x, mul, dy): (&CudaSlice<T>, &CudaSlice<T>, &CudaSlice<T>),
    (mean, rstd): (&CudaSlice<f32>, &CudaSlice<f32>),
) -> Result<Grads<T>> {
    let name = "layer_norm_affine_backward";
    let kernel = |k: &str| launch::kernel(ordinal, Source::LayerNorm, &format!("{k}_{sfx}"));
    let (stream, fdx) = kernel("norm_affine_backward_dx")?;
    let (_, fpart) = kernel("norm_affine_backward_partials")?;
    let (_, fsum) = kernel("norm_affine_backward_sums")?;
    let sums_len = (d.groups * d.cols) as usize;
    let mut dx = launch::alloc(name, &stream, (d.rows * d.cols) as usize)?;
    let mut s_xhat = launch::alloc(name, &stream, sums_len)?;
    let mut s_dy = launch::alloc(name, &stream, sums_len)?;
    // With no rows the sums kernel alone runs: over zero chunks it writes zeros.
    let chunks_per_group = d.rows_per_group.div_ceil(launch::SUM_CHUNK_ROWS);
    let chunks = d.groups * chunks_per_group;
    let part_len = (chunks * d.cols) as usize;
    let mut part_xhat = launch::alloc::<f32>(name, &stream, part_len)?;
    let mut part_dy = launch::alloc::<f32>(name, &stream, part_len)?;
    if d.rows > 0 && d.cols > 0 {
        let mut b = stream.launch_builder(&fdx);
        b.arg(&d.cols).arg(&d.rows_per_group);
        b.arg(x).arg(mul).arg(mean).arg(rstd).arg(dy).arg(&mut dx);
        // SAFETY: matches `norm_affine_backward_dx_<T>(unsigned cols, unsigned rows_per_group,
        // const T* x, const T* mul, const float* mean, const float* rstd, const T* dy, T* dx)`.
        unsafe { b.launch(launch::rows_config(name, d.rows)?) }
            .map_err(launch::driver_err(name))?;

        let cfg = launch::chunks_config(name, chunks, d.cols)?;
        let mut b = stream.launch_builder(&fpart);
        b.arg(&d.cols)
            .arg(&d.rows_per_group)
            .arg(&launch::SUM_CHUNK_ROWS)
            .arg(&chunks_per_group);
        b.arg(x).arg(mean).arg(rstd).arg(dy);
        b.arg(&mut part_xhat).arg(&mut part_dy);
        // SAFETY: matches `norm_affine_backward_partials_<T>(unsigned cols, unsigned
        // rows_per_group, unsigned chunk, unsigned chunks_per_group, const T* x, const float*
        // mean, const float* rstd, const T* dy, float* part_xhat, float* part_dy)`; the
        // partials hold chunks·cols values, one per (block x, column).
        unsafe { b.launch(cfg) }.map_err(launch::driver_err(name))?;
    }

    let n = sums_len as u32;
    if n == 0 {
        return Ok((dx, s_xhat, s_dy));
    }
    let mut b = stream.launch_builder(&fsum);
    b.arg(&n).arg(&d.cols).arg(&chunks_per_group);
    b.arg(&part_xhat)
        .arg(&part_dy)
        .arg(&mut s_xhat)
        .arg(&mut s_dy);
    // SAFETY: matches `norm_affine_backward_sums_<T>(unsigned n, unsigned cols, unsigned
    // chunks_per_group, const float* part_xhat, const float* part_dy, T* sum_xhat, T* sum_dy)`.
    unsafe { b.launch(launch::elementwise_config(n)) }.map_err(launch::driver_err(name))?;
    Ok((dx, s_xhat, s_dy))
}
