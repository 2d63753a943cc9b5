//! # nn
//!
//! The layers PGM and MDLM are built from, on top of `autograd::Var`:
//! [`params`] (the parameter store and its binding to a tape), [`layers`] (Linear, LayerNorm,
//! Embedding, MLP, dropout), [`conditioning`] (time embedding, adaLN, sinusoidal features),
//! [`attention`] (masked dense and gathered partition attention, RoPE tables) and
//! [`checkpoint`] (safetensors files with a JSON config beside them).

pub mod attention;
pub mod checkpoint;
pub mod conditioning;
pub mod layers;
pub mod optim;
pub mod params;

pub use params::{Bound, Init, Param, ParamStore};
