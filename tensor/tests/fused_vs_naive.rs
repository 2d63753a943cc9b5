//! The fused ops and the device-side draws against direct, naive computations on plain Vecs:
//! cross-entropy from logits, layer norm with a per-group affine map (adaLN's modulate), the
//! gated residual with dropout, Gumbel-max token draws and dropout masks. Sizes take the
//! parallel paths.

mod common;

use common::{assert_close, rand, vals, CPU};
use tensor::{DType, Rng, Tensor};

#[test]
fn cross_entropy_matches_naive_log_softmax_pick() {
    let mut rng = Rng::seed(14);
    // 3·50 rows of 400 classes takes the parallel path; one small case stays serial.
    for &(rows, cols) in &[(3usize, 7usize), (150, 400)] {
        let x = rand(&[3, rows / 3, cols], &mut rng);
        // Targets avoid the last class, which is the excluded one in the second pass.
        let ids: Vec<u32> = (0..rows)
            .map(|_| (rng.next_u64() % (cols as u64 - 1)) as u32)
            .collect();
        let targets = Tensor::from_vec(ids.clone(), [3, rows / 3], CPU).unwrap();
        let dnll_v: Vec<f64> = (0..rows).map(|_| rng.uniform() - 0.5).collect();
        let dnll = Tensor::from_vec(dnll_v.clone(), [3, rows / 3], CPU)
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap();
        for excluded in [None, Some(cols as u32 - 1)] {
            let keep = |j: usize| Some(j as u32) != excluded;
            let (mut nll, mut lse, mut dx) = (vec![], vec![], vec![0.0; rows * cols]);
            for (r, row) in vals(&x).chunks(cols).enumerate() {
                let z: f64 = (0..cols).filter(|&j| keep(j)).map(|j| row[j].exp()).sum();
                lse.push(z.ln());
                nll.push(z.ln() - row[ids[r] as usize]);
                for j in (0..cols).filter(|&j| keep(j)) {
                    let onehot = (j == ids[r] as usize) as u8 as f64;
                    dx[r * cols + j] = dnll_v[r] * (row[j].exp() / z - onehot);
                }
            }
            let (got_nll, got_lse) = x.cross_entropy(&targets, excluded).unwrap();
            assert_eq!(got_nll.dims(), [3, rows / 3]);
            assert_close(&vals(&got_nll), &nll, 1e-5, "cross_entropy nll");
            assert_close(&vals(&got_lse), &lse, 1e-5, "cross_entropy lse");
            let got_dx = x
                .cross_entropy_backward(&targets, &got_lse, &dnll, excluded)
                .unwrap();
            assert_close(&vals(&got_dx), &dx, 1e-5, "cross_entropy backward");
        }
    }
    // The excluded class as target has probability 0; bad targets are errors.
    let x = rand(&[2, 4], &mut rng);
    let t = Tensor::from_vec(vec![1u32, 3], [2], CPU).unwrap();
    assert!(vals(&x.cross_entropy(&t, Some(3)).unwrap().0)[1].is_infinite());
    let e = x
        .cross_entropy(&Tensor::from_vec(vec![1u32, 4], [2], CPU).unwrap(), None)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("target id 4 is outside the 4 classes"),
        "{e}"
    );
    assert!(x.cross_entropy(&t.unsqueeze(0).unwrap(), None).is_err());
    assert!(x.cross_entropy(&t, Some(4)).is_err());
    assert!(x
        .cross_entropy(&Tensor::zeros([2], DType::F32, CPU).unwrap(), None)
        .unwrap_err()
        .to_string()
        .contains("U32"));
}

