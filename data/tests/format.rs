//! Token files: every format reads back what was written, detection, and clear errors.

mod common;

use common::{header, TempDir};
use data::format::{LLMC_MAGIC, U32_MAGIC};
use data::{write_tokens, DataError, TokenFile, TokenFormat, TokenWriter};

fn read_all(f: &TokenFile) -> Vec<u32> {
    let mut v = Vec::new();
    f.read(0..f.len(), &mut v).unwrap();
    v
}

#[test]
fn every_format_reads_back_exactly_with_auto_detection() {
    let dir = TempDir::new("roundtrip");
    let small: Vec<u32> = (0..5000u32)
        .map(|i| (i * 7919) % 65536)
        .chain([0, 65535])
        .collect();
    let wide: Vec<u32> = (0..5000u32)
        .map(|i| i.wrapping_mul(2_654_435_761))
        .chain([0, u32::MAX])
        .collect();
    for (format, tokens) in [
        (TokenFormat::NanoGpt, &small),
        (TokenFormat::LlmC, &small),
        (TokenFormat::U32, &wide),
    ] {
        let path = dir.join(&format!("{format}.bin"));
        write_tokens(&path, tokens, format).unwrap();
        let size = std::fs::metadata(&path).unwrap().len() as usize;
        assert_eq!(
            size,
            format.header_bytes() + tokens.len() * format.bytes_per_token()
        );
        let f = TokenFile::open(&path).unwrap();
        assert_eq!(f.format(), format, "detected format of {}", path.display());
        assert_eq!(f.len(), tokens.len());
        assert_eq!(&read_all(&f), tokens);
        for i in [0, 1, 17, tokens.len() - 1] {
            assert_eq!(f.get(i), tokens[i]);
        }
        let mut part = vec![42];
        f.read(10..20, &mut part).unwrap();
        assert_eq!(part[0], 42, "read appends");
        assert_eq!(&part[1..], &tokens[10..20]);
    }
}

#[test]
fn headers_are_the_documented_ones() {
    let dir = TempDir::new("headers");
    let p = dir.join("a.bin");
    write_tokens(&p, &[1, 2, 3], TokenFormat::LlmC).unwrap();
    let b = std::fs::read(&p).unwrap();
    assert_eq!(&b[..12], &header(&[(0, 20240520), (1, 1), (2, 3)])[..12]);
    assert!(b[12..1024].iter().all(|&x| x == 0));
    assert_eq!(&b[1024..], &[1, 0, 2, 0, 3, 0]);
    write_tokens(&p, &[70000], TokenFormat::U32).unwrap();
    let b = std::fs::read(&p).unwrap();
    assert_eq!(
        &b[..16],
        &header(&[(0, 20250522), (1, 1), (2, 1), (3, 0)])[..16]
    );
    assert_eq!(&b[1024..], &70000u32.to_le_bytes());
    write_tokens(&p, &[513], TokenFormat::NanoGpt).unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), vec![1, 2]);
}

#[test]
fn empty_files_are_valid_and_empty() {
    let dir = TempDir::new("empty");
    for format in [TokenFormat::NanoGpt, TokenFormat::LlmC, TokenFormat::U32] {
        let p = dir.join(&format!("{format}.bin"));
        write_tokens(&p, &[], format).unwrap();
        let f = TokenFile::open(&p).unwrap();
        assert_eq!((f.format(), f.len(), f.is_empty()), (format, 0, true));
    }
}

/// Asserts `err` names `path` and contains every one of `words`.
fn assert_names(err: &DataError, path: &std::path::Path, words: &[&str]) {
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "message does not name the file: {msg}"
    );
    for w in words {
        assert!(msg.contains(w), "message lacks {w:?}: {msg}");
    }
}

#[test]
fn truncated_files_of_each_format_are_reported() {
    let dir = TempDir::new("truncated");
    // nanoGPT: an odd byte count.
    let p = dir.join("nano.bin");
    std::fs::write(&p, [1u8, 0, 2]).unwrap();
    let e = TokenFile::open(&p).unwrap_err();
    assert!(matches!(e, DataError::Truncated { .. }));
    assert_names(&e, &p, &["truncated", "odd", "3 bytes"]);
    // llm.c and u32: data shorter than the header announces, and a cut header.
    for (magic, bpt, name) in [(LLMC_MAGIC, 2, "llmc"), (U32_MAGIC, 4, "u32")] {
        let p = dir.join(&format!("{name}.bin"));
        let mut b = header(&[(0, magic), (1, 1), (2, 100)]);
        b.extend(vec![0u8; 99 * bpt]);
        std::fs::write(&p, &b).unwrap();
        let e = TokenFile::open(&p).unwrap_err();
        assert!(matches!(e, DataError::Truncated { .. }), "{e}");
        assert_names(
            &e,
            &p,
            &["truncated", "100 tokens", &format!("{} bytes", 99 * bpt)],
        );
        std::fs::write(&p, &b[..600]).unwrap();
        let e = TokenFile::open(&p).unwrap_err();
        assert_names(&e, &p, &["truncated", "header needs 1024 bytes", "600"]);
    }
}

