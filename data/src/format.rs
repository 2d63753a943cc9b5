//! Token files on disk: three formats, memory-mapped, detected on open.
//!
//! A token file is a flat array of token ids. Three layouts are read and written:
//!
//! | format | header | tokens | largest id |
//! |---|---|---|---|
//! | [`TokenFormat::NanoGpt`] | none | little-endian `uint16` | 65535 |
//! | [`TokenFormat::LlmC`] | 256 × little-endian `int32` (1024 bytes) | little-endian `uint16` | 65535 |
//! | [`TokenFormat::U32`] | 256 × little-endian `int32` (1024 bytes) | little-endian `uint32` | 4294967295 |
//!
//! **nanoGPT** (`prepare.py` of nanoGPT): the raw `np.uint16` array, nothing else. A file with an
//! odd number of bytes is reported as truncated.
//!
//! **llm.c shards** (`dev/data/data_common.py` of llm.c, "gpt-2" flavour):
//!
//! ```text
//! header[0] = 20240520   magic (LLMC_MAGIC)
//! header[1] = 1          version (LLMC_VERSION)
//! header[2] = N          number of tokens, int32 (so at most 2^31 − 1 tokens per file)
//! header[3..256] = 0
//! then N × uint16 little-endian
//! ```
//!
//! The file must be exactly `1024 + 2·N` bytes: shorter is "truncated", longer means the header
//! count disagrees with the data (a corrupt header), as llm.c's own loader also refuses.
//!
//! **Our uint32 variant**, for vocabularies above 65536 ids, has the same 256 × int32 header:
//!
//! ```text
//! header[0] = 20250522   magic (U32_MAGIC)
//! header[1] = 1          version (U32_VERSION)
//! header[2] = low 32 bits of N (the bits of a uint32, stored in the int32 slot)
//! header[3] = high 32 bits of N (so N is a uint64; 0 below 2^32 tokens)
//! header[4..256] = 0
//! then N × uint32 little-endian, and the file is exactly 1024 + 4·N bytes
//! ```
//!
//! (llm.c's own 32-bit "llama-3" shards, magic 20240801 version 7, are not read.)
//!
//! **Detection** ([`TokenFile::open`]): a file whose first four bytes are one of the two magics
//! (as a little-endian int32) is that format; anything else is read as nanoGPT raw uint16. Both
//! magics were chosen so that their low 16 bits (55640 and 65434) exceed every GPT-2 id
//! (≤ 50257): a nanoGPT file of GPT-2 tokens can never be mistaken for a headered file.
//!
//! Files are written atomically ([`write_tokens`], [`TokenWriter`]): into a temporary file next
//! to the target, flushed to disk, then renamed over it, so a reader never sees half a file.

use crate::error::{DataError, Result};
use memmap2::Mmap;
use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Number of int32 slots in an llm.c-style header.
pub const HEADER_INTS: usize = 256;
/// Bytes of an llm.c-style header (256 × 4).
pub const HEADER_BYTES: usize = HEADER_INTS * 4;
/// `header[0]` of an llm.c uint16 shard.
pub const LLMC_MAGIC: i32 = 20240520;
/// `header[1]` of an llm.c uint16 shard.
pub const LLMC_VERSION: i32 = 1;
/// `header[0]` of our uint32 token file.
pub const U32_MAGIC: i32 = 20250522;
/// `header[1]` of our uint32 token file.
pub const U32_VERSION: i32 = 1;

/// One of the three on-disk layouts (see the module documentation for the headers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenFormat {
    /// nanoGPT: raw little-endian uint16, no header.
    NanoGpt,
    /// llm.c shard: 1024-byte header (magic 20240520, version 1, int32 count), uint16 tokens.
    LlmC,
    /// Ours: 1024-byte header (magic 20250522, version 1, uint64 count), uint32 tokens.
    U32,
}

