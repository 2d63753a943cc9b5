//! The fused ops and the device-side draws on CUDA against the CPU backend, on random inputs:
//! layer norm with a per-group affine map (adaLN's modulate), partition attention, cross-entropy
//! from logits, the gated residual with dropout, Gumbel-max token draws and dropout masks.
//! Tolerances as in `cuda_vs_cpu.rs`; each test prints `SKIPPED: no CUDA device` and returns
//! where no GPU can be opened (fails instead with `PGM_REQUIRE_GPU` set).
#![cfg(feature = "cuda")]

mod common;

use common::cuda::{bf16_round, close, gpu, gpu_or_skip, GPU};
use common::rand as randn;
use tensor::{DType, Device, GroupRule, Rng, Tensor};

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
    // A target outside the V classes is an error, as on the CPU (not NaN or a wrong gradient).
    let mut ids = vec![0u32; rows];
    ids[rows - 1] = v as u32;
    let bad = gpu(&Tensor::from_vec(ids, [2, 37], Device::Cpu).unwrap());
    assert!(gpu(&x).cross_entropy(&bad, None).is_err());
    let backward = gpu(&x).cross_entropy_backward(&bad, &glse, &gpu(&dnll), None);
    assert!(backward.is_err());
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
            let (q16, k16, v16) = (to16(&qr), to16(&kr), to16(&vr));
            let (gqg, gkg) = (gpu(&qg), gpu(&kg));
            let (got16, lse16) = q16
                .partition_attention(&k16, &v16, &gqg, &gkg, rule, 0.25)
                .unwrap();
            assert_eq!(got16.dtype(), DType::BF16);
            let (want16, want_lse16) = qr
                .partition_attention(&kr, &vr, &qg, &kg, rule, 0.25)
                .unwrap();
            close(&format!("{what} bf16"), &got16, &want16, 1e-2);
            let dout16 = bf16_round(&dout);
            let got_grads = q16
                .partition_attention_backward(
                    &k16,
                    &v16,
                    &gqg,
                    &gkg,
                    rule,
                    0.25,
                    &got16,
                    &lse16,
                    &to16(&dout16),
                )
                .unwrap();
            let want_grads = qr
                .partition_attention_backward(
                    &kr,
                    &vr,
                    &qg,
                    &kg,
                    rule,
                    0.25,
                    &want16,
                    &want_lse16,
                    &dout16,
                )
                .unwrap();
            for (name, g, w) in [
                ("dq", &got_grads.0, &want_grads.0),
                ("dk", &got_grads.1, &want_grads.1),
                ("dv", &got_grads.2, &want_grads.2),
            ] {
                assert_eq!(g.dtype(), DType::BF16);
                // O and dO in bf16 enter rowsum(dO ⊙ O), so the errors compound.
                close(&format!("{what} bf16 {name}"), g, w, 3e-2);
            }
        }
    }
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
