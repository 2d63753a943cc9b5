//! Every op wired to CUDA gives what the CPU backend (the reference) gives, on random inputs:
//! relative error below 1e-5 for F32 (1e-4 where a long sum is involved) and 1e-2 for BF16
//! (compared with the CPU's F32 result on the same bf16-rounded inputs). Each test prints
//! `SKIPPED: no CUDA device` and returns where no GPU can be opened.
#![cfg(feature = "cuda")]

use tensor::op::{BinaryOp, CmpOp, UnaryOp};
use tensor::{DType, Device, GroupRule, Rng, Tensor};

const GPU: Device = Device::Cuda(0);

fn gpu_or_skip(test: &str) -> bool {
    if tensor::cuda::is_available() {
        return true;
    }
    eprintln!("SKIPPED {test}: no CUDA device");
    false
}

fn randn(shape: &[usize], rng: &mut Rng) -> Tensor {
    Tensor::randn(shape.to_vec(), 0.0, 1.0, DType::F32, Device::Cpu, rng).unwrap()
}

fn gpu(t: &Tensor) -> Tensor {
    t.to_device(GPU).unwrap()
}

/// Fails unless `got` (any device, any float dtype) is within `tol` of `want`, relative to
/// max(1, |want|) per element.
fn close(what: &str, got: &Tensor, want: &Tensor, tol: f64) {
    assert_eq!(got.dims(), want.dims(), "{what}: shapes");
    let g = got.to_device(Device::Cpu).unwrap().to_f64_vec().unwrap();
    let w = want.to_device(Device::Cpu).unwrap().to_f64_vec().unwrap();
    let mut worst = 0f64;
    for (a, b) in g.iter().zip(&w) {
        if a.is_infinite() || b.is_infinite() {
            assert_eq!(a, b, "{what}: infinities differ");
            continue;
        }
        worst = worst.max((a - b).abs() / b.abs().max(1.0));
    }
    assert!(
        worst < tol,
        "{what}: max relative error {worst:e} ≥ {tol:e}"
    );
}

/// The same tensor rounded to bf16, then back to f32 on the CPU (the reference's input).
fn bf16_round(t: &Tensor) -> Tensor {
    t.to_dtype(DType::BF16)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
}

#[test]
fn unary_ops_and_their_backward() {
    if !gpu_or_skip("unary_ops_and_their_backward") {
        return;
    }
    let mut rng = Rng::seed(1);
    let x = randn(&[37, 129], &mut rng);
    let pos = x.sqr().unwrap().add_scalar(0.1).unwrap(); // for log, sqrt, recip
    let dy = randn(&[37, 129], &mut rng);
    use UnaryOp::*;
    for op in [
        Neg, Exp, Log, Sqrt, Sqr, Recip, Tanh, Sigmoid, Silu, GeluTanh,
    ] {
        let input = if matches!(op, Log | Sqrt | Recip) {
            &pos
        } else {
            &x
        };
        let want = input.unary(op).unwrap();
        let got = gpu(input).unary(op).unwrap();
        close(op.name(), &got, &want, 1e-5);
        let want_dx = input.unary_backward(op, &want, &dy).unwrap();
        let got_dx = gpu(input).unary_backward(op, &got, &gpu(&dy)).unwrap();
        close(&format!("{} backward", op.name()), &got_dx, &want_dx, 1e-5);
        // BF16 activations: same op on rounded inputs, compared with the F32 reference.
        let xr = bf16_round(input);
        let got16 = gpu(&xr).to_dtype(DType::BF16).unwrap().unary(op).unwrap();
        assert_eq!(got16.dtype(), DType::BF16);
        close(
            &format!("{} bf16", op.name()),
            &got16,
            &xr.unary(op).unwrap(),
            1e-2,
        );
    }
    close(
        "affine",
        &gpu(&x).affine(0.5, -2.0).unwrap(),
        &x.affine(0.5, -2.0).unwrap(),
        1e-6,
    );
}

