//! Reductions over a dim, argmax, and softmax / log-softmax over the last dim.

use super::{float_map, float_map2};
use crate::cpu::{reduce as k, CpuStorage};
use crate::op::ReduceOp;
use crate::{bail_shape, Result, Shape, Tensor};

impl Tensor {
    /// Reduces over `dim`; keeps it as size 1 when `keepdim`.
    pub fn reduce(&self, dim: isize, keepdim: bool, op: ReduceOp) -> Result<Tensor> {
        let name = "reduce";
        let d = self.dim(name, dim)?;
        let (outer, size, inner) = self.shape().split_at_dim(d);
        if size == 0 && op != ReduceOp::Sum {
            bail_shape!(
                name,
                "cannot take the max/min over empty dim {d} of {:?}",
                self.shape()
            );
        }
        #[cfg(feature = "cuda")]
        if self.device().is_cuda() {
            let out = crate::cuda::reduce::reduce(self, d, op)?;
            return out.reshape(reduced_shape(self.shape(), d, keepdim));
        }
        let x = self.contiguous()?;
        let out = float_map!(name, x.cpu(name)?, |v| k::reduce(v, outer, size, inner, op));
        Ok(Tensor::from_cpu(
            out,
            reduced_shape(self.shape(), d, keepdim),
        ))
    }
    pub fn sum(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        self.reduce(dim, keepdim, ReduceOp::Sum)
    }
    pub fn max(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        self.reduce(dim, keepdim, ReduceOp::Max)
    }
    pub fn min(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        self.reduce(dim, keepdim, ReduceOp::Min)
    }
    pub fn mean(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        let n = self.dims()[self.dim("mean", dim)?];
        self.sum(dim, keepdim)?.mul_scalar(1.0 / n as f64)
    }
    /// The sum of every element, as a rank-0 tensor.
    pub fn sum_all(&self) -> Result<Tensor> {
        self.flatten_all()?.sum(0, false)
    }
    pub fn mean_all(&self) -> Result<Tensor> {
        self.flatten_all()?.mean(0, false)
    }

    /// Sums over the dims that broadcasting added or stretched, so the result has `shape`:
    /// the adjoint of `broadcast_as(shape)`.
    pub fn sum_to(&self, shape: &Shape) -> Result<Tensor> {
        if Shape::broadcast("sum_to", shape, self.shape())? != *self.shape() {
            bail_shape!(
                "sum_to",
                "{:?} does not broadcast to {:?}",
                shape,
                self.shape()
            );
        }
        let extra = self.rank() - shape.rank();
        let mut t = self.clone();
        for _ in 0..extra {
            t = t.sum(0, false)?;
        }
        for (d, &size) in shape.dims().iter().enumerate() {
            if size == 1 && t.dims()[d] != 1 {
                t = t.sum(d as isize, true)?;
            }
        }
        Ok(t)
    }

    /// Index of the largest entry along `dim` (first on ties), as U32.
    pub fn argmax(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        let name = "argmax";
        let d = self.dim(name, dim)?;
        let (outer, size, inner) = self.shape().split_at_dim(d);
        if size == 0 {
            bail_shape!(name, "empty dim {d} of {:?}", self.shape());
        }
        #[cfg(feature = "cuda")]
        if self.device().is_cuda() {
            let out = crate::cuda::reduce::argmax(self, d)?;
            return out.reshape(reduced_shape(self.shape(), d, keepdim));
        }
        let x = self.contiguous()?;
        let out = match x.cpu(name)? {
            CpuStorage::F32(v) => k::argmax(v, outer, size, inner),
            CpuStorage::F64(v) => k::argmax(v, outer, size, inner),
            other => {
                return Err(crate::Error::dtype(
                    name,
                    format!("expects F32 or F64, got {:?}", other.dtype()),
                ))
            }
        };
        Ok(Tensor::from_cpu(
            CpuStorage::U32(out),
            reduced_shape(self.shape(), d, keepdim),
        ))
    }

    /// Softmax over the last dim. A row that is −∞ everywhere gives zeros.
    pub fn softmax(&self) -> Result<Tensor> {
        self.softmax_impl(false)
    }
    /// Log-softmax over the last dim. A row that is −∞ everywhere stays −∞.
    pub fn log_softmax(&self) -> Result<Tensor> {
        self.softmax_impl(true)
    }
    fn softmax_impl(&self, log: bool) -> Result<Tensor> {
        let name = if log { "log_softmax" } else { "softmax" };
        let cols = *self.dims().last().unwrap_or(&1);
        #[cfg(feature = "cuda")]
        if self.device().is_cuda() {
            return crate::cuda::reduce::softmax(self, log);
        }
        let x = self.contiguous()?;
        let out = float_map!(name, x.cpu(name)?, |v| k::softmax_rows(v, cols, log));
        Ok(Tensor::from_cpu(out, self.shape()))
    }
    /// The backward of softmax (`log` false) or log-softmax (`log` true), from the forward's
    /// output `self` and the output gradient `dy`.
    pub fn softmax_backward(&self, dy: &Tensor, log: bool) -> Result<Tensor> {
        let name = "softmax_backward";
        if self.shape() != dy.shape() {
            bail_shape!(name, "y {:?} and dy {:?} differ", self.shape(), dy.shape());
        }
        let cols = *self.dims().last().unwrap_or(&1);
        super::same_device(name, &[self, dy])?;
        #[cfg(feature = "cuda")]
        if self.device().is_cuda() {
            return crate::cuda::reduce::softmax_backward(self, dy, log);
        }
        let (y, dy) = (self.contiguous()?, dy.contiguous()?);
        let out = float_map2!(name, y.cpu(name)?, dy.cpu(name)?, |y, d| {
            k::softmax_rows_backward(y, d, cols, log)
        });
        Ok(Tensor::from_cpu(out, self.shape()))
    }
}

fn reduced_shape(shape: &Shape, dim: usize, keepdim: bool) -> Shape {
    let mut dims = shape.dims().to_vec();
    if keepdim {
        dims[dim] = 1;
    } else {
        dims.remove(dim);
    }
    Shape::new(dims)
}
