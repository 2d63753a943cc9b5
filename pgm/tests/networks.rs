//! The networks: parameter counts, gradients, the no-leakage invariant, training/inference
//! agreement.

mod common;

use autograd::gradcheck::GradCheck;
use autograd::Tape;
use common::{random_groups, random_model, random_tokens};
use nn::Bound;
use pgm::checkpoint::Model;
use pgm::config::{AttentionImpl, ModelConfig, PreQueryMode, QueryProcessor, PRESETS};
use pgm::loss::{mdlm_loss, pgm_loss, LossForm, NoisedBatch};
use pgm::{InferenceInput, MdlmNetwork, PgmNetwork};
use tensor::{DType, Device, Rng, Tensor};

fn pgm(m: &Model) -> &PgmNetwork {
    match m {
        Model::Pgm(n) => n,
        Model::Mdlm(_) => panic!("expected a PGM"),
    }
}
fn mdlm(m: &Model) -> &MdlmNetwork {
    match m {
        Model::Mdlm(n) => n,
        Model::Pgm(_) => panic!("expected an MDLM"),
    }
}

#[test]
fn preset_parameter_counts_match_the_reference_architecture() {
    let expected = [
        ("pgm-6-6", 171_996_498),
        ("pgm-8-8", 202_708_818),
        ("pgm-6-6-d1024", 268_092_754),
        ("mdlm-small", 169_627_218),
        ("pgm-cpu", 6_431_491),
        ("mdlm-cpu", 6_166_787),
    ];
    for (name, count) in expected {
        let cfg = ModelConfig::preset(name).unwrap();
        println!("{name}: {} parameters", cfg.num_params());
        assert_eq!(cfg.num_params(), count, "{name}");
    }
    // The count formula agrees with what the constructors build, for every preset we can
    // afford to build here and every GroupSwap variant.
    for name in PRESETS
        .iter()
        .filter(|n| n.ends_with("-cpu") || n.ends_with("-tiny"))
    {
        for qp in [QueryProcessor::Linear, QueryProcessor::Mlp4] {
            let mut cfg = ModelConfig::preset(name).unwrap();
            cfg.query_processor = qp;
            let (_, store) = Model::new(&cfg, DType::F32, Device::Cpu, 0).unwrap();
            assert_eq!(store.num_elements(), cfg.num_params(), "{name} {qp:?}");
        }
    }
}

/// Every weight as an input of a directional gradient check of the whole loss.
fn check_whole_loss(
    model: &Model,
    store: &nn::ParamStore,
    loss: impl Fn(&Bound) -> tensor::Result<autograd::Var>,
) {
    let names: Vec<String> = store.iter().map(|(n, _)| n.clone()).collect();
    let values: Vec<Tensor> = store.iter().map(|(_, t)| t.clone()).collect();
    let cfg = GradCheck {
        eps: 1e-5,
        atol: 1e-7,
        rtol: 1e-5,
        ..GradCheck::default()
    };
    let report = cfg
        .run_directional(&values, |vars| {
            // The checker's variables stand in for the parameters.
            loss(&Bound::from_vars(
                names.iter().cloned().zip(vars.iter().cloned()),
            ))
        })
        .unwrap_or_else(|e| panic!("{:?}: {e}", model.config().model));
    assert_eq!(report.checked_elements, store.num_elements());
}

#[test]
fn whole_loss_gradients_match_finite_differences() {
    let mut rng = Rng::seed(1);
    for mode in [
        PreQueryMode::LearnFreqs,
        PreQueryMode::LearnFreqsMean,
        PreQueryMode::LearnFreqsLogsumexp,
    ] {
        let (model, store) = random_model("pgm-tiny", DType::F64, 3, |c| c.pre_query_mode = mode);
        let batch = NoisedBatch::sample(&random_tokens(3, 12, 19, &mut rng), &mut rng).unwrap();
        check_whole_loss(&model, &store, |p| {
            pgm_loss(pgm(&model), p, &batch, LossForm::Train, None)
        });
    }
    let (model, store) = random_model("mdlm-tiny", DType::F64, 4, |_| {});
    let batch = NoisedBatch::sample(&random_tokens(3, 12, 19, &mut rng), &mut rng).unwrap();
    check_whole_loss(&model, &store, |p| mdlm_loss(mdlm(&model), p, &batch, None));
}

#[test]
fn every_parameter_receives_a_nonzero_gradient() {
    let mut rng = Rng::seed(2);
    for preset in ["pgm-tiny", "mdlm-tiny"] {
        let (model, store) = random_model(preset, DType::F32, 5, |_| {});
        let batch = NoisedBatch::sample(&random_tokens(4, 16, 19, &mut rng), &mut rng).unwrap();
        let tape = Tape::new();
        let p = store.bind(Some(&tape));
        let loss = match &model {
            Model::Pgm(n) => pgm_loss(n, &p, &batch, LossForm::Train, None).unwrap(),
            Model::Mdlm(n) => mdlm_loss(n, &p, &batch, None).unwrap(),
        };
        let grads = p.gradients(&loss.backward().unwrap());
        for (name, _) in store.iter() {
            let g = grads
                .get(name)
                .unwrap_or_else(|| panic!("{preset}: no gradient for {name}"));
            let norm: f64 = g.to_f64_vec().unwrap().iter().map(|x| x * x).sum();
            assert!(norm > 0.0, "{preset}: zero gradient for {name}");
        }
    }
}

