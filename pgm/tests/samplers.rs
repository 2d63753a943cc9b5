//! The samplers (SPEC §6): the folded inference networks against the plain ones, naive against
//! efficient, token frequencies against the model's probabilities, prompts, and option errors.

mod common;

use common::random_model;
use pgm::checkpoint::Model;
use pgm::sampler::draw::DrawRule;
use pgm::sampler::folded::{FoldedMdlm, FoldedPgm};
use pgm::sampler::{sample, Order, SampleOptions, SamplerKind, Samples};
use pgm::InferenceInput;
use tensor::{DType, Device, Rng, Tensor};

const BOS: u32 = 1;

fn greedy() -> DrawRule {
    DrawRule {
        greedy: true,
        top_p: 1.0,
    }
}

fn u32s(v: Vec<u32>, dims: [usize; 2]) -> Tensor {
    Tensor::from_vec(v, dims, Device::Cpu).unwrap()
}

#[test]
fn folded_pgm_matches_the_network_with_padding() {
    let (model, store) = random_model("pgm-tiny", DType::F64, 3, |_| {});
    let Model::Pgm(net) = &model else { panic!() };
    let p = store.bind(None);
    // Two rows: 5 and 3 real clean tokens, 3 and 2 real queries, right-padded.
    let tokens = u32s(vec![1, 4, 7, 2, 9, 1, 3, 5, 0, 0], [2, 5]);
    let positions = u32s(vec![0, 6, 2, 11, 4, 0, 9, 15, 0, 0], [2, 5]);
    let queries = u32s(vec![3, 8, 1, 14, 5, 0], [2, 3]);
    let input = InferenceInput {
        tokens: &tokens,
        positions: &positions,
        clean_len: &[5, 3],
        query_positions: &queries,
        query_len: Some(&[3, 2]),
    };
    let want = net
        .forward_inference(&p, &input)
        .unwrap()
        .value()
        .to_vec::<f64>()
        .unwrap();
    let got = FoldedPgm::new(net, &p)
        .unwrap()
        .forward(&input)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    let v = 19;
    for (r, real) in [(0, 3), (1, 2)] {
        for j in 0..real {
            let at = (r * 3 + j) * v;
            for k in 0..v {
                let (a, b) = (want[at + k], got[at + k]);
                assert!(
                    (a == b) || (a - b).abs() < 1e-10,
                    "row {r} query {j} id {k}: network {a}, folded {b}"
                );
            }
        }
    }
}

#[test]
fn folded_mdlm_matches_the_network_at_masked_positions() {
    let (model, store) = random_model("mdlm-tiny", DType::F64, 4, |_| {});
    let Model::Mdlm(net) = &model else { panic!() };
    let p = store.bind(None);
    let mask = net.config.mask_id();
    let mut x: Vec<u32> = (0..32).map(|i| (i * 7 % 18) as u32).collect();
    for i in [3, 5, 6, 12, 20, 31] {
        x[i] = mask;
    }
    let x_t = u32s(x.clone(), [2, 16]);
    let want = net
        .forward(&p, &x_t, None)
        .unwrap()
        .value()
        .to_vec::<f64>()
        .unwrap();
    let folded = FoldedMdlm::new(net, &p).unwrap();
    let rows = [3u32, 6, 20, 31];
    let got = folded
        .log_probs_at(&folded.trunk(&x_t).unwrap(), &rows)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    for (k, &r) in rows.iter().enumerate() {
        for id in 0..19 {
            let (a, b) = (want[r as usize * 19 + id], got[k * 19 + id]);
            assert!(
                a == b || (a - b).abs() < 1e-10,
                "row {r} id {id}: {a} vs {b}"
            );
        }
    }
}

