//! The log-linear noise schedule and antithetic time sampling (SPEC §5).

use tensor::Rng;

/// eps of the log-linear schedule and the smallest training time.
pub const SCHEDULE_EPS: f64 = 1e-3;

/// alpha(t) = 1 − (1 − eps)·t: the probability that a token is still clean at time t.
pub fn alpha(t: f64) -> f64 {
    1.0 - (1.0 - SCHEDULE_EPS) * t
}

/// The loss weight w(t) = −alpha'(t) / (1 − alpha(t)) = 1/t.
pub fn weight(t: f64) -> f64 {
    (1.0 - SCHEDULE_EPS) / (1.0 - alpha(t))
}

/// n antithetic times: u_k = (U_k/n + k/n) mod 1, t_k = (1 − eps)·u_k + eps. They cover
/// [eps, 1) evenly, which lowers the variance of the loss estimate.
pub fn antithetic_times(n: usize, rng: &mut Rng) -> Vec<f64> {
    (0..n)
        .map(|k| {
            let u = (rng.uniform() / n as f64 + k as f64 / n as f64) % 1.0;
            (1.0 - SCHEDULE_EPS) * u + SCHEDULE_EPS
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_and_times() {
        assert!((alpha(0.0) - 1.0).abs() < 1e-15 && (alpha(1.0) - SCHEDULE_EPS).abs() < 1e-15);
        assert!((weight(0.25) - 4.0).abs() < 1e-12);
        let mut rng = Rng::seed(0);
        let n = 8;
        let mut ts = antithetic_times(n, &mut rng);
        ts.sort_by(f64::total_cmp);
        // One time in each of the n strata of [eps, 1).
        for (k, t) in ts.iter().enumerate() {
            let u = (t - SCHEDULE_EPS) / (1.0 - SCHEDULE_EPS);
            assert!(
                u >= k as f64 / n as f64 && u < (k + 1) as f64 / n as f64,
                "t = {t} not in stratum {k}"
            );
        }
    }
}
