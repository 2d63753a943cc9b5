//! Indexing along a dim: index_select (embedding lookup) and its adjoint index_add, gather and
//! its adjoint scatter_add, and concatenation.

use super::{expect_u32, same_device};
use crate::cpu::{elementwise, index as k, CpuStorage};
use crate::{bail_shape, Error, Layout, Result, Shape, Tensor};

/// Applies `$body` to the data of any-dtype storage `$s`, keeping the variant.
macro_rules! any_map {
    ($s:expr, |$v:ident| $body:expr) => {
        match $s {
            CpuStorage::F32($v) => CpuStorage::F32($body),
            CpuStorage::F64($v) => CpuStorage::F64($body),
            CpuStorage::BF16($v) => CpuStorage::BF16($body),
            CpuStorage::F16($v) => CpuStorage::F16($body),
            CpuStorage::U32($v) => CpuStorage::U32($body),
            CpuStorage::U8($v) => CpuStorage::U8($body),
        }
    };
}

impl Tensor {
    /// Picks entries `ids` (a 1-D U32 tensor) along `dim`: the output has `ids.len()` there.
    pub fn index_select(&self, dim: isize, ids: &Tensor) -> Result<Tensor> {
        let name = "index_select";
        same_device(name, &[self, ids])?;
        let d = self.dim(name, dim)?;
        if ids.rank() != 1 {
            bail_shape!(name, "ids must be 1-D, got {:?}", ids.shape());
        }
        let (_, size, inner) = self.shape().split_at_dim(d);
        let ids = ids.contiguous()?;
        #[cfg(feature = "cuda")]
        if self.device().is_cuda() {
            let mut dims = self.dims().to_vec();
            dims[d] = ids.numel();
            return crate::cuda::index::select(name, &self.contiguous()?, d, &ids, dims);
        }
        let id = expect_u32(name, &ids)?;
        k::check_indices(name, id, size, d)?;
        let x = self.contiguous()?;
        let out = any_map!(x.cpu(name)?, |v| k::index_select(v, size, inner, id));
        let mut dims = self.dims().to_vec();
        dims[d] = id.len();
        Ok(Tensor::from_cpu(out, dims))
    }

    /// Embedding lookup: rows of the table `self` [V, D] for ids of any shape → [ids.., D].
    pub fn embedding(&self, ids: &Tensor) -> Result<Tensor> {
        if self.rank() != 2 {
            bail_shape!("embedding", "table must be [V, D], got {:?}", self.shape());
        }
        let rows = self.index_select(0, &ids.flatten_all()?)?;
        rows.reshape([ids.dims(), &[self.dims()[1]]].concat())
    }

    /// Adds slices of `src` into a copy of `self` along `dim` at `ids` (repeats accumulate):
    /// the adjoint of `index_select`. `src` has `ids.len()` entries on `dim`.
    pub fn index_add(&self, dim: isize, ids: &Tensor, src: &Tensor) -> Result<Tensor> {
        let name = "index_add";
        same_device(name, &[self, ids, src])?;
        let d = self.dim(name, dim)?;
        let mut expect = self.dims().to_vec();
        expect[d] = ids.numel();
        if ids.rank() != 1 || src.dims() != expect {
            bail_shape!(
                name,
                "self {:?}, ids {:?}, src {:?}",
                self.shape(),
                ids.shape(),
                src.shape()
            );
        }
        let (_, size, inner) = self.shape().split_at_dim(d);
        let ids = ids.contiguous()?;
        let (dst, src) = (self.contiguous()?, src.contiguous()?);
        #[cfg(feature = "cuda")]
        if self.device().is_cuda() {
            return crate::cuda::index::accumulate(name, &dst, d, &ids, &src);
        }
        let id = expect_u32(name, &ids)?;
        k::check_indices(name, id, size, d)?;
        let out = match (dst.cpu(name)?, src.cpu(name)?) {
            (CpuStorage::F32(a), CpuStorage::F32(b)) => {
                CpuStorage::F32(with_copy(a, |o| k::index_add(o, size, inner, id, b)))
            }
            (CpuStorage::F64(a), CpuStorage::F64(b)) => {
                CpuStorage::F64(with_copy(a, |o| k::index_add(o, size, inner, id, b)))
            }
            (a, b) => {
                return Err(Error::dtype(
                    name,
                    format!(
                        "expects matching F32/F64, got {:?} and {:?}",
                        a.dtype(),
                        b.dtype()
                    ),
                ))
            }
        };
        Ok(Tensor::from_cpu(out, self.shape()))
    }

    /// out[.., j, ..] = self[.., idx[.., j, ..], ..] along `dim`; `idx` (U32) has self's shape
    /// except on `dim`, and the output has idx's shape.
    pub fn gather(&self, dim: isize, idx: &Tensor) -> Result<Tensor> {
        let name = "gather";
        same_device(name, &[self, idx])?;
        let d = self.dim(name, dim)?;
        check_index_shape(name, self, idx, d)?;
        let (_, size, inner) = self.shape().split_at_dim(d);
        let n = idx.dims()[d];
        let idx_c = idx.contiguous()?;
        #[cfg(feature = "cuda")]
        if self.device().is_cuda() {
            let dims = idx.dims().to_vec();
            return crate::cuda::index::select(name, &self.contiguous()?, d, &idx_c, dims);
        }
        let id = expect_u32(name, &idx_c)?;
        k::check_indices(name, id, size, d)?;
        let x = self.contiguous()?;
        let out = any_map!(x.cpu(name)?, |v| k::gather(v, size, inner, id, n));
        Ok(Tensor::from_cpu(out, idx.shape()))
    }

