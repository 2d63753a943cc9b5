//! What every CUDA launcher needs: the `Strided` layout descriptor passed to kernels, launch
//! shapes, output allocation, and turning tensors into their device slices.

use super::{cuda_error, kernels, CudaData, CudaStorage};
use crate::{Error, Layout, Result, Shape, Storage, Tensor};
use cudarc::driver::{
    CudaFunction, CudaSlice, CudaStream, DeviceRepr, LaunchArgs, LaunchConfig, PushKernelArg,
};
use std::sync::Arc;

/// The largest rank a kernel's `Strided` can describe (`MAX_RANK` in `common.cuh`).
pub const MAX_RANK: usize = 6;

/// Threads per block for every kernel (a multiple of 32: the block reductions use whole warps;
/// `argmax_last` sizes its shared arrays for exactly this many).
pub const BLOCK: u32 = 256;

/// A tensor layout as kernels read it; the same fields, in the same order, as `Strided` in
/// `kernels/common.cuh`. Dims past `rank` are unused.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Strided {
    pub rank: u32,
    pub offset: u32,
    pub dims: [u32; MAX_RANK],
    pub strides: [u32; MAX_RANK],
}

// SAFETY: `Strided` is `repr(C)` plain data, laid out exactly as the C struct the kernels take.
unsafe impl DeviceRepr for Strided {}

impl Strided {
    /// The descriptor of `l`; a contiguous layout becomes rank 1 (cheaper index arithmetic).
    /// Errors when the rank exceeds [`MAX_RANK`] or an offset would not fit in 32 bits.
    pub fn of(op: &'static str, l: &Layout) -> Result<Strided> {
        let fits = |v: usize| u32::try_from(v).map_err(|_| too_big(op, l.shape()));
        let last = l
            .dims()
            .iter()
            .zip(l.strides())
            .map(|(&d, &s)| d.saturating_sub(1) * s)
            .sum::<usize>();
        fits(l.offset() + last + 1)?;
        let mut s = Strided {
            offset: fits(l.offset())?,
            ..Default::default()
        };
        if l.is_contiguous() {
            s.rank = 1;
            s.dims[0] = fits(l.shape().numel())?;
            s.strides[0] = 1;
            return Ok(s);
        }
        if l.dims().len() > MAX_RANK {
            return Err(Error::shape(
                op,
                format!("CUDA kernels take rank ≤ {MAX_RANK}, got {:?}", l.shape()),
            ));
        }
        s.rank = l.dims().len() as u32;
        for (i, (&d, &st)) in l.dims().iter().zip(l.strides()).enumerate() {
            s.dims[i] = fits(d)?;
            s.strides[i] = fits(st)?;
        }
        Ok(s)
    }
}

fn too_big(op: &'static str, shape: &Shape) -> Error {
    Error::shape(
        op,
        format!("{shape:?} is too large for 32-bit indexing in the CUDA kernels"),
    )
}

/// Blocks of a grid-stride launch ([`elementwise_config`]).
const MAX_STRIDE_BLOCKS: u32 = 65_535 * 4;

/// The most elements a kernel indexes: 2^32 less one grid stride, so that a grid-stride loop's
/// `i += blockDim.x * gridDim.x` cannot wrap past 2^32 back into range.
pub const MAX_ELEMENTS: u32 = u32::MAX - MAX_STRIDE_BLOCKS * BLOCK;

/// An element count as the kernels' `unsigned int` (at most [`MAX_ELEMENTS`]).
pub fn count(op: &'static str, shape: &Shape) -> Result<u32> {
    u32::try_from(shape.numel())
        .ok()
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(|| too_big(op, shape))
}