/// log-probabilities [B, L, V] of a training forward, as f64.
fn train_log_probs(
    net: &PgmNetwork,
    store: &nn::ParamStore,
    tokens: &Tensor,
    groups: &Tensor,
) -> Vec<f64> {
    net.forward_train(&store.bind(None), tokens, groups, None)
        .unwrap()
        .value()
        .to_f64_vec()
        .unwrap()
}

#[test]
fn no_leakage_in_training_mode() {
    let (b, l, v) = (2, 16, 19);
    for (mode, how) in [
        (PreQueryMode::LearnFreqs, AttentionImpl::Gathered),
        (PreQueryMode::LearnFreqsMean, AttentionImpl::Dense),
        (PreQueryMode::LearnFreqsLogsumexp, AttentionImpl::Gathered),
    ] {
        let (model, store) = random_model("pgm-tiny", DType::F32, 7, |c| {
            c.pre_query_mode = mode;
            c.attention = how;
        });
        let net = pgm(&model);
        let mut rng = Rng::seed(8);
        let tokens = random_tokens(b, l, v, &mut rng);
        let groups = random_groups(b, l, 0.4, &mut rng);
        let base = train_log_probs(net, &store, &tokens, &groups);
        let g = groups.to_vec::<u8>().unwrap();
        let i = 5; // row 0, position 5
        for j in 0..l {
            let mut changed = tokens.to_vec::<u32>().unwrap();
            changed[j] = (changed[j] + 3) % (v as u32 - 1);
            let out = train_log_probs(
                net,
                &store,
                &Tensor::from_vec(changed, [b, l], Device::Cpu).unwrap(),
                &groups,
            );
            let diff: f64 = (0..v)
                .map(|k| (out[i * v + k] - base[i * v + k]).abs())
                .fold(0.0, f64::max);
            if g[j] == g[i] {
                assert!(diff < 1e-6, "{mode:?}: changing token {j} (same group as {i}) moved its prediction by {diff}");
            } else {
                assert!(
                    diff > 1e-6,
                    "{mode:?}: changing token {j} (other group) did not move the prediction at {i}"
                );
            }
        }
    }
}

#[test]
fn training_and_inference_forward_agree_and_inference_does_not_leak() {
    let (l, v) = (16, 19);
    let (model, store) = random_model("pgm-tiny", DType::F32, 9, |c| {
        c.pre_query_mode = PreQueryMode::LearnFreqsMean
    });
    let net = pgm(&model);
    let mut rng = Rng::seed(10);
    let tokens = random_tokens(1, l, v, &mut rng);
    let groups = random_groups(1, l, 0.5, &mut rng);
    let train = train_log_probs(net, &store, &tokens, &groups);
    let (tok, g) = (
        tokens.to_vec::<u32>().unwrap(),
        groups.to_vec::<u8>().unwrap(),
    );
    // Clean set: group 0, packed in reverse order, plus two pad slots; queries: group 1.
    let mut clean: Vec<usize> = (0..l).filter(|&j| g[j] == 0).collect();
    clean.reverse();
    let queries: Vec<usize> = (0..l).filter(|&j| g[j] == 1).collect();
    let pad = 2;
    let n = clean.len() + pad;
    let ct: Vec<u32> = clean.iter().map(|&j| tok[j]).chain([7, 3]).collect();
    let cp: Vec<u32> = clean.iter().map(|&j| j as u32).chain([1, 2]).collect();
    let qp: Vec<u32> = queries.iter().map(|&j| j as u32).collect();
    let run = |ct: &[u32], qp: &[u32]| -> Vec<f64> {
        let input = InferenceInput {
            tokens: &Tensor::from_slice(ct, [1, n], Device::Cpu).unwrap(),
            positions: &Tensor::from_slice(&cp, [1, n], Device::Cpu).unwrap(),
            clean_len: &[clean.len()],
            query_positions: &Tensor::from_slice(qp, [1, qp.len()], Device::Cpu).unwrap(),
            query_len: None,
        };
        let out = net.forward_inference(&store.bind(None), &input).unwrap();
        assert!(!out.is_tracked());
        out.value().to_f64_vec().unwrap()
    };
    let inf = run(&ct, &qp);
    for (qi, &pos) in queries.iter().enumerate() {
        for k in 0..v {
            let (a, b) = (inf[qi * v + k], train[pos * v + k]);
            assert!(
                (a - b).abs() < 1e-4 || (a.is_infinite() && b.is_infinite()),
                "position {pos}, id {k}: inference {a} vs training {b}"
            );
        }
    }
    // Pad tokens are never seen, and a query does not see the other queries.
    let mut other_pads = ct.clone();
    other_pads[n - 1] = 11;
    assert_eq!(run(&other_pads, &qp), inf);
    let first_only = run(&ct, &qp[..1]);
    for k in 0..v {
        let same = first_only[k] == inf[k] || (first_only[k] - inf[k]).abs() < 1e-5;
        assert!(
            same,
            "id {k}: one query {} vs all queries {}",
            first_only[k], inf[k]
        );
    }
}

