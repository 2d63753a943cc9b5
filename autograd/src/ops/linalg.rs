//! Matrix multiply (optionally plus an addend) and its backward.

use crate::Var;
use tensor::{Result, Tensor};

impl Var {
    /// [.., M, K] · [.., K, N] → [.., M, N] (batch dims broadcast).
    /// da = dy · bᵀ, db = aᵀ · dy, each summed over broadcast batch dims. The transposes are
    /// views: the GEMM reads them through their strides.
    pub fn matmul(&self, rhs: &Var) -> Result<Var> {
        let y = self.value().matmul(rhs.value())?;
        let (a, b) = (self.value().clone(), rhs.value().clone());
        let need = (self.is_tracked(), rhs.is_tracked());
        Var::record("matmul", &[self, rhs], y, move |dy| {
            matmul_backward(&a, &b, dy, need)
        })
    }

    /// `self · rhs + addend`, the addend broadcast to the product's shape (a bias, a residual),
    /// in one pass (see `Tensor::matmul_add`). The product's gradients are matmul's; the
    /// addend's is dy summed over its broadcast dims.
    pub fn matmul_add(&self, rhs: &Var, addend: &Var) -> Result<Var> {
        let y = self.value().matmul_add(rhs.value(), addend.value())?;
        let (a, b) = (self.value().clone(), rhs.value().clone());
        let c_shape = addend.shape().clone();
        let need = (self.is_tracked(), rhs.is_tracked());
        let need_c = addend.is_tracked();
        Var::record("matmul_add", &[self, rhs, addend], y, move |dy| {
            let mut grads = matmul_backward(&a, &b, dy, need)?;
            grads.push(need_c.then(|| dy.sum_to(&c_shape)).transpose()?);
            Ok(grads)
        })
    }
}

/// The gradients of a · b for dy: da = dy · bᵀ, db = aᵀ · dy (each only when `need`s it).
fn matmul_backward(
    a: &Tensor,
    b: &Tensor,
    dy: &Tensor,
    need: (bool, bool),
) -> Result<Vec<Option<Tensor>>> {
    let da = need
        .0
        .then(|| dy.matmul(&b.t()?)?.sum_to(a.shape()))
        .transpose()?;
    let db = if !need.1 {
        None
    } else if b.rank() == 2 && a.rank() > 2 && a.numel() > 0 && dy.numel() > 0 {
        // A shared right operand: fold the batch into rows, one GEMM instead of a batch
        // of GEMMs and a sum. aᵀ [K, B·M] · dy [B·M, N].
        let k = a.dims()[a.rank() - 1];
        let a2 = a.reshape([a.numel() / k, k])?;
        let dy2 = dy.reshape([dy.numel() / b.dims()[1], b.dims()[1]])?;
        Some(a2.t()?.matmul(&dy2)?)
    } else {
        Some(a.t()?.matmul(dy)?.sum_to(b.shape())?)
    };
    Ok(vec![da, db])
}
