//! Batched matrix multiply on CUDA with cuBLAS (one strided-batched GEMM per call).
//!
//! cuBLAS is column-major; a row-major matrix read column-major is its transpose. So for
//! row-major C [M, N] = A [M, K] · B [K, N] we ask cuBLAS for Cᵀ = Bᵀ · Aᵀ: its "A" is our B,
//! its "B" is our A, m = N, n = M. An operand stored transposed (a `t()` view: unit row
//! stride) is passed with the transpose flag instead of being copied. F32 runs `cublasSgemm`;
//! BF16 runs `cublasGemmStridedBatchedEx` with bf16 inputs and f32 accumulation. TF32 is not
//! enabled, so F32 results match the CPU to rounding. `matmul_add` starts C as a copy of the
//! addend and runs the GEMM with beta = 1, so the sum costs no extra pass over C.

use super::launch;
use super::CudaData;
use crate::{Error, Layout, Result, Shape, Tensor};
use cudarc::cublas::sys::cublasOperation_t as Op;
use cudarc::cublas::{CudaBlas, Gemm, GemmConfig, StridedBatchedConfig};
use cudarc::driver::{CudaSlice, DeviceRepr, ValidAsZeroBits};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// The cuBLAS handle of GPU `ordinal` (on its one stream), created on first use: one that
/// computes F32 products exactly, and one, for `tf32`, whose math mode lets F32 products run
/// on the TF32 tensor cores. BF16 products use the tensor cores either way.
fn blas(ordinal: usize, tf32: bool) -> Result<Arc<CudaBlas>> {
    type Handles = HashMap<(usize, bool), Arc<CudaBlas>>; // keyed by (ordinal, tf32)
    static HANDLES: OnceLock<Mutex<Handles>> = OnceLock::new();
    let mut map = HANDLES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(h) = map.get(&(ordinal, tf32)) {
        return Ok(h.clone());
    }
    let fail = |e: String| super::cuda_error("matmul", format!("cuBLAS on cuda:{ordinal}: {e}"));
    // cudarc panics when it cannot open libcublas; ask first so the answer is an error.
    // SAFETY: only tries to open the library.
    if !unsafe { cudarc::cublas::sys::is_culib_present() } {
        let hint = "libcublas.so not found (add its folder to LD_LIBRARY_PATH)";
        return Err(fail(hint.into()));
    }
    let h = CudaBlas::new(super::stream(ordinal)?).map_err(|e| fail(e.to_string()))?;
    if tf32 {
        let mode = cudarc::cublas::sys::cublasMath_t::CUBLAS_TF32_TENSOR_OP_MATH;
        // SAFETY: a live handle of this process; setting its math mode changes nothing else.
        unsafe { cudarc::cublas::sys::cublasSetMathMode(*h.handle(), mode) }
            .result()
            .map_err(|e| fail(e.to_string()))?;
    }
    let h = Arc::new(h);
    map.insert((ordinal, tf32), h.clone());
    Ok(h)
}

/// How cuBLAS reads one operand of shape [batch.., rows, cols]: storage offset, stride between
/// batch entries, leading dimension, and whether it is stored transposed (unit row stride).
#[derive(Clone, Copy, Debug)]
struct Operand {
    offset: usize,
    batch_stride: usize,
    ld: usize,
    transposed: bool,
}

impl Operand {
    /// The operand for layout `l`, or None when cuBLAS cannot read it without a copy (batch
    /// dims that do not collapse into one stride, or no unit stride in the matrix).
    fn of(l: &Layout) -> Option<Operand> {
        let rank = l.dims().len();
        let (rows, cols) = (l.dims()[rank - 2], l.dims()[rank - 1]);
        let (rs, cs) = (l.strides()[rank - 2], l.strides()[rank - 1]);
        // Batch dims of size > 1, outermost first, must nest: stride_outer = stride_inner·dim_inner.
        let batch: Vec<(usize, usize)> = l.dims()[..rank - 2]
            .iter()
            .zip(&l.strides()[..rank - 2])
            .filter(|(&d, _)| d > 1)
            .map(|(&d, &s)| (d, s))
            .collect();
        if batch.windows(2).any(|w| w[0].1 != w[1].1 * w[1].0) {
            return None;
        }
        let batch_stride = batch.last().map_or(0, |&(_, s)| s);
        let (transposed, ld) = if cs == 1 && (rows == 1 || rs >= cols) {
            (false, if rows == 1 { cols } else { rs })
        } else if rs == 1 && (cols == 1 || cs >= rows) {
            (true, if cols == 1 { rows } else { cs })
        } else {
            return None;
        };
        Some(Operand {
            offset: l.offset(),
            batch_stride,
            ld: ld.max(1),
            transposed,
        })
    }
}

