//! Shared harness of the HTTP tests: a real server — built by the same
//! [`App::start`] as `lrlab serve` — on a loopback port over a real SQLite file
//! and a small generated data set, all in a temp dir. With
//! `LRLAB_TEST_BACKEND=postgres` the server runs on a fresh PostgreSQL database
//! instead (see `test_db`), so the whole suite can be run against both backends.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lrlab::app::{App, AppConfig, ConnectionLimits, NodeConfig};
use lrlab::job::{JobId, JobStatus};
use lrlab::service::{DataConfig, FaultHook, JobDetails, JobEvent, Service, ServiceConfig};
use lrlab::store::{ClaimLimits, LeaseConfig, Store};
use lrlab::train::DeviceSpec;
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::sync::broadcast::{self, error::RecvError};

use crate::test_db::{http_backend_is_postgres, TestDb};

/// Images in the generated training and test splits.
pub const TRAIN_IMAGES: usize = 512;
pub const TEST_IMAGES: usize = 128;

/// A running lrlab server and the client to talk to it.
pub struct TestApp {
    pub app: App,
    pub client: reqwest::Client,
    pub dir: TempDir,
    /// The PostgreSQL database the server runs on, dropped after it.
    _db: Option<TestDb>,
    /// What it was started with (on the database it really uses).
    pub config: AppConfig,
}

/// Writes the generated data set into `dir/data` and returns that path.
pub fn write_data(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    lrlab::data::synthetic::write_dataset(&data, TRAIN_IMAGES, TEST_IMAGES, 7, true)
        .expect("write the generated data set");
    data
}

/// The configuration `lrlab serve` would build, over `dir`, on a free loopback port.
pub fn test_config(dir: &Path, workers: usize, data: PathBuf) -> AppConfig {
    AppConfig {
        bind: "127.0.0.1:0".parse().expect("address"),
        node: NodeConfig {
            db: format!("sqlite://{}", dir.join("lrlab.db").display()),
            workers: vec![DeviceSpec::Cpu; workers],
            artifacts_dir: dir.join("artifacts"),
            data: DataConfig {
                dir: Some(data),
                allow_download: false,
            },
            lease: LeaseConfig::default(),
            lockstep: true,
            metrics_token: None,
            claim_limits: ClaimLimits::NONE,
        },
        allowed_hosts: None,
        limits: ConnectionLimits::default(),
        auth: Default::default(),
    }
}

/// Starts a server with `workers` CPU workers on a fresh database.
pub async fn spawn_app(workers: usize) -> TestApp {
    spawn_app_with(workers, true).await
}

/// Starts a server; `with_data: false` points it at an empty data directory.
pub async fn spawn_app_with(workers: usize, with_data: bool) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = if with_data {
        write_data(dir.path())
    } else {
        let empty = dir.path().join("no-data");
        std::fs::create_dir_all(&empty).expect("empty data dir");
        empty
    };
    let config = test_config(dir.path(), workers, data);
    spawn_app_from(config, dir).await
}

/// Starts a server with `workers` CPU workers on a fresh database and the generated data,
/// its configuration changed by `adjust` first.
pub async fn spawn_app_configured(workers: usize, adjust: impl FnOnce(&mut AppConfig)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = write_data(dir.path());
    let mut config = test_config(dir.path(), workers, data);
    adjust(&mut config);
    spawn_app_from(config, dir).await
}

/// Server logs in test output, filtered by `LRLAB_TEST_LOG` (env-filter syntax; off when unset).
fn init_test_logs() {
    let filter = std::env::var("LRLAB_TEST_LOG").unwrap_or_else(|_| "off".to_string());
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .try_init();
}

/// A fresh PostgreSQL database under `LRLAB_TEST_BACKEND=postgres`, else `None` (SQLite).
async fn backend_db() -> Option<TestDb> {
    if !http_backend_is_postgres() {
        return None;
    }
    let db = TestDb::postgres()
        .await
        .expect("LRLAB_TEST_BACKEND=postgres needs a PostgreSQL server");
    Some(db)
}

/// Starts a server from a configuration whose files live in `dir`; under
/// `LRLAB_TEST_BACKEND=postgres` on a fresh PostgreSQL database instead of `config.node.db`.
pub async fn spawn_app_from(config: AppConfig, dir: TempDir) -> TestApp {
    let db = backend_db().await;
    start_app(config, dir, db).await
}

/// Starts a server again where [`TestApp::stop`] left one: the same database (`config.node.db`,
/// or the stopped server's PostgreSQL database).
pub async fn restart_app(config: AppConfig, stopped: Stopped) -> TestApp {
    start_app(config, stopped.dir, stopped.db).await
}

