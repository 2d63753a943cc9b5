//! Elementwise ops and their backward rules. Binary ops broadcast; their backward sums the
//! gradient back to each input's shape (`sum_to`).

use crate::Var;
use tensor::op::UnaryOp;
use tensor::{DType, Result, Tensor};

impl Var {
    /// y = op(x); dx = dy · op'(x), in one fused pass.
    pub fn unary(&self, op: UnaryOp) -> Result<Var> {
        let y = self.value().unary(op)?;
        let (x, y_saved) = (self.value().clone(), y.clone());
        Var::record(op.name(), &[self], y, move |dy| {
            Ok(vec![Some(x.unary_backward(op, &y_saved, dy)?)])
        })
    }
    pub fn neg(&self) -> Result<Var> {
        self.unary(UnaryOp::Neg)
    }
    pub fn exp(&self) -> Result<Var> {
        self.unary(UnaryOp::Exp)
    }
    pub fn log(&self) -> Result<Var> {
        self.unary(UnaryOp::Log)
    }
    pub fn sqrt(&self) -> Result<Var> {
        self.unary(UnaryOp::Sqrt)
    }
    pub fn sqr(&self) -> Result<Var> {
        self.unary(UnaryOp::Sqr)
    }
    pub fn recip(&self) -> Result<Var> {
        self.unary(UnaryOp::Recip)
    }
    pub fn tanh(&self) -> Result<Var> {
        self.unary(UnaryOp::Tanh)
    }
    pub fn sigmoid(&self) -> Result<Var> {
        self.unary(UnaryOp::Sigmoid)
    }
    pub fn silu(&self) -> Result<Var> {
        self.unary(UnaryOp::Silu)
    }
    pub fn gelu_tanh(&self) -> Result<Var> {
        self.unary(UnaryOp::GeluTanh)
    }

    /// y = x · mul + add; dx = dy · mul.
    pub fn affine(&self, mul: f64, add: f64) -> Result<Var> {
        let y = self.value().affine(mul, add)?;
        Var::record("affine", &[self], y, move |dy| {
            Ok(vec![Some(dy.mul_scalar(mul)?)])
        })
    }
    pub fn add_scalar(&self, v: f64) -> Result<Var> {
        self.affine(1.0, v)
    }
    pub fn mul_scalar(&self, v: f64) -> Result<Var> {
        self.affine(v, 0.0)
    }

    /// a + b; da = dy, db = dy (each summed to its shape).
    pub fn add(&self, rhs: &Var) -> Result<Var> {
        let y = self.value().add(rhs.value())?;
        let (sa, sb) = (self.shape().clone(), rhs.shape().clone());
        Var::record("add", &[self, rhs], y, move |dy| {
            Ok(vec![Some(dy.sum_to(&sa)?), Some(dy.sum_to(&sb)?)])
        })
    }
    /// a − b; da = dy, db = −dy.
    pub fn sub(&self, rhs: &Var) -> Result<Var> {
        let y = self.value().sub(rhs.value())?;
        let (sa, sb) = (self.shape().clone(), rhs.shape().clone());
        Var::record("sub", &[self, rhs], y, move |dy| {
            Ok(vec![Some(dy.sum_to(&sa)?), Some(dy.neg()?.sum_to(&sb)?)])
        })
    }
    /// a · b; da = dy · b, db = dy · a.
    pub fn mul(&self, rhs: &Var) -> Result<Var> {
        let y = self.value().mul(rhs.value())?;
        let (a, b) = (self.value().clone(), rhs.value().clone());
        let need = (self.is_tracked(), rhs.is_tracked());
        Var::record("mul", &[self, rhs], y, move |dy| {
            let da = need.0.then(|| dy.mul(&b)?.sum_to(a.shape())).transpose()?;
            let db = need.1.then(|| dy.mul(&a)?.sum_to(b.shape())).transpose()?;
            Ok(vec![da, db])
        })
    }
    /// a / b; da = dy / b, db = −dy · a / b².
    pub fn div(&self, rhs: &Var) -> Result<Var> {
        let y = self.value().div(rhs.value())?;
        let (a, b) = (self.value().clone(), rhs.value().clone());
        let need = (self.is_tracked(), rhs.is_tracked());
        Var::record("div", &[self, rhs], y, move |dy| {
            let da = need.0.then(|| dy.div(&b)?.sum_to(a.shape())).transpose()?;
            let db = need
                .1
                .then(|| dy.mul(&a)?.div(&b.sqr()?)?.neg()?.sum_to(b.shape()))
                .transpose()?;
            Ok(vec![da, db])
        })
    }

    /// Picks `on_true` where the U8 mask is nonzero, `on_false` elsewhere; each input's
    /// gradient is dy where it was picked and 0 elsewhere.
    pub fn where_cond(mask: &Tensor, on_true: &Var, on_false: &Var) -> Result<Var> {
        let y = mask.where_cond(on_true.value(), on_false.value())?;
        let (m, st, sf) = (
            mask.clone(),
            on_true.shape().clone(),
            on_false.shape().clone(),
        );
        Var::record("where_cond", &[on_true, on_false], y, move |dy| {
            let zero = Tensor::zeros((), dy.dtype(), dy.device())?;
            let dt = m.where_cond(dy, &zero)?.sum_to(&st)?;
            let df = m.where_cond(&zero, dy)?.sum_to(&sf)?;
            Ok(vec![Some(dt), Some(df)])
        })
    }

    /// Sets elements to `value` where the mask is nonzero; those elements get no gradient.
    pub fn masked_fill(&self, mask: &Tensor, value: f64) -> Result<Var> {
        let y = self.value().masked_fill(mask, value)?;
        let m = mask.clone();
        Var::record("masked_fill", &[self], y, move |dy| {
            Ok(vec![Some(dy.masked_fill(&m, 0.0)?)])
        })
    }

    /// The same values in another float dtype; the gradient is cast back.
    pub fn to_dtype(&self, dtype: DType) -> Result<Var> {
        let from = self.value().dtype();
        let y = self.value().to_dtype(dtype)?;
        Var::record("to_dtype", &[self], y, move |dy| {
            Ok(vec![Some(dy.to_dtype(from)?)])
        })
    }
}