#[test]
fn broadcasting_binary_ops_comparisons_and_where() {
    if !gpu_or_skip("broadcasting_binary_ops_comparisons_and_where") {
        return;
    }
    let mut rng = Rng::seed(2);
    let a = randn(&[4, 5, 6], &mut rng);
    let row = randn(&[6], &mut rng);
    let col = randn(&[4, 1, 6], &mut rng);
    let at = randn(&[4, 6, 5], &mut rng).transpose(1, 2).unwrap(); // a strided view
    use BinaryOp::*;
    for op in [Add, Sub, Mul, Div, Maximum, Minimum] {
        for (what, rhs) in [("row", &row), ("col", &col), ("transposed", &at)] {
            let want = a.binary(rhs, op).unwrap();
            let got = gpu(&a).binary(&gpu(rhs), op).unwrap();
            close(&format!("{} {what}", op.name()), &got, &want, 1e-6);
        }
    }
    let got16 = gpu(&bf16_round(&a))
        .to_dtype(DType::BF16)
        .unwrap()
        .mul(&gpu(&bf16_round(&row)).to_dtype(DType::BF16).unwrap())
        .unwrap();
    close(
        "mul bf16",
        &got16,
        &bf16_round(&a).mul(&bf16_round(&row)).unwrap(),
        1e-2,
    );
    for op in [
        CmpOp::Eq,
        CmpOp::Ne,
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Gt,
        CmpOp::Ge,
    ] {
        let want = a.cmp(&row, op).unwrap();
        let got = gpu(&a).cmp(&gpu(&row), op).unwrap();
        assert_eq!(
            got.to_vec::<u8>().unwrap(),
            want.to_vec::<u8>().unwrap(),
            "{op:?}"
        );
    }
    let ids = Tensor::from_vec(vec![3u32, 1, 4, 1, 5, 9], [6], Device::Cpu).unwrap();
    let same = gpu(&ids)
        .cmp(&gpu(&ids.narrow(0, 0, 1).unwrap()), CmpOp::Eq)
        .unwrap();
    assert_eq!(same.to_vec::<u8>().unwrap(), vec![1, 0, 0, 0, 0, 0]);
    let mask = a.cmp(&row, CmpOp::Gt).unwrap();
    let want = a.masked_fill(&mask, -1e9).unwrap();
    close(
        "masked_fill",
        &gpu(&a).masked_fill(&gpu(&mask), -1e9).unwrap(),
        &want,
        1e-6,
    );
    let want = mask.where_cond(&a, &col).unwrap();
    let got = gpu(&mask).where_cond(&gpu(&a), &gpu(&col)).unwrap();
    close("where_cond", &got, &want, 1e-6);
}

#[test]
fn casts_and_strided_copies() {
    if !gpu_or_skip("casts_and_strided_copies") {
        return;
    }
    let mut rng = Rng::seed(3);
    let x = randn(&[3, 4, 5], &mut rng).mul_scalar(100.0).unwrap();
    for dtype in [DType::F64, DType::BF16, DType::F16, DType::U32, DType::U8] {
        let want = x.to_dtype(dtype).unwrap();
        let got = gpu(&x).to_dtype(dtype).unwrap();
        assert_eq!(got.dtype(), dtype);
        let (g, w) = (got.to_f64_vec().unwrap(), want.to_f64_vec().unwrap());
        assert_eq!(g, w, "cast to {dtype:?}");
    }
    let p = x.permute(&[2, 0, 1]).unwrap().narrow(1, 1, 2).unwrap();
    let got = gpu(&x)
        .permute(&[2, 0, 1])
        .unwrap()
        .narrow(1, 1, 2)
        .unwrap()
        .contiguous()
        .unwrap();
    assert_eq!(got.to_vec::<f32>().unwrap(), p.to_vec::<f32>().unwrap());
}

