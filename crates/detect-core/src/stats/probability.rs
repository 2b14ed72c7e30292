//! Probability helpers: normal tails, the binomial upper tail, and the small-sample correction of a
//! z threshold.

/// Standard normal density.
pub fn normal_pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Standard normal cumulative distribution Φ(z).
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * libm::erfc(-z / std::f64::consts::SQRT_2)
}

/// Variance of a standard normal truncated above at `c` (values ≥ c are dropped):
/// `1 − c·φ(c)/Φ(c) − (φ(c)/Φ(c))²`. A baseline that learns only from values below its threshold
/// underestimates the variance by this factor; dividing by it removes the bias.
pub fn upper_truncated_variance(c: f64) -> f64 {
    let ratio = normal_pdf(c) / normal_cdf(c);
    (1.0 - c * ratio - ratio * ratio).clamp(0.05, 1.0)
}

/// Variance of a standard normal truncated on both sides at ±`c`: `1 − 2c·φ(c)/(2Φ(c) − 1)`.
pub fn two_sided_truncated_variance(c: f64) -> f64 {
    (1.0 - 2.0 * c * normal_pdf(c) / (2.0 * normal_cdf(c) - 1.0)).clamp(0.05, 1.0)
}

/// The z threshold that keeps the false-alarm rate of a `z` test when mean and spread are estimated
/// from `n` samples: the Student-t quantile with `n − 1` degrees of freedom at Φ(z), by the
/// Cornish–Fisher expansion, times the prediction-interval factor √(1 + 1/n).
pub fn small_sample_threshold(z: f64, n: f64) -> f64 {
    let nu = (n - 1.0).max(1.0);
    let z3 = z * z * z;
    let z5 = z3 * z * z;
    let t = z + (z3 + z) / (4.0 * nu) + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * nu * nu);
    t * (1.0 + 1.0 / n.max(1.0)).sqrt()
}

/// The threshold a baseline learned from `n` values applies to a z threshold `z`: the small-sample
/// threshold plus two standard errors of the estimated z itself at `z`
/// (`SE ≈ √((1 + z²/2) / n)`, from the errors of the mean and of the spread). A value is then flagged
/// only when it is beyond `z` with ~97.5 % confidence under the *true* baseline, so values just below
/// the threshold are not flagged because the baseline's estimate happened to be a little off.
pub fn confident_threshold(z: f64, n: f64) -> f64 {
    let n = n.max(2.0);
    small_sample_threshold(z, n) + 2.0 * ((1.0 + z * z / 2.0) / n).sqrt()
}

/// `i ↦ ln P(X = i)` for X ~ Binomial(n, p), 0 < p < 1.
fn binomial_log_pmf(n: u64, p: f64) -> impl Fn(u64) -> f64 {
    let (nf, lp, lq) = (n as f64, p.ln(), (1.0 - p).ln());
    let log_n_factorial = libm::lgamma(nf + 1.0);
    move |i: u64| {
        let i = i as f64;
        log_n_factorial - libm::lgamma(i + 1.0) - libm::lgamma(nf - i + 1.0)
            + i * lp
            + (nf - i) * lq
    }
}

/// P(X ≥ k) for X ~ Binomial(n, p), summed exactly in log space from k upward.
pub fn binomial_upper_tail(k: u64, n: u64, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n || p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    let nf = n as f64;
    let log_pmf = binomial_log_pmf(n, p);
    let mut sum = 0.0;
    for i in k..=n {
        let term = log_pmf(i).exp();
        sum += term;
        // Past the mode terms only shrink; stop when they no longer matter.
        if (i as f64) > nf * p && term < sum * 1e-12 {
            break;
        }
    }
    sum.min(1.0)
}

/// P(X ≤ k) for X ~ Binomial(n, p), summed exactly in log space from k downward.
pub fn binomial_lower_tail(k: u64, n: u64, p: f64) -> f64 {
    if k >= n || p <= 0.0 {
        return 1.0;
    }
    if p >= 1.0 {
        return 0.0;
    }
    let nf = n as f64;
    let log_pmf = binomial_log_pmf(n, p);
    let mut sum = 0.0;
    for i in (0..=k).rev() {
        let term = log_pmf(i).exp();
        sum += term;
        // Below the mode terms only shrink; stop when they no longer matter.
        if (i as f64) < nf * p && term < sum * 1e-12 {
            break;
        }
    }
    sum.min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_cdf_matches_tables() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-12);
        assert!((normal_cdf(3.0) - 0.998_650_1).abs() < 1e-6);
        assert!((normal_cdf(-1.0) - 0.158_655_3).abs() < 1e-6);
    }

    #[test]
    fn truncated_variance_at_three_sigma() {
        let v = upper_truncated_variance(3.0);
        assert!((v - 0.9867).abs() < 1e-3, "{v}");
        assert!(upper_truncated_variance(10.0) > 0.999_999);
        let both = two_sided_truncated_variance(3.0);
        assert!((both - 0.9733).abs() < 1e-3, "{both}");
    }

    #[test]
    fn small_samples_raise_the_threshold_and_large_ones_do_not() {
        assert!(small_sample_threshold(3.0, 10.0) > 3.5);
        let t50 = small_sample_threshold(3.0, 50.0);
        assert!((3.1..3.3).contains(&t50), "{t50}");
        assert!((small_sample_threshold(3.0, 1e6) - 3.0).abs() < 1e-3);
    }

    #[test]
    fn the_confidence_margin_shrinks_with_samples() {
        let few = confident_threshold(3.0, 50.0);
        let many = confident_threshold(3.0, 2_000.0);
        assert!(few > 3.7 && few < 4.0, "{few}");
        assert!(many > 3.1 && many < 3.15, "{many}");
    }

    #[test]
    fn binomial_tail_matches_closed_forms() {
        // P(X ≥ 1) = 1 − (1 − p)^n
        let p = binomial_upper_tail(1, 20, 0.01);
        assert!((p - (1.0 - 0.99f64.powi(20))).abs() < 1e-12);
        // P(X ≥ n) = p^n
        assert!((binomial_upper_tail(5, 5, 0.5) - 0.03125).abs() < 1e-12);
        assert_eq!(binomial_upper_tail(0, 5, 0.5), 1.0);
        assert_eq!(binomial_upper_tail(6, 5, 0.5), 0.0);
        // P(X ≤ 0) = (1 − p)^n, and the two tails meet.
        assert!((binomial_lower_tail(0, 20, 0.1) - 0.9f64.powi(20)).abs() < 1e-12);
        let (lower, upper) = (
            binomial_lower_tail(4, 30, 0.2),
            binomial_upper_tail(5, 30, 0.2),
        );
        assert!((lower + upper - 1.0).abs() < 1e-9);
        let big = binomial_upper_tail(150, 10_000, 0.01);
        assert!(big > 0.0 && big < 1e-5, "{big}");
    }
}