#[test]
fn naive_and_efficient_uniform_agree_greedily_left_to_right() {
    let (model, store) = random_model("pgm-tiny", DType::F64, 5, |_| {});
    for steps in [13, 5, 3] {
        let run = |kind| {
            let mut opts = SampleOptions::new(kind, steps, BOS);
            opts.draw = greedy();
            opts.order = Order::LeftToRight;
            opts.prompt = vec![(4, 7), (9, 2)];
            sample(&model, &store, &opts, 3, &mut Rng::seed(1)).unwrap()
        };
        let (naive, efficient) = (run(SamplerKind::Naive), run(SamplerKind::EfficientUniform));
        assert_eq!(naive.tokens, efficient.tokens, "{steps} steps");
        assert_eq!(efficient.model_calls, steps);
        // Greedy rows with the same start are the same, and not all one token.
        assert_eq!(efficient.tokens[0], efficient.tokens[2]);
        let distinct = efficient.tokens[0]
            .iter()
            .collect::<std::collections::BTreeSet<_>>();
        assert!(distinct.len() > 2, "{:?}", efficient.tokens[0]);
    }
}

fn check_filled(s: &Samples, opts: &SampleOptions, len: usize, mask: u32) {
    assert!(!s.tokens.is_empty());
    for row in &s.tokens {
        assert_eq!(row.len(), len);
        assert_eq!(row[0], opts.bos, "{:?}", opts.sampler);
        for &(p, t) in &opts.prompt {
            assert_eq!(row[p], t, "{:?}: prompt token at {p}", opts.sampler);
        }
        assert!(row.iter().all(|&t| t < mask), "{:?}: {row:?}", opts.sampler);
    }
}

#[test]
fn every_sampler_keeps_the_prompt_and_leaves_no_mask() {
    let (pgm, pgm_store) = random_model("pgm-tiny", DType::F32, 6, |_| {});
    let (mdlm, mdlm_store) = random_model("mdlm-tiny", DType::F32, 7, |_| {});
    for kind in SamplerKind::ALL {
        for order in [Order::Random, Order::LeftToRight] {
            for steps in [1, 4, 16] {
                let mut opts = SampleOptions::new(kind, steps, BOS);
                opts.order = order;
                opts.prompt = vec![(1, 5), (8, 3), (15, 11)];
                opts.draw.top_p = 0.9;
                if opts.evenly_sized() && steps > opts.targets(16) {
                    assert!(
                        opts.validate(pgm.config()).is_err()
                            || kind.model_kind() != pgm.config().model
                    );
                    continue;
                }
                let (m, s) = match kind.model_kind() {
                    pgm::ModelKind::Pgm => (&pgm, &pgm_store),
                    pgm::ModelKind::Mdlm => (&mdlm, &mdlm_store),
                };
                let out = sample(m, s, &opts, 4, &mut Rng::seed(steps as u64)).unwrap();
                check_filled(&out, &opts, 16, 18);
                assert!(
                    out.model_calls <= steps + 1,
                    "{kind:?}: {} calls",
                    out.model_calls
                );
                if kind == SamplerKind::Ddpm {
                    assert!(out.model_calls >= steps, "ddpm runs every step");
                }
            }
        }
    }
}

/// Frequencies of many independent draws against the model's probabilities at one position.
/// L = 3: the first step draws position 1 (left to right) from BOS alone. With N draws the
/// standard error of a frequency is at most sqrt(p(1 − p)/N) ≤ 0.0079 for N = 4000; we allow
/// 5 standard errors per id (for this fixed seed the largest deviation is far below).
#[test]
fn draws_follow_the_model_probabilities() {
    let n = 4000;
    for (preset, kind) in [
        ("pgm-tiny", SamplerKind::EfficientUniform),
        ("pgm-tiny", SamplerKind::Naive),
        ("mdlm-tiny", SamplerKind::DdpmCache),
    ] {
        for top_p in [1.0, 0.6] {
            let (model, store) = random_model(preset, DType::F64, 8, |c| c.seq_len = 3);
            let mut opts = SampleOptions::new(kind, 2, BOS);
            opts.order = Order::LeftToRight;
            opts.draw.top_p = top_p;
            let out = sample(&model, &store, &opts, n, &mut Rng::seed(11)).unwrap();
            let probs = first_position_probs(&model, &store);
            let want = nucleus_probs(&probs, top_p);
            let mut freq = vec![0.0; probs.len()];
            for row in &out.tokens {
                freq[row[1] as usize] += 1.0 / n as f64;
            }
            for (id, (&f, &p)) in freq.iter().zip(&want).enumerate() {
                let tol = 5.0 * (p * (1.0 - p) / n as f64).sqrt() + 1e-12;
                assert!(
                    (f - p).abs() <= tol,
                    "{kind:?} top-p {top_p} id {id}: frequency {f}, probability {p}"
                );
            }
            assert!(freq[18] == 0.0, "MASK was drawn");
        }
    }
}