impl TokenFormat {
    /// The name used on the command line and in messages: `nanogpt`, `llmc` or `u32`.
    pub fn name(self) -> &'static str {
        match self {
            TokenFormat::NanoGpt => "nanogpt",
            TokenFormat::LlmC => "llmc",
            TokenFormat::U32 => "u32",
        }
    }

    /// Bytes per stored token: 2 or 4.
    pub fn bytes_per_token(self) -> usize {
        match self {
            TokenFormat::NanoGpt | TokenFormat::LlmC => 2,
            TokenFormat::U32 => 4,
        }
    }

    /// Bytes before the first token: 0 or [`HEADER_BYTES`].
    pub fn header_bytes(self) -> usize {
        match self {
            TokenFormat::NanoGpt => 0,
            TokenFormat::LlmC | TokenFormat::U32 => HEADER_BYTES,
        }
    }

    /// The largest token id the format stores (65535 or `u32::MAX`).
    pub fn max_id(self) -> u32 {
        match self {
            TokenFormat::NanoGpt | TokenFormat::LlmC => u16::MAX as u32,
            TokenFormat::U32 => u32::MAX,
        }
    }

    /// The most tokens one file can hold (the llm.c header count is an int32).
    pub fn max_tokens(self) -> u64 {
        match self {
            TokenFormat::LlmC => i32::MAX as u64,
            TokenFormat::NanoGpt | TokenFormat::U32 => u64::MAX,
        }
    }

    /// Whether every id of a vocabulary of `vocab_size` ids (`0..vocab_size`) fits.
    pub fn fits_vocab(self, vocab_size: usize) -> bool {
        vocab_size == 0 || (vocab_size - 1) as u64 <= self.max_id() as u64
    }

    /// The format `auto` picks: llm.c uint16 when the vocabulary fits in 16 bits, else uint32.
    pub fn for_vocab(vocab_size: usize) -> TokenFormat {
        if TokenFormat::LlmC.fits_vocab(vocab_size) {
            TokenFormat::LlmC
        } else {
            TokenFormat::U32
        }
    }
}

impl fmt::Display for TokenFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TokenFormat {
    type Err = DataError;

    /// Parses `nanogpt`, `llmc` or `u32` (case-insensitive); anything else is an error.
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "nanogpt" => Ok(TokenFormat::NanoGpt),
            "llmc" | "llm.c" => Ok(TokenFormat::LlmC),
            "u32" => Ok(TokenFormat::U32),
            _ => Err(DataError::argument(
                "TokenFormat::from_str",
                format!("unknown token file format {s:?} (expected nanogpt, llmc or u32)"),
            )),
        }
    }
}

/// A read-only, memory-mapped token file of any of the three formats.
///
/// Cloning is cheap (the mapping is shared). The usual memory-map caveat applies: the file must
/// not be modified by another process while it is open (our writers never modify a file in
/// place; they replace it by renaming).
#[derive(Clone, Debug)]
pub struct TokenFile {
    path: PathBuf,
    format: TokenFormat,
    /// `None` for an empty (0-byte) nanoGPT file, which cannot be mapped.
    map: Option<Arc<Mmap>>,
    len: usize,
}

