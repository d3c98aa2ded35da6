//! What a client submits (`JobRequest`) and what lrlab stores and runs (`JobSpec`).
//!
//! A request may leave most fields out; the spec has every default filled in
//! (including a drawn seed), so a stored job is complete and reproducible:
//! submitting its spec again trains the very same network.

use serde::{Deserialize, Serialize};

use crate::data::Limits;
use crate::schedule::{Schedule, ScheduleSpec, SpecError};
use crate::train::{ScheduleUnit, SgdConfig, TrainConfig};

/// Size of Fashion-MNIST's training split, for step counts before the data is loaded.
pub const FASHION_MNIST_TRAIN_LEN: u64 = 60_000;
/// Epochs a job may ask for.
pub const EPOCHS_RANGE: std::ops::RangeInclusive<u32> = 1..=1000;
/// Batch sizes a job may ask for.
pub const BATCH_SIZE_RANGE: std::ops::RangeInclusive<u32> = 1..=60_000;
/// Longest job name.
pub const MAX_NAME_LEN: usize = 200;

/// The models lrlab can train.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    /// The "modern" LeNet of d2l: ReLU and max-pooling.
    #[default]
    Lenet,
}

/// The data sets lrlab can train on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DatasetName {
    /// Zalando's Fashion-MNIST: 60,000 training and 10,000 test images.
    #[default]
    #[serde(rename = "fashion-mnist")]
    FashionMnist,
}

/// The optimizers lrlab offers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// Stochastic gradient descent, optionally with (Nesterov) momentum and weight decay.
    #[default]
    Sgd,
}

/// The optimizer of a job, every field explicit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerSpec {
    #[serde(default)]
    pub kind: OptimizerKind,
    #[serde(default)]
    pub momentum: f64,
    #[serde(default)]
    pub nesterov: bool,
    #[serde(default)]
    pub weight_decay: f64,
}

impl Default for OptimizerSpec {
    fn default() -> Self {
        OptimizerSpec {
            kind: OptimizerKind::Sgd,
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        }
    }
}

/// A job as submitted: everything but `epochs` and `schedule` may be left out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub model: Model,
    #[serde(default)]
    pub dataset: DatasetName,
    pub epochs: u32,
    #[serde(default = "default_batch_size")]
    pub batch_size: u32,
    #[serde(default)]
    pub optimizer: OptimizerSpec,
    pub schedule: serde_json::Value,
    #[serde(default)]
    pub schedule_unit: ScheduleUnit,
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub train_limit: Option<u64>,
    #[serde(default)]
    pub test_limit: Option<u64>,
    #[serde(default)]
    pub priority: i64,
}

fn default_batch_size() -> u32 {
    256
}

/// A job as stored and run: complete, validated, reproducible.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub name: String,
    pub model: Model,
    pub dataset: DatasetName,
    pub epochs: u32,
    pub batch_size: u32,
    pub optimizer: OptimizerSpec,
    pub schedule: ScheduleSpec,
    pub schedule_unit: ScheduleUnit,
    pub seed: u64,
    pub train_limit: Option<u64>,
    pub test_limit: Option<u64>,
    pub priority: i64,
}

/// A rule a request breaks, with the path of the field that breaks it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidJob {
    pub code: &'static str,
    pub path: String,
    pub message: String,
}

impl InvalidJob {
    fn new(code: &'static str, path: &str, message: String) -> Self {
        InvalidJob {
            code,
            path: path.to_string(),
            message,
        }
    }
}

impl From<SpecError> for InvalidJob {
    fn from(err: SpecError) -> Self {
        let err = err.prefixed("schedule");
        InvalidJob {
            code: err.code,
            path: err.path,
            message: err.message,
        }
    }
}

