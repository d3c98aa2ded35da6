//! The job store's contract, run against SQLite and against PostgreSQL.
//!
//! Every test below is an `async fn(Store)`; `on_both_backends!` runs each one twice,
//! as `store::sqlite::<name>` on a temp file and `store::postgres::<name>` on a fresh
//! PostgreSQL database (see `test_db`). Both backends must pass the same tests: that
//! is what lets the service ignore which one it runs on. Sweeps have their own half
//! (`store::sweeps::…`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use lrlab::job::{JobError, JobId, JobPlan, JobSpec, JobStatus};
use lrlab::store::{
    self, Backend, CancelOutcome, Claim, ClaimLimits, DeleteOutcome, JobFilter, JobRecord, Lease,
    LeaseToken, NewJob, Store, StoreError, Submitted, WorkerActivity, WorkerIdentity,
};
use lrlab::train::{EpochMetrics, EpochReport, StepRecord};
use serde_json::json;

use crate::test_db::TestDb;

/// Long enough never to expire during a test.
const TTL: Duration = Duration::from_secs(3600);

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = crate::test_db::TestDb::sqlite();
                    super::$name(super::open(&db).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = crate::test_db::TestDb::postgres().await else {
                        return;
                    };
                    super::$name(super::open(&db).await).await;
                }
            )*
        }
    };
}

on_both_backends!(
    submissions_are_created_replayed_by_key_and_a_reused_key_is_refused,
    concurrent_submissions_with_one_key_create_one_job,
    listings_filter_by_status_and_name_newest_first_and_page_with_the_cursor,
    queue_positions_count_the_jobs_claimed_first,
    claims_take_the_highest_priority_first_then_the_oldest,
    eight_concurrent_claimers_take_each_of_200_jobs_exactly_once,
    cancel_and_delete_answer_by_the_job_status,
    recording_an_epoch_twice_stores_it_once,
    steps_page_from_an_update_and_a_diverged_loss_reads_back_as_nan,
    summaries_hold_the_latest_and_the_best_epoch_of_each_job,
    an_expired_lease_requeues_the_job_and_the_next_claim_is_attempt_two,
    an_expired_lease_with_a_pending_cancel_cancels_the_job,
    a_stale_lease_cannot_write_and_changes_nothing,
    finishing_ends_the_lease,
    heartbeats_extend_the_lease_and_report_a_pending_cancel,
    held_leases_name_their_workers_and_release_requeues_at_once,
    workers_are_listed_while_their_heartbeats_last,
    single_host_backends_refuse_a_database_another_host_uses,
    published_messages_reach_subscribers_in_order_where_the_backend_carries_them,
    ping_answers,
);

mod fair_share;
mod sweeps;
mod tenants;

async fn open(db: &TestDb) -> Store {
    store::open(&db.url).await.expect("open the store")
}

fn spec(name: &str, priority: i64) -> JobSpec {
    let request = json!({
        "name": name,
        "epochs": 2,
        "priority": priority,
        "schedule": {"kind": "constant", "lr": 0.1},
        "seed": 7
    });
    JobPlan::from_json(&request, || 0)
        .expect("a valid job")
        .into_spec()
}

async fn submit(store: &Store, name: &str, priority: i64) -> JobRecord {
    submit_as(store, None, name, priority).await
}

/// Queues a new job of `tenant` (the default tenant for `None`).
async fn submit_as(store: &Store, tenant: Option<&str>, name: &str, priority: i64) -> JobRecord {
    let spec = spec(name, priority);
    match store
        .submit(NewJob {
            spec: &spec,
            warnings: &[],
            total_steps: 20,
            idempotency: None,
            tenant,
        })
        .await
        .expect("submit")
    {
        Submitted::Created(job) => job,
        other => panic!("expected a new job, got {other:?}"),
    }
}

fn worker(name: &str) -> WorkerIdentity {
    WorkerIdentity {
        name: name.to_string(),
        host: "test-host".to_string(),
        pid: 4242,
        device: "cpu".to_string(),
    }
}