/// The model's probabilities at position 1 given BOS only (L = 3).
fn first_position_probs(model: &Model, store: &nn::ParamStore) -> Vec<f64> {
    let p = store.bind(None);
    let lp = match model {
        Model::Pgm(net) => {
            let input = InferenceInput {
                tokens: &u32s(vec![BOS], [1, 1]),
                positions: &u32s(vec![0], [1, 1]),
                clean_len: &[1],
                query_positions: &u32s(vec![1], [1, 1]),
                query_len: None,
            };
            net.forward_inference(&p, &input).unwrap()
        }
        Model::Mdlm(net) => {
            let m = net.config.mask_id();
            let lp = net
                .forward(&p, &u32s(vec![BOS, m, m], [1, 3]), None)
                .unwrap();
            lp.narrow(1, 1, 1).unwrap()
        }
    };
    lp.value()
        .to_vec::<f64>()
        .unwrap()
        .iter()
        .map(|l| l.exp())
        .collect()
}

/// Probabilities restricted to the nucleus and renormalised (an independent implementation:
/// ids by decreasing probability until the sum reaches top-p).
fn nucleus_probs(probs: &[f64], top_p: f64) -> Vec<f64> {
    let mut ids: Vec<usize> = (0..probs.len()).collect();
    ids.sort_by(|&a, &b| probs[b].partial_cmp(&probs[a]).unwrap());
    let mut kept = vec![0.0; probs.len()];
    let mut total = 0.0;
    for i in ids {
        kept[i] = probs[i];
        total += probs[i];
        if total >= top_p {
            break;
        }
    }
    kept.iter().map(|k| k / total).collect()
}

#[test]
fn bad_options_are_clear_errors() {
    let (pgm, store) = random_model("pgm-tiny", DType::F32, 9, |_| {});
    let (mdlm, mdlm_store) = random_model("mdlm-tiny", DType::F32, 9, |_| {});
    let err = |model: &Model, store: &nn::ParamStore, opts: &SampleOptions| {
        sample(model, store, opts, 2, &mut Rng::seed(0))
            .unwrap_err()
            .to_string()
    };
    let opts = SampleOptions::new(SamplerKind::Naive, 17, BOS);
    assert!(err(&pgm, &store, &opts).contains("between 1 and the sequence length L = 16"));
    let opts = SampleOptions::new(SamplerKind::EfficientUniform, 16, BOS);
    assert!(err(&pgm, &store, &opts).contains("at most 15 steps"));
    for top_p in [0.0, 1.5, -0.1, f64::NAN] {
        let mut opts = SampleOptions::new(SamplerKind::EfficientUniform, 4, BOS);
        opts.draw.top_p = top_p;
        assert!(err(&pgm, &store, &opts).contains("top-p must be in (0, 1]"));
    }
    let opts = SampleOptions::new(SamplerKind::EfficientUniform, 4, BOS);
    let e = err(&mdlm, &mdlm_store, &opts);
    assert!(
        e.contains("efficient-uniform sampler needs a Pgm model") && e.contains("Mdlm"),
        "{e}"
    );
    let opts = SampleOptions::new(SamplerKind::DdpmCache, 4, BOS);
    assert!(err(&pgm, &store, &opts).contains("needs a Mdlm model"));
    let e = "greedy".parse::<SamplerKind>().unwrap_err().to_string();
    assert!(
        e.contains("unknown sampler 'greedy'") && e.contains("efficient-non-uniform"),
        "{e}"
    );
    let mut opts = SampleOptions::new(SamplerKind::EfficientUniform, 4, BOS);
    opts.prompt = vec![(0, 3)];
    assert!(err(&pgm, &store, &opts).contains("position 0 is BOS"));
    opts.prompt = vec![(3, 18)];
    assert!(err(&pgm, &store, &opts).contains("MASK or outside"));
}
