//! Every tensor op against a direct, naive computation on plain Vecs (the fused ops and the
//! draws: `fused_vs_naive.rs`). Sizes include tensors large enough to take the parallel paths,
//! and strided (transposed, broadcast) operands.

mod common;

use common::{assert_close, rand, vals, CPU};
use tensor::op::CmpOp;
use tensor::{DType, ErrorKind, Rng, Tensor};

/// Naive row-major matmul of a [m, k] and b [k, n].
fn naive_matmul(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
        }
    }
    c
}

#[test]
fn matmul_matches_naive_for_all_layouts_and_batches() {
    let mut rng = Rng::seed(1);
    for &(m, k, n) in &[(1, 1, 1), (7, 13, 5), (64, 96, 80), (129, 257, 65)] {
        let (a, b) = (rand(&[m, k], &mut rng), rand(&[k, n], &mut rng));
        let want = naive_matmul(&vals(&a), &vals(&b), m, k, n);
        assert_close(&vals(&a.matmul(&b).unwrap()), &want, 1e-4, "matmul");
        // The same product from transposed storage: (aᵀ)ᵀ · (bᵀ)ᵀ.
        let (at, bt) = (
            a.t().unwrap().contiguous().unwrap(),
            b.t().unwrap().contiguous().unwrap(),
        );
        let via_views = at.t().unwrap().matmul(&bt.t().unwrap()).unwrap();
        assert_close(&vals(&via_views), &want, 1e-4, "matmul of transposed views");
    }
    // Batched, with the right operand shared across the batch.
    let (a, b) = (rand(&[3, 4, 5], &mut rng), rand(&[5, 6], &mut rng));
    let out = a.matmul(&b).unwrap();
    assert_eq!(out.dims(), &[3, 4, 6]);
    // On the CPU matmul_tf32 is matmul, bit for bit.
    assert_eq!(vals(&a.matmul_tf32(&b).unwrap()), vals(&out));
    let (av, bv) = (vals(&a), vals(&b));
    for bi in 0..3 {
        let want = naive_matmul(&av[bi * 20..(bi + 1) * 20], &bv, 4, 5, 6);
        assert_close(&vals(&out)[bi * 24..(bi + 1) * 24], &want, 1e-5, "bmm");
    }
    // f64 too.
    let a64 = a.to_dtype(DType::F64).unwrap();
    assert_close(
        &vals(&a64.matmul(&b.to_dtype(DType::F64).unwrap()).unwrap()),
        &vals(&out),
        1e-5,
        "f64 bmm",
    );
}

/// matmul_add against the naive product plus the addend, for a bias row, a full residual and a
/// batch folded into one GEMM (the shared-right-operand path), with a wrong addend refused.
#[test]
fn matmul_add_matches_naive_product_plus_addend() {
    let mut rng = Rng::seed(11);
    let (bt, m, k, n) = (3, 70, 33, 45);
    let (a, b) = (rand(&[bt, m, k], &mut rng), rand(&[k, n], &mut rng));
    let (av, bv) = (vals(&a), vals(&b));
    let product: Vec<f64> = (0..bt)
        .flat_map(|i| naive_matmul(&av[i * m * k..(i + 1) * m * k], &bv, m, k, n))
        .collect();
    let bias = rand(&[n], &mut rng);
    let residual = rand(&[bt, m, n], &mut rng);
    let (biasv, resv) = (vals(&bias), vals(&residual));
    let with_bias: Vec<f64> = (0..product.len())
        .map(|i| product[i] + biasv[i % n])
        .collect();
    let with_res: Vec<f64> = (0..product.len()).map(|i| product[i] + resv[i]).collect();
    assert_close(
        &vals(&a.matmul_add(&b, &bias).unwrap()),
        &with_bias,
        1e-4,
        "bias",
    );
    assert_close(
        &vals(&a.matmul_add(&b, &residual).unwrap()),
        &with_res,
        1e-4,
        "residual",
    );
    // A batch of distinct right operands (the batched path) and a transposed addend view.
    let b3 = rand(&[bt, k, n], &mut rng);
    let res_t = rand(&[bt, n, m], &mut rng);
    let want: Vec<f64> = vals(
        &a.matmul(&b3)
            .unwrap()
            .add(&res_t.transpose(1, 2).unwrap())
            .unwrap(),
    );
    let got = a.matmul_add(&b3, &res_t.transpose(1, 2).unwrap()).unwrap();
    assert_close(&vals(&got), &want, 1e-5, "batched, strided addend");
    assert!(
        a.matmul_add(&b, &rand(&[m], &mut rng)).is_err(),
        "[M] does not broadcast to [.., M, N]"
    );
}