impl TokenFile {
    /// Opens and memory-maps `path`, detecting its format (see the module documentation).
    ///
    /// Errors: the file cannot be opened or mapped ([`DataError::Io`]); a headered file shorter
    /// than its header or than `header + count · bytes_per_token`, or a nanoGPT file with an odd
    /// byte count ([`DataError::Truncated`]); a wrong version, a negative count, or bytes beyond
    /// the announced count ([`DataError::Header`]). Every message names the file.
    pub fn open(path: impl AsRef<Path>) -> Result<TokenFile> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| DataError::io(path, "open the file", e))?;
        let size = file
            .metadata()
            .map_err(|e| DataError::io(path, "read the file size", e))?
            .len();
        let map = if size == 0 {
            None
        } else {
            // SAFETY: the mapping is read-only; we document that the file must not be modified
            // while open, and our own writers replace files by renaming rather than in place.
            let m = unsafe { Mmap::map(&file) }
                .map_err(|e| DataError::io(path, "memory-map the file", e))?;
            Some(Arc::new(m))
        };
        let bytes: &[u8] = map.as_deref().map(|m| &m[..]).unwrap_or(&[]);
        let (format, len) = detect(path, bytes)?;
        Ok(TokenFile {
            path: path.to_path_buf(),
            format,
            map,
            len,
        })
    }

    /// The path the file was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The detected format.
    pub fn format(&self) -> TokenFormat {
        self.format
    }

    /// Number of tokens in the file.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the file holds no token.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The stored token bytes (after the header).
    fn token_bytes(&self) -> &[u8] {
        match &self.map {
            Some(m) => &m[self.format.header_bytes()..],
            None => &[],
        }
    }

    /// The token at index `i`.
    ///
    /// # Panics
    /// If `i >= self.len()`, like slice indexing (use [`TokenFile::read`] for a checked read).
    pub fn get(&self, i: usize) -> u32 {
        assert!(
            i < self.len,
            "{}: token index {i} out of range for a file of {} tokens",
            self.path.display(),
            self.len
        );
        let b = self.token_bytes();
        match self.format.bytes_per_token() {
            2 => u16::from_le_bytes([b[2 * i], b[2 * i + 1]]) as u32,
            _ => u32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]),
        }
    }

    /// Appends the tokens `range` (token indices) to `out`, widened to `u32`.
    ///
    /// Errors: a range that is reversed or reaches past `len()` ([`DataError::Invalid`], naming
    /// the file, the range and the length).
    pub fn read(&self, range: Range<usize>, out: &mut Vec<u32>) -> Result<()> {
        if range.start > range.end || range.end > self.len {
            return Err(DataError::invalid(
                &self.path,
                format!(
                    "cannot read tokens {}..{}: the file holds {} tokens",
                    range.start, range.end, self.len
                ),
            ));
        }
        let bpt = self.format.bytes_per_token();
        let bytes = &self.token_bytes()[range.start * bpt..range.end * bpt];
        out.reserve(range.len());
        if bpt == 2 {
            out.extend(
                bytes
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]) as u32),
            );
        } else {
            out.extend(
                bytes
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            );
        }
        Ok(())
    }

    /// Scans the whole file and fails on the first id `>= vocab_size`
    /// ([`DataError::TokenOutOfRange`], naming the file, the token offset and the id).
    /// [`crate::Windows::batch`] checks the ids it reads anyway; this checks everything up front.
    pub fn check_vocab(&self, vocab_size: usize) -> Result<()> {
        const CHUNK: usize = 1 << 20;
        let mut buf = Vec::with_capacity(CHUNK);
        let mut start = 0;
        while start < self.len {
            let end = (start + CHUNK).min(self.len);
            buf.clear();
            self.read(start..end, &mut buf)?;
            if let Some(k) = buf.iter().position(|&t| t as usize >= vocab_size) {
                return Err(DataError::TokenOutOfRange {
                    path: self.path.clone(),
                    offset: (start + k) as u64,
                    id: buf[k],
                    vocab_size,
                });
            }
            start = end;
        }
        Ok(())
    }
}

/// Reads the little-endian int32 at slot `i` of a header.
fn header_int(bytes: &[u8], i: usize) -> i32 {
    i32::from_le_bytes([
        bytes[4 * i],
        bytes[4 * i + 1],
        bytes[4 * i + 2],
        bytes[4 * i + 3],
    ])
}

