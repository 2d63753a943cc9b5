//! Tokenizers: bytes, and GPT-2 BPE (fully offline).
//!
//! Every tokenizer reserves a MASK id as its **last** id (`mask() == vocab_size() − 1`, the
//! convention of SPEC §2), which [`Tokenizer::encode`] never produces. BOS and EOS are ordinary
//! ids that `encode` never produces either (text containing the string `<|endoftext|>` is encoded
//! as plain text); the data pipeline inserts them.
//!
//! | name | ids | BOS | EOS | MASK | vocab_size |
//! |---|---|---|---|---|---|
//! | `byte` ([`ByteTokenizer`]) | 0..=255 the UTF-8 bytes | 256 | 257 | 258 | 259 |
//! | `gpt2` ([`Gpt2Tokenizer`]) | 0..=50255 GPT-2 BPE | 50256 | 50256 | 50257 | 50258 |

use crate::error::{DataError, Result};
use std::sync::OnceLock;
use tiktoken_rs::CoreBPE;

/// Text ↔ token ids.
pub trait Tokenizer: Send + Sync {
    /// The name [`tokenizer_by_name`] knows it by (`byte`, `gpt2`).
    fn name(&self) -> &'static str;
    /// The ids of `text` (never BOS, EOS or MASK).
    fn encode(&self, text: &str) -> Vec<u32>;
    /// The text of `ids`. Bytes that are not valid UTF-8 become U+FFFD; the special ids are
    /// rendered visibly (see each tokenizer), as is any id outside the vocabulary
    /// (`<|unk:ID|>`), so decoding never fails.
    fn decode(&self, ids: &[u32]) -> String;
    /// Number of ids, MASK included (ids are `0..vocab_size()`).
    fn vocab_size(&self) -> usize;
    /// Beginning-of-sequence id (position 0 of every window).
    fn bos(&self) -> u32;
    /// End-of-document id (after every document, and at the end of every window).
    fn eos(&self) -> u32;
    /// The MASK id, always `vocab_size() − 1`.
    fn mask(&self) -> u32;
}

/// The tokenizer called `name`: `byte` or `gpt2` ([`DataError::Argument`] otherwise).
pub fn tokenizer_by_name(name: &str) -> Result<Box<dyn Tokenizer>> {
    match name {
        "byte" => Ok(Box::new(ByteTokenizer)),
        "gpt2" => Ok(Box::new(Gpt2Tokenizer::new()?)),
        _ => Err(DataError::argument(
            "tokenizer_by_name",
            format!("unknown tokenizer {name:?} (expected byte or gpt2)"),
        )),
    }
}

/// One token per UTF-8 byte: ids 0..=255 are the bytes, BOS = 256, EOS = 257, MASK = 258.
///
/// `decode` renders BOS, EOS and MASK as `<|bos|>`, `<|eos|>` and `<|mask|>` (visible, so a
/// sample shows where documents end), and runs of bytes lossily (an invalid UTF-8 sequence
/// becomes U+FFFD). `decode(encode(s)) == s` for every string `s`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ByteTokenizer;

impl ByteTokenizer {
    pub const BOS: u32 = 256;
    pub const EOS: u32 = 257;
    pub const MASK: u32 = 258;
    pub const VOCAB_SIZE: usize = 259;
}

impl Tokenizer for ByteTokenizer {
    fn name(&self) -> &'static str {
        "byte"
    }

    fn encode(&self, text: &str) -> Vec<u32> {
        text.bytes().map(u32::from).collect()
    }

    fn decode(&self, ids: &[u32]) -> String {
        let mut out = String::with_capacity(ids.len());
        let mut run: Vec<u8> = Vec::new();
        for &id in ids {
            if id < 256 {
                run.push(id as u8);
                continue;
            }
            out.push_str(&String::from_utf8_lossy(&run));
            run.clear();
            match id {
                Self::BOS => out.push_str("<|bos|>"),
                Self::EOS => out.push_str("<|eos|>"),
                Self::MASK => out.push_str("<|mask|>"),
                _ => out.push_str(&format!("<|unk:{id}|>")),
            }
        }
        out.push_str(&String::from_utf8_lossy(&run));
        out
    }

    fn vocab_size(&self) -> usize {
        Self::VOCAB_SIZE
    }
    fn bos(&self) -> u32 {
        Self::BOS
    }
    fn eos(&self) -> u32 {
        Self::EOS
    }
    fn mask(&self) -> u32 {
        Self::MASK
    }
}

