//! Views and their backward rules: a view's gradient is dy put back in the input's shape.

use crate::grad::Grad;
use crate::Var;
use tensor::{Result, Shape};

impl Var {
    pub fn reshape(&self, shape: impl Into<Shape>) -> Result<Var> {
        let y = self.value().reshape(shape)?;
        let s = self.shape().clone();
        Var::record("reshape", &[self], y, move |dy| {
            Ok(vec![Some(dy.reshape(s)?)])
        })
    }
    pub fn transpose(&self, a: isize, b: isize) -> Result<Var> {
        let y = self.value().transpose(a, b)?;
        Var::record("transpose", &[self], y, move |dy| {
            Ok(vec![Some(dy.transpose(a, b)?)])
        })
    }
    /// Swaps the last two dims.
    pub fn t(&self) -> Result<Var> {
        self.transpose(-2, -1)
    }
    /// Output dim i is input dim `perm[i]`; the backward applies the inverse permutation.
    pub fn permute(&self, perm: &[usize]) -> Result<Var> {
        let y = self.value().permute(perm)?;
        let mut inverse = vec![0; perm.len()];
        for (i, &p) in perm.iter().enumerate() {
            inverse[p] = i;
        }
        Var::record("permute", &[self], y, move |dy| {
            Ok(vec![Some(dy.permute(&inverse)?)])
        })
    }
    /// Keeps `len` entries of `dim` from `start`; the gradient is dy in that slice, zeros
    /// elsewhere (a `Grad::Slice`: slices of one input are put together in one pass). The
    /// whole dim is `self` itself.
    pub fn narrow(&self, dim: isize, start: usize, len: usize) -> Result<Var> {
        let y = self.value().narrow(dim, start, len)?;
        if y.shape() == self.shape() {
            return Ok(self.clone());
        }
        let (full, dim) = (self.shape().clone(), self.value().dim("narrow", dim)?);
        Var::record_grads("narrow", &[self], y, move |dy| {
            Ok(vec![Some(Grad::Slice {
                dim,
                start,
                value: dy.clone(),
                full,
            })])
        })
    }
    /// Repeats size-1 and missing leading dims; the gradient sums them back.
    pub fn broadcast_as(&self, shape: impl Into<Shape>) -> Result<Var> {
        let y = self.value().broadcast_as(shape)?;
        let s = self.shape().clone();
        Var::record("broadcast_as", &[self], y, move |dy| {
            Ok(vec![Some(dy.sum_to(&s)?)])
        })
    }
    /// Inserts a dim of size 1 (a reshape).
    pub fn unsqueeze(&self, dim: usize) -> Result<Var> {
        let y = self.value().unsqueeze(dim)?;
        self.reshape(y.shape().clone())
    }
    /// Removes a dim of size 1 (a reshape).
    pub fn squeeze(&self, dim: isize) -> Result<Var> {
        let y = self.value().squeeze(dim)?;
        self.reshape(y.shape().clone())
    }
    /// A row-major copy (identity for the gradient).
    pub fn contiguous(&self) -> Result<Var> {
        let y = self.value().contiguous()?;
        Var::record("contiguous", &[self], y, move |dy| {
            Ok(vec![Some(dy.clone())])
        })
    }
}