/// Detects the format of `bytes` (the whole file) and returns it with the token count.
fn detect(path: &Path, bytes: &[u8]) -> Result<(TokenFormat, usize)> {
    let magic = if bytes.len() >= 4 {
        Some(header_int(bytes, 0))
    } else {
        None
    };
    let (format, kind, version) = match magic {
        Some(LLMC_MAGIC) => (TokenFormat::LlmC, "llm.c token file", LLMC_VERSION),
        Some(U32_MAGIC) => (TokenFormat::U32, "uint32 token file", U32_VERSION),
        _ => {
            if bytes.len() & 1 == 1 {
                return Err(DataError::truncated(
                    path,
                    format!(
                        "nanoGPT uint16 token file: {} bytes is an odd count (each token is 2 \
                         bytes, so the last token is cut)",
                        bytes.len()
                    ),
                ));
            }
            return Ok((TokenFormat::NanoGpt, bytes.len() / 2));
        }
    };
    if bytes.len() < HEADER_BYTES {
        return Err(DataError::truncated(
            path,
            format!(
                "{kind}: the header needs {HEADER_BYTES} bytes but the file has only {}",
                bytes.len()
            ),
        ));
    }
    let found = header_int(bytes, 1);
    if found != version {
        return Err(DataError::header(
            path,
            format!("{kind} of unsupported version {found} (this reader knows version {version})"),
        ));
    }
    let count: u64 = match format {
        TokenFormat::LlmC => {
            let c = header_int(bytes, 2);
            if c < 0 {
                return Err(DataError::header(
                    path,
                    format!("{kind} announces a negative token count {c}"),
                ));
            }
            c as u64
        }
        _ => header_int(bytes, 2) as u32 as u64 | ((header_int(bytes, 3) as u32 as u64) << 32),
    };
    let bpt = format.bytes_per_token() as u64;
    let body = (bytes.len() - HEADER_BYTES) as u64;
    let need = count.saturating_mul(bpt);
    if body < need {
        return Err(DataError::truncated(
            path,
            format!(
                "{kind}: the header announces {count} tokens ({need} bytes) but only {body} \
                 bytes follow the {HEADER_BYTES}-byte header"
            ),
        ));
    }
    if body > need {
        return Err(DataError::header(
            path,
            format!(
                "{kind} announces {count} tokens ({need} bytes) but {body} bytes follow the \
                 header: the count is corrupt or the file was appended to"
            ),
        ));
    }
    Ok((format, count as usize))
}

/// Writes `tokens` to `path` in `format`, atomically (temporary file + rename).
///
/// Errors: an id that does not fit the format (> 65535 for the uint16 formats,
/// [`DataError::Unrepresentable`] naming the offset and id, and nothing is written); more than
/// 2^31 − 1 tokens for llm.c; any I/O error.
pub fn write_tokens(path: impl AsRef<Path>, tokens: &[u32], format: TokenFormat) -> Result<()> {
    let mut w = TokenWriter::create(path, format)?;
    w.push(tokens)?;
    w.finish()?;
    Ok(())
}

/// A streaming, atomic writer of a token file: tokens go to a temporary file next to the
/// target (`.NAME.tmp-PID-N`); [`TokenWriter::finish`] writes the header (with the final count),
/// syncs and renames it over the target. Dropping the writer without `finish` removes the
/// temporary file and leaves the target untouched.
#[derive(Debug)]
pub struct TokenWriter {
    path: PathBuf,
    tmp: PathBuf,
    format: TokenFormat,
    out: Option<BufWriter<File>>,
    count: u64,
    scratch: Vec<u8>,
}

