//! What a client submits (`JobRequest`) and what lrlab stores and runs (`JobSpec`).
//!
//! A request may leave most fields out; the spec has every default filled in
//! (including a drawn seed), so a stored job is complete and reproducible:
//! submitting its spec again trains the very same network. Whether a spec
//! satisfies the rules is decided in one place, [`super::JobPlan::new`].

use serde::{Deserialize, Serialize};

use crate::data::Limits;
use crate::schedule::ScheduleSpec;
use crate::train::{OptimizerSpec, ScheduleUnit, TrainConfig};
use crate::validation::FieldError;

/// Size of Fashion-MNIST's training split, for step counts before the data is loaded.
pub const FASHION_MNIST_TRAIN_LEN: u64 = 60_000;
/// Longest job name.
pub const MAX_NAME_LEN: usize = 200;

/// A rule a job request breaks, with the path of the field that breaks it.
pub type InvalidJob = FieldError;

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

/// A job as stored and run: complete and reproducible. Checked by [`super::JobPlan::new`].
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

impl JobRequest {
    /// Fills every default: the schedule's own (by parsing it), the job's name
    /// (the schedule's kind) and the seed, which `draw_seed` supplies when the
    /// request has none (random in the server, fixed in tests). Parsing errors
    /// name their field (`schedule.then.lr`); the rules are checked by
    /// [`super::JobPlan::new`].
    pub fn into_spec(self, draw_seed: impl FnOnce() -> u64) -> Result<JobSpec, InvalidJob> {
        let schedule =
            ScheduleSpec::from_json(&self.schedule).map_err(|e| e.prefixed("schedule"))?;
        let name = self.name.unwrap_or_else(|| schedule.kind().to_string());
        Ok(JobSpec {
            name,
            model: self.model,
            dataset: self.dataset,
            epochs: self.epochs,
            batch_size: self.batch_size,
            optimizer: self.optimizer,
            schedule,
            schedule_unit: self.schedule_unit,
            seed: self.seed.unwrap_or_else(draw_seed),
            train_limit: self.train_limit,
            test_limit: self.test_limit,
            priority: self.priority,
        })
    }
}

impl JobSpec {
    /// The training configuration this job runs with.
    pub fn train_config(&self) -> TrainConfig {
        TrainConfig {
            epochs: self.epochs,
            batch_size: self.batch_size,
            schedule: self.schedule.clone(),
            unit: self.schedule_unit,
            optimizer: self.optimizer,
            seed: self.seed,
        }
    }

    /// The example limits of the data set.
    pub fn limits(&self) -> Limits {
        // Saturating: a limit beyond the address space means "the whole split".
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
        used.div_ceil(u64::from(self.batch_size.max(1))).max(1)
    }

    /// Updates over the whole job for a training split of `train_len` examples.
    pub fn total_steps(&self, train_len: u64) -> u64 {
        self.steps_per_epoch(train_len) * u64::from(self.epochs)
    }
}
