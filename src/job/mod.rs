//! The job domain: what a client submits, what is stored and run, and the
//! warnings a submission earns. No HTTP and no SQL here.

mod spec;
mod status;
mod warnings;

pub use spec::{
    DatasetName, InvalidJob, JobRequest, JobSpec, Model, OptimizerKind, OptimizerSpec,
    BATCH_SIZE_RANGE, EPOCHS_RANGE, FASHION_MNIST_TRAIN_LEN, MAX_NAME_LEN,
};
pub use status::{JobStatus, UnknownStatus};
pub use warnings::{job_warnings, Warning, DIVERGENCE_RATE};

/// A job's id: the database's row id, shown in URLs as `/v1/jobs/{id}`.
pub type JobId = i64;
