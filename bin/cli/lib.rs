//! Helpers shared by the binaries.
pub mod plot;
