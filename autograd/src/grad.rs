//! The gradient flowing into one tape entry during the reverse pass: dense, or the slices that
//! `narrow` hands back (each the gradient of one part of its input along a dim, zeros
//! elsewhere). Slices of one input are put together with a single `cat` when that input's
//! gradient is needed, instead of each being zero-padded to the input's shape and summed: the
//! q, k and v cut from one packed projection give it back one write of the whole gradient
//! rather than three padded copies and two sums.

use tensor::{Result, Shape, Tensor};

/// What a backward rule returns for one input.
pub(crate) enum Grad {
    /// The whole gradient.
    Dense(Tensor),
    /// `value` is the gradient of entries `start..start + len` of dim `dim` of an input shaped
    /// `full` (len = `value`'s size along `dim`); the rest of the gradient is zero.
    Slice {
        dim: usize,
        start: usize,
        value: Tensor,
        full: Shape,
    },
}

/// The gradient gathered so far for one tape entry.
pub(crate) enum Pending {
    Dense(Tensor),
    /// Non-overlapping slices along `dim` of a gradient shaped `full`: (start, value).
    Slices {
        dim: usize,
        full: Shape,
        parts: Vec<(usize, Tensor)>,
    },
}

impl Pending {
    pub(crate) fn new(g: Grad) -> Pending {
        match g {
            Grad::Dense(t) => Pending::Dense(t),
            Grad::Slice {
                dim,
                start,
                value,
                full,
            } => Pending::Slices {
                dim,
                full,
                parts: vec![(start, value)],
            },
        }
    }

    /// Adds `g`: a slice along the same dim that overlaps none of the held ones is kept as it
    /// is; anything else is summed densely.
    pub(crate) fn add(self, g: Grad) -> Result<Pending> {
        match (self, g) {
            (
                Pending::Slices {
                    dim,
                    full,
                    mut parts,
                },
                Grad::Slice {
                    dim: d,
                    start,
                    value,
                    ..
                },
            ) if d == dim && parts.iter().all(|p| disjoint(p, (start, &value), dim)) => {
                parts.push((start, value));
                Ok(Pending::Slices { dim, full, parts })
            }
            (held, g) => {
                let sum = held.into_tensor()?.add(&Pending::new(g).into_tensor()?)?;
                Ok(Pending::Dense(sum))
            }
        }
    }

    /// The gradient as one tensor: the slices in order along their dim, zeros in the gaps.
    pub(crate) fn into_tensor(self) -> Result<Tensor> {
        let (dim, full, mut parts) = match self {
            Pending::Dense(t) => return Ok(t),
            Pending::Slices { dim, full, parts } => (dim, full, parts),
        };
        parts.sort_by_key(|&(start, _)| start);
        let (dtype, device) = (parts[0].1.dtype(), parts[0].1.device());
        let zeros = |n: usize| {
            let mut dims = full.dims().to_vec();
            dims[dim] = n;
            Tensor::zeros(dims, dtype, device)
        };
        let mut pieces = Vec::with_capacity(2 * parts.len() + 1);
        let mut at = 0;
        for (start, value) in parts {
            if start > at {
                pieces.push(zeros(start - at)?);
            }
            at = start + value.dims()[dim];
            pieces.push(value);
        }
        if at < full.dims()[dim] {
            pieces.push(zeros(full.dims()[dim] - at)?);
        }
        let refs: Vec<&Tensor> = pieces.iter().collect();
        Tensor::cat(&refs, dim as isize)
    }
}

/// True when slice `a` = (start, value) and slice `b` share no entry along `dim`.
fn disjoint(a: &(usize, Tensor), b: (usize, &Tensor), dim: usize) -> bool {
    let (a_end, b_end) = (a.0 + a.1.dims()[dim], b.0 + b.1.dims()[dim]);
    a_end <= b.0 || b_end <= a.0
}
