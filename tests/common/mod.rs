//! Shared harness of the HTTP tests: a real server on a loopback port over a
//! real SQLite file and a small generated data set, all in a temp dir.

#![allow(dead_code)] // each test binary uses its own part of the harness

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use lrlab::api::{self, AppState};
use lrlab::service::{DataConfig, Service, ServiceConfig};
use lrlab::store::Store;
use serde_json::{json, Value};
use tempfile::TempDir;

/// Images in the generated training and test splits.
pub const TRAIN_IMAGES: usize = 512;
pub const TEST_IMAGES: usize = 128;

/// A running lrlab server and the client to talk to it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub service: Service,
    pub store: Store,
    pub dir: TempDir,
    server: tokio::task::JoinHandle<()>,
}

/// Writes the generated data set into `dir/data` and returns that path.
pub fn write_data(dir: &std::path::Path) -> PathBuf {
    let data = dir.join("data");
    lrlab::data::synthetic::write_dataset(&data, TRAIN_IMAGES, TEST_IMAGES, 7, true)
        .expect("write the generated data set");
    data
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
    let db = format!("sqlite://{}", dir.path().join("lrlab.db").display());
    let store = Store::open(&db).await.expect("open the store");
    let config = ServiceConfig {
        devices: vec!["cpu".to_string(); workers],
        artifacts_dir: dir.path().join("artifacts"),
        data: DataConfig {
            dir: Some(data),
            allow_download: false,
        },
    };
    let service = Service::start(store.clone(), config)
        .await
        .expect("start the service");
    let app = api::router(AppState::new(service.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    TestApp {
        addr,
        client: reqwest::Client::new(),
        service,
        store,
        dir,
        server,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
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

    /// Polls until the job's status satisfies `done`, or panics after `timeout`.
    pub async fn wait_for(&self, id: i64, timeout: Duration, done: impl Fn(&str) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let job = self.job(id).await;
            if done(job["status"].as_str().unwrap_or("")) {
                return job;
            }
            assert!(
                start.elapsed() < timeout,
                "job {id} did not get there in {timeout:?}: {job}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the job to finish (succeeded, failed or canceled).
    pub async fn wait_finished(&self, id: i64) -> Value {
        self.wait_for(id, Duration::from_secs(120), |s| {
            matches!(s, "succeeded" | "failed" | "canceled")
        })
        .await
    }

    pub async fn shutdown(self) {
        self.service.shutdown().await;
        self.server.abort();
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
