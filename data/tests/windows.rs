//! Windows: BOS + slice + EOS, batching, vocabulary checks, too-short files, the split.

mod common;

use common::TempDir;
use data::{write_tokens, DataError, TokenFile, TokenFormat, Windows};

const BOS: u32 = 256;
const EOS: u32 = 257;

fn windows(dir: &TempDir, tokens: &[u32], format: TokenFormat, seq_len: usize) -> Windows {
    let p = dir.join("w.bin");
    write_tokens(&p, tokens, format).unwrap();
    Windows::new(TokenFile::open(&p).unwrap(), seq_len, BOS, EOS).unwrap()
}

#[test]
fn windows_are_bos_slice_eos_in_row_major_batches() {
    let dir = TempDir::new("windows");
    let tokens: Vec<u32> = (0..103).map(|i| i % 250).collect();
    for format in [TokenFormat::NanoGpt, TokenFormat::LlmC, TokenFormat::U32] {
        let w = windows(&dir, &tokens, format, 12); // 10 file tokens per window
        assert_eq!(w.len(), 10, "103 tokens / 10 per window, remainder dropped");
        assert_eq!(w.seq_len(), 12);
        for k in 0..w.len() {
            let row = w.window(k, 259).unwrap();
            let mut want = vec![BOS];
            want.extend(&tokens[k * 10..(k + 1) * 10]);
            want.push(EOS);
            assert_eq!(row, want, "window {k}");
        }
        let b = w.batch(&[3, 0, 3, 9], 259).unwrap();
        assert_eq!(b.len(), 4 * 12);
        for (r, &k) in [3usize, 0, 3, 9].iter().enumerate() {
            assert_eq!(&b[r * 12..(r + 1) * 12], &w.window(k, 259).unwrap()[..]);
        }
    }
}

#[test]
fn exactly_one_window_and_too_short_files() {
    let dir = TempDir::new("short");
    let w = windows(&dir, &[1, 2, 3], TokenFormat::LlmC, 5);
    assert_eq!(w.len(), 1);
    assert_eq!(w.window(0, 259).unwrap(), vec![BOS, 1, 2, 3, EOS]);
    let p = dir.join("short.bin");
    write_tokens(&p, &[1, 2, 3], TokenFormat::LlmC).unwrap();
    let e = Windows::new(TokenFile::open(&p).unwrap(), 6, BOS, EOS).unwrap_err();
    assert!(matches!(
        e,
        DataError::TooShort {
            tokens: 3,
            seq_len: 6,
            ..
        }
    ));
    let msg = e.to_string();
    for w in [&p.display().to_string(), "3 tokens", "L = 6", "4 tokens"] {
        assert!(msg.contains(w), "{msg} lacks {w}");
    }
    let e = Windows::new(TokenFile::open(&p).unwrap(), 2, BOS, EOS).unwrap_err();
    assert!(e.to_string().contains("at least 3"), "{e}");
}

#[test]
fn ids_outside_the_vocabulary_name_file_offset_and_id() {
    let dir = TempDir::new("vocab");
    let mut tokens: Vec<u32> = (0..40).collect();
    tokens[27] = 300;
    let w = windows(&dir, &tokens, TokenFormat::LlmC, 10); // 8 per window: token 27 is in window 3
    w.batch(&[0, 1, 2, 4], 259).unwrap();
    let e = w.batch(&[0, 3], 259).unwrap_err();
    assert!(
        matches!(
            e,
            DataError::TokenOutOfRange {
                offset: 27,
                id: 300,
                vocab_size: 259,
                ..
            }
        ),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("w.bin") && msg.contains("token offset 27") && msg.contains("300"),
        "{msg}"
    );
    // BOS/EOS themselves outside the vocabulary, and a bad index.
    assert!(w
        .batch(&[0], 200)
        .unwrap_err()
        .to_string()
        .contains("BOS id 256"));
    assert!(w
        .batch(&[5], 400)
        .unwrap_err()
        .to_string()
        .contains("window index 5 out of range for 5 windows"));
}

#[test]
fn split_keeps_the_last_windows_for_validation() {
    let dir = TempDir::new("split");
    let tokens: Vec<u32> = (0..200).collect();
    let w = windows(&dir, &tokens, TokenFormat::LlmC, 12); // 20 windows
    let all: Vec<Vec<u32>> = (0..20).map(|k| w.window(k, 259).unwrap()).collect();
    let (train, val) = w.clone().split(0.1).unwrap();
    assert_eq!((train.len(), val.len()), (18, 2));
    for (k, want) in all.iter().enumerate().take(18) {
        assert_eq!(&train.window(k, 259).unwrap(), want);
    }
    for k in 0..2 {
        assert_eq!(val.window(k, 259).unwrap(), all[18 + k]);
        assert_eq!(val.token_offset(k), (18 + k) * 10);
    }
    assert!(
        train.window(18, 259).is_err(),
        "the training split does not see validation windows"
    );
    // A tiny fraction still holds out one window; zero holds out none.
    assert_eq!(w.clone().split(0.001).unwrap().1.len(), 1);
    assert_eq!(w.clone().split(0.0).unwrap().1.len(), 0);
    // Impossible fractions.
    for f in [1.0, -0.1, f64::NAN] {
        assert!(w.clone().split(f).is_err(), "{f}");
    }
    let one = windows(&dir, &tokens[..10], TokenFormat::LlmC, 12);
    let e = one.split(0.5).unwrap_err().to_string();
    assert!(e.contains("cannot hold out 1 of 1 windows"), "{e}");
}
