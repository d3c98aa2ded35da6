//! The per-epoch metrics a sweep can rank and stop on, and which way is better.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A per-epoch metric of a job, as stored with its epoch rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Accuracy on the test set after the epoch.
    TestAcc,
    /// Mean loss on the test set after the epoch.
    TestLoss,
    /// Accuracy on the training examples during the epoch.
    TrainAcc,
    /// Mean loss on the training examples during the epoch.
    TrainLoss,
}

impl Metric {
    /// Every metric, in the order of the epoch rows.
    pub const ALL: [Metric; 4] = [
        Metric::TestAcc,
        Metric::TestLoss,
        Metric::TrainAcc,
        Metric::TrainLoss,
    ];

    /// The name used in JSON and query strings.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::TestAcc => "test_acc",
            Metric::TestLoss => "test_loss",
            Metric::TrainAcc => "train_acc",
            Metric::TrainLoss => "train_loss",
        }
    }

    /// Which way is better: accuracies are maximized, losses minimized.
    /// A sweep's `mode` must agree with it, so it may be left out.
    pub fn natural_mode(self) -> Mode {
        match self {
            Metric::TestAcc | Metric::TrainAcc => Mode::Max,
            Metric::TestLoss | Metric::TrainLoss => Mode::Min,
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A metric name that is not one of [`Metric::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown metric `{0}`; valid metrics: test_acc, test_loss, train_acc, train_loss")]
pub struct UnknownMetric(pub String);

impl FromStr for Metric {
    type Err = UnknownMetric;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Metric::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| UnknownMetric(s.to_string()))
    }
}

/// Whether larger (`max`) or smaller (`min`) values of a metric are better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Larger is better (accuracies).
    Max,
    /// Smaller is better (losses).
    Min,
}

impl Mode {
    /// A key where larger always means better. A non-finite value ranks
    /// below every finite one: a diverged run's loss is NaN, and a NaN must
    /// never look best (nor make a comparison panic).
    pub fn key(self, value: f64) -> f64 {
        if value.is_nan() {
            return f64::NEG_INFINITY;
        }
        match self {
            Mode::Max => value,
            Mode::Min => -value,
        }
    }

    /// `Less` when `a` is better than `b`: sorting with this puts the best first.
    pub fn better_first(self, a: f64, b: f64) -> Ordering {
        self.key(b)
            .partial_cmp(&self.key(a))
            .unwrap_or(Ordering::Equal)
    }

    /// Whether `a` is strictly worse than `b`.
    pub fn is_worse(self, a: f64, b: f64) -> bool {
        self.key(a) < self.key(b)
    }

    /// The best of `values` (NaN only when every value is NaN); `None` when empty.
    pub fn best_of(self, values: &[f64]) -> Option<f64> {
        values
            .iter()
            .copied()
            .min_by(|a, b| self.better_first(*a, *b))
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Max => "max",
            Mode::Min => "min",
        })
    }
}
