//! Means, standard deviations, Student-t intervals and paired comparisons.
//!
//! Why paired: the same seed gives the same initial weights and the same
//! batch order in every config, so much of the seed-to-seed swing (±0.02 in
//! final test accuracy at a fixed rate of 0.3) is shared by configs run on
//! that seed. The difference of two configs *on the same seed* cancels that
//! shared part, and its t-interval over the common seeds is far narrower
//! than the unpaired one: three seeds can then tell apart schedules whose
//! unpaired intervals overlap. When the configs share fewer than two
//! seeds (a member failed, say) there is nothing to pair, and the
//! comparison falls back to Welch's unequal-variance interval.

use std::collections::HashMap;

use serde::Serialize;

use super::tdist::student_t_quantile;

/// The confidence level of every interval: two-sided 95%.
pub const CONFIDENCE: f64 = 0.95;

/// A closed interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

impl Interval {
    /// Whether `x` lies in the interval (bounds included).
    pub fn contains(&self, x: f64) -> bool {
        self.low <= x && x <= self.high
    }
}

/// A sample's mean with its spread.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n − 1 in the denominator); none for n = 1.
    pub std: Option<f64>,
    /// mean ± t(0.975, n − 1)·std/√n; none for n = 1.
    pub ci95: Option<Interval>,
}

/// The arithmetic mean; `None` for an empty sample.
pub fn mean(sample: &[f64]) -> Option<f64> {
    (!sample.is_empty()).then(|| sample.iter().sum::<f64>() / sample.len() as f64)
}

/// The sample standard deviation (two passes, n − 1); `None` for n < 2.
pub fn sample_std(sample: &[f64]) -> Option<f64> {
    if sample.len() < 2 {
        return None;
    }
    let m = mean(sample)?;
    let squares: f64 = sample.iter().map(|x| (x - m) * (x - m)).sum();
    Some((squares / (sample.len() - 1) as f64).sqrt())
}

/// The t-interval `mean ± t(0.975, df)·se`; with `se` 0 the single point.
pub fn t_interval(mean: f64, se: f64, df: f64) -> Interval {
    let half = if se == 0.0 {
        0.0
    } else {
        student_t_quantile(0.5 + CONFIDENCE / 2.0, df) * se
    };
    Interval {
        low: mean - half,
        high: mean + half,
    }
}

/// Mean, standard deviation and 95% interval of a sample; `None` when empty.
pub fn estimate(sample: &[f64]) -> Option<Estimate> {
    let n = sample.len();
    let mean = mean(sample)?;
    let std = sample_std(sample);
    let ci95 = std.map(|s| t_interval(mean, s / (n as f64).sqrt(), (n - 1) as f64));
    Some(Estimate { n, mean, std, ci95 })
}

/// How a difference of two configs was estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Over the seeds both configs ran (the differences' t-interval).
    Paired,
    /// Welch's interval over each config's own values (unequal variances,
    /// Welch–Satterthwaite degrees of freedom).
    Welch,
}

/// The difference `a − b` of two configs' values, with its 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Difference {
    pub method: Method,
    /// Common seeds for `paired`; 0 for `welch`.
    pub pairs: usize,
    pub mean: f64,
    /// Degrees of freedom of the interval; none without an interval.
    pub df: Option<f64>,
    pub ci95: Option<Interval>,
    /// Whether the interval contains 0: the data cannot tell the two apart.
    /// `None` without an interval (too few values to judge).
    pub indistinguishable: Option<bool>,
}

impl Difference {
    fn new(method: Method, pairs: usize, mean: f64, interval: Option<(Interval, f64)>) -> Self {
        Difference {
            method,
            pairs,
            mean,
            df: interval.map(|(_, df)| df),
            ci95: interval.map(|(i, _)| i),
            indistinguishable: interval.map(|(i, _)| i.contains(0.0)),
        }
    }
}

/// The paired difference `a − b` over the seeds both list; `None` when they share none.
pub fn paired_difference(a: &[(u64, f64)], b: &[(u64, f64)]) -> Option<Difference> {
    let by_seed: HashMap<u64, f64> = b.iter().copied().collect();
    let diffs: Vec<f64> = a
        .iter()
        .filter_map(|(seed, x)| by_seed.get(seed).map(|y| x - y))
        .collect();
    let est = estimate(&diffs)?;
    let interval = est.ci95.map(|i| (i, (est.n - 1) as f64));
    Some(Difference::new(Method::Paired, est.n, est.mean, interval))
}

/// Welch's difference of means `a − b`; `None` when either sample is empty,
/// without an interval unless both have at least two values.
pub fn welch_difference(a: &[f64], b: &[f64]) -> Option<Difference> {
    let (ma, mb) = (mean(a)?, mean(b)?);
    let interval = match (sample_std(a), sample_std(b)) {
        (Some(sa), Some(sb)) => {
            let va = sa * sa / a.len() as f64;
            let vb = sb * sb / b.len() as f64;
            let se = (va + vb).sqrt();
            // Welch–Satterthwaite; with both variances 0 any df gives a point.
            let df = if se == 0.0 {
                (a.len() + b.len() - 2) as f64
            } else {
                (va + vb).powi(2)
                    / (va * va / (a.len() - 1) as f64 + vb * vb / (b.len() - 1) as f64)
            };
            Some((t_interval(ma - mb, se, df), df))
        }
        _ => None,
    };
    Some(Difference::new(Method::Welch, 0, ma - mb, interval))
}

/// `a − b`: paired over the common seeds when there are at least two,
/// else Welch over all of each config's values.
pub fn compare(a: &[(u64, f64)], b: &[(u64, f64)]) -> Option<Difference> {
    match paired_difference(a, b) {
        Some(paired) if paired.pairs >= 2 => Some(paired),
        _ => {
            let values = |s: &[(u64, f64)]| s.iter().map(|&(_, v)| v).collect::<Vec<_>>();
            welch_difference(&values(a), &values(b))
        }
    }
}
