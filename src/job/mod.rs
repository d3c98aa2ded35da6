//! The job domain: what a client submits, how it is checked (once), what is
//! stored and run, the warnings a submission earns and why a job failed.
//! No HTTP and no SQL here.

mod failure;
mod id;
mod plan;
mod spec;
mod status;
mod summary;
mod warnings;

pub use crate::train::{OptimizerKind, OptimizerSpec};
pub use failure::{FailureCode, JobError};
pub use id::JobId;
pub use plan::JobPlan;
pub use spec::{
    DatasetName, InvalidJob, JobRequest, JobSpec, Model, FASHION_MNIST_TRAIN_LEN, MAX_NAME_LEN,
};
pub use status::{JobStatus, UnknownStatus};
pub use summary::{job_summary, schedule_summary};
pub use warnings::{job_warnings, Warning, WarningCode, DIVERGENCE_RATE};
