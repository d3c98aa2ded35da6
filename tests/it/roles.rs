//! The process roles: `lrlab serve --workers 0` (the API only) and `lrlab worker`
//! (workers only, no API; `--metrics-bind` for Prometheus), sharing one database; and
//! `GET /v1/workers`, which lists the workers of every process.

use std::time::Duration;

use lrlab::app::{App, Node};
use lrlab::job::{JobId, JobStatus};
use lrlab::service::JobEvent;
use lrlab::store::{WorkerActivity, WorkerIdentity};
use lrlab::train::DeviceSpec;
use serde_json::Value;

use crate::support::{next_event, small_job, spawn_app, test_config, TestApp};
use crate::test_db::TestDb;

#[tokio::test]
async fn an_api_only_server_queues_jobs_that_a_worker_process_trains() {
    let api = spawn_app(0).await;
    let listed: Value = api.get("/v1/workers").await.json().await.unwrap();
    assert_eq!(
        listed["workers"],
        serde_json::json!([]),
        "an API-only server has no workers"
    );
    let id = api.submit(&small_job(2)).await;

    let mut node_config = api.config.node.clone();
    node_config.workers = vec![DeviceSpec::Cpu];
    let node = Node::start(node_config, Some("127.0.0.1:0".parse().unwrap()))
        .await
        .expect("start the worker process");
    let mut events = node.service.subscribe();
    let job = node.service.job(JobId::new(id)).await.unwrap();
    if !job.record.status.is_finished() {
        next_event(
            &mut events,
            Duration::from_secs(120),
            |event| matches!(event, JobEvent::Done { job, .. } if *job == JobId::new(id)),
        )
        .await;
    }
    let job = api.job(id).await;
    assert_eq!(job["status"], "succeeded", "{job}");

    // The API lists the other process's worker, idle again once it has settled the job
    // (its next heartbeat says so).
    let listed = wait_for_workers(&api, |workers| {
        workers.len() == 1 && workers[0]["job_id"].is_null()
    })
    .await;
    let workers = listed["workers"].as_array().expect("a list");
    assert_eq!(workers.len(), 1, "{listed}");
    assert_eq!(workers[0]["name"], "worker-0");
    assert_eq!(workers[0]["device"], "cpu");
    assert_eq!(workers[0]["pid"], std::process::id());
    assert_eq!(workers[0]["host"], lrlab::store::this_host());
    assert!(workers[0]["job_id"].is_null(), "{listed}");
    assert!(workers[0]["last_heartbeat"].as_str().is_some());

    // The worker process answers Prometheus, and nothing of the API.
    let metrics = format!(
        "http://{}",
        node.metrics_addr().expect("a metrics listener")
    );
    let scraped = reqwest::get(format!("{metrics}/metrics")).await.unwrap();
    assert_eq!(scraped.status(), 200);
    let text = scraped.text().await.unwrap();
    assert!(text.contains("lrlab_jobs_finished_total"), "{text}");
    let api_route = reqwest::get(format!("{metrics}/v1/jobs")).await.unwrap();
    assert_eq!(api_route.status(), 404);

    node.shutdown().await;
    let listed: Value = api.get("/v1/workers").await.json().await.unwrap();
    assert_eq!(
        listed["workers"],
        serde_json::json!([]),
        "a worker that stops leaves the list"
    );
    api.shutdown().await;
}

