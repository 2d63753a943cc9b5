//! Training windows over a token file (SPEC §2): packed ("wrapped") sequences.
//!
//! The file is one concatenated stream of documents, each followed by EOS. It is cut into
//! consecutive, non-overlapping slices of `L − 2` tokens, and window `k` is
//!
//! ```text
//! [BOS] + tokens[k·(L−2) .. (k+1)·(L−2)] + [EOS]        (L ids)
//! ```
//!
//! so position 0 is always BOS and position L − 1 always EOS. A window may start or end in the
//! middle of a document and may contain several. The last `len mod (L − 2)` tokens of the file,
//! too few for a whole window, are not used.
//!
//! A held-out split keeps the **last** windows for validation ([`Windows::split`]); a separate
//! validation file is simply another `Windows`.

use crate::error::{DataError, Result};
use crate::format::TokenFile;
use std::path::Path;

/// The windows of sequence length `L` over one token file, or a contiguous range of them
/// (after [`Windows::split`]). Cheap to clone (the file mapping is shared).
#[derive(Clone, Debug)]
pub struct Windows {
    file: TokenFile,
    seq_len: usize,
    bos: u32,
    eos: u32,
    /// Index (in the whole file) of this set's window 0.
    first: usize,
    count: usize,
}

impl Windows {
    /// All windows of sequence length `seq_len` (L) over `file`: `file.len() / (L − 2)` of them.
    ///
    /// Errors: `seq_len < 3` (no room for a token between BOS and EOS,
    /// [`DataError::Invalid`]); a file with fewer than `L − 2` tokens ([`DataError::TooShort`],
    /// naming the file, its token count and L).
    pub fn new(file: TokenFile, seq_len: usize, bos: u32, eos: u32) -> Result<Windows> {
        if seq_len < 3 {
            return Err(DataError::invalid(
                file.path(),
                format!(
                    "sequence length L = {seq_len} leaves no room for a token between BOS and \
                     EOS (L must be at least 3)"
                ),
            ));
        }
        let body = seq_len - 2;
        if file.len() < body {
            return Err(DataError::TooShort {
                path: file.path().to_path_buf(),
                tokens: file.len() as u64,
                seq_len,
            });
        }
        let count = file.len() / body;
        Ok(Windows {
            file,
            seq_len,
            bos,
            eos,
            first: 0,
            count,
        })
    }

    /// Number of windows.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there is no window (only possible for an empty validation split).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The sequence length L (ids per window, BOS and EOS included).
    pub fn seq_len(&self) -> usize {
        self.seq_len
    }

    /// File tokens per window, `L − 2`.
    pub fn tokens_per_window(&self) -> usize {
        self.seq_len - 2
    }

    /// The BOS id put at position 0.
    pub fn bos(&self) -> u32 {
        self.bos
    }

    /// The EOS id put at position L − 1.
    pub fn eos(&self) -> u32 {
        self.eos
    }

    /// The underlying token file.
    pub fn file(&self) -> &TokenFile {
        &self.file
    }

    /// The path of the underlying file.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Offset (token index in the file) of the first file token of window `k` of this set.
    pub fn token_offset(&self, k: usize) -> usize {
        (self.first + k) * self.tokens_per_window()
    }

    /// Window `k` as L ids (`BOS + slice + EOS`), checked against `vocab_size` like
    /// [`Windows::batch`].
    pub fn window(&self, k: usize, vocab_size: usize) -> Result<Vec<u32>> {
        self.batch(&[k], vocab_size)
    }

    /// The windows `indices` (B of them) as `B · L` ids, row-major: row `r` is window
    /// `indices[r]`.
    ///
    /// Errors: an index `>= len()` ([`DataError::Invalid`]); BOS or EOS `>= vocab_size`
    /// ([`DataError::Argument`]); a file token `>= vocab_size` ([`DataError::TokenOutOfRange`],
    /// naming the file, the token's offset in the file and the id).
    pub fn batch(&self, indices: &[usize], vocab_size: usize) -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(indices.len() * self.seq_len);
        self.batch_into(indices, vocab_size, &mut out)?;
        Ok(out)
    }

    /// [`Windows::batch`] into a reused buffer (`out` is cleared first).
    pub fn batch_into(
        &self,
        indices: &[usize],
        vocab_size: usize,
        out: &mut Vec<u32>,
    ) -> Result<()> {
        for (what, id) in [("BOS", self.bos), ("EOS", self.eos)] {
            if id as usize >= vocab_size {
                return Err(DataError::argument(
                    "Windows::batch",
                    format!(
                        "{what} id {id} is outside the vocabulary of {vocab_size} ids \
                         (windows of {})",
                        self.path().display()
                    ),
                ));
            }
        }
        out.clear();
        out.reserve(indices.len() * self.seq_len);
        let body = self.tokens_per_window();
        for &k in indices {
            if k >= self.count {
                return Err(DataError::invalid(
                    self.path(),
                    format!("window index {k} out of range for {} windows", self.count),
                ));
            }
            let start = self.token_offset(k);
            out.push(self.bos);
            let row = out.len();
            self.file.read(start..start + body, out)?;
            if let Some(j) = out[row..].iter().position(|&t| t as usize >= vocab_size) {
                return Err(DataError::TokenOutOfRange {
                    path: self.path().to_path_buf(),
                    offset: (start + j) as u64,
                    id: out[row + j],
                    vocab_size,
                });
            }
            out.push(self.eos);
        }
        Ok(())
    }

    /// Splits into (train, validation): validation gets the **last** `round(len · val_fraction)`
    /// windows (at least one when `val_fraction > 0`), training the rest; `val_fraction == 0`
    /// gives an empty validation set.
    ///
    /// Errors: `val_fraction` not in `[0, 1)` or NaN, or a split that would leave no training
    /// window ([`DataError::Invalid`], naming the file and the window count).
    pub fn split(self, val_fraction: f64) -> Result<(Windows, Windows)> {
        if !(0.0..1.0).contains(&val_fraction) {
            return Err(DataError::invalid(
                self.path(),
                format!("validation fraction {val_fraction} is not in [0, 1)"),
            ));
        }
        let n = self.count;
        let val = if val_fraction == 0.0 {
            0
        } else {
            ((n as f64 * val_fraction).round() as usize).max(1)
        };
        if val >= n {
            return Err(DataError::invalid(
                self.path(),
                format!(
                    "cannot hold out {val} of {n} windows (L = {}) for validation and keep any \
                     for training: use a longer file, a shorter L or a smaller fraction",
                    self.seq_len
                ),
            ));
        }
        let mut train = self.clone();
        train.count = n - val;
        let mut valid = self;
        valid.first += n - val;
        valid.count = val;
        Ok((train, valid))
    }
}
