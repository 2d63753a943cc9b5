//! Layout: how a tensor's logical elements sit in its storage — a shape, a stride per dimension
//! (in elements) and an offset. Views (transpose, permute, narrow, broadcast, and reshape where
//! the strides allow it) only change the layout; the storage is shared.

use crate::{bail_shape, Result, Shape};

#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    shape: Shape,
    strides: Vec<usize>,
    offset: usize,
}

impl Layout {
    /// The row-major layout of a fresh tensor.
    pub fn contiguous(shape: impl Into<Shape>) -> Self {
        let shape = shape.into();
        let strides = shape.contiguous_strides();
        Layout {
            shape,
            strides,
            offset: 0,
        }
    }
    /// A layout from its parts; the caller guarantees the strides fit the storage.
    pub fn from_raw(shape: Shape, strides: Vec<usize>, offset: usize) -> Self {
        Layout {
            shape,
            strides,
            offset,
        }
    }
    pub fn shape(&self) -> &Shape {
        &self.shape
    }
    pub fn dims(&self) -> &[usize] {
        self.shape.dims()
    }
    pub fn strides(&self) -> &[usize] {
        &self.strides
    }
    pub fn offset(&self) -> usize {
        self.offset
    }
    /// True when the elements are stored in row-major order with no gaps (any offset).
    pub fn is_contiguous(&self) -> bool {
        let mut expected = 1;
        for (&d, &s) in self.dims().iter().zip(&self.strides).rev() {
            if d != 1 && s != expected {
                return false;
            }
            expected *= d;
        }
        true
    }

    /// Swaps two dims (a view).
    pub fn transpose(&self, a: usize, b: usize) -> Layout {
        let mut l = self.clone();
        l.strides.swap(a, b);
        let mut dims = l.shape.dims().to_vec();
        dims.swap(a, b);
        l.shape = Shape::new(dims);
        l
    }

    /// Reorders dims: output dim i is input dim `perm[i]`.
    pub fn permute(&self, perm: &[usize]) -> Result<Layout> {
        let rank = self.shape.rank();
        let mut seen = vec![false; rank];
        if perm.len() != rank
            || perm
                .iter()
                .any(|&p| p >= rank || std::mem::replace(&mut seen[p], true))
        {
            bail_shape!(
                "permute",
                "{perm:?} is not a permutation of the dims of {:?}",
                self.shape
            );
        }
        let dims = perm.iter().map(|&p| self.dims()[p]).collect::<Vec<_>>();
        let strides = perm.iter().map(|&p| self.strides[p]).collect();
        Ok(Layout {
            shape: Shape::new(dims),
            strides,
            offset: self.offset,
        })
    }

    /// Keeps `len` elements of `dim` starting at `start` (a view).
    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Result<Layout> {
        let size = self.dims()[dim];
        if start.checked_add(len).is_none_or(|end| end > size) {
            bail_shape!(
                "narrow",
                "range {start}..{} exceeds dim {dim} of {:?}",
                start as u128 + len as u128,
                self.shape
            );
        }
        let mut dims = self.dims().to_vec();
        dims[dim] = len;
        if len == 0 {
            // An empty view reads nothing: no offset that could point past the storage.
            return Ok(Layout::contiguous(dims));
        }
        Ok(Layout {
            shape: Shape::new(dims),
            strides: self.strides.clone(),
            offset: self.offset + start * self.strides[dim],
        })
    }

    /// Broadcasts to `target` by giving new and size-1 dims a stride of 0 (a view).
    pub fn broadcast_as(&self, target: &Shape) -> Result<Layout> {
        let (rank, extra) = (
            target.rank(),
            target.rank().saturating_sub(self.shape.rank()),
        );
        if target.rank() < self.shape.rank() {
            bail_shape!(
                "broadcast_as",
                "cannot broadcast {:?} to {target:?}",
                self.shape
            );
        }
        let mut strides = vec![0; rank];
        for (i, stride) in strides.iter_mut().enumerate().skip(extra) {
            let (src, dst) = (self.dims()[i - extra], target.dims()[i]);
            *stride = match src {
                _ if src == dst => self.strides[i - extra],
                1 => 0,
                _ => bail_shape!(
                    "broadcast_as",
                    "cannot broadcast {:?} to {target:?}",
                    self.shape
                ),
            };
        }
        Ok(Layout {
            shape: target.clone(),
            strides,
            offset: self.offset,
        })
    }

