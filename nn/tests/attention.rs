//! The fused, gathered partition attention against the dense reference
//! `masked_attention(partition_mask(..))`, forward and all three input gradients, in f32 on
//! random partitions; exact zeros for queries with no allowed key; RoPE against a naive
//! per-element formula and its relative-position property.

use autograd::{Tape, Var};
use nn::attention::{
    masked_attention, partition_attention, partition_mask, rope, rope_tables, GroupRule, PAD_GROUP,
};
use tensor::{DType, Device, Rng, Tensor};

const H: usize = 2;
const D: usize = 8;

fn randn(dims: &[usize], rng: &mut Rng) -> Tensor {
    Tensor::randn(dims.to_vec(), 0.0, 1.0, DType::F32, Device::Cpu, rng).unwrap()
}

/// Random groups [B, n]: group 1 with probability `p1` (a per-row draw when None), 0 otherwise;
/// the last `pads[b]` tokens of row b are pads.
fn random_groups(rng: &mut Rng, n: usize, p1: Option<f64>, pads: &[usize]) -> Tensor {
    let mut g = Vec::new();
    for &pad in pads {
        let p = p1.unwrap_or_else(|| rng.uniform());
        g.extend((0..n).map(|i| {
            if i >= n - pad {
                PAD_GROUP
            } else {
                (rng.uniform() < p) as u8
            }
        }));
    }
    Tensor::from_vec(g, [pads.len(), n], Device::Cpu).unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims());
    let (a, b) = (a.to_f64_vec().unwrap(), b.to_f64_vec().unwrap());
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Output and gradients of (q, k, v) leaves for one attention implementation. q, k and v are
/// strided views: q and k/v are narrowed out of packed [B, N, 3H or 2H, d] leaves, as from a
/// fused projection.
struct Run {
    out: Tensor,
    grads: Vec<Tensor>,
}

fn run(
    fused: bool,
    leaves: &[Tensor],
    self_attn: bool,
    qg: &Tensor,
    kg: &Tensor,
    rule: GroupRule,
    weights: &Tensor,
) -> Run {
    let tape = Tape::new();
    let vars: Vec<Var> = leaves.iter().map(|t| tape.var(t.clone())).collect();
    let (q, k, v) = if self_attn {
        let qkv = &vars[0];
        (
            qkv.narrow(2, 0, H).unwrap(),
            qkv.narrow(2, H, H).unwrap(),
            qkv.narrow(2, 2 * H, H).unwrap(),
        )
    } else {
        let kv = &vars[1];
        (
            vars[0].clone(),
            kv.narrow(2, 0, H).unwrap(),
            kv.narrow(2, H, H).unwrap(),
        )
    };
    assert!(!k.value().is_contiguous());
    let scale = 1.0 / (D as f64).sqrt();
    let out = if fused {
        partition_attention(&q, &k, &v, qg, kg, rule, scale).unwrap()
    } else {
        let mask = partition_mask(qg, kg, rule).unwrap();
        masked_attention(&q, &k, &v, &mask, scale).unwrap()
    };
    assert!(out.value().is_contiguous());
    let loss = out
        .mul(&Var::constant(weights.clone()))
        .unwrap()
        .sum_all()
        .unwrap();
    let grads = loss.backward().unwrap();
    Run {
        out: out.value().clone(),
        grads: vars.iter().map(|v| grads.get(v).unwrap().clone()).collect(),
    }
}

/// Fused equals dense, forward and backward; returns the fused run.
fn compare(rng: &mut Rng, qg: &Tensor, kg: &Tensor, rule: GroupRule, what: &str) -> Run {
    let (b, nq, nk) = (qg.dims()[0], qg.dims()[1], kg.dims()[1]);
    let self_attn = nq == nk && qg.to_vec::<u8>().unwrap() == kg.to_vec::<u8>().unwrap();
    let leaves = if self_attn {
        vec![randn(&[b, nq, 3 * H, D], rng)]
    } else {
        vec![randn(&[b, nq, H, D], rng), randn(&[b, nk, 2 * H, D], rng)]
    };
    let weights = randn(&[b, nq, H, D], rng);
    let fused = run(true, &leaves, self_attn, qg, kg, rule, &weights);
    let dense = run(false, &leaves, self_attn, qg, kg, rule, &weights);
    let err = max_diff(&fused.out, &dense.out);
    assert!(err < 1e-5, "{what} {rule:?}: forward differs by {err}");
    for (i, (a, b)) in fused.grads.iter().zip(&dense.grads).enumerate() {
        let err = max_diff(a, b);
        assert!(err < 1e-4, "{what} {rule:?}: gradient {i} differs by {err}");
    }
    fused
}