#[test]
fn corrupt_headers_are_reported() {
    let dir = TempDir::new("corrupt");
    let p = dir.join("bad.bin");
    // Wrong version.
    let mut b = header(&[(0, LLMC_MAGIC), (1, 3), (2, 1)]);
    b.extend([0u8, 0]);
    std::fs::write(&p, &b).unwrap();
    let e = TokenFile::open(&p).unwrap_err();
    assert!(matches!(e, DataError::Header { .. }));
    assert_names(&e, &p, &["version 3", "llm.c"]);
    // Negative count.
    std::fs::write(&p, header(&[(0, LLMC_MAGIC), (1, 1), (2, -5)])).unwrap();
    assert_names(
        &TokenFile::open(&p).unwrap_err(),
        &p,
        &["negative token count -5"],
    );
    // More data than announced.
    let mut b = header(&[(0, U32_MAGIC), (1, 1), (2, 1)]);
    b.extend([0u8; 12]);
    std::fs::write(&p, &b).unwrap();
    let e = TokenFile::open(&p).unwrap_err();
    assert!(matches!(e, DataError::Header { .. }));
    assert_names(&e, &p, &["announces 1 tokens", "12 bytes"]);
    // A missing file.
    let missing = dir.join("missing.bin");
    assert_names(
        &TokenFile::open(&missing).unwrap_err(),
        &missing,
        &["cannot open the file", "No such file"],
    );
}

#[test]
fn ids_that_do_not_fit_are_refused_and_nothing_is_written() {
    let dir = TempDir::new("unrepresentable");
    let p = dir.join("x.bin");
    for format in [TokenFormat::NanoGpt, TokenFormat::LlmC] {
        let e = write_tokens(&p, &[1, 2, 65536, 3], format).unwrap_err();
        assert!(
            matches!(
                e,
                DataError::Unrepresentable {
                    id: 65536,
                    offset: 2,
                    ..
                }
            ),
            "{e}"
        );
        assert_names(&e, &p, &["65536", "offset 2", format.name()]);
        assert!(!p.exists());
    }
    // Nothing but the target is ever left in the folder (temporary files are cleaned up).
    write_tokens(&p, &[1, 2], TokenFormat::LlmC).unwrap();
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("x.bin")]);
}

#[test]
fn streaming_writer_matches_write_tokens_and_drop_leaves_the_target_alone() {
    let dir = TempDir::new("writer");
    let p = dir.join("s.bin");
    let mut w = TokenWriter::create(&p, TokenFormat::U32).unwrap();
    w.push(&[1, 2, 3]).unwrap();
    w.push(&[]).unwrap();
    w.push(&[100_000]).unwrap();
    assert_eq!(w.len(), 4);
    assert_eq!(w.finish().unwrap(), 4);
    assert_eq!(
        read_all(&TokenFile::open(&p).unwrap()),
        vec![1, 2, 3, 100_000]
    );
    // An abandoned writer does not touch the existing file.
    let mut w = TokenWriter::create(&p, TokenFormat::U32).unwrap();
    w.push(&[9, 9]).unwrap();
    drop(w);
    assert_eq!(
        read_all(&TokenFile::open(&p).unwrap()),
        vec![1, 2, 3, 100_000]
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn out_of_range_reads_and_vocab_checks_name_the_file() {
    let dir = TempDir::new("ranges");
    let p = dir.join("r.bin");
    write_tokens(&p, &[5, 6, 300, 7], TokenFormat::LlmC).unwrap();
    let f = TokenFile::open(&p).unwrap();
    let e = f.read(2..9, &mut Vec::new()).unwrap_err();
    assert_names(&e, &p, &["2..9", "4 tokens"]);
    f.check_vocab(301).unwrap();
    let e = f.check_vocab(259).unwrap_err();
    assert!(matches!(
        e,
        DataError::TokenOutOfRange {
            offset: 2,
            id: 300,
            vocab_size: 259,
            ..
        }
    ));
    assert_names(&e, &p, &["token id 300", "offset 2", "259"]);
}

#[test]
fn format_names_and_auto_choice() {
    for f in [TokenFormat::NanoGpt, TokenFormat::LlmC, TokenFormat::U32] {
        assert_eq!(f.name().parse::<TokenFormat>().unwrap(), f);
    }
    assert!("u16".parse::<TokenFormat>().is_err());
    assert_eq!(TokenFormat::for_vocab(259), TokenFormat::LlmC);
    assert_eq!(TokenFormat::for_vocab(50258), TokenFormat::LlmC);
    assert_eq!(TokenFormat::for_vocab(65536), TokenFormat::LlmC);
    assert_eq!(TokenFormat::for_vocab(65537), TokenFormat::U32);
    assert!(!TokenFormat::NanoGpt.fits_vocab(100_000));
}

#[test]
fn writing_into_a_missing_folder_names_the_target() {
    let dir = TempDir::new("nofolder");
    let p = dir.join("no/such/folder/x.bin");
    let e = write_tokens(&p, &[1], TokenFormat::LlmC).unwrap_err();
    assert_names(&e, &p, &["cannot create a temporary file next to it"]);
}
