//! The built-in dataset: deterministic, written once, read back, usable as windows.

mod common;

use common::TempDir;
use data::default_corpus::{TRAIN_TOKENS, VAL_TOKENS};
use data::{
    ensure_default_dataset, ByteTokenizer, EnglishGrammar, TokenFile, TokenFormat, Tokenizer,
    Windows,
};

#[test]
fn ensure_twice_gives_the_same_files_and_the_same_answer() {
    let dir = TempDir::new("corpus");
    let t = std::time::Instant::now();
    let a = ensure_default_dataset(dir.path()).unwrap();
    println!("generated in {:?}: {a:#?}", t.elapsed());
    let files = ["train.bin", "val.bin", "corpus.json"];
    let bytes: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect();
    let modified = std::fs::metadata(&a.train_path)
        .unwrap()
        .modified()
        .unwrap();
    let b = ensure_default_dataset(dir.path()).unwrap();
    assert_eq!(a, b);
    assert_eq!(
        std::fs::metadata(&b.train_path)
            .unwrap()
            .modified()
            .unwrap(),
        modified,
        "not regenerated"
    );
    for (f, want) in files.iter().zip(&bytes) {
        assert_eq!(&std::fs::read(dir.join(f)).unwrap(), want, "{f}");
    }
    // Another folder gets byte-identical files (the generation is seeded).
    let other = TempDir::new("corpus2");
    ensure_default_dataset(other.path()).unwrap();
    for (f, want) in files.iter().zip(&bytes) {
        assert_eq!(&std::fs::read(other.join(f)).unwrap(), want, "{f}");
    }
    // A deleted token file is regenerated, identically.
    std::fs::remove_file(other.join("val.bin")).unwrap();
    assert_eq!(
        ensure_default_dataset(other.path()).unwrap().val_tokens,
        a.val_tokens
    );
    assert_eq!(std::fs::read(other.join("val.bin")).unwrap(), bytes[1]);
}

#[test]
fn corpus_files_hold_grammatical_byte_documents() {
    let dir = TempDir::new("corpus-content");
    let ds = ensure_default_dataset(dir.path()).unwrap();
    assert_eq!(ds.tokenizer, "byte");
    let train = TokenFile::open(&ds.train_path).unwrap();
    let val = TokenFile::open(&ds.val_path).unwrap();
    assert_eq!(
        (train.format(), val.format()),
        (TokenFormat::LlmC, TokenFormat::LlmC)
    );
    assert!(train.len() >= TRAIN_TOKENS && train.len() < TRAIN_TOKENS + 2000);
    assert!(val.len() >= VAL_TOKENS && val.len() < VAL_TOKENS + 2000);
    assert!(
        (0.5..1.5).contains(&ds.entropy_bits_per_token),
        "{}",
        ds.entropy_bits_per_token
    );
    train.check_vocab(259).unwrap();
    // Documents are separated by EOS, the file ends with one, and each parses.
    let mut v = Vec::new();
    val.read(0..val.len(), &mut v).unwrap();
    assert_eq!(*v.last().unwrap(), ByteTokenizer::EOS);
    let docs: Vec<&[u32]> = v[..v.len() - 1]
        .split(|&t| t == ByteTokenizer::EOS)
        .collect();
    assert_eq!(docs.len() as u64, ds.val_documents);
    let tok = ByteTokenizer;
    for d in docs.iter().take(300) {
        EnglishGrammar::get().parse(&tok.decode(d)).unwrap();
    }
    // Windows over it, as the trainer opens them.
    let w = Windows::new(train, 256, tok.bos(), tok.eos()).unwrap();
    let (tr, va) = w.split(0.02).unwrap();
    let b = tr.batch(&[0, tr.len() - 1], tok.vocab_size()).unwrap();
    assert_eq!(b.len(), 512);
    assert!(!va.is_empty());
}