    /// A copy of `self` with src[.., j, ..] added at self[.., idx[.., j, ..], ..] along `dim`:
    /// the adjoint of `gather`. `idx` and `src` share a shape.
    pub fn scatter_add(&self, dim: isize, idx: &Tensor, src: &Tensor) -> Result<Tensor> {
        let name = "scatter_add";
        same_device(name, &[self, idx, src])?;
        let d = self.dim(name, dim)?;
        check_index_shape(name, self, idx, d)?;
        if idx.shape() != src.shape() {
            bail_shape!(
                name,
                "idx {:?} and src {:?} differ",
                idx.shape(),
                src.shape()
            );
        }
        let (_, size, inner) = self.shape().split_at_dim(d);
        let n = idx.dims()[d];
        let idx_c = idx.contiguous()?;
        let (dst, src) = (self.contiguous()?, src.contiguous()?);
        #[cfg(feature = "cuda")]
        if self.device().is_cuda() {
            return crate::cuda::index::accumulate(name, &dst, d, &idx_c, &src);
        }
        let id = expect_u32(name, &idx_c)?;
        k::check_indices(name, id, size, d)?;
        let out = match (dst.cpu(name)?, src.cpu(name)?) {
            (CpuStorage::F32(a), CpuStorage::F32(b)) => {
                CpuStorage::F32(with_copy(a, |o| k::scatter_add(o, size, inner, id, b, n)))
            }
            (CpuStorage::F64(a), CpuStorage::F64(b)) => {
                CpuStorage::F64(with_copy(a, |o| k::scatter_add(o, size, inner, id, b, n)))
            }
            (a, b) => {
                return Err(Error::dtype(
                    name,
                    format!(
                        "expects matching F32/F64, got {:?} and {:?}",
                        a.dtype(),
                        b.dtype()
                    ),
                ))
            }
        };
        Ok(Tensor::from_cpu(out, self.shape()))
    }

    /// Joins tensors along `dim`; all other dims and the dtype must agree.
    pub fn cat(tensors: &[&Tensor], dim: isize) -> Result<Tensor> {
        let name = "cat";
        let Some(first) = tensors.first() else {
            return Err(Error::msg(name, "needs at least one tensor"));
        };
        same_device(name, tensors)?;
        let d = first.dim(name, dim)?;
        let mut dims = first.dims().to_vec();
        dims[d] = 0;
        for t in tensors {
            let mut rest = t.dims().to_vec();
            if rest.len() != dims.len() || t.dtype() != first.dtype() {
                bail_shape!(
                    name,
                    "cannot join {:?} ({:?}) with {:?} ({:?})",
                    first.shape(),
                    first.dtype(),
                    t.shape(),
                    t.dtype()
                );
            }
            dims[d] += rest[d];
            rest[d] = 0;
            if rest
                .iter()
                .zip(first.dims())
                .enumerate()
                .any(|(i, (a, b))| i != d && a != b)
            {
                bail_shape!(
                    name,
                    "cannot join {:?} with {:?} along dim {d}",
                    first.shape(),
                    t.shape()
                );
            }
        }
        let shape = Shape::new(dims);
        #[cfg(feature = "cuda")]
        if first.device().is_cuda() {
            return crate::cuda::cast::cat(tensors, d, &shape);
        }
        let out_layout = Layout::contiguous(shape.clone());
        let mut start = 0;
        let mut out = any_map!(first.cpu(name)?, |_v| vec![
            Default::default();
            shape.numel()
        ]);
        for t in tensors {
            let len = t.dims()[d];
            let region = out_layout.narrow(d, start, len)?;
            let src = t.contiguous()?;
            match (&mut out, src.cpu(name)?) {
                (CpuStorage::F32(o), CpuStorage::F32(s)) => {
                    elementwise::write_strided(o, &region, s)
                }
                (CpuStorage::F64(o), CpuStorage::F64(s)) => {
                    elementwise::write_strided(o, &region, s)
                }
                (CpuStorage::BF16(o), CpuStorage::BF16(s)) => {
                    elementwise::write_strided(o, &region, s)
                }
                (CpuStorage::F16(o), CpuStorage::F16(s)) => {
                    elementwise::write_strided(o, &region, s)
                }
                (CpuStorage::U32(o), CpuStorage::U32(s)) => {
                    elementwise::write_strided(o, &region, s)
                }
                (CpuStorage::U8(o), CpuStorage::U8(s)) => elementwise::write_strided(o, &region, s),
                _ => unreachable!("dtypes checked above"),
            }
            start += len;
        }
        Ok(Tensor::from_cpu(out, shape))
    }
}

fn with_copy<T: Clone>(src: &[T], f: impl FnOnce(&mut [T])) -> Vec<T> {
    let mut out = src.to_vec();
    f(&mut out);
    out
}

fn check_index_shape(op: &'static str, x: &Tensor, idx: &Tensor, d: usize) -> Result<()> {
    let same_elsewhere =
        idx.rank() == x.rank() && (0..x.rank()).all(|i| i == d || idx.dims()[i] == x.dims()[i]);
    if !same_elsewhere {
        bail_shape!(
            op,
            "index {:?} must match {:?} on every dim but {d}",
            idx.shape(),
            x.shape()
        );
    }
    Ok(())
}
