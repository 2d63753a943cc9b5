//! The built-in grammar: unambiguous (LL(1), lexicon disjoint, rendering invertible, sampled
//! documents parse back to their derivations) and its exact entropy matches Monte Carlo.

use data::grammar::is_punctuation;
use data::{corpus_entropy, EnglishGrammar, Rng};
use std::collections::{HashMap, HashSet};

#[test]
fn grammar_is_ll1_and_subcritical() {
    // `build` runs the LL(1) check and the subcriticality check; an error lists conflicts.
    if let Err(e) = EnglishGrammar::build() {
        panic!("{e}");
    }
}

#[test]
fn every_word_belongs_to_one_category_and_is_unique_ignoring_case() {
    let mut seen: HashMap<String, &str> = HashMap::new();
    for &(cat, words) in EnglishGrammar::lexicon() {
        for w in words {
            assert!(w.bytes().all(|b| b.is_ascii_alphabetic()), "{w}");
            let capitalised = w.starts_with(|c: char| c.is_ascii_uppercase());
            assert_eq!(
                capitalised,
                cat == "Name",
                "only names are capitalised: {w}"
            );
            if let Some(other) = seen.insert(w.to_ascii_lowercase(), cat) {
                panic!("{w:?} is in both {other} and {cat}");
            }
        }
    }
    // Function words used directly in rules are in no lexical category either.
    let g = EnglishGrammar::get().grammar();
    for t in g.terminals() {
        if !is_punctuation(t) && !seen.contains_key(&t.to_ascii_lowercase()) {
            assert!(
                ["that", "is", "are", "be", "and", "of", "there", "please", "what", "does", "do"]
                    .contains(&t.as_str()),
                "unexpected rule word {t}"
            );
        }
    }
    assert!(
        (300..=400).contains(&seen.len()),
        "lexicon of {} words",
        seen.len()
    );
}

#[test]
fn sampled_documents_parse_back_to_their_unique_derivation() {
    let eg = EnglishGrammar::get();
    let g = eg.grammar();
    let mut rng = Rng::seed(2024);
    let mut by_text: HashMap<String, Vec<u32>> = HashMap::new();
    let mut derivations = HashSet::new();
    for i in 0..5000 {
        let mut text = String::new();
        let mut d = Vec::new();
        let lp = eg.sample(&mut rng, &mut text, Some(&mut d));
        // Text → terminals → derivation gives exactly the sampled derivation.
        let parsed = eg
            .parse(&text)
            .unwrap_or_else(|e| panic!("document {i} {text:?}: {e}"));
        assert_eq!(parsed, d, "document {i}: {text:?}");
        assert!((g.log_prob(&parsed) - lp).abs() < 1e-9);
        // Rendering is invertible and its length is what the expected-length model counts.
        let terms = eg.lex(&text).unwrap();
        assert_eq!(eg.render(&terms), text);
        let cost: usize = terms.iter().map(|&t| eg.cost(t)).sum();
        assert_eq!(text.len(), cost - 1, "{text:?}");
        // Distinct derivations never gave the same text.
        if let Some(prev) = by_text.insert(text.clone(), d.clone()) {
            assert_eq!(prev, d, "two derivations of {text:?}");
        }
        derivations.insert(d);
    }
    assert!(
        derivations.len() > 4900,
        "documents are diverse: {}",
        derivations.len()
    );
}

#[test]
fn text_outside_the_language_is_rejected() {
    let eg = EnglishGrammar::get();
    for bad in [
        "The cat sleeps.",
        "The cat sleep. The dog runs.",
        "Cat the sleeps. A dog runs.",
        "The  cat sleeps. A dog runs.",
        "The cat sleeps. A dog runs",
        "The cat sleeps. A unicorn runs.",
    ] {
        assert!(eg.parse(bad).is_err(), "{bad:?} should not parse");
    }
    eg.parse("The cat sleeps. A dog runs.").unwrap();
    eg.parse("Anna says that the cats sleep. Is Tom happy? What a lovely garden!")
        .unwrap();
}

#[test]
fn exact_entropy_and_length_match_monte_carlo() {
    let exact = corpus_entropy().unwrap();
    println!("{exact:#?}");
    let eg = EnglishGrammar::get();
    let mut rng = Rng::seed(99);
    let n = 40_000usize;
    let (mut info, mut len) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let mut text = String::new();
        let lp = eg.sample(&mut rng, &mut text, None);
        info.push(-lp);
        len.push(text.len() as f64 + 1.0); // + EOS
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (mi, ml) = (mean(&info), mean(&len));
    let rate = mi / ml;
    // Standard errors: of the mean length, and of the ratio (delta method).
    let sd = |v: &[f64], m: f64| {
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
    };
    let se_len = sd(&len, ml) / (n as f64).sqrt();
    let resid: Vec<f64> = info.iter().zip(&len).map(|(i, l)| i - rate * l).collect();
    let se_rate = sd(&resid, 0.0) / (n as f64).sqrt() / ml;
    println!(
        "Monte Carlo over {n} documents: {rate:.5} ± {se_rate:.5} nats/token (exact {:.5}), \
         {ml:.2} ± {se_len:.2} tokens/document (exact {:.2})",
        exact.entropy_nats_per_token, exact.expected_document_tokens
    );
    assert!(
        (rate - exact.entropy_nats_per_token).abs() < 5.0 * se_rate,
        "rate {rate} vs {}",
        exact.entropy_nats_per_token
    );
    assert!((ml - exact.expected_document_tokens).abs() < 5.0 * se_len);
    assert!((mi - exact.document_entropy_nats).abs() < 5.0 * sd(&info, mi) / (n as f64).sqrt());
    // Consistency of the reported figures.
    assert!(
        (exact.entropy_bits_per_token * std::f64::consts::LN_2 - exact.entropy_nats_per_token)
            .abs()
            < 1e-12
    );
    assert!((exact.expected_sentences - 3.0).abs() < 1e-9);
    assert!(
        (40.0..80.0).contains(&exact.expected_sentence_bytes),
        "{}",
        exact.expected_sentence_bytes
    );
}
