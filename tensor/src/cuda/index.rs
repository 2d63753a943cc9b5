//! Launchers for `kernels/index.cu`: index_select and gather (any dtype), index_add and
//! scatter_add (F32 and F64 with atomicAdd, so repeated indices accumulate; BF16 through F32).
//!
//! Indices are checked on the host first (`cpu::index::check_indices`), which copies them back
//! from the GPU: an out-of-range index is an error, never an out-of-bounds read.

use super::kernels::Source;
use super::launch;
use super::CudaData;
use crate::cpu::index::check_indices;
use crate::{DType, Error, Result, Tensor};
use cudarc::driver::{CudaSlice, DeviceRepr, PushKernelArg};

/// The u32 index slice of a contiguous CUDA tensor, after checking every index is < `size`.
fn checked_ids<'a>(
    op: &'static str,
    ids: &'a Tensor,
    size: usize,
    dim: usize,
) -> Result<&'a CudaSlice<u32>> {
    let s = launch::storage(op, ids)?;
    let CudaData::U32(v) = &s.data else {
        return Err(Error::dtype(
            op,
            format!("indices must be U32, got {:?}", ids.dtype()),
        ));
    };
    check_indices(op, &ids.to_vec::<u32>()?, size, dim)?;
    Ok(v)
}

/// Launches `<kernel>_<T>(n, size, inner, nids, src, ids, out)` (select and gather).
#[allow(clippy::too_many_arguments)]
fn pick<T: DeviceRepr>(
    op: &'static str,
    kernel: &str,
    ordinal: usize,
    (n, size, inner, nids): (u32, u32, u32, u32),
    x: &CudaSlice<T>,
    ids: &CudaSlice<u32>,
) -> Result<CudaSlice<T>> {
    let (stream, f) = launch::kernel(ordinal, Source::Index, kernel)?;
    let mut out = launch::alloc(op, &stream, n as usize)?;
    let mut b = stream.launch_builder(&f);
    b.arg(&n)
        .arg(&size)
        .arg(&inner)
        .arg(&nids)
        .arg(x)
        .arg(ids)
        .arg(&mut out);
    // SAFETY: matches `index_select_<T>` / `gather_<T>(unsigned n, unsigned size, unsigned
    // inner, unsigned nids, const T* x, const unsigned* ids, T* out)`; indices were checked.
    unsafe { b.launch(launch::elementwise_config(n)) }.map_err(launch::driver_err(op))?;
    Ok(out)
}

/// `x` (contiguous) viewed as [outer, size, inner] around dim `d`; picks `ids` along it.
/// `gather` selects per element (ids shaped like the output), `index_select` per slice.
pub fn select(
    op: &'static str,
    x: &Tensor,
    d: usize,
    ids: &Tensor,
    out_dims: Vec<usize>,
) -> Result<Tensor> {
    let (_, size, inner) = x.shape().split_at_dim(d);
    let idv = checked_ids(op, ids, size, d)?;
    let sx = launch::storage(op, x)?;
    let nids = if op == "gather" {
        out_dims[d]
    } else {
        ids.numel()
    };
    let out_shape = crate::Shape::new(out_dims);
    let n = launch::count(op, &out_shape)?;
    launch::count(op, x.shape())?;
    let dims = (n, size as u32, inner as u32, nids as u32);
    let kernel = format!("{op}_{}", launch::suffix(&sx.data));
    let o = sx.ordinal;
    let data = match &sx.data {
        CudaData::F32(v) => CudaData::F32(pick(op, &kernel, o, dims, v, idv)?),
        CudaData::F64(v) => CudaData::F64(pick(op, &kernel, o, dims, v, idv)?),
        CudaData::BF16(v) => CudaData::BF16(pick(op, &kernel, o, dims, v, idv)?),
        CudaData::F16(v) => CudaData::F16(pick(op, &kernel, o, dims, v, idv)?),
        CudaData::U32(v) => CudaData::U32(pick(op, &kernel, o, dims, v, idv)?),
        CudaData::U8(v) => CudaData::U8(pick(op, &kernel, o, dims, v, idv)?),
    };
    Ok(launch::tensor(data, o, out_shape))
}

/// Launches `<kernel>(n, size, inner, nids, ids, src, dst)` on a copy of `dst`.
fn add<T: DeviceRepr>(
    op: &'static str,
    kernel: &str,
    ordinal: usize,
    (n, size, inner, nids): (u32, u32, u32, u32),
    ids: &CudaSlice<u32>,
    src: &CudaSlice<T>,
    dst: &CudaSlice<T>,
) -> Result<CudaSlice<T>> {
    let (stream, f) = launch::kernel(ordinal, Source::Index, kernel)?;
    let mut out = stream.clone_dtod(dst).map_err(launch::driver_err(op))?;
    if n > 0 {
        let mut b = stream.launch_builder(&f);
        b.arg(&n)
            .arg(&size)
            .arg(&inner)
            .arg(&nids)
            .arg(ids)
            .arg(src)
            .arg(&mut out);
        // SAFETY: matches `index_add_<T>` / `scatter_add_<T>(unsigned n, unsigned size,
        // unsigned inner, unsigned nids, const unsigned* ids, const T* src, T* dst)`;
        // indices were checked, src holds n elements.
        unsafe { b.launch(launch::elementwise_config(n)) }.map_err(launch::driver_err(op))?;
    }
    Ok(out)
}

/// A copy of `dst` (contiguous, viewed as [outer, size, inner] around dim `d`) with the
/// contiguous `src` added at `ids`: per slice for `index_add` (ids 1-D), per element for
/// `scatter_add` (ids shaped like src).
pub fn accumulate(
    op: &'static str,
    dst: &Tensor,
    d: usize,
    ids: &Tensor,
    src: &Tensor,
) -> Result<Tensor> {
    if (dst.dtype(), src.dtype()) == (DType::BF16, DType::BF16) {
        // bf16 atomics would round after every add, and an embedding gradient sums a frequent
        // token's rows thousands of times: add in f32, round once.
        let wide = |t: &Tensor| t.to_dtype(DType::F32);
        return accumulate(op, &wide(dst)?, d, ids, &wide(src)?)?.to_dtype(DType::BF16);
    }
    let (_, size, inner) = dst.shape().split_at_dim(d);
    let idv = checked_ids(op, ids, size, d)?;
    let (sd, ss) = (launch::storage(op, dst)?, launch::storage(op, src)?);
    let n = launch::count(op, src.shape())?;
    launch::count(op, dst.shape())?;
    let dims = (n, size as u32, inner as u32, src.dims()[d] as u32);
    let kernel = format!("{op}_{}", launch::suffix(&sd.data));
    let o = sd.ordinal;
    let data = match (&sd.data, &ss.data) {
        (CudaData::F32(a), CudaData::F32(b)) => {
            CudaData::F32(add(op, &kernel, o, dims, idv, b, a)?)
        }
        (CudaData::F64(a), CudaData::F64(b)) => {
            CudaData::F64(add(op, &kernel, o, dims, idv, b, a)?)
        }
        (a, _) => return Err(launch::unsupported(op, a, "matching F32, F64 or BF16")),
    };
    Ok(launch::tensor(data, o, dst.shape()))
}