#[test]
fn reductions_argmax_and_softmax() {
    if !gpu_or_skip("reductions_argmax_and_softmax") {
        return;
    }
    let mut rng = Rng::seed(4);
    let x = randn(&[6, 7, 300], &mut rng);
    for dim in [2isize, 1, 0] {
        close(
            "sum",
            &gpu(&x).sum(dim, false).unwrap(),
            &x.sum(dim, false).unwrap(),
            1e-5,
        );
        close(
            "max",
            &gpu(&x).max(dim, true).unwrap(),
            &x.max(dim, true).unwrap(),
            1e-6,
        );
        close(
            "min",
            &gpu(&x).min(dim, false).unwrap(),
            &x.min(dim, false).unwrap(),
            1e-6,
        );
        close(
            "mean",
            &gpu(&x).mean(dim, false).unwrap(),
            &x.mean(dim, false).unwrap(),
            1e-5,
        );
        let (g, w) = (
            gpu(&x).argmax(dim, false).unwrap(),
            x.argmax(dim, false).unwrap(),
        );
        assert_eq!(
            g.to_vec::<u32>().unwrap(),
            w.to_vec::<u32>().unwrap(),
            "argmax {dim}"
        );
    }
    close(
        "sum_all",
        &gpu(&x).sum_all().unwrap(),
        &x.sum_all().unwrap(),
        1e-4,
    );
    // A fully masked row: zeros for softmax, −∞ for log-softmax.
    let mut masked = x.to_vec::<f32>().unwrap();
    masked[..300].fill(f32::NEG_INFINITY);
    let xm = Tensor::from_vec(masked, [6, 7, 300], Device::Cpu).unwrap();
    let dy = randn(&[6, 7, 300], &mut rng);
    for log in [false, true] {
        let (want, got) = if log {
            (xm.log_softmax().unwrap(), gpu(&xm).log_softmax().unwrap())
        } else {
            (xm.softmax().unwrap(), gpu(&xm).softmax().unwrap())
        };
        close(&format!("softmax log={log}"), &got, &want, 1e-5);
        let want_dx = want.softmax_backward(&dy, log).unwrap();
        let got_dx = got.softmax_backward(&gpu(&dy), log).unwrap();
        close(
            &format!("softmax backward log={log}"),
            &got_dx,
            &want_dx,
            1e-5,
        );
    }
    let xr = bf16_round(&x);
    let got16 = gpu(&xr).to_dtype(DType::BF16).unwrap().softmax().unwrap();
    close("softmax bf16", &got16, &xr.softmax().unwrap(), 1e-2);
}

#[test]
fn cross_entropy_forward_and_backward() {
    if !gpu_or_skip("cross_entropy_forward_and_backward") {
        return;
    }
    let mut rng = Rng::seed(15);
    let (rows, v) = (2 * 37, 1000);
    let x = randn(&[2, 37, v], &mut rng).affine(3.0, 0.0).unwrap();
    let ids = (0..rows)
        .map(|_| (rng.next_u64() % (v as u64 - 1)) as u32)
        .collect();
    let targets = Tensor::from_vec(ids, [2, 37], Device::Cpu).unwrap();
    let dnll = randn(&[2, 37], &mut rng);
    for excluded in [None, Some(v as u32 - 1)] {
        let (nll, lse) = x.cross_entropy(&targets, excluded).unwrap();
        let (gnll, glse) = gpu(&x).cross_entropy(&gpu(&targets), excluded).unwrap();
        close("cross_entropy nll", &gnll, &nll, 1e-5);
        close("cross_entropy lse", &glse, &lse, 1e-5);
        let dx = x
            .cross_entropy_backward(&targets, &lse, &dnll, excluded)
            .unwrap();
        let gdx = gpu(&x)
            .cross_entropy_backward(&gpu(&targets), &glse, &gpu(&dnll), excluded)
            .unwrap();
        close("cross_entropy dx", &gdx, &dx, 1e-5);
    }
    // BF16 logits: F32 nll and lse, a BF16 gradient.
    let xr = bf16_round(&x);
    let x16 = gpu(&xr).to_dtype(DType::BF16).unwrap();
    let (nll, lse) = xr.cross_entropy(&targets, Some(0)).unwrap();
    let (gnll, glse) = x16.cross_entropy(&gpu(&targets), Some(0)).unwrap();
    assert_eq!(gnll.dtype(), DType::F32);
    close("cross_entropy nll bf16", &gnll, &nll, 1e-2);
    let dx = xr
        .cross_entropy_backward(&targets, &lse, &dnll, Some(0))
        .unwrap();
    let gdx = x16
        .cross_entropy_backward(&gpu(&targets), &glse, &gpu(&dnll), Some(0))
        .unwrap();
    assert_eq!(gdx.dtype(), DType::BF16);
    close("cross_entropy dx bf16", &gdx, &dx, 1e-2);
}

