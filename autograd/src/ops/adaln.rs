//! The two fused ops of an adaLN (DiT) block, each with its backward: the modulated layer norm
//! LN(x)·(1 + scale) + shift, and the gated residual h + gate ⊙ dropout(branch). Their shift,
//! scale and gate are per-sequence vectors [G, 1, D] broadcast over the N tokens, G = B or 1.

use crate::Var;
use tensor::{bail_shape, Result, Shape};

/// G for per-sequence vectors `v` (all shaped alike) of x [B, N, D]: each must be [G, 1, D]
/// with G = B or 1; fails naming `op` otherwise.
fn per_sequence(op: &'static str, x: &Shape, v: &[&Shape]) -> Result<usize> {
    let [b, _, d] = x.dims()[..] else {
        bail_shape!(op, "x must be [B, N, D], got {:?}", x);
    };
    let g = v[0].dims().first().copied().unwrap_or(0);
    if v.iter().any(|s| s.dims() != [g, 1, d]) || (g != 1 && g != b) {
        bail_shape!(op, "{v:?} must all be [B or 1, 1, D] for x {x:?}");
    }
    Ok(g)
}

impl Var {
    /// adaLN's modulate(LN(x; weight), shift, scale) = LN(x)·weight·(1 + scale) + shift as one
    /// fused op (`layer_norm_affine` with mul = weight·(1 + scale), add = shift): x [B, N, D],
    /// weight `[D]`, shift and scale `[G, 1, D]`.
    /// Gradients, from the per-sequence sums A = Σ dy·x̂ and S = Σ dy [G, D]:
    /// d shift = S, d scale = A·weight, d weight = Σ_G A·(1 + scale).
    pub fn layer_norm_modulate(
        &self,
        weight: &Var,
        shift: &Var,
        scale: &Var,
        eps: f64,
    ) -> Result<Var> {
        let (x, cond) = (self.value(), shift.shape().clone());
        let g = per_sequence("layer_norm_modulate", x.shape(), &[&cond, scale.shape()])?;
        let d = cond.dims()[2];
        if weight.shape().dims() != [d] {
            bail_shape!(
                "layer_norm_modulate",
                "weight {:?} must be [D] = [{d}]",
                weight.shape()
            );
        }
        let w = weight.value().reshape([1, d])?;
        let one_plus_scale = scale.value().reshape([g, d])?.affine(1.0, 1.0)?; // [G, D]
        let mul = one_plus_scale.mul(&w)?;
        let (y, stats) = x.layer_norm_affine(&mul, &shift.value().reshape([g, d])?, eps)?;
        let x = x.clone();
        let inputs = [self, weight, shift, scale];
        Var::record("layer_norm_modulate", &inputs, y, move |dy| {
            let (dx, sum_dy_xhat, sum_dy) = x.layer_norm_affine_backward(&mul, &stats, dy)?;
            let dw = sum_dy_xhat.mul(&one_plus_scale)?.sum(0, false)?;
            let dscale = sum_dy_xhat.mul(&w)?.reshape(cond.clone())?;
            let dshift = sum_dy.reshape(cond.clone())?;
            Ok(vec![Some(dx), Some(dw), Some(dshift), Some(dscale)])
        })
    }

    /// The gated residual h + gate ⊙ dropout(branch) as one fused op (`gated_residual`): h
    /// (`self`) and branch [B, N, D], gate [G, 1, D]. `dropout` = Some((p, seed)) drops with
    /// the mask `Tensor::dropout_mask(shape, p, seed)`, recomputed in the backward rather than
    /// stored. Gradients: d h = dy, d branch = dy ⊙ gate ⊙ mask, d gate = Σ_N dy ⊙ dropout(branch).
    pub fn gated_residual(
        &self,
        gate: &Var,
        branch: &Var,
        dropout: Option<(f64, u64)>,
    ) -> Result<Var> {
        let shape = gate.shape().clone();
        let g = per_sequence("gated_residual", self.shape(), &[&shape])?;
        let gate_rows = gate.value().reshape([g, shape.dims()[2]])?; // [G, D]
        let y = self
            .value()
            .gated_residual(&gate_rows, branch.value(), dropout)?;
        let b = branch.value().clone();
        Var::record("gated_residual", &[self, gate, branch], y, move |dy| {
            let (d_branch, d_gate) = gate_rows.gated_residual_backward(&b, dropout, dy)?;
            Ok(vec![
                Some(dy.clone()),
                Some(d_gate.reshape(shape.clone())?),
                Some(d_branch),
            ])
        })
    }
}
