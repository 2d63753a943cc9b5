//! The CUDA backend (cargo feature `cuda`): device contexts, device storage, and the kernels.
//!
//! cudarc opens the CUDA libraries at run time, so this module builds on machines without CUDA;
//! there, creating a context returns an error that names the device. One context and its
//! default stream serve each GPU ordinal for the whole process.
//!
//! Ops on CUDA tensors dispatch here from `ops/` (a `device().is_cuda()` check at the top of
//! each op). The kernels are CUDA C files in `kernels/`, compiled at run time with NVRTC
//! ([`kernels`]); each launcher file here serves one kernel file: `elementwise.rs`, `cast.rs`
//! (strided copies, `cat`, dtype casts), `reduce.rs` (reductions, argmax, softmax), `norm.rs`
//! (layer norm and adaLN's modulate, one fused kernel), `index.rs`, `rope.rs`, `attention.rs`
//! (partition attention: cuBLAS scores, the masked softmax of `kernels/attention.cu`, cuBLAS),
//! `cross_entropy.rs` (log-softmax and the loss fused), `sample.rs` (Gumbel-max draws, dropout
//! masks), `residual.rs` (the gated residual with dropout); `matmul.rs` calls cuBLAS.

pub(crate) mod attention;
pub(crate) mod cast;
pub(crate) mod cross_entropy;
pub(crate) mod elementwise;
pub(crate) mod index;
pub mod kernels;
pub mod launch;
pub(crate) mod matmul;
pub(crate) mod norm;
pub(crate) mod reduce;
pub(crate) mod residual;
pub(crate) mod rope;
pub(crate) mod sample;

use crate::cpu::CpuStorage;
use crate::{DType, Error, ErrorKind, Result};
use cudarc::driver::{CudaContext, CudaSlice, CudaStream, DeviceRepr};
use half::{bf16, f16};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Allocation: cudarc allocates stream-ordered (`cuMemAllocAsync`) from the device's memory
/// pool, whose release threshold is 0 by default: at every synchronisation (each copy to the
/// host: a loss value, a step's token ids) the pool hands its free memory back to the driver,
/// and the next step maps it again. A threshold of u64::MAX keeps freed memory in the pool, so
/// in steady state no allocation reaches the driver. `PGM_CUDA_POOL_RELEASE=1` keeps the
/// driver's default instead, to measure the difference.
fn keep_freed_memory_in_pool(ctx: &CudaContext, ordinal: usize) -> Result<()> {
    use cudarc::driver::{result, sys};
    if std::env::var_os("PGM_CUDA_POOL_RELEASE").is_some() {
        return Ok(());
    }
    let fail = |e: cudarc::driver::DriverError| {
        cuda_error("cuda_context", format!("cuda:{ordinal}: memory pool: {e}"))
    };
    let dev = ctx.cu_device();
    let pools = sys::CUdevice_attribute_enum::CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED;
    // SAFETY: `dev` is the device of a live context; the attribute value is a u64, as
    // CU_MEMPOOL_ATTR_RELEASE_THRESHOLD requires.
    unsafe {
        if result::device::get_attribute(dev, pools).map_err(fail)? == 0 {
            return Ok(()); // no pools: cudarc allocates synchronously
        }
        let pool = result::device::get_mem_pool(dev).map_err(fail)?;
        let mut threshold = u64::MAX;
        let attr = sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD;
        let value = (&mut threshold as *mut u64).cast();
        result::mem_pool::set_attribute(pool, attr, value).map_err(fail)?;
    }
    Ok(())
}

/// The stream of GPU `ordinal`, creating its context on first use.
pub fn stream(ordinal: usize) -> Result<Arc<CudaStream>> {
    static STREAMS: OnceLock<Mutex<HashMap<usize, Arc<CudaStream>>>> = OnceLock::new();
    let mut map = STREAMS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(s) = map.get(&ordinal) {
        return Ok(s.clone());
    }
    // cudarc panics when it cannot find libcuda; ask first so the answer is an error instead.
    // SAFETY: only tries to open the driver library.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err(cuda_error(
            "cuda_context",
            format!("cuda:{ordinal}: no CUDA driver (libcuda.so) found on this machine"),
        ));
    }
    let ctx = CudaContext::new(ordinal)
        .map_err(|e| cuda_error("cuda_context", format!("cuda:{ordinal}: {e}")))?;
    keep_freed_memory_in_pool(&ctx, ordinal)?;
    // One stream per device: cudarc's per-allocation events only matter across streams.
    // SAFETY: this process uses the one default stream per device, so no cross-stream waits are needed.
    unsafe { ctx.disable_event_tracking() };
    let s = ctx.default_stream();
    map.insert(ordinal, s.clone());
    Ok(s)
}