#[test]
fn gumbel_argmax_draws_the_cpu_tokens() {
    if !gpu_or_skip("gumbel_argmax_draws_the_cpu_tokens") {
        return;
    }
    let mut rng = Rng::seed(16);
    let (rows, v) = (2000, 3001);
    let lp = randn(&[rows, v], &mut rng)
        .affine(2.0, 0.0)
        .unwrap()
        .log_softmax()
        .unwrap();
    let want = lp.gumbel_argmax(99).unwrap().to_vec::<u32>().unwrap();
    let got = gpu(&lp).gumbel_argmax(99).unwrap();
    let got = got.to_device(Device::Cpu).unwrap().to_vec::<u32>().unwrap();
    // Same noise, same f64 scores: only a last-bit difference of exp or log between the
    // CPU's libm and CUDA's can flip a near tie.
    let differ = want.iter().zip(&got).filter(|(a, b)| a != b).count();
    assert!(differ <= 2, "{differ} of {rows} draws differ");
    // BF16 log-probabilities draw valid ids.
    let got16 = gpu(&lp)
        .to_dtype(DType::BF16)
        .unwrap()
        .gumbel_argmax(99)
        .unwrap();
    let got16 = got16
        .to_device(Device::Cpu)
        .unwrap()
        .to_vec::<u32>()
        .unwrap();
    assert!(got16.iter().all(|&t| (t as usize) < v));
}

#[test]
fn dropout_masks_are_the_cpu_masks() {
    if !gpu_or_skip("dropout_masks_are_the_cpu_masks") {
        return;
    }
    let want = Tensor::dropout_mask([7, 33_001], 0.1, 42, DType::F32, Device::Cpu).unwrap();
    let got = Tensor::dropout_mask([7, 33_001], 0.1, 42, DType::F32, GPU).unwrap();
    close("dropout mask", &got, &want, 1e-12);
    let got16 = Tensor::dropout_mask([7, 33_001], 0.1, 42, DType::BF16, GPU).unwrap();
    close("dropout mask bf16", &got16, &want, 1e-2);
}

#[test]
fn gated_residual_forward_and_backward() {
    if !gpu_or_skip("gated_residual_forward_and_backward") {
        return;
    }
    let mut rng = Rng::seed(17);
    // 3 sequences of 40 rows: the d gate sums cross a chunk boundary (32 rows).
    let (h, branch, dy) = (
        randn(&[3, 40, 96], &mut rng),
        randn(&[3, 40, 96], &mut rng),
        randn(&[3, 40, 96], &mut rng),
    );
    for (groups, dropout) in [(3, None), (3, Some((0.1, 5))), (1, Some((0.5, 6)))] {
        let gate = randn(&[groups, 96], &mut rng);
        let what = format!("{groups} gates, dropout {dropout:?}");
        close(
            &format!("gated_residual, {what}"),
            &gpu(&h)
                .gated_residual(&gpu(&gate), &gpu(&branch), dropout)
                .unwrap(),
            &h.gated_residual(&gate, &branch, dropout).unwrap(),
            1e-5,
        );
        let (db, dg) = gate.gated_residual_backward(&branch, dropout, &dy).unwrap();
        let (gdb, gdg) = gpu(&gate)
            .gated_residual_backward(&gpu(&branch), dropout, &gpu(&dy))
            .unwrap();
        close(&format!("d branch, {what}"), &gdb, &db, 1e-5);
        close(&format!("d gate, {what}"), &gdg, &dg, 1e-4);
    }
    let to16 = |t: &Tensor| gpu(&bf16_round(t)).to_dtype(DType::BF16).unwrap();
    let gate = randn(&[3, 96], &mut rng);
    close(
        "gated_residual bf16",
        &to16(&h)
            .gated_residual(&to16(&gate), &to16(&branch), Some((0.1, 5)))
            .unwrap(),
        &bf16_round(&h)
            .gated_residual(&bf16_round(&gate), &bf16_round(&branch), Some((0.1, 5)))
            .unwrap(),
        1e-2,
    );
}