async fn claim(store: &Store, ttl: Duration) -> Claim {
    store
        .claim_next(&worker("w"), ttl, ClaimLimits::NONE)
        .await
        .expect("claim")
        .expect("a queued job")
}

fn metrics(epoch: u32, test_acc: f64) -> EpochMetrics {
    EpochMetrics {
        epoch,
        train_loss: 1.0 / f64::from(epoch),
        train_acc: 0.5,
        test_loss: 0.9,
        test_acc,
        lr: 0.1,
        lr_min: 0.1,
        lr_max: 0.1,
        seconds: 1.5,
        eval_seconds: 0.25,
        examples_per_sec: 1000.0,
    }
}

/// Epoch `epoch` of a job with `per_epoch` updates per epoch.
fn report(epoch: u32, per_epoch: u64, test_acc: f64) -> EpochReport {
    let first = u64::from(epoch - 1) * per_epoch;
    EpochReport {
        metrics: metrics(epoch, test_acc),
        steps: (first..first + per_epoch)
            .map(|step| StepRecord {
                step,
                lr: 0.1,
                loss: 2.0 - step as f64 / 100.0,
            })
            .collect(),
    }
}

fn is_lease_lost(result: Result<impl std::fmt::Debug, StoreError>) -> bool {
    matches!(result, Err(StoreError::LeaseLost { .. }))
}

async fn submissions_are_created_replayed_by_key_and_a_reused_key_is_refused(store: Store) {
    let spec = spec("keyed", 0);
    let new = |hash: &'static str| NewJob {
        spec: &spec,
        warnings: &[],
        total_steps: 20,
        idempotency: Some(("key-1", hash)),
        tenant: None,
    };
    let Submitted::Created(first) = store.submit(new("hash-a")).await.unwrap() else {
        panic!("the first submission creates the job");
    };
    assert_eq!(first.status, JobStatus::Queued);
    assert_eq!(first.spec, spec);
    assert_eq!((first.attempts, first.total_steps), (0, 20));
    match store.submit(new("hash-a")).await.unwrap() {
        Submitted::Replayed(again) => assert_eq!(again, first),
        other => panic!("a retry replays the first job, got {other:?}"),
    }
    match store.submit(new("hash-b")).await.unwrap() {
        Submitted::KeyReused { existing } => assert_eq!(existing, first.id),
        other => panic!("another request under the key is refused, got {other:?}"),
    }
    assert_eq!(store.job(first.id).await.unwrap(), Some(first));
    assert_eq!(store.job(JobId::new(999_999)).await.unwrap(), None);
}

