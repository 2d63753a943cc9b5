//! # pgm
//!
//! The networks of SPEC §3–5: the partition generative model ([`PgmNetwork`]) and the
//! masked-diffusion baseline ([`MdlmNetwork`]), their configurations and presets ([`config`]),
//! the noise schedule ([`schedule`]), the losses ([`loss`]) and the samplers of SPEC §6
//! ([`sampler`]). Checkpoints: [`checkpoint`].

pub mod attend;
pub mod blocks;
pub mod checkpoint;
pub mod config;
pub mod group_swap;
pub mod loss;
pub mod mdlm_net;
pub mod output;
pub mod pgm_net;
pub mod sampler;
pub mod schedule;
pub mod trainer;

pub use config::{ModelConfig, ModelKind};
pub use mdlm_net::MdlmNetwork;
pub use pgm_net::{InferenceInput, PgmNetwork};