#[test]
fn layer_norm_forward_and_backward() {
    if !gpu_or_skip("layer_norm_forward_and_backward") {
        return;
    }
    let mut rng = Rng::seed(5);
    let x = randn(&[3, 17, 96], &mut rng).affine(2.0, 0.5).unwrap();
    let (w, b) = (randn(&[96], &mut rng), randn(&[96], &mut rng));
    let dy = randn(&[3, 17, 96], &mut rng);
    for bias in [None, Some(&b)] {
        let (want, ws) = x.layer_norm(&w, bias, 1e-5).unwrap();
        let gb = bias.map(gpu);
        let (got, gs) = gpu(&x).layer_norm(&gpu(&w), gb.as_ref(), 1e-5).unwrap();
        close("layer_norm", &got, &want, 1e-5);
        close("layer_norm mean", &gs.mean, &ws.mean, 1e-5);
        close("layer_norm rstd", &gs.rstd, &ws.rstd, 1e-5);
        let (dx, dw, db) = x.layer_norm_backward(&w, &ws, &dy).unwrap();
        let (gdx, gdw, gdb) = gpu(&x)
            .layer_norm_backward(&gpu(&w), &gs, &gpu(&dy))
            .unwrap();
        close("layer_norm dx", &gdx, &dx, 1e-5);
        close("layer_norm dw", &gdw, &dw, 1e-4);
        close("layer_norm db", &gdb, &db, 1e-4);
    }
    // One affine map per sequence (adaLN's modulate): 3 groups of 17 rows; the backward's
    // column sums run over 17 rows, so also over a chunk boundary with 40 rows per group.
    for per_group in [17, 40] {
        let x = randn(&[3, per_group, 96], &mut rng);
        let dy = randn(&[3, per_group, 96], &mut rng);
        let (mul, add) = (randn(&[3, 96], &mut rng), randn(&[3, 96], &mut rng));
        let (want, ws) = x.layer_norm_affine(&mul, &add, 1e-5).unwrap();
        let (got, gs) = gpu(&x)
            .layer_norm_affine(&gpu(&mul), &gpu(&add), 1e-5)
            .unwrap();
        close("layer_norm_affine", &got, &want, 1e-5);
        let (dx, sx, sd) = x.layer_norm_affine_backward(&mul, &ws, &dy).unwrap();
        let (gdx, gsx, gsd) = gpu(&x)
            .layer_norm_affine_backward(&gpu(&mul), &gs, &gpu(&dy))
            .unwrap();
        close("layer_norm_affine dx", &gdx, &dx, 1e-5);
        close("layer_norm_affine Σ dy·x̂", &gsx, &sx, 1e-4);
        close("layer_norm_affine Σ dy", &gsd, &sd, 1e-4);
    }
    let (xr, wr) = (bf16_round(&x), bf16_round(&w));
    let to16 = |t: &Tensor| gpu(t).to_dtype(DType::BF16).unwrap();
    let (got16, _) = to16(&xr).layer_norm(&to16(&wr), None, 1e-5).unwrap();
    close(
        "layer_norm bf16",
        &got16,
        &xr.layer_norm(&wr, None, 1e-5).unwrap().0,
        1e-2,
    );
}

