//! Drawing one token per row of log-probabilities where they are, so a GPU sampler copies K
//! token ids to the host per step instead of K·V probabilities.

use crate::cpu::{sample as k, CpuStorage};
use crate::{bail_shape, Error, Result, Tensor};

impl Tensor {
    /// One Gumbel-max draw per row of the log-probabilities `self` [K, V] (normalised, −∞ for
    /// impossible ids) → U32 [K]; row r uses the noise stream `draw_key(seed, r)` (see
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
}
