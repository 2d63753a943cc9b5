//! Each layer against a direct computation, and its gradients against finite differences.
#![allow(clippy::cloned_ref_to_slice_refs)]

use autograd::gradcheck::GradCheck;
use autograd::Var;
use nn::conditioning::{modulate, sinusoidal_features, AdaLn, TimestepEmbedder};
use nn::layers::{dropout, gated_residual, Embedding, LayerNorm, Linear, Mlp};
use nn::{Bound, ParamStore};
use tensor::{DType, Device, Rng, Tensor};

fn store64() -> (ParamStore, Rng) {
    (ParamStore::new(DType::F64, Device::Cpu), Rng::seed(0))
}
fn rand(dims: &[usize], rng: &mut Rng) -> Tensor {
    Tensor::randn(dims.to_vec(), 0.0, 1.0, DType::F64, Device::Cpu, rng).unwrap()
}
fn vals(v: &Var) -> Vec<f64> {
    v.value().to_f64_vec().unwrap()
}
/// Gradient check of `f(params…, x)` with the store's parameters as inputs (named in order).
fn check_layer(store: &ParamStore, x: Tensor, f: impl Fn(&Bound, &Var) -> tensor::Result<Var>) {
    let names: Vec<String> = store.iter().map(|(n, _)| n.clone()).collect();
    let mut inputs: Vec<Tensor> = store.iter().map(|(_, t)| t.clone()).collect();
    inputs.push(x);
    GradCheck::default()
        .run(&inputs, |v| {
            let bound = Bound::from_vars(names.iter().cloned().zip(v.iter().cloned()));
            f(&bound, v.last().unwrap())
        })
        .unwrap();
}

#[test]
fn linear_matches_naive_and_its_gradients_check() {
    let (mut store, mut rng) = store64();
    let lin = Linear::new(&mut store, "fc", 3, 4, true, &mut rng).unwrap();
    let x = rand(&[2, 5, 3], &mut rng);
    let y = vals(
        &lin.forward(&store.bind(None), &Var::constant(x.clone()))
            .unwrap(),
    );
    let (w, b, xv) = (
        store.get("fc.weight").unwrap().to_f64_vec().unwrap(),
        store.get("fc.bias").unwrap().to_f64_vec().unwrap(),
        x.to_f64_vec().unwrap(),
    );
    for r in 0..10 {
        for o in 0..4 {
            let want: f64 = b[o] + (0..3).map(|i| xv[r * 3 + i] * w[o * 3 + i]).sum::<f64>();
            assert!((y[r * 4 + o] - want).abs() < 1e-12);
        }
    }
    // PyTorch's default init bound 1/√in.
    assert!(w.iter().all(|v| v.abs() <= 1.0 / 3f64.sqrt()));
    check_layer(&store, x, |p, x| lin.forward(p, x));
}

#[test]
fn layer_norm_embedding_and_mlp() {
    let (mut store, mut rng) = store64();
    let ln = LayerNorm::new(&mut store, "ln", 6, true, &mut rng).unwrap();
    let x = rand(&[3, 6], &mut rng);
    let y = vals(
        &ln.forward(&store.bind(None), &Var::constant(x.clone()))
            .unwrap(),
    );
    let xv = x.to_f64_vec().unwrap();
    let row = &xv[..6];
    let mean = row.iter().sum::<f64>() / 6.0;
    let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 6.0;
    assert!((y[0] - (row[0] - mean) / (var + 1e-5).sqrt()).abs() < 1e-12);
    check_layer(&store, x.clone(), |p, x| ln.forward(p, x));

    let (mut store, mut rng) = store64();
    let mlp = Mlp::new(&mut store, "mlp", 6, 8, &mut rng).unwrap();
    let y = vals(
        &mlp.forward(&store.bind(None), &Var::constant(x.clone()))
            .unwrap(),
    );
    let p = store.bind(None);
    let direct = mlp
        .fc2
        .forward(
            &p,
            &mlp.fc1
                .forward(&p, &Var::constant(x.clone()))
                .unwrap()
                .gelu_tanh()
                .unwrap(),
        )
        .unwrap();
    assert_eq!(y, vals(&direct));
    assert!(store.get("mlp.0.weight").is_some() && store.get("mlp.2.bias").is_some());
    check_layer(&store, x, |p, x| mlp.forward(p, x));

    let (mut store, mut rng) = store64();
    let emb = Embedding::new(&mut store, "vocab_embed.embedding", 5, 3, &mut rng).unwrap();
    let ids = Tensor::from_vec(vec![4u32, 0, 4], [1, 3], Device::Cpu).unwrap();
    let y = vals(&emb.forward(&store.bind(None), &ids).unwrap());
    let table = store
        .get("vocab_embed.embedding")
        .unwrap()
        .to_f64_vec()
        .unwrap();
    assert_eq!(y[..3], table[12..15]);
    assert_eq!(y[6..9], table[12..15]);
    let bad = Tensor::from_vec(vec![5u32], [1, 1], Device::Cpu).unwrap();
    assert!(emb
        .forward(&store.bind(None), &bad)
        .unwrap_err()
        .to_string()
        .contains("index 5 out of range"));
}

