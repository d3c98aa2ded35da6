//! The JSON shape of a job as clients see it.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::job::{JobError, JobId, JobSpec, JobStatus, Warning};
use crate::service::JobDetails;
use crate::store::{JobRecord, MetricSummary};
use crate::train::EpochMetrics;

/// A job: its spec, where it is, and how it is doing.
#[derive(Debug, Serialize)]
pub struct JobView {
    pub id: JobId,
    pub name: String,
    pub status: JobStatus,
    pub spec: JobSpec,
    pub warnings: Vec<Warning>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// How many times a worker started or resumed it.
    pub attempts: i64,
    pub worker: Option<String>,
    pub device: Option<String>,
    pub cancel_requested: bool,
    pub progress: ProgressView,
    pub latest_metrics: Option<EpochMetrics>,
    /// The epoch with the highest test accuracy.
    pub best_metrics: Option<EpochMetrics>,
    pub error: Option<JobError>,
    /// The sweep this job is a member of, if any.
    pub sweep: Option<SweepMembership>,
    /// Jobs that will be claimed before this one; only while queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<i64>,
    pub links: Links,
}

/// A member job's sweep and its config there.
#[derive(Debug, Serialize)]
pub struct SweepMembership {
    pub id: crate::sweep::SweepId,
    /// Index of its config in the sweep's `configs`.
    pub config: usize,
    /// A sweep member pauses after this epoch (its early-stopping rung) until its sweep decides.
    pub run_until_epoch: Option<u32>,
}

/// How far a job has got.
#[derive(Debug, Serialize)]
pub struct ProgressView {
    /// Epochs completed.
    pub epoch: i64,
    pub epochs: u32,
    /// Updates completed.
    pub step: i64,
    pub total_steps: i64,
    /// `step / total_steps`, 1 once succeeded.
    pub fraction: f64,
}

/// Where to find the job's other resources.
#[derive(Debug, Serialize)]
pub struct Links {
    #[serde(rename = "self")]
    pub this: String,
    pub metrics: String,
    pub series: String,
    pub steps: String,
    pub events: String,
    pub weights: String,
}

impl JobView {
    /// Builds the view of `job` with its metric summary and queue position.
    pub fn new(job: JobRecord, summary: MetricSummary, queue_position: Option<i64>) -> Self {
        let fraction = if job.status == JobStatus::Succeeded {
            1.0
        } else if job.total_steps > 0 {
            (job.progress_step as f64 / job.total_steps as f64).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let base = format!("/v1/jobs/{}", job.id);
        JobView {
            id: job.id,
            name: job.spec.name.clone(),
            status: job.status,
            progress: ProgressView {
                epoch: job.progress_epoch,
                epochs: job.spec.epochs,
                step: job.progress_step,
                total_steps: job.total_steps,
                fraction,
            },
            spec: job.spec,
            warnings: job.warnings,
            created_at: job.created_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
            updated_at: job.updated_at,
            attempts: job.attempts,
            worker: job.worker,
            device: job.device,
            cancel_requested: job.cancel_requested,
            latest_metrics: summary.latest,
            best_metrics: summary.best,
            error: job.error,
            sweep: job.sweep.map(|(id, config)| SweepMembership {
                id,
                config,
                run_until_epoch: job.run_until_epoch,
            }),
            queue_position: queue_position.filter(|_| job.status == JobStatus::Queued),
            links: Links {
                metrics: format!("{base}/metrics"),
                series: format!("{base}/metrics?format=series"),
                steps: format!("{base}/steps"),
                events: format!("{base}/events"),
                weights: format!("{base}/weights"),
                this: base,
            },
        }
    }
}

impl From<JobDetails> for JobView {
    fn from(details: JobDetails) -> Self {
        JobView::new(details.record, details.summary, details.queue_position)
    }
}
