//! Rotary position embedding at explicit per-token positions ("gathered" RoPE, SPEC §3): the
//! tables are built from a position per token, so packed tensors (tokens not in sequence order,
//! queries and keys at different positions) rotate correctly.

use super::{expect_u32, same_device};
use crate::cpu::attention::HeadsLayout;
use crate::cpu::rope as k;
use crate::cpu::CpuStorage;
use crate::{bail_shape, DType, Error, Result, Tensor};

impl Tensor {
    /// The RoPE tables for `positions` (U32, usually [B, N]): `(cos, sin)`, each
    /// [positions.., head_dim / 2], with angle(p, k) = p · base^(−2k / head_dim) for
    /// k < head_dim / 2 (GPT-NeoX, base 10000). `dtype` is that of the x they will rotate: the
    /// tables are F64 for F64 and F32 for F32, BF16 and F16 (the kernels rotate half-precision
    /// x in f32). Fails when `head_dim` is odd or zero.
    pub fn rope_tables(
        positions: &Tensor,
        head_dim: usize,
        base: f64,
        dtype: DType,
    ) -> Result<(Tensor, Tensor)> {
        let name = "rope_tables";
        if head_dim == 0 || head_dim % 2 == 1 {
            bail_shape!(name, "head_dim must be even and positive, got {head_dim}");
        }
        // The tables are built on the host (in f64) and moved to the positions' device.
        let pos = positions.to_device(crate::Device::Cpu)?.contiguous()?;
        let p = expect_u32(name, &pos)?;
        let dims = [positions.dims(), &[head_dim / 2]].concat();
        let (cos, sin) = match dtype {
            DType::F64 => {
                let (c, s) = k::rope_tables::<f64>(p, head_dim, base);
                (CpuStorage::F64(c), CpuStorage::F64(s))
            }
            other if other.is_float() => {
                let (c, s) = k::rope_tables::<f32>(p, head_dim, base);
                (CpuStorage::F32(c), CpuStorage::F32(s))
            }
            other => {
                return Err(Error::dtype(
                    name,
                    format!("tables are a float dtype, got {other:?}"),
                ))
            }
        };
        let device = positions.device();
        Ok((
            Tensor::from_cpu(cos, dims.clone()).to_device(device)?,
            Tensor::from_cpu(sin, dims).to_device(device)?,
        ))
    }

    /// Rotates the heads of `self` x [B, N, H, d] (any strides) by the angles of their tokens:
    /// with x1 = x[.., :d/2], x2 = x[.., d/2:], out = (x1·cos − x2·sin, x2·cos + x1·sin), where
    /// `cos`, `sin` are [B, N, d/2] from [`Tensor::rope_tables`]. Output contiguous [B, N, H, d].
    pub fn rope(&self, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        self.rope_impl("rope", cos, sin, false)
    }

    /// The backward of [`Tensor::rope`]: the rotation by −angle applied to dy (`self`),
    /// dx = (dy1·cos + dy2·sin, dy2·cos − dy1·sin). Same shapes as `rope`.
    pub fn rope_backward(&self, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        self.rope_impl("rope_backward", cos, sin, true)
    }

    fn rope_impl(
        &self,
        name: &'static str,
        cos: &Tensor,
        sin: &Tensor,
        inverse: bool,
    ) -> Result<Tensor> {
        same_device(name, &[self, cos, sin])?;
        let &[b, n, h, d] = self.dims() else {
            bail_shape!(name, "x must be [B, N, H, d], got {:?}", self.shape());
        };
        if d % 2 == 1 {
            bail_shape!(name, "head dim must be even, x is {:?}", self.shape());
        }
        let table = [b, n, d / 2];
        if cos.dims() != table || sin.dims() != table {
            bail_shape!(
                name,
                "x {:?} needs cos and sin {table:?}, got {:?} and {:?}",
                self.shape(),
                cos.shape(),
                sin.shape()
            );
        }
        #[cfg(feature = "cuda")]
        if self.device().is_cuda() {
            return crate::cuda::rope::rope(self, cos, sin, inverse);
        }
        let lx = HeadsLayout::of(self.layout()).expect("rank checked above");
        let (cos, sin) = (cos.contiguous()?, sin.contiguous()?);
        let out = match (self.cpu(name)?, cos.cpu(name)?, sin.cpu(name)?) {
            (CpuStorage::F32(x), CpuStorage::F32(c), CpuStorage::F32(s)) => {
                CpuStorage::F32(k::rope(x, &lx, c, s, inverse))
            }
            (CpuStorage::F64(x), CpuStorage::F64(c), CpuStorage::F64(s)) => {
                CpuStorage::F64(k::rope(x, &lx, c, s, inverse))
            }
            (x, c, s) => {
                let msg = format!(
                    "x, cos and sin must all be F32 or all F64, got {:?}, {:?}, {:?}",
                    x.dtype(),
                    c.dtype(),
                    s.dtype()
                );
                return Err(Error::dtype(name, msg));
            }
        };
        Ok(Tensor::from_cpu(out, [b, n, h, d]))
    }
}
