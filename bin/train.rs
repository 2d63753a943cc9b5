//! `cargo run --release --bin train`: trains a PGM or the MDLM baseline.
//!
//! The trainer is not part of the project yet: the tensor core and autograd are. Until it
//! lands this binary says so and exits with status 2.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "train: not available yet. pgm-rs currently provides the tensor library (CPU backend, \
         optional CUDA storage) and the tape-based autograd; the PGM/MDLM networks, datasets \
         and the trainer come next. Run the test suite with `cargo test --workspace --release`."
    );
    ExitCode::from(2)
}
