//! Storage: the buffer behind a tensor, one variant per backend. Dispatch to a backend is a
//! `match` on this enum, in the op that needs it.

use crate::cpu::CpuStorage;
use crate::{DType, Device, Error, Result};

#[derive(Debug)]
pub enum Storage {
    Cpu(CpuStorage),
    #[cfg(feature = "cuda")]
    Cuda(crate::cuda::CudaStorage),
}

impl Storage {
    pub fn dtype(&self) -> DType {
        match self {
            Storage::Cpu(s) => s.dtype(),
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => s.dtype(),
        }
    }
    pub fn device(&self) -> Device {
        match self {
            Storage::Cpu(_) => Device::Cpu,
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => Device::Cuda(s.ordinal()),
        }
    }
    /// The number of elements in the buffer.
    pub fn len(&self) -> usize {
        match self {
            Storage::Cpu(s) => s.len(),
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => s.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The CPU data, or an error naming `op` if this storage lives on another device.
    #[cfg_attr(not(feature = "cuda"), allow(unused_variables))]
    pub fn cpu(&self, op: &'static str) -> Result<&CpuStorage> {
        match self {
            Storage::Cpu(s) => Ok(s),
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => Err(Error::device(
                op,
                format!(
                    "not implemented for cuda:{} yet; move the tensor to the CPU first",
                    s.ordinal()
                ),
            )),
        }
    }
    /// Copies this storage to `device` (a no-op copy when it is already there).
    pub fn to_device(&self, device: Device) -> Result<Storage> {
        match (self, device) {
            (Storage::Cpu(s), Device::Cpu) => Ok(Storage::Cpu(s.clone())),
            #[cfg(feature = "cuda")]
            (Storage::Cpu(s), Device::Cuda(i)) => {
                Ok(Storage::Cuda(crate::cuda::CudaStorage::from_cpu(s, i)?))
            }
            #[cfg(feature = "cuda")]
            (Storage::Cuda(s), Device::Cpu) => Ok(Storage::Cpu(s.to_cpu()?)),
            #[cfg(feature = "cuda")]
            (Storage::Cuda(s), Device::Cuda(i)) => Ok(Storage::Cuda(
                crate::cuda::CudaStorage::from_cpu(&s.to_cpu()?, i)?,
            )),
            #[cfg(not(feature = "cuda"))]
            (Storage::Cpu(_), Device::Cuda(_)) => Err(Error::device(
                "to_device",
                "this build has no CUDA support: rebuild with `--features cuda`",
            )),
        }
    }
}