#[test]
fn broadcasting_binary_ops_match_naive() {
    let mut rng = Rng::seed(2);
    let (r, c) = (300, 200); // 60 000 elements: the parallel path
    let (x, row) = (rand(&[r, c], &mut rng), rand(&[c], &mut rng));
    let col = rand(&[r, 1], &mut rng);
    let (xv, rv, cv) = (vals(&x), vals(&row), vals(&col));
    let want_add: Vec<f64> = (0..r * c).map(|i| xv[i] + rv[i % c]).collect();
    assert_close(&vals(&x.add(&row).unwrap()), &want_add, 1e-6, "add row");
    let want_div: Vec<f64> = (0..r * c).map(|i| cv[i / c] / xv[i]).collect();
    assert_close(&vals(&col.div(&x).unwrap()), &want_div, 1e-5, "div col");
    // A transposed operand: xᵀ has strides (1, c).
    let xt = x.t().unwrap();
    let want_mul: Vec<f64> = (0..c * r)
        .map(|i| xv[(i % r) * c + i / r] * xv[(i % r) * c + i / r])
        .collect();
    assert_close(
        &vals(&xt.mul(&xt).unwrap()),
        &want_mul,
        1e-6,
        "mul transposed",
    );
    let want_max: Vec<f64> = (0..r * c).map(|i| xv[i].max(rv[i % c])).collect();
    assert_close(&vals(&x.maximum(&row).unwrap()), &want_max, 0.0, "maximum");
    let want_affine: Vec<f64> = xv.iter().map(|v| v * 2.0 - 1.0).collect();
    assert_close(
        &vals(&x.affine(2.0, -1.0).unwrap()),
        &want_affine,
        1e-6,
        "affine",
    );
}

#[test]
fn unary_ops_match_std() {
    let x = Tensor::from_vec(vec![-2.0f32, -0.5, 0.0, 0.3, 1.7], [5], CPU).unwrap();
    let xv = vals(&x);
    let gelu = |v: f64| {
        0.5 * v * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (v + 0.044715 * v.powi(3))).tanh())
    };
    let silu = |v: f64| v / (1.0 + (-v).exp());
    assert_close(
        &vals(&x.exp().unwrap()),
        &xv.iter().map(|v| v.exp()).collect::<Vec<_>>(),
        1e-6,
        "exp",
    );
    assert_close(
        &vals(&x.tanh().unwrap()),
        &xv.iter().map(|v| v.tanh()).collect::<Vec<_>>(),
        1e-6,
        "tanh",
    );
    assert_close(
        &vals(&x.gelu_tanh().unwrap()),
        &xv.iter().map(|&v| gelu(v)).collect::<Vec<_>>(),
        1e-6,
        "gelu",
    );
    assert_close(
        &vals(&x.silu().unwrap()),
        &xv.iter().map(|&v| silu(v)).collect::<Vec<_>>(),
        1e-6,
        "silu",
    );
    let p = x.sqr().unwrap().add_scalar(1.0).unwrap();
    assert_close(
        &vals(&p.log().unwrap()),
        &xv.iter().map(|v| (v * v + 1.0).ln()).collect::<Vec<_>>(),
        1e-6,
        "log",
    );
    assert_close(
        &vals(&p.sqrt().unwrap()),
        &xv.iter().map(|v| (v * v + 1.0).sqrt()).collect::<Vec<_>>(),
        1e-6,
        "sqrt",
    );
}

