//! Tiny models overfit one fixed batch, and checkpoints round-trip and fail clearly.

mod common;

use autograd::Tape;
use common::{random_model, random_tokens};
use nn::optim::{AdamW, AdamWConfig};
use pgm::checkpoint::{self, Model};
use pgm::config::{ModelConfig, ModelKind};
use pgm::loss::{mdlm_loss, pgm_loss, LossForm, NoisedBatch};
use tensor::{DType, Device, Rng, Tensor};

/// Trains on one fixed batch (fixed times and partition) and returns (first, last) loss.
fn overfit(preset: &str, steps: usize) -> (f64, f64) {
    let cfg = ModelConfig::preset(preset).unwrap();
    let (model, mut store) = Model::new(&cfg, DType::F32, Device::Cpu, 0).unwrap();
    let mut rng = Rng::seed(1);
    // Fully random rows (no shared BOS): any single clean token identifies its row, so every
    // target is determined by the other group and the loss can approach 0.
    let ids: Vec<u32> = (0..4 * cfg.seq_len)
        .map(|_| (rng.next_u64() % (cfg.vocab_size as u64 - 1)) as u32)
        .collect();
    let tokens = Tensor::from_vec(ids, [4, cfg.seq_len], Device::Cpu).unwrap();
    let batch = NoisedBatch::sample(&tokens, &mut rng).unwrap();
    let mut opt = AdamW::new(AdamWConfig {
        lr: 1e-2,
        ..AdamWConfig::default()
    });
    let mut losses = vec![];
    for _ in 0..steps {
        let tape = Tape::new();
        let p = store.bind(Some(&tape));
        let loss = match &model {
            Model::Pgm(n) => pgm_loss(n, &p, &batch, LossForm::Train, None).unwrap(),
            Model::Mdlm(n) => mdlm_loss(n, &p, &batch, None).unwrap(),
        };
        losses.push(loss.value().to_scalar::<f32>().unwrap() as f64);
        let grads = p.gradients(&loss.backward().unwrap());
        opt.step(&mut store, &grads, 1e-2).unwrap();
    }
    (losses[0], *losses.last().unwrap())
}

#[test]
fn tiny_pgm_overfits_one_batch() {
    let (first, last) = overfit("pgm-tiny", 200);
    println!("pgm-tiny: loss {first:.3} → {last:.3}");
    assert!(last < 0.1 * first, "loss fell only from {first} to {last}");
}

#[test]
fn tiny_mdlm_overfits_one_batch() {
    let (first, last) = overfit("mdlm-tiny", 200);
    println!("mdlm-tiny: loss {first:.3} → {last:.3}");
    assert!(last < 0.1 * first, "loss fell only from {first} to {last}");
}

fn outputs(model: &Model, store: &nn::ParamStore, tokens: &Tensor, groups: &Tensor) -> Vec<f64> {
    let p = store.bind(None);
    match model {
        Model::Pgm(n) => n
            .forward_train(&p, tokens, groups, None)
            .unwrap()
            .value()
            .to_f64_vec()
            .unwrap(),
        Model::Mdlm(n) => n
            .forward(&p, tokens, None)
            .unwrap()
            .value()
            .to_f64_vec()
            .unwrap(),
    }
}

#[test]
fn checkpoint_round_trip_reproduces_outputs_exactly() {
    let dir = std::env::temp_dir().join(format!("pgm-ckpt-{}", std::process::id()));
    let mut rng = Rng::seed(2);
    let tokens = random_tokens(2, 16, 19, &mut rng);
    let groups = common::random_groups(2, 16, 0.5, &mut rng);
    for preset in ["pgm-tiny", "mdlm-tiny"] {
        let (model, store) = random_model(preset, DType::F32, 3, |_| {});
        let path = dir.join(preset);
        checkpoint::save(&path, model.config(), &store).unwrap();
        let (loaded, loaded_store) =
            checkpoint::load(&path, None, DType::F32, Device::Cpu).unwrap();
        assert_eq!(loaded.config(), model.config());
        assert_eq!(
            outputs(&loaded, &loaded_store, &tokens, &groups),
            outputs(&model, &store, &tokens, &groups)
        );
        assert!(!path.join("model.safetensors.tmp").exists());
    }
    // Another model kind.
    let e = checkpoint::load(
        &dir.join("mdlm-tiny"),
        Some(ModelKind::Pgm),
        DType::F32,
        Device::Cpu,
    )
    .err()
    .unwrap();
    assert!(
        e.to_string()
            .contains("Mdlm checkpoint, but a Pgm model was asked for"),
        "{e}"
    );
    // PGM weights under an MDLM config: every name is reported.
    std::fs::copy(
        dir.join("pgm-tiny/model.safetensors"),
        dir.join("mdlm-tiny/model.safetensors"),
    )
    .unwrap();
    let e = checkpoint::load(&dir.join("mdlm-tiny"), None, DType::F32, Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("missing")
            && e.contains("blocks.0.attn_qkv.weight")
            && e.contains("unexpected")
            && e.contains("decoder.group_swap"),
        "{e}"
    );
    // A wrong shape and a missing tensor, from a reference-style export with `backbone.` names.
    let (_, store) = random_model("pgm-tiny", DType::F32, 3, |_| {});
    let wrong = Tensor::zeros([3, 3], DType::F32, Device::Cpu).unwrap();
    let renamed: Vec<(String, Tensor)> = store
        .iter()
        .filter(|(n, _)| n.as_str() != "output_layer.linear.bias")
        .map(|(n, t)| {
            (
                format!("backbone.{n}"),
                if n == "vocab_embed.embedding" {
                    wrong.clone()
                } else {
                    t.clone()
                },
            )
        })
        .collect();
    let file = dir.join("pgm-tiny/model.safetensors");
    nn::checkpoint::save(&file, renamed.iter().map(|(n, t)| (n.as_str(), t)), None).unwrap();
    let e = checkpoint::load(&dir.join("pgm-tiny"), None, DType::F32, Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("missing (1): output_layer.linear.bias"), "{e}");
    assert!(
        e.contains("vocab_embed.embedding: file has [3, 3] F32, model wants [19, 32] F32"),
        "{e}"
    );
    // A truncated file and a missing directory.
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    let e = checkpoint::load(&dir.join("pgm-tiny"), None, DType::F32, Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("model.safetensors") && e.contains("not a valid safetensors file"),
        "{e}"
    );
    assert!(checkpoint::load(&dir.join("nope"), None, DType::F32, Device::Cpu).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
