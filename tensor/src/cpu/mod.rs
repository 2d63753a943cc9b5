//! The CPU backend: storage as plain vectors, and kernels that run on rayon's thread pool when
//! a tensor is large enough for the split to pay.
//!
//! Kernels are generic over [`Float`] (f32 for work, f64 for gradient checks). They receive
//! contiguous slices unless their doc says they take a [`Layout`](crate::Layout).

pub mod attention;
pub mod elementwise;
pub mod gemm;
pub mod index;
pub mod matmul;
pub mod norm;
pub mod reduce;
pub mod rope;

use crate::{DType, WithDType};
use half::{bf16, f16};
use std::ops::{Add, AddAssign, Div, Mul, Neg, Sub};

/// Work below this many elements stays on the calling thread: splitting costs more than it saves.
pub const PARALLEL_MIN_ELEMS: usize = 1 << 15;

/// The data of a CPU tensor, one variant per dtype.
#[derive(Clone, Debug, PartialEq)]
pub enum CpuStorage {
    F32(Vec<f32>),
    F64(Vec<f64>),
    BF16(Vec<bf16>),
    F16(Vec<f16>),
    U32(Vec<u32>),
    U8(Vec<u8>),
}

impl CpuStorage {
    pub fn dtype(&self) -> DType {
        match self {
            CpuStorage::F32(_) => DType::F32,
            CpuStorage::F64(_) => DType::F64,
            CpuStorage::BF16(_) => DType::BF16,
            CpuStorage::F16(_) => DType::F16,
            CpuStorage::U32(_) => DType::U32,
            CpuStorage::U8(_) => DType::U8,
        }
    }
    pub fn len(&self) -> usize {
        match self {
            CpuStorage::F32(v) => v.len(),
            CpuStorage::F64(v) => v.len(),
            CpuStorage::BF16(v) => v.len(),
            CpuStorage::F16(v) => v.len(),
            CpuStorage::U32(v) => v.len(),
            CpuStorage::U8(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The float types CPU kernels compute in.
pub trait Float:
    WithDType
    + gemm::GemmScalar
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + std::iter::Sum
{
    const ZERO: Self;
    const ONE: Self;
    const NEG_INFINITY: Self;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn sqrt(self) -> Self;
    fn tanh(self) -> Self;
    fn max(self, other: Self) -> Self;
    fn min(self, other: Self) -> Self;
}

macro_rules! float_impl {
    ($t:ty) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const NEG_INFINITY: Self = <$t>::NEG_INFINITY;
            #[inline(always)]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline(always)]
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            #[inline(always)]
            fn max(self, other: Self) -> Self {
                <$t>::max(self, other)
            }
            #[inline(always)]
            fn min(self, other: Self) -> Self {
                <$t>::min(self, other)
            }
        }
    };
}
float_impl!(f32);
float_impl!(f64);