#[test]
fn reductions_and_argmax_match_naive() {
    let mut rng = Rng::seed(3);
    let (a, b, c) = (4, 5, 6);
    let x = rand(&[a, b, c], &mut rng);
    let xv = vals(&x);
    let at = |i: usize, j: usize, k: usize| xv[(i * b + j) * c + k];
    let sum1: Vec<f64> = (0..a * c)
        .map(|o| (0..b).map(|j| at(o / c, j, o % c)).sum())
        .collect();
    assert_close(&vals(&x.sum(1, false).unwrap()), &sum1, 1e-5, "sum dim 1");
    assert_eq!(x.sum(1, true).unwrap().dims(), &[a, 1, c]);
    let max2: Vec<f64> = (0..a * b)
        .map(|o| (0..c).map(|k| at(o / b, o % b, k)).fold(f64::MIN, f64::max))
        .collect();
    assert_close(&vals(&x.max(-1, false).unwrap()), &max2, 0.0, "max last");
    let mean0: Vec<f64> = (0..b * c)
        .map(|o| (0..a).map(|i| at(i, o / c, o % c)).sum::<f64>() / a as f64)
        .collect();
    assert_close(
        &vals(&x.mean(0, false).unwrap()),
        &mean0,
        1e-5,
        "mean dim 0",
    );
    let arg: Vec<f64> = (0..a * b)
        .map(|o| {
            (0..c).fold(0, |best, k| {
                if at(o / b, o % b, k) > at(o / b, o % b, best) {
                    k
                } else {
                    best
                }
            }) as f64
        })
        .collect();
    let got = x.argmax(-1, false).unwrap();
    assert_eq!(got.dtype(), DType::U32);
    assert_eq!(vals(&got), arg);
    // Reducing a broadcast view must count every repeat.
    let row = Tensor::from_vec(vec![1f32, 2., 3.], [3], CPU)
        .unwrap()
        .broadcast_as([4, 3])
        .unwrap();
    assert_eq!(vals(&row.sum(0, false).unwrap()), vec![4.0, 8.0, 12.0]);
}

#[test]
fn softmax_and_log_softmax_match_naive_and_handle_masked_rows() {
    let mut rng = Rng::seed(4);
    let x = rand(&[300, 128], &mut rng);
    let xv = vals(&x);
    let mut want = vec![0.0; xv.len()];
    for (r, row) in xv.chunks(128).enumerate() {
        let z: f64 = row.iter().map(|v| v.exp()).sum();
        for (j, v) in row.iter().enumerate() {
            want[r * 128 + j] = v.exp() / z;
        }
    }
    assert_close(&vals(&x.softmax().unwrap()), &want, 1e-5, "softmax");
    let log_want: Vec<f64> = want.iter().map(|p| p.ln()).collect();
    assert_close(
        &vals(&x.log_softmax().unwrap()),
        &log_want,
        1e-5,
        "log_softmax",
    );
    // A fully masked row: zeros (softmax), −∞ (log-softmax); a partly masked row ignores −∞.
    let m = Tensor::from_vec(
        vec![f32::NEG_INFINITY, f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY],
        [2, 2],
        CPU,
    )
    .unwrap();
    assert_eq!(vals(&m.softmax().unwrap()), vec![0.0, 0.0, 1.0, 0.0]);
    assert!(vals(&m.log_softmax().unwrap())[0].is_infinite());
}

#[test]
fn layer_norm_matches_naive() {
    let mut rng = Rng::seed(5);
    let (rows, d) = (257, 96);
    let (x, w, b) = (
        rand(&[rows, d], &mut rng),
        rand(&[d], &mut rng),
        rand(&[d], &mut rng),
    );
    let (xv, wv, bv) = (vals(&x), vals(&w), vals(&b));
    let mut want = vec![0.0; rows * d];
    for r in 0..rows {
        let row = &xv[r * d..(r + 1) * d];
        let mean = row.iter().sum::<f64>() / d as f64;
        let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / d as f64;
        for j in 0..d {
            want[r * d + j] = (row[j] - mean) / (var + 1e-5).sqrt() * wv[j] + bv[j];
        }
    }
    let (y, stats) = x.layer_norm(&w, Some(&b), 1e-5).unwrap();
    assert_close(&vals(&y), &want, 1e-4, "layer_norm");
    assert_eq!(stats.mean.dims(), &[rows]);
    let (y0, _) = x.layer_norm(&w, None, 1e-5).unwrap();
    let no_bias: Vec<f64> = want
        .iter()
        .enumerate()
        .map(|(i, v)| v - bv[i % d])
        .collect();
    assert_close(&vals(&y0), &no_bias, 1e-4, "layer_norm without bias");
}

