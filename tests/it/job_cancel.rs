//! Cancelling and deleting jobs that run: a cancel stops a job at its next batch, even one
//! that lands between the claim and the start; a running job cannot be deleted.

use std::time::Duration;

use async_trait::async_trait;
use lrlab::job::{JobId, JobStatus};
use lrlab::service::JobEvent;
use lrlab::store::{CancelOutcome, Claim, ClaimLimits, Store, StoreError, WorkerIdentity};
use serde_json::{json, Value};

use crate::hooked_store::{Hooked, Hooks};
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

/// Every claim is followed at once by a cancel of the claimed job: a client's cancel
/// landing after the claim but before the worker has registered its stop flag (so the
/// service finds no flag to raise). The claimed record still says no cancel was asked.
#[derive(Debug)]
struct CancelRightAfterClaim;

#[async_trait]
impl Hooks for CancelRightAfterClaim {
    async fn claim_next(
        &self,
        store: &Store,
        worker: &WorkerIdentity,
        ttl: Duration,
        limits: ClaimLimits,
    ) -> Result<Option<Claim>, StoreError> {
        let claimed = store.claim_next(worker, ttl, limits).await?;
        if let Some(claim) = &claimed {
            assert!(!claim.job.cancel_requested);
            assert_eq!(store.cancel(claim.job.id).await?, CancelOutcome::Requested);
        }
        Ok(claimed)
    }
}

#[tokio::test]
async fn a_cancel_between_the_claim_and_the_start_cancels_the_job_before_any_update() {
    let service = spawn_service(1, |store| Hooked::wrap(store, CancelRightAfterClaim), None).await;
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
