//! Shared harness of the HTTP tests: a real server — built by the same
//! [`App::start`] as `lrlab serve` — on a loopback port over a real SQLite file
//! and a small generated data set, all in a temp dir. With
//! `LRLAB_TEST_BACKEND=postgres` the server runs on a fresh PostgreSQL database
//! instead (see `test_db`), so the whole suite can be run against both backends.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lrlab::app::{App, AppConfig, ConnectionLimits};
use lrlab::job::JobId;
use lrlab::service::{DataConfig, JobEvent, Service};
use lrlab::store::{LeaseConfig, Store};
use lrlab::train::DeviceSpec;
use serde_json::{json, Value};
use tempfile::TempDir;

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
        db: format!("sqlite://{}", dir.join("lrlab.db").display()),
        workers: vec![DeviceSpec::Cpu; workers],
        artifacts_dir: dir.join("artifacts"),
        data: DataConfig {
            dir: Some(data),
            allow_download: false,
        },
        allowed_hosts: None,
        limits: ConnectionLimits::default(),
        lease: LeaseConfig::default(),
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

/// Starts a server from a configuration whose files live in `dir`; under
/// `LRLAB_TEST_BACKEND=postgres` on a fresh PostgreSQL database instead of `config.db`.
pub async fn spawn_app_from(mut config: AppConfig, dir: TempDir) -> TestApp {
    let db = if http_backend_is_postgres() {
        let db = TestDb::postgres()
            .await
            .expect("LRLAB_TEST_BACKEND=postgres needs a PostgreSQL server");
        config.db = db.url.clone();
        Some(db)
    } else {
        None
    };
    let app = App::start(config).await.expect("start the server");
    TestApp {
        app,
        client: reqwest::Client::new(),
        dir,
        _db: db,
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
