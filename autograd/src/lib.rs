//! # autograd
//!
//! Reverse-mode automatic differentiation over `tensor::Tensor`, in the style of micrograd:
//!
//! * A [`Tape`] is a list of recorded ops. Each entry remembers which earlier entries it read
//!   and a closure that, given the gradient of its output, returns the gradients of its inputs.
//! * A [`Var`] is a tensor plus, when it is tracked, its entry on a tape. Every op on `Var`s
//!   computes its value with the plain tensor op and, if any input is tracked, records itself.
//! * [`Var::backward`] seeds the loss with 1 and walks the tape in reverse (the order of
//!   recording is already a topological order), summing gradients where a value was used
//!   more than once. Leaves keep their gradients in the returned [`Gradients`]; everything else
//!   is freed as soon as it has been pushed to its inputs.
//!
//! Inference records nothing: wrap tensors with [`Var::constant`] and no op allocates a tape
//! entry or keeps a tensor alive for a backward pass. Whether a computation records is visible
//! where its inputs were made: `tape.var(t)` records, `Var::constant(t)` does not.
//!
//! ```
//! use autograd::{Tape, Var};
//! use tensor::{Device, Tensor};
//! let tape = Tape::new();
//! let x = tape.var(Tensor::from_vec(vec![1.0f64, 2.0, 3.0], [3], Device::Cpu)?);
//! let y = x.mul(&x)?.sum_all()?;          // y = Σ x²
//! let grads = y.backward()?;
//! assert_eq!(grads.get(&x).unwrap().to_vec::<f64>()?, vec![2.0, 4.0, 6.0]);
//! # Ok::<(), tensor::Error>(())
//! ```

mod grad;
pub mod gradcheck;
mod ops;
mod tape;

pub use tape::{Gradients, Tape, Var};