#[test]
fn grouped_layer_norm_affine_and_its_backward_match_naive() {
    let mut rng = Rng::seed(15);
    // 4 sequences of 150 rows of 64: each sequence is a group; large enough to run in parallel.
    let (groups, per_group, d) = (4, 150, 64);
    let rows = groups * per_group;
    let x = rand(&[groups, per_group, d], &mut rng);
    let (mul, add) = (rand(&[groups, d], &mut rng), rand(&[groups, d], &mut rng));
    let dy = rand(&[groups, per_group, d], &mut rng);
    let (xv, mv, av, dyv) = (vals(&x), vals(&mul), vals(&add), vals(&dy));
    let (mut y, mut dx) = (vec![0.0; rows * d], vec![0.0; rows * d]);
    let (mut s_xhat, mut s_dy) = (vec![0.0; groups * d], vec![0.0; groups * d]);
    for r in 0..rows {
        let (row, dyr, g) = (&xv[r * d..][..d], &dyv[r * d..][..d], r / per_group);
        let mean = row.iter().sum::<f64>() / d as f64;
        let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / d as f64;
        let rstd = 1.0 / (var + 1e-5).sqrt();
        let xhat: Vec<f64> = row.iter().map(|v| (v - mean) * rstd).collect();
        let gr: Vec<f64> = (0..d).map(|j| dyr[j] * mv[g * d + j]).collect();
        let mean_g = gr.iter().sum::<f64>() / d as f64;
        let mean_gx = (0..d).map(|j| gr[j] * xhat[j]).sum::<f64>() / d as f64;
        for j in 0..d {
            y[r * d + j] = xhat[j] * mv[g * d + j] + av[g * d + j];
            dx[r * d + j] = rstd * (gr[j] - mean_g - xhat[j] * mean_gx);
            s_xhat[g * d + j] += dyr[j] * xhat[j];
            s_dy[g * d + j] += dyr[j];
        }
    }
    let (got, stats) = x.layer_norm_affine(&mul, &add, 1e-5).unwrap();
    assert_close(&vals(&got), &y, 1e-4, "layer_norm_affine");
    let (gdx, gs_xhat, gs_dy) = x.layer_norm_affine_backward(&mul, &stats, &dy).unwrap();
    assert_eq!(gs_xhat.dims(), [groups, d]);
    assert_close(&vals(&gdx), &dx, 1e-4, "layer_norm_affine dx");
    assert_close(&vals(&gs_xhat), &s_xhat, 1e-4, "layer_norm_affine Σ dy·x̂");
    assert_close(&vals(&gs_dy), &s_dy, 1e-4, "layer_norm_affine Σ dy");
    // Groups must split the rows.
    let e = x
        .layer_norm_affine(&rand(&[7, d], &mut rng), &rand(&[7, d], &mut rng), 1e-5)
        .unwrap_err();
    assert!(
        e.to_string().contains("7 groups do not split the 600 rows"),
        "{e}"
    );
}

#[test]
fn gumbel_argmax_draws_each_id_with_its_probability() {
    // 20 000 rows of one distribution over 5 ids, one impossible (−∞).
    let probs = [0.1, 0.0, 0.45, 0.3, 0.15];
    let row: Vec<f64> = probs.iter().map(|p: &f64| p.ln()).collect();
    let n = 20_000;
    let lp = Tensor::from_vec(row.repeat(n), [n, 5], CPU)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap();
    let tokens = lp.gumbel_argmax(7).unwrap().to_vec::<u32>().unwrap();
    let mut counts = [0usize; 5];
    tokens.iter().for_each(|&t| counts[t as usize] += 1);
    for (i, p) in probs.iter().enumerate() {
        let freq = counts[i] as f64 / n as f64;
        assert!((freq - p).abs() < 0.015, "id {i}: {freq} vs {p}");
    }
    assert_eq!(counts[1], 0);
    // Row r is the argmax of p_i / Exp_i with the noise of stream (seed, r), spelled out.
    for r in [0, 1, 4_321] {
        let key = tensor::draw_key(7, r as u64);
        let score = |i: usize| {
            let u = tensor::draw_uniform(key, i as u64);
            (row[i] as f32 as f64).exp() / (-(u + 1e-10).ln() + 1e-10)
        };
        let want = (0..5).fold(0, |b, i| if score(i) > score(b) { i } else { b });
        assert_eq!(tokens[r], want as u32, "row {r}");
    }
    // Another seed, other draws; the same seed, the same draws.
    assert_ne!(
        lp.gumbel_argmax(8).unwrap().to_vec::<u32>().unwrap(),
        tokens
    );
    assert_eq!(
        lp.gumbel_argmax(7).unwrap().to_vec::<u32>().unwrap(),
        tokens
    );
    assert!(lp.reshape([n * 5]).unwrap().gumbel_argmax(7).is_err());
}

#[test]
fn dropout_masks_follow_their_noise_stream() {
    // 3·40 000 elements: the parallel path.
    let (p, n) = (0.3, 120_000);
    let mask = Tensor::dropout_mask([3, 40_000], p, 5, DType::F32, CPU).unwrap();
    assert_eq!(mask.dims(), [3, 40_000]);
    let m = vals(&mask);
    let key = tensor::draw_key(5, 0);
    let scale = (1.0 / (1.0 - p)) as f32 as f64;
    for (i, &v) in m.iter().enumerate() {
        let keep = tensor::draw_uniform(key, i as u64) >= p;
        assert_eq!(v, if keep { scale } else { 0.0 }, "element {i}");
    }
    let dropped = m.iter().filter(|&&v| v == 0.0).count() as f64 / n as f64;
    assert!((dropped - p).abs() < 0.005, "dropped {dropped}");
    let again = Tensor::dropout_mask([3, 40_000], p, 5, DType::F64, CPU).unwrap();
    assert_eq!(
        vals(&again).iter().filter(|&&v| v == 0.0).count(),
        m.iter().filter(|&&v| v == 0.0).count()
    );
    assert_ne!(
        vals(&Tensor::dropout_mask([3, 40_000], p, 6, DType::F32, CPU).unwrap()),
        m
    );
    assert!(Tensor::dropout_mask([4], 1.0, 5, DType::F32, CPU).is_err());
}

