//! Helpers shared by the binaries: plots, the metrics log, allocator tuning, error reporting.

pub mod alloc;
pub mod metrics;
pub mod plot;
pub mod sampling_report;

use std::process::ExitCode;
use tensor::{DType, Device};

/// The `--dtype` of the binaries: what the network computes in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Precision {
    F32,
    /// bf16 activations and matmuls (f32 accumulation); GPU only, the CPU kernels compute in
    /// f32 and f64.
    Bf16,
}

impl Precision {
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::Bf16 => DType::BF16,
        }
    }
    /// Fails, saying what to change, when `device` cannot compute in this precision.
    pub fn check(self, device: Device) -> Result<(), String> {
        match (self, device) {
            (Precision::Bf16, Device::Cpu) => Err(
                "--dtype bf16 computes on a GPU only (the CPU kernels compute in f32 and f64): add --device cuda, or drop --dtype".into(),
            ),
            _ => Ok(()),
        }
    }
}

/// Prints `error: …` (with the chain of causes) and returns exit code 1, for a binary's main.
pub fn report(result: Result<(), Box<dyn std::error::Error>>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            let mut source = e.source();
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            ExitCode::FAILURE
        }
    }
}