async fn start_app(mut config: AppConfig, dir: TempDir, db: Option<TestDb>) -> TestApp {
    init_test_logs();
    if let Some(db) = &db {
        config.node.db = db.url.clone();
    }
    let app = App::start(config.clone()).await.expect("start the server");
    TestApp {
        app,
        client: reqwest::Client::new(),
        dir,
        _db: db,
        config,
    }
}

impl TestApp {
    pub fn service(&self) -> &Service {
        &self.app.service
    }

    pub fn store(&self) -> &Store {
        self.app.store()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.app.addr, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    /// Submits a job and returns its id, asserting a 201.
    pub async fn submit(&self, body: &Value) -> i64 {
        let response = self.post_json("/v1/jobs", body).await;
        let status = response.status();
        let job: Value = response.json().await.expect("job JSON");
        assert_eq!(status, 201, "submission failed: {job}");
        job["id"].as_i64().expect("job id")
    }

    /// `POST /v1/jobs/{id}/cancel`.
    pub async fn cancel(&self, id: i64) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/v1/jobs/{id}/cancel")))
            .send()
            .await
            .expect("POST cancel")
    }

    /// `DELETE /v1/jobs/{id}`.
    pub async fn delete(&self, id: i64) -> reqwest::Response {
        self.client
            .delete(self.url(&format!("/v1/jobs/{id}")))
            .send()
            .await
            .expect("DELETE")
    }

    pub async fn job(&self, id: i64) -> Value {
        let response = self.get(&format!("/v1/jobs/{id}")).await;
        assert_eq!(response.status(), 200);
        response.json().await.expect("job JSON")
    }

    /// Waits until the job's status satisfies `done`, woken by the service's events (a
    /// status change is always broadcast), or panics after `timeout`.
    pub async fn wait_for(&self, id: i64, timeout: Duration, done: impl Fn(&str) -> bool) -> Value {
        let mut events = self.service().subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let job = self.job(id).await;
            if done(job["status"].as_str().unwrap_or("")) {
                return job;
            }
            // Any event of this job may be the change we wait for; re-read then.
            let woke = tokio::time::timeout_at(deadline, async {
                loop {
                    match events.recv().await {
                        Ok(event) if event.job() == JobId::new(id) => {
                            if matches!(event, JobEvent::Status { .. } | JobEvent::Done { .. }) {
                                return;
                            }
                        }
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    }
                }
            })
            .await;
            if woke.is_err() {
                let job = self.job(id).await;
                assert!(
                    done(job["status"].as_str().unwrap_or("")),
                    "job {id} did not get there in {timeout:?}: {job}"
                );
                return job;
            }
        }
    }

    /// Waits for the job to finish (succeeded, failed or canceled).
    pub async fn wait_finished(&self, id: i64) -> Value {
        self.wait_for(id, Duration::from_secs(120), |s| {
            matches!(s, "succeeded" | "failed" | "canceled")
        })
        .await
    }

    /// Runs the queue until it is empty: waits until no job is queued or running.
    pub async fn drain_queue(&self) {
        loop {
            let page: Value = self
                .get("/v1/jobs?status=queued,running&limit=1000")
                .await
                .json()
                .await
                .expect("job list");
            let Some(first) = page["jobs"]
                .as_array()
                .and_then(|jobs| jobs.last())
                .cloned()
            else {
                return;
            };
            self.wait_finished(first["id"].as_i64().expect("id")).await;
        }
    }

    pub async fn shutdown(self) {
        self.app.shutdown().await;
    }

    /// Shuts down and hands back its directory (database, artifacts, data) and its
    /// PostgreSQL database, if any, for [`restart_app`].
    pub async fn stop(self) -> Stopped {
        self.app.shutdown().await;
        Stopped {
            dir: self.dir,
            db: self._db,
        }
    }
}

/// What a stopped [`TestApp`] leaves for the next start.
pub struct Stopped {
    pub dir: TempDir,
    db: Option<TestDb>,
}

/// A small job on the generated data that trains in well under a second per epoch.
pub fn small_job(epochs: u32) -> Value {
    json!({
        "epochs": epochs,
        "batch_size": 64,
        "optimizer": {"momentum": 0.9},
        "schedule": {"kind": "constant", "lr": 0.05},
        "seed": 1
    })
}

