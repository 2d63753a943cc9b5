//! Memory-mapped token datasets, tokenizers and batching for pgm-rs.
//!
//! The crate is independent of the tensor stack: it hands out plain `Vec<u32>` batches.
//! A tour, in the order data flows:
//!
//! 1. [`format`](mod@format) — token files on disk: nanoGPT raw uint16, llm.c uint16 shards (1024-byte
//!    header, magic 20240520) and our uint32 variant (magic 20250522), memory-mapped and
//!    auto-detected by [`TokenFile::open`]; written atomically by [`write_tokens`] /
//!    [`TokenWriter`].
//! 2. [`tokenizer`] — [`ByteTokenizer`] (259 ids) and [`Gpt2Tokenizer`] (GPT-2 BPE, offline,
//!    50258 ids); MASK is always the last id. [`tokenizer_by_name`] picks one.
//! 3. [`windows`] — [`Windows`]: the packed training sequences of SPEC §2, `BOS + L−2 tokens +
//!    EOS`, batched into row-major `B·L` ids with every id checked against the vocabulary;
//!    [`Windows::split`] holds out the last windows for validation.
//! 4. [`order`] — [`BatchOrder`]: a seeded permutation per epoch, always-full batches, and an
//!    [`OrderState`] that goes into a checkpoint and resumes exactly.
//! 5. [`grammar`], [`ll1`], [`english`], [`default_corpus`] — the built-in dataset: an unambiguous
//!    (LL(1)) probabilistic grammar of English-like paragraphs whose entropy per byte token is
//!    computed exactly, so training on it has a known floor. [`ensure_default_dataset`] writes it
//!    on first use; no network needed.
//! 6. [`prepare`] — the library side of the `prepare` binary: finding text files and
//!    tokenizing documents in parallel.
//! 7. [`sample_quality`] — [`GrammarScore`]: a model's samples judged by the built-in
//!    grammar, the true distribution of the default data (which sentences it generates, and
//!    their exact log-probability).
//!
//! Randomness (the corpus, the data order) comes from [`Rng`], the tensor crate's seeded generator.
//! Errors are one type, [`DataError`]; each message names the file and the problem.
//!
//! ```no_run
//! use data::{ensure_default_dataset, tokenizer_by_name, BatchOrder, TokenFile, Windows};
//! # fn main() -> Result<(), data::DataError> {
//! let corpus = ensure_default_dataset(std::path::Path::new("runs/default-corpus"))?;
//! let tok = tokenizer_by_name(&corpus.tokenizer)?;
//! let windows = Windows::new(TokenFile::open(&corpus.train_path)?, 256, tok.bos(), tok.eos())?;
//! let (train, val) = windows.split(0.02)?;
//! let mut order = BatchOrder::new(train.len(), 32, 0);
//! let ids = train.batch(&order.next_batch(), tok.vocab_size())?; // 32 · 256 ids
//! assert_eq!(ids.len(), 32 * 256);
//! # let _ = val; Ok(()) }
//! ```

pub mod default_corpus;
pub mod english;
pub mod error;
pub mod format;
pub mod grammar;
pub mod ll1;
pub mod order;
pub mod prepare;
pub mod sample_quality;
pub mod tokenizer;
pub mod windows;

pub use default_corpus::{corpus_entropy, ensure_default_dataset, CorpusEntropy, DefaultDataset};
pub use english::EnglishGrammar;
pub use error::{DataError, Result};
pub use format::{write_tokens, TokenFile, TokenFormat, TokenWriter};
pub use grammar::{Grammar, GrammarBuilder};
pub use ll1::Ll1Table;
pub use order::{BatchOrder, OrderState};
pub use sample_quality::{reference_nats_per_byte, GrammarScore};
pub use tensor::Rng;
pub use tokenizer::{tokenizer_by_name, ByteTokenizer, Gpt2Tokenizer, Tokenizer};
pub use windows::Windows;
