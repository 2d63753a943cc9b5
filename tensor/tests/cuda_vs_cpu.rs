//! Every basic op wired to CUDA gives what the CPU backend (the reference) gives, on random
//! inputs (the fused ops and the draws: `cuda_vs_cpu_fused.rs`): relative error below 1e-5 for
//! F32 (1e-4 where a long sum is involved) and 1e-2 for BF16 (compared with the CPU's F32
//! result on the same bf16-rounded inputs). Each test prints `SKIPPED: no CUDA device` and
//! returns where no GPU can be opened (fails instead with `PGM_REQUIRE_GPU` set, as CI does
//! on the CUDA emulator).
#![cfg(feature = "cuda")]

mod common;

use common::cuda::{bf16_round, close, gpu, gpu_or_skip, GPU};
use common::rand as randn;
use tensor::op::{BinaryOp, CmpOp, UnaryOp};
use tensor::{DType, Device, Rng, Tensor};

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
    // Few long rows (segments of 4 096 columns, the last one partial) and a full reduction.
    let wide = randn(&[3, 20_000], &mut rng);
    close(
        "sum of long rows",
        &gpu(&wide).sum(1, false).unwrap(),
        &wide.sum(1, false).unwrap(),
        1e-4,
    );
    close(
        "min of long rows",
        &gpu(&wide).min(1, false).unwrap(),
        &wide.min(1, false).unwrap(),
        1e-6,
    );
    close(
        "sum_all of 60 000",
        &gpu(&wide).sum_all().unwrap(),
        &wide.sum_all().unwrap(),
        1e-4,
    );
    // Long reduced dims (several chunks of 32 rows, the last one partial), F32 and BF16.
    let long = randn(&[3, 100, 70], &mut rng);
    for (dim, what) in [(1isize, "middle"), (0, "first")] {
        close(
            &format!("sum over the {what} dim"),
            &gpu(&long).sum(dim, false).unwrap(),
            &long.sum(dim, false).unwrap(),
            1e-5,
        );
        close(
            &format!("max over the {what} dim"),
            &gpu(&long).max(dim, false).unwrap(),
            &long.max(dim, false).unwrap(),
            1e-6,
        );
        let l16 = gpu(&bf16_round(&long)).to_dtype(DType::BF16).unwrap();
        close(
            &format!("sum over the {what} dim, bf16"),
            &l16.sum(dim, false).unwrap(),
            &bf16_round(&long).sum(dim, false).unwrap(),
            1e-2,
        );
    }
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
    let scalar = Tensor::from_vec(vec![0.3f32], [], Device::Cpu).unwrap();
    close(
        "softmax of a scalar",
        &gpu(&scalar).softmax().unwrap(),
        &scalar.softmax().unwrap(),
        1e-12,
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
    // BF16, one id 4000 times (a frequent token's embedding gradient): summed in f32 and
    // rounded once, where bf16 atomics would drift by several units.
    let many = Tensor::from_vec(vec![3u32; 4000], [4000], Device::Cpu).unwrap();
    let rows = bf16_round(&randn(&[4000, 24], &mut rng));
    let zeros = Tensor::zeros([50, 24], DType::F32, Device::Cpu).unwrap();
    let to16 = |t: &Tensor| gpu(t).to_dtype(DType::BF16).unwrap();
    let got16 = to16(&zeros)
        .index_add(0, &gpu(&many), &to16(&rows))
        .unwrap();
    assert_eq!(got16.dtype(), DType::BF16);
    let want = zeros.index_add(0, &many, &rows).unwrap();
    close("index_add bf16 (one id 4000 times)", &got16, &want, 1e-2);
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
    // BF16 x: tables asked for BF16 come in F32, and the rotation matches the CPU's.
    let (c16, s16) = Tensor::rope_tables(&gpu(&pos), 16, 10_000.0, DType::BF16).unwrap();
    assert_eq!(c16.dtype(), DType::F32);
    let xr = bf16_round(&x);
    let gx16 = gpu(&xr).to_dtype(DType::BF16).unwrap();
    let want16 = xr.rope(&cos, &sin).unwrap();
    close("rope bf16", &gx16.rope(&c16, &s16).unwrap(), &want16, 1e-2);
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
    // TF32 tensor cores: bf16 values widened to F32 (as bf16 attention does) fit TF32's 10
    // mantissa bits, so only the f32 accumulation differs; other F32 inputs are rounded.
    let got_tf32 = gpu(&ar).matmul_tf32(&gpu(&br)).unwrap();
    assert_eq!(got_tf32.dtype(), DType::F32);
    close(
        "tf32, bf16 values",
        &got_tf32,
        &ar.matmul(&br).unwrap(),
        1e-4,
    );
    let got_tf32 = gpu(&a).matmul_tf32(&gpu(&b)).unwrap();
    close("tf32", &got_tf32, &a.matmul(&b).unwrap(), 1e-2);
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
