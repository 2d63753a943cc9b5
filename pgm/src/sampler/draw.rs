//! Drawing tokens from log-probabilities: greedy argmax, or a categorical draw by the
//! Gumbel-max trick in f64 as the reference does (SPEC §6), optionally restricted to the
//! nucleus (top-p). Greedy and plain draws run where the log-probabilities are, so on a GPU
//! only the drawn ids reach the host.

use rayon::prelude::*;
use tensor::cpu::sample::gumbel_argmax;
use tensor::{draw_key, Device, Result, Rng, Tensor};

/// How a token is drawn from a distribution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DrawRule {
    /// Take the most likely token instead of drawing.
    pub greedy: bool,
    /// Nucleus filtering: draw only among the most likely tokens whose probabilities first sum
    /// to at least `top_p`; 1.0 keeps every token. In (0, 1].
    pub top_p: f64,
}

/// The index of the largest value (the first one on ties); 0 for an empty row.
pub fn argmax(row: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

/// Draws a token id from `log_probs` (one row, `[V]`, normalised; −∞ for impossible ids) with
/// the noise stream `key` (`tensor::draw_key`).
///
/// Gumbel-max as in the reference: argmax of p_i / (−ln(u_i + 1e-10) + 1e-10) with u_i uniform
/// in [0, 1), which picks i with probability p_i. With `top_p` < 1 the ids outside the nucleus
/// are left out first (no renormalisation is needed: the argmax does not depend on the total).
pub fn draw(log_probs: &[f64], rule: DrawRule, key: u64) -> u32 {
    if rule.greedy {
        return argmax(log_probs) as u32;
    }
    let probs: Vec<f64> = log_probs.iter().map(|&lp| lp.exp()).collect();
    let keep = nucleus(&probs, rule.top_p);
    gumbel_argmax(log_probs, key, keep.as_deref())
}

/// One token per listed row of `log_probs` [N, V] (on any device; row `rows[k]` gives the
/// k-th token). Greedy and plain draws run on the tensor's device (argmax,
/// `Tensor::gumbel_argmax`); nucleus draws sort each row, on the host, rows in parallel. The
/// call takes one seed from `rng` and the k-th token's noise is the stream `draw_key(seed, k)`,
/// so the tokens depend on neither the device nor the threads.
pub fn draw_rows(
    log_probs: &Tensor,
    rows: &[usize],
    rule: DrawRule,
    rng: &mut Rng,
) -> Result<Vec<u32>> {
    let seed = rng.next_u64();
    let v = log_probs.dims()[1];
    let all_in_order =
        rows.len() == log_probs.dims()[0] && rows.iter().enumerate().all(|(k, &r)| k == r);
    let picked = if all_in_order {
        log_probs.clone()
    } else {
        let ids: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
        let ids =
            Tensor::from_vec(ids, [rows.len()], Device::Cpu)?.to_device(log_probs.device())?;
        log_probs.index_select(0, &ids)?
    };
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    if rule.greedy {
        return picked.argmax(1, false)?.to_vec::<u32>();
    }
    if rule.top_p >= 1.0 {
        return picked.gumbel_argmax(seed)?.to_vec::<u32>();
    }
    Ok(picked
        .to_f64_vec()?
        .par_chunks(v)
        .enumerate()
        .map(|(k, row)| draw(row, rule, draw_key(seed, k as u64)))
        .collect())
}

/// Which ids the nucleus keeps: the smallest set of most likely ids whose probabilities sum to
/// at least `top_p` (the most likely id always). None when `top_p` ≥ 1 (keep all).
pub fn nucleus(probs: &[f64], top_p: f64) -> Option<Vec<bool>> {
    if top_p >= 1.0 {
        return None;
    }
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    let mut keep = vec![false; probs.len()];
    let mut total = 0.0;
    for i in order {
        keep[i] = true;
        total += probs[i];
        if total >= top_p {
            break;
        }
    }
    Some(keep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nucleus_keeps_the_smallest_top_set() {
        let probs = [0.1, 0.5, 0.15, 0.25];
        assert_eq!(nucleus(&probs, 1.0), None);
        assert_eq!(nucleus(&probs, 0.5).unwrap(), [false, true, false, false]);
        assert_eq!(nucleus(&probs, 0.7).unwrap(), [false, true, false, true]);
        assert_eq!(nucleus(&probs, 0.76).unwrap(), [false, true, true, true]);
    }

    /// The tokens of `draw_rows` depend on the seed only, not on the threads: one thread and
    /// the whole pool give the same draws, and each token follows its own row. The plain draw
    /// on the tensor's device is the host's `draw` of each row with its noise stream.
    #[test]
    fn row_draws_do_not_depend_on_the_threads() {
        let (v, n) = (7, 300);
        let mut noise = Rng::seed(3);
        let lp: Vec<f64> = (0..n * v).map(|_| (noise.uniform() + 0.01).ln()).collect();
        let lp_t = Tensor::from_vec(lp.clone(), [n, v], Device::Cpu).unwrap();
        let rows: Vec<usize> = (0..n).rev().collect();
        for top_p in [1.0, 0.8] {
            let rule = DrawRule {
                greedy: false,
                top_p,
            };
            let pooled = draw_rows(&lp_t, &rows, rule, &mut Rng::seed(9)).unwrap();
            let single = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap()
                .install(|| draw_rows(&lp_t, &rows, rule, &mut Rng::seed(9)).unwrap());
            assert_eq!(pooled, single);
            assert_ne!(
                pooled,
                draw_rows(&lp_t, &rows, rule, &mut Rng::seed(10)).unwrap()
            );
            let seed = Rng::seed(9).next_u64();
            let by_row: Vec<u32> = (rows.iter().enumerate())
                .map(|(k, &r)| draw(&lp[r * v..(r + 1) * v], rule, draw_key(seed, k as u64)))
                .collect();
            assert_eq!(pooled, by_row, "top-p {top_p}");
        }
        // Greedy: row rows[k]'s argmax, in the order of `rows`.
        let greedy = DrawRule {
            greedy: true,
            top_p: 1.0,
        };
        let want: Vec<u32> = rows
            .iter()
            .map(|&r| argmax(&lp[r * v..(r + 1) * v]) as u32)
            .collect();
        assert_eq!(
            draw_rows(&lp_t, &rows, greedy, &mut Rng::seed(1)).unwrap(),
            want
        );
        assert!(draw_rows(&lp_t, &[], greedy, &mut Rng::seed(1))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn greedy_and_nucleus_draws() {
        let lp: Vec<f64> = [0.1f64, 0.5, 0.15, 0.25].iter().map(|p| p.ln()).collect();
        let greedy = DrawRule {
            greedy: true,
            top_p: 1.0,
        };
        assert_eq!(draw(&lp, greedy, draw_key(1, 0)), 1);
        let tight = DrawRule {
            greedy: false,
            top_p: 0.7,
        };
        for k in 0..200 {
            let t = draw(&lp, tight, draw_key(1, k));
            assert!(t == 1 || t == 3, "drew {t} outside the nucleus {{1, 3}}");
        }
        // An impossible id (−∞) is never drawn.
        let lp = [f64::NEG_INFINITY, 0.5f64.ln(), 0.5f64.ln()];
        let all = DrawRule {
            greedy: false,
            top_p: 1.0,
        };
        assert!((0..200).all(|k| draw(&lp, all, draw_key(2, k)) != 0));
    }
}
