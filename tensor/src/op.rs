//! The elementwise operations, each with its scalar forward and its derivative side by side.
//! CPU kernels apply them per element; the autograd crate uses `derivative` for backward rules.

use crate::cpu::Float;

/// One-input elementwise functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    Neg,
    Exp,
    Log,
    Sqrt,
    Sqr,
    Recip,
    Tanh,
    Sigmoid,
    /// x · sigmoid(x)
    Silu,
    /// GELU with the tanh approximation: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
    GeluTanh,
}

const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
const GELU_C: f64 = 0.044_715;

impl UnaryOp {
    pub fn name(self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Sqr => "sqr",
            UnaryOp::Recip => "recip",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Silu => "silu",
            UnaryOp::GeluTanh => "gelu_tanh",
        }
    }

    /// y = f(x)
    #[inline(always)]
    pub fn forward<T: Float>(self, x: T) -> T {
        match self {
            UnaryOp::Neg => -x,
            UnaryOp::Exp => x.exp(),
            UnaryOp::Log => x.ln(),
            UnaryOp::Sqrt => x.sqrt(),
            UnaryOp::Sqr => x * x,
            UnaryOp::Recip => T::ONE / x,
            UnaryOp::Tanh => x.tanh(),
            UnaryOp::Sigmoid => sigmoid(x),
            UnaryOp::Silu => x * sigmoid(x),
            UnaryOp::GeluTanh => {
                let inner = T::from_f64(SQRT_2_OVER_PI) * (x + T::from_f64(GELU_C) * x * x * x);
                T::from_f64(0.5) * x * (T::ONE + inner.tanh())
            }
        }
    }

    /// dy/dx, given x and y = f(x) (whichever is cheaper to use).
    #[inline(always)]
    pub fn derivative<T: Float>(self, x: T, y: T) -> T {
        match self {
            UnaryOp::Neg => -T::ONE,
            UnaryOp::Exp => y,
            UnaryOp::Log => T::ONE / x,
            UnaryOp::Sqrt => T::from_f64(0.5) / y,
            UnaryOp::Sqr => T::from_f64(2.0) * x,
            UnaryOp::Recip => -y * y,
            UnaryOp::Tanh => T::ONE - y * y,
            UnaryOp::Sigmoid => y * (T::ONE - y),
            UnaryOp::Silu => {
                let s = sigmoid(x);
                s * (T::ONE + x * (T::ONE - s))
            }
            UnaryOp::GeluTanh => {
                let (c, k) = (T::from_f64(SQRT_2_OVER_PI), T::from_f64(GELU_C));
                let t = (c * (x + k * x * x * x)).tanh();
                let half = T::from_f64(0.5);
                half * (T::ONE + t)
                    + half * x * (T::ONE - t * t) * c * (T::ONE + T::from_f64(3.0) * k * x * x)
            }
        }
    }
}

#[inline(always)]
fn sigmoid<T: Float>(x: T) -> T {
    T::ONE / (T::ONE + (-x).exp())
}

/// Two-input elementwise functions (inputs broadcast against each other).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Maximum,
    Minimum,
}

impl BinaryOp {
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Maximum => "maximum",
            BinaryOp::Minimum => "minimum",
        }
    }
    #[inline(always)]
    pub fn apply<T: Float>(self, a: T, b: T) -> T {
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
            BinaryOp::Maximum => a.max(b),
            BinaryOp::Minimum => a.min(b),
        }
    }
}

/// Comparisons; the result is a u8 mask (1 = true).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    #[inline(always)]
    pub fn apply<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
        }
    }
}

/// Reductions over one dim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    Sum,
    Max,
    Min,
}
