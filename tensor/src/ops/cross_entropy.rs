//! Cross-entropy from logits over the last dim, fused: the training losses read one
//! log-probability per token out of a [B, L, V] softmax, so the full log-probabilities are
//! never materialised, forward or backward.

use crate::cpu::{cross_entropy as k, CpuStorage};
use crate::{bail_shape, DType, Error, Result, Tensor};

impl Tensor {
    /// Per-row negative log-likelihood of `targets` under softmax over the last dim of the
    /// logits `self` [.., V], with the class `excluded` (if any) left out of the softmax as if
    /// its logit were −∞. Returns (nll, lse), both shaped like `targets` [..]: the loss and the
    /// row's log-sum-exp, which the backward needs. A target equal to `excluded` has nll +∞.
    ///
    /// `targets` are U32 ids below V. On the CPU the logits are F32 or F64 and the results
    /// share their dtype; on CUDA the logits are F32 or BF16 and the results are F32.
    pub fn cross_entropy(
        &self,
        targets: &Tensor,
        excluded: Option<u32>,
    ) -> Result<(Tensor, Tensor)> {
        let name = "cross_entropy";
        let cols = check(name, self, targets, excluded)?;
        let x = self.contiguous()?;
        let t = targets.contiguous()?;
        #[cfg(feature = "cuda")]
        if x.device().is_cuda() {
            check_targets(name, &t.to_vec::<u32>()?, cols)?;
            return crate::cuda::cross_entropy::forward(&x, &t, cols, excluded);
        }
        let ids = target_ids(name, &t, cols)?;
        let e = excluded.map(|e| e as usize);
        let (nll, lse) = match x.cpu(name)? {
            CpuStorage::F32(v) => {
                let (n, l) = k::cross_entropy_rows(v, ids, cols, e);
                (CpuStorage::F32(n), CpuStorage::F32(l))
            }
            CpuStorage::F64(v) => {
                let (n, l) = k::cross_entropy_rows(v, ids, cols, e);
                (CpuStorage::F64(n), CpuStorage::F64(l))
            }
            other => return Err(float_error(name, other.dtype())),
        };
        Ok((
            Tensor::from_cpu(nll, targets.shape()),
            Tensor::from_cpu(lse, targets.shape()),
        ))
    }

    /// The gradient of `cross_entropy` with respect to the logits `self` [.., V]:
    /// dnll · (softmax − onehot(target)), 0 in the excluded column; in the logits' dtype.
    /// `lse` is the forward's second result and `dnll` the gradient of its first.
    pub fn cross_entropy_backward(
        &self,
        targets: &Tensor,
        lse: &Tensor,
        dnll: &Tensor,
        excluded: Option<u32>,
    ) -> Result<Tensor> {
        let name = "cross_entropy_backward";
        let cols = check(name, self, targets, excluded)?;
        for (what, t) in [("lse", lse), ("dnll", dnll)] {
            if t.shape() != targets.shape() {
                bail_shape!(
                    name,
                    "{what} {:?} is not shaped like the targets {:?}",
                    t.shape(),
                    targets.shape()
                );
            }
        }
        super::same_device(name, &[self, lse, dnll])?;
        let (x, t) = (self.contiguous()?, targets.contiguous()?);
        let (lse, dnll) = (lse.contiguous()?, dnll.contiguous()?);
        #[cfg(feature = "cuda")]
        if x.device().is_cuda() {
            check_targets(name, &t.to_vec::<u32>()?, cols)?;
            return crate::cuda::cross_entropy::backward(&x, &t, &lse, &dnll, cols, excluded);
        }
        let ids = target_ids(name, &t, cols)?;
        let e = excluded.map(|e| e as usize);
        let dx = match (x.cpu(name)?, lse.cpu(name)?, dnll.cpu(name)?) {
            (CpuStorage::F32(x), CpuStorage::F32(l), CpuStorage::F32(d)) => {
                CpuStorage::F32(k::cross_entropy_rows_backward(x, ids, l, d, cols, e))
            }
            (CpuStorage::F64(x), CpuStorage::F64(l), CpuStorage::F64(d)) => {
                CpuStorage::F64(k::cross_entropy_rows_backward(x, ids, l, d, cols, e))
            }
            (x, ..) => return Err(float_error(name, x.dtype())),
        };
        Ok(Tensor::from_cpu(dx, self.shape()))
    }
}

/// Checks the logits [.., V] against the targets [..] and `excluded`; returns V.
fn check(
    op: &'static str,
    logits: &Tensor,
    targets: &Tensor,
    excluded: Option<u32>,
) -> Result<usize> {
    let rank = logits.rank();
    if rank == 0 || targets.dims() != &logits.dims()[..rank - 1] {
        bail_shape!(
            op,
            "logits {:?} must be targets {:?} plus a class dim",
            logits.shape(),
            targets.shape()
        );
    }
    if targets.dtype() != DType::U32 {
        return Err(Error::dtype(
            op,
            format!("targets must be U32, got {:?}", targets.dtype()),
        ));
    }
    let cols = logits.dims()[rank - 1];
    if cols == 0 {
        bail_shape!(op, "logits {:?} have no classes", logits.shape());
    }
    if let Some(e) = excluded.filter(|&e| e as usize >= cols) {
        bail_shape!(
            op,
            "the excluded class {e} is outside the {cols} classes of the logits"
        );
    }
    super::same_device(op, &[logits, targets])?;
    Ok(cols)
}

/// The ids of CPU targets, each checked to be below `cols`.
fn target_ids<'a>(op: &'static str, targets: &'a Tensor, cols: usize) -> Result<&'a [u32]> {
    let ids = super::expect_u32(op, targets)?;
    check_targets(op, ids, cols)?;
    Ok(ids)
}

/// Fails unless every target id is below `cols`. CUDA targets are copied to the host for it
/// (B·L ids, once per loss): the kernels would otherwise give NaN or a silently wrong gradient.
fn check_targets(op: &'static str, ids: &[u32], cols: usize) -> Result<()> {
    match ids.iter().find(|&&i| i as usize >= cols) {
        Some(bad) => Err(Error::msg(
            op,
            format!("target id {bad} is outside the {cols} classes of the logits"),
        )),
        None => Ok(()),
    }
}

fn float_error(op: &'static str, got: DType) -> Error {
    Error::dtype(
        op,
        format!("logits must be F32 or F64 on the CPU, got {got:?}"),
    )
}
