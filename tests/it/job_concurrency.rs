//! Many jobs submitted at once onto two workers: every job runs exactly once.

use std::collections::HashSet;

use crate::support::spawn_app;
use futures::future::join_all;
use lrlab::job::JobId;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_submissions_onto_two_workers_each_run_exactly_once() {
    let app = spawn_app(2).await;
    let submissions = (0..50).map(|i| {
        let body = json!({
            "name": format!("job-{i}"),
            "epochs": 1,
            "batch_size": 32,
            "train_limit": 64,
            "test_limit": 32,
            "schedule": {"kind": "constant", "lr": 0.05},
            "seed": i
        });
        let app = &app;
        async move { app.submit(&body).await }
    });
    let ids: Vec<i64> = join_all(submissions).await;
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        50,
        "50 distinct jobs"
    );

    app.drain_queue().await;
    let mut workers = HashSet::new();
    for id in &ids {
        let job: Value = app.job(*id).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(
            job["attempts"], 1,
            "job {id} was claimed more than once: {job}"
        );
        workers.insert(job["worker"].as_str().unwrap().to_string());
        let rows = app.store().epoch_metrics(JobId::new(*id)).await.unwrap();
        assert_eq!(rows.len(), 1, "job {id} has {} epoch rows", rows.len());
        assert_eq!(
            app.store().step_count(JobId::new(*id)).await.unwrap(),
            2,
            "64 images / batch 32"
        );
    }
    assert_eq!(
        workers.len(),
        2,
        "both workers should have taken jobs: {workers:?}"
    );
    let listed: Value = app
        .get("/v1/jobs?status=succeeded&limit=1000")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["total"], 50);
    app.shutdown().await;
}
