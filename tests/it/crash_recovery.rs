//! Crash recovery and graceful shutdown with the real `lrlab` binary.
//!
//! A job is killed (SIGKILL) or shut down (SIGTERM) in the middle of its run;
//! a new server on the same database resumes it from its last checkpoint. Its
//! metrics must then hold every epoch exactly once and equal those of an
//! uninterrupted run of the same spec and seed.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lrlab::app::SHUTDOWN_DEADLINE;
use serde_json::{json, Value};

const EPOCHS: u32 = 12;
const TRAIN_IMAGES: usize = 4096;
const BATCH: usize = 32;

/// A `lrlab serve` child process and its address.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    /// Starts `lrlab serve` on a free port over `dir`'s database and data.
    fn start(dir: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lrlab"))
            .arg("serve")
            .args(["--bind", "127.0.0.1:0"])
            .arg("--db")
            .arg(format!("sqlite://{}", dir.join("lrlab.db").display()))
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--artifacts-dir")
            .arg(dir.join("artifacts"))
            .arg("--no-download")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start lrlab serve");
        // The server logs its address once it listens (it was asked for port 0).
        let stderr = child.stderr.take().expect("stderr");
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find("listening on http://") {
                    let address = line[at + "listening on ".len()..]
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    let _ = address_tx.send(address);
                }
                eprintln!("[server] {line}");
            }
        });
        let base = address_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the server should report its address");
        Server { child, base }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Waits up to `within` for the process to exit; returns how it exited and how long
    /// after `since` it did.
    fn wait_exit(
        &mut self,
        since: Instant,
        within: Duration,
    ) -> (std::process::ExitStatus, Duration) {
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return (status, since.elapsed());
            }
            assert!(
                since.elapsed() < within,
                "the server did not exit within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

fn job_body() -> Value {
    json!({
        "name": "resumable",
        "epochs": EPOCHS,
        "batch_size": BATCH,
        "optimizer": {"momentum": 0.9, "weight_decay": 1e-4},
        "schedule": {"kind": "cosine", "lr": 0.05, "final_lr": 0.001, "max_steps": EPOCHS},
        "seed": 11
    })
}

fn submit(server: &Server) -> i64 {
    let response = client()
        .post(format!("{}/v1/jobs", server.base))
        .json(&job_body())
        .send()
        .expect("submit");
    assert_eq!(response.status(), 201);
    response.json::<Value>().unwrap()["id"].as_i64().unwrap()
}

fn job(server: &Server, id: i64) -> Value {
    client()
        .get(format!("{}/v1/jobs/{id}", server.base))
        .send()
        .expect("get job")
        .json()
        .unwrap()
}

fn wait_until(server: &Server, id: i64, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let job = job(server, id);
        if done(&job) {
            return job;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "timed out waiting for {what}: {job}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn metrics(server: &Server, id: i64) -> Vec<Value> {
    let rows: Value = client()
        .get(format!("{}/v1/jobs/{id}/metrics", server.base))
        .send()
        .unwrap()
        .json()
        .unwrap();
    rows["epochs"].as_array().unwrap().clone()
}

fn steps(server: &Server, id: i64) -> Vec<Value> {
    let page: Value = client()
        .get(format!("{}/v1/jobs/{id}/steps?limit=100000", server.base))
        .send()
        .unwrap()
        .json()
        .unwrap();
    page["steps"].as_array().unwrap().clone()
}

/// The deterministic part of an epoch row (timings differ run to run).
fn learning_curve(rows: &[Value]) -> Vec<Vec<Value>> {
    rows.iter()
        .map(|row| {
            [
                "epoch",
                "train_loss",
                "train_acc",
                "test_loss",
                "test_acc",
                "lr",
            ]
            .iter()
            .map(|field| row[*field].clone())
            .collect()
        })
        .collect()
}

fn prepare_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    lrlab::data::synthetic::write_dataset(&dir.path().join("data"), TRAIN_IMAGES, 256, 3, false)
        .unwrap();
    dir
}

/// Asserts that `id` resumed and ended with exactly the curve of an uninterrupted run.
fn assert_resumed_like_uninterrupted(server: &Server, id: i64) {
    let resumed = wait_until(server, id, "the resumed job to finish", |j| {
        j["status"] != "queued" && j["status"] != "running"
    });
    assert_eq!(resumed["status"], "succeeded", "{resumed}");
    assert_eq!(
        resumed["attempts"], 2,
        "the job should have been resumed once: {resumed}"
    );

    let rows = metrics(server, id);
    let epochs: Vec<i64> = rows.iter().map(|r| r["epoch"].as_i64().unwrap()).collect();
    assert_eq!(
        epochs,
        (1..=i64::from(EPOCHS)).collect::<Vec<_>>(),
        "each epoch exactly once"
    );
    let steps_per_epoch = TRAIN_IMAGES.div_ceil(BATCH);
    let resumed_steps = steps(server, id);
    assert_eq!(resumed_steps.len(), EPOCHS as usize * steps_per_epoch);
    for (i, step) in resumed_steps.iter().enumerate() {
        assert_eq!(step["step"], i as u64, "per-update records are contiguous");
    }

    let reference = submit(server);
    let finished = wait_until(server, reference, "the reference job", |j| {
        j["status"] == "succeeded" || j["status"] == "failed"
    });
    assert_eq!(finished["status"], "succeeded");
    assert_eq!(
        learning_curve(&rows),
        learning_curve(&metrics(server, reference))
    );
    assert_eq!(
        resumed_steps,
        steps(server, reference),
        "the same rates and batch losses"
    );
}

#[test]
fn a_job_killed_mid_run_resumes_from_its_checkpoint_and_matches_an_uninterrupted_run() {
    let dir = prepare_dir();
    let mut server = Server::start(dir.path());
    let id = submit(&server);
    // Kill it as soon as its first epoch is stored: it is then in epoch 2.
    let before = wait_until(&server, id, "epoch 1", |j| {
        j["latest_metrics"]["epoch"].as_i64() >= Some(1)
    });
    server.signal("KILL");
    server.wait_exit(Instant::now(), Duration::from_secs(10));
    assert_eq!(before["status"], "running", "{before}");
    assert!(before["latest_metrics"]["epoch"].as_i64() < Some(i64::from(EPOCHS)));

    let server = Server::start(dir.path());
    assert_resumed_like_uninterrupted(&server, id);
}

/// The job's state in the database of a stopped server, read without starting one (a start
/// would re-queue a job left running, hiding whether shutdown did it).
fn stored_job(dir: &Path, id: i64) -> (lrlab::store::JobRecord, Vec<u32>, u64) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let url = format!("sqlite://{}", dir.join("lrlab.db").display());
        let store = lrlab::store::open(&url).await.expect("open the database");
        let id = lrlab::job::JobId::new(id);
        let record = store.job(id).await.unwrap().expect("the job");
        let epochs = store.epoch_metrics(id).await.unwrap();
        let steps = store.step_count(id).await.unwrap();
        store.close().await;
        (record, epochs.iter().map(|m| m.epoch).collect(), steps)
    })
}

