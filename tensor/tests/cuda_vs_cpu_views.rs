//! The CUDA paths that `cuda_vs_cpu.rs` reaches only with contiguous inputs, and the BF16
//! backward ops: each operand here is a view made on the GPU (strided, with a storage offset,
//! broadcast), so the kernels see the same layout the CPU reference sees. Tolerances as in
//! `cuda_vs_cpu.rs`. Each test prints `SKIPPED: no CUDA device` where no GPU can be opened
//! (fails instead with `PGM_REQUIRE_GPU` set).
#![cfg(feature = "cuda")]

mod common;

use common::cuda::{bf16_round, close, gpu, gpu_or_skip};
use common::rand as randn;
use tensor::op::{BinaryOp, UnaryOp};
use tensor::{DType, Device, Rng, Tensor};

/// `view` applied to `base` on the CPU and to its copy on the GPU: the same view on each.
fn both(base: &Tensor, view: impl Fn(&Tensor) -> Tensor) -> (Tensor, Tensor) {
    (view(base), view(&gpu(base)))
}

/// `t` rounded to bf16: on the CPU as F32 (the reference's input), on the GPU as BF16.
fn both16(t: &Tensor) -> (Tensor, Tensor) {
    let r = bf16_round(t);
    let g = gpu(&r).to_dtype(DType::BF16).unwrap();
    (r, g)
}

