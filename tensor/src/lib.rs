//! # tensor
//!
//! N-dimensional tensors for pgm-rs: a [`Shape`] and strides ([`Layout`]) over a shared,
//! immutable [`Storage`] on a [`Device`]. Views (reshape, transpose, permute, narrow, broadcast)
//! share storage; every op returns a new tensor. No gradients here: the `autograd` crate records
//! ops on a tape and uses the backward helpers this crate provides (`unary_backward`,
//! `softmax_backward`, `layer_norm_backward`, `index_add`, `scatter_add`, `sum_to`).
//!
//! Backends: the CPU (kernels in [`cpu`], parallel with rayon) and, with the `cuda` cargo
//! feature, CUDA GPUs through cudarc (loaded at run time, so the feature builds without CUDA).
//!
//! **Errors:** every fallible op returns [`Result`]; an [`Error`] names the op and the shapes,
//! dtypes or devices involved. Ops never panic on bad input.
//!
//! ```
//! use tensor::{Device, DType, Tensor};
//! let a = Tensor::from_vec(vec![1f32, 2., 3., 4., 5., 6.], [2, 3], Device::Cpu)?;
//! let b = a.t()?.matmul(&a)?; // [3, 2] · [2, 3], the transpose read through its strides
//! assert_eq!(b.dims(), &[3, 3]);
//! assert_eq!(b.sum_all()?.to_scalar::<f32>()?, 261.0);
//! assert!(a.matmul(&a).is_err()); // "matmul: shape mismatch: inner dims differ: [2, 3] · [2, 3]"
//! # Ok::<(), tensor::Error>(())
//! ```

pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
mod device;
mod dtype;
mod error;
mod layout;
pub mod op;
mod ops;
mod random;
mod shape;
mod storage;
mod tensor;

pub use cpu::attention::{GroupRule, PAD_GROUP};
pub use device::Device;
pub use dtype::{DType, WithDType};
pub use error::{Error, ErrorKind, Result};
pub use layout::Layout;
pub use ops::LayerNormStats;
pub use random::{draw_key, draw_uniform, Rng};
pub use shape::Shape;
pub use storage::Storage;
pub use tensor::Tensor;
