//! Shared helpers for the network tests.
#![allow(dead_code)]

use nn::ParamStore;
use pgm::checkpoint::Model;
use pgm::config::ModelConfig;
use tensor::{DType, Device, Rng, Tensor};

/// A model of `preset` in `dtype` whose every weight is random (zero-initialised layers too),
/// so that every path carries signal.
pub fn random_model(
    preset: &str,
    dtype: DType,
    seed: u64,
    edit: impl FnOnce(&mut ModelConfig),
) -> (Model, ParamStore) {
    let mut cfg = ModelConfig::preset(preset).unwrap();
    edit(&mut cfg);
    let (model, mut store) = Model::new(&cfg, dtype, Device::Cpu, seed).unwrap();
    let mut rng = Rng::seed(seed + 100);
    let names: Vec<String> = store.iter().map(|(n, _)| n.clone()).collect();
    for name in names {
        let shape = store.get(&name).unwrap().shape().clone();
        let t = Tensor::randn(shape, 0.0, 0.3, dtype, Device::Cpu, &mut rng).unwrap();
        let t = if name.ends_with("norm1.weight")
            || name.ends_with("norm2.weight")
            || name.contains("norm")
        {
            t.add_scalar(1.0).unwrap()
        } else {
            t
        };
        store.set(&name, t).unwrap();
    }
    (model, store)
}

/// Random tokens [B, L] below `vocab − 1` (never MASK), with BOS-like id 0 at position 0.
pub fn random_tokens(b: usize, l: usize, vocab: usize, rng: &mut Rng) -> Tensor {
    let v: Vec<u32> = (0..b * l)
        .map(|i| {
            if i % l == 0 {
                0
            } else {
                (rng.next_u64() % (vocab as u64 - 1)) as u32
            }
        })
        .collect();
    Tensor::from_vec(v, [b, l], Device::Cpu).unwrap()
}

/// Random groups [B, L] in {0, 1} with P(1) = p.
pub fn random_groups(b: usize, l: usize, p: f64, rng: &mut Rng) -> Tensor {
    let v: Vec<u8> = (0..b * l).map(|_| (rng.uniform() < p) as u8).collect();
    Tensor::from_vec(v, [b, l], Device::Cpu).unwrap()
}