#[test]
fn mdlm_loss_is_the_masked_tokens_weighted_nll_of_the_forward() {
    let (model, store) = random_model("mdlm-tiny", DType::F64, 13, |_| {});
    let net = mdlm(&model);
    let mut rng = Rng::seed(14);
    let (b, l, v) = (3, 16, 19);
    let batch = NoisedBatch::sample(&random_tokens(b, l, v, &mut rng), &mut rng).unwrap();
    let (tok, noised) = (
        batch.tokens.to_vec::<u32>().unwrap(),
        batch.noised.to_vec::<u8>().unwrap(),
    );
    assert!(noised.contains(&1) && noised.contains(&0));
    let x_t: Vec<u32> = tok
        .iter()
        .zip(&noised)
        .map(|(&x, &m)| if m == 1 { net.config.mask_id() } else { x })
        .collect();
    let x_t = Tensor::from_vec(x_t, [b, l], Device::Cpu).unwrap();
    let p = store.bind(None);
    // The loss reads the logits through the fused cross-entropy; the reference reads the
    // sampler's log-probabilities (MASK excluded, carry-over at unmasked positions).
    let lp = net
        .forward(&p, &x_t, None)
        .unwrap()
        .value()
        .to_f64_vec()
        .unwrap();
    let want: f64 = (0..b * l)
        .filter(|&i| noised[i] == 1)
        .map(|i| -pgm::schedule::weight(batch.times[i / l]) * lp[i * v + tok[i] as usize])
        .sum::<f64>()
        / (b * l) as f64;
    let got = mdlm_loss(net, &p, &batch, None)
        .unwrap()
        .value()
        .to_scalar::<f64>()
        .unwrap();
    assert!((got - want).abs() < 1e-9 * want.abs(), "{got} vs {want}");
}

#[test]
fn loss_forms_weigh_the_groups_as_specified() {
    let (model, store) = random_model("pgm-tiny", DType::F64, 11, |c| {
        c.query_processor = QueryProcessor::Mlp4
    });
    let net = pgm(&model);
    let mut rng = Rng::seed(12);
    let (b, l, v) = (3, 16, 19);
    let batch = NoisedBatch::sample(&random_tokens(b, l, v, &mut rng), &mut rng).unwrap();
    let p = store.bind(None);
    let lp = net
        .forward_train(&p, &batch.tokens, &batch.noised, None)
        .unwrap()
        .value()
        .to_f64_vec()
        .unwrap();
    let (tok, g) = (
        batch.tokens.to_vec::<u32>().unwrap(),
        batch.noised.to_vec::<u8>().unwrap(),
    );
    let (mut train, mut val) = (0.0, 0.0);
    for i in 0..b * l {
        let (t, nll) = (batch.times[i / l], -lp[i * v + tok[i] as usize]);
        let w = |t: f64| (1.0 - 1e-3) / ((1.0 - 1e-3) * t);
        if g[i] == 1 {
            train += w(t) * nll / 2.0;
            val += w(t) * nll;
        } else {
            train += w(1.0 - t) * nll / 2.0;
        }
    }
    let n = (b * l) as f64;
    let got_train = pgm_loss(net, &p, &batch, LossForm::Train, None)
        .unwrap()
        .value()
        .to_scalar::<f64>()
        .unwrap();
    let got_val = pgm_loss(net, &p, &batch, LossForm::Validation, None)
        .unwrap()
        .value()
        .to_scalar::<f64>()
        .unwrap();
    assert!(
        (got_train - train / n).abs() < 1e-9 * train.abs(),
        "{got_train} vs {}",
        train / n
    );
    assert!(
        (got_val - val / n).abs() < 1e-9 * val.abs(),
        "{got_val} vs {}",
        val / n
    );
    // Clean data holding the MASK id is refused.
    let with_mask = Tensor::from_vec(vec![18u32; l], [1, l], Device::Cpu).unwrap();
    let bad = NoisedBatch::sample(&with_mask, &mut rng).unwrap();
    assert!(pgm_loss(net, &p, &bad, LossForm::Train, None)
        .unwrap_err()
        .to_string()
        .contains("MASK id 18"));
    // Token ids outside the vocabulary are refused with their place.
    let out_of_range = Tensor::from_vec(vec![1u32, 40], [1, 2], Device::Cpu).unwrap();
    let e = net
        .forward_train(
            &p,
            &out_of_range,
            &Tensor::zeros([1, 2], DType::U8, Device::Cpu).unwrap(),
            None,
        )
        .unwrap_err();
    assert!(
        e.to_string().contains("token id 40 at row 0, position 1"),
        "{e}"
    );
}