    /// The same elements (in row-major order) under a new shape, if that needs no copy.
    ///
    /// Consecutive dims whose elements follow each other at one constant step form a *chunk*
    /// (a whole contiguous tensor is one chunk of step 1). A new shape is a view exactly when
    /// its dims split the chunks without straddling two of them; then each new dim's stride is
    /// its chunk's step times the size of the rest of the chunk after it. So squeezing, or
    /// splitting and merging heads of a strided `[B, N, 3, H, d]` view, never copies, while
    /// flattening a transposed matrix does.
    pub fn reshape(&self, shape: &Shape) -> Option<Layout> {
        if shape.numel() == 0 {
            // No elements: the offset (which may lie past the end of an empty view) is moot.
            return Some(Layout::contiguous(shape.clone()));
        }
        if self.is_contiguous() {
            return Some(Layout {
                shape: shape.clone(),
                strides: shape.contiguous_strides(),
                offset: self.offset,
            });
        }
        // (elements, step) of each chunk, outermost first; dims of size 1 take no part.
        let mut chunks: Vec<(usize, usize)> = vec![];
        for (&d, &s) in self.dims().iter().zip(&self.strides) {
            match chunks.last_mut() {
                Some((n, step)) if d != 1 && *step == d * s => (*n, *step) = (*n * d, s),
                _ if d != 1 => chunks.push((d, s)),
                _ => {}
            }
        }
        let mut strides = Vec::with_capacity(shape.rank());
        let mut chunks = chunks.into_iter();
        let (mut left, mut step) = chunks.next().unwrap_or((1, 1));
        for &d in shape.dims() {
            if d == 1 {
                strides.push(step); // any stride fits a dim of size 1
                continue;
            }
            if left % d != 0 {
                return None; // this dim would straddle two chunks
            }
            left /= d;
            strides.push(left * step);
            if left == 1 {
                (left, step) = chunks.next().unwrap_or((1, 1));
            }
        }
        Some(Layout {
            shape: shape.clone(),
            strides,
            offset: self.offset,
        })
    }

    /// Visits the storage offset of every element in row-major logical order. The last dim is
    /// walked in an inner loop, so the cost per element is one add.
    pub fn for_each_offset(&self, mut f: impl FnMut(usize)) {
        let (rows, row_len, row_stride) = self.rows();
        for start in rows {
            for j in 0..row_len {
                f(start + j * row_stride);
            }
        }
    }

    /// Splits the tensor into runs along its last dim: the start offset of each run (in
    /// row-major order), the run length and the stride inside a run.
    pub fn rows(&self) -> (RowStarts<'_>, usize, usize) {
        let rank = self.shape.rank();
        if rank == 0 {
            return (RowStarts::new(&[], &[], self.offset), 1, 1);
        }
        let starts = RowStarts::new(
            &self.dims()[..rank - 1],
            &self.strides[..rank - 1],
            self.offset,
        );
        (starts, self.dims()[rank - 1], self.strides[rank - 1])
    }
}

/// Iterator over the storage offsets of the rows of a layout: an odometer over the outer dims.
pub struct RowStarts<'a> {
    dims: &'a [usize],
    strides: &'a [usize],
    index: Vec<usize>,
    next: Option<usize>,
}

impl<'a> RowStarts<'a> {
    fn new(dims: &'a [usize], strides: &'a [usize], offset: usize) -> Self {
        let empty = dims.contains(&0);
        RowStarts {
            dims,
            strides,
            index: vec![0; dims.len()],
            next: (!empty).then_some(offset),
        }
    }
}

