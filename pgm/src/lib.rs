//! # pgm
//!
//! The networks of SPEC §3–5: the partition generative model ([`PgmNetwork`]) and the
//! masked-diffusion baseline ([`MdlmNetwork`]), their configurations and presets ([`config`]),
//! the noise schedule ([`schedule`]) and the losses ([`loss`]). Checkpoints: [`checkpoint`].

pub mod attend;
pub mod blocks;
pub mod checkpoint;
pub mod config;
pub mod group_swap;
pub mod loss;
pub mod mdlm_net;
pub mod output;
pub mod pgm_net;
pub mod schedule;
pub mod trainer;

pub use config::{ModelConfig, ModelKind};
pub use mdlm_net::MdlmNetwork;
pub use pgm_net::{InferenceInput, PgmNetwork};