/// A job on the generated data that learns: three epochs reach a test accuracy of 0.73–0.94
/// over seeds 0–5 (0.88 with its seed 1), where chance is 0.1.
pub fn learning_job(epochs: u32) -> Value {
    json!({
        "epochs": epochs,
        "batch_size": 32,
        "optimizer": {"momentum": 0.9},
        "schedule": {"kind": "constant", "lr": 0.05},
        "seed": 1
    })
}

/// An error response's HTTP status and its `error` object.
pub async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("error JSON");
    (status, body["error"].clone())
}

/// Waits for the next event that `wanted` accepts, or panics after `timeout`.
pub async fn next_event(
    events: &mut broadcast::Receiver<JobEvent>,
    timeout: Duration,
    wanted: impl Fn(&JobEvent) -> bool,
) -> JobEvent {
    let found = tokio::time::timeout(timeout, async {
        loop {
            match events.recv().await {
                Ok(event) if wanted(&event) => return event,
                Ok(_) => {}
                Err(RecvError::Lagged(missed)) => panic!("the test missed {missed} events"),
                Err(RecvError::Closed) => panic!("the service's events ended"),
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("no such event within {timeout:?}"))
}

/// Whether this run is CI's (`CI` set, as `.ci/run` does): there, tests that need the real
/// Fashion-MNIST must fail when it is missing instead of skipping.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !matches!(value.trim(), "" | "0" | "false"))
}

/// Where the real Fashion-MNIST is, for a test that needs it. Missing, the test is skipped
/// with a message — except in CI, which installs it, where that is a failure.
pub fn real_fashion_mnist(test: &str) -> Option<PathBuf> {
    match lrlab::data::locate(None, false) {
        Ok(dir) => Some(dir),
        Err(err) if in_ci() => panic!("{test} needs the real Fashion-MNIST in CI: {err}"),
        Err(err) => {
            eprintln!("note: skipping {test}: {err}");
            None
        }
    }
}

/// A job service built directly (no HTTP), for tests that change what lies beneath it: its
/// store (`wrap`) or a fault hook inside training.
pub struct TestService {
    pub service: Service,
    pub store: Store,
    /// Holds the database, artifacts and data until the test ends.
    _dir: TempDir,
    /// The PostgreSQL database the service runs on, dropped after it.
    _db: Option<TestDb>,
}

/// Starts a service with `workers` CPU workers over a fresh database (a SQLite file, or
/// PostgreSQL under `LRLAB_TEST_BACKEND=postgres`), its store wrapped by `wrap`, and the
/// generated data.
pub async fn spawn_service(
    workers: usize,
    wrap: impl FnOnce(Store) -> Store,
    fault: Option<FaultHook>,
) -> TestService {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = write_data(dir.path());
    let db = backend_db().await;
    let url = match &db {
        Some(db) => db.url.clone(),
        None => format!("sqlite://{}", dir.path().join("lrlab.db").display()),
    };
    let store = wrap(lrlab::store::open(&url).await.expect("open the store"));
    let config = ServiceConfig {
        workers: vec![DeviceSpec::Cpu; workers],
        artifacts_dir: dir.path().join("artifacts"),
        data: DataConfig {
            dir: Some(data),
            allow_download: false,
        },
        lease: LeaseConfig::default(),
        fault,
        lockstep: true,
        max_queued_per_tenant: None,
        claim_limits: ClaimLimits::NONE,
        max_sweep_jobs: None,
    };
    let service = Service::start(store.clone(), config)
        .await
        .expect("start the service");
    TestService {
        service,
        store,
        _dir: dir,
        _db: db,
    }
}

impl TestService {
    /// Submits a job request and returns its id.
    pub async fn submit(&self, request: &Value) -> JobId {
        match self.service.submit(request, None).await {
            Ok(lrlab::service::Submission::Created(details)) => details.record.id,
            Ok(other) => panic!("expected a new job, got {other:?}"),
            Err(err) => panic!("submission failed: {err}"),
        }
    }

    /// Waits for the job to finish, woken by its `done` event.
    pub async fn wait_finished(&self, id: JobId) -> JobDetails {
        let mut events = self.service.subscribe();
        let job = self.service.job(id).await.expect("the job");
        if job.record.status.is_finished() {
            return job;
        }
        next_event(
            &mut events,
            Duration::from_secs(120),
            |event| matches!(event, JobEvent::Done { job, .. } if *job == id),
        )
        .await;
        let job = self.service.job(id).await.expect("the job");
        assert_ne!(job.record.status, JobStatus::Running);
        job
    }

    pub async fn shutdown(self) {
        self.service.shutdown().await;
        self.store.close().await;
    }
}
