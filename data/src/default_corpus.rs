//! The built-in default dataset: documents of the English-like grammar ([`crate::english`]),
//! byte-tokenized, with the exact entropy a perfect model would reach.
//!
//! [`ensure_default_dataset`] writes, on first use and deterministically (fixed seed):
//!
//! - `train.bin`: about 3.0 M byte tokens (whole documents, each followed by EOS = 257), llm.c
//!   uint16 format;
//! - `val.bin`: about 150 k byte tokens, from an independent random stream, same format;
//! - `corpus.json`: the sizes and the entropy figures below (written last: its presence means
//!   the set is complete).
//!
//! Later calls read `corpus.json` back and check that both token files open and hold the
//! recorded counts; anything missing, stale (another corpus version) or inconsistent is
//! regenerated.
//!
//! **The entropy floor.** The stream is D₁ EOS D₂ EOS … with independent documents Dᵢ, and EOS
//! never occurs inside a document, so the stream up to the k-th EOS determines (D₁ … D_k) and
//! vice versa: its entropy is k·H(D) over k·E[|D| + 1] tokens. The entropy rate per byte token
//! is therefore exactly `H(D) / (E[|D|] + 1)`, with H(D) the entropy of a document's text. The
//! grammar is unambiguous (see [`crate::english`]), so H(D) is the entropy of its derivation,
//! computed exactly by [`crate::grammar::Grammar::entropy_nats`]; E[|D|] is
//! [`crate::grammar::Grammar::expected_cost`] with each word costing its length plus one space,
//! minus the missing space before the first word. [`corpus_entropy`] returns the figures; no
//! model trained on this stream can beat `entropy_nats_per_token` on average. (In training
//! windows, BOS at position 0 and EOS at position L − 1 are fixed and cost nothing, and a window
//! starts mid-document without its context, so a model's per-window loss sits slightly above
//! this floor.)

use crate::english::EnglishGrammar;
use crate::error::{DataError, Result};
use crate::format::{write_tokens, TokenFile, TokenFormat};
use crate::tokenizer::ByteTokenizer;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tensor::Rng;

/// Bumped whenever the grammar, the seed or the sizes change (older corpora are regenerated).
pub const CORPUS_VERSION: u32 = 1;
/// The seed of the built-in corpus (training: stream 0, validation: stream 1).
pub const CORPUS_SEED: u64 = 0x5047_4D2D_5253; // "PGM-RS"
/// Training tokens generated (whole documents: the file ends at the first EOS past this).
pub const TRAIN_TOKENS: usize = 3_000_000;
/// Validation tokens generated (likewise).
pub const VAL_TOKENS: usize = 150_000;

/// The exact information content of the built-in corpus.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CorpusEntropy {
    /// H(D), the entropy of one document, in nats.
    pub document_entropy_nats: f64,
    /// H(D) in bits.
    pub document_entropy_bits: f64,
    /// E[|D|], bytes of a document (without its EOS).
    pub expected_document_bytes: f64,
    /// E[|D|] + 1: byte tokens per document in the stream, EOS included.
    pub expected_document_tokens: f64,
    /// Expected sentences per document.
    pub expected_sentences: f64,
    /// Expected bytes of a sentence (without the space before it).
    pub expected_sentence_bytes: f64,
    /// The entropy rate of the token stream, H(D) / (E[|D|] + 1), in nats per token.
    pub entropy_nats_per_token: f64,
    /// The same in bits per token.
    pub entropy_bits_per_token: f64,
}

/// Computes the figures exactly (linear systems over the grammar; see the module doc).
pub fn corpus_entropy() -> Result<CorpusEntropy> {
    let eg = EnglishGrammar::get();
    let g = eg.grammar();
    let start = g.start() as usize;
    let s = eg.sentence_symbol();
    let h = g.entropy_nats()?[start];
    let cost = g.expected_cost(|t| eg.cost(t) as f64)?;
    let bytes = cost[start] - 1.0;
    let mut local = vec![0.0; g.nonterminals().len()];
    local[s as usize] = 1.0;
    let sentences = g.expectation(&local)?[start];
    let tokens = bytes + 1.0;
    Ok(CorpusEntropy {
        document_entropy_nats: h,
        document_entropy_bits: h / std::f64::consts::LN_2,
        expected_document_bytes: bytes,
        expected_document_tokens: tokens,
        expected_sentences: sentences,
        expected_sentence_bytes: cost[s as usize] - 1.0,
        entropy_nats_per_token: h / tokens,
        entropy_bits_per_token: h / tokens / std::f64::consts::LN_2,
    })
}