/// One thread per element in a grid-stride loop: blocks of [`BLOCK`], at most 65 535·4 blocks.
pub fn elementwise_config(n: u32) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (n.div_ceil(BLOCK).clamp(1, MAX_STRIDE_BLOCKS), 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// A grid of `(x, y)` blocks of [`BLOCK`] threads, or an error naming `op` when it exceeds
/// the hardware's limits (2^31 - 1 blocks in x, 65 535 in y).
pub fn grid(op: &'static str, x: u32, y: u32) -> Result<LaunchConfig> {
    if x > i32::MAX as u32 || y > 65_535 {
        return Err(Error::shape(
            op,
            format!("a launch grid of {x} × {y} blocks exceeds the GPU's limits"),
        ));
    }
    Ok(LaunchConfig {
        grid_dim: (x, y, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    })
}

/// One block of [`BLOCK`] threads per row.
pub fn rows_config(op: &'static str, rows: u32) -> Result<LaunchConfig> {
    grid(op, rows, 1)
}

/// Rows per block of the two-step column sums (layer norm's and the gated residual's
/// parameter gradients): at the paper's size (32 768 rows of 768) 1 024 × 3 blocks, enough to
/// fill the GPU, with 6 MB of f32 partials.
pub const SUM_CHUNK_ROWS: u32 = 32;

/// The first step of the column sums: a block per (chunk of rows, 256 columns), x = the chunk.
pub fn chunks_config(op: &'static str, chunks: u32, cols: u32) -> Result<LaunchConfig> {
    grid(op, chunks, cols.div_ceil(BLOCK))
}

/// The CUDA storage of `t`, or an error naming `op`.
pub fn storage<'a>(op: &'static str, t: &'a Tensor) -> Result<&'a CudaStorage> {
    match t.storage() {
        Storage::Cuda(s) => Ok(s),
        Storage::Cpu(_) => Err(Error::device(op, "expected a CUDA tensor, got a CPU one")),
    }
}

/// A driver error as a crate error naming `op`.
pub fn driver_err(op: &'static str) -> impl Fn(cudarc::driver::DriverError) -> Error {
    move |e| cuda_error(op, e.to_string())
}

/// The stream, and the kernel `name` of `source`, of GPU `ordinal`.
pub fn kernel(
    ordinal: usize,
    source: kernels::Source,
    name: &str,
) -> Result<(Arc<CudaStream>, CudaFunction)> {
    Ok((
        super::stream(ordinal)?,
        kernels::function(ordinal, source, name)?,
    ))
}

/// Device memory for `n` elements that the kernel will overwrite entirely (at least one
/// element: the driver refuses empty allocations).
pub fn alloc<T: DeviceRepr>(
    op: &'static str,
    stream: &Arc<CudaStream>,
    n: usize,
) -> Result<CudaSlice<T>> {
    // SAFETY: every caller launches a kernel that writes all n elements before any read.
    unsafe { stream.alloc::<T>(n.max(1)) }.map_err(driver_err(op))
}

/// A fresh contiguous CUDA tensor of `shape` around `data`.
pub fn tensor(data: CudaData, ordinal: usize, shape: impl Into<Shape>) -> Tensor {
    Tensor::from_storage(Storage::Cuda(CudaStorage { data, ordinal }), shape)
}

/// The kernel-name suffix of a dtype (`f32`, `bf16`, …).
pub fn suffix(data: &CudaData) -> &'static str {
    match data {
        CudaData::F32(_) => "f32",
        CudaData::F64(_) => "f64",
        CudaData::BF16(_) => "bf16",
        CudaData::F16(_) => "f16",
        CudaData::U32(_) => "u32",
        CudaData::U8(_) => "u8",
    }
}

/// The kernel-name suffix of an F32 or BF16 buffer; other dtypes are an error naming `op`.
pub fn float_suffix(op: &'static str, data: &CudaData) -> Result<&'static str> {
    match data {
        CudaData::F32(_) | CudaData::BF16(_) => Ok(suffix(data)),
        other => Err(unsupported(op, other, "F32 or BF16")),
    }
}

/// Pushes the device buffer of `data`, whatever its dtype, as the next kernel argument (a
/// `const T*`: the caller launches the kernel made for that dtype).
pub fn arg_data<'a>(b: &mut LaunchArgs<'a>, data: &'a CudaData) {
    match data {
        CudaData::F32(v) => b.arg(v),
        CudaData::F64(v) => b.arg(v),
        CudaData::BF16(v) => b.arg(v),
        CudaData::F16(v) => b.arg(v),
        CudaData::U32(v) => b.arg(v),
        CudaData::U8(v) => b.arg(v),
    };
}

/// The error for a dtype a CUDA kernel does not cover.
pub fn unsupported(op: &'static str, data: &CudaData, expected: &str) -> Error {
    Error::dtype(
        op,
        format!("on CUDA expects {expected}, got {}", suffix(data)),
    )
}
