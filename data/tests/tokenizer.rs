//! Tokenizers round-trip text; special ids; GPT-2 ids match the reference.

use data::{tokenizer_by_name, ByteTokenizer, Gpt2Tokenizer, Tokenizer};

const TEXTS: &[&str] = &[
    "",
    "Hello world",
    "The cat sleeps.\nA second line\twith a tab.",
    "naïve café — 日本語のテキスト, emoji 🦀🚀, Ελληνικά, العربية",
    "\u{0}\u{1f}control\u{7f} and <|endoftext|> as plain text",
    "   leading and trailing spaces   ",
];

#[test]
fn byte_tokenizer_round_trips_any_utf8() {
    let t = ByteTokenizer;
    for s in TEXTS {
        let ids = t.encode(s);
        assert_eq!(ids.len(), s.len());
        assert!(ids.iter().all(|&i| i < 256));
        assert_eq!(t.decode(&ids), *s);
    }
    // Every code point of a range, too.
    let all: String = (0u32..0x3000).filter_map(char::from_u32).collect();
    assert_eq!(t.decode(&t.encode(&all)), all);
}

#[test]
fn byte_tokenizer_specials_are_visible_and_invalid_bytes_lossy() {
    let t = ByteTokenizer;
    assert_eq!(
        (t.bos(), t.eos(), t.mask(), t.vocab_size()),
        (256, 257, 258, 259)
    );
    let mut ids = vec![256];
    ids.extend(t.encode("hi"));
    ids.extend([257, 258, 0xff, b'!' as u32, 999]);
    assert_eq!(
        t.decode(&ids),
        "<|bos|>hi<|eos|><|mask|>\u{fffd}!<|unk:999|>"
    );
    // A multi-byte character cut by a special id is lossy on both sides.
    let e = "é".as_bytes();
    assert_eq!(
        t.decode(&[e[0] as u32, 257, e[1] as u32]),
        "\u{fffd}<|eos|>\u{fffd}"
    );
}

#[test]
fn gpt2_matches_the_reference_ids_and_round_trips() {
    let t = Gpt2Tokenizer::new().unwrap();
    assert_eq!(t.encode("Hello world"), vec![15496, 995]);
    assert_eq!(t.encode(" the"), vec![262]);
    assert_eq!(
        (t.bos(), t.eos(), t.mask(), t.vocab_size()),
        (50256, 50256, 50257, 50258)
    );
    for s in TEXTS {
        let ids = t.encode(s);
        assert!(
            ids.iter().all(|&i| i < 50256),
            "encode never produces specials: {s:?}"
        );
        assert_eq!(t.decode(&ids), *s);
    }
    assert_eq!(
        t.decode(&[15496, 50256, 50257, 995]),
        "Hello<|endoftext|><|mask|> world"
    );
    assert_eq!(t.decode(&[60000]), "<|unk:60000|>");
}

#[test]
fn tokenizers_by_name() {
    assert_eq!(tokenizer_by_name("byte").unwrap().vocab_size(), 259);
    let g = tokenizer_by_name("gpt2").unwrap();
    assert_eq!((g.name(), g.vocab_size()), ("gpt2", 50258));
    let e = tokenizer_by_name("bpe").err().unwrap().to_string();
    assert!(
        e.contains("unknown tokenizer \"bpe\"") && e.contains("byte or gpt2"),
        "{e}"
    );
}
