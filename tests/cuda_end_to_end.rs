//! The whole model on a GPU against the CPU: the first training steps of a tiny PGM and MDLM
//! give the CPU run's losses, greedy left-to-right sampling from the same (random) weights
//! gives the CPU's tokens, and the `train` and `sample` binaries run with `--device cuda`.
//! Each test prints `SKIPPED` and passes where no GPU can be opened, unless `PGM_REQUIRE_GPU`
//! is set (CI sets it when it runs these tests on the CUDA emulator, `tensor/cuda_emulator`).
//!
//! ```sh
//! cargo test --release --features cuda --test cuda_end_to_end -- --nocapture
//! ```
#![cfg(feature = "cuda")]

#[path = "../tensor/tests/common/cuda.rs"]
#[allow(dead_code)] // only the GPU helpers are used here
mod gpu_helpers;

use cli::metrics::Record;
use gpu_helpers::{gpu_or_skip, GPU};
use pgm::checkpoint::{self, Model};
use pgm::config::ModelConfig;
use pgm::sampler::{sample, Order, SampleOptions, SamplerKind};
use pgm::trainer::{TrainConfig, Trainer};
use std::path::{Path, PathBuf};
use std::process::Command;
use tensor::{DType, Device, Rng, Tensor};

fn train_config() -> TrainConfig {
    TrainConfig {
        lr: 3e-3,
        warmup: 2,
        cosine: true,
        min_lr_ratio: 0.1,
        total_steps: 4,
        weight_decay: 0.01,
        beta1: 0.9,
        beta2: 0.99,
        grad_clip: 1.0,
        ema_decay: 0.9,
        seed: 5,
    }
}

/// Step `i`'s micro-batch: 4 sequences of the preset's length, ids below the tiny presets'
/// MASK id (18).
fn batch(i: u64, len: usize) -> Vec<Tensor> {
    let mut rng = Rng::seed(100 + i);
    let ids: Vec<u32> = (0..4 * len).map(|_| rng.below(18) as u32).collect();
    vec![Tensor::from_vec(ids, [4, len], Device::Cpu).unwrap()]
}

/// The losses of the first four optimiser steps of model `cfg` (dropout on) on `device`, the
/// passes computing in `compute` over f32 weights.
fn losses(cfg: &ModelConfig, device: Device, compute: DType) -> Vec<f64> {
    let cfg = &ModelConfig {
        dropout: 0.1,
        ..cfg.clone()
    };
    let (model, params) = Model::new(cfg, DType::F32, device, 1).unwrap();
    let mut trainer = Trainer::new(model, params, train_config());
    trainer.set_compute_dtype(compute);
    let losses = (0..4)
        .map(|i| trainer.step(&batch(i, cfg.seq_len)).unwrap().loss)
        .collect();
    assert!(trainer.params.iter().all(|(_, w)| w.dtype() == DType::F32));
    losses
}

#[test]
fn first_training_steps_match_the_cpu() {
    if !gpu_or_skip("first_training_steps_match_the_cpu") {
        return;
    }
    // The tiny presets, and again at the byte vocabulary: rows of 259 logits, longer than a
    // block of 256 threads.
    for (preset, vocab_size) in [
        ("pgm-tiny", 19),
        ("mdlm-tiny", 19),
        ("pgm-tiny", 259),
        ("mdlm-tiny", 259),
    ] {
        let cfg = ModelConfig {
            vocab_size,
            ..ModelConfig::preset(preset).unwrap()
        };
        let (cpu, gpu) = (
            losses(&cfg, Device::Cpu, DType::F32),
            losses(&cfg, GPU, DType::F32),
        );
        let what = format!("{preset}, vocabulary {vocab_size}");
        eprintln!("{what}: cpu {cpu:?}\n{what}: gpu {gpu:?}");
        for (step, (c, g)) in cpu.iter().zip(&gpu).enumerate() {
            assert!(
                (c - g).abs() <= 1e-4 * c.abs().max(1.0),
                "{what} step {step}: cpu loss {c}, gpu loss {g}"
            );
        }
    }
}

/// Mixed precision (bf16 passes over f32 weights) follows the f32 run to bf16's precision,
/// and bf16 weights sample valid sequences.
#[test]
fn bf16_trains_and_samples() {
    if !gpu_or_skip("bf16_trains_and_samples") {
        return;
    }
    for (preset, kind) in [
        ("pgm-tiny", SamplerKind::EfficientUniform),
        ("mdlm-tiny", SamplerKind::DdpmCache),
    ] {
        let cfg = ModelConfig::preset(preset).unwrap();
        let (f32s, bf16s) = (
            losses(&cfg, GPU, DType::F32),
            losses(&cfg, GPU, DType::BF16),
        );
        eprintln!("{preset}: f32 {f32s:?}\n{preset}: bf16 {bf16s:?}");
        for (step, (a, b)) in f32s.iter().zip(&bf16s).enumerate() {
            assert!(
                (a - b).abs() <= 5e-2 * a.abs().max(1.0),
                "{preset} step {step}: f32 loss {a}, bf16 loss {b}"
            );
        }
        let (model, store) = Model::new(&cfg, DType::BF16, GPU, 2).unwrap();
        let opts = SampleOptions::new(kind, 8, 17);
        let rows = sample(&model, &store, &opts, 2, &mut Rng::seed(1))
            .unwrap()
            .tokens;
        for row in rows {
            assert_eq!((row.len(), row[0]), (cfg.seq_len, 17), "{preset}: {row:?}");
            assert!(row.iter().all(|&t| t < cfg.mask_id()), "{preset}: {row:?}");
        }
    }
}

