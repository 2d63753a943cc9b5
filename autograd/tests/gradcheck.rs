//! Every differentiable op against central finite differences in f64, on random shapes, with
//! contiguous and with strided inputs, and with broadcasting where the op broadcasts.
#![allow(clippy::cloned_ref_to_slice_refs)] // `&[x.clone()]` reads better than `slice::from_ref`

use autograd::gradcheck::GradCheck;
use autograd::Var;
use tensor::op::UnaryOp;
use tensor::{DType, Device, Result, Rng, Tensor};

/// A random F64 tensor; `positive` keeps values in [0.5, 2] (for log, sqrt, recip, div).
fn rand(dims: &[usize], rng: &mut Rng, positive: bool) -> Tensor {
    let (lo, hi) = if positive { (0.5, 2.0) } else { (-2.0, 2.0) };
    Tensor::rand_uniform(dims.to_vec(), lo, hi, DType::F64, Device::Cpu, rng).unwrap()
}

/// A random size in lo..=hi.
fn size(rng: &mut Rng, lo: usize, hi: usize) -> usize {
    lo + (rng.next_u64() as usize) % (hi - lo + 1)
}

fn u32s(v: Vec<u32>, dims: &[usize]) -> Tensor {
    Tensor::from_vec(v, dims.to_vec(), Device::Cpu).unwrap()
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
fn unary_ops() {
    let mut rng = Rng::seed(1);
    for op in [
        UnaryOp::Neg,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
        UnaryOp::Sqr,
        UnaryOp::Recip,
        UnaryOp::Tanh,
        UnaryOp::Sigmoid,
        UnaryOp::Silu,
        UnaryOp::GeluTanh,
    ] {
        let positive = matches!(op, UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Recip);
        let dims = [size(&mut rng, 1, 4), size(&mut rng, 2, 5)];
        check(op.name(), &[rand(&dims, &mut rng, positive)], |v| {
            v[0].unary(op)
        });
    }
}

#[test]
fn scalar_and_binary_ops_with_broadcasting() {
    let mut rng = Rng::seed(2);
    let (a, b) = (size(&mut rng, 2, 4), size(&mut rng, 2, 5));
    check("affine", &[rand(&[a, b], &mut rng, false)], |v| {
        v[0].affine(-1.5, 0.25)
    });
    // [a, b] with [b], [a, 1] and [1, 1, b] on the other side.
    for rhs in [vec![b], vec![a, 1], vec![1, 1, b], vec![a, b]] {
        let x = rand(&[a, b], &mut rng, false);
        let y = rand(&rhs, &mut rng, true);
        check("add", &[x.clone(), y.clone()], |v| v[0].add(&v[1]));
        check("sub", &[x.clone(), y.clone()], |v| v[1].sub(&v[0]));
        check("mul", &[x.clone(), y.clone()], |v| v[0].mul(&v[1]));
        check("div", &[x.clone(), y.clone()], |v| v[0].div(&v[1]));
    }
}

#[test]
fn where_masked_fill_and_cast() {
    let mut rng = Rng::seed(3);
    let (a, b) = (size(&mut rng, 2, 4), size(&mut rng, 2, 5));
    let mask: Vec<u8> = (0..a * b).map(|_| (rng.next_u64() % 2) as u8).collect();
    let mask = Tensor::from_vec(mask, [a, b], Device::Cpu).unwrap();
    let (x, y) = (rand(&[a, b], &mut rng, false), rand(&[b], &mut rng, false));
    check("where_cond", &[x.clone(), y], |v| {
        Var::where_cond(&mask, &v[0], &v[1])
    });
    check("masked_fill", &[x.clone()], |v| {
        v[0].masked_fill(&mask, -7.0)
    });
    // Through f32 and back: the finite difference needs a step far above f32 rounding.
    let coarse = GradCheck {
        eps: 1e-2,
        atol: 1e-4,
        rtol: 1e-3,
        ..GradCheck::default()
    };
    coarse
        .run(&[x], |v| v[0].to_dtype(DType::F32)?.to_dtype(DType::F64))
        .unwrap();
}

#[test]
fn reductions() {
    let mut rng = Rng::seed(4);
    let dims = [
        size(&mut rng, 2, 3),
        size(&mut rng, 2, 4),
        size(&mut rng, 2, 4),
    ];
    let x = rand(&dims, &mut rng, false);
    for dim in [0isize, 1, -1] {
        for keepdim in [false, true] {
            check("sum", &[x.clone()], |v| v[0].sum(dim, keepdim));
            check("mean", &[x.clone()], |v| v[0].mean(dim, keepdim));
            check("max", &[x.clone()], |v| v[0].max(dim, keepdim));
        }
    }
    check("sum_all", &[x.clone()], |v| v[0].sum_all());
    check("mean_all", &[x], |v| v[0].mean_all());
}

#[test]
fn softmax_log_softmax_and_layer_norm() {
    let mut rng = Rng::seed(5);
    let dims = [
        size(&mut rng, 2, 3),
        size(&mut rng, 2, 3),
        size(&mut rng, 3, 6),
    ];
    let d = dims[2];
    let x = rand(&dims, &mut rng, false);
    check("softmax", &[x.clone()], |v| v[0].softmax());
    check("log_softmax", &[x.clone()], |v| v[0].log_softmax());
    let (w, b) = (rand(&[d], &mut rng, false), rand(&[d], &mut rng, false));
    check("layer_norm", &[x.clone(), w.clone()], |v| {
        v[0].layer_norm(&v[1], None, 1e-5)
    });
    check("layer_norm+bias", &[x, w, b], |v| {
        v[0].layer_norm(&v[1], Some(&v[2]), 1e-5)
    });
}

#[test]
fn layer_norm_modulate() {
    let mut rng = Rng::seed(14);
    let (b, n, d) = (
        size(&mut rng, 2, 3),
        size(&mut rng, 2, 4),
        size(&mut rng, 3, 6),
    );
    let x = rand(&[b, n, d], &mut rng, false);
    let w = rand(&[d], &mut rng, false);
    // One shift and scale per sequence, and one shared by all.
    for g in [b, 1] {
        let (shift, scale) = (
            rand(&[g, 1, d], &mut rng, false),
            rand(&[g, 1, d], &mut rng, false),
        );
        check(
            "layer_norm_modulate",
            &[x.clone(), w.clone(), shift, scale],
            |v| v[0].layer_norm_modulate(&v[1], &v[2], &v[3], 1e-5),
        );
    }
    // Per-sequence vectors of the wrong shape are refused with the expected one.
    let (x, w) = (Var::constant(x), Var::constant(w));
    let bad = Var::constant(rand(&[b + 1, 1, d], &mut rng, false));
    let e = x.layer_norm_modulate(&w, &bad, &bad, 1e-5).unwrap_err();
    assert!(e.to_string().contains("[B or 1, 1, D]"), "{e}");
    let e = x.gated_residual(&bad, &x, None).unwrap_err();
    assert!(e.to_string().contains("[B or 1, 1, D]"), "{e}");
    let (shift, w_row) = (
        Var::constant(rand(&[b, 1, d], &mut rng, false)),
        Var::constant(rand(&[1, d], &mut rng, false)),
    );
    let e = x
        .layer_norm_modulate(&w_row, &shift, &shift, 1e-5)
        .unwrap_err();
    assert!(e.to_string().contains("must be [D]"), "{e}");
}

#[test]
fn gated_residual() {
    let mut rng = Rng::seed(15);
    let (b, n, d) = (
        size(&mut rng, 2, 3),
        size(&mut rng, 2, 4),
        size(&mut rng, 3, 6),
    );
    let (h, branch) = (
        rand(&[b, n, d], &mut rng, false),
        rand(&[b, n, d], &mut rng, false),
    );
    for (g, dropout) in [(b, None), (b, Some((0.3, 7))), (1, Some((0.5, 8)))] {
        let gate = rand(&[g, 1, d], &mut rng, false);
        check("gated_residual", &[h.clone(), gate, branch.clone()], |v| {
            v[0].gated_residual(&v[1], &v[2], dropout)
        });
    }
}

#[test]
fn cross_entropy() {
    let mut rng = Rng::seed(13);
    let (rows, cols) = (size(&mut rng, 2, 4), size(&mut rng, 3, 7));
    let x = rand(&[2, rows, cols], &mut rng, false);
    let ids = (0..2 * rows)
        .map(|_| (rng.next_u64() % (cols as u64 - 1)) as u32)
        .collect();
    let targets = u32s(ids, &[2, rows]);
    for excluded in [None, Some(cols as u32 - 1)] {
        check("cross_entropy", &[x.clone()], |v| {
            v[0].cross_entropy(&targets, excluded)
        });
    }
}

#[test]
fn matmul_plain_batched_broadcast_and_transposed() {
    let mut rng = Rng::seed(6);
    let (bt, m, k, n) = (
        size(&mut rng, 2, 3),
        size(&mut rng, 1, 4),
        size(&mut rng, 2, 5),
        size(&mut rng, 1, 4),
    );
    let (a2, b2) = (
        rand(&[m, k], &mut rng, false),
        rand(&[k, n], &mut rng, false),
    );
    check("matmul", &[a2.clone(), b2.clone()], |v| v[0].matmul(&v[1]));
    let (a3, b3) = (
        rand(&[bt, m, k], &mut rng, false),
        rand(&[bt, k, n], &mut rng, false),
    );
    check("bmm", &[a3.clone(), b3], |v| v[0].matmul(&v[1]));
    check("bmm shared rhs", &[a3.clone(), b2.clone()], |v| {
        v[0].matmul(&v[1])
    });
    check(
        "bmm shared lhs",
        &[a2, rand(&[bt, k, n], &mut rng, false)],
        |v| v[0].matmul(&v[1]),
    );
    // Transposed operands as views: aᵀ from [k, m], bᵀ from [n, k].
    let (at, btr) = (
        rand(&[k, m], &mut rng, false),
        rand(&[n, k], &mut rng, false),
    );
    check("matmul transposed", &[at, btr], |v| {
        v[0].t()?.matmul(&v[1].t()?)
    });
    check(
        "bmm 4-d",
        &[
            rand(&[2, 1, m, k], &mut rng, false),
            rand(&[1, 2, k, n], &mut rng, false),
        ],
        |v| v[0].matmul(&v[1]),
    );
    // Empty inner or outer dims with a shared right operand: gradients of the inputs' shapes.
    for (a, b) in [([2, 3, 0], [0, 4]), ([2, 3, 4], [4, 0])] {
        let tape = autograd::Tape::new();
        let (va, vb) = (
            tape.var(rand(&a, &mut rng, false)),
            tape.var(rand(&b, &mut rng, false)),
        );
        let loss = va.matmul(&vb).unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        assert_eq!(grads.get(&va).unwrap().dims(), &a);
        assert_eq!(grads.get(&vb).unwrap().dims(), &b);
    }
}

#[test]
fn matmul_add_with_bias_and_residual() {
    let mut rng = Rng::seed(16);
    let (bt, m, k, n) = (2, 3, 4, 5);
    let (a, w) = (
        rand(&[bt, m, k], &mut rng, false),
        rand(&[n, k], &mut rng, false),
    );
    check(
        "matmul_add bias",
        &[a.clone(), w.clone(), rand(&[n], &mut rng, false)],
        |v| v[0].matmul_add(&v[1].t()?, &v[2]),
    );
    check(
        "matmul_add residual",
        &[a.clone(), w, rand(&[bt, m, n], &mut rng, false)],
        |v| v[0].matmul_add(&v[1].t()?, &v[2]),
    );
    check(
        "matmul_add batched",
        &[
            a,
            rand(&[bt, k, n], &mut rng, false),
            rand(&[m, 1], &mut rng, false),
        ],
        |v| v[0].matmul_add(&v[1], &v[2]),
    );
}

#[test]
fn indexing_ops() {
    let mut rng = Rng::seed(7);
    let (vocab, d) = (size(&mut rng, 3, 6), size(&mut rng, 2, 4));
    let table = rand(&[vocab, d], &mut rng, false);
    // Repeated ids: their gradients must add up.
    let ids = u32s(vec![1, 0, 1, (vocab - 1) as u32, 1, 2], &[2, 3]);
    check("embedding", &[table.clone()], |v| v[0].embedding(&ids));
    let sel = u32s(vec![2, 0, 2], &[3]);
    check(
        "index_select dim 1",
        &[rand(&[3, 4], &mut rng, false)],
        |v| v[0].index_select(1, &sel),
    );
    check(
        "index_add",
        &[
            rand(&[3, 4], &mut rng, false),
            rand(&[3, 3], &mut rng, false),
        ],
        |v| v[0].index_add(1, &sel, &v[1]),
    );
    let idx = u32s(vec![0, 2, 2, 1, 0, 0, 1, 1], &[2, 4]);
    check("gather dim 0", &[rand(&[3, 4], &mut rng, false)], |v| {
        v[0].gather(0, &idx)
    });
    let idx1 = u32s(vec![3, 3, 0, 1, 2, 0], &[3, 2]);
    check("gather dim 1", &[rand(&[3, 4], &mut rng, false)], |v| {
        v[0].gather(1, &idx1)
    });
    check(
        "scatter_add",
        &[
            rand(&[3, 4], &mut rng, false),
            rand(&[3, 2], &mut rng, false),
        ],
        |v| v[0].scatter_add(1, &idx1, &v[1]),
    );
    check(
        "cat",
        &[
            rand(&[2, 3], &mut rng, false),
            rand(&[2, 1], &mut rng, false),
            rand(&[2, 2], &mut rng, false),
        ],
        |v| Var::cat(&[&v[0], &v[1], &v[2]], 1),
    );
}

#[test]
fn views() {
    let mut rng = Rng::seed(8);
    let x = rand(&[2, 3, 4], &mut rng, false);
    check("reshape", &[x.clone()], |v| {
        v[0].reshape([4, 6])?.mul_scalar(2.0)
    });
    check("transpose", &[x.clone()], |v| {
        v[0].transpose(0, 2)?.contiguous()
    });
    check("permute", &[x.clone()], |v| {
        v[0].permute(&[1, 2, 0])?.reshape([24])
    });
    check("narrow", &[x.clone()], |v| v[0].narrow(2, 1, 2));
    check("narrow whole dim", &[x.clone()], |v| {
        v[0].narrow(0, 0, x.dims()[0])?.sqr()
    });
    // Slices of one input gather into its gradient: disjoint parts with a gap (as q, k, v of a
    // packed projection, one unused), overlapping parts, and the input also used whole.
    check("narrow parts", &[x.clone()], |v| {
        let (a, b) = (v[0].narrow(2, 0, 1)?, v[0].narrow(2, 2, 2)?);
        a.sqr()?.sum(2, true)?.mul(&b.sum(2, true)?)
    });
    check("narrow overlapping", &[x.clone()], |v| {
        v[0].narrow(1, 0, 2)?.sqr()?.add(&v[0].narrow(1, 1, 2)?)
    });
    check("narrow and whole", &[x.clone()], |v| {
        v[0].narrow(2, 1, 3)?.sum(2, true)?.mul(&v[0])
    });
    check("broadcast_as", &[rand(&[3, 1], &mut rng, false)], |v| {
        v[0].broadcast_as([2, 3, 4])
    });
    check("unsqueeze/squeeze", &[x], |v| {
        v[0].unsqueeze(1)?.squeeze(1)?.sum(1, false)
    });
}
