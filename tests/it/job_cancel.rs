//! Cancelling and deleting jobs that run: a cancel stops a job at its next batch, even one
//! that lands between the claim and the start; a running job cannot be deleted.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use lrlab::job::{JobError, JobId, JobStatus};
use lrlab::service::JobEvent;
use lrlab::store::{
    Backend, CancelOutcome, Claim, DeleteOutcome, Expired, HeldLease, JobFilter, JobRecord,
    JobStore, Lease, MetricSummary, NewJob, Renewal, Store, StoreError, Submitted, WorkerIdentity,
    WorkerInfo,
};
use lrlab::store::{
    NewSweep, StoredSweepEvent, SweepDeleteOutcome, SweepFilter, SweepRecord, SweepStatus,
    SweepStep, SweepSubmitted,
};
use lrlab::sweep::SweepId;
use lrlab::train::{EpochMetrics, EpochReport, StepRecord};
use serde_json::{json, Value};

use crate::support::{error_of, next_event, small_job, spawn_app, spawn_service};

/// A job of one update per epoch: its stored rows count its updates one by one.
fn one_update_per_epoch(epochs: u32) -> Value {
    json!({
        "epochs": epochs,
        "batch_size": 64,
        "train_limit": 64,
        "test_limit": 32,
        "schedule": {"kind": "constant", "lr": 0.05},
        "seed": 1
    })
}

#[tokio::test]
async fn a_running_job_stops_at_its_next_batch_when_canceled() {
    let app = spawn_app(1).await;
    let mut events = app.service().subscribe();
    let id = app.submit(&one_update_per_epoch(500)).await;
    let job_id = JobId::new(id);
    next_event(&mut events, Duration::from_secs(60), |event| {
        matches!(event, JobEvent::Epoch { job, metrics } if *job == job_id && metrics.epoch >= 3)
    })
    .await;

    let response = app.cancel(id).await;
    assert_eq!(response.status(), 202);
    // The answer is read after the stop flag went up: the updates it counts were done by
    // then, and at most one more (the one in flight) may finish after it.
    let at_cancel: Value = response.json().await.unwrap();
    assert_eq!(at_cancel["cancel_requested"], true, "{at_cancel}");
    let done_at_cancel = at_cancel["progress"]["step"].as_u64().unwrap();

    let job = app.wait_finished(id).await;
    assert_eq!(job["status"], "canceled", "{job}");
    let done = app.store().step_count(job_id).await.unwrap();
    assert!(done >= 3, "{done} updates");
    assert!(
        done <= done_at_cancel + 1,
        "canceled after {done_at_cancel} updates, it went on to {done}"
    );
    let rows = app.store().epoch_metrics(job_id).await.unwrap();
    assert_eq!(rows.len() as u64, done, "one update per epoch");
    assert_eq!(job["progress"]["step"].as_u64(), Some(done), "{job}");

    // The worker lives on and runs the next job.
    let next = app.submit(&small_job(1)).await;
    assert_eq!(app.wait_finished(next).await["status"], "succeeded");
    app.shutdown().await;
}

/// A store whose every claim is followed at once by a cancel of the claimed job: a client's
/// cancel landing after the claim but before the worker has registered its stop flag (so
/// the service finds no flag to raise). The claimed record still says no cancel was asked.
#[derive(Debug)]
struct CancelRightAfterClaim(Store);

#[async_trait]
impl JobStore for CancelRightAfterClaim {
    async fn claim_next(
        &self,
        worker: &WorkerIdentity,
        ttl: Duration,
    ) -> Result<Option<Claim>, StoreError> {
        let claimed = self.0.claim_next(worker, ttl).await?;
        if let Some(claim) = &claimed {
            assert!(!claim.job.cancel_requested);
            assert_eq!(self.0.cancel(claim.job.id).await?, CancelOutcome::Requested);
        }
        Ok(claimed)
    }

