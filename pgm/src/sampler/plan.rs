//! Which positions are revealed when: the time grid, the reveal probability of a step, orders
//! of the target positions and the even split of targets into steps (SPEC §6, §6b).

use crate::schedule::alpha;
use tensor::Rng;

/// The last time of the grid: sampling runs from t = 1 down to this.
pub const FINAL_TIME: f64 = 1e-5;

/// The time grid linspace(1, 1e-5, steps + 1): step i goes from `grid[i]` to `grid[i + 1]`.
pub fn time_grid(steps: usize) -> Vec<f64> {
    (0..=steps)
        .map(|i| 1.0 + (FINAL_TIME - 1.0) * i as f64 / steps as f64)
        .collect()
}

/// The probability that a position still masked at time t is revealed by time s < t:
/// (alpha(s) − alpha(t)) / (1 − alpha(t)).
pub fn reveal_probability(t: f64, s: f64) -> f64 {
    ((alpha(s) - alpha(t)) / (1.0 - alpha(t))).clamp(0.0, 1.0)
}

/// How many of `targets` positions each of `steps` steps reveals, as evenly as possible: step i
/// takes ⌊(i+1)·T/S⌋ − ⌊i·T/S⌋, so sizes differ by at most one and none is empty when
/// S ≤ T. (The reference takes L/S per step and requires S to divide L; with BOS given there
/// are L − 1 targets and its last step is one short. For L = 1024 and S = 128 we likewise
/// have 127 steps of 8 and one of 7.)
pub fn uniform_sizes(targets: usize, steps: usize) -> Vec<usize> {
    (0..steps)
        .map(|i| (i + 1) * targets / steps - i * targets / steps)
        .collect()
}

/// A draw from Binomial(n, p): the sum of n Bernoulli(p) draws.
pub fn binomial(n: usize, p: f64, rng: &mut Rng) -> usize {
    (0..n).filter(|_| rng.uniform() < p).count()
}

/// The positions 1..len that are not given (BOS at 0 and the prompt), in the order they will be
/// generated: shuffled (Fisher–Yates) when `rng` is given, left to right otherwise.
pub fn target_order(len: usize, given: &[bool], rng: Option<&mut Rng>) -> Vec<u32> {
    let mut order: Vec<u32> = (1..len as u32).filter(|&i| !given[i as usize]).collect();
    if let Some(rng) = rng {
        rng.shuffle(&mut order);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_sizes_and_probabilities() {
        let g = time_grid(4);
        assert_eq!(g.len(), 5);
        assert!((g[0] - 1.0).abs() < 1e-15 && (g[4] - FINAL_TIME).abs() < 1e-15);
        let sizes = uniform_sizes(1023, 128);
        assert_eq!(sizes.iter().sum::<usize>(), 1023);
        assert_eq!(sizes.iter().filter(|&&s| s == 7).count(), 1);
        assert!(sizes.iter().all(|&s| s == 7 || s == 8));
        assert_eq!(uniform_sizes(5, 5), [1, 1, 1, 1, 1]);
        // From t = 1 everything is masked; revealing down to s = 0 reveals everything.
        assert!((reveal_probability(1.0, 0.0) - 1.0).abs() < 1e-12);
        assert!((reveal_probability(1.0, 0.5) - 0.5).abs() < 1e-3);
    }

    #[test]
    fn orders_skip_given_positions() {
        let mut given = vec![false; 8];
        given[3] = true;
        assert_eq!(target_order(8, &given, None), [1, 2, 4, 5, 6, 7]);
        let mut shuffled = target_order(8, &given, Some(&mut Rng::seed(3)));
        shuffled.sort();
        assert_eq!(shuffled, [1, 2, 4, 5, 6, 7]);
    }
}