impl JobRequest {
    /// Validates every rule and fills every default. `draw_seed` supplies the
    /// seed when the request has none (random in the server, fixed in tests).
    pub fn into_spec(self, draw_seed: impl FnOnce() -> u64) -> Result<JobSpec, InvalidJob> {
        let schedule = Schedule::from_json(&self.schedule)?;
        if !EPOCHS_RANGE.contains(&self.epochs) {
            return Err(InvalidJob::new(
                "out_of_range",
                "epochs",
                format!("epochs must be between 1 and 1000, got {}", self.epochs),
            ));
        }
        if !BATCH_SIZE_RANGE.contains(&self.batch_size) {
            return Err(InvalidJob::new(
                "out_of_range",
                "batch_size",
                format!(
                    "batch_size must be between 1 and 60000, got {}",
                    self.batch_size
                ),
            ));
        }
        validate_optimizer(&self.optimizer)?;
        for (path, limit) in [
            ("train_limit", self.train_limit),
            ("test_limit", self.test_limit),
        ] {
            if limit == Some(0) {
                return Err(InvalidJob::new(
                    "out_of_range",
                    path,
                    format!("{path} must be at least 1 (leave it out to use the whole split)"),
                ));
            }
        }
        let name = match self.name {
            Some(name) => validate_name(name)?,
            None => default_name(schedule.spec()),
        };
        Ok(JobSpec {
            name,
            model: self.model,
            dataset: self.dataset,
            epochs: self.epochs,
            batch_size: self.batch_size,
            optimizer: self.optimizer,
            schedule: schedule.spec().clone(),
            schedule_unit: self.schedule_unit,
            seed: self.seed.unwrap_or_else(draw_seed),
            train_limit: self.train_limit,
            test_limit: self.test_limit,
            priority: self.priority,
        })
    }
}

fn validate_optimizer(optimizer: &OptimizerSpec) -> Result<(), InvalidJob> {
    let OptimizerSpec {
        momentum,
        nesterov,
        weight_decay,
        ..
    } = *optimizer;
    if !momentum.is_finite() || !(0.0..1.0).contains(&momentum) {
        return Err(InvalidJob::new(
            "out_of_range",
            "optimizer.momentum",
            format!("momentum must lie in [0, 1), got {momentum}"),
        ));
    }
    if !weight_decay.is_finite() || weight_decay < 0.0 {
        return Err(InvalidJob::new(
            "out_of_range",
            "optimizer.weight_decay",
            format!("weight_decay must be finite and at least 0, got {weight_decay}"),
        ));
    }
    if nesterov && momentum == 0.0 {
        return Err(InvalidJob::new(
            "invalid_value",
            "optimizer.nesterov",
            "nesterov momentum needs a momentum above 0".to_string(),
        ));
    }
    Ok(())
}

fn validate_name(name: String) -> Result<String, InvalidJob> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.chars().count() > MAX_NAME_LEN {
        return Err(InvalidJob::new(
            "invalid_value",
            "name",
            format!("name must have 1 to {MAX_NAME_LEN} characters"),
        ));
    }
    Ok(trimmed.to_string())
}

fn default_name(schedule: &ScheduleSpec) -> String {
    schedule.kind().to_string()
}

impl JobSpec {
    /// The training configuration this job runs with.
    pub fn train_config(&self) -> TrainConfig {
        TrainConfig {
            epochs: self.epochs,
            batch_size: self.batch_size as usize,
            schedule: self.schedule.clone(),
            unit: self.schedule_unit,
            optimizer: SgdConfig {
                momentum: self.optimizer.momentum,
                nesterov: self.optimizer.nesterov,
                weight_decay: self.optimizer.weight_decay,
            },
            seed: self.seed,
        }
    }

    /// The example limits of the data set.
    pub fn limits(&self) -> Limits {
        let to_usize = |limit: Option<u64>| limit.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        Limits {
            train: to_usize(self.train_limit),
            test: to_usize(self.test_limit),
        }
    }

    /// Updates per epoch when the training split has `train_len` examples
    /// (the last, partial batch counts).
    pub fn steps_per_epoch(&self, train_len: u64) -> u64 {
        let used = self
            .train_limit
            .map_or(train_len, |limit| limit.min(train_len));
        used.div_ceil(u64::from(self.batch_size)).max(1)
    }

    /// Updates over the whole job for a training split of `train_len` examples.
    pub fn total_steps(&self, train_len: u64) -> u64 {
        self.steps_per_epoch(train_len) * u64::from(self.epochs)
    }
}