#[test]
fn indexing_and_its_adjoints() {
    if !gpu_or_skip("indexing_and_its_adjoints") {
        return;
    }
    let mut rng = Rng::seed(6);
    let table = randn(&[50, 24], &mut rng);
    let ids = Tensor::from_vec(vec![3u32, 49, 0, 3, 7, 3], [2, 3], Device::Cpu).unwrap();
    close(
        "embedding",
        &gpu(&table).embedding(&gpu(&ids)).unwrap(),
        &table.embedding(&ids).unwrap(),
        1e-12,
    );
    let flat = ids.flatten_all().unwrap();
    let src = randn(&[6, 24], &mut rng);
    let want = table.index_add(0, &flat, &src).unwrap();
    let got = gpu(&table).index_add(0, &gpu(&flat), &gpu(&src)).unwrap();
    close("index_add (repeated ids)", &got, &want, 1e-6);
    let x = randn(&[4, 10, 3], &mut rng);
    let idx: Vec<u32> = (0..4 * 5 * 3).map(|i| (i * 7 % 10) as u32).collect();
    let idx = Tensor::from_vec(idx, [4, 5, 3], Device::Cpu).unwrap();
    let want = x.gather(1, &idx).unwrap();
    close(
        "gather",
        &gpu(&x).gather(1, &gpu(&idx)).unwrap(),
        &want,
        1e-12,
    );
    let src = randn(&[4, 5, 3], &mut rng);
    let want = x.scatter_add(1, &idx, &src).unwrap();
    let got = gpu(&x).scatter_add(1, &gpu(&idx), &gpu(&src)).unwrap();
    close("scatter_add", &got, &want, 1e-6);
    let bad = Tensor::from_vec(vec![50u32], [1], Device::Cpu).unwrap();
    assert!(
        gpu(&table).index_select(0, &gpu(&bad)).is_err(),
        "index 50 of 50 must fail"
    );
}

#[test]
fn rope_at_gathered_positions() {
    if !gpu_or_skip("rope_at_gathered_positions") {
        return;
    }
    let mut rng = Rng::seed(7);
    let pos = Tensor::from_vec(vec![5u32, 0, 17, 2, 9, 1, 30, 4], [2, 4], Device::Cpu).unwrap();
    let (cos, sin) = Tensor::rope_tables(&pos, 16, 10_000.0, DType::F32).unwrap();
    let (gc, gs) = Tensor::rope_tables(&gpu(&pos), 16, 10_000.0, DType::F32).unwrap();
    assert_eq!(gc.device(), GPU);
    // x as a strided view: [B, N, H, d] read out of [B, H, N, d].
    let x = randn(&[2, 3, 4, 16], &mut rng).transpose(1, 2).unwrap();
    let gxv = gpu(&x.transpose(1, 2).unwrap()).transpose(1, 2).unwrap();
    close(
        "rope",
        &gxv.rope(&gc, &gs).unwrap(),
        &x.rope(&cos, &sin).unwrap(),
        1e-5,
    );
    let back = gxv.rope_backward(&gc, &gs).unwrap();
    close(
        "rope_backward",
        &back,
        &x.rope_backward(&cos, &sin).unwrap(),
        1e-5,
    );
}

