//! Jobs that fail inside training: a panic, a divergence. Each ends `failed` with a stable
//! code and a sentence, and the worker carries on with the next job. And a database that
//! stops answering progress writes, which training does not wait for.

use std::sync::Arc;

use async_trait::async_trait;
use lrlab::job::{FailureCode, JobId, JobStatus};
use lrlab::service::FaultHook;
use lrlab::store::{Lease, Store, StoreError};
use serde_json::json;

use crate::hooked_store::{Hooked, Hooks};
use crate::support::{small_job, spawn_app, spawn_service};

#[tokio::test]
async fn a_panic_inside_training_fails_the_job_as_internal_panic_and_the_worker_carries_on() {
    // The first job panics at the end of its first epoch; every other job trains normally.
    let fault: FaultHook = Arc::new(|job: JobId, epoch: u32| {
        if job == JobId::new(1) && epoch == 1 {
            panic!("injected fault in job {job} at epoch {epoch}");
        }
    });
    let service = spawn_service(1, |store| store, Some(fault)).await;
    let first = service.submit(&small_job(2)).await;
    assert_eq!(first, JobId::new(1));
    let second = service.submit(&small_job(2)).await;

    let failed = service.wait_finished(first).await;
    assert_eq!(failed.record.status, JobStatus::Failed, "{failed:?}");
    let error = failed.record.error.expect("a failure carries its error");
    assert_eq!(error.code, FailureCode::InternalPanic);
    assert!(
        error.message.contains("injected fault in job 1 at epoch 1"),
        "{}",
        error.message
    );
    assert!(
        service.store.epoch_metrics(first).await.unwrap().is_empty(),
        "the epoch that panicked must not be stored"
    );

    let succeeded = service.wait_finished(second).await;
    assert_eq!(
        succeeded.record.status,
        JobStatus::Succeeded,
        "{succeeded:?}"
    );
    assert_eq!(
        succeeded.record.worker, failed.record.worker,
        "the same worker"
    );
    assert_eq!(service.store.epoch_metrics(second).await.unwrap().len(), 2);
    service.shutdown().await;
}

/// One update per epoch at a rate of 1e16: the update's batch loss is finite (computed before
/// it), the test loss after it is not. This used to end with a raw database error.
#[tokio::test]
async fn a_job_whose_test_loss_is_nan_fails_as_diverged_with_a_sentence() {
    let app = spawn_app(1).await;
    let id = app
        .submit(&json!({
            "epochs": 2,
            "train_limit": 256,
            "test_limit": 100,
            "schedule": {"kind": "constant", "lr": 1e16}
        }))
        .await;
    let job = app.wait_finished(id).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "diverged", "{job}");
    let message = job["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("training diverged: the test loss of epoch 1 is "),
        "{message}"
    );
    assert!(!message.contains("constraint"), "{message}");
    assert!(app
        .store()
        .epoch_metrics(JobId::new(id))
        .await
        .unwrap()
        .is_empty());
    // The worker lives on.
    let next = app.submit(&small_job(1)).await;
    assert_eq!(app.wait_finished(next).await["status"], "succeeded");
    app.shutdown().await;
}

/// Progress writes that never return, as on a database that stopped answering them.
#[derive(Debug)]
struct ProgressNeverReturns;

#[async_trait]
impl Hooks for ProgressNeverReturns {
    async fn set_progress(
        &self,
        _store: &Store,
        _lease: &Lease,
        _epoch: u32,
        _step: u64,
    ) -> Result<(), StoreError> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn training_does_not_wait_for_a_progress_write_that_never_returns() {
    let service = spawn_service(1, |store| Hooked::wrap(store, ProgressNeverReturns), None).await;
    // Eight updates: the first one's progress write hangs, the later ones are skipped.
    let id = service.submit(&small_job(1)).await;
    let job = service.wait_finished(id).await;
    assert_eq!(job.record.status, JobStatus::Succeeded, "{job:?}");
    assert_eq!(service.store.epoch_metrics(id).await.unwrap().len(), 1);
    assert_eq!(
        job.record.progress_epoch, 1,
        "the epoch's own write moves progress on"
    );
    service.shutdown().await;
}