async fn concurrent_submissions_with_one_key_create_one_job(store: Store) {
    let spec = spec("raced", 0);
    let outcomes = join_all((0..16).map(|_| {
        store.submit(NewJob {
            spec: &spec,
            warnings: &[],
            total_steps: 20,
            idempotency: Some(("race", "same-body")),
            tenant: None,
        })
    }))
    .await;
    let mut created = 0;
    let mut ids = HashSet::new();
    for outcome in outcomes {
        match outcome.expect("every racer gets an answer") {
            Submitted::Created(job) => {
                created += 1;
                ids.insert(job.id);
            }
            Submitted::Replayed(job) => {
                ids.insert(job.id);
            }
            Submitted::KeyReused { .. } => panic!("the same body is never a reused key"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(ids.len(), 1, "every racer sees the one job");
    let (_, total) = store.list_jobs(&page(10)).await.unwrap();
    assert_eq!(total, 1);
}

fn page(limit: u32) -> JobFilter {
    JobFilter {
        limit,
        ..JobFilter::default()
    }
}

async fn listings_filter_by_status_and_name_newest_first_and_page_with_the_cursor(store: Store) {
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            submit(&store, if i % 2 == 0 { "even" } else { "odd" }, 0)
                .await
                .id,
        );
    }
    // The oldest job runs.
    let running = claim(&store, TTL).await;
    assert_eq!(running.job.id, ids[0]);

    let (all, total) = store.list_jobs(&page(10)).await.unwrap();
    assert_eq!(total, 5);
    let newest_first: Vec<JobId> = ids.iter().rev().copied().collect();
    assert_eq!(all.iter().map(|j| j.id).collect::<Vec<_>>(), newest_first);

    let (first_page, total) = store.list_jobs(&page(2)).await.unwrap();
    assert_eq!(total, 5, "the total counts every page");
    assert_eq!(
        first_page.iter().map(|j| j.id).collect::<Vec<_>>(),
        &newest_first[..2]
    );
    let next = JobFilter {
        before: Some(first_page[1].id),
        ..page(2)
    };
    let (second_page, _) = store.list_jobs(&next).await.unwrap();
    assert_eq!(
        second_page.iter().map(|j| j.id).collect::<Vec<_>>(),
        &newest_first[2..4]
    );

    let queued_evens = JobFilter {
        statuses: vec![JobStatus::Queued],
        name: Some("even".to_string()),
        ..page(10)
    };
    let (jobs, total) = store.list_jobs(&queued_evens).await.unwrap();
    assert_eq!(total, 2, "jobs 3 and 5; job 1 runs");
    assert_eq!(
        jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![ids[4], ids[2]]
    );

    let either = JobFilter {
        statuses: vec![JobStatus::Running, JobStatus::Succeeded],
        ..page(10)
    };
    let (jobs, total) = store.list_jobs(&either).await.unwrap();
    assert_eq!((jobs.len(), total), (1, 1));
    assert_eq!(jobs[0].status, JobStatus::Running);
}

async fn queue_positions_count_the_jobs_claimed_first(store: Store) {
    let low = submit(&store, "low", 0).await;
    let high = submit(&store, "high", 5).await;
    let low_later = submit(&store, "low-later", 0).await;
    assert_eq!(store.queue_position(&high).await.unwrap(), 0);
    assert_eq!(store.queue_position(&low).await.unwrap(), 1);
    assert_eq!(store.queue_position(&low_later).await.unwrap(), 2);
    claim(&store, TTL).await;
    assert_eq!(store.queue_position(&low).await.unwrap(), 0);
    assert_eq!(store.queue_position(&low_later).await.unwrap(), 1);
}

async fn claims_take_the_highest_priority_first_then_the_oldest(store: Store) {
    let a = submit(&store, "a", 0).await.id;
    let b = submit(&store, "b", 3).await.id;
    let c = submit(&store, "c", 0).await.id;
    let d = submit(&store, "d", 3).await.id;
    let e = submit(&store, "e", -1).await.id;
    let mut order = Vec::new();
    while let Some(claim) = store
        .claim_next(&worker("w"), TTL, ClaimLimits::NONE)
        .await
        .unwrap()
    {
        assert_eq!(claim.job.status, JobStatus::Running);
        assert_eq!(claim.job.attempts, 1);
        assert_eq!(claim.job.worker.as_deref(), Some("w"));
        assert_eq!(claim.job.device.as_deref(), Some("cpu"));
        assert!(claim.job.started_at.is_some());
        order.push(claim.job.id);
    }
    assert_eq!(order, vec![b, d, a, c, e]);
}

async fn eight_concurrent_claimers_take_each_of_200_jobs_exactly_once(store: Store) {
    let mut submitted = HashSet::new();
    for i in 0..200 {
        submitted.insert(submit(&store, &format!("job-{i}"), i % 3).await.id);
    }
    let claimers = (0..8).map(|n| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let me = worker(&format!("claimer-{n}"));
            let mut taken = Vec::new();
            while let Some(claim) = store
                .claim_next(&me, TTL, ClaimLimits::NONE)
                .await
                .expect("claim")
            {
                taken.push(claim.job.id);
            }
            taken
        })
    });
    let mut claimed = Vec::new();
    for taken in join_all(claimers).await {
        claimed.extend(taken.expect("a claimer"));
    }
    assert_eq!(claimed.len(), 200, "no job claimed twice, none left behind");
    assert_eq!(claimed.into_iter().collect::<HashSet<_>>(), submitted);
    let running = JobFilter {
        statuses: vec![JobStatus::Running],
        ..page(1000)
    };
    let (jobs, total) = store.list_jobs(&running).await.unwrap();
    assert_eq!(total, 200);
    assert!(jobs.iter().all(|job| job.attempts == 1));
}