/// A named way to view a tensor.
type View = (&'static str, fn(&Tensor) -> Tensor);

/// Views [4, 5, 6] of a flat tensor of [`BASE`] elements: with a storage offset, transposed
/// (strided), and broadcast (stride 0) from an offset.
fn views() -> [View; 3] {
    [
        ("offset", |t| {
            t.narrow(0, 7, 120).unwrap().reshape([4, 5, 6]).unwrap()
        }),
        ("transposed", |t| {
            let t = t.narrow(0, 0, 120).unwrap().reshape([4, 6, 5]).unwrap();
            t.transpose(1, 2).unwrap()
        }),
        ("broadcast", |t| {
            let t = t.narrow(0, 3, 6).unwrap().reshape([1, 1, 6]).unwrap();
            t.broadcast_as([4, 5, 6]).unwrap()
        }),
    ]
}

/// The length of the flat tensor [`views`] are taken of.
const BASE: usize = 127;

#[test]
fn binary_and_unary_ops_on_gpu_views() {
    if !gpu_or_skip("binary_and_unary_ops_on_gpu_views") {
        return;
    }
    let mut rng = Rng::seed(21);
    let base = randn(&[BASE], &mut rng);
    let other = randn(&[4, 5, 6], &mut rng);
    for (what, view) in views() {
        let (x, gx) = both(&base, view);
        for op in [BinaryOp::Add, BinaryOp::Mul, BinaryOp::Maximum] {
            // The view on the left, then on the right.
            let want = x.binary(&other, op).unwrap();
            close(
                &format!("{what} lhs {}", op.name()),
                &gx.binary(&gpu(&other), op).unwrap(),
                &want,
                1e-6,
            );
            let want = other.binary(&x, op).unwrap();
            close(
                &format!("{what} rhs {}", op.name()),
                &gpu(&other).binary(&gx, op).unwrap(),
                &want,
                1e-6,
            );
        }
        close(
            &format!("{what} exp"),
            &gx.exp().unwrap(),
            &x.exp().unwrap(),
            1e-5,
        );
        close(
            &format!("{what} copy"),
            &gx.contiguous().unwrap(),
            &x.contiguous().unwrap(),
            1e-12,
        );
        // The same view of a BF16 tensor.
        let (r, g16) = both16(&base);
        let (x16, gx16) = (view(&r), view(&g16));
        let got = gx16
            .mul(&gpu(&other).to_dtype(DType::BF16).unwrap())
            .unwrap();
        assert_eq!(got.dtype(), DType::BF16);
        close(
            &format!("{what} mul bf16"),
            &got,
            &x16.mul(&bf16_round(&other)).unwrap(),
            1e-2,
        );
    }
}

#[test]
fn reductions_argmax_and_softmax_on_views_and_in_bf16() {
    if !gpu_or_skip("reductions_argmax_and_softmax_on_views_and_in_bf16") {
        return;
    }
    let mut rng = Rng::seed(22);
    let base = randn(&[BASE], &mut rng);
    for (what, view) in views() {
        let (x, gx) = both(&base, view);
        for dim in [0, 1, 2] {
            close(
                &format!("{what} sum {dim}"),
                &gx.sum(dim, false).unwrap(),
                &x.sum(dim, false).unwrap(),
                1e-5,
            );
            close(
                &format!("{what} max {dim}"),
                &gx.max(dim, true).unwrap(),
                &x.max(dim, true).unwrap(),
                1e-12,
            );
        }
        close(
            &format!("{what} softmax"),
            &gx.softmax().unwrap(),
            &x.softmax().unwrap(),
            1e-5,
        );
    }
    // argmax: the first index on ties, NaN largest (the first NaN wins), as the CPU.
    let row = vec![1f32, 3.0, 3.0, -1.0, f32::NAN, 2.0, f32::NAN, 3.0];
    let x = Tensor::from_vec([row.clone(), vec![0.5; 8]].concat(), [2, 8], Device::Cpu).unwrap();
    let ids = |t: &Tensor| t.to_device(Device::Cpu).unwrap().to_vec::<u32>().unwrap();
    assert_eq!(
        ids(&gpu(&x).argmax(1, false).unwrap()),
        ids(&x.argmax(1, false).unwrap())
    );
    assert_eq!(
        ids(&gpu(&x).argmax(0, false).unwrap()),
        ids(&x.argmax(0, false).unwrap())
    );

    // BF16: max, min, argmax, a long-row sum (segmented), softmax's and log-softmax's backward.
    let (r, g16) = both16(&randn(&[3, 20_000], &mut rng));
    close(
        "max bf16",
        &g16.max(1, false).unwrap(),
        &r.max(1, false).unwrap(),
        1e-2,
    );
    close(
        "min bf16",
        &g16.min(0, false).unwrap(),
        &r.min(0, false).unwrap(),
        1e-2,
    );
    assert_eq!(
        ids(&g16.argmax(1, false).unwrap()),
        ids(&r.argmax(1, false).unwrap())
    );
    let sum16 = g16.sum(1, false).unwrap();
    assert_eq!(sum16.dtype(), DType::BF16);
    close("long-row sum bf16", &sum16, &r.sum(1, false).unwrap(), 1e-2);
    let (r, g16) = both16(&randn(&[37, 129], &mut rng));
    let dy = bf16_round(&randn(&[37, 129], &mut rng));
    let gdy = gpu(&dy).to_dtype(DType::BF16).unwrap();
    for log in [false, true] {
        let (y, gy) = if log {
            (r.log_softmax().unwrap(), g16.log_softmax().unwrap())
        } else {
            (r.softmax().unwrap(), g16.softmax().unwrap())
        };
        close(&format!("softmax log={log} bf16"), &gy, &y, 1e-2);
        let got = gy.softmax_backward(&gdy, log).unwrap();
        assert_eq!(got.dtype(), DType::BF16);
        let want = y.softmax_backward(&dy, log).unwrap();
        close(
            &format!("softmax backward log={log} bf16"),
            &got,
            &want,
            2e-2,
        );
    }
}

#[test]
fn backward_ops_and_cat_in_bf16() {
    if !gpu_or_skip("backward_ops_and_cat_in_bf16") {
        return;
    }
    let mut rng = Rng::seed(23);
    let (x, gx) = both16(&randn(&[4, 33, 64], &mut rng));
    let (dy, gdy) = both16(&randn(&[4, 33, 64], &mut rng));
    for op in [UnaryOp::GeluTanh, UnaryOp::Silu, UnaryOp::Tanh] {
        let (y, gy) = (x.unary(op).unwrap(), gx.unary(op).unwrap());
        let got = gx.unary_backward(op, &gy, &gdy).unwrap();
        assert_eq!(got.dtype(), DType::BF16);
        close(
            &format!("{} backward bf16", op.name()),
            &got,
            &x.unary_backward(op, &y, &dy).unwrap(),
            2e-2,
        );
    }
    close(
        "affine bf16",
        &gx.affine(0.5, -2.0).unwrap(),
        &x.affine(0.5, -2.0).unwrap(),
        1e-2,
    );

    // Layer norm with one affine group per sequence: forward and backward.
    let (mul, gmul) = both16(&randn(&[4, 64], &mut rng));
    let (add, gadd) = both16(&randn(&[4, 64], &mut rng));
    let (y, stats) = x.layer_norm_affine(&mul, &add, 1e-5).unwrap();
    let (gy, gstats) = gx.layer_norm_affine(&gmul, &gadd, 1e-5).unwrap();
    close("layer_norm_affine bf16", &gy, &y, 2e-2);
    let want = x.layer_norm_affine_backward(&mul, &stats, &dy).unwrap();
    let got = gx.layer_norm_affine_backward(&gmul, &gstats, &gdy).unwrap();
    for (name, g, w) in [
        ("dx", &got.0, &want.0),
        ("dmul", &got.1, &want.1),
        ("dadd", &got.2, &want.2),
    ] {
        close(
            &format!("layer_norm_affine backward {name} bf16"),
            g,
            w,
            3e-2,
        );
    }

    // The gated residual with dropout: forward and backward.
    let dropout = Some((0.1, 5));
    let (branch, gbranch) = both16(&randn(&[4, 33, 64], &mut rng));
    let want = x.gated_residual(&mul, &branch, dropout).unwrap();
    close(
        "gated_residual bf16",
        &gx.gated_residual(&gmul, &gbranch, dropout).unwrap(),
        &want,
        2e-2,
    );
    let want = mul.gated_residual_backward(&branch, dropout, &dy).unwrap();
    let got = gmul
        .gated_residual_backward(&gbranch, dropout, &gdy)
        .unwrap();
    close(
        "gated_residual backward d branch bf16",
        &got.0,
        &want.0,
        2e-2,
    );
    close("gated_residual backward d gate bf16", &got.1, &want.1, 3e-2);

    // cat of a contiguous and a strided BF16 part.
    let part = x.narrow(2, 0, 10).unwrap();
    let gpart = gx.narrow(2, 0, 10).unwrap();
    let want = Tensor::cat(&[&x, &part], 2).unwrap();
    close(
        "cat bf16",
        &Tensor::cat(&[&gx, &gpart], 2).unwrap(),
        &want,
        1e-12,
    );
}

#[test]
fn matmul_operands_with_offsets_broadcast_batches_and_edges() {
    if !gpu_or_skip("matmul_operands_with_offsets_broadcast_batches_and_edges") {
        return;
    }
    let mut rng = Rng::seed(24);
    let mm = |a: &(Tensor, Tensor), b: &(Tensor, Tensor), what: &str| {
        close(
            what,
            &a.1.matmul(&b.1).unwrap(),
            &a.0.matmul(&b.0).unwrap(),
            1e-5,
        );
    };
    // A storage offset and a row stride wider than the row (a narrowed packed projection).
    let packed = randn(&[3, 33, 100], &mut rng);
    let a = both(&packed, |t| t.narrow(2, 30, 70).unwrap());
    let b = both(&randn(&[3, 70, 45], &mut rng), |t| t.clone());
    mm(&a, &b, "offset lhs");
    let a_batch = both(&packed, |t| {
        t.narrow(0, 1, 2).unwrap().narrow(2, 0, 70).unwrap()
    });
    let b2 = both(&randn(&[2, 70, 45], &mut rng), |t| t.clone());
    mm(&a_batch, &b2, "offset batch");
    // A right operand broadcast over the batch (batch stride 0).
    let shared = both(&randn(&[1, 70, 45], &mut rng), |t| {
        t.broadcast_as([3, 70, 45]).unwrap()
    });
    mm(&a, &shared, "broadcast batch");
    // M = 1, N = 1, K = 0.
    let row = both(&randn(&[3, 1, 70], &mut rng), |t| t.clone());
    mm(&row, &b, "m = 1");
    let col = both(&randn(&[3, 70, 1], &mut rng), |t| t.clone());
    mm(&a, &col, "n = 1");
    let empty = both(&randn(&[3, 33, 0], &mut rng), |t| t.clone());
    let none = both(&randn(&[3, 0, 45], &mut rng), |t| t.clone());
    mm(&empty, &none, "k = 0");
    // BF16, the left operand transposed in storage.
    let (at, gat) = both16(&randn(&[3, 70, 33], &mut rng));
    let (bb, gbb) = both16(&randn(&[3, 70, 45], &mut rng));
    let got = gat.transpose(1, 2).unwrap().matmul(&gbb).unwrap();
    close(
        "transposed lhs bf16",
        &got,
        &at.transpose(1, 2).unwrap().matmul(&bb).unwrap(),
        1e-2,
    );
}

#[test]
fn indexing_on_other_dims_dtypes_and_bad_ids() {
    if !gpu_or_skip("indexing_on_other_dims_dtypes_and_bad_ids") {
        return;
    }
    let mut rng = Rng::seed(25);
    let x = randn(&[3, 10, 4], &mut rng);
    let ids = Tensor::from_vec(vec![9u32, 0, 9, 4], [4], Device::Cpu).unwrap();
    let want = x.index_select(1, &ids).unwrap();
    close(
        "index_select dim 1",
        &gpu(&x).index_select(1, &gpu(&ids)).unwrap(),
        &want,
        1e-12,
    );
    for dtype in [DType::U32, DType::U8] {
        let xi = x.affine(3.0, 10.0).unwrap().to_dtype(dtype).unwrap();
        let got = gpu(&xi).index_select(1, &gpu(&ids)).unwrap();
        assert_eq!(got.dtype(), dtype);
        close(
            &format!("index_select {dtype:?}"),
            &got,
            &xi.index_select(1, &ids).unwrap(),
            1e-12,
        );
    }
    // Out-of-range ids are an error for every index op, never an out-of-bounds access.
    let bad = gpu(&Tensor::from_vec(vec![0u32, 10], [2], Device::Cpu).unwrap());
    let gx = gpu(&x);
    assert!(gx.index_select(1, &bad).is_err());
    let src = gpu(&randn(&[3, 2, 4], &mut rng));
    assert!(gx.index_add(1, &bad, &src).is_err());
    let idx = gpu(&Tensor::from_vec(vec![10u32; 24], [3, 2, 4], Device::Cpu).unwrap());
    assert!(gx.gather(1, &idx).is_err());
    assert!(gx.scatter_add(1, &idx, &src).is_err());
}

/// The kernels made once per dtype, for each of the six: casts between every pair, strided
/// copies, `cat`, `gather`, `index_select`, comparisons, the f64 index adjoints and the bf16
/// reductions over the last dim. Results must equal the CPU's exactly (casts round the same
/// way), except the bf16 sums (1e-2).
#[test]
fn every_dtype_through_casts_copies_indexing_and_compares() {
    if !gpu_or_skip("every_dtype_through_casts_copies_indexing_and_compares") {
        return;
    }
    use tensor::op::CmpOp;
    let cpu = Device::Cpu;
    let all = [
        DType::F32,
        DType::F64,
        DType::BF16,
        DType::F16,
        DType::U32,
        DType::U8,
    ];
    let is_float = |d: DType| !matches!(d, DType::U32 | DType::U8);
    // Integers below 251, which every dtype holds exactly; and fractional values for the casts
    // between float dtypes, which round to nearest even (f32 values, so that f64 → bf16 rounds
    // once on both devices).
    let ints: Vec<f32> = (0..300).map(|i| (i * 7 % 251) as f32).collect();
    let ints = Tensor::from_vec(ints, [12, 25], cpu).unwrap();
    let mut rng = Rng::seed(31);
    let floats = randn(&[12, 25], &mut rng).affine(100.0, 0.0).unwrap();
    let exact = |what: String, got: &Tensor, want: &Tensor| {
        assert_eq!(
            (got.dtype(), got.dims()),
            (want.dtype(), want.dims()),
            "{what}"
        );
        assert_eq!(common::vals(got), common::vals(want), "{what}");
    };
    let idx: Vec<u32> = (0..48).map(|i| (i * 5 % 25) as u32).collect();
    let idx = Tensor::from_vec(idx, [12, 4], cpu).unwrap();
    let ids = Tensor::from_vec(vec![11u32, 0, 3, 3, 7], [5], cpu).unwrap();
    for src in all {
        for dst in all {
            let x = if is_float(src) && is_float(dst) {
                &floats
            } else {
                &ints
            };
            let xs = x.to_dtype(src).unwrap();
            let what = format!("cast {src:?} → {dst:?}");
            exact(
                what,
                &gpu(&xs).to_dtype(dst).unwrap(),
                &xs.to_dtype(dst).unwrap(),
            );
        }
        let x = ints.to_dtype(src).unwrap();
        let g = gpu(&x);
        let transposed = |t: &Tensor| t.t().unwrap().contiguous().unwrap();
        exact(format!("copy {src:?}"), &transposed(&g), &transposed(&x));
        let joined = |t: &Tensor| {
            let part = t.narrow(1, 3, 5).unwrap();
            Tensor::cat(&[t, &part], 1).unwrap()
        };
        exact(format!("cat {src:?}"), &joined(&g), &joined(&x));
        let got = g.gather(1, &gpu(&idx)).unwrap();
        exact(format!("gather {src:?}"), &got, &x.gather(1, &idx).unwrap());
        let got = g.index_select(0, &gpu(&ids)).unwrap();
        exact(
            format!("index_select {src:?}"),
            &got,
            &x.index_select(0, &ids).unwrap(),
        );
        // Each row against the first, broadcast (the same values compared in f32 on the CPU).
        // F16 is a storage type only: neither backend compares it.
        if src != DType::F16 {
            let first = |t: &Tensor| t.narrow(0, 0, 1).unwrap();
            let got = g.cmp(&first(&g), CmpOp::Lt).unwrap();
            let want = ints.cmp(&first(&ints), CmpOp::Lt).unwrap();
            exact(format!("cmp {src:?}"), &got, &want);
        }
    }
    // The index adjoints in f64 (f32 and bf16 are in `cuda_vs_cpu.rs`).
    let x = floats.to_dtype(DType::F64).unwrap();
    let src = randn(&[12, 5], &mut rng).to_dtype(DType::F64).unwrap();
    let got = gpu(&x).index_add(1, &gpu(&ids), &gpu(&src)).unwrap();
    close(
        "index_add f64",
        &got,
        &x.index_add(1, &ids, &src).unwrap(),
        1e-12,
    );
    let src = randn(&[12, 4], &mut rng).to_dtype(DType::F64).unwrap();
    let got = gpu(&x).scatter_add(1, &gpu(&idx), &gpu(&src)).unwrap();
    close(
        "scatter_add f64",
        &got,
        &x.scatter_add(1, &idx, &src).unwrap(),
        1e-12,
    );
    // Reductions of bf16 rows over the last dim.
    let (r, g16) = both16(&floats);
    close(
        "sum bf16",
        &g16.sum(1, false).unwrap(),
        &r.sum(1, false).unwrap(),
        1e-2,
    );
    close(
        "max bf16",
        &g16.max(1, false).unwrap(),
        &r.max(1, false).unwrap(),
        1e-2,
    );
}
