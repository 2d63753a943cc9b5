//! Reductions, softmax, cross-entropy and layer norm, with their backward rules.

use crate::Var;
use tensor::{Result, Tensor};

impl Var {
    /// Σ over `dim`; the gradient spreads dy back over the summed dim.
    pub fn sum(&self, dim: isize, keepdim: bool) -> Result<Var> {
        let d = self.value().dim("sum", dim)?;
        let y = self.value().sum(dim, keepdim)?;
        let shape = self.shape().clone();
        Var::record("sum", &[self], y, move |dy| {
            let dy = if keepdim {
                dy.clone()
            } else {
                dy.unsqueeze(d)?
            };
            Ok(vec![Some(dy.broadcast_as(&shape)?)])
        })
    }
    /// Mean over `dim`.
    pub fn mean(&self, dim: isize, keepdim: bool) -> Result<Var> {
        let n = self.dims()[self.value().dim("mean", dim)?];
        self.sum(dim, keepdim)?.mul_scalar(1.0 / n as f64)
    }
    /// Σ of all elements (a scalar).
    pub fn sum_all(&self) -> Result<Var> {
        self.reshape([self.value().numel()])?.sum(0, false)
    }
    /// Mean of all elements (a scalar).
    pub fn mean_all(&self) -> Result<Var> {
        self.reshape([self.value().numel()])?.mean(0, false)
    }

    /// Max over `dim`; the gradient goes to the (first) arg-max of each slice.
    pub fn max(&self, dim: isize, keepdim: bool) -> Result<Var> {
        let d = self.value().dim("max", dim)?;
        let y = self.value().max(dim, keepdim)?;
        let x = self.value().clone();
        Var::record("max", &[self], y, move |dy| {
            let idx = x.argmax(d as isize, true)?;
            let dy = if keepdim {
                dy.clone()
            } else {
                dy.unsqueeze(d)?
            };
            Ok(vec![Some(x.zeros_like()?.scatter_add(
                d as isize,
                &idx,
                &dy.contiguous()?,
            )?)])
        })
    }

    /// Softmax over the last dim; dx = y · (dy − Σ dy·y).
    pub fn softmax(&self) -> Result<Var> {
        let y = self.value().softmax()?;
        let y_saved = y.clone();
        Var::record("softmax", &[self], y, move |dy| {
            Ok(vec![Some(y_saved.softmax_backward(dy, false)?)])
        })
    }
    /// Log-softmax over the last dim; dx = dy − softmax · Σ dy.
    pub fn log_softmax(&self) -> Result<Var> {
        let y = self.value().log_softmax()?;
        let y_saved = y.clone();
        Var::record("log_softmax", &[self], y, move |dy| {
            Ok(vec![Some(y_saved.softmax_backward(dy, true)?)])
        })
    }

    /// Cross-entropy of the logits `self` [.., V] against `targets` [..] (U32), fused with the
    /// log-softmax: `−log softmax(self)[target]` per row, with the class `excluded` left out of
    /// the softmax. Returns [..] (F32 for half-precision logits). Gradient flows to the logits:
    /// dx = dnll · (softmax − onehot(target)).
    pub fn cross_entropy(&self, targets: &Tensor, excluded: Option<u32>) -> Result<Var> {
        let (nll, lse) = self.value().cross_entropy(targets, excluded)?;
        let (x, targets) = (self.value().clone(), targets.clone());
        Var::record("cross_entropy", &[self], nll, move |dnll| {
            Ok(vec![Some(
                x.cross_entropy_backward(&targets, &lse, dnll, excluded)?,
            )])
        })
    }

    /// Layer norm over the last dim with a weight `[D]` and an optional bias `[D]` (fused; the
    /// backward uses the saved mean and 1/std).
    pub fn layer_norm(&self, weight: &Var, bias: Option<&Var>, eps: f64) -> Result<Var> {
        let b = bias.map(|b| b.value());
        let (y, stats) = self.value().layer_norm(weight.value(), b, eps)?;
        let (x, w) = (self.value().clone(), weight.value().clone());
        let mut inputs = vec![self, weight];
        inputs.extend(bias);
        let has_bias = bias.is_some();
        Var::record("layer_norm", &inputs, y, move |dy| {
            let (dx, dw, db) = x.layer_norm_backward(&w, &stats, dy)?;
            let mut grads = vec![Some(dx), Some(dw)];
            if has_bias {
                grads.push(Some(db));
            }
            Ok(grads)
        })
    }
}