#[test]
fn indexing_ops_match_naive() {
    let table =
        Tensor::from_vec((0..12).map(|v| v as f32).collect::<Vec<_>>(), [4, 3], CPU).unwrap();
    let ids = Tensor::from_vec(vec![3u32, 0, 3], [3], CPU).unwrap();
    assert_eq!(
        vals(&table.index_select(0, &ids).unwrap()),
        vec![9., 10., 11., 0., 1., 2., 9., 10., 11.]
    );
    let ids2 = Tensor::from_vec(vec![2u32, 2, 0, 1], [2, 2], CPU).unwrap();
    let emb = table.embedding(&ids2).unwrap();
    assert_eq!(emb.dims(), &[2, 2, 3]);
    assert_eq!(vals(&emb)[..6], [6., 7., 8., 6., 7., 8.]);
    let added = table
        .zeros_like()
        .unwrap()
        .index_add(0, &ids, &Tensor::ones([3, 3], DType::F32, CPU).unwrap())
        .unwrap();
    assert_eq!(
        vals(&added),
        vec![1., 1., 1., 0., 0., 0., 0., 0., 0., 2., 2., 2.]
    );
    let idx = Tensor::from_vec(vec![2u32, 0, 1, 1], [4, 1], CPU).unwrap();
    assert_eq!(vals(&table.gather(1, &idx).unwrap()), vec![2., 3., 7., 10.]);
    let src = Tensor::from_vec(vec![1f32, 2., 3., 4.], [4, 1], CPU).unwrap();
    let scattered = table
        .zeros_like()
        .unwrap()
        .scatter_add(1, &idx, &src)
        .unwrap();
    assert_eq!(
        vals(&scattered),
        vec![0., 0., 1., 2., 0., 0., 0., 3., 0., 0., 4., 0.]
    );
    let cat = Tensor::cat(&[&table.narrow(1, 0, 1).unwrap(), &table], 1).unwrap();
    assert_eq!(cat.dims(), &[4, 4]);
    assert_eq!(vals(&cat)[..8], [0., 0., 1., 2., 3., 3., 4., 5.]);
}

#[test]
fn where_masked_fill_cmp_and_casts() {
    let a = Tensor::from_vec(vec![1f32, -2., 3., -4.], [2, 2], CPU).unwrap();
    let zero = Tensor::zeros((), DType::F32, CPU).unwrap();
    let pos = a.cmp(&zero, CmpOp::Gt).unwrap();
    assert_eq!(pos.dtype(), DType::U8);
    assert_eq!(vals(&pos), vec![1., 0., 1., 0.]);
    assert_eq!(
        vals(&pos.where_cond(&a, &a.neg().unwrap()).unwrap()),
        vec![1., 2., 3., 4.]
    );
    let row_mask = Tensor::from_vec(vec![0u8, 1], [2], CPU).unwrap();
    assert_eq!(
        vals(&a.masked_fill(&row_mask, -9.0).unwrap()),
        vec![1., -9., 3., -9.]
    );
    // bf16 / f16 storage: a round trip keeps values representable in 8 / 11 mantissa bits.
    for dt in [DType::BF16, DType::F16, DType::F64] {
        assert_eq!(
            vals(&a.to_dtype(dt).unwrap().to_dtype(DType::F32).unwrap()),
            vals(&a)
        );
    }
    let third = Tensor::full(1.0 / 3.0, [1], DType::F32, CPU).unwrap();
    assert!((vals(&third.to_dtype(DType::BF16).unwrap())[0] - 1.0 / 3.0).abs() < 2e-3);
    assert_eq!(
        vals(&a.to_dtype(DType::U32).unwrap().narrow(0, 0, 1).unwrap()),
        vec![1., 0.]
    );
}

