//! Launchers for `kernels/cast.cu`: strided copies into row-major order, `cat`, and dtype casts.

use super::kernels::Source;
use super::launch::{self, Strided};
use super::CudaData;
use crate::{DType, Layout, Result, Shape, Tensor};
use cudarc::driver::{CudaSlice, DeviceRepr, PushKernelArg};

/// A row-major copy of the (any-strided) CUDA tensor `x`, any dtype.
pub fn contiguous(x: &Tensor) -> Result<Tensor> {
    let data = contiguous_data(x)?;
    Ok(launch::tensor(
        data,
        launch::storage("contiguous", x)?.ordinal,
        x.shape(),
    ))
}

/// `contiguous`'s fresh device buffer itself, for a caller that writes into it (a GEMM that
/// accumulates onto a copy of its addend).
pub fn contiguous_data(x: &Tensor) -> Result<CudaData> {
    let name = "contiguous";
    let s = launch::storage(name, x)?;
    let sx = Strided::of(name, x.layout())?;
    let n = launch::count(name, x.shape())?;
    fn run<T: DeviceRepr>(
        ordinal: usize,
        sfx: &str,
        n: u32,
        src: &CudaSlice<T>,
        sx: Strided,
    ) -> Result<CudaSlice<T>> {
        let kernel = format!("copy_strided_{sfx}");
        let (stream, f) = launch::kernel(ordinal, Source::Cast, &kernel)?;
        let mut out = launch::alloc("contiguous", &stream, n as usize)?;
        let mut b = stream.launch_builder(&f);
        b.arg(&n).arg(src).arg(&sx).arg(&mut out);
        // SAFETY: matches `copy_strided_<T>(unsigned, const T*, Strided, T*)`; the layout's
        // offsets lie inside the storage the view was made from.
        unsafe { b.launch(launch::elementwise_config(n)) }
            .map_err(launch::driver_err("contiguous"))?;
        Ok(out)
    }
    let o = s.ordinal;
    let sfx = launch::suffix(&s.data);
    let data = match &s.data {
        CudaData::F32(v) => CudaData::F32(run(o, sfx, n, v, sx)?),
        CudaData::F64(v) => CudaData::F64(run(o, sfx, n, v, sx)?),
        CudaData::BF16(v) => CudaData::BF16(run(o, sfx, n, v, sx)?),
        CudaData::F16(v) => CudaData::F16(run(o, sfx, n, v, sx)?),
        CudaData::U32(v) => CudaData::U32(run(o, sfx, n, v, sx)?),
        CudaData::U8(v) => CudaData::U8(run(o, sfx, n, v, sx)?),
    };
    Ok(data)
}

/// `x` (contiguous, offset 0) converted to `dtype`, another dtype than its own (there is no
/// identity kernel), as the CPU's cast: floats round to nearest, floats to integers truncate
/// and saturate.
pub fn cast(x: &Tensor, dtype: DType) -> Result<Tensor> {
    let name = "to_dtype";
    let s = launch::storage(name, x)?;
    let n = launch::count(name, x.shape())?;
    let kernel = format!(
        "cast_{}_{}",
        launch::suffix(&s.data),
        dtype.name().to_lowercase()
    );
    let (stream, f) = launch::kernel(s.ordinal, Source::Cast, &kernel)?;
    fn out<T: DeviceRepr>(
        stream: &std::sync::Arc<cudarc::driver::CudaStream>,
        n: u32,
    ) -> Result<CudaSlice<T>> {
        launch::alloc("to_dtype", stream, n as usize)
    }
    let mut dst = match dtype {
        DType::F32 => CudaData::F32(out(&stream, n)?),
        DType::F64 => CudaData::F64(out(&stream, n)?),
        DType::BF16 => CudaData::BF16(out(&stream, n)?),
        DType::F16 => CudaData::F16(out(&stream, n)?),
        DType::U32 => CudaData::U32(out(&stream, n)?),
        DType::U8 => CudaData::U8(out(&stream, n)?),
    };
    let mut b = stream.launch_builder(&f);
    b.arg(&n);
    launch::arg_data(&mut b, &s.data);
    match &mut dst {
        CudaData::F32(v) => b.arg(v),
        CudaData::F64(v) => b.arg(v),
        CudaData::BF16(v) => b.arg(v),
        CudaData::F16(v) => b.arg(v),
        CudaData::U32(v) => b.arg(v),
        CudaData::U8(v) => b.arg(v),
    };
    // SAFETY: matches `cast_<S>_<D>(unsigned, const S*, D*)` with the kernel chosen by the two
    // dtypes; both buffers hold n elements.
    unsafe { b.launch(launch::elementwise_config(n)) }.map_err(launch::driver_err(name))?;
    Ok(launch::tensor(dst, s.ordinal, x.shape()))
}

/// `tensors` (CUDA, one dtype, shapes checked by the caller) joined along `dim` into a new
/// contiguous tensor of `shape`: each input is copied into its region of the output.
pub fn cat(tensors: &[&Tensor], dim: usize, shape: &Shape) -> Result<Tensor> {
    let name = "cat";
    let first = launch::storage(name, tensors[0])?;
    let (o, sfx) = (first.ordinal, launch::suffix(&first.data));
    let (stream, f) = launch::kernel(o, Source::Cast, &format!("copy_into_strided_{sfx}"))?;
    let n_out = launch::count(name, shape)? as usize;
    let mut out = match &first.data {
        CudaData::F32(_) => CudaData::F32(launch::alloc(name, &stream, n_out)?),
        CudaData::F64(_) => CudaData::F64(launch::alloc(name, &stream, n_out)?),
        CudaData::BF16(_) => CudaData::BF16(launch::alloc(name, &stream, n_out)?),
        CudaData::F16(_) => CudaData::F16(launch::alloc(name, &stream, n_out)?),
        CudaData::U32(_) => CudaData::U32(launch::alloc(name, &stream, n_out)?),
        CudaData::U8(_) => CudaData::U8(launch::alloc(name, &stream, n_out)?),
    };
    let out_layout = Layout::contiguous(shape.clone());
    let mut start = 0;
    for t in tensors {
        let len = t.dims()[dim];
        let region = Strided::of(name, &out_layout.narrow(dim, start, len)?)?;
        start += len;
        let src = t.contiguous()?;
        let n = launch::count(name, src.shape())?;
        if n == 0 {
            continue;
        }
        let src = launch::storage(name, &src)?;
        let mut b = stream.launch_builder(&f);
        b.arg(&n);
        match (&src.data, &mut out) {
            (CudaData::F32(s), CudaData::F32(d)) => b.arg(s).arg(&region).arg(d),
            (CudaData::F64(s), CudaData::F64(d)) => b.arg(s).arg(&region).arg(d),
            (CudaData::BF16(s), CudaData::BF16(d)) => b.arg(s).arg(&region).arg(d),
            (CudaData::F16(s), CudaData::F16(d)) => b.arg(s).arg(&region).arg(d),
            (CudaData::U32(s), CudaData::U32(d)) => b.arg(s).arg(&region).arg(d),
            (CudaData::U8(s), CudaData::U8(d)) => b.arg(s).arg(&region).arg(d),
            (s, _) => return Err(launch::unsupported(name, s, sfx)),
        };
        // SAFETY: matches `copy_into_strided_<T>(unsigned, const T*, Strided, T*)`; the region
        // of n elements lies inside the output, and the regions of the inputs tile it exactly.
        unsafe { b.launch(launch::elementwise_config(n)) }.map_err(launch::driver_err(name))?;
    }
    Ok(launch::tensor(out, o, shape.clone()))
}