#[test]
fn fused_equals_dense_self_attention() {
    let mut rng = Rng::seed(5);
    // Odd lengths, lengths past one query chunk (128), and per-row random P(group 1).
    for l in [1, 2, 7, 16, 33, 130, 301] {
        for p1 in [None, Some(0.5), Some(0.1)] {
            let g = random_groups(&mut rng, l, p1, &[0, 0]);
            for rule in [GroupRule::Same, GroupRule::Different] {
                compare(&mut rng, &g, &g, rule, &format!("L={l} p1={p1:?}"));
            }
        }
    }
}

#[test]
fn fused_equals_dense_with_pads() {
    let mut rng = Rng::seed(6);
    for l in [5, 17, 140] {
        let g = random_groups(&mut rng, l, Some(0.5), &[2, l / 3]);
        for rule in [GroupRule::Same, GroupRule::Different] {
            compare(&mut rng, &g, &g, rule, &format!("pads L={l}"));
        }
    }
}

#[test]
fn fused_equals_dense_inference_decoder() {
    // Nq != Nk: queries all group 1, keys group 0 with right padding (different real lengths).
    let mut rng = Rng::seed(7);
    for (nq, nk) in [(3, 5), (9, 4), (50, 131), (129, 33)] {
        let qg = Tensor::from_vec(vec![1u8; 2 * nq], [2, nq], Device::Cpu).unwrap();
        let kg = random_groups(&mut rng, nk, Some(0.0), &[0, nk / 2]);
        compare(
            &mut rng,
            &qg,
            &kg,
            GroupRule::Different,
            &format!("decoder {nq}x{nk}"),
        );
        // The inference encoder over the same keys: clean tokens 0, pads 255, rule Same.
        compare(
            &mut rng,
            &kg,
            &kg,
            GroupRule::Same,
            &format!("encoder {nk}"),
        );
    }
}

#[test]
fn empty_groups_give_exact_zeros() {
    let mut rng = Rng::seed(8);
    let l = 9;
    // Row 0: every token in group 0, so under `Different` nobody has a key. Row 1: a mix, and
    // a pad query (which never attends).
    let mut g = vec![0u8; l];
    g.extend([0, 1, 1, 0, 1, 0, 0, 1, PAD_GROUP]);
    let g = Tensor::from_vec(g, [2, l], Device::Cpu).unwrap();
    let fused = compare(&mut rng, &g, &g, GroupRule::Different, "empty group");
    let out = fused.out.to_vec::<f32>().unwrap();
    let dqkv = fused.grads[0].to_vec::<f32>().unwrap();
    let row = H * D;
    assert!(out[..l * row].iter().all(|&x| x == 0.0), "row 0 output");
    assert!(
        dqkv[..l * 3 * row].iter().all(|&x| x == 0.0),
        "row 0 gradient"
    );
    // The pad token of row 1: zero output, zero gradient for its q, k and v.
    let pad = 2 * l - 1;
    assert!(out[pad * row..(pad + 1) * row].iter().all(|&x| x == 0.0));
    assert!(dqkv[pad * 3 * row..].iter().all(|&x| x == 0.0));
    assert!(out[l * row..pad * row].iter().any(|&x| x != 0.0));
}

