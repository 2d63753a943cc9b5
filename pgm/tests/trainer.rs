//! The trainer: a resumed run reproduces an uninterrupted run exactly.

mod common;

use pgm::checkpoint::Model;
use pgm::config::ModelConfig;
use pgm::trainer::{TrainConfig, Trainer};
use tensor::{DType, Device, Rng, Tensor};

fn config() -> TrainConfig {
    TrainConfig {
        lr: 3e-3,
        warmup: 2,
        cosine: true,
        min_lr_ratio: 0.1,
        total_steps: 6,
        weight_decay: 0.01,
        beta1: 0.9,
        beta2: 0.99,
        grad_clip: 1.0,
        ema_decay: 0.9,
        seed: 5,
    }
}

/// Batch `i` of a fixed synthetic stream.
fn batch(i: u64) -> Vec<Tensor> {
    let mut rng = Rng::seed(100 + i);
    (0..2)
        .map(|_| common::random_tokens(2, 16, 19, &mut rng))
        .collect()
}

#[test]
fn resumed_training_matches_uninterrupted_training() {
    for preset in ["pgm-tiny", "mdlm-tiny"] {
        let mut cfg = ModelConfig::preset(preset).unwrap();
        cfg.dropout = 0.1; // the dropout RNG must resume too
        let fresh = || {
            let (model, params) = Model::new(&cfg, DType::F32, Device::Cpu, 1).unwrap();
            Trainer::new(model, params, config())
        };
        let mut straight = fresh();
        let full: Vec<f64> = (0..6)
            .map(|i| straight.step(&batch(i)).unwrap().loss)
            .collect();

        let dir = std::env::temp_dir().join(format!("pgm-resume-{preset}-{}", std::process::id()));
        let mut first = fresh();
        let mut resumed_losses: Vec<f64> = (0..3)
            .map(|i| first.step(&batch(i)).unwrap().loss)
            .collect();
        first.save(&dir, serde_json::json!({"cursor": 3})).unwrap();
        drop(first);
        let (mut second, extra) = Trainer::resume(&dir, Device::Cpu).unwrap();
        assert_eq!(extra["cursor"], 3);
        assert_eq!(second.step_count(), 3);
        resumed_losses.extend((3..6).map(|i| second.step(&batch(i)).unwrap().loss));
        assert_eq!(resumed_losses, full, "{preset}");
        assert!(
            full[5] < full[0],
            "{preset}: the loss did not fall: {full:?}"
        );
        let val = second.evaluate(&batch(99), 7).unwrap();
        assert_eq!(val, straight.evaluate(&batch(99), 7).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// Mixed precision, checked on the CPU with f64 standing in for bf16: the forward and backward
/// passes run in the compute dtype over f32 master weights, which stay f32 (the gradients come
/// back through the recorded casts), and the run follows the all-f32 one to rounding.
#[test]
fn a_compute_dtype_trains_f32_master_weights() {
    for preset in ["pgm-tiny", "mdlm-tiny"] {
        let cfg = ModelConfig::preset(preset).unwrap();
        let fresh = || {
            let (model, params) = Model::new(&cfg, DType::F32, Device::Cpu, 1).unwrap();
            Trainer::new(model, params, config())
        };
        let (mut plain, mut mixed) = (fresh(), fresh());
        mixed.set_compute_dtype(DType::F64);
        let mut rounding_differs = false;
        for i in 0..6 {
            let (a, b) = (
                plain.step(&batch(i)).unwrap().loss,
                mixed.step(&batch(i)).unwrap().loss,
            );
            assert!(
                (a - b).abs() < 1e-4 * a.abs().max(1.0),
                "{preset} step {i}: {a} vs {b}"
            );
            rounding_differs |= a != b;
        }
        assert!(
            rounding_differs,
            "{preset}: the f64 run gave the f32 run's losses bit for bit"
        );
        for (name, w) in mixed.params.iter().chain(mixed.ema_weights().iter()) {
            assert_eq!(w.dtype(), DType::F32, "{preset}: {name}");
        }
        let val = mixed.evaluate(&batch(99), 7).unwrap();
        let want = plain.evaluate(&batch(99), 7).unwrap();
        assert!(
            (val - want).abs() < 1e-4 * want.abs().max(1.0),
            "{preset}: {val} vs {want}"
        );
    }
}