/// Greedy, left-to-right samples of every sampler from one set of random weights (the
/// zero-initialised layers too, so no logits tie), loaded once on each device; then stochastic
/// draws in random order, which match too: the Gumbel noise is counter-based, the same on both
/// devices.
#[test]
fn greedy_samples_match_the_cpu() {
    if !gpu_or_skip("greedy_samples_match_the_cpu") {
        return;
    }
    for preset in ["pgm-tiny", "mdlm-tiny"] {
        let cfg = ModelConfig::preset(preset).unwrap();
        let (_, mut store) = Model::new(&cfg, DType::F32, Device::Cpu, 3).unwrap();
        let mut rng = Rng::seed(7);
        let names: Vec<String> = store.iter().map(|(n, _)| n.clone()).collect();
        for name in names {
            let shape = store.get(&name).unwrap().shape().clone();
            let w = Tensor::randn(shape, 0.0, 0.3, DType::F32, Device::Cpu, &mut rng).unwrap();
            let w = if name.contains("norm") {
                w.add_scalar(1.0).unwrap()
            } else {
                w
            };
            store.set(&name, w).unwrap();
        }
        let dir =
            std::env::temp_dir().join(format!("pgm-cuda-e2e-{preset}-{}", std::process::id()));
        checkpoint::save(&dir, &cfg, &store).unwrap();
        let on = |device| checkpoint::load(&dir, None, DType::F32, device).unwrap();
        let ((cpu_model, cpu_store), (gpu_model, gpu_store)) = (on(Device::Cpu), on(GPU));
        let samplers: &[SamplerKind] = match preset {
            "pgm-tiny" => &[
                SamplerKind::Naive,
                SamplerKind::EfficientUniform,
                SamplerKind::EfficientNonUniform,
            ],
            _ => &[SamplerKind::Ddpm, SamplerKind::DdpmCache],
        };
        for (&kind, greedy) in samplers
            .iter()
            .map(|k| (k, true))
            .chain([(&samplers[1], false)])
        {
            let mut opts = SampleOptions::new(kind, 8, 17);
            opts.draw.greedy = greedy;
            if greedy {
                opts.order = Order::LeftToRight;
            }
            let run = |model: &Model, store| {
                sample(model, store, &opts, 2, &mut Rng::seed(11))
                    .unwrap()
                    .tokens
            };
            assert_eq!(
                run(&gpu_model, &gpu_store),
                run(&cpu_model, &cpu_store),
                "{preset} {} greedy={greedy}",
                kind.name()
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// A binary of this package: beside this test program when it was copied out of `target/`
/// (`.ci/gpu build` puts both in one folder), else where cargo built it.
fn binary(name: &str, built: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let beside = exe.parent().unwrap().join(name);
    if beside.is_file() {
        beside
    } else {
        PathBuf::from(built)
    }
}

/// Runs `program` with `args`; fails with its output unless it succeeds. Returns its output.
fn run_ok(program: &Path, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{} {args:?} failed:\n{text}",
        program.display()
    );
    text
}

/// `train --device cuda` on the built-in corpus gives the CPU run's training and validation
/// losses, and `sample --device cuda` samples from its checkpoint.
#[test]
fn the_binaries_train_and_sample_on_the_gpu() {
    if !gpu_or_skip("the_binaries_train_and_sample_on_the_gpu") {
        return;
    }
    let train = binary("train", env!("CARGO_BIN_EXE_train"));
    let sample = binary("sample", env!("CARGO_BIN_EXE_sample"));
    let dir = std::env::temp_dir().join(format!("pgm-cuda-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("tiny.json");
    let cfg = ModelConfig {
        vocab_size: 259,
        seq_len: 32,
        ..ModelConfig::preset("pgm-tiny").unwrap()
    };
    std::fs::write(&config, cfg.to_json()).unwrap();
    let records = |device: &str| -> Vec<Record> {
        let out = dir.join(device);
        let args = [
            "--config",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--device",
            device,
            "--steps",
            "4",
            "--batch-size",
            "2",
            "--eval-every",
            "2",
            "--eval-batches",
            "1",
            "--log-every",
            "1",
            "--quiet",
        ];
        run_ok(&train, &args);
        std::fs::read_to_string(out.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let (cpu, gpu) = (records("cpu"), records("cuda"));
    assert_eq!(cpu.len(), gpu.len());
    let near = |a: f64, b: f64| (a - b).abs() <= 1e-4 * a.abs().max(1.0);
    for (c, g) in cpu.iter().zip(&gpu) {
        assert!(
            near(c.loss, g.loss),
            "step {}: cpu {c:?}, gpu {g:?}",
            c.step
        );
        match (c.val_loss, g.val_loss) {
            (Some(a), Some(b)) => assert!(near(a, b), "step {}: cpu {a}, gpu {b}", c.step),
            (a, b) => assert_eq!(a.is_some(), b.is_some(), "step {}", c.step),
        }
    }
    let checkpoint = dir.join("cuda").join("checkpoint");
    let args = [
        "--checkpoint",
        checkpoint.to_str().unwrap(),
        "--device",
        "cuda",
        "--batch-size",
        "2",
        "--num-batches",
        "1",
        "--steps",
        "8",
    ];
    let text = run_ok(&sample, &args);
    assert!(text.contains("device: cuda:0"), "{text}");
    assert_eq!(text.matches("=== sample").count(), 2, "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}
