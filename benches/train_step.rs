//! One training step (forward, backward, clipping, AdamW and the EMA), PGM against MDLM of
//! matching size, side by side: SPEC §7's training-cost claim on our CPU backend.
//!
//! Three runs of `Trainer::step` on the same random batch of byte tokens:
//! - `mdlm`: the `mdlm-cpu` preset (6 blocks, D = 256, L = 1024);
//! - `pgm_gathered`: `pgm-cpu` (3+3 blocks), its partition attention computing only the
//!   allowed pairs (the default);
//! - `pgm_dense`: the same PGM with masked dense attention over all L² pairs, as the reference
//!   implementation computes it.
//!
//! Run: `cargo bench --bench train_step` (about a minute on 2 cores).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use pgm::checkpoint::Model;
use pgm::config::{AttentionImpl, ModelConfig};
use pgm::trainer::{TrainConfig, Trainer};
use tensor::{DType, Device, Rng, Tensor};

const BATCH: usize = 2;

fn trainer(config: &ModelConfig) -> Trainer {
    let (model, params) = Model::new(config, DType::F32, Device::Cpu, 0).unwrap();
    let settings = TrainConfig {
        lr: 1e-3,
        warmup: 0,
        cosine: false,
        min_lr_ratio: 1.0,
        total_steps: u64::MAX,
        weight_decay: 0.0,
        beta1: 0.9,
        beta2: 0.999,
        grad_clip: 1.0,
        ema_decay: 0.999,
        seed: 0,
    };
    Trainer::new(model, params, settings)
}

fn train_step(c: &mut Criterion) {
    let pgm = ModelConfig::preset("pgm-cpu").unwrap();
    let dense = ModelConfig {
        attention: AttentionImpl::Dense,
        ..pgm.clone()
    };
    let mdlm = ModelConfig::preset("mdlm-cpu").unwrap();
    let (len, vocab) = (pgm.seq_len, pgm.vocab_size);
    assert_eq!((len, vocab), (mdlm.seq_len, mdlm.vocab_size));

    let mut rng = Rng::seed(0);
    // Byte tokens, never the MASK id (the last one).
    let ids: Vec<u32> = (0..BATCH * len)
        .map(|_| (rng.uniform() * (vocab - 1) as f64) as u32)
        .collect();
    let batch = Tensor::from_vec(ids, [BATCH, len], Device::Cpu).unwrap();

    let mut group = c.benchmark_group("train_step");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(15));
    for (name, config) in [
        ("mdlm", &mdlm),
        ("pgm_gathered", &pgm),
        ("pgm_dense", &dense),
    ] {
        println!("{name}: {} parameters", config.num_params());
        let mut t = trainer(config);
        let id = BenchmarkId::new(name, format!("B{BATCH}_L{len}_D{}", config.hidden_size));
        group.bench_function(id, |bench| {
            bench.iter(|| black_box(t.step(std::slice::from_ref(&batch)).unwrap().loss))
        });
    }
    group.finish();
}

criterion_group!(benches, train_step);
criterion_main!(benches);