/// GPT-2's byte-level BPE (the `r50k_base` ranks, a.k.a. `gpt2`), through tiktoken-rs, whose
/// rank file is compiled into the crate (`include_str!`): nothing is downloaded, ever.
///
/// BOS = EOS = 50256 (`<|endoftext|>`), MASK = 50257, vocab_size = 50258. `decode` renders
/// 50256 as `<|endoftext|>` and MASK as `<|mask|>`; bytes of a multi-byte character split
/// across tokens are joined before the lossy UTF-8 conversion. The BPE tables are built once
/// per process (about 0.1 s) and shared by every `Gpt2Tokenizer`.
#[derive(Clone, Copy)]
pub struct Gpt2Tokenizer {
    bpe: &'static CoreBPE,
}

impl std::fmt::Debug for Gpt2Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gpt2Tokenizer")
    }
}

impl Gpt2Tokenizer {
    pub const EOT: u32 = 50256;
    pub const MASK: u32 = 50257;
    pub const VOCAB_SIZE: usize = 50258;
    /// Text is encoded in pieces of about this many bytes (see [`pieces`]).
    const PIECE_BYTES: usize = 1 << 16;

    /// The shared GPT-2 tokenizer. Error: the embedded rank file fails to load (it cannot, short
    /// of a broken tiktoken-rs build).
    pub fn new() -> Result<Gpt2Tokenizer> {
        static BPE: OnceLock<CoreBPE> = OnceLock::new();
        if BPE.get().is_none() {
            let bpe = tiktoken_rs::r50k_base().map_err(|e| {
                DataError::argument("Gpt2Tokenizer::new", format!("loading the GPT-2 BPE: {e}"))
            })?;
            let _ = BPE.set(bpe); // another thread may have won the race; either is the same
        }
        Ok(Gpt2Tokenizer {
            bpe: BPE.get().expect("set above"),
        })
    }
}

impl Tokenizer for Gpt2Tokenizer {
    fn name(&self) -> &'static str {
        "gpt2"
    }

    fn encode(&self, text: &str) -> Vec<u32> {
        let pieces = pieces(text, Self::PIECE_BYTES);
        pieces
            .iter()
            .flat_map(|p| self.bpe.encode_ordinary(p))
            .collect()
    }

    fn decode(&self, ids: &[u32]) -> String {
        let mut bytes: Vec<u8> = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            match id {
                Self::MASK => bytes.extend_from_slice(b"<|mask|>"),
                _ => match self.bpe.decode_bytes(&[id]) {
                    Ok(b) => bytes.extend_from_slice(&b),
                    Err(_) => bytes.extend_from_slice(format!("<|unk:{id}|>").as_bytes()),
                },
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn vocab_size(&self) -> usize {
        Self::VOCAB_SIZE
    }
    fn bos(&self) -> u32 {
        Self::EOT
    }
    fn eos(&self) -> u32 {
        Self::EOT
    }
    fn mask(&self) -> u32 {
        Self::MASK
    }
}

/// `text` in pieces of at least `target` bytes, each cut where a non-whitespace character is
/// followed by whitespace. GPT-2's pre-tokenizer never joins those two, so the pieces encode
/// to the tokens of the whole text; only a stretch of 16·`target` bytes with no such point in
/// it (megabytes of spaces) is cut inside. tiktoken's regex overflows its stack on such runs.
fn pieces(text: &str, target: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let (mut start, mut cut, mut prev_ws) = (0, 0, true);
    for (i, c) in text.char_indices() {
        let ws = c.is_whitespace();
        if ws && !prev_ws {
            cut = i;
        }
        prev_ws = ws;
        if i - start >= target && (cut > start || i - start >= 16 * target) {
            let end = if cut > start { cut } else { i };
            pieces.push(&text[start..end]);
            start = end;
        }
    }
    pieces.push(&text[start..]);
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text cut into small pieces encodes to the tokens of the whole, and a run of spaces far
    /// longer than a piece (which overflows tiktoken's regex in one piece) encodes and decodes.
    #[test]
    fn pieces_encode_as_the_whole() {
        let gpt2 = Gpt2Tokenizer::new().unwrap();
        let text = "It's 10:30 — the café's \"new\" menu!\n\n  Spaces   and\ttabs,  don't   \
                    they'll split?\r\n\u{00a0}non-breaking\u{2003}em space  end  ";
        let cut = pieces(text, 7);
        assert!(cut.len() > 5 && cut.concat() == text);
        let by_piece: Vec<u32> = cut
            .iter()
            .flat_map(|p| gpt2.bpe.encode_ordinary(p))
            .collect();
        assert_eq!(by_piece, gpt2.bpe.encode_ordinary(text));
        let long = format!("a{}b", " ".repeat(1_500_000));
        assert_eq!(gpt2.decode(&gpt2.encode(&long)), long);
    }
}
