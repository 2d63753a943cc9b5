//! Matrix multiply and batched matrix multiply.

use super::{float_map2, same_device};
use crate::cpu::matmul::batched_matmul;
use crate::{bail_shape, Result, Shape, Tensor};

impl Tensor {
    /// [.., M, K] · [.., K, N] → [.., M, N]. Both operands have rank ≥ 2; their batch dims
    /// broadcast (so [B, M, K] · [K, N] multiplies every batch entry by the same matrix).
    /// Transposed views (`t()`) are consumed through their strides, without a copy.
    pub fn matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        let name = "matmul";
        same_device(name, &[self, rhs])?;
        let (ra, rb) = (self.rank(), rhs.rank());
        if ra < 2 || rb < 2 {
            bail_shape!(
                name,
                "operands must have rank ≥ 2, got {:?} · {:?}",
                self.shape(),
                rhs.shape()
            );
        }
        let (m, k) = (self.dims()[ra - 2], self.dims()[ra - 1]);
        let (k2, n) = (rhs.dims()[rb - 2], rhs.dims()[rb - 1]);
        if k != k2 {
            bail_shape!(
                name,
                "inner dims differ: {:?} · {:?}",
                self.shape(),
                rhs.shape()
            );
        }
        if rb == 2 && ra > 2 && k > 0 && self.is_contiguous() {
            // A shared right operand: fold the batch into rows and run one larger GEMM.
            let out = self.reshape([self.numel() / k, k])?.matmul(rhs)?;
            return out.reshape([&self.dims()[..ra - 1], &[n]].concat());
        }
        let batch = Shape::broadcast(
            name,
            &Shape::from(&self.dims()[..ra - 2]),
            &Shape::from(&rhs.dims()[..rb - 2]),
        )?;
        #[cfg(feature = "cuda")]
        if self.device().is_cuda() {
            return crate::cuda::matmul::matmul(self, rhs, &batch, (m, k, n));
        }
        let full = |rows, cols| Shape::new([batch.dims(), &[rows, cols]].concat());
        let la = self.layout().broadcast_as(&full(m, k))?;
        let lb = rhs.layout().broadcast_as(&full(k, n))?;
        let out = float_map2!(
            name,
            self.cpu(name)?,
            rhs.cpu(name)?,
            |a, b| batched_matmul(a, &la, b, &lb)
        );
        Ok(Tensor::from_cpu(out, full(m, n)))
    }
}