async fn cancel_and_delete_answer_by_the_job_status(store: Store) {
    let queued = submit(&store, "queued", 0).await.id;
    let running = submit(&store, "running", 0).await.id;
    // Claim `queued`'s successor first by giving the queue an order: claim both, then
    // release the first.
    let first = claim(&store, TTL).await;
    let second = claim(&store, TTL).await;
    assert_eq!((first.job.id, second.job.id), (queued, running));
    store.release(&first.lease).await.unwrap();

    assert_eq!(
        store.delete(queued).await.unwrap(),
        DeleteOutcome::NotFinished(JobStatus::Queued)
    );
    assert_eq!(store.cancel(queued).await.unwrap(), CancelOutcome::Canceled);
    assert_eq!(
        store.status(queued).await.unwrap(),
        Some(JobStatus::Canceled)
    );
    assert_eq!(
        store.cancel(queued).await.unwrap(),
        CancelOutcome::AlreadyFinished(JobStatus::Canceled)
    );

    assert!(!store.cancel_requested(running).await.unwrap());
    assert_eq!(
        store.cancel(running).await.unwrap(),
        CancelOutcome::Requested
    );
    assert!(store.cancel_requested(running).await.unwrap());
    assert_eq!(
        store.status(running).await.unwrap(),
        Some(JobStatus::Running)
    );
    assert_eq!(
        store.delete(running).await.unwrap(),
        DeleteOutcome::NotFinished(JobStatus::Running)
    );
    store
        .record_epoch(&second.lease, &report(1, 4, 0.5))
        .await
        .unwrap();
    store
        .finish(&second.lease, JobStatus::Canceled, None)
        .await
        .unwrap();
    assert_eq!(store.delete(running).await.unwrap(), DeleteOutcome::Deleted);
    assert_eq!(store.job(running).await.unwrap(), None);
    assert!(store.epoch_metrics(running).await.unwrap().is_empty());
    assert_eq!(store.step_count(running).await.unwrap(), 0);
    assert_eq!(
        store.delete(running).await.unwrap(),
        DeleteOutcome::NotFound
    );
    assert_eq!(
        store.cancel(running).await.unwrap(),
        CancelOutcome::NotFound
    );
    assert_eq!(store.status(running).await.unwrap(), None);
}

async fn recording_an_epoch_twice_stores_it_once(store: Store) {
    let job = submit(&store, "upsert", 0).await.id;
    let claim = claim(&store, TTL).await;
    store
        .record_epoch(&claim.lease, &report(1, 8, 0.4))
        .await
        .unwrap();
    // The epoch is redone after a crash: same epoch, same steps, new values.
    let mut redone = report(1, 8, 0.45);
    redone.steps[0].lr = 0.2;
    store.record_epoch(&claim.lease, &redone).await.unwrap();
    store
        .record_epoch(&claim.lease, &report(2, 8, 0.6))
        .await
        .unwrap();

    let epochs = store.epoch_metrics(job).await.unwrap();
    assert_eq!(epochs, vec![metrics(1, 0.45), metrics(2, 0.6)]);
    assert_eq!(store.step_count(job).await.unwrap(), 16);
    assert_eq!(store.steps(job, 0, 1).await.unwrap()[0].lr, 0.2);
    let record = store.job(job).await.unwrap().unwrap();
    assert_eq!((record.progress_epoch, record.progress_step), (2, 16));
}

async fn steps_page_from_an_update_and_a_diverged_loss_reads_back_as_nan(store: Store) {
    let job = submit(&store, "steps", 0).await.id;
    let claim = claim(&store, TTL).await;
    let mut first = report(1, 50, 0.4);
    first.steps[3].loss = f64::NAN;
    first.steps[4].loss = f64::INFINITY;
    store.record_epoch(&claim.lease, &first).await.unwrap();
    store
        .record_epoch(&claim.lease, &report(2, 50, 0.5))
        .await
        .unwrap();

    assert_eq!(store.step_count(job).await.unwrap(), 100);
    let page = store.steps(job, 45, 10).await.unwrap();
    assert_eq!(
        page.iter().map(|s| s.step).collect::<Vec<_>>(),
        (45..55).collect::<Vec<_>>()
    );
    assert_eq!(page[0], report(1, 50, 0.4).steps[45]);
    let head = store.steps(job, 0, 5).await.unwrap();
    assert!(head[3].loss.is_nan(), "a NaN loss is stored as NULL");
    assert!(head[4].loss.is_nan(), "so is an infinite one");
    assert_eq!(head[2].loss, first.steps[2].loss);
    assert!(store.steps(job, 100, 10).await.unwrap().is_empty());
    assert_eq!(store.steps(job, 98, 10).await.unwrap().len(), 2);
}

