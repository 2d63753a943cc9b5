//! Partition attention, forward + backward: the gathered kernel (`nn::attention::
//! partition_attention`, only the allowed blocks) against masked dense attention
//! (`masked_attention(partition_mask(..))`, all L² scores).
//!
//! Shapes of the paper's model: L = 1024, B = 1, H = 12, d = 64 (D = 768), f32. q, k and v are
//! tape leaves whose values are strided views of one [B, L, 3H, d] buffer, as a fused QKV
//! projection produces them (leaves rather than `narrow`s of one leaf, so the timing is the
//! attention's own: the `narrow` backward's zero-padding and gradient sums would add the same
//! cost to both sides). Each iteration builds a tape, runs the attention, takes
//! loss = Σ out ⊙ W with a fixed random W, and runs the backward pass. Partitions are random
//! with P(group 1) = 0.5 and 0.1, for the encoder rule (`Same`) and the decoder rule
//! (`Different`); the allowed fraction of the L² pairs is printed for each.
//!
//! Run: `cargo bench --bench attention` (about a minute).

use std::hint::black_box;
use std::time::Duration;

use autograd::{Tape, Var};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use nn::attention::{masked_attention, partition_attention, partition_mask, GroupRule};
use tensor::{DType, Device, Rng, Tensor};

const L: usize = 1024;
const B: usize = 1;
const H: usize = 12;
const D: usize = 64;

/// One forward + backward; returns the gradients of q, k and v.
fn step(
    gathered: bool,
    qkv: &Tensor,
    w: &Tensor,
    g: &Tensor,
    mask: &Tensor,
    rule: GroupRule,
) -> Vec<Tensor> {
    let tape = Tape::new();
    let [q, k, v] = [0, 1, 2].map(|i| tape.var(qkv.narrow(2, i * H, H).unwrap()));
    let scale = 1.0 / (D as f64).sqrt();
    let out = if gathered {
        partition_attention(&q, &k, &v, g, g, rule, scale).unwrap()
    } else {
        masked_attention(&q, &k, &v, mask, scale).unwrap()
    };
    let loss = out
        .mul(&Var::constant(w.clone()))
        .unwrap()
        .sum_all()
        .unwrap();
    let grads = loss.backward().unwrap();
    [q, k, v]
        .iter()
        .map(|x| grads.get(x).unwrap().clone())
        .collect()
}

fn attention(c: &mut Criterion) {
    let mut rng = Rng::seed(0);
    let shape = [B, L, 3 * H, D];
    let qkv = Tensor::randn(shape, 0.0, 1.0, DType::F32, Device::Cpu, &mut rng).unwrap();
    let w = Tensor::randn([B, L, H, D], 0.0, 1.0, DType::F32, Device::Cpu, &mut rng).unwrap();
    for p1 in [0.5, 0.1] {
        let groups: Vec<u8> = (0..B * L).map(|_| (rng.uniform() < p1) as u8).collect();
        let g = Tensor::from_vec(groups, [B, L], Device::Cpu).unwrap();
        for rule in [GroupRule::Same, GroupRule::Different] {
            let mask = partition_mask(&g, &g, rule).unwrap();
            let allowed = mask.to_f64_vec().unwrap().iter().sum::<f64>() / (B * L * L) as f64;
            println!("{rule:?} p1 = {p1}: allowed pairs = {allowed:.3} of L²");
            let mut group = c.benchmark_group(format!("attention_fwd_bwd/{rule:?}_p{p1}"));
            group
                .sample_size(10)
                .sampling_mode(SamplingMode::Flat)
                .warm_up_time(Duration::from_millis(500))
                .measurement_time(Duration::from_secs(3));
            for (name, gathered) in [("gathered", true), ("dense", false)] {
                let id = BenchmarkId::new(name, format!("L{L}_H{H}_d{D}"));
                group.bench_function(id, |bench| {
                    bench.iter(|| black_box(step(gathered, black_box(&qkv), &w, &g, &mask, rule)))
                });
            }
            group.finish();
        }
    }
}

criterion_group!(benches, attention);
criterion_main!(benches);