#[test]
fn matmul_with_cublas() {
    if !gpu_or_skip("matmul_with_cublas") {
        return;
    }
    let mut rng = Rng::seed(8);
    let a = randn(&[3, 33, 70], &mut rng);
    let b = randn(&[3, 70, 45], &mut rng);
    let w = randn(&[70, 45], &mut rng);
    close(
        "batched",
        &gpu(&a).matmul(&gpu(&b)).unwrap(),
        &a.matmul(&b).unwrap(),
        1e-5,
    );
    close(
        "shared rhs",
        &gpu(&a).matmul(&gpu(&w)).unwrap(),
        &a.matmul(&w).unwrap(),
        1e-5,
    );
    let bt = randn(&[3, 45, 70], &mut rng).t().unwrap();
    let at = randn(&[3, 70, 33], &mut rng).t().unwrap();
    let g = |t: &Tensor| gpu(&t.t().unwrap()).t().unwrap(); // the same view on the GPU
    close(
        "transposed rhs",
        &gpu(&a).matmul(&g(&bt)).unwrap(),
        &a.matmul(&bt).unwrap(),
        1e-5,
    );
    close(
        "transposed lhs",
        &g(&at).matmul(&gpu(&b)).unwrap(),
        &at.matmul(&b).unwrap(),
        1e-5,
    );
    let heads = randn(&[2, 5, 4, 8], &mut rng)
        .permute(&[0, 2, 1, 3])
        .unwrap(); // [2, 4, 5, 8]
    let gh = gpu(&heads.permute(&[0, 2, 1, 3]).unwrap())
        .permute(&[0, 2, 1, 3])
        .unwrap();
    let want = heads.matmul(&heads.t().unwrap()).unwrap();
    close(
        "attention scores",
        &gh.matmul(&gh.t().unwrap()).unwrap(),
        &want,
        1e-5,
    );
    let (ar, br) = (bf16_round(&a), bf16_round(&b));
    let to16 = |t: &Tensor| gpu(t).to_dtype(DType::BF16).unwrap();
    let got16 = to16(&ar).matmul(&to16(&br)).unwrap();
    assert_eq!(got16.dtype(), DType::BF16);
    close(
        "bf16 (f32 accumulation)",
        &got16,
        &ar.matmul(&br).unwrap(),
        1e-2,
    );
}

#[test]
fn matmul_add_and_cat() {
    if !gpu_or_skip("matmul_add_and_cat") {
        return;
    }
    let mut rng = Rng::seed(9);
    let (x, w, bias) = (
        randn(&[2, 33, 70], &mut rng),
        randn(&[45, 70], &mut rng),
        randn(&[45], &mut rng),
    );
    let residual = randn(&[2, 33, 45], &mut rng);
    let wt = |t: &Tensor| gpu(t).t().unwrap();
    for (what, addend) in [("bias", &bias), ("residual", &residual)] {
        close(
            &format!("matmul_add {what}"),
            &gpu(&x).matmul_add(&wt(&w), &gpu(addend)).unwrap(),
            &x.matmul_add(&w.t().unwrap(), addend).unwrap(),
            1e-5,
        );
    }
    // A batched product (one GEMM per batch entry, beta = 1 onto the addend's copy); the
    // addend itself stays as it was.
    let wb = randn(&[2, 70, 45], &mut rng);
    let addend = gpu(&residual);
    close(
        "batched matmul_add",
        &gpu(&x).matmul_add(&gpu(&wb), &addend).unwrap(),
        &x.matmul_add(&wb, &residual).unwrap(),
        1e-5,
    );
    close("matmul_add leaves its addend", &addend, &residual, 1e-12);
    let to16 = |t: &Tensor| gpu(&bf16_round(t)).to_dtype(DType::BF16).unwrap();
    close(
        "matmul_add bf16",
        &to16(&x).matmul_add(&to16(&wb), &to16(&residual)).unwrap(),
        &bf16_round(&x)
            .matmul_add(&bf16_round(&wb), &bf16_round(&residual))
            .unwrap(),
        1e-2,
    );
    let parts = [
        randn(&[2, 3, 5], &mut rng),
        randn(&[2, 1, 5], &mut rng),
        randn(&[2, 4, 5], &mut rng).narrow(2, 0, 5).unwrap(),
    ];
    let refs: Vec<&Tensor> = parts.iter().collect();
    let on_gpu: Vec<Tensor> = parts.iter().map(gpu).collect();
    let gpu_refs: Vec<&Tensor> = on_gpu.iter().collect();
    close(
        "cat dim 1",
        &Tensor::cat(&gpu_refs, 1).unwrap(),
        &Tensor::cat(&refs, 1).unwrap(),
        1e-12,
    );
    let ids = Tensor::from_vec(vec![3u32, 1, 4, 1, 5, 9], [2, 3], Device::Cpu).unwrap();
    let more = Tensor::from_vec(vec![2u32, 6], [2, 1], Device::Cpu).unwrap();
    let joined = Tensor::cat(&[&gpu(&ids), &gpu(&more)], -1).unwrap();
    assert_eq!(
        joined
            .to_device(Device::Cpu)
            .unwrap()
            .to_vec::<u32>()
            .unwrap(),
        vec![3, 1, 4, 2, 1, 5, 9, 6]
    );
}