#[test]
fn gated_residual_matches_naive_with_and_without_dropout() {
    let mut rng = Rng::seed(16);
    // 4 sequences of 100 rows of 96: the parallel paths; one gate per sequence, or one.
    let (b, n, d) = (4, 100, 96);
    let (h, branch, dy) = (
        rand(&[b, n, d], &mut rng),
        rand(&[b, n, d], &mut rng),
        rand(&[b, n, d], &mut rng),
    );
    for (groups, dropout) in [(b, None), (b, Some((0.25, 9))), (1, Some((0.1, 3)))] {
        let gate = rand(&[groups, d], &mut rng);
        let mask = match dropout {
            Some((p, seed)) => {
                vals(&Tensor::dropout_mask([b, n, d], p, seed, DType::F32, CPU).unwrap())
            }
            None => vec![1.0; b * n * d],
        };
        let (hv, bv, gv, dyv) = (vals(&h), vals(&branch), vals(&gate), vals(&dy));
        let (mut y, mut d_branch, mut d_gate) = (
            vec![0.0; hv.len()],
            vec![0.0; hv.len()],
            vec![0.0; gv.len()],
        );
        for i in 0..hv.len() {
            let (g, j) = (i / d / (b * n / groups), i % d);
            y[i] = hv[i] + gv[g * d + j] * bv[i] * mask[i];
            d_branch[i] = dyv[i] * gv[g * d + j] * mask[i];
            d_gate[g * d + j] += dyv[i] * bv[i] * mask[i];
        }
        let what = format!("{groups} gates, dropout {dropout:?}");
        let got = h.gated_residual(&gate, &branch, dropout).unwrap();
        assert_close(&vals(&got), &y, 1e-5, &format!("gated_residual, {what}"));
        let (gdb, gdg) = gate.gated_residual_backward(&branch, dropout, &dy).unwrap();
        assert_close(&vals(&gdb), &d_branch, 1e-5, &format!("d branch, {what}"));
        assert_close(&vals(&gdg), &d_gate, 1e-4, &format!("d gate, {what}"));
    }
    assert!(h
        .gated_residual(&rand(&[3, d], &mut rng), &branch, None)
        .is_err());
    assert!(h
        .gated_residual(&rand(&[1, d], &mut rng), &branch, Some((1.0, 0)))
        .is_err());
}

/// Prefix views (offset 0, row-major, over a longer buffer: `narrow(0, 0, n)`) give the same
/// results as their copies: the kernels read a contiguous tensor's buffer as its elements.
#[test]
fn prefix_views_compute_as_their_copies() {
    let mut rng = Rng::seed(17);
    let prefix = |t: Tensor| t.narrow(0, 0, 2).unwrap();
    let copy =
        |t: &Tensor| Tensor::from_vec(t.to_vec::<f32>().unwrap(), t.dims().to_vec(), CPU).unwrap();
    let exact = |a: &Tensor, b: &Tensor, what: &str| assert_eq!(vals(a), vals(b), "{what}");

    // Layer norm with one affine group per sequence, and the gated residual.
    let x = prefix(rand(&[4, 3, 8], &mut rng));
    let (mul, add) = (rand(&[2, 8], &mut rng), rand(&[2, 8], &mut rng));
    let (got, _) = x.layer_norm_affine(&mul, &add, 1e-5).unwrap();
    let (want, _) = copy(&x).layer_norm_affine(&mul, &add, 1e-5).unwrap();
    exact(&got, &want, "layer_norm_affine");
    let branch = rand(&[2, 3, 8], &mut rng);
    let got = x.gated_residual(&mul, &branch, None).unwrap();
    let want = copy(&x).gated_residual(&mul, &branch, None).unwrap();
    exact(&got, &want, "gated_residual");

    // index_add of prefix-view rows, and cross-entropy over prefix-view logits.
    let src = prefix(rand(&[4, 5], &mut rng));
    let ids = Tensor::from_vec(vec![1u32, 1], [2], CPU).unwrap();
    let table = rand(&[3, 5], &mut rng);
    let got = table.index_add(0, &ids, &src).unwrap();
    exact(
        &got,
        &table.index_add(0, &ids, &copy(&src)).unwrap(),
        "index_add",
    );
    let logits = prefix(rand(&[4, 6], &mut rng));
    let targets = Tensor::from_vec(vec![2u32, 5], [2], CPU).unwrap();
    let (nll, lse) = logits.cross_entropy(&targets, None).unwrap();
    let (want_nll, _) = copy(&logits).cross_entropy(&targets, None).unwrap();
    exact(&nll, &want_nll, "cross_entropy");
    let dnll = Tensor::ones([2], DType::F32, CPU).unwrap();
    let got = logits
        .cross_entropy_backward(&targets, &lse, &dnll, None)
        .unwrap();
    let want = copy(&logits)
        .cross_entropy_backward(&targets, &lse, &dnll, None)
        .unwrap();
    exact(&got, &want, "cross_entropy_backward");
}