#[test]
fn sigterm_requeues_the_running_job_with_its_epochs_and_exits_within_the_deadline() {
    let dir = prepare_dir();
    let mut server = Server::start(dir.path());
    let id = submit(&server);
    let before = wait_until(&server, id, "epoch 1", |j| {
        j["latest_metrics"]["epoch"].as_i64() >= Some(1)
    });
    let signaled = Instant::now();
    server.signal("TERM");
    // Watched for twice the deadline, so a late exit is measured rather than cut short.
    let (status, took) = server.wait_exit(signaled, 2 * SHUTDOWN_DEADLINE);
    assert!(
        status.success(),
        "graceful shutdown should exit 0, got {status}"
    );
    assert!(
        took < SHUTDOWN_DEADLINE,
        "exited {took:?} after SIGTERM; the documented bound is {SHUTDOWN_DEADLINE:?}"
    );

    // Shutdown itself put the job back in the queue (a crash leaves it `running`), with
    // every epoch it completed stored once and checkpointed.
    let (record, epochs, steps) = stored_job(dir.path(), id);
    assert_eq!(record.status, lrlab::job::JobStatus::Queued, "{record:?}");
    assert_eq!(record.attempts, 1);
    assert_eq!(record.worker, None);
    let done = epochs.len() as u32;
    assert!(
        i64::from(done) >= before["latest_metrics"]["epoch"].as_i64().unwrap() && done < EPOCHS,
        "{epochs:?}"
    );
    assert_eq!(epochs, (1..=done).collect::<Vec<_>>());
    assert_eq!(steps, u64::from(done) * TRAIN_IMAGES.div_ceil(BATCH) as u64);
    assert_eq!(record.progress_epoch, i64::from(done));
    let checkpoint =
        lrlab::train::checkpoint::read_meta(&dir.path().join("artifacts").join(id.to_string()))
            .expect("read the checkpoint")
            .expect("a checkpoint");
    assert_eq!(
        checkpoint.epoch, done,
        "the checkpoint holds the last stored epoch"
    );

    let server = Server::start(dir.path());
    assert_resumed_like_uninterrupted(&server, id);
}
