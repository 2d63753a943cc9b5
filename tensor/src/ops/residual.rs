//! The gated residual of a DiT block, y = h + gate ⊙ dropout(branch), fused: one pass forward
//! and one backward, with the dropout mask recomputed from its seed instead of stored.

use crate::cpu::residual as k;
use crate::cpu::sample::DropoutNoise;
use crate::cpu::CpuStorage;
use crate::{bail_shape, draw_key, Error, Result, Tensor};

impl Tensor {
    /// `y = self + gate[g] ⊙ dropout(branch)`: `self` (h) and `branch` `[.., D]` alike, their
    /// rows split into G runs of consecutive rows, run g scaled by row g of `gate` [G, D].
    /// `dropout` = Some((p, seed)) applies the mask `Tensor::dropout_mask(shape, p, seed)`
    /// without building it; None adds the gated branch as it is.
    pub fn gated_residual(
        &self,
        gate: &Tensor,
        branch: &Tensor,
        dropout: Option<(f64, u64)>,
    ) -> Result<Tensor> {
        let name = "gated_residual";
        let (cols, _) = check(name, self, gate, branch, dropout)?;
        let noise = dropout.map(|(p, seed)| DropoutNoise {
            p,
            key: draw_key(seed, 0),
        });
        let (h, gate, branch) = (self.contiguous()?, gate.contiguous()?, branch.contiguous()?);
        #[cfg(feature = "cuda")]
        if h.device().is_cuda() {
            return crate::cuda::residual::forward(&h, &gate, &branch, noise);
        }
        let y = match (h.cpu(name)?, gate.cpu(name)?, branch.cpu(name)?) {
            (CpuStorage::F32(h), CpuStorage::F32(g), CpuStorage::F32(b)) => {
                CpuStorage::F32(k::gated_residual(h, g, b, cols, noise))
            }
            (CpuStorage::F64(h), CpuStorage::F64(g), CpuStorage::F64(b)) => {
                CpuStorage::F64(k::gated_residual(h, g, b, cols, noise))
            }
            _ => return Err(float_error(name)),
        };
        Ok(Tensor::from_cpu(y, self.shape()))
    }

    /// The backward of `gated_residual` from dy: (d branch, d gate [G, D]), with `self` the
    /// forward's gate [G, D] and the same `branch` and `dropout`. The gradient of h is dy.
    pub fn gated_residual_backward(
        &self,
        branch: &Tensor,
        dropout: Option<(f64, u64)>,
        dy: &Tensor,
    ) -> Result<(Tensor, Tensor)> {
        let name = "gated_residual_backward";
        let (cols, groups) = check(name, dy, self, branch, dropout)?;
        let noise = dropout.map(|(p, seed)| DropoutNoise {
            p,
            key: draw_key(seed, 0),
        });
        let (gate, branch, dy) = (self.contiguous()?, branch.contiguous()?, dy.contiguous()?);
        #[cfg(feature = "cuda")]
        if dy.device().is_cuda() {
            return crate::cuda::residual::backward(&gate, &branch, &dy, noise);
        }
        let (d_branch, d_gate) = match (gate.cpu(name)?, branch.cpu(name)?, dy.cpu(name)?) {
            (CpuStorage::F32(g), CpuStorage::F32(b), CpuStorage::F32(d)) => {
                let (db, dg) = k::gated_residual_backward(g, b, d, cols, noise);
                (CpuStorage::F32(db), CpuStorage::F32(dg))
            }
            (CpuStorage::F64(g), CpuStorage::F64(b), CpuStorage::F64(d)) => {
                let (db, dg) = k::gated_residual_backward(g, b, d, cols, noise);
                (CpuStorage::F64(db), CpuStorage::F64(dg))
            }
            _ => return Err(float_error(name)),
        };
        Ok((
            Tensor::from_cpu(d_branch, dy.shape()),
            Tensor::from_cpu(d_gate, [groups, cols]),
        ))
    }
}

/// Checks h (or dy), gate [G, D] and branch; returns (D, G).
fn check(
    op: &'static str,
    h: &Tensor,
    gate: &Tensor,
    branch: &Tensor,
    dropout: Option<(f64, u64)>,
) -> Result<(usize, usize)> {
    if branch.shape() != h.shape() {
        bail_shape!(
            op,
            "branch {:?} and h {:?} differ",
            branch.shape(),
            h.shape()
        );
    }
    if let Some((p, _)) = dropout.filter(|(p, _)| !(0.0..1.0).contains(p)) {
        return Err(Error::msg(op, format!("dropout p = {p} is outside [0, 1)")));
    }
    super::same_device(op, &[h, branch])?;
    super::norm::check_groups(op, "gate", h, gate)
}

fn float_error(op: &'static str) -> Error {
    Error::dtype(
        op,
        "h, gate, branch and dy must all be F32 or all F64 on the CPU",
    )
}
