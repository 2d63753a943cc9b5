//! Shapes: the size of each dimension, and the rules that relate shapes (broadcasting, dims).

use crate::{bail_shape, Result};
use std::fmt;

/// The size of each dimension, outermost first. A scalar has no dimensions.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape(Vec<usize>);

impl Shape {
    pub fn new(dims: impl Into<Vec<usize>>) -> Self {
        Shape(dims.into())
    }
    pub fn dims(&self) -> &[usize] {
        &self.0
    }
    pub fn rank(&self) -> usize {
        self.0.len()
    }
    /// Number of elements (1 for a scalar).
    pub fn numel(&self) -> usize {
        self.0.iter().product()
    }
    /// Row-major strides in elements for a contiguous tensor of this shape.
    pub fn contiguous_strides(&self) -> Vec<usize> {
        let mut strides = vec![1; self.rank()];
        for i in (0..self.rank().saturating_sub(1)).rev() {
            strides[i] = strides[i + 1] * self.0[i + 1];
        }
        strides
    }
    /// Resolves a possibly negative dim (-1 = last) against this rank.
    pub fn dim(&self, op: &'static str, dim: isize) -> Result<usize> {
        let rank = self.rank() as isize;
        let d = if dim < 0 { dim + rank } else { dim };
        if d < 0 || d >= rank {
            bail_shape!(op, "dim {dim} does not exist in a tensor of shape {self:?}");
        }
        Ok(d as usize)
    }
    /// The broadcast of two shapes (NumPy rules: align right, sizes equal or 1).
    pub fn broadcast(op: &'static str, a: &Shape, b: &Shape) -> Result<Shape> {
        let rank = a.rank().max(b.rank());
        let mut out = vec![0; rank];
        for (i, o) in out.iter_mut().enumerate() {
            let da = dim_from_right(a, rank - 1 - i);
            let db = dim_from_right(b, rank - 1 - i);
            *o = match (da, db) {
                (x, y) if x == y => x,
                (1, y) => y,
                (x, 1) => x,
                _ => bail_shape!(op, "cannot broadcast {a:?} with {b:?}"),
            };
        }
        Ok(Shape(out))
    }
    /// Splits the shape around `dim` into (product before, size of dim, product after).
    pub fn split_at_dim(&self, dim: usize) -> (usize, usize, usize) {
        let outer = self.0[..dim].iter().product();
        let inner = self.0[dim + 1..].iter().product();
        (outer, self.0[dim], inner)
    }
}

/// The size of dimension `i` counted from the right (0 = last), 1 if the shape is shorter.
fn dim_from_right(s: &Shape, i: usize) -> usize {
    if i < s.rank() {
        s.0[s.rank() - 1 - i]
    } else {
        1
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl From<&[usize]> for Shape {
    fn from(d: &[usize]) -> Self {
        Shape(d.to_vec())
    }
}
impl From<Vec<usize>> for Shape {
    fn from(d: Vec<usize>) -> Self {
        Shape(d)
    }
}
impl<const N: usize> From<[usize; N]> for Shape {
    fn from(d: [usize; N]) -> Self {
        Shape(d.to_vec())
    }
}
impl From<&Shape> for Shape {
    fn from(s: &Shape) -> Self {
        s.clone()
    }
}
impl From<()> for Shape {
    fn from(_: ()) -> Self {
        Shape(vec![])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_rules() {
        let s = |d: &[usize]| Shape::from(d);
        assert_eq!(
            Shape::broadcast("t", &s(&[4, 1, 3]), &s(&[5, 1])).unwrap(),
            s(&[4, 5, 3])
        );
        assert_eq!(
            Shape::broadcast("t", &s(&[]), &s(&[2, 2])).unwrap(),
            s(&[2, 2])
        );
        assert!(Shape::broadcast("t", &s(&[3]), &s(&[4])).is_err());
    }

    #[test]
    fn strides_and_dims() {
        let s = Shape::from([2, 3, 4]);
        assert_eq!(s.contiguous_strides(), vec![12, 4, 1]);
        assert_eq!(s.dim("t", -1).unwrap(), 2);
        assert!(s.dim("t", 3).is_err());
        assert_eq!(s.split_at_dim(1), (2, 3, 4));
    }
}