/// out [batch.., m, n] = a [.., m, k] · b [.., k, n] (+ addend), the operands broadcast to the
/// batch dims `batch` and the addend to [batch.., m, n]; with `tf32`, F32 operands multiply on
/// the TF32 tensor cores.
pub fn matmul(
    a: &Tensor,
    b: &Tensor,
    addend: Option<&Tensor>,
    batch: &Shape,
    (m, k, n): (usize, usize, usize),
    tf32: bool,
) -> Result<Tensor> {
    let name = "matmul";
    let full = |r, c| Shape::new([batch.dims(), &[r, c]].concat());
    // An operand cuBLAS cannot read in place is copied to row-major first.
    let view = |t: &Tensor, shape: Shape| -> Result<(Tensor, Operand)> {
        let l = t.layout().broadcast_as(&shape)?;
        if let Some(op) = Operand::of(&l) {
            return Ok((t.clone(), op));
        }
        let c = t.broadcast_as(shape)?.contiguous()?;
        let op = Operand::of(c.layout()).expect("a row-major layout is always readable");
        Ok((c, op))
    };
    let (ta, oa) = view(a, full(m, k))?;
    let (tb, ob) = view(b, full(k, n))?;
    let (sa, sb) = (launch::storage(name, &ta)?, launch::storage(name, &tb)?);
    let count = batch.numel();
    let int = |v: usize| i32::try_from(v).map_err(|_| Error::shape(name, "too large for cuBLAS"));
    let dims = Dims {
        m: int(m)?,
        k: int(k)?,
        n: int(n)?,
        batch: int(count)?,
    };
    let o = (sa.ordinal, tf32);
    // C's starting value: a fresh row-major copy of the addend, or nothing.
    let start = addend
        .map(|c| super::cast::contiguous_data(&c.broadcast_as(full(m, n))?))
        .transpose()?;
    let data = match (&sa.data, &sb.data, start) {
        (CudaData::F32(x), CudaData::F32(y), None) => {
            CudaData::F32(gemm(o, dims, (x, oa), (y, ob), None)?)
        }
        (CudaData::F32(x), CudaData::F32(y), Some(CudaData::F32(c))) => {
            CudaData::F32(gemm(o, dims, (x, oa), (y, ob), Some(c))?)
        }
        (CudaData::BF16(x), CudaData::BF16(y), None) => {
            CudaData::BF16(gemm(o, dims, (x, oa), (y, ob), None)?)
        }
        (CudaData::BF16(x), CudaData::BF16(y), Some(CudaData::BF16(c))) => {
            CudaData::BF16(gemm(o, dims, (x, oa), (y, ob), Some(c))?)
        }
        (x, ..) => {
            return Err(launch::unsupported(
                name,
                x,
                "two F32 or two BF16 operands and an addend of their dtype",
            ))
        }
    };
    Ok(launch::tensor(data, sa.ordinal, full(m, n)))
}

/// Problem sizes as cuBLAS's ints.
#[derive(Clone, Copy)]
struct Dims {
    m: i32,
    k: i32,
    n: i32,
    batch: i32,
}

/// Runs the strided-batched GEMM C = A·B (row-major) as Cᵀ = Bᵀ·Aᵀ (column-major) on GPU
/// `ordinal` (on its TF32 handle with `tf32`); with `start`, C = start + A·B (beta = 1) in
/// place of `start`.
fn gemm<T: DeviceRepr + ValidAsZeroBits + GemmScalars>(
    (ordinal, tf32): (usize, bool),
    d: Dims,
    (a, oa): (&CudaSlice<T>, Operand),
    (b, ob): (&CudaSlice<T>, Operand),
    start: Option<CudaSlice<T>>,
) -> Result<CudaSlice<T>>
where
    CudaBlas: Gemm<T>,
{
    let name = "matmul";
    let stream = super::stream(ordinal)?;
    let len = (d.m as usize) * (d.n as usize) * (d.batch as usize);
    let beta = if start.is_some() { T::ONE } else { T::ZERO };
    let mut c = match start {
        Some(c) => c,
        // With K = 0 the product is zeros; otherwise beta = 0 and cuBLAS never reads C.
        None if d.k == 0 || len == 0 => stream
            .alloc_zeros::<T>(len.max(1))
            .map_err(launch::driver_err(name))?,
        None => launch::alloc::<T>(name, &stream, len)?,
    };
    if len == 0 || d.k == 0 {
        return Ok(c);
    }
    let ld =
        |o: Operand| i32::try_from(o.ld).map_err(|_| Error::shape(name, "too large for cuBLAS"));
    let alpha = T::ONE;
    let trans = |t: bool| if t { Op::CUBLAS_OP_T } else { Op::CUBLAS_OP_N };
    let cfg = StridedBatchedConfig {
        gemm: GemmConfig {
            transa: trans(ob.transposed),
            transb: trans(oa.transposed),
            m: d.n,
            n: d.m,
            k: d.k,
            alpha,
            lda: ld(ob)?,
            ldb: ld(oa)?,
            beta,
            ldc: d.n,
        },
        batch_size: d.batch,
        stride_a: ob.batch_stride as i64,
        stride_b: oa.batch_stride as i64,
        stride_c: (d.m as i64) * (d.n as i64),
    };
    let (av, bv) = (a.slice(oa.offset..), b.slice(ob.offset..));
    // SAFETY: the operands' offsets, leading dimensions and batch strides come from layouts
    // that lie inside their storages (`Operand::of`); c holds batch·m·n elements.
    unsafe { blas(ordinal, tf32)?.gemm_strided_batched(cfg, &bv, &av, &mut c) }
        .map_err(|e| super::cuda_error(name, format!("cuBLAS: {e}")))?;
    Ok(c)
}

/// The scalars 0 and 1 of a GEMM's storage type.
trait GemmScalars: Sized {
    const ZERO: Self;
    const ONE: Self;
}
impl GemmScalars for f32 {
    const ZERO: f32 = 0.0;
    const ONE: f32 = 1.0;
}
impl GemmScalars for half::bf16 {
    const ZERO: half::bf16 = half::bf16::ZERO;
    const ONE: half::bf16 = half::bf16::ONE;
}