async fn summaries_hold_the_latest_and_the_best_epoch_of_each_job(store: Store) {
    let one = submit(&store, "one", 0).await.id;
    let two = submit(&store, "two", 0).await.id;
    let idle = submit(&store, "idle", 0).await.id;
    let first = claim(&store, TTL).await;
    let second = claim(&store, TTL).await;
    for (epoch, acc) in [(1, 0.5), (2, 0.7), (3, 0.7), (4, 0.6)] {
        store
            .record_epoch(&first.lease, &report(epoch, 2, acc))
            .await
            .unwrap();
    }
    store
        .record_epoch(&second.lease, &report(1, 2, 0.3))
        .await
        .unwrap();

    let summaries = store.metric_summaries(&[one, two, idle]).await.unwrap();
    let one = &summaries[&one];
    assert_eq!(one.latest, Some(metrics(4, 0.6)));
    assert_eq!(one.best, Some(metrics(2, 0.7)), "the earliest of the best");
    assert_eq!(summaries[&two].latest, Some(metrics(1, 0.3)));
    assert_eq!(summaries[&two].best, Some(metrics(1, 0.3)));
    assert!(!summaries.contains_key(&idle));
    assert!(store.metric_summaries(&[]).await.unwrap().is_empty());
}

async fn an_expired_lease_requeues_the_job_and_the_next_claim_is_attempt_two(store: Store) {
    let job = submit(&store, "abandoned", 0).await.id;
    let lapsed = claim(&store, Duration::ZERO).await;
    store
        .record_epoch(&lapsed.lease, &report(1, 4, 0.5))
        .await
        .unwrap();

    let expired = store.requeue_expired().await.unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(
        (expired[0].job, expired[0].status),
        (job, JobStatus::Queued)
    );
    let queued = store.job(job).await.unwrap().unwrap();
    assert_eq!(queued.status, JobStatus::Queued);
    assert_eq!(queued.worker, None);
    assert!(store.held_leases().await.unwrap().is_empty());
    assert!(store.requeue_expired().await.unwrap().is_empty(), "once");

    let again = store
        .claim_next(&worker("rescuer"), TTL, ClaimLimits::NONE)
        .await
        .unwrap()
        .expect("the job is claimable again");
    assert_eq!(again.job.id, job);
    assert_eq!(again.job.attempts, 2);
    assert_eq!(again.job.worker.as_deref(), Some("rescuer"));
    assert_ne!(again.lease.token, lapsed.lease.token);
    assert_eq!(again.job.started_at, queued.started_at, "first start kept");
    assert_eq!(again.job.progress_epoch, 1, "its stored epoch is kept");
    assert!(
        store.requeue_expired().await.unwrap().is_empty(),
        "a live lease stays"
    );
    store
        .record_epoch(&again.lease, &report(2, 4, 0.6))
        .await
        .unwrap();
    store
        .finish(&again.lease, JobStatus::Succeeded, None)
        .await
        .unwrap();
    assert_eq!(store.epoch_metrics(job).await.unwrap().len(), 2);
}

async fn an_expired_lease_with_a_pending_cancel_cancels_the_job(store: Store) {
    let job = submit(&store, "canceled-then-lost", 0).await.id;
    claim(&store, Duration::ZERO).await;
    assert_eq!(store.cancel(job).await.unwrap(), CancelOutcome::Requested);
    let expired = store.requeue_expired().await.unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].status, JobStatus::Canceled);
    let record = store.job(job).await.unwrap().unwrap();
    assert_eq!(record.status, JobStatus::Canceled);
    assert!(record.finished_at.is_some());
    assert!(store
        .claim_next(&worker("w"), TTL, ClaimLimits::NONE)
        .await
        .unwrap()
        .is_none());
}

