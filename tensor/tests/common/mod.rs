//! Helpers shared by the test programs of this folder.
#![allow(dead_code)] // each test program uses a different subset

#[cfg(feature = "cuda")]
pub mod cuda;

use tensor::{DType, Device, Rng, Tensor};

pub const CPU: Device = Device::Cpu;

/// A [dims] F32 tensor of standard normal draws on the CPU.
pub fn rand(dims: &[usize], rng: &mut Rng) -> Tensor {
    Tensor::randn(dims.to_vec(), 0.0, 1.0, DType::F32, CPU, rng).unwrap()
}

/// The values of `t` (any device, any float dtype) as f64.
pub fn vals(t: &Tensor) -> Vec<f64> {
    t.to_device(CPU).unwrap().to_f64_vec().unwrap()
}

/// Fails unless `got` is within `tol` of `want` per element, relative to 1 + |want|.
pub fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}[{i}]: {g} vs {w}"
        );
    }
}
