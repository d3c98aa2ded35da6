//! The training engine: a candle "modern LeNet" trained on Fashion-MNIST with SGD whose
//! learning rate follows a [`crate::schedule`] spec, reporting the d2l chapter's metrics,
//! resumable from per-epoch checkpoints.
//!
//! No HTTP, database, command line or download here: the job service calls [`train`] with a
//! [`RunSpec`] and a [`TrainObserver`] that stores what it is told; the `lrlab train` command
//! (`crate::cli`) does the same with a progress bar and CSV files.
//!
//! Layer operations go through [`ops`] only, so faster CPU kernels can replace them without
//! touching the model or the loop.

pub mod checkpoint;
mod config;
mod device;
mod error;
pub mod kernels;
pub mod lockstep;
pub mod model;
pub mod ops;
pub mod optim;
mod report;
mod trainer;

pub use config::{
    OptimizerKind, OptimizerSpec, ScheduleUnit, TrainConfig, TrainPlan, BATCH_SIZE_RANGE,
    EPOCHS_RANGE,
};
pub use device::{parse_device, DeviceSpec};
pub use error::{CheckpointError, TrainError};
pub use model::LeNet;
pub use report::{
    metrics_csv, EpochMetrics, EpochReport, Progress, RunSummary, StepRecord, TrainObserver,
};
pub use trainer::{evaluate, train, RunSpec, EVAL_BATCH};
