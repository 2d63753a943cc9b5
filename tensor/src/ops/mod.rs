//! The tensor operations, grouped by kind. Each op checks its operands (shapes, dtypes,
//! devices), then dispatches on the storage to a backend kernel.

mod attention;
mod cross_entropy;
mod elementwise;
mod index;
mod matmul;
mod norm;
mod reduce;
mod residual;
mod rope;
mod sample;

pub use norm::LayerNormStats;

use crate::{Error, Tensor};

/// Runs `$body` with `$v` bound to the F32 or F64 data of a CPU storage, wrapping the result
/// back into the same variant; other dtypes are an error naming `$op`.
macro_rules! float_map {
    ($op:expr, $storage:expr, |$v:ident| $body:expr) => {
        match $storage {
            $crate::cpu::CpuStorage::F32($v) => $crate::cpu::CpuStorage::F32($body),
            $crate::cpu::CpuStorage::F64($v) => $crate::cpu::CpuStorage::F64($body),
            other => {
                return Err($crate::Error::dtype(
                    $op,
                    format!("expects F32 or F64, got {:?}", other.dtype()),
                ))
            }
        }
    };
}

/// Like `float_map!` for two storages that must hold the same float dtype.
macro_rules! float_map2 {
    ($op:expr, $a:expr, $b:expr, |$x:ident, $y:ident| $body:expr) => {
        match ($a, $b) {
            ($crate::cpu::CpuStorage::F32($x), $crate::cpu::CpuStorage::F32($y)) => {
                $crate::cpu::CpuStorage::F32($body)
            }
            ($crate::cpu::CpuStorage::F64($x), $crate::cpu::CpuStorage::F64($y)) => {
                $crate::cpu::CpuStorage::F64($body)
            }
            (a, b) => {
                return Err($crate::Error::dtype(
                    $op,
                    format!(
                        "expects two F32 or two F64 operands, got {:?} and {:?}",
                        a.dtype(),
                        b.dtype()
                    ),
                ))
            }
        }
    };
}
pub(crate) use float_map;
pub(crate) use float_map2;

/// Fails unless all tensors are on one device.
pub(crate) fn same_device(op: &'static str, ts: &[&Tensor]) -> Result<(), Error> {
    let d = ts[0].device();
    match ts.iter().find(|t| t.device() != d) {
        Some(t) => Err(Error::device(
            op,
            format!("operands on {d} and {}", t.device()),
        )),
        None => Ok(()),
    }
}

/// Fails unless the tensor holds u32 indices.
pub(crate) fn expect_u32<'a>(op: &'static str, t: &'a Tensor) -> Result<&'a [u32], Error> {
    match t.cpu(op)? {
        crate::cpu::CpuStorage::U32(v) => Ok(v),
        other => Err(Error::dtype(
            op,
            format!("indices must be U32, got {:?}", other.dtype()),
        )),
    }
}