#[tokio::test]
async fn a_training_worker_reports_its_job_and_throughput() {
    let app = spawn_app(1).await;
    let mut events = app.service().subscribe();
    let mut body = small_job(200);
    body["name"] = "long".into();
    let id = app.submit(&body).await;
    // Wait for the first epoch: the worker has reported progress by then.
    next_event(
        &mut events,
        Duration::from_secs(60),
        |event| matches!(event, JobEvent::Epoch { job, .. } if *job == JobId::new(id)),
    )
    .await;
    // The worker's row carries its job from the claim on, its throughput from the first
    // heartbeat after a progress report (default heartbeat: 5 s).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let worker = loop {
        let listed: Value = app.get("/v1/workers").await.json().await.unwrap();
        let worker = listed["workers"][0].clone();
        if worker["examples_per_sec"].as_f64().is_some() || tokio::time::Instant::now() > deadline {
            break worker;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(worker["job_id"], id, "{worker}");
    let rate = worker["examples_per_sec"].as_f64().expect("a throughput");
    assert!(rate > 0.0, "{worker}");
    assert_eq!(app.cancel(id).await.status(), 202);
    let job = app.wait_finished(id).await;
    assert_eq!(job["status"], JobStatus::Canceled.as_str());
    app.shutdown().await;
}

/// `GET /v1/workers` once `done` holds for its list, or its last answer after 30 s.
async fn wait_for_workers(app: &TestApp, done: impl Fn(&[Value]) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let listed: Value = app.get("/v1/workers").await.json().await.unwrap();
        let workers = listed["workers"].as_array().expect("a list of workers");
        if done(workers) || tokio::time::Instant::now() > deadline {
            return listed;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn a_worker_process_without_workers_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_lrlab"))
        .args(["worker", "--workers", "0", "--db"])
        .arg(format!(
            "sqlite://{}",
            dir.path().join("lrlab.db").display()
        ))
        .arg("--artifacts-dir")
        .arg(dir.path().join("artifacts"))
        .output()
        .expect("run lrlab worker");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("at least 1 worker"), "{stderr}");
}

/// A worker of another machine on `url`'s database, alive for a minute.
async fn other_host_worker(url: &str) -> lrlab::store::Store {
    let store = lrlab::store::open(url).await.expect("open the store");
    let elsewhere = WorkerIdentity {
        name: "worker-0".to_string(),
        host: "gpu-elsewhere".to_string(),
        pid: 4242,
        device: "cuda:0".to_string(),
    };
    store
        .worker_heartbeat(&elsewhere, WorkerActivity::IDLE, Duration::from_secs(60))
        .await
        .unwrap();
    store
}

#[tokio::test]
async fn a_local_artifacts_dir_is_refused_while_another_machine_works_on_the_database() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let _elsewhere = other_host_worker(&db.url).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path(), 1, dir.path().join("data"));
    config.node.db = db.url.clone();
    let error = match App::start(config.clone()).await {
        Ok(_) => panic!("a local artifacts directory must not be shared across machines"),
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains("gpu-elsewhere"), "{error}");
    assert!(error.contains("--artifacts s3://"), "{error}");
    // A worker process is refused alike.
    assert!(Node::start(config.node, None).await.is_err());
}

#[tokio::test]
async fn sqlite_is_refused_while_another_machine_works_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path(), 1, dir.path().join("data"));
    let _elsewhere = other_host_worker(&config.node.db).await;
    let error = match Node::start(config.node, None).await {
        Ok(_) => panic!("SQLite must not be shared across machines"),
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains("gpu-elsewhere"), "{error}");
    assert!(error.contains("PostgreSQL"), "{error}");
}

#[tokio::test]
async fn an_api_replica_streams_the_events_of_a_job_trained_by_another_process() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = crate::support::write_data(dir.path());
    let mut config = test_config(dir.path(), 0, data);
    config.node.db = db.url.clone();
    let api = App::start(config.clone()).await.expect("start the API");
    let mut worker_config = config.node.clone();
    worker_config.workers = vec![DeviceSpec::Cpu];
    let node = Node::start(worker_config, None)
        .await
        .expect("start the worker");

    // The API process has no workers: whatever it hears of the job came from the other
    // process, through the database.
    let mut events = api.service.subscribe();
    let base = format!("http://{}", api.addr);
    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("{base}/v1/jobs"))
        .json(&small_job(3))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = JobId::new(created["id"].as_i64().expect("an id"));
    let mut epochs = Vec::new();
    let mut statuses = Vec::new();
    loop {
        let event = next_event(&mut events, Duration::from_secs(120), |event| {
            event.job() == id
        })
        .await;
        match event {
            JobEvent::Epoch { metrics, .. } => epochs.push(metrics.epoch),
            JobEvent::Status { status, .. } => statuses.push(status),
            JobEvent::Done { status, .. } => {
                assert_eq!(status, JobStatus::Succeeded);
                break;
            }
            JobEvent::Progress { .. } => panic!("progress ticks stay in their process"),
        }
    }
    assert_eq!(epochs, [1, 2, 3], "every epoch, once, in order");
    assert_eq!(statuses, [JobStatus::Running, JobStatus::Succeeded]);

    // An SSE client of the API replica gets the job's whole story and its end.
    let sse = client
        .get(format!("{base}/v1/jobs/{id}/events"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(sse.matches("event: epoch").count(), 3, "{sse}");
    assert!(sse.contains("event: done"), "{sse}");

    node.shutdown().await;
    api.shutdown().await;
}
