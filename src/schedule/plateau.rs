//! PyTorch's `ReduceLROnPlateau` as a plain state machine.
//!
//! `observe` follows the order of PyTorch's `step()` exactly:
//! 1. the metric is compared with the best so far (an improvement resets the
//!    bad-epoch counter, anything else — NaN included — increments it);
//! 2. during a cooldown the cooldown counter is decremented and bad epochs are
//!    forgotten;
//! 3. more than `patience` bad epochs multiply the rate by `factor` (not below
//!    `min_lr`, and only if it changes by more than 1e-8), start a cooldown
//!    and reset the bad-epoch counter.

use serde::{Deserialize, Serialize};

use super::spec::{ReduceOnPlateau, ThresholdMode};

/// PyTorch's `eps`: reductions smaller than this are ignored.
const MIN_CHANGE: f64 = 1e-8;

/// The mutable part of an adaptive schedule, saved in checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlateauState {
    /// The current learning rate.
    pub lr: f64,
    /// The best metric so far; starts at +∞ (lower is better) or −∞ (higher
    /// is better). Written as a string (`"inf"`, `"-inf"`) when not finite,
    /// since JSON has no infinities.
    #[serde(with = "float_repr")]
    pub best: f64,
    /// Epochs since the last improvement (reset during cooldown).
    pub num_bad_epochs: u64,
    /// Epochs of cooldown left.
    pub cooldown_counter: u64,
    /// Number of metrics observed so far.
    pub epochs: u64,
}

impl PlateauState {
    /// The state before any metric has been observed.
    pub fn initial(spec: &ReduceOnPlateau) -> Self {
        PlateauState {
            lr: spec.lr,
            best: if spec.monitor.higher_is_better() {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            },
            num_bad_epochs: 0,
            cooldown_counter: 0,
            epochs: 0,
        }
    }

    /// Takes one epoch's metric into account (PyTorch `step(metrics)`).
    pub fn observe(&mut self, spec: &ReduceOnPlateau, metric: f64) {
        self.epochs = self.epochs.saturating_add(1);
        if is_better(spec, metric, self.best) {
            self.best = metric;
            self.num_bad_epochs = 0;
        } else {
            self.num_bad_epochs = self.num_bad_epochs.saturating_add(1);
        }
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.num_bad_epochs = 0;
        }
        if self.num_bad_epochs > spec.patience {
            let reduced = (self.lr * spec.factor).max(spec.min_lr);
            if self.lr - reduced > MIN_CHANGE {
                self.lr = reduced;
            }
            self.cooldown_counter = spec.cooldown;
            self.num_bad_epochs = 0;
        }
    }
}

/// PyTorch's `is_better` for the four combinations of mode and threshold mode.
fn is_better(spec: &ReduceOnPlateau, metric: f64, best: f64) -> bool {
    let higher = spec.monitor.higher_is_better();
    match (higher, spec.threshold_mode) {
        (false, ThresholdMode::Rel) => metric < best * (1.0 - spec.threshold),
        (false, ThresholdMode::Abs) => metric < best - spec.threshold,
        (true, ThresholdMode::Rel) => metric > best * (spec.threshold + 1.0),
        (true, ThresholdMode::Abs) => metric > best + spec.threshold,
    }
}

/// Serializes an f64 that may be infinite: finite values as JSON numbers,
/// the others as `"inf"`, `"-inf"` or `"nan"`.
mod float_repr {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        if value.is_finite() {
            serializer.serialize_f64(*value)
        } else if value.is_nan() {
            serializer.serialize_str("nan")
        } else if *value > 0.0 {
            serializer.serialize_str("inf")
        } else {
            serializer.serialize_str("-inf")
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Number(f64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        match Repr::deserialize(deserializer)? {
            Repr::Number(v) => Ok(v),
            Repr::Text(s) => match s.as_str() {
                "inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                "nan" => Ok(f64::NAN),
                other => Err(serde::de::Error::custom(format!(
                    "expected a number, \"inf\", \"-inf\" or \"nan\", found \"{other}\""
                ))),
            },
        }
    }
}
