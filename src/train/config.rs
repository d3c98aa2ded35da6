//! What a training run is asked to do, and the one set of rules it must satisfy.
//!
//! A [`TrainConfig`] is plain data (serialisable into checkpoints and job specs);
//! a [`TrainPlan`] is a config that passed [`TrainPlan::new`], with its schedule
//! compiled. The trainer only accepts plans, so every run — from the HTTP API, a
//! sweep or `lrlab train` — is checked by the same rules exactly once.

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::schedule::{Schedule, ScheduleSpec};
use crate::validation::{FieldCode, FieldError};

/// Epochs a run may ask for.
pub const EPOCHS_RANGE: RangeInclusive<u32> = 1..=1000;
/// Examples per update a run may ask for: at most the whole training split.
pub const BATCH_SIZE_RANGE: RangeInclusive<u32> = 1..=60_000;

/// What the schedule's step index `t` counts.
///
/// The chapter sets the rate once per epoch; per-update schedules (warm-up over a few hundred
/// updates, one-cycle) need `step`. Both are first-class so a job can say which it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleUnit {
    /// `t` is the 0-based epoch index; the rate holds for the whole epoch.
    #[default]
    Epoch,
    /// `t` is the 0-based optimizer update index over the whole run.
    Step,
}

impl ScheduleUnit {
    /// The unit's word in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleUnit::Epoch => "epoch",
            ScheduleUnit::Step => "step",
        }
    }
}

impl fmt::Display for ScheduleUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ScheduleUnit {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "epoch" => Ok(ScheduleUnit::Epoch),
            "step" => Ok(ScheduleUnit::Step),
            other => Err(format!("unknown unit `{other}`, expected epoch or step")),
        }
    }
}

/// The optimizers lrlab offers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// Stochastic gradient descent, optionally with (Nesterov) momentum and weight decay.
    #[default]
    Sgd,
}

/// The optimizer of a run, with PyTorch's SGD semantics (dampening 0). The default is
/// plain SGD, which is what the chapter and the PyTorch reference use.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerSpec {
    #[serde(default)]
    pub kind: OptimizerKind,
    /// Momentum factor in [0, 1); 0 disables the momentum buffer.
    #[serde(default)]
    pub momentum: f64,
    /// Nesterov momentum; as in PyTorch it needs `momentum > 0`.
    #[serde(default)]
    pub nesterov: bool,
    /// L2 penalty added to the gradient (`g + weight_decay * p`), not decoupled.
    #[serde(default)]
    pub weight_decay: f64,
}

impl OptimizerSpec {
    /// The rules PyTorch applies (and values that could only produce NaNs), with paths
    /// relative to the optimizer object.
    fn check(&self) -> Result<(), FieldError> {
        let OptimizerSpec {
            momentum,
            nesterov,
            weight_decay,
            ..
        } = *self;
        if !momentum.is_finite() || !(0.0..1.0).contains(&momentum) {
            return Err(FieldError::new(
                FieldCode::OutOfRange,
                "momentum",
                format!("momentum must lie in [0, 1), got {momentum}"),
            ));
        }
        if !weight_decay.is_finite() || weight_decay < 0.0 {
            return Err(FieldError::new(
                FieldCode::OutOfRange,
                "weight_decay",
                format!("weight_decay must be finite and at least 0, got {weight_decay}"),
            ));
        }
        if nesterov && momentum == 0.0 {
            return Err(FieldError::new(
                FieldCode::InvalidValue,
                "nesterov",
                "nesterov momentum needs a momentum above 0",
            ));
        }
        Ok(())
    }
}

/// Everything that determines a run's result (together with the data set): the checkpoint
/// fingerprint is derived from it, so a resumed run is the same run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Number of epochs to train, in [`EPOCHS_RANGE`].
    pub epochs: u32,
    /// Examples per update, in [`BATCH_SIZE_RANGE`]; the last batch of an epoch may be smaller.
    pub batch_size: u32,
    /// The learning-rate schedule.
    pub schedule: ScheduleSpec,
    /// What the schedule's `t` counts.
    #[serde(default)]
    pub unit: ScheduleUnit,
    /// The optimizer.
    #[serde(default)]
    pub optimizer: OptimizerSpec,
    /// Seeds the weight initialisation and every epoch's example order.
    #[serde(default)]
    pub seed: u64,
}

