//! Lockstep sweeps through the API: members that share a seed train together on one worker,
//! each still its own job, with exactly the results of separate jobs.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::support::{
    restart_app, spawn_app, spawn_app_configured, spawn_app_from, test_config, write_data, TestApp,
};

/// Three configs (rates, one with Nesterov momentum) with one seed.
fn sweep_body(lockstep: bool) -> Value {
    json!({
        "name": "rates",
        "base": {"epochs": 2, "batch_size": 64, "train_limit": 320, "test_limit": 64,
                 "optimizer": {"momentum": 0.9},
                 "schedule": {"kind": "constant", "lr": 0.05}},
        "variants": [
            {"name": "slow", "schedule": {"kind": "constant", "lr": 0.01}},
            {"name": "fast", "schedule": {"kind": "constant", "lr": 0.05}},
            {"name": "nesterov", "optimizer": {"momentum": 0.5, "nesterov": true},
             "schedule": {"kind": "cosine", "lr": 0.1, "max_steps": 2}}
        ],
        "seeds": [3],
        "lockstep": lockstep
    })
}

/// Submits the sweep, waits for it to succeed, returns its member job ids in config order.
async fn run_sweep(app: &TestApp, body: &Value) -> Vec<i64> {
    let response = app.post_json("/v1/sweeps", body).await;
    assert_eq!(response.status(), 201);
    let view: Value = response.json().await.unwrap();
    let ids: Vec<i64> = view["configs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|config| config["members"][0]["job"].as_i64().unwrap())
        .collect();
    for &id in &ids {
        let job = app.wait_finished(id).await;
        assert_eq!(job["status"], "succeeded", "{job}");
    }
    ids
}

/// Each member's worker and the time it ran.
async fn runs(app: &TestApp, ids: &[i64]) -> Vec<(String, DateTime<Utc>, DateTime<Utc>)> {
    let mut runs = Vec::new();
    for &id in ids {
        let job = app.job(id).await;
        let time = |field: &str| job[field].as_str().unwrap().parse().unwrap();
        runs.push((
            job["worker"].as_str().unwrap().to_string(),
            time("started_at"),
            time("finished_at"),
        ));
    }
    runs
}

/// Whether every two of the runs overlap in time.
fn all_overlap(runs: &[(String, DateTime<Utc>, DateTime<Utc>)]) -> bool {
    runs.iter()
        .all(|a| runs.iter().all(|b| a.1 < b.2 && b.1 < a.2))
}

/// A job's epoch rows without their timings, and its per-update records.
async fn results(app: &TestApp, id: i64) -> (Vec<Value>, Value) {
    let metrics: Value = app
        .get(&format!("/v1/jobs/{id}/metrics"))
        .await
        .json()
        .await
        .unwrap();
    let rows = metrics["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let mut row = row.clone();
            for timing in ["seconds", "eval_seconds", "examples_per_sec"] {
                row.as_object_mut().unwrap().remove(timing);
            }
            row
        })
        .collect();
    let steps: Value = app
        .get(&format!("/v1/jobs/{id}/steps?limit=1000"))
        .await
        .json()
        .await
        .unwrap();
    (rows, steps["steps"].clone())
}

#[tokio::test]
async fn a_lockstep_sweep_trains_its_members_together_with_the_results_of_separate_jobs() {
    // One worker each: separate jobs can only run one after another.
    let (together, apart) = (spawn_app(1).await, spawn_app(1).await);
    let (on, off) = (sweep_body(true), sweep_body(false));
    let (grouped, separate) = tokio::join!(run_sweep(&together, &on), run_sweep(&apart, &off));
    let grouped_runs = runs(&together, &grouped).await;
    assert!(all_overlap(&grouped_runs), "{grouped_runs:?}");
    assert!(grouped_runs.iter().all(|r| r.0 == grouped_runs[0].0));
    let separate_runs = runs(&apart, &separate).await;
    assert!(
        separate_runs
            .windows(2)
            .all(|pair| pair[0].2 <= pair[1].1 || pair[1].2 <= pair[0].1),
        "{separate_runs:?}"
    );
    for (config, (&a, &b)) in grouped.iter().zip(&separate).enumerate() {
        let ((rows_a, steps_a), (rows_b, steps_b)) =
            (results(&together, a).await, results(&apart, b).await);
        assert_eq!(rows_a.len(), 2, "config {config}");
        assert_eq!(rows_a, rows_b, "config {config}: metrics");
        assert_eq!(steps_a.as_array().unwrap().len(), 10, "config {config}");
        assert_eq!(steps_a, steps_b, "config {config}: per-update records");
    }
    // The configs really differ.
    let (first, _) = results(&together, grouped[0]).await;
    let (last, _) = results(&together, grouped[2]).await;
    assert_ne!(first[1]["train_loss"], last[1]["train_loss"]);
}

#[tokio::test]
async fn lockstep_off_on_the_server_trains_every_member_alone() {
    let app = spawn_app_configured(1, |config| config.node.lockstep = false).await;
    let ids = run_sweep(&app, &sweep_body(true)).await;
    let runs = runs(&app, &ids).await;
    assert!(
        runs.windows(2).all(|pair| pair[0].2 <= pair[1].1),
        "one after another: {runs:?}"
    );
}