#[test]
fn views_share_storage_and_copy_only_when_needed() {
    let x = Tensor::from_vec(
        (0..24).map(|v| v as f32).collect::<Vec<_>>(),
        [2, 3, 4],
        CPU,
    )
    .unwrap();
    let r = x.reshape([6, 4]).unwrap();
    assert!(r.same_storage(&x));
    let p = x.permute(&[2, 0, 1]).unwrap();
    assert!(p.same_storage(&x) && !p.is_contiguous());
    assert_eq!(vals(&p)[..3], [0., 4., 8.]);
    let n = x.narrow(1, 1, 2).unwrap();
    assert!(n.same_storage(&x));
    assert_eq!(vals(&n)[..4], [4., 5., 6., 7.]);
    let copied = p.reshape([24]).unwrap(); // not expressible as a view: copies
    assert!(!copied.same_storage(&x));
    assert_eq!(vals(&copied)[..3], [0., 4., 8.]);
    assert_eq!(
        x.unsqueeze(0).unwrap().squeeze(0).unwrap().dims(),
        &[2, 3, 4]
    );
    // Empty views and products: no offset past the storage, no division by a zero batch.
    let empty = x.narrow(2, 4, 0).unwrap().narrow(0, 2, 0).unwrap();
    assert!(vals(&empty.reshape([0]).unwrap().exp().unwrap()).is_empty());
    assert!(x.narrow(1, usize::MAX, 2).is_err());
    let (a, b) = (
        Tensor::zeros([0, 2, 3], DType::F32, CPU).unwrap(),
        Tensor::zeros([1, 3, 4], DType::F32, CPU).unwrap(),
    );
    assert_eq!(a.matmul(&b).unwrap().dims(), &[0, 2, 4]);
}

#[test]
fn bad_input_gives_errors_that_name_the_op_and_shapes() {
    let a = Tensor::zeros([2, 3], DType::F32, CPU).unwrap();
    let e = a.matmul(&a).unwrap_err();
    assert_eq!(e.op, "matmul");
    assert!(e.to_string().contains("[2, 3] · [2, 3]"), "{e}");
    let e = a
        .add(&Tensor::zeros([4], DType::F32, CPU).unwrap())
        .unwrap_err();
    assert!(
        e.to_string().starts_with("add: shape mismatch") && e.to_string().contains("[4]"),
        "{e}"
    );
    let e = a
        .add(&Tensor::zeros([3], DType::F64, CPU).unwrap())
        .unwrap_err();
    assert!(
        matches!(e.kind, ErrorKind::DType(_))
            && e.to_string().contains("F32")
            && e.to_string().contains("F64"),
        "{e}"
    );
    let ids = Tensor::from_vec(vec![0u32, 5], [2], CPU).unwrap();
    let e = a.index_select(0, &ids).unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::Index {
            index: 5,
            size: 2,
            dim: 0
        }
    );
    let float_ids = Tensor::zeros([2], DType::F32, CPU).unwrap();
    assert!(a
        .index_select(0, &float_ids)
        .unwrap_err()
        .to_string()
        .contains("U32"));
    assert!(a
        .reshape([4, 2])
        .unwrap_err()
        .to_string()
        .contains("[2, 3]"));
    assert!(a.narrow(1, 2, 2).is_err() && a.transpose(0, 2).is_err() && a.sum(5, false).is_err());
    assert!(Tensor::from_vec(vec![1f32; 5], [2, 3], CPU).is_err());
    assert!(a
        .layer_norm(&Tensor::ones([2], DType::F32, CPU).unwrap(), None, 1e-5)
        .is_err());
    let empty_rows = Tensor::zeros([4, 0], DType::F32, CPU).unwrap();
    let no_params = Tensor::zeros([0], DType::F32, CPU).unwrap();
    assert!(empty_rows
        .layer_norm(&no_params, None, 1e-5)
        .unwrap_err()
        .to_string()
        .contains("empty last dim"));
    #[cfg(not(feature = "cuda"))]
    assert!(a
        .to_device(tensor::Device::Cuda(0))
        .unwrap_err()
        .to_string()
        .contains("--features cuda"));
}