/// A [`TrainConfig`] that satisfies every rule, with its schedule compiled: the only thing
/// [`super::train`] accepts.
#[derive(Debug, Clone)]
pub struct TrainPlan {
    config: TrainConfig,
    schedule: Schedule,
}

impl TrainPlan {
    /// Checks `config` (errors name the field: `epochs`, `batch_size`, `optimizer.momentum`,
    /// `schedule.then.max_steps`, …) and compiles its schedule.
    pub fn new(config: TrainConfig) -> Result<TrainPlan, FieldError> {
        let schedule =
            Schedule::new(config.schedule.clone()).map_err(|e| e.prefixed("schedule"))?;
        if !EPOCHS_RANGE.contains(&config.epochs) {
            return Err(out_of_range("epochs", &EPOCHS_RANGE, config.epochs));
        }
        if !BATCH_SIZE_RANGE.contains(&config.batch_size) {
            return Err(out_of_range(
                "batch_size",
                &BATCH_SIZE_RANGE,
                config.batch_size,
            ));
        }
        config
            .optimizer
            .check()
            .map_err(|e| e.prefixed("optimizer"))?;
        Ok(TrainPlan { config, schedule })
    }

    /// The checked configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The compiled schedule.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// Examples per update.
    pub fn batch_size(&self) -> usize {
        self.config.batch_size as usize
    }
}

fn out_of_range(field: &str, range: &RangeInclusive<u32>, got: u32) -> FieldError {
    FieldError::new(
        FieldCode::OutOfRange,
        field,
        format!(
            "{field} must be between {} and {}, got {got}",
            range.start(),
            range.end()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(optimizer: OptimizerSpec) -> TrainConfig {
        TrainConfig {
            epochs: 1,
            batch_size: 64,
            schedule: ScheduleSpec::from_json(&serde_json::json!({"kind": "constant", "lr": 0.1}))
                .expect("a valid schedule"),
            unit: ScheduleUnit::Epoch,
            optimizer,
            seed: 0,
        }
    }

    #[test]
    fn invalid_optimizers_are_rejected_naming_the_field() {
        let bad = [
            (1.0, false, 0.0, "optimizer.momentum"),
            (-0.1, false, 0.0, "optimizer.momentum"),
            (f64::NAN, false, 0.0, "optimizer.momentum"),
            (0.0, true, 0.0, "optimizer.nesterov"),
            (0.9, false, -1.0, "optimizer.weight_decay"),
            (0.9, false, f64::INFINITY, "optimizer.weight_decay"),
        ];
        for (momentum, nesterov, weight_decay, path) in bad {
            let optimizer = OptimizerSpec {
                momentum,
                nesterov,
                weight_decay,
                ..OptimizerSpec::default()
            };
            let err = TrainPlan::new(config(optimizer)).unwrap_err();
            assert_eq!(err.path, path, "{optimizer:?}");
        }
        let good = OptimizerSpec {
            momentum: 0.9,
            nesterov: true,
            weight_decay: 5e-4,
            ..OptimizerSpec::default()
        };
        assert!(TrainPlan::new(config(good)).is_ok());
    }

    #[test]
    fn epochs_and_batch_size_have_one_range_each() {
        for (epochs, batch_size, path) in [
            (0, 64, "epochs"),
            (1001, 64, "epochs"),
            (1, 0, "batch_size"),
            (1, 60_001, "batch_size"),
        ] {
            let err = TrainPlan::new(TrainConfig {
                epochs,
                batch_size,
                ..config(OptimizerSpec::default())
            })
            .unwrap_err();
            assert_eq!(
                (err.code.as_str(), err.path.as_str()),
                ("out_of_range", path)
            );
        }
        assert!(TrainPlan::new(TrainConfig {
            epochs: 1000,
            batch_size: 60_000,
            ..config(OptimizerSpec::default())
        })
        .is_ok());
    }

    #[test]
    fn units_parse_from_their_words() {
        assert_eq!("step".parse::<ScheduleUnit>(), Ok(ScheduleUnit::Step));
        assert!("update".parse::<ScheduleUnit>().is_err());
    }
}
