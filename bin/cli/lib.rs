//! Helpers shared by the binaries: plots, the metrics log, allocator tuning, error reporting.

pub mod alloc;
pub mod metrics;
pub mod plot;

use std::process::ExitCode;

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
