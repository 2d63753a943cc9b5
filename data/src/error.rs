//! The one error type of the crate.
//!
//! **The rule:** nothing in this crate panics on bad input (a corrupt or truncated file, a token
//! id outside the vocabulary, a file too short for one window, an impossible argument). Every
//! fallible function returns [`Result`], and every message starts with the file it concerns (or,
//! when there is no file, the function that refused) followed by the problem in words, so a
//! message read at the command line says what went wrong without a backtrace, for example
//!
//! ```text
//! data/train.bin: truncated llm.c token file: the header announces 1000 tokens (2000 bytes) but only 1500 bytes follow the 1024-byte header
//! data/train.bin: token id 70000 at token offset 1234 is outside the vocabulary of 50258 ids
//! ```

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// An error raised by the data crate. Each variant carries the path of the file involved
/// (`path`), or for argument errors the name of the function that refused (`context`).
#[derive(Debug)]
#[non_exhaustive]
pub enum DataError {
    /// An operating-system error: the program could not `action` (e.g. "open the file",
    /// "memory-map the file"). The OS error is part of the message (and kept in `source`).
    Io {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },
    /// The file ends before the data its format (or header) promises.
    Truncated { path: PathBuf, detail: String },
    /// The file's header is corrupt, of an unsupported version, or disagrees with its size.
    Header { path: PathBuf, detail: String },
    /// A token id at `offset` (a token index in the file, not a byte offset) is `>= vocab_size`.
    TokenOutOfRange {
        path: PathBuf,
        offset: u64,
        id: u32,
        vocab_size: usize,
    },
    /// The file holds fewer tokens than one window of `seq_len` needs (`seq_len − 2`).
    TooShort {
        path: PathBuf,
        tokens: u64,
        seq_len: usize,
    },
    /// A token id that the chosen on-disk format cannot store (e.g. 70000 in a uint16 format).
    Unrepresentable {
        path: PathBuf,
        id: u32,
        offset: u64,
        format: &'static str,
        max_id: u32,
    },
    /// The contents of a file are unusable for a reason other than the above (e.g. a corpus
    /// description that does not parse).
    Invalid { path: PathBuf, detail: String },
    /// An argument that cannot work (a sequence length below 3, an index out of range, an
    /// unknown tokenizer name); `context` names the function.
    Argument {
        context: &'static str,
        detail: String,
    },
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, DataError>;

impl DataError {
    /// An [`DataError::Io`] error for `path`.
    pub fn io(path: &Path, action: &'static str, source: io::Error) -> Self {
        DataError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }

    /// A [`DataError::Truncated`] error for `path`.
    pub fn truncated(path: &Path, detail: impl Into<String>) -> Self {
        DataError::Truncated {
            path: path.to_path_buf(),
            detail: detail.into(),
        }
    }

    /// A [`DataError::Header`] error for `path`.
    pub fn header(path: &Path, detail: impl Into<String>) -> Self {
        DataError::Header {
            path: path.to_path_buf(),
            detail: detail.into(),
        }
    }

    /// A [`DataError::Invalid`] error for `path`.
    pub fn invalid(path: &Path, detail: impl Into<String>) -> Self {
        DataError::Invalid {
            path: path.to_path_buf(),
            detail: detail.into(),
        }
    }

    /// A [`DataError::Argument`] error raised by the function `context`.
    pub fn argument(context: &'static str, detail: impl Into<String>) -> Self {
        DataError::Argument {
            context,
            detail: detail.into(),
        }
    }

    /// The file the error concerns, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            DataError::Io { path, .. }
            | DataError::Truncated { path, .. }
            | DataError::Header { path, .. }
            | DataError::TokenOutOfRange { path, .. }
            | DataError::TooShort { path, .. }
            | DataError::Unrepresentable { path, .. }
            | DataError::Invalid { path, .. } => Some(path),
            DataError::Argument { .. } => None,
        }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataError::Io {
                path,
                action,
                source,
            } => write!(f, "{}: cannot {action}: {source}", path.display()),
            DataError::Truncated { path, detail } => {
                write!(f, "{}: truncated {detail}", path.display())
            }
            DataError::Header { path, detail } => {
                write!(f, "{}: bad header: {detail}", path.display())
            }
            DataError::TokenOutOfRange {
                path,
                offset,
                id,
                vocab_size,
            } => write!(
                f,
                "{}: token id {id} at token offset {offset} is outside the vocabulary of \
                 {vocab_size} ids (valid ids are 0..={})",
                path.display(),
                vocab_size.saturating_sub(1)
            ),
            DataError::TooShort {
                path,
                tokens,
                seq_len,
            } => write!(
                f,
                "{}: too short for one window: the file holds {tokens} tokens but a window of \
                 sequence length L = {seq_len} needs L − 2 = {} tokens (plus BOS and EOS)",
                path.display(),
                seq_len.saturating_sub(2)
            ),
            DataError::Unrepresentable {
                path,
                id,
                offset,
                format,
                max_id,
            } => write!(
                f,
                "{}: token id {id} at token offset {offset} does not fit the {format} format \
                 (largest id it stores: {max_id}); choose a wider format (u32)",
                path.display()
            ),
            DataError::Invalid { path, detail } => write!(f, "{}: {detail}", path.display()),
            DataError::Argument { context, detail } => write!(f, "{context}: {detail}"),
        }
    }
}

/// `source()` is `None` for every variant: the message already includes the OS error of an
/// [`DataError::Io`] (reporters that print the chain of causes would otherwise repeat it).
impl std::error::Error for DataError {}