#[test]
fn partition_mask_follows_the_rule() {
    let qg = Tensor::from_vec(vec![0u8, 1, PAD_GROUP], [1, 3], Device::Cpu).unwrap();
    let kg = Tensor::from_vec(vec![1u8, 0, PAD_GROUP, 0], [1, 4], Device::Cpu).unwrap();
    let same = partition_mask(&qg, &kg, GroupRule::Same).unwrap();
    assert_eq!(same.dims(), &[1, 3, 4]);
    assert_eq!(
        same.to_vec::<u8>().unwrap(),
        vec![0, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    );
    let diff = partition_mask(&qg, &kg, GroupRule::Different).unwrap();
    assert_eq!(
        diff.to_vec::<u8>().unwrap(),
        vec![1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0]
    );
}

#[test]
fn bad_operands_are_errors() {
    let mut rng = Rng::seed(9);
    let q = Var::constant(randn(&[1, 4, H, D], &mut rng));
    let g = Tensor::from_vec(vec![0u8; 4], [1, 4], Device::Cpu).unwrap();
    let g_wrong = Tensor::from_vec(vec![0u8; 3], [1, 3], Device::Cpu).unwrap();
    let err = partition_attention(&q, &q, &q, &g_wrong, &g, GroupRule::Same, 1.0).unwrap_err();
    assert!(err.to_string().contains("partition_attention"), "{err}");
    let g32 = g.to_dtype(DType::U32).unwrap();
    assert!(partition_attention(&q, &q, &q, &g32, &g, GroupRule::Same, 1.0).is_err());
    let pos = Tensor::from_vec(vec![0u32, 1, 2, 3], [1, 4], Device::Cpu).unwrap();
    assert!(rope_tables(&pos, 7, DType::F32).is_err());
    // Half-precision x rotates with F32 tables.
    assert_eq!(
        rope_tables(&pos, D, DType::BF16).unwrap().0.dtype(),
        DType::F32
    );
    let (c, s) = rope_tables(&pos.narrow(1, 0, 3).unwrap(), D, DType::F32).unwrap();
    assert!(rope(&q, &c, &s).is_err());
}

#[test]
fn rope_matches_the_formula_and_inverts() {
    let mut rng = Rng::seed(10);
    let (b, n, d) = (2, 5, D);
    let pos: Vec<u32> = (0..b * n).map(|_| (rng.next_u64() % 1024) as u32).collect();
    let pos_t = Tensor::from_vec(pos.clone(), [b, n], Device::Cpu).unwrap();
    let (cos, sin) = rope_tables(&pos_t, d, DType::F32).unwrap();
    // A strided input: heads narrowed out of a wider tensor.
    let wide = randn(&[b, n, 2 * H, d], &mut rng);
    let x = wide.narrow(2, 1, H).unwrap();
    let y = rope(&Var::constant(x.clone()), &cos, &sin).unwrap();
    let (xs, ys) = (x.to_f64_vec().unwrap(), y.value().to_f64_vec().unwrap());
    let half = d / 2;
    for (t, &p) in pos.iter().enumerate() {
        for h in 0..H {
            let base = (t * H + h) * d;
            for k in 0..half {
                let angle = p as f64 * 10_000f64.powf(-2.0 * k as f64 / d as f64);
                let (s, c) = angle.sin_cos();
                let (x1, x2) = (xs[base + k], xs[base + k + half]);
                let want = [x1 * c - x2 * s, x2 * c + x1 * s];
                let got = [ys[base + k], ys[base + k + half]];
                for (w, g) in want.iter().zip(got) {
                    assert!((w - g).abs() < 1e-5, "token {t} head {h} k {k}: {w} vs {g}");
                }
            }
        }
    }
    let back = y.value().rope_backward(&cos, &sin).unwrap();
    assert!(max_diff(&back, &x) < 1e-5);
}

#[test]
fn rope_scores_depend_only_on_the_offset() {
    let mut rng = Rng::seed(12);
    let d = 16;
    let q = Tensor::randn([1, 1, 1, d], 0.0, 1.0, DType::F64, Device::Cpu, &mut rng).unwrap();
    let k = Tensor::randn([1, 1, 1, d], 0.0, 1.0, DType::F64, Device::Cpu, &mut rng).unwrap();
    let score = |pq: u32, pk: u32| -> f64 {
        let rot = |x: &Tensor, p: u32| {
            let pos = Tensor::from_vec(vec![p], [1, 1], Device::Cpu).unwrap();
            let (c, s) = rope_tables(&pos, d, DType::F64).unwrap();
            x.rope(&c, &s).unwrap().to_vec::<f64>().unwrap()
        };
        let (a, b) = (rot(&q, pq), rot(&k, pk));
        a.iter().zip(&b).map(|(x, y)| x * y).sum()
    };
    for (pq, pk) in [(3, 10), (10, 3), (0, 0), (7, 500)] {
        let s0 = score(pq, pk);
        for shift in [1, 17, 300] {
            let s1 = score(pq + shift, pk + shift);
            assert!(
                (s0 - s1).abs() < 1e-9,
                "({pq}, {pk}) +{shift}: {s0} vs {s1}"
            );
        }
    }
    // ... and it does depend on the offset.
    assert!((score(3, 10) - score(3, 11)).abs() > 1e-6);
}

#[test]
fn empty_dims_do_not_panic() {
    for (b, n, h, d) in [(1, 0, 2, 4), (1, 3, 0, 4), (1, 3, 2, 0), (0, 3, 2, 4)] {
        let tape = Tape::new();
        let x = tape.var(Tensor::zeros([b, n, h, d], DType::F32, Device::Cpu).unwrap());
        let g = Tensor::zeros([b, n], DType::U8, Device::Cpu).unwrap();
        let out = partition_attention(&x, &x, &x, &g, &g, GroupRule::Same, 1.0).unwrap();
        assert_eq!(out.dims(), &[b, n, h, d]);
        let grads = out.sum_all().unwrap().backward().unwrap();
        assert_eq!(grads.get(&x).unwrap().dims(), &[b, n, h, d]);
    }
}