    // Everything else goes straight to the database.
    fn backend(&self) -> Backend {
        self.0.backend()
    }
    async fn submit(&self, job: NewJob<'_>) -> Result<Submitted, StoreError> {
        self.0.submit(job).await
    }
    async fn job(&self, id: JobId) -> Result<Option<JobRecord>, StoreError> {
        self.0.job(id).await
    }
    async fn list_jobs(&self, filter: &JobFilter) -> Result<(Vec<JobRecord>, i64), StoreError> {
        self.0.list_jobs(filter).await
    }
    async fn queue_position(&self, job: &JobRecord) -> Result<i64, StoreError> {
        self.0.queue_position(job).await
    }
    async fn heartbeat(&self, lease: &Lease, ttl: Duration) -> Result<Renewal, StoreError> {
        self.0.heartbeat(lease, ttl).await
    }
    async fn requeue_expired(&self) -> Result<Vec<Expired>, StoreError> {
        self.0.requeue_expired().await
    }
    async fn held_leases(&self) -> Result<Vec<HeldLease>, StoreError> {
        self.0.held_leases().await
    }
    async fn release(&self, lease: &Lease) -> Result<(), StoreError> {
        self.0.release(lease).await
    }
    async fn pause(&self, lease: &Lease, epochs_done: u32) -> Result<JobStatus, StoreError> {
        self.0.pause(lease, epochs_done).await
    }
    async fn submit_sweep(&self, sweep: NewSweep<'_>) -> Result<SweepSubmitted, StoreError> {
        self.0.submit_sweep(sweep).await
    }
    async fn sweep(&self, id: SweepId) -> Result<Option<SweepRecord>, StoreError> {
        self.0.sweep(id).await
    }
    async fn list_sweeps(
        &self,
        filter: &SweepFilter,
    ) -> Result<(Vec<SweepRecord>, i64), StoreError> {
        self.0.list_sweeps(filter).await
    }
    async fn unfinished_sweeps(&self) -> Result<Vec<SweepId>, StoreError> {
        self.0.unfinished_sweeps().await
    }
    async fn sweep_members(&self, id: SweepId) -> Result<Vec<JobRecord>, StoreError> {
        self.0.sweep_members(id).await
    }
    async fn sweep_metrics(
        &self,
        id: SweepId,
    ) -> Result<HashMap<JobId, Vec<EpochMetrics>>, StoreError> {
        self.0.sweep_metrics(id).await
    }
    async fn sweep_events(&self, id: SweepId) -> Result<Vec<StoredSweepEvent>, StoreError> {
        self.0.sweep_events(id).await
    }
    async fn apply_sweep_step(&self, step: SweepStep<'_>) -> Result<bool, StoreError> {
        self.0.apply_sweep_step(step).await
    }
    async fn request_sweep_cancel(&self, id: SweepId) -> Result<Option<SweepStatus>, StoreError> {
        self.0.request_sweep_cancel(id).await
    }
    async fn delete_sweep(&self, id: SweepId) -> Result<SweepDeleteOutcome, StoreError> {
        self.0.delete_sweep(id).await
    }
    async fn finish(
        &self,
        lease: &Lease,
        status: JobStatus,
        error: Option<&JobError>,
    ) -> Result<(), StoreError> {
        self.0.finish(lease, status, error).await
    }
    async fn cancel(&self, id: JobId) -> Result<CancelOutcome, StoreError> {
        self.0.cancel(id).await
    }
    async fn cancel_requested(&self, id: JobId) -> Result<bool, StoreError> {
        self.0.cancel_requested(id).await
    }
    async fn delete(&self, id: JobId) -> Result<DeleteOutcome, StoreError> {
        self.0.delete(id).await
    }
    async fn status(&self, id: JobId) -> Result<Option<JobStatus>, StoreError> {
        self.0.status(id).await
    }
    async fn set_progress(&self, lease: &Lease, epoch: u32, step: u64) -> Result<(), StoreError> {
        self.0.set_progress(lease, epoch, step).await
    }
    async fn set_total_steps(&self, lease: &Lease, total_steps: u64) -> Result<(), StoreError> {
        self.0.set_total_steps(lease, total_steps).await
    }
    async fn record_epoch(&self, lease: &Lease, report: &EpochReport) -> Result<(), StoreError> {
        self.0.record_epoch(lease, report).await
    }
    async fn epoch_metrics(&self, id: JobId) -> Result<Vec<EpochMetrics>, StoreError> {
        self.0.epoch_metrics(id).await
    }
    async fn steps(&self, id: JobId, from: u64, limit: u32) -> Result<Vec<StepRecord>, StoreError> {
        self.0.steps(id, from, limit).await
    }
    async fn step_count(&self, id: JobId) -> Result<u64, StoreError> {
        self.0.step_count(id).await
    }
    async fn metric_summaries(
        &self,
        ids: &[JobId],
    ) -> Result<HashMap<JobId, MetricSummary>, StoreError> {
        self.0.metric_summaries(ids).await
    }
    async fn worker_heartbeat(
        &self,
        worker: &WorkerIdentity,
        job: Option<JobId>,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.0.worker_heartbeat(worker, job, ttl).await
    }
    async fn worker_stopped(&self, worker: &WorkerIdentity) -> Result<(), StoreError> {
        self.0.worker_stopped(worker).await
    }
    async fn workers(&self) -> Result<Vec<WorkerInfo>, StoreError> {
        self.0.workers().await
    }
    async fn check_host(&self, host: &str) -> Result<(), StoreError> {
        self.0.check_host(host).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.0.ping().await
    }
    async fn close(&self) {
        self.0.close().await
    }
}