impl Iterator for RowStarts<'_> {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        let current = self.next?;
        // Advance the odometer: bump the last outer index, carrying into earlier dims.
        let mut offset = current;
        let mut d = self.dims.len();
        self.next = loop {
            if d == 0 {
                break None;
            }
            d -= 1;
            self.index[d] += 1;
            offset += self.strides[d];
            if self.index[d] < self.dims[d] {
                break Some(offset);
            }
            offset -= self.strides[d] * self.dims[d];
            self.index[d] = 0;
        };
        Some(current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(l: &Layout) -> Vec<usize> {
        let mut v = vec![];
        l.for_each_offset(|o| v.push(o));
        v
    }

    #[test]
    fn views_visit_the_right_elements() {
        let l = Layout::contiguous([2, 3]);
        assert_eq!(offsets(&l), vec![0, 1, 2, 3, 4, 5]);
        let t = l.transpose(0, 1);
        assert!(!t.is_contiguous());
        assert_eq!(offsets(&t), vec![0, 3, 1, 4, 2, 5]);
        let n = l.narrow(1, 1, 2).unwrap();
        assert_eq!(offsets(&n), vec![1, 2, 4, 5]);
        let b = Layout::contiguous([3])
            .broadcast_as(&Shape::from([2, 3]))
            .unwrap();
        assert_eq!(offsets(&b), vec![0, 1, 2, 0, 1, 2]);
        let p = Layout::contiguous([2, 3, 4]).permute(&[2, 0, 1]).unwrap();
        assert_eq!(p.dims(), &[4, 2, 3]);
        assert_eq!(offsets(&p)[..4], [0, 4, 8, 12]);
        assert!(Layout::contiguous([2, 3]).permute(&[0, 0]).is_err());
        assert!(l.narrow(1, 2, 2).is_err());
    }

    /// Every view `reshape` returns visits the same elements in the same order as the layout it
    /// came from; a contiguous layout always reshapes; a merge of transposed dims never does.
    #[test]
    fn reshape_views_keep_the_element_order() {
        let base = Layout::contiguous([2, 3, 4, 2]);
        let views = [
            base.clone(),
            base.transpose(1, 2),
            base.permute(&[2, 0, 3, 1]).unwrap(),
            base.narrow(2, 1, 2).unwrap(),
            base.narrow(1, 1, 1).unwrap(),
            base.narrow(3, 0, 1).unwrap().transpose(0, 1),
        ];
        let targets: [&[usize]; 13] = [
            &[48],
            &[24],
            &[6, 4],
            &[2, 3, 4],
            &[2, 3, 2, 2],
            &[2, 24],
            &[6, 8],
            &[2, 3, 8],
            &[2, 1, 3, 4, 2],
            &[16],
            &[2, 8],
            &[4, 2, 2],
            &[1, 2, 1, 3],
        ];
        let mut viewed = 0;
        for v in &views {
            for t in targets {
                let shape = Shape::from(t);
                if shape.numel() != v.shape().numel() {
                    continue;
                }
                if let Some(r) = v.reshape(&shape) {
                    assert_eq!(offsets(&r), offsets(v), "{v:?} as {t:?}");
                    viewed += 1;
                } else {
                    assert!(!v.is_contiguous(), "a contiguous layout must reshape");
                }
            }
        }
        assert!(viewed >= 9, "only {viewed} reshapes were views");
        // [B, N, 3·H·d] → [B, N, 3, H, d], narrowed to one of the three and squeezed: a view.
        let qkv = Layout::contiguous([2, 5, 3 * 4 * 8])
            .reshape(&Shape::from([2, 5, 3, 4, 8]))
            .unwrap();
        let k = qkv.narrow(2, 1, 1).unwrap();
        let squeezed = k.reshape(&Shape::from([2, 5, 4, 8])).unwrap();
        assert_eq!(offsets(&squeezed), offsets(&k));
        assert_eq!(
            squeezed
                .reshape(&Shape::from([2, 5, 32]))
                .map(|l| offsets(&l)),
            Some(offsets(&k))
        );
        // A transposed matrix cannot be flattened without a copy.
        assert!(Layout::contiguous([3, 4])
            .transpose(0, 1)
            .reshape(&Shape::from([12]))
            .is_none());
    }

    #[test]
    fn scalars_and_empty_tensors() {
        assert_eq!(offsets(&Layout::contiguous(())), vec![0]);
        assert_eq!(offsets(&Layout::contiguous([2, 0, 3])), Vec::<usize>::new());
    }
}