async fn a_stale_lease_cannot_write_and_changes_nothing(store: Store) {
    let job = submit(&store, "fenced", 0).await.id;
    let stale = claim(&store, Duration::ZERO).await.lease;
    store.requeue_expired().await.unwrap();
    let owner = claim(&store, TTL).await.lease;
    store
        .record_epoch(&owner, &report(1, 4, 0.5))
        .await
        .unwrap();
    let before = store.job(job).await.unwrap().unwrap();

    assert!(is_lease_lost(
        store.record_epoch(&stale, &report(2, 4, 0.9)).await
    ));
    assert!(is_lease_lost(store.set_progress(&stale, 7, 70).await));
    assert!(is_lease_lost(store.set_total_steps(&stale, 999).await));
    assert!(is_lease_lost(store.heartbeat(&stale, TTL).await));
    assert!(is_lease_lost(
        store
            .finish(
                &stale,
                JobStatus::Failed,
                Some(&JobError::new(lrlab::job::FailureCode::Internal, "stale"))
            )
            .await
    ));
    assert!(is_lease_lost(store.release(&stale).await));
    let forged = Lease {
        token: LeaseToken::random(),
        ..owner.clone()
    };
    assert!(is_lease_lost(store.set_progress(&forged, 1, 1).await));

    assert_eq!(
        store.job(job).await.unwrap().unwrap(),
        before,
        "nothing changed"
    );
    assert_eq!(
        store.epoch_metrics(job).await.unwrap(),
        vec![metrics(1, 0.5)]
    );
    assert_eq!(
        store.step_count(job).await.unwrap(),
        4,
        "no step of the stale epoch"
    );
    // The owner's writes still go through.
    store.set_progress(&owner, 1, 6).await.unwrap();
    store.set_total_steps(&owner, 8).await.unwrap();
    let after = store.job(job).await.unwrap().unwrap();
    assert_eq!((after.progress_step, after.total_steps), (6, 8));
}

async fn finishing_ends_the_lease(store: Store) {
    let job = submit(&store, "finished", 0).await.id;
    let lease = claim(&store, TTL).await.lease;
    let error = JobError::new(lrlab::job::FailureCode::Diverged, "loss is NaN");
    store
        .finish(&lease, JobStatus::Failed, Some(&error))
        .await
        .unwrap();
    let record = store.job(job).await.unwrap().unwrap();
    assert_eq!(record.status, JobStatus::Failed);
    assert_eq!(record.error, Some(error));
    assert!(record.finished_at.is_some());
    assert!(is_lease_lost(
        store.record_epoch(&lease, &report(1, 2, 0.1)).await
    ));
    assert!(is_lease_lost(store.heartbeat(&lease, TTL).await));
    assert!(is_lease_lost(
        store.finish(&lease, JobStatus::Succeeded, None).await
    ));
    assert_eq!(store.status(job).await.unwrap(), Some(JobStatus::Failed));
    assert!(store.requeue_expired().await.unwrap().is_empty());
}

async fn heartbeats_extend_the_lease_and_report_a_pending_cancel(store: Store) {
    let job = submit(&store, "beating", 0).await.id;
    let claim = claim(&store, Duration::ZERO).await;
    let renewal = store.heartbeat(&claim.lease, TTL).await.unwrap();
    assert!(!renewal.cancel_requested);
    assert!(renewal.expires_at > claim.lease.expires_at + chrono::Duration::minutes(59));
    assert!(store.requeue_expired().await.unwrap().is_empty(), "renewed");
    assert_eq!(store.status(job).await.unwrap(), Some(JobStatus::Running));

    store.cancel(job).await.unwrap();
    assert!(
        store
            .heartbeat(&claim.lease, TTL)
            .await
            .unwrap()
            .cancel_requested
    );
    // A lease past its expiry that nobody re-queued yet still renews.
    store.heartbeat(&claim.lease, Duration::ZERO).await.unwrap();
    store.heartbeat(&claim.lease, TTL).await.unwrap();
    assert!(store.requeue_expired().await.unwrap().is_empty());
}