impl TokenWriter {
    /// Starts writing `path` in `format` (the target itself is not touched until `finish`).
    pub fn create(path: impl AsRef<Path>, format: TokenFormat) -> Result<TokenWriter> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let path = path.as_ref().to_path_buf();
        let name = path
            .file_name()
            .ok_or_else(|| DataError::invalid(&path, "not a file name"))?
            .to_string_lossy()
            .into_owned();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()));
        let file = File::create(&tmp)
            .map_err(|e| DataError::io(&path, "create a temporary file next to it", e))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        // Room for the header; its real contents are written by `finish`.
        out.write_all(&vec![0u8; format.header_bytes()])
            .map_err(|e| DataError::io(&path, "write the temporary file", e))?;
        Ok(TokenWriter {
            path,
            tmp,
            format,
            out: Some(out),
            count: 0,
            scratch: Vec::new(),
        })
    }

    /// The target path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tokens written so far.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether no token was written yet.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Appends `tokens`. Errors (nothing of `tokens` is written): an id the format cannot store
    /// ([`DataError::Unrepresentable`], with its offset in the file), more tokens than the
    /// format's count field holds, or an I/O error.
    pub fn push(&mut self, tokens: &[u32]) -> Result<()> {
        let max = self.format.max_id();
        if let Some(k) = tokens.iter().position(|&t| t > max) {
            return Err(DataError::Unrepresentable {
                path: self.path.clone(),
                id: tokens[k],
                offset: self.count + k as u64,
                format: self.format.name(),
                max_id: max,
            });
        }
        let total = self.count + tokens.len() as u64;
        if total > self.format.max_tokens() {
            return Err(DataError::invalid(
                &self.path,
                format!(
                    "{total} tokens do not fit the {} format, whose header stores the count as \
                     an int32 (at most {}); use the nanogpt or u32 format, or split the data",
                    self.format,
                    self.format.max_tokens()
                ),
            ));
        }
        self.scratch.clear();
        if self.format.bytes_per_token() == 2 {
            self.scratch
                .extend(tokens.iter().flat_map(|&t| (t as u16).to_le_bytes()));
        } else {
            self.scratch
                .extend(tokens.iter().flat_map(|&t| t.to_le_bytes()));
        }
        let out = self.out.as_mut().expect("TokenWriter used after finish");
        out.write_all(&self.scratch)
            .map_err(|e| DataError::io(&self.path, "write the temporary file", e))?;
        self.count = total;
        Ok(())
    }

    /// Writes the header, flushes and syncs the data, and renames the temporary file over the
    /// target. Returns the number of tokens written.
    pub fn finish(mut self) -> Result<u64> {
        let out = self.out.take().expect("TokenWriter finished twice");
        let result = self.finish_inner(out);
        if result.is_err() {
            let _ = std::fs::remove_file(&self.tmp);
        }
        result.map(|()| self.count)
    }

    fn finish_inner(&self, out: BufWriter<File>) -> Result<()> {
        let (tmp, target) = (&self.tmp, &self.path);
        let mut file = out
            .into_inner()
            .map_err(|e| DataError::io(target, "flush the file", e.into_error()))?;
        if let Some(header) = self.header() {
            file.seek(SeekFrom::Start(0))
                .map_err(|e| DataError::io(target, "seek in the file", e))?;
            file.write_all(&header)
                .map_err(|e| DataError::io(target, "write the header", e))?;
        }
        file.sync_all()
            .map_err(|e| DataError::io(target, "sync the file to disk", e))?;
        drop(file);
        std::fs::rename(tmp, &self.path)
            .map_err(|e| DataError::io(&self.path, "rename the temporary file onto it", e))?;
        Ok(())
    }

    /// The 1024 header bytes of the headered formats.
    fn header(&self) -> Option<Vec<u8>> {
        let mut h = [0i32; HEADER_INTS];
        match self.format {
            TokenFormat::NanoGpt => return None,
            TokenFormat::LlmC => {
                h[0] = LLMC_MAGIC;
                h[1] = LLMC_VERSION;
                h[2] = self.count as i32;
            }
            TokenFormat::U32 => {
                h[0] = U32_MAGIC;
                h[1] = U32_VERSION;
                h[2] = self.count as u32 as i32;
                h[3] = (self.count >> 32) as u32 as i32;
            }
        }
        Some(h.iter().flat_map(|v| v.to_le_bytes()).collect())
    }
}

impl Drop for TokenWriter {
    fn drop(&mut self) {
        if let Some(out) = self.out.take() {
            drop(out);
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