/// What [`ensure_default_dataset`] returns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DefaultDataset {
    /// `DIR/train.bin` (llm.c uint16, byte tokens).
    pub train_path: PathBuf,
    /// `DIR/val.bin`.
    pub val_path: PathBuf,
    /// The floor a perfect model reaches, nats per byte token.
    pub entropy_nats_per_token: f64,
    /// The same in bits per byte token.
    pub entropy_bits_per_token: f64,
    /// The tokenizer the files use: always `"byte"`.
    pub tokenizer: String,
    pub train_tokens: u64,
    pub val_tokens: u64,
    pub train_documents: u64,
    pub val_documents: u64,
    /// Byte tokens per document, EOS included (expected value).
    pub expected_document_tokens: f64,
}

/// The contents of `corpus.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct CorpusMeta {
    version: u32,
    generator: String,
    seed: u64,
    tokenizer: String,
    format: String,
    train_tokens: u64,
    train_documents: u64,
    val_tokens: u64,
    val_documents: u64,
    entropy: CorpusEntropy,
}

/// Samples whole documents from stream `stream` of the corpus seed until at least `target`
/// byte tokens (EOS included) are produced. Returns (tokens, documents).
pub fn generate_tokens(stream: u64, target: usize) -> (Vec<u32>, u64) {
    let eg = EnglishGrammar::get();
    let mut rng = Rng::seed_stream(CORPUS_SEED, stream);
    let mut tokens = Vec::with_capacity(target + 4096);
    let mut text = String::with_capacity(1024);
    let mut docs = 0;
    while tokens.len() < target {
        text.clear();
        eg.sample(&mut rng, &mut text, None);
        tokens.extend(text.bytes().map(u32::from));
        tokens.push(ByteTokenizer::EOS);
        docs += 1;
    }
    (tokens, docs)
}

/// Makes sure `dir` holds the built-in corpus (generating it if needed, in well under a second
/// in release mode) and describes it.
///
/// Errors: the directory or a file cannot be created, written or read ([`DataError::Io`],
/// naming it); the grammar fails its checks (a bug).
pub fn ensure_default_dataset(dir: &Path) -> Result<DefaultDataset> {
    let train_path = dir.join("train.bin");
    let val_path = dir.join("val.bin");
    let meta_path = dir.join("corpus.json");
    let meta = match read_meta(&meta_path, &train_path, &val_path) {
        Some(m) => m,
        None => {
            std::fs::create_dir_all(dir)
                .map_err(|e| DataError::io(dir, "create the directory", e))?;
            let entropy = corpus_entropy()?;
            let (train, train_docs) = generate_tokens(0, TRAIN_TOKENS);
            write_tokens(&train_path, &train, TokenFormat::LlmC)?;
            let (val, val_docs) = generate_tokens(1, VAL_TOKENS);
            write_tokens(&val_path, &val, TokenFormat::LlmC)?;
            let meta = CorpusMeta {
                version: CORPUS_VERSION,
                generator: "pgm-rs built-in English-like grammar (data::english)".into(),
                seed: CORPUS_SEED,
                tokenizer: "byte".into(),
                format: TokenFormat::LlmC.name().into(),
                train_tokens: train.len() as u64,
                train_documents: train_docs,
                val_tokens: val.len() as u64,
                val_documents: val_docs,
                entropy,
            };
            write_meta(&meta_path, &meta)?;
            meta
        }
    };
    Ok(DefaultDataset {
        train_path,
        val_path,
        entropy_nats_per_token: meta.entropy.entropy_nats_per_token,
        entropy_bits_per_token: meta.entropy.entropy_bits_per_token,
        tokenizer: meta.tokenizer,
        train_tokens: meta.train_tokens,
        val_tokens: meta.val_tokens,
        train_documents: meta.train_documents,
        val_documents: meta.val_documents,
        expected_document_tokens: meta.entropy.expected_document_tokens,
    })
}

/// The recorded corpus if it is complete, current and consistent with the token files.
fn read_meta(meta_path: &Path, train: &Path, val: &Path) -> Option<CorpusMeta> {
    let text = std::fs::read_to_string(meta_path).ok()?;
    let meta: CorpusMeta = serde_json::from_str(&text).ok()?;
    if meta.version != CORPUS_VERSION || meta.seed != CORPUS_SEED {
        return None;
    }
    let t = TokenFile::open(train).ok()?;
    let v = TokenFile::open(val).ok()?;
    (t.len() as u64 == meta.train_tokens && v.len() as u64 == meta.val_tokens).then_some(meta)
}

/// Writes `corpus.json` atomically (temporary file + rename).
fn write_meta(path: &Path, meta: &CorpusMeta) -> Result<()> {
    let json = serde_json::to_string_pretty(meta).map_err(|e| {
        DataError::invalid(path, format!("serialising the corpus description: {e}"))
    })?;
    let tmp = path.with_extension(format!("json.tmp-{}", std::process::id()));
    std::fs::write(&tmp, json + "\n").map_err(|e| DataError::io(&tmp, "write the file", e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        DataError::io(path, "rename the temporary file onto it", e)
    })
}
