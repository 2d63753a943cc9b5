//! The library side of the `prepare` binary: turning text files into documents of token ids.
//!
//! Each text file is one document. [`collect_text_files`] expands the inputs (a file is taken
//! whatever its extension; a folder is searched recursively for `.txt` files, in sorted path
//! order so the output is deterministic); [`encode_files`] reads and tokenizes a batch of files
//! in parallel (rayon), each document followed by EOS; [`validation_start`] chooses which
//! trailing documents form a held-out split.

use crate::error::{DataError, Result};
use crate::tokenizer::Tokenizer;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// One input document: a text file and its size in bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextFile {
    pub path: PathBuf,
    pub bytes: u64,
}

/// The documents named by `inputs`, in order: each file as given, each folder's `.txt` files
/// (recursively, sorted by path). Empty files are kept (the caller may skip them).
///
/// Errors: an input that does not exist or cannot be read ([`DataError::Io`], naming it); no
/// document at all ([`DataError::Argument`]).
pub fn collect_text_files(inputs: &[PathBuf]) -> Result<Vec<TextFile>> {
    let mut out = Vec::new();
    for input in inputs {
        let meta =
            std::fs::metadata(input).map_err(|e| DataError::io(input, "read the input", e))?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(input, &mut found)?;
            found.sort_by(|a, b| a.path.cmp(&b.path));
            out.extend(found);
        } else {
            out.push(TextFile {
                path: input.clone(),
                bytes: meta.len(),
            });
        }
    }
    if out.is_empty() {
        let names: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
        return Err(DataError::argument(
            "collect_text_files",
            format!("no .txt file found in {}", names.join(", ")),
        ));
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<TextFile>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, "list the folder", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| DataError::io(dir, "list the folder", e))?;
        let path = entry.path();
        let meta =
            std::fs::metadata(&path).map_err(|e| DataError::io(&path, "read the file", e))?;
        if meta.is_dir() {
            walk(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("txt"))
        {
            out.push(TextFile {
                path,
                bytes: meta.len(),
            });
        }
    }
    Ok(())
}

/// A tokenized document.
#[derive(Clone, Debug)]
pub struct EncodedDocument {
    /// The document's ids followed by the tokenizer's EOS.
    pub tokens: Vec<u32>,
    /// Bytes read from the file.
    pub bytes: u64,
    /// Whether the file was not valid UTF-8 (invalid sequences were replaced by U+FFFD).
    pub lossy: bool,
}

/// Reads and tokenizes `files` in parallel, returning the documents in the order of `files`.
/// Error: a file cannot be read ([`DataError::Io`], naming it).
pub fn encode_files(files: &[TextFile], tokenizer: &dyn Tokenizer) -> Result<Vec<EncodedDocument>> {
    files
        .par_iter()
        .map(|f| {
            let raw =
                std::fs::read(&f.path).map_err(|e| DataError::io(&f.path, "read the file", e))?;
            let bytes = raw.len() as u64;
            let (text, lossy) = match String::from_utf8(raw) {
                Ok(s) => (s, false),
                Err(e) => (String::from_utf8_lossy(e.as_bytes()).into_owned(), true),
            };
            let mut tokens = tokenizer.encode(&text);
            tokens.push(tokenizer.eos());
            Ok(EncodedDocument {
                tokens,
                bytes,
                lossy,
            })
        })
        .collect()
}

/// The index of the first validation document when the last `val_fraction` of the input
/// (by bytes) is held out: the first document starting at or after `(1 − val_fraction)` of the
/// total, clamped so that both splits keep at least one document.
///
/// Errors ([`DataError::Argument`]): `val_fraction` not in (0, 1), or fewer than two documents.
pub fn validation_start(sizes: &[u64], val_fraction: f64) -> Result<usize> {
    if !(val_fraction > 0.0 && val_fraction < 1.0) {
        return Err(DataError::argument(
            "validation_start",
            format!("the validation fraction must be in (0, 1), got {val_fraction}"),
        ));
    }
    if sizes.len() < 2 {
        return Err(DataError::argument(
            "validation_start",
            format!(
                "a validation split needs at least two documents (files), found {}",
                sizes.len()
            ),
        ));
    }
    let total: u64 = sizes.iter().sum();
    let cut = (1.0 - val_fraction) * total as f64;
    let mut start = 0u64;
    let mut idx = sizes.len();
    for (i, &s) in sizes.iter().enumerate() {
        if start as f64 >= cut {
            idx = i;
            break;
        }
        start += s;
    }
    Ok(idx.clamp(1, sizes.len() - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_start_holds_out_the_trailing_bytes() {
        assert_eq!(validation_start(&[10; 10], 0.2).unwrap(), 8);
        assert_eq!(
            validation_start(&[10; 10], 0.01).unwrap(),
            9,
            "at least one document"
        );
        assert_eq!(
            validation_start(&[1000, 1], 0.9).unwrap(),
            1,
            "at least one for training"
        );
        assert_eq!(validation_start(&[1, 1000], 0.01).unwrap(), 1);
        assert!(validation_start(&[5], 0.5).is_err());
        for f in [0.0, 1.0, f64::NAN] {
            assert!(validation_start(&[5, 5], f).is_err());
        }
    }
}