/// The member job ids of a sweep view, in config order (one seed).
fn member_ids(view: &Value) -> Vec<i64> {
    view["configs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|config| config["members"][0]["job"].as_i64().unwrap())
        .collect()
}

/// Waits for a job to end, early stops included.
async fn ended(app: &TestApp, id: i64) -> Value {
    app.wait_for(id, Duration::from_secs(180), |s| {
        matches!(s, "succeeded" | "failed" | "canceled" | "stopped_early")
    })
    .await
}

/// Submits a sweep; returns its member job ids in config order (one seed).
async fn submit(app: &TestApp, body: &Value) -> Vec<i64> {
    let response = app.post_json("/v1/sweeps", body).await;
    assert_eq!(response.status(), 201);
    member_ids(&response.json().await.unwrap())
}

#[tokio::test]
async fn a_canceled_member_leaves_its_group_and_the_others_finish() {
    let app = spawn_app(1).await;
    let mut body = sweep_body(true);
    body["base"]["epochs"] = json!(30);
    let ids = submit(&app, &body).await;
    // One worker, and all three run: they were claimed together.
    for &id in &ids {
        app.wait_for(id, Duration::from_secs(60), |s| s != "queued")
            .await;
    }
    for &id in &ids {
        assert_eq!(app.job(id).await["status"], "running");
    }
    let canceled = app.cancel(ids[1]).await;
    assert_eq!(canceled.status(), 202);
    let job = app.wait_finished(ids[1]).await;
    assert_eq!(job["status"], "canceled", "{job}");
    let stopped_at = job["progress"]["epoch"].as_u64().unwrap();
    assert!(stopped_at < 30, "{job}");
    for id in [ids[0], ids[2]] {
        let job = app.wait_finished(id).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        let (rows, _) = results(&app, id).await;
        assert_eq!(rows.len(), 30, "job {id}");
    }
}

#[tokio::test]
async fn asha_pauses_and_stops_members_of_a_group_as_it_does_separate_jobs() {
    let body = |lockstep: bool| {
        json!({
            "name": "asha",
            "base": {"epochs": 3, "batch_size": 64, "optimizer": {"momentum": 0.9},
                     "schedule": {"kind": "constant", "lr": 0.05}},
            "grid": {"schedule.lr": [0.0, 0.001, 0.05]},
            "seeds": [0],
            "early_stopping": {"kind": "asha", "metric": "test_acc", "grace_period": 1,
                               "reduction_factor": 3, "synchronous": true},
            "lockstep": lockstep
        })
    };
    let (together, apart) = (spawn_app(1).await, spawn_app(1).await);
    let grouped = submit(&together, &body(true)).await;
    let separate = submit(&apart, &body(false)).await;
    for (config, (&a, &b)) in grouped.iter().zip(&separate).enumerate() {
        let (job_a, job_b) = (ended(&together, a).await, ended(&apart, b).await);
        assert_eq!(
            job_a["status"], job_b["status"],
            "config {config}: {job_a} {job_b}"
        );
        // lr 0.05 goes past the rung at epoch 1; the others pause there, then stop.
        if config == 2 {
            assert_eq!(job_a["status"], "succeeded", "{job_a}");
            assert_eq!(job_a["progress"]["epoch"], 3, "{job_a}");
        } else {
            assert_eq!(job_a["status"], "stopped_early", "{job_a}");
            assert_eq!(job_a["progress"]["epoch"], 1, "{job_a}");
        }
    }
    for (config, (&a, &b)) in grouped.iter().zip(&separate).enumerate() {
        let ((rows_a, steps_a), (rows_b, steps_b)) =
            (results(&together, a).await, results(&apart, b).await);
        assert_eq!(rows_a, rows_b, "config {config}: metrics");
        assert_eq!(steps_a, steps_b, "config {config}: per-update records");
    }
}

/// A group stopped by a shutdown gives every member back to the queue with its checkpoint,
/// all at one epoch boundary; started again, each member resumes from its own and ends
/// with the results of an uninterrupted separate job.
#[tokio::test]
async fn a_group_stopped_by_shutdown_resumes_every_member_from_its_own_checkpoint() {
    let mut body = sweep_body(true);
    body["base"]["epochs"] = json!(12);
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path(), 1, write_data(dir.path()));
    let app = spawn_app_from(config.clone(), tempfile::tempdir().unwrap()).await;
    let ids = submit(&app, &body).await;
    for &id in &ids {
        app.wait_for(id, Duration::from_secs(60), |s| s == "running")
            .await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while app.job(ids[0]).await["progress"]["epoch"].as_u64() < Some(2) {
        assert!(tokio::time::Instant::now() < deadline, "no progress");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stopped = app.stop().await;
    let epochs: Vec<u32> = ids
        .iter()
        .map(|id| {
            let dir = config.node.artifacts_dir.join(id.to_string());
            lrlab::train::checkpoint::read_meta(&dir)
                .unwrap()
                .expect("a checkpoint")
                .epoch
        })
        .collect();
    assert!(epochs.iter().all(|&e| e == epochs[0]), "{epochs:?}");
    assert!((2..12).contains(&epochs[0]), "{epochs:?}");

    let app = restart_app(config, stopped).await;
    let alone = spawn_app(1).await;
    body["lockstep"] = json!(false);
    let separate = submit(&alone, &body).await;
    for (config, (&a, &b)) in ids.iter().zip(&separate).enumerate() {
        let (job_a, job_b) = (app.wait_finished(a).await, alone.wait_finished(b).await);
        assert_eq!(job_a["status"], "succeeded", "{job_a}");
        assert_eq!(job_b["status"], "succeeded", "{job_b}");
        assert_eq!(job_a["attempts"], 2, "{job_a}");
        let ((rows_a, steps_a), (rows_b, steps_b)) =
            (results(&app, a).await, results(&alone, b).await);
        assert_eq!(rows_a.len(), 12, "config {config}");
        assert_eq!(rows_a, rows_b, "config {config}: metrics");
        assert_eq!(steps_a, steps_b, "config {config}: per-update records");
    }
}
