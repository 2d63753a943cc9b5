//! RoPE and partition attention against central finite differences in f64, with contiguous and
//! strided inputs: both group rules, a batch row where one group is empty, pads (255) among the
//! keys (and queries), queries and keys of different lengths, and three groups.

use autograd::gradcheck::GradCheck;
use autograd::Var;
use tensor::{DType, Device, GroupRule, Result, Rng, Tensor, PAD_GROUP};

fn rand(dims: &[usize], rng: &mut Rng) -> Tensor {
    Tensor::rand_uniform(dims.to_vec(), -1.5, 1.5, DType::F64, Device::Cpu, rng).unwrap()
}

fn groups(v: Vec<u8>, b: usize, n: usize) -> Tensor {
    Tensor::from_vec(v, [b, n], Device::Cpu).unwrap()
}

/// Checks `f` with contiguous and with strided inputs.
fn check(name: &str, inputs: &[Tensor], f: impl Fn(&[Var]) -> Result<Var>) {
    for cfg in [GradCheck::default(), GradCheck::default().strided()] {
        let report = cfg
            .run(inputs, &f)
            .unwrap_or_else(|e| panic!("{name} ({:?}): {e}", cfg.layout));
        assert!(report.checked_elements > 0, "{name}: nothing was checked");
    }
}

#[test]
fn rope_gradient() {
    let mut rng = Rng::seed(11);
    let (b, n, h, d) = (2, 3, 2, 6);
    let pos: Vec<u32> = (0..b * n).map(|_| (rng.next_u64() % 100) as u32).collect();
    let pos = Tensor::from_vec(pos, [b, n], Device::Cpu).unwrap();
    let (cos, sin) = Tensor::rope_tables(&pos, d, 10_000.0, DType::F64).unwrap();
    check("rope", &[rand(&[b, n, h, d], &mut rng)], |v| {
        v[0].rope(&cos, &sin)
    });
}

/// Gradient checks of q, k, v for one configuration of groups.
fn check_attention(name: &str, qg: &Tensor, kg: &Tensor, h: usize, d: usize, seed: u64) {
    let mut rng = Rng::seed(seed);
    let (b, nq, nk) = (qg.dims()[0], qg.dims()[1], kg.dims()[1]);
    let inputs = [
        rand(&[b, nq, h, d], &mut rng),
        rand(&[b, nk, h, d], &mut rng),
        rand(&[b, nk, h, d], &mut rng),
    ];
    let scale = 1.0 / (d as f64).sqrt();
    for rule in [GroupRule::Same, GroupRule::Different] {
        check(&format!("{name} {rule:?}"), &inputs, |v| {
            v[0].partition_attention(&v[1], &v[2], qg, kg, rule, scale)
        });
    }
}

#[test]
fn partition_attention_self_with_an_empty_group() {
    // Row 0 mixes groups 0 and 1; in row 1 group 1 is empty (under `Different` every query
    // of row 1 has no allowed key: zero output, zero gradient).
    let g = groups(vec![0, 1, 1, 0, 1, 0, 0, 0, 0, 0], 2, 5);
    check_attention("self", &g, &g, 2, 4, 21);
}

#[test]
fn partition_attention_with_pads() {
    // The inference encoder: clean tokens group 0, right padding 255 on both sides; and a
    // training-like row with a pad among the keys only.
    let qg = groups(vec![0, 0, 0, PAD_GROUP, 1, 0, 1, 0], 2, 4);
    let kg = groups(vec![0, 0, PAD_GROUP, PAD_GROUP, 1, 0, PAD_GROUP, 0], 2, 4);
    check_attention("pads", &qg, &kg, 2, 4, 22);
}

#[test]
fn partition_attention_cross_lengths() {
    // The inference decoder: Nq = 3 queries of group 1 over Nk = 5 keys, group 0 or pad; the
    // second row has a single real key.
    let qg = groups(vec![1; 6], 2, 3);
    let kg = groups(
        vec![
            0, 0, 0, PAD_GROUP, PAD_GROUP, 0, PAD_GROUP, PAD_GROUP, PAD_GROUP, PAD_GROUP,
        ],
        2,
        5,
    );
    check_attention("cross", &qg, &kg, 3, 2, 23);
}

#[test]
fn partition_attention_three_groups() {
    // Under `Different` a key then sits in two blocks; its gradient sums over both.
    let g = groups(vec![0, 1, 2, 1, 0, 2, 2], 1, 7);
    check_attention("three groups", &g, &g, 1, 4, 24);
}
