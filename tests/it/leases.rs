//! Leases seen from a running server: what its workers do when another process takes a
//! job away, cancels it through its own API, stops a sweep's member, or lets a lease expire.
//!
//! The "other process" is played by the test through the store, as a second lrlab
//! process on another machine would act through the shared database.

use std::future::Future;
use std::time::Duration;

use lrlab::job::{JobId, JobStatus};
use lrlab::store::{
    CancelOutcome, ClaimLimits, LeaseConfig, MemberUpdate, SweepStatus, SweepStep, WorkerIdentity,
};
use lrlab::sweep::SweepId;
use serde_json::{json, Value};

use crate::support::{small_job, spawn_app_from, test_config, write_data, TestApp};

/// Fast heartbeats, so what a heartbeat notices is noticed within the test.
const QUICK: LeaseConfig = LeaseConfig {
    heartbeat: Duration::from_millis(100),
    ttl: Duration::from_secs(30),
};

async fn spawn_quick_app(workers: usize) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = write_data(dir.path());
    let mut config = test_config(dir.path(), workers, data);
    config.node.lease = QUICK;
    spawn_app_from(config, dir).await
}

fn elsewhere(name: &str) -> WorkerIdentity {
    WorkerIdentity {
        name: name.to_string(),
        host: "another-machine".to_string(),
        pid: 777,
        device: "cuda:0".to_string(),
    }
}

/// Polls `check` until it yields a value; panics after a minute (a hang, not a timing).
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_job_was_taken_away_stops_it_and_writes_nothing_more() {
    let app = spawn_quick_app(1).await;
    let id = JobId::new(app.submit(&small_job(1000)).await);
    let store = app.store().clone();
    eventually("the first epoch", || async {
        (!store.epoch_metrics(id).await.unwrap().is_empty()).then_some(())
    })
    .await;

    // Another process found the lease expired and took the job. Between the release and
    // the thief's claim the server's worker may lose its lease, stop and claim the job
    // again itself (it is idle then): that is a correct queue, so take it away again.
    let thief = elsewhere("thief");
    let taken = eventually("the thief's claim", || {
        let store = store.clone();
        let thief = thief.clone();
        async move {
            let held = store.held_leases().await.unwrap();
            let ours = held.iter().find(|h| h.lease.job == id)?;
            // Refused when the lease changed hands since it was read: try again.
            store.release(&ours.lease).await.ok()?;
            store
                .claim_next(&thief, Duration::from_secs(3600), ClaimLimits::NONE)
                .await
                .unwrap()
                .filter(|claim| claim.job.id == id)
        }
    })
    .await;
    assert!(taken.job.attempts >= 2, "{}", taken.job.attempts);

    // The server's worker loses its lease at its next write or heartbeat, stops the
    // job, and goes back to the queue.
    eventually("the server's worker to be idle", || async {
        let workers = store.workers().await.unwrap();
        workers
            .iter()
            .any(|w| w.worker.name == "worker-0" && w.job.is_none())
            .then_some(())
    })
    .await;
    let epochs_then = store.epoch_metrics(id).await.unwrap().len();
    let job = store.job(id).await.unwrap().unwrap();
    assert_eq!(
        job.status,
        JobStatus::Running,
        "not settled by the old worker"
    );
    assert_eq!(job.worker.as_deref(), Some("thief"));
    assert_eq!(job.attempts, taken.job.attempts);

    // A job queued now runs on the server's worker, which then is demonstrably alive
    // and past the lost job: still no write of it landed.
    let next = app.submit(&small_job(1)).await;
    assert_eq!(app.wait_finished(next).await["status"], "succeeded");
    assert_eq!(store.epoch_metrics(id).await.unwrap().len(), epochs_then);
    store
        .finish(&taken.lease, JobStatus::Succeeded, None)
        .await
        .unwrap();
    assert_eq!(app.job(id.get()).await["status"], "succeeded");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_through_another_process_reaches_the_worker_with_its_heartbeat() {
    let app = spawn_quick_app(1).await;
    let id = app.submit(&small_job(1000)).await;
    app.wait_for(id, Duration::from_secs(60), |s| s == "running")
        .await;
    // Set in the database only, as another API replica would: this process's stop
    // flag is not touched.
    assert_eq!(
        app.store().cancel(JobId::new(id)).await.unwrap(),
        CancelOutcome::Requested
    );
    let job = app.wait_finished(id).await;
    assert_eq!(job["status"], "canceled", "{job}");
    assert!(job["progress"]["epoch"].as_i64().unwrap() < 1000);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_stop_decided_in_another_process_reaches_the_worker_with_its_heartbeat() {
    let app = spawn_quick_app(1).await;
    let body = json!({
        "base": {"epochs": 1000, "batch_size": 64, "schedule": {"kind": "constant", "lr": 0.05}},
        "grid": {"schedule.lr": [0.05]},
        "seeds": [0]
    });
    let response = app.post_json("/v1/sweeps", &body).await;
    assert_eq!(response.status(), 201);
    let sweep: Value = response.json().await.unwrap();
    let sweep = SweepId::new(sweep["id"].as_i64().unwrap());
    let store = app.store().clone();
    let member = store.sweep_members(sweep).await.unwrap()[0].id;
    app.wait_for(member.get(), Duration::from_secs(60), |s| s == "running")
        .await;
    // A coordinator elsewhere stops the member: in the database only, so this process's
    // stop flag is not touched.
    let stopped = [MemberUpdate::StopEarly { job: member }];
    eventually("the stop to be stored", || async {
        let next_seq = store.sweep_events(sweep).await.unwrap().len() as u64;
        store
            .apply_sweep_step(SweepStep {
                sweep,
                next_seq,
                events: &[],
                updates: &stopped,
                status: SweepStatus::Running,
            })
            .await
            .unwrap()
            .then_some(())
    })
    .await;
    let job = app
        .wait_for(member.get(), Duration::from_secs(60), |s| {
            s == "stopped_early"
        })
        .await;
    assert!(job["progress"]["epoch"].as_i64().unwrap() < 1000, "{job}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_worker_died_is_requeued_when_its_lease_expires() {
    // An API-only server: nothing here runs jobs, so the expiry sweep is seen alone.
    let app = spawn_quick_app(0).await;
    let id = app.submit(&small_job(1)).await;
    let dead = elsewhere("dead");
    let claim = app
        .store()
        .claim_next(&dead, Duration::ZERO, ClaimLimits::NONE)
        .await
        .unwrap()
        .expect("the job");
    assert_eq!(claim.job.id.get(), id);
    let job = app
        .wait_for(id, Duration::from_secs(60), |s| s == "queued")
        .await;
    assert_eq!(job["attempts"], 1);
    assert!(job["worker"].is_null(), "{job}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_releases_the_lease_and_removes_the_worker_at_once() {
    let app = spawn_quick_app(1).await;
    let id = app.submit(&small_job(1000)).await;
    app.wait_for(id, Duration::from_secs(60), |s| s == "running")
        .await;
    let store = app.store().clone();
    app.service().shutdown().await;
    let job = store.job(JobId::new(id)).await.unwrap().unwrap();
    assert_eq!(
        job.status,
        JobStatus::Queued,
        "released, not left to expire"
    );
    assert!(store.held_leases().await.unwrap().is_empty());
    assert!(store.workers().await.unwrap().is_empty());
    app.shutdown().await;
}