/// Random U8 groups [b, n] in {0, 1}, with the last `pads` tokens of row 1 pads (255).
fn groups(rng: &mut Rng, b: usize, n: usize, pads: usize) -> Tensor {
    let g: Vec<u8> = (0..b * n)
        .map(|i| {
            if i / n == 1 && i % n >= n - pads {
                255
            } else {
                (rng.next_u64() % 2) as u8
            }
        })
        .collect();
    Tensor::from_vec(g, [b, n], Device::Cpu).unwrap()
}

/// Partition attention, forward and backward, self- and cross-attention, both rules, with
/// strided q, k, v (views of one packed projection) and pads; BF16 against the F32 reference.
#[test]
fn partition_attention_forward_and_backward() {
    if !gpu_or_skip("partition_attention_forward_and_backward") {
        return;
    }
    let mut rng = Rng::seed(10);
    let (b, h, d) = (2, 3, 16);
    for (nq, nk) in [(37, 37), (9, 70)] {
        // q, k, v as strided views of one packed projection, on the CPU and alike on the GPU.
        let qkv = randn(&[b, nk.max(nq), 3 * h, d], &mut rng);
        let views = |packed: &Tensor| {
            let part = |n, i| packed.narrow(1, 0, n).unwrap().narrow(2, i * h, h).unwrap();
            (part(nq, 0), part(nk, 1), part(nk, 2))
        };
        let ((q, k, v), (gq, gk, gv)) = (views(&qkv), views(&gpu(&qkv)));
        let kg = groups(&mut rng, b, nk, 5);
        let qg = if nq == nk {
            kg.clone()
        } else {
            groups(&mut rng, b, nq, 2)
        };
        let dout = randn(&[b, nq, h, d], &mut rng);
        for rule in [GroupRule::Same, GroupRule::Different] {
            let what = format!("{nq}x{nk} {rule:?}");
            let (want, lse) = q.partition_attention(&k, &v, &qg, &kg, rule, 0.25).unwrap();
            let (got, got_lse) = gq
                .partition_attention(&gk, &gv, &gpu(&qg), &gpu(&kg), rule, 0.25)
                .unwrap();
            close(&format!("{what} out"), &got, &want, 1e-5);
            close(&format!("{what} lse"), &got_lse, &lse, 1e-5);
            let want_grads = q
                .partition_attention_backward(&k, &v, &qg, &kg, rule, 0.25, &want, &lse, &dout)
                .unwrap();
            let got_grads = gq
                .partition_attention_backward(
                    &gk,
                    &gv,
                    &gpu(&qg),
                    &gpu(&kg),
                    rule,
                    0.25,
                    &got,
                    &got_lse,
                    &gpu(&dout),
                )
                .unwrap();
            for (name, g, w) in [
                ("dq", &got_grads.0, &want_grads.0),
                ("dk", &got_grads.1, &want_grads.1),
                ("dv", &got_grads.2, &want_grads.2),
            ] {
                close(&format!("{what} {name}"), g, w, 1e-4);
            }
            // BF16 operands: the F32 reference on the same rounded inputs.
            let (qr, kr, vr) = (bf16_round(&q), bf16_round(&k), bf16_round(&v));
            let to16 = |t: &Tensor| gpu(t).to_dtype(DType::BF16).unwrap();
            let (got16, _) = to16(&qr)
                .partition_attention(&to16(&kr), &to16(&vr), &gpu(&qg), &gpu(&kg), rule, 0.25)
                .unwrap();
            assert_eq!(got16.dtype(), DType::BF16);
            let (want16, _) = qr
                .partition_attention(&kr, &vr, &qg, &kg, rule, 0.25)
                .unwrap();
            close(&format!("{what} bf16"), &got16, &want16, 1e-2);
        }
    }
}
