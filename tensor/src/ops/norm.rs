//! Layer normalisation over the last dim (fused forward and backward).

use crate::cpu::{norm as k, CpuStorage};
use crate::{bail_shape, Error, Result, Tensor};

/// What the layer-norm forward keeps for its backward: per-row mean and 1/std, shape [rows].
pub struct LayerNormStats {
    pub mean: Tensor,
    pub rstd: Tensor,
}

impl Tensor {
    /// y = (x − mean) / sqrt(var + eps) · weight (+ bias) over the last dim of `self`.
    /// `weight` and `bias` are [D] with D the last dim. Returns y and the stats for backward.
    pub fn layer_norm(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        eps: f64,
    ) -> Result<(Tensor, LayerNormStats)> {
        let name = "layer_norm";
        let cols = *self.dims().last().unwrap_or(&1);
        check_param(name, "weight", weight, cols, self)?;
        if let Some(b) = bias {
            check_param(name, "bias", b, cols, self)?;
        }
        let rows_shape = &self.dims()[..self.rank().saturating_sub(1)];
        let (x, w) = (self.contiguous()?, weight.contiguous()?);
        let b = bias.map(|b| b.contiguous()).transpose()?;
        #[cfg(feature = "cuda")]
        if x.device().is_cuda() {
            let (y, mean, rstd) = crate::cuda::norm::layer_norm(&x, &w, b.as_ref(), eps)?;
            return Ok((y, LayerNormStats { mean, rstd }));
        }
        let (y, mean, rstd) = match (
            x.cpu(name)?,
            w.cpu(name)?,
            b.as_ref().map(|b| b.cpu(name)).transpose()?,
        ) {
            (CpuStorage::F32(x), CpuStorage::F32(w), None) => {
                wrap(k::layer_norm(x, w, None, cols, eps), CpuStorage::F32)
            }
            (CpuStorage::F32(x), CpuStorage::F32(w), Some(CpuStorage::F32(b))) => {
                wrap(k::layer_norm(x, w, Some(b), cols, eps), CpuStorage::F32)
            }
            (CpuStorage::F64(x), CpuStorage::F64(w), None) => {
                wrap(k::layer_norm(x, w, None, cols, eps), CpuStorage::F64)
            }
            (CpuStorage::F64(x), CpuStorage::F64(w), Some(CpuStorage::F64(b))) => {
                wrap(k::layer_norm(x, w, Some(b), cols, eps), CpuStorage::F64)
            }
            _ => {
                return Err(Error::dtype(
                    name,
                    "x, weight and bias must all be F32 or all F64",
                ))
            }
        };
        let stats = LayerNormStats {
            mean: Tensor::from_cpu(mean, rows_shape),
            rstd: Tensor::from_cpu(rstd, rows_shape),
        };
        Ok((Tensor::from_cpu(y, self.shape()), stats))
    }

    /// The layer-norm backward: (dx, dweight, dbias) from x (`self`), the weight, the forward's
    /// stats and dy. dbias is returned whether or not the forward had a bias.
    pub fn layer_norm_backward(
        &self,
        weight: &Tensor,
        stats: &LayerNormStats,
        dy: &Tensor,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let name = "layer_norm_backward";
        let cols = *self.dims().last().unwrap_or(&1);
        if dy.shape() != self.shape() {
            bail_shape!(name, "x {:?} and dy {:?} differ", self.shape(), dy.shape());
        }
        let (x, w, dy) = (self.contiguous()?, weight.contiguous()?, dy.contiguous()?);
        let (m, r) = (&stats.mean, &stats.rstd);
        super::same_device(name, &[&x, &w, m, r, &dy])?;
        #[cfg(feature = "cuda")]
        if x.device().is_cuda() {
            let (m, r) = (m.contiguous()?, r.contiguous()?);
            return crate::cuda::norm::layer_norm_backward(&x, &w, &m, &r, &dy);
        }
        let (dx, dw, db) = match (
            x.cpu(name)?,
            w.cpu(name)?,
            m.cpu(name)?,
            r.cpu(name)?,
            dy.cpu(name)?,
        ) {
            (
                CpuStorage::F32(x),
                CpuStorage::F32(w),
                CpuStorage::F32(m),
                CpuStorage::F32(r),
                CpuStorage::F32(d),
            ) => wrap(k::layer_norm_backward(x, w, m, r, d, cols), CpuStorage::F32),
            (
                CpuStorage::F64(x),
                CpuStorage::F64(w),
                CpuStorage::F64(m),
                CpuStorage::F64(r),
                CpuStorage::F64(d),
            ) => wrap(k::layer_norm_backward(x, w, m, r, d, cols), CpuStorage::F64),
            _ => return Err(Error::dtype(name, "all operands must be F32 or all F64")),
        };
        Ok((
            Tensor::from_cpu(dx, self.shape()),
            Tensor::from_cpu(dw, [cols]),
            Tensor::from_cpu(db, [cols]),
        ))
    }
}

fn wrap<T>(
    t: (Vec<T>, Vec<T>, Vec<T>),
    f: fn(Vec<T>) -> CpuStorage,
) -> (CpuStorage, CpuStorage, CpuStorage) {
    (f(t.0), f(t.1), f(t.2))
}

fn check_param(op: &'static str, what: &str, p: &Tensor, cols: usize, x: &Tensor) -> Result<()> {
    if p.dims() != [cols] {
        bail_shape!(
            op,
            "{what} {:?} does not match the last dim of x {:?}",
            p.shape(),
            x.shape()
        );
    }
    super::same_device(op, &[x, p])
}
