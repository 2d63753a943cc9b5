//! Indexing ops and their adjoints: index_select ↔ index_add, gather ↔ scatter_add, and
//! concatenation ↔ narrow.

use crate::Var;
use tensor::{Result, Tensor};

impl Var {
    /// Entries `ids` (1-D U32) along `dim`; the gradient adds dy back at those ids.
    pub fn index_select(&self, dim: isize, ids: &Tensor) -> Result<Var> {
        let y = self.value().index_select(dim, ids)?;
        let (x, ids) = (self.value().clone(), ids.clone());
        Var::record("index_select", &[self], y, move |dy| {
            Ok(vec![Some(x.zeros_like()?.index_add(dim, &ids, dy)?)])
        })
    }

    /// Embedding lookup: rows of the table `self` [V, D] for ids of any shape → [ids.., D].
    /// Rows that are looked up several times accumulate their gradients.
    pub fn embedding(&self, ids: &Tensor) -> Result<Var> {
        if self.value().rank() != 2 {
            tensor::bail_shape!("embedding", "table must be [V, D], got {:?}", self.shape());
        }
        let rows = self.index_select(0, &ids.flatten_all()?)?;
        rows.reshape([ids.dims(), &[self.dims()[1]]].concat())
    }

    /// Adds `src` into `self` along `dim` at `ids`; d self = dy, d src = dy at ids.
    pub fn index_add(&self, dim: isize, ids: &Tensor, src: &Var) -> Result<Var> {
        let y = self.value().index_add(dim, ids, src.value())?;
        let ids = ids.clone();
        Var::record("index_add", &[self, src], y, move |dy| {
            Ok(vec![Some(dy.clone()), Some(dy.index_select(dim, &ids)?)])
        })
    }

    /// out = self[.., idx, ..] along `dim` (torch.gather); the gradient scatter-adds dy.
    pub fn gather(&self, dim: isize, idx: &Tensor) -> Result<Var> {
        let y = self.value().gather(dim, idx)?;
        let (x, idx) = (self.value().clone(), idx.clone());
        Var::record("gather", &[self], y, move |dy| {
            Ok(vec![Some(x.zeros_like()?.scatter_add(dim, &idx, dy)?)])
        })
    }

    /// Adds src into self at idx along `dim`; d self = dy, d src = dy gathered at idx.
    pub fn scatter_add(&self, dim: isize, idx: &Tensor, src: &Var) -> Result<Var> {
        let y = self.value().scatter_add(dim, idx, src.value())?;
        let idx = idx.clone();
        Var::record("scatter_add", &[self, src], y, move |dy| {
            Ok(vec![Some(dy.clone()), Some(dy.gather(dim, &idx)?)])
        })
    }

    /// Joins along `dim`; each input's gradient is its slice of dy.
    pub fn cat(vars: &[&Var], dim: isize) -> Result<Var> {
        let values: Vec<&Tensor> = vars.iter().map(|v| v.value()).collect();
        let y = Tensor::cat(&values, dim)?;
        let sizes: Vec<usize> = values
            .iter()
            .map(|t| t.dims()[y.dim("cat", dim).unwrap_or(0)])
            .collect();
        Var::record("cat", vars, y, move |dy| {
            let mut start = 0;
            let mut grads = Vec::with_capacity(sizes.len());
            for &len in &sizes {
                grads.push(Some(dy.narrow(dim, start, len)?));
                start += len;
            }
            Ok(grads)
        })
    }
}
