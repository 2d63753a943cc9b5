//! Rotary position embedding on `Var`s; the backward is the inverse rotation.

use crate::Var;
use tensor::{Result, Tensor};

impl Var {
    /// RoPE of x `self` [B, N, H, d] (any strides) with the constant tables `cos`, `sin`
    /// [B, N, d/2] from `Tensor::rope_tables`: out = (x1·cos − x2·sin, x2·cos + x1·sin),
    /// contiguous [B, N, H, d]. A rotation is orthogonal, so dx is dy rotated by −angle.
    pub fn rope(&self, cos: &Tensor, sin: &Tensor) -> Result<Var> {
        let y = self.value().rope(cos, sin)?;
        let (cos, sin) = (cos.clone(), sin.clone());
        Var::record("rope", &[self], y, move |dy| {
            Ok(vec![Some(dy.rope_backward(&cos, &sin)?)])
        })
    }
}
