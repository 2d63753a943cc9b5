//! Layers, attention variants, optimizers, parameter store and checkpoint I/O.

pub mod attention;