async fn held_leases_name_their_workers_and_release_requeues_at_once(store: Store) {
    let job = submit(&store, "held", 0).await.id;
    let me = WorkerIdentity {
        name: "worker-3".to_string(),
        host: "gpu-box-2".to_string(),
        pid: 31337,
        device: "cuda:1".to_string(),
    };
    let claim = store
        .claim_next(&me, TTL, ClaimLimits::NONE)
        .await
        .unwrap()
        .unwrap();
    let held = store.held_leases().await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].worker, me);
    assert_eq!(held[0].lease.job, job);
    assert_eq!(held[0].lease.token, claim.lease.token);

    store.release(&held[0].lease).await.unwrap();
    let record = store.job(job).await.unwrap().unwrap();
    assert_eq!(record.status, JobStatus::Queued);
    assert_eq!(record.worker, None);
    assert!(store.held_leases().await.unwrap().is_empty());
    assert!(
        is_lease_lost(store.release(&claim.lease).await),
        "released once"
    );
    assert_eq!(
        store
            .claim_next(&me, TTL, ClaimLimits::NONE)
            .await
            .unwrap()
            .unwrap()
            .job
            .attempts,
        2
    );
}

async fn workers_are_listed_while_their_heartbeats_last(store: Store) {
    let job = submit(&store, "listed", 0).await.id;
    let (a, b, gone) = (worker("a"), worker("b"), worker("gone"));
    assert!(store.workers().await.unwrap().is_empty());
    store
        .worker_heartbeat(&a, WorkerActivity::IDLE, TTL)
        .await
        .unwrap();
    store
        .worker_heartbeat(&b, WorkerActivity::IDLE, TTL)
        .await
        .unwrap();
    store
        .worker_heartbeat(&gone, WorkerActivity::IDLE, Duration::ZERO)
        .await
        .unwrap();
    let listed = store.workers().await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|w| w.worker.name.as_str())
            .collect::<Vec<_>>(),
        ["a", "b"],
        "an expired heartbeat is not listed"
    );
    let first_beat = listed[0].last_heartbeat;
    assert_eq!(listed[0].job, None);
    assert_eq!(listed[0].examples_per_sec, None);
    assert_eq!(listed[0].worker, a);

    store
        .worker_heartbeat(&a, WorkerActivity::training(job, Some(1234.5)), TTL)
        .await
        .unwrap();
    let listed = store.workers().await.unwrap();
    assert_eq!(listed.len(), 2, "a heartbeat updates the worker's row");
    assert_eq!(listed[0].job, Some(job));
    assert_eq!(listed[0].examples_per_sec, Some(1234.5));
    assert!(listed[0].last_heartbeat >= first_beat);
    assert!(listed[0].started_at <= listed[0].last_heartbeat);
    assert!(listed[0].expires_at > listed[0].last_heartbeat);

    store.worker_stopped(&b).await.unwrap();
    let listed = store.workers().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].worker, a);
    // The sweep forgets workers whose heartbeats stopped.
    store
        .worker_heartbeat(&a, WorkerActivity::IDLE, Duration::ZERO)
        .await
        .unwrap();
    store.requeue_expired().await.unwrap();
    assert!(store.workers().await.unwrap().is_empty());
}

async fn single_host_backends_refuse_a_database_another_host_uses(store: Store) {
    store.check_host("here").await.unwrap();
    let elsewhere = WorkerIdentity {
        host: "elsewhere".to_string(),
        ..worker("w")
    };
    store
        .worker_heartbeat(&elsewhere, WorkerActivity::IDLE, TTL)
        .await
        .unwrap();
    store.check_host("elsewhere").await.unwrap();
    let here = store.check_host("here").await;
    match store.backend() {
        Backend::Sqlite => match here {
            Err(StoreError::OtherHost { host, .. }) => assert_eq!(host, "elsewhere"),
            other => panic!("SQLite must refuse a second machine, got {other:?}"),
        },
        Backend::Postgres => here.expect("PostgreSQL serves many machines"),
    }
    // Once the other machine's heartbeats stop, SQLite serves this one.
    store
        .worker_heartbeat(&elsewhere, WorkerActivity::IDLE, Duration::ZERO)
        .await
        .unwrap();
    store.check_host("here").await.unwrap();
}