#[test]
fn conditioning_layers() {
    // Sinusoidal features: cos then sin of v·exp(−ln(10000)·k/h).
    let f = sinusoidal_features(&[0.0, 2.0], 4, DType::F64, Device::Cpu)
        .unwrap()
        .to_f64_vec()
        .unwrap();
    let w1 = (-(10000f64.ln()) / 2.0).exp();
    let want = [
        1.0,
        1.0,
        0.0,
        0.0,
        2f64.cos(),
        (2.0 * w1).cos(),
        2f64.sin(),
        (2.0 * w1).sin(),
    ];
    for (a, b) in f.iter().zip(want) {
        assert!((a - b).abs() < 1e-12);
    }
    let (mut store, mut rng) = store64();
    let ada = AdaLn::new(&mut store, "adaLN_modulation", 4, 3, 2, &mut rng).unwrap();
    let c = Var::constant(rand(&[2, 4], &mut rng));
    // Zero init: shift 0 and scale 0, so modulate is the identity.
    let m = ada.forward(&store.bind(None), &c).unwrap();
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].dims(), &[2, 1, 3]);
    let x = Var::constant(rand(&[2, 5, 3], &mut rng));
    assert_eq!(vals(&modulate(&x, &m[0], &m[1]).unwrap()), vals(&x));
    store
        .set("adaLN_modulation.weight", rand(&[6, 4], &mut rng))
        .unwrap();
    let xt = x.value().clone();
    check_layer(&store, c.value().clone(), |p, c| {
        let m = ada.forward(p, c)?;
        modulate(&Var::constant(xt.clone()), &m[0], &m[1])
    });

    // The fused norm + modulate equals the two steps, with and without a bias (which takes
    // the two-step path), for a shift per sequence and a shared one; its gradients check.
    for bias in [false, true] {
        let (mut store, mut rng) = store64();
        let ln = LayerNorm::new(&mut store, "ln", 3, bias, &mut rng).unwrap();
        store.set("ln.weight", rand(&[3], &mut rng)).unwrap();
        let p = store.bind(None);
        for g in [2, 1] {
            let (shift, scale) = (
                Var::constant(rand(&[g, 1, 3], &mut rng)),
                Var::constant(rand(&[g, 1, 3], &mut rng)),
            );
            let fused = ln.forward_modulated(&p, &x, &shift, &scale).unwrap();
            let steps = modulate(&ln.forward(&p, &x).unwrap(), &shift, &scale).unwrap();
            for (a, b) in vals(&fused).iter().zip(vals(&steps)) {
                assert!((a - b).abs() < 1e-12, "bias {bias}, {g} groups: {a} vs {b}");
            }
            let (sh, sc) = (shift.value().clone(), scale.value().clone());
            check_layer(&store, xt.clone(), |p, x| {
                ln.forward_modulated(p, x, &Var::constant(sh.clone()), &Var::constant(sc.clone()))
            });
        }
    }

    let (mut store, mut rng) = store64();
    let temb = TimestepEmbedder::new(&mut store, 8, &mut rng).unwrap();
    let c = temb.condition(&store.bind(None), &[0.0, 0.5]).unwrap();
    assert_eq!(c.dims(), &[2, 8]);
    assert!(store.get("sigma_map.mlp.0.weight").unwrap().dims() == [8, 256]);
}

#[test]
fn dropout_zeroes_and_rescales_only_in_training() {
    let mut rng = Rng::seed(3);
    let x = Var::constant(Tensor::ones([10_000], DType::F32, Device::Cpu).unwrap());
    assert_eq!(vals(&dropout(&x, 0.1, None).unwrap()), vals(&x));
    let y = vals(&dropout(&x, 0.25, Some(&mut rng)).unwrap());
    let zeros = y.iter().filter(|&&v| v == 0.0).count() as f64 / y.len() as f64;
    assert!((zeros - 0.25).abs() < 0.02, "dropped {zeros}");
    assert!(y.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-6));
    let mean = y.iter().sum::<f64>() / y.len() as f64;
    assert!((mean - 1.0).abs() < 0.03);

    // The fused gated residual draws the same mask as `dropout` from the same generator.
    let h = Var::constant(rand(&[2, 50, 100], &mut rng));
    let branch = Var::constant(rand(&[2, 50, 100], &mut rng));
    let gate = Var::constant(rand(&[2, 1, 100], &mut rng));
    let (mut r1, mut r2) = (Rng::seed(4), Rng::seed(4));
    let fused = gated_residual(&h, &gate, &branch, 0.2, Some(&mut r1)).unwrap();
    let steps = h
        .add(
            &gate
                .mul(&dropout(&branch, 0.2, Some(&mut r2)).unwrap())
                .unwrap(),
        )
        .unwrap();
    for (a, b) in vals(&fused).iter().zip(vals(&steps)) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
    // Evaluation: no dropout.
    let eval = gated_residual(&h, &gate, &branch, 0.2, None).unwrap();
    let plain = h.add(&gate.mul(&branch).unwrap()).unwrap();
    assert_eq!(vals(&eval), vals(&plain));
}
