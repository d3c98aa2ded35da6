//! The order in which a worker takes queued jobs: highest priority first, then oldest.

use std::time::Duration;

use lrlab::job::{JobId, JobStatus};
use lrlab::service::JobEvent;
use serde_json::json;

use crate::support::{next_event, small_job, spawn_app};

#[tokio::test]
async fn a_worker_claims_queued_jobs_by_priority_then_age() {
    let app = spawn_app(1).await;
    let mut events = app.service().subscribe();
    // Keep the only worker busy while the queue fills up.
    let blocker = app.submit(&small_job(1000)).await;
    app.wait_for(blocker, Duration::from_secs(60), |s| s == "running")
        .await;
    let mut queued = Vec::new();
    for (name, priority) in [("b", 0), ("c", 5), ("d", 0), ("e", 5), ("f", -1), ("g", 2)] {
        let mut body = small_job(1);
        body["name"] = json!(name);
        body["priority"] = json!(priority);
        queued.push((app.submit(&body).await, name));
    }
    assert_eq!(app.cancel(blocker).await.status(), 202);

    let mut started = Vec::new();
    while started.len() < queued.len() {
        let event = next_event(&mut events, Duration::from_secs(60), |event| {
            matches!(event, JobEvent::Status { job, status: JobStatus::Running } if *job != JobId::new(blocker))
        })
        .await;
        let (id, name) = queued
            .iter()
            .find(|(id, _)| JobId::new(*id) == event.job())
            .expect("a queued job");
        started.push(*name);
        // The next claim happens once this job is over.
        app.wait_finished(*id).await;
    }
    assert_eq!(started, ["c", "e", "g", "b", "d", "f"]);

    // The stored start times tell the same story.
    let mut by_start = Vec::new();
    for (id, name) in &queued {
        let job = app.job(*id).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        let at: chrono::DateTime<chrono::Utc> =
            job["started_at"].as_str().unwrap().parse().unwrap();
        by_start.push((at, *name));
    }
    by_start.sort();
    let names: Vec<&str> = by_start.into_iter().map(|(_, name)| name).collect();
    assert_eq!(names, started);
    app.shutdown().await;
}
