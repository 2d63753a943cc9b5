//! Layer normalisation over the last dim, fused with a per-group affine map (forward and
//! backward). Plain layer norm is one group with the weight and bias; adaLN's
//! modulate(LN(x), shift, scale) is one group per sequence with mul = weight·(1 + scale) and
//! add = shift, so it costs one pass over x instead of three.

use crate::cpu::{norm as k, CpuStorage};
use crate::{bail_shape, Error, Result, Tensor};

/// What the layer-norm forward keeps for its backward: per-row mean and 1/std, shape `[rows]`.
#[derive(Clone, Debug)]
pub struct LayerNormStats {
    pub mean: Tensor,
    pub rstd: Tensor,
}

impl Tensor {
    /// y = (x − mean) / sqrt(var + eps) · weight (+ bias) over the last dim of `self`.
    /// `weight` and `bias` are `[D]` with D the last dim. Returns y and the stats for backward.
    pub fn layer_norm(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        eps: f64,
    ) -> Result<(Tensor, LayerNormStats)> {
        let name = "layer_norm";
        let cols = *self.dims().last().unwrap_or(&1);
        check_param(name, "weight", weight, &[cols], self)?;
        let add = match bias {
            Some(b) => {
                check_param(name, "bias", b, &[cols], self)?;
                b.reshape([1, cols])?
            }
            None => Tensor::zeros([1, cols], weight.dtype(), weight.device())?,
        };
        self.layer_norm_affine(&weight.reshape([1, cols])?, &add, eps)
    }

    /// The layer-norm backward: (dx, dweight, dbias) from x (`self`), the weight, the forward's
    /// stats and dy. dbias is returned whether or not the forward had a bias.
    pub fn layer_norm_backward(
        &self,
        weight: &Tensor,
        stats: &LayerNormStats,
        dy: &Tensor,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let cols = *self.dims().last().unwrap_or(&1);
        let mul = weight.reshape([1, cols])?;
        let (dx, dw, db) = self.layer_norm_affine_backward(&mul, stats, dy)?;
        Ok((dx, dw.reshape([cols])?, db.reshape([cols])?))
    }

    /// Layer norm over the last dim D, then `y = x̂ · mul[g] + add[g]`, where the rows of `self`
    /// are split into G runs of consecutive rows and run g uses row g of `mul` and `add`
    /// [G, D] (G divides the row count: 1, or the batch size for one run per sequence).
    pub fn layer_norm_affine(
        &self,
        mul: &Tensor,
        add: &Tensor,
        eps: f64,
    ) -> Result<(Tensor, LayerNormStats)> {
        let name = "layer_norm_affine";
        let (cols, groups) = check_groups(name, "mul", self, mul)?;
        check_param(name, "add", add, &[groups, cols], self)?;
        let rows_shape = &self.dims()[..self.rank().saturating_sub(1)];
        let (x, mul, add) = (self.contiguous()?, mul.contiguous()?, add.contiguous()?);
        #[cfg(feature = "cuda")]
        if x.device().is_cuda() {
            let (y, mean, rstd) = crate::cuda::norm::norm_affine(&x, &mul, &add, groups, eps)?;
            return Ok((y, LayerNormStats { mean, rstd }));
        }
        let (y, mean, rstd) = match (x.cpu(name)?, mul.cpu(name)?, add.cpu(name)?) {
            (CpuStorage::F32(x), CpuStorage::F32(m), CpuStorage::F32(a)) => {
                wrap(k::norm_affine(x, m, a, cols, eps), CpuStorage::F32)
            }
            (CpuStorage::F64(x), CpuStorage::F64(m), CpuStorage::F64(a)) => {
                wrap(k::norm_affine(x, m, a, cols, eps), CpuStorage::F64)
            }
            _ => {
                return Err(Error::dtype(
                    name,
                    "x, mul and add must all be F32 or all F64",
                ))
            }
        };
        let stats = LayerNormStats {
            mean: Tensor::from_cpu(mean, rows_shape),
            rstd: Tensor::from_cpu(rstd, rows_shape),
        };
        Ok((Tensor::from_cpu(y, self.shape()), stats))
    }

    /// The backward of `layer_norm_affine`: (dx, Σ dy·x̂, Σ dy), the sums [G, D] taken over
    /// each run's rows. The gradients of `mul` and `add` follow from them: d add = Σ dy and
    /// d mul = Σ dy·x̂.
    pub fn layer_norm_affine_backward(
        &self,
        mul: &Tensor,
        stats: &LayerNormStats,
        dy: &Tensor,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let name = "layer_norm_affine_backward";
        let (cols, groups) = check_groups(name, "mul", self, mul)?;
        if dy.shape() != self.shape() {
            bail_shape!(name, "x {:?} and dy {:?} differ", self.shape(), dy.shape());
        }
        let (x, mul, dy) = (self.contiguous()?, mul.contiguous()?, dy.contiguous()?);
        let (m, r) = (stats.mean.contiguous()?, stats.rstd.contiguous()?);
        super::same_device(name, &[&x, &m, &r, &dy])?;
        #[cfg(feature = "cuda")]
        if x.device().is_cuda() {
            return crate::cuda::norm::norm_affine_backward(&x, &mul, &m, &r, &dy, groups);
        }
        let (dx, s_xhat, s_dy) = match (
            x.cpu(name)?,
            mul.cpu(name)?,
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
            ) => wrap(
                k::norm_affine_backward(x, w, m, r, d, cols),
                CpuStorage::F32,
            ),
            (
                CpuStorage::F64(x),
                CpuStorage::F64(w),
                CpuStorage::F64(m),
                CpuStorage::F64(r),
                CpuStorage::F64(d),
            ) => wrap(
                k::norm_affine_backward(x, w, m, r, d, cols),
                CpuStorage::F64,
            ),
            _ => return Err(Error::dtype(name, "all operands must be F32 or all F64")),
        };
        Ok((
            Tensor::from_cpu(dx, self.shape()),
            Tensor::from_cpu(s_xhat, [groups, cols]),
            Tensor::from_cpu(s_dy, [groups, cols]),
        ))
    }
}

fn wrap<T>(
    t: (Vec<T>, Vec<T>, Vec<T>),
    f: fn(Vec<T>) -> CpuStorage,
) -> (CpuStorage, CpuStorage, CpuStorage) {
    (f(t.0), f(t.1), f(t.2))
}

/// Checks a per-group parameter `what` [G, D] against x [.., D]; returns (D, G).
pub(super) fn check_groups(
    op: &'static str,
    what: &str,
    x: &Tensor,
    mul: &Tensor,
) -> Result<(usize, usize)> {
    let cols = *x.dims().last().unwrap_or(&1);
    if cols == 0 {
        bail_shape!(
            op,
            "cannot normalise over an empty last dim: x {:?}",
            x.shape()
        );
    }
    let rows = x.numel() / cols;
    let groups = mul.dims().first().copied().unwrap_or(0);
    check_param(op, what, mul, &[groups, cols], x)?;
    if groups == 0 || !rows.is_multiple_of(groups) {
        bail_shape!(
            op,
            "{what} {:?}: its {groups} groups do not split the {rows} rows of x {:?}",
            mul.shape(),
            x.shape()
        );
    }
    Ok((cols, groups))
}

fn check_param(op: &'static str, what: &str, p: &Tensor, dims: &[usize], x: &Tensor) -> Result<()> {
    if p.dims() != dims {
        bail_shape!(
            op,
            "{what} {:?} does not match the last dim of x {:?} (expected {dims:?})",
            p.shape(),
            x.shape()
        );
    }
    super::same_device(op, &[x, p])
}
