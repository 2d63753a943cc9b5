//! The one error type of the crate.
//!
//! **The rule:** every fallible tensor operation returns [`Result`]. Nothing in this crate panics
//! on bad input: mismatched shapes, an index out of range, mixed dtypes or devices, an op the
//! device does not support yet. Each error names the op and the shapes (or dtypes, devices)
//! involved, so a message read at the command line says what went wrong without a backtrace.

use std::fmt;

/// An error raised by a tensor operation; `op` is the name of the operation that refused.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    pub op: &'static str,
    pub kind: ErrorKind,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq)]
pub enum ErrorKind {
    /// Shapes that do not fit together, with a sentence saying how.
    Shape(String),
    /// An index value out of range for the dimension it indexes.
    Index { index: u64, size: usize, dim: usize },
    /// A dtype the op does not accept, or two operands of different dtypes.
    DType(String),
    /// Operands on different devices, or an op the device cannot run.
    Device(String),
    /// The CUDA driver, NVRTC or cuBLAS reported an error.
    Cuda(String),
    /// Anything else, in words.
    Msg(String),
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn shape(op: &'static str, msg: impl Into<String>) -> Self {
        Error {
            op,
            kind: ErrorKind::Shape(msg.into()),
        }
    }
    pub fn dtype(op: &'static str, msg: impl Into<String>) -> Self {
        Error {
            op,
            kind: ErrorKind::DType(msg.into()),
        }
    }
    pub fn device(op: &'static str, msg: impl Into<String>) -> Self {
        Error {
            op,
            kind: ErrorKind::Device(msg.into()),
        }
    }
    pub fn msg(op: &'static str, msg: impl Into<String>) -> Self {
        Error {
            op,
            kind: ErrorKind::Msg(msg.into()),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.op)?;
        match &self.kind {
            ErrorKind::Shape(m) => write!(f, "shape mismatch: {m}"),
            ErrorKind::Index { index, size, dim } => {
                write!(f, "index {index} out of range for dim {dim} of size {size}")
            }
            ErrorKind::DType(m) => write!(f, "dtype: {m}"),
            ErrorKind::Device(m) => write!(f, "device: {m}"),
            ErrorKind::Cuda(m) => write!(f, "cuda: {m}"),
            ErrorKind::Msg(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {}

/// Returns early with a shape error: `bail_shape!("matmul", "{a:?} · {b:?}")`.
#[macro_export]
macro_rules! bail_shape {
    ($op:expr, $($arg:tt)*) => {
        return Err($crate::Error::shape($op, format!($($arg)*)))
    };
}
