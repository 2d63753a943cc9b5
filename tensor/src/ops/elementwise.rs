//! Elementwise ops: unary functions, scalar forms, broadcasting binary ops and comparisons,
//! `where`/`masked_fill`, and dtype casts.

use super::{float_map, float_map2, same_device};
use crate::cpu::{elementwise as k, CpuStorage, Float};
use crate::op::{BinaryOp, CmpOp, UnaryOp};
use crate::{DType, Error, Result, Shape, Tensor};

impl Tensor {
    /// y = op(x) elementwise (float dtypes).
    pub fn unary(&self, op: UnaryOp) -> Result<Tensor> {
        let x = self.contiguous()?;
        #[cfg(feature = "cuda")]
        if x.device().is_cuda() {
            return crate::cuda::elementwise::unary(&x, op);
        }
        let out = float_map!(op.name(), x.cpu(op.name())?, |v| k::unary(v, op));
        Ok(Tensor::from_cpu(out, self.shape()))
    }
    pub fn neg(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Neg)
    }
    pub fn exp(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Exp)
    }
    pub fn log(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Log)
    }
    pub fn sqrt(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sqrt)
    }
    pub fn sqr(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sqr)
    }
    pub fn recip(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Recip)
    }
    pub fn tanh(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Tanh)
    }
    pub fn sigmoid(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sigmoid)
    }
    pub fn silu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Silu)
    }
    pub fn gelu_tanh(&self) -> Result<Tensor> {
        self.unary(UnaryOp::GeluTanh)
    }

    /// The backward of `unary`: dx = dy · op'(x), given x (self), y = op(x) and dy, in one pass.
    pub fn unary_backward(&self, op: UnaryOp, y: &Tensor, dy: &Tensor) -> Result<Tensor> {
        if self.shape() != y.shape() || self.shape() != dy.shape() {
            crate::bail_shape!(
                "unary_backward",
                "x {:?}, y {:?}, dy {:?}",
                self.shape(),
                y.shape(),
                dy.shape()
            );
        }
        let (x, y, dy) = (self.contiguous()?, y.contiguous()?, dy.contiguous()?);
        let name = "unary_backward";
        same_device(name, &[&x, &y, &dy])?;
        #[cfg(feature = "cuda")]
        if x.device().is_cuda() {
            return crate::cuda::elementwise::unary_backward(&x, &y, &dy, op);
        }
        let out = match (x.cpu(name)?, y.cpu(name)?, dy.cpu(name)?) {
            (CpuStorage::F32(x), CpuStorage::F32(y), CpuStorage::F32(d)) => {
                CpuStorage::F32(k::unary_backward(x, y, d, op))
            }
            (CpuStorage::F64(x), CpuStorage::F64(y), CpuStorage::F64(d)) => {
                CpuStorage::F64(k::unary_backward(x, y, d, op))
            }
            _ => return Err(Error::dtype(name, "x, y and dy must all be F32 or all F64")),
        };
        Ok(Tensor::from_cpu(out, self.shape()))
    }

    /// x · mul + add elementwise.
    pub fn affine(&self, mul: f64, add: f64) -> Result<Tensor> {
        let x = self.contiguous()?;
        #[cfg(feature = "cuda")]
        if x.device().is_cuda() {
            return crate::cuda::elementwise::affine(&x, mul, add);
        }
        let out = float_map!("affine", x.cpu("affine")?, |v| affine(v, mul, add));
        Ok(Tensor::from_cpu(out, self.shape()))
    }
    pub fn add_scalar(&self, v: f64) -> Result<Tensor> {
        self.affine(1.0, v)
    }
    pub fn mul_scalar(&self, v: f64) -> Result<Tensor> {
        self.affine(v, 0.0)
    }

    /// a op b with NumPy broadcasting.
    pub fn binary(&self, rhs: &Tensor, op: BinaryOp) -> Result<Tensor> {
        let name = op.name();
        same_device(name, &[self, rhs])?;
        let shape = Shape::broadcast(name, self.shape(), rhs.shape())?;
        #[cfg(feature = "cuda")]
        if self.device().is_cuda() {
            return crate::cuda::elementwise::binary(self, rhs, &shape, op);
        }
        let (la, lb) = (
            self.layout().broadcast_as(&shape)?,
            rhs.layout().broadcast_as(&shape)?,
        );
        let out = float_map2!(name, self.cpu(name)?, rhs.cpu(name)?, |a, b| {
            k::map2(a, &la, b, &lb, |x, y| op.apply(x, y))
        });
        Ok(Tensor::from_cpu(out, shape))
    }
    pub fn add(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::Add)
    }
    pub fn sub(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::Sub)
    }
    pub fn mul(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::Mul)
    }
    pub fn div(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::Div)
    }
    pub fn maximum(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::Maximum)
    }
    pub fn minimum(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::Minimum)
    }

    /// Elementwise comparison with broadcasting; a U8 mask (1 = true). Any dtype, both alike.
    pub fn cmp(&self, rhs: &Tensor, op: CmpOp) -> Result<Tensor> {
        let name = "cmp";
        same_device(name, &[self, rhs])?;
        let shape = Shape::broadcast(name, self.shape(), rhs.shape())?;
        #[cfg(feature = "cuda")]
        if self.device().is_cuda() {
            return crate::cuda::elementwise::cmp(self, rhs, &shape, op);
        }
        let (la, lb) = (
            self.layout().broadcast_as(&shape)?,
            rhs.layout().broadcast_as(&shape)?,
        );
        let f = |ok: bool| ok as u8;
        let out = match (self.cpu(name)?, rhs.cpu(name)?) {
            (CpuStorage::F32(a), CpuStorage::F32(b)) => {
                k::map2(a, &la, b, &lb, |x, y| f(op.apply(x, y)))
            }
            (CpuStorage::F64(a), CpuStorage::F64(b)) => {
                k::map2(a, &la, b, &lb, |x, y| f(op.apply(x, y)))
            }
            (CpuStorage::U32(a), CpuStorage::U32(b)) => {
                k::map2(a, &la, b, &lb, |x, y| f(op.apply(x, y)))
            }
            (CpuStorage::U8(a), CpuStorage::U8(b)) => {
                k::map2(a, &la, b, &lb, |x, y| f(op.apply(x, y)))
            }
            (a, b) => {
                let msg = format!(
                    "operands must share a dtype (F32, F64, U32 or U8), got {:?} and {:?}",
                    a.dtype(),
                    b.dtype()
                );
                return Err(Error::dtype(name, msg));
            }
        };
        Ok(Tensor::from_cpu(CpuStorage::U8(out), shape))
    }

    /// Picks `on_true` where the U8 mask `self` is nonzero, `on_false` elsewhere; all three
    /// broadcast to a common shape.
    pub fn where_cond(&self, on_true: &Tensor, on_false: &Tensor) -> Result<Tensor> {
        let name = "where_cond";
        same_device(name, &[self, on_true, on_false])?;
        #[cfg(feature = "cuda")]
        if self.device().is_cuda() {
            let shape = Shape::broadcast(name, self.shape(), on_true.shape())?;
            let shape = Shape::broadcast(name, &shape, on_false.shape())?;
            return crate::cuda::elementwise::where_cond(self, on_true, on_false, &shape);
        }
        let CpuStorage::U8(c) = self.cpu(name)? else {
            return Err(Error::dtype(
                name,
                format!("condition must be U8, got {:?}", self.dtype()),
            ));
        };
        let shape = Shape::broadcast(name, self.shape(), on_true.shape())?;
        let shape = Shape::broadcast(name, &shape, on_false.shape())?;
        let lc = self.layout().broadcast_as(&shape)?;
        let (la, lb) = (
            on_true.layout().broadcast_as(&shape)?,
            on_false.layout().broadcast_as(&shape)?,
        );
        let out = float_map2!(name, on_true.cpu(name)?, on_false.cpu(name)?, |a, b| {
            k::map3(c, &lc, a, &la, b, &lb, |c, a, b| if c != 0 { a } else { b })
        });
        Ok(Tensor::from_cpu(out, shape))
    }

    /// Sets elements to `value` where the U8 mask (broadcast to self's shape) is nonzero.
    pub fn masked_fill(&self, mask: &Tensor, value: f64) -> Result<Tensor> {
        let fill = Tensor::scalar(value, self.dtype(), self.device())?;
        let out = mask.where_cond(&fill, self)?;
        if out.shape() != self.shape() {
            crate::bail_shape!(
                "masked_fill",
                "mask {:?} does not broadcast to {:?}",
                mask.shape(),
                self.shape()
            );
        }
        Ok(out)
    }

    /// The same values in another dtype (floats round to nearest; to integers, truncation).
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        let x = self.contiguous()?;
        #[cfg(feature = "cuda")]
        if x.device().is_cuda() {
            return crate::cuda::cast::cast(&x, dtype);
        }
        let out = cast_storage(x.cpu("to_dtype")?, dtype);
        Ok(Tensor::from_cpu(out, self.shape()))
    }
}

fn affine<T: Float>(v: &[T], mul: f64, add: f64) -> Vec<T> {
    let (m, a) = (T::from_f64(mul), T::from_f64(add));
    k::map(v, |x| x * m + a)
}

fn cast_storage(src: &CpuStorage, dtype: DType) -> CpuStorage {
    fn to<S: crate::WithDType>(v: &[S], dtype: DType) -> CpuStorage {
        match dtype {
            DType::F32 => CpuStorage::F32(k::cast(v)),
            DType::F64 => CpuStorage::F64(k::cast(v)),
            DType::BF16 => CpuStorage::BF16(k::cast(v)),
            DType::F16 => CpuStorage::F16(k::cast(v)),
            DType::U32 => CpuStorage::U32(k::cast(v)),
            DType::U8 => CpuStorage::U8(k::cast(v)),
        }
    }
    match src {
        CpuStorage::F32(v) => to(v, dtype),
        CpuStorage::F64(v) => to(v, dtype),
        CpuStorage::BF16(v) => to(v, dtype),
        CpuStorage::F16(v) => to(v, dtype),
        CpuStorage::U32(v) => to(v, dtype),
        CpuStorage::U8(v) => to(v, dtype),
    }
}
