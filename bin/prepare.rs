//! `cargo run --release --bin prepare -- INPUT... --out FILE`: text files → a token file.
//!
//! Each text file is one document; folders are searched recursively for `.txt` files (sorted by
//! path). Documents are tokenized in parallel, each followed by EOS, concatenated and written
//! atomically in the chosen format. With `--val-fraction F --val-out FILE` the last documents
//! (about the last F of the input bytes) go to a separate validation file instead.

use clap::{Parser, ValueEnum};
use data::prepare::{collect_text_files, encode_files, validation_start, TextFile};
use data::{tokenizer_by_name, TokenFormat, TokenWriter};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

type Error = Box<dyn std::error::Error>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum TokenizerArg {
    /// One token per UTF-8 byte (vocabulary 259: 256 bytes, BOS, EOS, MASK).
    Byte,
    /// GPT-2 BPE, offline (vocabulary 50258: 50257 GPT-2 ids + MASK; EOS = 50256).
    Gpt2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum FormatArg {
    /// llm.c uint16 when the vocabulary fits in 16 bits, else our uint32 format.
    Auto,
    /// Raw little-endian uint16, no header (nanoGPT's train.bin).
    Nanogpt,
    /// llm.c shard: 1024-byte header (magic 20240520, version 1, int32 count), uint16 tokens.
    Llmc,
    /// Our uint32 format: 1024-byte header (magic 20250522, version 1), uint32 tokens.
    U32,
}

#[derive(Parser, Debug)]
#[command(
    name = "prepare",
    version,
    about = "Tokenize text files into a token file for training (each file = one document + EOS)",
    after_help = "Examples:\n  prepare books/ --out data/books.bin\n  prepare corpus/ --out train.bin \
                  --tokenizer gpt2 --val-fraction 0.01 --val-out val.bin"
)]
struct Args {
    /// Text files (any extension) or folders (searched recursively for .txt files).
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<PathBuf>,
    /// The token file to write (replaced atomically).
    #[arg(long, short, value_name = "FILE")]
    out: PathBuf,
    /// Tokenizer.
    #[arg(long, value_enum, default_value = "byte")]
    tokenizer: TokenizerArg,
    /// On-disk format.
    #[arg(long, value_enum, default_value = "auto")]
    format: FormatArg,
    /// Hold out the last documents (about this fraction of the input bytes) for validation;
    /// needs --val-out.
    #[arg(long, value_name = "F")]
    val_fraction: Option<f64>,
    /// Where the held-out documents go; needs --val-fraction.
    #[arg(long, value_name = "FILE")]
    val_out: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

fn main() -> ExitCode {
    cli::report(run(Args::parse()))
}

/// Counts of one output file.
#[derive(Default)]
struct Written {
    documents: u64,
    tokens: u64,
}

fn run(args: Args) -> Result<(), Error> {
    let start = Instant::now();
    let tok = tokenizer_by_name(match args.tokenizer {
        TokenizerArg::Byte => "byte",
        TokenizerArg::Gpt2 => "gpt2",
    })?;
    let format = match args.format {
        FormatArg::Auto => TokenFormat::for_vocab(tok.vocab_size()),
        FormatArg::Nanogpt => TokenFormat::NanoGpt,
        FormatArg::Llmc => TokenFormat::LlmC,
        FormatArg::U32 => TokenFormat::U32,
    };
    if !format.fits_vocab(tok.vocab_size()) {
        return Err(format!(
            "the {} tokenizer's vocabulary of {} ids (largest id {}) is too large for the {format} \
             format (largest id {}): use --format u32 or --format auto",
            tok.name(),
            tok.vocab_size(),
            tok.vocab_size() - 1,
            format.max_id()
        )
        .into());
    }
    let files: Vec<TextFile> = collect_text_files(&args.inputs)?
        .into_iter()
        .filter(|f| f.bytes > 0)
        .collect();
    if files.is_empty() {
        return Err("the input is empty: every document (file) has 0 bytes".into());
    }
    let split = match (args.val_fraction, &args.val_out) {
        (None, None) => None,
        (Some(_), Some(path)) if *path == args.out => {
            return Err("--val-out must differ from --out".into());
        }
        (Some(f), Some(path)) => {
            let sizes: Vec<u64> = files.iter().map(|f| f.bytes).collect();
            Some((validation_start(&sizes, f)?, path.clone()))
        }
        (Some(_), None) => {
            return Err(
                "--val-fraction needs --val-out FILE (where the held-out documents go)".into(),
            )
        }
        (None, Some(_)) => {
            return Err(
                "--val-out needs --val-fraction F (which share of the documents to hold out)"
                    .into(),
            )
        }
    };
    let total_bytes: u64 = files.iter().map(|f| f.bytes).sum();
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::new(total_bytes);
        b.set_style(
            ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {bytes_per_sec}  [{elapsed_precise} < {eta_precise}]")
                .expect("valid template"),
        );
        b
    };

    for path in std::iter::once(&args.out).chain(args.val_out.as_ref()) {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("{}: cannot create the folder: {e}", dir.display()))?;
        }
    }
    let mut train = TokenWriter::create(&args.out, format)?;
    let mut val = match &split {
        Some((_, path)) => Some(TokenWriter::create(path, format)?),
        None => None,
    };
    let (mut train_n, mut val_n) = (Written::default(), Written::default());
    let mut lossy = 0usize;
    // Batches of files (up to 256 files or 64 MiB) are tokenized in parallel, written in order.
    let mut i = 0;
    while i < files.len() {
        let mut j = i;
        let mut batch_bytes = 0;
        while j < files.len() && j - i < 256 && (j == i || batch_bytes + files[j].bytes <= 64 << 20)
        {
            batch_bytes += files[j].bytes;
            j += 1;
        }
        let docs = encode_files(&files[i..j], tok.as_ref())?;
        for (k, doc) in docs.iter().enumerate() {
            let to_val = matches!(&split, Some((first, _)) if i + k >= *first);
            let (writer, counts) = match (&mut val, to_val) {
                (Some(v), true) => (v, &mut val_n),
                _ => (&mut train, &mut train_n),
            };
            writer.push(&doc.tokens)?;
            counts.documents += 1;
            counts.tokens += doc.tokens.len() as u64;
            lossy += doc.lossy as usize;
            bar.inc(doc.bytes);
        }
        i = j;
    }
    bar.finish_and_clear();
    if lossy > 0 {
        eprintln!("warning: {lossy} file(s) were not valid UTF-8; invalid bytes became U+FFFD");
    }
    train.finish()?;
    if let Some(v) = val {
        v.finish()?;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "prepare: {} documents, {} tokens ({} tokenizer, {format} format) -> {} in {secs:.2} s ({:.1} MB/s)",
        train_n.documents,
        train_n.tokens,
        tok.name(),
        args.out.display(),
        total_bytes as f64 / 1e6 / secs.max(1e-9)
    );
    if let Some((_, path)) = &split {
        println!(
            "prepare: validation: {} documents, {} tokens -> {}",
            val_n.documents,
            val_n.tokens,
            path.display()
        );
    }
    Ok(())
}