async fn published_messages_reach_subscribers_in_order_where_the_backend_carries_them(
    store: Store,
) {
    let subscription = store.subscribe().await.unwrap();
    let Some(mut messages) = subscription else {
        assert_eq!(store.backend(), Backend::Sqlite, "only SQLite carries none");
        store.publish("dropped").await.unwrap();
        return;
    };
    let mut second = store
        .subscribe()
        .await
        .unwrap()
        .expect("a second subscriber");
    for payload in ["one", "two", r#"{"kind":"queued"}"#] {
        store.publish(payload).await.unwrap();
    }
    for receiver in [&mut messages, &mut second] {
        let mut got = Vec::new();
        while got.len() < 3 {
            let payload = tokio::time::timeout(Duration::from_secs(10), receiver.recv())
                .await
                .expect("a message within 10 s")
                .expect("the subscription lasts");
            got.push(payload);
        }
        assert_eq!(got, ["one", "two", r#"{"kind":"queued"}"#]);
    }
}

async fn ping_answers(store: Store) {
    store.ping().await.unwrap();
    submit(&store, "pinged", 0).await;
    store.ping().await.unwrap();
    store.close().await;
    assert!(
        store.ping().await.is_err(),
        "a closed store does not answer"
    );
}

/// A SQLite database of the release before leases (migrations 0001 and 0002, the sweeps)
/// takes the lease migration on top of 0002's rebuilt jobs table: its jobs, their metrics
/// and its sweeps are kept, and a job it left running is queued again (it held no lease).
#[tokio::test]
async fn a_sqlite_database_from_before_leases_is_upgraded_in_place() {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
    use std::str::FromStr;

    let db = TestDb::sqlite();
    let earlier = tempfile::tempdir().unwrap();
    let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    for name in ["0001_jobs.sql", "0002_sweeps.sql"] {
        std::fs::copy(all.join(name), earlier.path().join(name)).unwrap();
    }
    let options = SqliteConnectOptions::from_str(&db.url)
        .unwrap()
        .create_if_missing(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap();
    sqlx::migrate::Migrator::new(earlier.path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    let spec = serde_json::to_string(&spec("left-running", 0)).unwrap();
    let now = "2026-01-01T00:00:00Z";
    for statement in [
        "INSERT INTO sweeps (id, name, request, created_at, updated_at) \
         VALUES (1, 'lr', '{}', ?1, ?1)",
        "INSERT INTO jobs (id, name, spec, status, created_at, started_at, updated_at, \
         attempts, worker, epochs, total_steps, progress_epoch, sweep_id, sweep_config) \
         VALUES (1, 'left-running', ?2, 'running', ?1, ?1, ?1, 1, 'worker-0', 2, 20, 1, 1, 0)",
        "INSERT INTO epoch_metrics VALUES (1, 1, 1.0, 0.5, 0.9, 0.5, 0.1, 0.1, 0.1, 1.5, 0.25, 1000.0)",
    ] {
        sqlx::query(statement)
            .bind(now)
            .bind(&spec)
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;

    let store = open(&db).await;
    let job = store
        .job(JobId::new(1))
        .await
        .unwrap()
        .expect("the job is kept");
    assert_eq!(job.status, JobStatus::Queued);
    assert_eq!(job.worker, None);
    assert_eq!(
        job.sweep.map(|(sweep, config)| (sweep.get(), config)),
        Some((1, 0))
    );
    assert_eq!(store.epoch_metrics(job.id).await.unwrap().len(), 1);
    let claim = claim(&store, TTL).await;
    assert_eq!((claim.job.id, claim.job.attempts), (job.id, 2));
    store
        .record_epoch(&claim.lease, &report(2, 4, 0.6))
        .await
        .unwrap();
}