/// The name the driver gives GPU `ordinal`, e.g. "NVIDIA H200".
pub fn device_name(ordinal: usize) -> Result<String> {
    stream(ordinal)?
        .context()
        .name()
        .map_err(|e| cuda_error("device_name", format!("cuda:{ordinal}: {e}")))
}

/// True when a CUDA driver and at least one GPU can be opened.
pub fn is_available() -> bool {
    stream(0).is_ok()
}

pub(crate) fn cuda_error(op: &'static str, msg: impl Into<String>) -> Error {
    Error {
        op,
        kind: ErrorKind::Cuda(msg.into()),
    }
}

/// Device memory, one variant per dtype.
#[derive(Debug)]
pub enum CudaData {
    F32(CudaSlice<f32>),
    F64(CudaSlice<f64>),
    BF16(CudaSlice<bf16>),
    F16(CudaSlice<f16>),
    U32(CudaSlice<u32>),
    U8(CudaSlice<u8>),
}

/// The data of a tensor on a GPU.
#[derive(Debug)]
pub struct CudaStorage {
    pub data: CudaData,
    pub ordinal: usize,
}

impl CudaStorage {
    pub fn dtype(&self) -> DType {
        match self.data {
            CudaData::F32(_) => DType::F32,
            CudaData::F64(_) => DType::F64,
            CudaData::BF16(_) => DType::BF16,
            CudaData::F16(_) => DType::F16,
            CudaData::U32(_) => DType::U32,
            CudaData::U8(_) => DType::U8,
        }
    }
    pub fn ordinal(&self) -> usize {
        self.ordinal
    }
    /// The number of elements in the buffer.
    pub fn len(&self) -> usize {
        match &self.data {
            CudaData::F32(d) => d.len(),
            CudaData::F64(d) => d.len(),
            CudaData::BF16(d) => d.len(),
            CudaData::F16(d) => d.len(),
            CudaData::U32(d) => d.len(),
            CudaData::U8(d) => d.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies host data to GPU `ordinal`. Empty data (a sampler's first step has no clean
    /// tokens) becomes one unused element: the driver refuses empty allocations.
    pub fn from_cpu(src: &CpuStorage, ordinal: usize) -> Result<CudaStorage> {
        fn upload<T: DeviceRepr + Default>(s: &Arc<CudaStream>, v: &[T]) -> Result<CudaSlice<T>> {
            let one = [T::default()];
            let v = if v.is_empty() { &one[..] } else { v };
            s.clone_htod(v)
                .map_err(|e| cuda_error("to_device", e.to_string()))
        }
        let s = stream(ordinal)?;
        let data = match src {
            CpuStorage::F32(v) => CudaData::F32(upload(&s, v)?),
            CpuStorage::F64(v) => CudaData::F64(upload(&s, v)?),
            CpuStorage::BF16(v) => CudaData::BF16(upload(&s, v)?),
            CpuStorage::F16(v) => CudaData::F16(upload(&s, v)?),
            CpuStorage::U32(v) => CudaData::U32(upload(&s, v)?),
            CpuStorage::U8(v) => CudaData::U8(upload(&s, v)?),
        };
        Ok(CudaStorage { data, ordinal })
    }

    /// Copies the data back to the host (waits for the stream).
    pub fn to_cpu(&self) -> Result<CpuStorage> {
        let s = stream(self.ordinal)?;
        let err = |e: cudarc::driver::DriverError| cuda_error("to_device", e.to_string());
        Ok(match &self.data {
            CudaData::F32(d) => CpuStorage::F32(s.clone_dtoh(d).map_err(err)?),
            CudaData::F64(d) => CpuStorage::F64(s.clone_dtoh(d).map_err(err)?),
            CudaData::BF16(d) => CpuStorage::BF16(s.clone_dtoh(d).map_err(err)?),
            CudaData::F16(d) => CpuStorage::F16(s.clone_dtoh(d).map_err(err)?),
            CudaData::U32(d) => CpuStorage::U32(s.clone_dtoh(d).map_err(err)?),
            CudaData::U8(d) => CpuStorage::U8(s.clone_dtoh(d).map_err(err)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{Device, Tensor};

    /// Round trip host → GPU → host; skipped (and says so) where no GPU can be opened.
    #[test]
    fn host_device_round_trip() {
        if !super::is_available() {
            eprintln!("SKIPPED host_device_round_trip: no CUDA driver or GPU on this machine");
            return;
        }
        let x = Tensor::from_vec(vec![1f32, 2., 3., 4., 5., 6.], [2, 3], Device::Cpu).unwrap();
        let g = x.t().unwrap().to_device(Device::Cuda(0)).unwrap();
        assert_eq!(g.device(), Device::Cuda(0));
        let back = g.to_device(Device::Cpu).unwrap();
        assert_eq!(back.to_vec::<f32>().unwrap(), vec![1., 4., 2., 5., 3., 6.]);
    }
}
