//! Random draws made where the tensors live, from counter-based noise: one token per row of
//! log-probabilities (a GPU sampler copies K token ids to the host per step instead of K·V
//! probabilities) and dropout masks (a GPU step draws no noise on the host).

use crate::cpu::sample::{self as k, DropoutNoise};
use crate::cpu::CpuStorage;
use crate::{bail_shape, draw_key, DType, Device, Error, Result, Shape, Tensor};

impl Tensor {
    /// One Gumbel-max draw per row of the log-probabilities `self` [K, V] (normalised, −∞ for
    /// impossible ids) → U32 `[K]`; row r uses the noise stream `draw_key(seed, r)` (see
    /// `cpu::sample`). The CPU and CUDA backends compute the same noise and the same f64
    /// scores, so they draw the same tokens up to the last bits of exp and log.
    pub fn gumbel_argmax(&self, seed: u64) -> Result<Tensor> {
        let name = "gumbel_argmax";
        let [rows, cols] = self.dims()[..] else {
            bail_shape!(
                name,
                "log-probabilities must be [K, V], got {:?}",
                self.shape()
            );
        };
        if cols == 0 {
            bail_shape!(name, "log-probabilities {:?} have no ids", self.shape());
        }
        let lp = self.contiguous()?;
        #[cfg(feature = "cuda")]
        if lp.device().is_cuda() {
            return crate::cuda::sample::gumbel_argmax(&lp, rows, cols, seed);
        }
        let tokens = match lp.cpu(name)? {
            CpuStorage::F32(v) => k::gumbel_argmax_rows(v, cols, seed),
            CpuStorage::F64(v) => k::gumbel_argmax_rows(v, cols, seed),
            other => {
                return Err(Error::dtype(
                    name,
                    format!("expects F32 or F64 on the CPU, got {:?}", other.dtype()),
                ))
            }
        };
        Ok(Tensor::from_cpu(CpuStorage::U32(tokens), [rows]))
    }

    /// A dropout mask of `shape` on `device`: each element is 1 / (1 − p) with probability
    /// 1 − p and 0 otherwise, decided by the noise stream of `seed` (element i keeps when
    /// `draw_uniform(draw_key(seed, 0), i)` ≥ p). The same seed gives the same mask on the CPU
    /// and on CUDA. `dtype`: F32 or F64 on the CPU, F32 or BF16 on CUDA.
    pub fn dropout_mask(
        shape: impl Into<Shape>,
        p: f64,
        seed: u64,
        dtype: DType,
        device: Device,
    ) -> Result<Tensor> {
        let name = "dropout_mask";
        let shape = shape.into();
        if !(0.0..1.0).contains(&p) {
            return Err(Error::msg(name, format!("p = {p} is outside [0, 1)")));
        }
        let noise = DropoutNoise {
            p,
            key: draw_key(seed, 0),
        };
        #[cfg(feature = "cuda")]
        if device.is_cuda() {
            return crate::cuda::sample::dropout_mask(&shape, noise, dtype, device);
        }
        let n = shape.numel();
        let data = match dtype {
            DType::F32 => CpuStorage::F32(k::dropout_mask(n, noise)),
            DType::F64 => CpuStorage::F64(k::dropout_mask(n, noise)),
            other => {
                return Err(Error::dtype(
                    name,
                    format!("expects F32 or F64 on the CPU, got {other:?}"),
                ))
            }
        };
        // Without the `cuda` feature this names the feature for a CUDA device.
        Tensor::from_cpu(data, shape).to_device(device)
    }
}
