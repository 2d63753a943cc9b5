//! The CPU backend: storage as plain vectors, and kernels that run on rayon's thread pool when
//! a tensor is large enough for the split to pay.
//!
//! Kernels are generic over [`Float`] (f32 for work, f64 for gradient checks). They receive
//! contiguous slices unless their doc says they take a [`Layout`](crate::Layout).

pub mod attention;
pub mod block_cache;
pub mod cross_entropy;
pub mod elementwise;
pub mod gemm;
pub mod group_sums;
pub mod index;
pub mod matmul;
pub mod norm;
pub mod reduce;
pub mod residual;
pub mod rope;
mod rows;
pub mod sample;

pub use block_cache::BlockCache;

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
    ($t:ty, $tanh:expr) => {
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
                $tanh(self)
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
float_impl!(f32, tanh_f32);
float_impl!(f64, f64::tanh);

/// tanh for f32 as a rational function x·P(x²)/Q(x²) on x clamped to ±7.9 (where tanh is ±1 in
/// f32), max error a few ulp. Unlike libm's tanhf it has no branches or calls, so loops over it
/// vectorise; GELU calls it twice per element in training. Coefficients: Eigen's `ptanh` for float.
#[inline(always)]
fn tanh_f32(x: f32) -> f32 {
    const P: [f32; 7] = [
        4.893_524_6e-3,
        6.372_619_3e-4,
        1.485_722_4e-5,
        5.122_297e-8,
        -8.604_672e-11,
        2.000_188e-13,
        -2.760_768_5e-16,
    ];
    const Q: [f32; 4] = [4.893_525e-3, 2.268_434_6e-3, 1.185_347e-4, 1.198_258_4e-6];
    let x = x.clamp(-7.905_311, 7.905_311);
    let x2 = x * x;
    // Horner with plain multiply-adds: `f32::mul_add` is a libm call unless the build enables
    // FMA, and a call per term would stop the loops around this from vectorising.
    let p = P.iter().rev().skip(1).fold(P[6], |acc, &c| acc * x2 + c);
    let q = Q.iter().rev().skip(1).fold(Q[3], |acc, &c| acc * x2 + c);
    x * p / q
}

#[cfg(test)]
mod tests {
    #[test]
    fn fast_tanh_matches_libm() {
        let mut worst = 0f64;
        for i in -20_000..=20_000 {
            let x = i as f32 * 1e-3;
            let err = (super::tanh_f32(x) as f64 - (x as f64).tanh()).abs();
            worst = worst.max(err);
        }
        assert!(worst < 5e-7, "max |error| {worst}");
        assert!((super::tanh_f32(50.0) - 1.0).abs() < 2e-7);
        assert!(super::tanh_f32(f32::NAN).is_nan());
    }
}
