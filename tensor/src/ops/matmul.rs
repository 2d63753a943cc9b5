//! Matrix multiply and batched matrix multiply, optionally plus an addend (a bias, a residual).

use super::{float_map2, same_device};
use crate::cpu::matmul::batched_matmul;
use crate::{bail_shape, Error, Result, Shape, Tensor, WithDType};

impl Tensor {
    /// [.., M, K] · [.., K, N] → [.., M, N]. Both operands have rank ≥ 2; their batch dims
    /// broadcast (so [B, M, K] · [K, N] multiplies every batch entry by the same matrix).
    /// Transposed views (`t()`) are consumed through their strides, without a copy.
    pub fn matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        self.product("matmul", rhs, None, false)
    }

    /// [`Tensor::matmul`], except that on a GPU F32 operands multiply on the TF32 tensor cores
    /// (inputs rounded to 10 mantissa bits, f32 accumulation): for operands widened from bf16
    /// (7 mantissa bits), as in bf16 attention. On the CPU, and for other dtypes, the same as
    /// `matmul`.
    pub fn matmul_tf32(&self, rhs: &Tensor) -> Result<Tensor> {
        self.product("matmul", rhs, None, true)
    }

    /// `self · rhs + addend`, with `addend` broadcast to the product's shape (a bias `[N]`, a
    /// residual [.., M, N]). The output starts as a copy of the addend and the GEMM accumulates
    /// into it: one pass over the output instead of a zero fill, the product and an add.
    pub fn matmul_add(&self, rhs: &Tensor, addend: &Tensor) -> Result<Tensor> {
        let name = "matmul_add";
        same_device(name, &[self, addend])?;
        if addend.dtype() != self.dtype() {
            return Err(Error::dtype(
                name,
                format!(
                    "the addend is {:?}, the operands {:?}",
                    addend.dtype(),
                    self.dtype()
                ),
            ));
        }
        self.product(name, rhs, Some(addend), false)
    }

    /// The product of both entry points; `tf32` only changes how CUDA multiplies F32.
    #[cfg_attr(not(feature = "cuda"), allow(clippy::only_used_in_recursion))]
    fn product(
        &self,
        name: &'static str,
        rhs: &Tensor,
        addend: Option<&Tensor>,
        tf32: bool,
    ) -> Result<Tensor> {
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
        let batch = Shape::broadcast(
            name,
            &Shape::from(&self.dims()[..ra - 2]),
            &Shape::from(&rhs.dims()[..rb - 2]),
        )?;
        let full = |rows, cols| Shape::new([batch.dims(), &[rows, cols]].concat());
        let addend = addend.map(|c| c.broadcast_as(full(m, n))).transpose()?;
        if rb == 2 && ra > 2 && k > 0 && self.is_contiguous() {
            // A shared right operand: fold the batch into rows and run one larger GEMM.
            let rows = self.numel() / k;
            let a = self.reshape([rows, k])?;
            let out = match addend {
                Some(c) => a.product(name, rhs, Some(&c.reshape([rows, n])?), tf32)?,
                None => a.product(name, rhs, None, tf32)?,
            };
            return out.reshape([&self.dims()[..ra - 1], &[n]].concat());
        }
        #[cfg(feature = "cuda")]
        if self.device().is_cuda() {
            let dims = (m, k, n);
            return crate::cuda::matmul::matmul(self, rhs, addend.as_ref(), &batch, dims, tf32);
        }
        let la = self.layout().broadcast_as(&full(m, k))?;
        let lb = rhs.layout().broadcast_as(&full(k, n))?;
        let start = match &addend {
            Some(c) => Some((c.cpu(name)?, c.layout())),
            None => None,
        };
        let out = float_map2!(name, self.cpu(name)?, rhs.cpu(name)?, |a, b| {
            // The addend has the operands' dtype (checked by `matmul_add`), so `slice` finds it.
            let start = start.and_then(|(s, l)| Some((WithDType::slice(s)?, l)));
            batched_matmul(a, &la, b, &lb, start)
        });
        Ok(Tensor::from_cpu(out, full(m, n)))
    }
}