#[tokio::test]
async fn a_cancel_between_the_claim_and_the_start_cancels_the_job_before_any_update() {
    let service = spawn_service(
        1,
        |sqlite| std::sync::Arc::new(CancelRightAfterClaim(sqlite)),
        None,
    )
    .await;
    let id = service.submit(&small_job(3)).await;
    let job = service.wait_finished(id).await;
    assert_eq!(job.record.status, JobStatus::Canceled, "{job:?}");
    assert_eq!(job.record.error, None);
    assert_eq!(service.store.step_count(id).await.unwrap(), 0);
    assert!(service.store.epoch_metrics(id).await.unwrap().is_empty());
    service.shutdown().await;
}

#[tokio::test]
async fn a_running_job_cannot_be_deleted() {
    let app = spawn_app(1).await;
    let mut events = app.service().subscribe();
    let id = app.submit(&small_job(1000)).await;
    let job_id = JobId::new(id);
    // Epoch 1's checkpoint is written before epoch 2 is trained: a checkpoint to lose.
    next_event(&mut events, Duration::from_secs(60), |event| {
        matches!(event, JobEvent::Epoch { job, metrics } if *job == job_id && metrics.epoch >= 2)
    })
    .await;
    let artifacts = app.dir.path().join("artifacts").join(id.to_string());
    assert!(artifacts
        .join(lrlab::train::checkpoint::META_FILE)
        .is_file());

    let (status, error) = error_of(app.delete(id).await).await;
    assert_eq!(status, 409, "{error}");
    assert_eq!(error["code"], "job_not_finished");
    assert!(
        error["message"].as_str().unwrap().contains("running"),
        "{error}"
    );
    let job = app.job(id).await;
    assert_eq!(job["status"], "running", "the job must be untouched: {job}");
    assert!(
        artifacts
            .join(lrlab::train::checkpoint::META_FILE)
            .is_file(),
        "the running job's checkpoint must be kept"
    );

    assert_eq!(app.cancel(id).await.status(), 202);
    assert_eq!(app.wait_finished(id).await["status"], "canceled");
    assert_eq!(app.delete(id).await.status(), 204);
    app.shutdown().await;
}
