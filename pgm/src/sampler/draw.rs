//! Drawing one token from a row of log-probabilities: greedy argmax, or a categorical draw by
//! the Gumbel-max trick in f64 as the reference does (SPEC §6), optionally restricted to the
//! nucleus (top-p).

use rayon::prelude::*;
use tensor::Rng;

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

/// Draws a token id from `log_probs` (one row, [V], normalised; −∞ for impossible ids).
///
/// Gumbel-max as in the reference: argmax of p_i / (−ln(u_i + 1e-10) + 1e-10) with u_i uniform
/// in [0, 1), which picks i with probability p_i. With `top_p` < 1 the ids outside the nucleus
/// are left out first (no renormalisation is needed: the argmax does not depend on the total).
pub fn draw(log_probs: &[f64], rule: DrawRule, rng: &mut Rng) -> u32 {
    if rule.greedy {
        return argmax(log_probs) as u32;
    }
    let probs: Vec<f64> = log_probs.iter().map(|&lp| lp.exp()).collect();
    let keep = nucleus(&probs, rule.top_p);
    let mut best = (f64::NEG_INFINITY, 0usize);
    for (i, &p) in probs.iter().enumerate() {
        let exponential = -(rng.uniform() + 1e-10).ln() + 1e-10;
        let score = if keep.as_ref().is_none_or(|k| k[i]) {
            p / exponential
        } else {
            f64::NEG_INFINITY
        };
        if score > best.0 {
            best = (score, i);
        }
    }
    best.1 as u32
}

/// One draw per listed row of `log_probs` (rows of `v` values; row `rows[k]` gives the k-th
/// token), the rows in parallel: a draw costs a few operations per vocabulary id, which adds
/// up with a large vocabulary (256 rows of 50 258 per step at the paper's size). The call
/// takes one seed from `rng` and draws the k-th row with `Rng::seed_stream(seed, k)`, so the
/// tokens do not depend on how the rows are shared out between threads.
pub fn draw_rows(
    log_probs: &[f64],
    v: usize,
    rows: &[usize],
    rule: DrawRule,
    rng: &mut Rng,
) -> Vec<u32> {
    let seed = rng.next_u64();
    rows.par_iter()
        .enumerate()
        .map(|(k, &r)| {
            let row = &log_probs[r * v..(r + 1) * v];
            draw(row, rule, &mut Rng::seed_stream(seed, k as u64))
        })
        .collect()
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
    /// the whole pool give the same draws, and each row's token follows its own row.
    #[test]
    fn row_draws_do_not_depend_on_the_threads() {
        let (v, n) = (7, 300);
        let mut noise = Rng::seed(3);
        let lp: Vec<f64> = (0..n * v).map(|_| (noise.uniform() + 0.01).ln()).collect();
        let rows: Vec<usize> = (0..n).rev().collect();
        let rule = DrawRule {
            greedy: false,
            top_p: 1.0,
        };
        let pooled = draw_rows(&lp, v, &rows, rule, &mut Rng::seed(9));
        let single = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| draw_rows(&lp, v, &rows, rule, &mut Rng::seed(9)));
        assert_eq!(pooled, single);
        assert_ne!(pooled, draw_rows(&lp, v, &rows, rule, &mut Rng::seed(10)));
        // Greedy: row rows[k]'s argmax, in the order of `rows`.
        let greedy = DrawRule {
            greedy: true,
            ..rule
        };
        let want: Vec<u32> = rows
            .iter()
            .map(|&r| argmax(&lp[r * v..(r + 1) * v]) as u32)
            .collect();
        assert_eq!(draw_rows(&lp, v, &rows, greedy, &mut Rng::seed(1)), want);
    }

    #[test]
    fn greedy_and_nucleus_draws() {
        let lp: Vec<f64> = [0.1f64, 0.5, 0.15, 0.25].iter().map(|p| p.ln()).collect();
        let mut rng = Rng::seed(1);
        let greedy = DrawRule {
            greedy: true,
            top_p: 1.0,
        };
        assert_eq!(draw(&lp, greedy, &mut rng), 1);
        let tight = DrawRule {
            greedy: false,
            top_p: 0.7,
        };
        for _ in 0..200 {
            let t = draw(&lp, tight, &mut rng);
            assert!(t == 1 || t == 3, "drew {t} outside the nucleus {{1, 3}}");
        }
        // An impossible id (−∞) is never drawn.
        let lp = [f64::NEG_INFINITY, 0.5f64.ln(), 0.5f64.ln()];
        let all = DrawRule {
            greedy: false,
            top_p: 1.0,
        };
        assert!((0..200).all(|_| draw(&lp, all, &mut rng) != 0));
    }
}
