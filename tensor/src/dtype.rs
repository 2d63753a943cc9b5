//! Element types. Floats compute in f32 (the working type) or f64 (gradient checks); bf16 and
//! f16 are storage types (cast to f32 to compute on the CPU); u32 holds indices (token ids,
//! positions, argmax results) and u8 holds boolean masks (nonzero = true).

use crate::cpu::CpuStorage;
use half::{bf16, f16};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F64,
    BF16,
    F16,
    U32,
    U8,
}

impl DType {
    /// Bytes per element.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F64 => 8,
            DType::F32 | DType::U32 => 4,
            DType::BF16 | DType::F16 => 2,
            DType::U8 => 1,
        }
    }
    pub fn is_float(self) -> bool {
        !matches!(self, DType::U32 | DType::U8)
    }
    /// The name used in checkpoints and messages ("F32", "BF16", ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "F32",
            DType::F64 => "F64",
            DType::BF16 => "BF16",
            DType::F16 => "F16",
            DType::U32 => "U32",
            DType::U8 => "U8",
        }
    }
}

/// A Rust type that can be stored in a tensor.
pub trait WithDType: Copy + Default + Send + Sync + std::fmt::Debug + PartialOrd + 'static {
    const DTYPE: DType;
    fn into_storage(data: Vec<Self>) -> CpuStorage;
    fn slice(storage: &CpuStorage) -> Option<&[Self]>;
    fn to_f64(self) -> f64;
    fn from_f64(v: f64) -> Self;
}

macro_rules! with_dtype {
    ($t:ty, $variant:ident, $to:expr, $from:expr) => {
        impl WithDType for $t {
            const DTYPE: DType = DType::$variant;
            fn into_storage(data: Vec<Self>) -> CpuStorage {
                CpuStorage::$variant(data)
            }
            fn slice(storage: &CpuStorage) -> Option<&[Self]> {
                match storage {
                    CpuStorage::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn to_f64(self) -> f64 {
                $to(self)
            }
            fn from_f64(v: f64) -> Self {
                $from(v)
            }
        }
    };
}

with_dtype!(f32, F32, |x: f32| x as f64, |v: f64| v as f32);
with_dtype!(f64, F64, |x: f64| x, |v: f64| v);
with_dtype!(bf16, BF16, |x: bf16| x.to_f64(), |v| bf16::from_f32(
    f32_round_to_odd(v)
));
with_dtype!(f16, F16, |x: f16| x.to_f64(), |v| f16::from_f32(
    f32_round_to_odd(v)
));
with_dtype!(u32, U32, |x: u32| x as f64, |v: f64| v as u32);
with_dtype!(u8, U8, |x: u8| x as f64, |v: f64| v as u8);

/// `v` rounded to f32 "to odd": truncated toward zero, with the last bit set when that lost
/// anything. Rounding the result to bf16 or f16 (at least 2 bits shorter) is then the correct
/// rounding of `v`. (The `half` crate's `from_f64` drops v's low 32 bits before rounding, and
/// with them the bits that decide a near-tie.)
fn f32_round_to_odd(v: f64) -> f32 {
    let nearest = v as f32;
    if !nearest.is_finite() || nearest as f64 == v {
        return nearest;
    }
    let mut bits = nearest.to_bits();
    if (nearest as f64).abs() > v.abs() {
        bits -= 1; // rounded away from zero: one step back toward it
    }
    f32::from_bits(bits | 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// f64 → bf16 / f16 through `from_f64` rounds as the direct f32 → bf16 / f16 rounding does
    /// for every f32 value (here a spread of bit patterns), and exactly for a near-tie that
    /// dropping the low bits would round down.
    #[test]
    fn half_precision_from_f64_rounds_correctly() {
        let near_tie = f32::from_bits(0x3F80_8001) as f64; // just above 1 + 2^-8
        assert_eq!(<bf16 as WithDType>::from_f64(near_tie).to_bits(), 0x3F81);
        let mut bits = 0x1234_5678u32;
        for _ in 0..200_000 {
            bits = bits.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let x = f32::from_bits(bits);
            if x.is_nan() {
                continue;
            }
            let b = <bf16 as WithDType>::from_f64(x as f64);
            assert_eq!(b.to_bits(), bf16::from_f32(x).to_bits(), "bf16 of {x:e}");
            let h = <f16 as WithDType>::from_f64(x as f64);
            assert_eq!(h.to_bits(), f16::from_f32(x).to_bits(), "f16 of {x:e}");
        }
    }
}
