//! What a training run is asked to do: the serialisable configuration a job carries.

use serde::{Deserialize, Serialize};

use crate::schedule::ScheduleSpec;

use super::TrainError;

/// What the schedule's step index `t` counts.
///
/// The chapter sets the rate once per epoch; per-update schedules (warm-up over a few hundred
/// updates, one-cycle) need `step`. Both are first-class so a job can say which it means.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleUnit {
    /// `t` is the 0-based epoch index; the rate holds for the whole epoch.
    #[default]
    Epoch,
    /// `t` is the 0-based optimizer update index over the whole run.
    Step,
}

/// SGD hyper-parameters with PyTorch's semantics (dampening 0).
///
/// The default is plain SGD, which is what the chapter and the PyTorch reference use.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SgdConfig {
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

impl SgdConfig {
    /// Rejects values PyTorch would reject (or that could only produce NaNs), so a bad job fails
    /// before it takes a worker.
    pub fn validate(&self) -> Result<(), TrainError> {
        if !self.momentum.is_finite() || !(0.0..1.0).contains(&self.momentum) {
            return Err(TrainError::InvalidConfig(format!(
                "optimizer.momentum must be in [0, 1), got {}",
                self.momentum
            )));
        }
        if !self.weight_decay.is_finite() || self.weight_decay < 0.0 {
            return Err(TrainError::InvalidConfig(format!(
                "optimizer.weight_decay must be finite and >= 0, got {}",
                self.weight_decay
            )));
        }
        if self.nesterov && self.momentum <= 0.0 {
            return Err(TrainError::InvalidConfig(
                "optimizer.nesterov requires momentum > 0".to_string(),
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
    /// Number of epochs to train (>= 1).
    pub epochs: u32,
    /// Examples per update (>= 1); the last batch of an epoch may be smaller.
    pub batch_size: usize,
    /// The learning-rate schedule.
    pub schedule: ScheduleSpec,
    /// What the schedule's `t` counts.
    #[serde(default)]
    pub unit: ScheduleUnit,
    /// SGD settings.
    #[serde(default)]
    pub optimizer: SgdConfig,
    /// Seeds the weight initialisation and every epoch's example order.
    #[serde(default)]
    pub seed: u64,
}

/// Largest accepted batch; beyond it a batch of activations would not fit any machine we run on.
pub const MAX_BATCH_SIZE: usize = 65_536;

impl TrainConfig {
    /// Checks the numeric limits; the schedule itself is validated by `Schedule::new`.
    pub fn validate(&self) -> Result<(), TrainError> {
        if self.epochs == 0 {
            return Err(TrainError::InvalidConfig(
                "epochs must be at least 1".to_string(),
            ));
        }
        if self.batch_size == 0 || self.batch_size > MAX_BATCH_SIZE {
            return Err(TrainError::InvalidConfig(format!(
                "batch_size must be in 1..={MAX_BATCH_SIZE}, got {}",
                self.batch_size
            )));
        }
        self.optimizer.validate()
    }
}
