//! Launchers for `kernels/layernorm.cu`: layer norm over the last dim, forward and backward.
//! x, weight, bias and dy share a dtype (F32 or BF16); mean and rstd are F32 [rows] either way.

use super::kernels::Source;
use super::launch;
use super::CudaData;
use crate::{Error, Result, Tensor};
use cudarc::driver::{CudaSlice, DeviceRepr, PushKernelArg};

/// (rows, cols) of a [.., cols] tensor, as the kernels' `unsigned int`s.
fn rows_cols(op: &'static str, x: &Tensor) -> Result<(u32, u32)> {
    let cols = x.dims().last().copied().unwrap_or(1);
    let rows: usize = x.dims()[..x.rank().saturating_sub(1)].iter().product();
    launch::count(op, x.shape())?;
    Ok((rows as u32, cols as u32))
}

fn dtype_error(op: &'static str) -> Error {
    Error::dtype(
        op,
        "on CUDA x, weight, bias and dy must all be F32 or all BF16",
    )
}

/// (y, mean, rstd) for contiguous x [.., D], w [D] and optional b [D].
pub fn layer_norm(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    eps: f64,
) -> Result<(Tensor, Tensor, Tensor)> {
    let name = "layer_norm";
    let (rows, cols) = rows_cols(name, x)?;
    let (sx, sw) = (launch::storage(name, x)?, launch::storage(name, w)?);
    // Without a bias the kernel never reads `b`: pass the weight in its place.
    let sb = b
        .map(|b| launch::storage(name, b))
        .transpose()?
        .unwrap_or(sw);
    let o = sx.ordinal;
    let stream = super::stream(o)?;
    let mut mean = launch::alloc::<f32>(name, &stream, rows as usize)?;
    let mut rstd = launch::alloc::<f32>(name, &stream, rows as usize)?;
    let args = Forward {
        rows,
        cols,
        eps: eps as f32,
        has_bias: b.is_some() as i32,
    };
    let y = match (&sx.data, &sw.data, &sb.data) {
        (CudaData::F32(xv), CudaData::F32(wv), CudaData::F32(bv)) => {
            CudaData::F32(args.run(o, "f32", (xv, wv, bv), (&mut mean, &mut rstd))?)
        }
        (CudaData::BF16(xv), CudaData::BF16(wv), CudaData::BF16(bv)) => {
            CudaData::BF16(args.run(o, "bf16", (xv, wv, bv), (&mut mean, &mut rstd))?)
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

/// The scalar arguments of the forward kernel.
struct Forward {
    rows: u32,
    cols: u32,
    eps: f32,
    has_bias: i32,
}

impl Forward {
    /// Launches `layer_norm_<sfx>`, one block per row; returns y [rows, cols].
    fn run<T: DeviceRepr>(
        &self,
        ordinal: usize,
        sfx: &str,
        (x, w, b): (&CudaSlice<T>, &CudaSlice<T>, &CudaSlice<T>),
        (mean, rstd): (&mut CudaSlice<f32>, &mut CudaSlice<f32>),
    ) -> Result<CudaSlice<T>> {
        let name = "layer_norm";
        let (stream, f) = launch::kernel(ordinal, Source::LayerNorm, &format!("layer_norm_{sfx}"))?;
        let mut y = launch::alloc(name, &stream, (self.rows * self.cols) as usize)?;
        if self.rows > 0 {
            let mut bld = stream.launch_builder(&f);
            bld.arg(&self.cols)
                .arg(&self.eps)
                .arg(x)
                .arg(w)
                .arg(&self.has_bias)
                .arg(b);
            bld.arg(&mut y).arg(mean).arg(rstd);
            // SAFETY: matches `layer_norm_<T>(unsigned cols, float eps, const T* x, const T* w,
            // int has_bias, const T* b, T* y, float* mean, float* rstd)`; a block per row.
            unsafe { bld.launch(launch::rows_config(self.rows)) }
                .map_err(launch::driver_err(name))?;
        }
        Ok(y)
    }
}

/// (dx, dw, db) from contiguous x [.., D], w [D], F32 stats [rows] and dy like x.
pub fn layer_norm_backward(
    x: &Tensor,
    w: &Tensor,
    mean: &Tensor,
    rstd: &Tensor,
    dy: &Tensor,
) -> Result<(Tensor, Tensor, Tensor)> {
    let name = "layer_norm_backward";
    let (rows, cols) = rows_cols(name, x)?;
    let (sx, sw, sd) = (
        launch::storage(name, x)?,
        launch::storage(name, w)?,
        launch::storage(name, dy)?,
    );
    let (sm, sr) = (launch::storage(name, mean)?, launch::storage(name, rstd)?);
    let (CudaData::F32(m), CudaData::F32(r)) = (&sm.data, &sr.data) else {
        return Err(Error::dtype(name, "CUDA layer-norm stats must be F32"));
    };
    let o = sx.ordinal;
    let (dx, dw, db) = match (&sx.data, &sw.data, &sd.data) {
        (CudaData::F32(xv), CudaData::F32(wv), CudaData::F32(dv)) => {
            let (a, b, c) = backward(o, "f32", rows, cols, (xv, wv, dv), (m, r))?;
            (CudaData::F32(a), CudaData::F32(b), CudaData::F32(c))
        }
        (CudaData::BF16(xv), CudaData::BF16(wv), CudaData::BF16(dv)) => {
            let (a, b, c) = backward(o, "bf16", rows, cols, (xv, wv, dv), (m, r))?;
            (CudaData::BF16(a), CudaData::BF16(b), CudaData::BF16(c))
        }
        _ => return Err(dtype_error(name)),
    };
    Ok((
        launch::tensor(dx, o, x.shape()),
        launch::tensor(dw, o, [cols as usize]),
        launch::tensor(db, o, [cols as usize]),
    ))
}

type Grads<T> = (CudaSlice<T>, CudaSlice<T>, CudaSlice<T>);

/// Launches the dx kernel (a block per row) and the parameter kernel (a thread per column).
fn backward<T: DeviceRepr>(
    ordinal: usize,
    sfx: &str,
    rows: u32,
    cols: u32,
    (x, w, dy): (&CudaSlice<T>, &CudaSlice<T>, &CudaSlice<T>),
    (mean, rstd): (&CudaSlice<f32>, &CudaSlice<f32>),
) -> Result<Grads<T>> {
    let name = "layer_norm_backward";
    let (stream, fdx) = launch::kernel(
        ordinal,
        Source::LayerNorm,
        &format!("layer_norm_backward_dx_{sfx}"),
    )?;
    let (_, fp) = launch::kernel(
        ordinal,
        Source::LayerNorm,
        &format!("layer_norm_backward_params_{sfx}"),
    )?;
    let mut dx = launch::alloc(name, &stream, (rows * cols) as usize)?;
    let mut dw = launch::alloc(name, &stream, cols as usize)?;
    let mut db = launch::alloc(name, &stream, cols as usize)?;
    if rows > 0 {
        let mut b = stream.launch_builder(&fdx);
        b.arg(&cols)
            .arg(x)
            .arg(w)
            .arg(mean)
            .arg(rstd)
            .arg(dy)
            .arg(&mut dx);
        // SAFETY: matches `layer_norm_backward_dx_<T>(unsigned, const T* x, const T* w,
        // const float* mean, const float* rstd, const T* dy, T* dx)`; a block per row.
        unsafe { b.launch(launch::rows_config(rows)) }.map_err(launch::driver_err(name))?;
    }
    let mut b = stream.launch_builder(&fp);
    b.arg(&rows).arg(&cols).arg(x).arg(mean).arg(rstd).arg(dy);
    b.arg(&mut dw).arg(&mut db);
    // SAFETY: matches `layer_norm_backward_params_<T>(unsigned rows, unsigned cols, const T* x,
    // const float* mean, const float* rstd, const T* dy, T* dw, T* db)`; a thread per column.
    unsafe { b.launch(launch::elementwise_config(cols)) }.map_err(launch::driver_err(name))?;
    Ok((dx, dw, db))
}
