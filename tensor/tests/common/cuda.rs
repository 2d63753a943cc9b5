//! Helpers of the GPU test programs: opening the GPU or skipping, and comparing with the CPU.

use tensor::{DType, Device, Tensor};

pub const GPU: Device = Device::Cuda(0);

/// True when a GPU can be opened; otherwise prints that `test` is skipped and why, or fails
/// when `PGM_REQUIRE_GPU` is set (CI sets it when it runs these tests on the CUDA emulator).
pub fn gpu_or_skip(test: &str) -> bool {
    match tensor::cuda::stream(0) {
        Ok(_) => true,
        Err(e) if std::env::var_os("PGM_REQUIRE_GPU").is_some() => {
            panic!("{test}: PGM_REQUIRE_GPU is set but no GPU opens: {e}")
        }
        Err(_) => {
            eprintln!("SKIPPED {test}: no CUDA device");
            false
        }
    }
}

/// `t` on the GPU.
pub fn gpu(t: &Tensor) -> Tensor {
    t.to_device(GPU).unwrap()
}

/// Fails unless `got` (any device, any float dtype) is within `tol` of `want`, relative to
/// max(1, |want|) per element.
pub fn close(what: &str, got: &Tensor, want: &Tensor, tol: f64) {
    assert_eq!(got.dims(), want.dims(), "{what}: shapes");
    let g = got.to_device(Device::Cpu).unwrap().to_f64_vec().unwrap();
    let w = want.to_device(Device::Cpu).unwrap().to_f64_vec().unwrap();
    let mut worst = 0f64;
    for (a, b) in g.iter().zip(&w) {
        if a.is_infinite() || b.is_infinite() {
            assert_eq!(a, b, "{what}: infinities differ");
            continue;
        }
        worst = worst.max((a - b).abs() / b.abs().max(1.0));
    }
    assert!(
        worst < tol,
        "{what}: max relative error {worst:e} ≥ {tol:e}"
    );
}

/// The same tensor rounded to bf16, then back to f32 on the CPU (the reference's input).
pub fn bf16_round(t: &Tensor) -> Tensor {
    t.to_dtype(DType::BF16)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
}
