//! One queue, several processes: `lrlab serve --workers 0` (the API) and three
//! `lrlab worker` processes — the real binary — on one PostgreSQL database, with short
//! leases (heartbeat 1 s, lease 3 s). Thirty short jobs and a small sweep run while one
//! worker is SIGKILLed in the middle of a job and another is SIGSTOPped past its lease
//! and then continued. Every job must end `succeeded`, with each epoch stored once and
//! the curve of an uninterrupted run of its spec and seed; the stopped worker must
//! notice it lost its lease and write nothing more; the API replica's SSE streams must
//! carry the epochs of jobs every worker trained. A second test restarts the database
//! under an API and two workers; a third puts 1,000 jobs through two API replicas and
//! three workers, and prints the submit throughput and the claim turnaround.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::write_data;
use crate::test_db::TestDb;

const SHORT_JOBS: usize = 30;
const SHORT_EPOCHS: u64 = 3;
const LONG_EPOCHS: u64 = 25;
const DEADLINE: Duration = Duration::from_secs(150);

/// A child `lrlab` process whose log lines are kept (and echoed to the test's output).
struct Process {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Process {
    fn start(name: &str, args: &[String]) -> Process {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lrlab"))
            .args(args)
            .env("LRLAB_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start lrlab");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&log);
        let name = name.to_string();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[{name}] {line}");
                lines.lock().unwrap().push(line);
            }
        });
        Process { child, log }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {}", self.pid());
    }

    /// Whether the process is still alive (it has not exited).
    fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn logged(&self, text: &str) -> bool {
        self.log
            .lock()
            .unwrap()
            .iter()
            .any(|line| line.contains(text))
    }

    /// Waits for a log line containing `marker` and returns the rest of the line after it.
    async fn wait_for_line(&self, marker: &str) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(line) = self.log.lock().unwrap().iter().find_map(|line| {
                line.find(marker)
                    .map(|at| line[at + marker.len()..].to_string())
            }) {
                return line;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no `{marker}` in the log"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.pid().to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn job(name: &str, seed: u64, epochs: u64, priority: i64) -> Value {
    json!({
        "name": name,
        "epochs": epochs,
        "batch_size": 64,
        "optimizer": {"momentum": 0.9},
        "schedule": {"kind": "constant", "lr": 0.05},
        "seed": seed,
        "priority": priority,
    })
}

/// What a run learned (`GET /v1/jobs/{id}/metrics`), without its timings.
fn curve(rows: &Value) -> Vec<(u64, String)> {
    rows["epochs"]
        .as_array()
        .expect("metrics rows")
        .iter()
        .map(|row| {
            let figures = ["train_loss", "train_acc", "test_loss", "test_acc", "lr"]
                .map(|key| row[key].to_string())
                .join(",");
            (row["epoch"].as_u64().expect("an epoch"), figures)
        })
        .collect()
}

struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    async fn get(&self, path: &str) -> Value {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("JSON")
    }

    async fn post(&self, path: &str, body: &Value) -> Value {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .expect("POST");
        assert_eq!(response.status(), 201, "POST {path}");
        response.json().await.expect("JSON")
    }

    /// Submits a job; a 503 (the database not reachable for the moment, with a
    /// `Retry-After`) is tried again, as a client would; any other answer but 201 fails.
    async fn submit_retrying(&self, body: &Value) -> i64 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let response = self
                .client
                .post(format!("{}/v1/jobs", self.base))
                .json(body)
                .send()
                .await
                .expect("POST");
            match response.status().as_u16() {
                201 => {
                    let created: Value = response.json().await.expect("JSON");
                    return created["id"].as_i64().expect("an id");
                }
                503 if response.headers().contains_key("retry-after") => {
                    assert!(tokio::time::Instant::now() < deadline, "still 503");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                status => panic!(
                    "POST /v1/jobs: {status}: {}",
                    response.text().await.unwrap_or_default()
                ),
            }
        }
    }

    /// The whole SSE stream of a job, until its `done` event ends it.
    fn stream(&self, id: i64) -> tokio::task::JoinHandle<String> {
        let request = self
            .client
            .get(format!("{}/v1/jobs/{id}/events", self.base));
        tokio::spawn(async move {
            let response = request.send().await.expect("GET events");
            tokio::time::timeout(DEADLINE, response.text())
                .await
                .expect("the stream ends with the job")
                .expect("the stream's text")
        })
    }
}

impl Api {
    /// Waits until no job is queued, running or paused. Answers that are errors (a
    /// database restarting) count as not yet.
    async fn wait_until_all_ended(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let open = self
                .get("/v1/jobs?status=queued,running,paused&limit=1")
                .await;
            if open["total"] == 0 {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "jobs left: {open}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Every interrupted long job has the curve of the uninterrupted `reference` (each
    /// epoch once), and short jobs of one seed all have the same curve, of
    /// [`SHORT_EPOCHS`] epochs.
    async fn assert_curves_match(&self, reference: i64, long: &[i64], seeds: &HashMap<i64, u64>) {
        let reference_curve = curve(&self.get(&format!("/v1/jobs/{reference}/metrics")).await);
        assert_eq!(
            reference_curve
                .iter()
                .map(|(epoch, _)| *epoch)
                .collect::<Vec<_>>(),
            (1..=LONG_EPOCHS).collect::<Vec<_>>()
        );
        for id in long {
            let resumed = curve(&self.get(&format!("/v1/jobs/{id}/metrics")).await);
            assert_eq!(
                resumed, reference_curve,
                "job {id} resumed like an uninterrupted run"
            );
        }
        let mut by_seed: HashMap<u64, Vec<(u64, String)>> = HashMap::new();
        for (id, seed) in seeds {
            let rows = curve(&self.get(&format!("/v1/jobs/{id}/metrics")).await);
            assert_eq!(rows.len() as u64, SHORT_EPOCHS, "job {id}");
            match by_seed.get(seed) {
                Some(first) => assert_eq!(&rows, first, "job {id}: same spec, same curve"),
                None => {
                    by_seed.insert(*seed, rows);
                }
            }
        }
    }
}

/// `lrlab serve --workers 0` on a free port, once it listens.
async fn start_api(common: &[String]) -> (Process, Api) {
    let mut serve_args = vec!["serve".to_string(), "--workers".into(), "0".into()];
    serve_args.extend(["--bind".into(), "127.0.0.1:0".into()]);
    serve_args.extend(common.iter().cloned());
    let process = Process::start("api", &serve_args);
    let address = process.wait_for_line("listening on http://").await;
    let address = address.split_whitespace().next().expect("an address");
    let api = Api {
        client: reqwest::Client::new(),
        base: format!("http://{address}"),
    };
    (process, api)
}

/// `count` `lrlab worker` processes, once all of them are registered (before work arrives).
async fn start_workers(api: &Api, common: &[String], count: usize) -> Vec<Process> {
    let workers: Vec<Process> = (0..count)
        .map(|i| {
            let mut args = vec!["worker".to_string()];
            args.extend(common.iter().cloned());
            Process::start(&format!("worker-{i}"), &args)
        })
        .collect();
    let pids: BTreeSet<u32> = workers.iter().map(Process::pid).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let listed = api.get("/v1/workers").await;
        let seen: BTreeSet<u32> = listed["workers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["pid"].as_u64().unwrap() as u32)
            .collect();
        if seen == pids {
            return workers;
        }
        assert!(tokio::time::Instant::now() < deadline, "workers: {listed}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A temp dir with the generated data set, and the arguments every process of a test
/// gets for it and the database `db`; the dir lives as long as the returned handle.
fn working_dir(db: &str) -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    write_data(dir.path());
    let common = common_args(db, dir.path());
    (dir, common)
}

fn common_args(db: &str, dir: &Path) -> Vec<String> {
    [
        "--db",
        db,
        "--data-dir",
        &dir.join("data").display().to_string(),
        "--artifacts-dir",
        &dir.join("artifacts").display().to_string(),
        "--no-download",
        "--heartbeat",
        "1",
        "--lease",
        "3",
    ]
    .map(String::from)
    .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_shared_by_three_worker_processes_survives_a_killed_and_a_stalled_worker() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let (_dir, common) = working_dir(&db.url);

    let (api_process, api) = start_api(&common).await;
    let workers = start_workers(&api, &common, 3).await;
    let pids: BTreeSet<u32> = workers.iter().map(Process::pid).collect();

    // Short jobs on three seeds; then two long jobs to interrupt and, last, a third of
    // the same spec that runs uninterrupted as their reference.
    let mut streams = BTreeMap::new();
    let mut seeds = HashMap::new();
    for i in 0..SHORT_JOBS {
        let seed = (i % 3) as u64 + 1;
        let created = api
            .post(
                "/v1/jobs",
                &job(&format!("short-{i}"), seed, SHORT_EPOCHS, 0),
            )
            .await;
        let id = created["id"].as_i64().unwrap();
        seeds.insert(id, seed);
        streams.insert(id, api.stream(id));
    }
    let sweep = api
        .post(
            "/v1/sweeps",
            &json!({
                "name": "cluster",
                "base": {"epochs": 2, "batch_size": 64, "schedule": {"kind": "constant", "lr": 0.05}},
                "grid": {"schedule.lr": [0.05, 0.1]},
                "seeds": [0, 1],
            }),
        )
        .await;
    let sweep_id = sweep["id"].as_i64().unwrap();
    let mut long = Vec::new();
    for i in 0..2 {
        let created = api
            .post("/v1/jobs", &job(&format!("long-{i}"), 9, LONG_EPOCHS, -1))
            .await;
        long.push(created["id"].as_i64().unwrap());
    }
    let reference = api
        .post("/v1/jobs", &job("long-reference", 9, LONG_EPOCHS, -2))
        .await["id"]
        .as_i64()
        .unwrap();

    // Which worker process trains which job, from the API's worker list.
    let trained_by: Arc<Mutex<BTreeMap<i64, BTreeSet<u32>>>> = Arc::default();
    let watching = {
        let trained_by = Arc::clone(&trained_by);
        let client = api.client.clone();
        let url = format!("{}/v1/workers", api.base);
        tokio::spawn(async move {
            loop {
                if let Ok(response) = client.get(&url).send().await {
                    if let Ok(listed) = response.json::<Value>().await {
                        for worker in listed["workers"].as_array().into_iter().flatten() {
                            if let (Some(job), Some(pid)) =
                                (worker["job_id"].as_i64(), worker["pid"].as_u64())
                            {
                                trained_by
                                    .lock()
                                    .unwrap()
                                    .entry(job)
                                    .or_default()
                                    .insert(pid as u32);
                            }
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    // Once both long jobs run, SIGKILL the worker of one and SIGSTOP the other's.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let holders = loop {
        let listed = api.get("/v1/workers").await;
        let holders: Vec<(i64, u32)> = listed["workers"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|w| {
                let job = w["job_id"].as_i64()?;
                long.contains(&job)
                    .then(|| (job, w["pid"].as_u64().unwrap() as u32))
            })
            .collect();
        let progressed = {
            let mut all = true;
            for (job, _) in &holders {
                all &= api.get(&format!("/v1/jobs/{job}")).await["progress"]["epoch"]
                    .as_u64()
                    .unwrap_or(0)
                    >= 2;
            }
            all
        };
        if holders.len() == 2 && progressed {
            break holders;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the long jobs never ran together"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let process = |pid: u32| workers.iter().find(|w| w.pid() == pid).unwrap();
    let (killed_job, killed_pid) = holders[0];
    let (stalled_job, stalled_pid) = holders[1];
    process(killed_pid).signal("KILL");
    process(stalled_pid).signal("STOP");
    // Past the lease, the stalled worker's job is taken back and claimed again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let job = api.get(&format!("/v1/jobs/{stalled_job}")).await;
        if job["attempts"].as_i64() >= Some(2) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never re-queued: {job}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    process(stalled_pid).signal("CONT");

    api.wait_until_all_ended(DEADLINE).await;
    watching.abort();

    let all = api.get("/v1/jobs?limit=1000").await;
    let jobs = all["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), SHORT_JOBS + 4 + 3, "{all}");
    for job in jobs {
        assert_eq!(job["status"], "succeeded", "{job}");
    }
    for id in [killed_job, stalled_job] {
        let job = api.get(&format!("/v1/jobs/{id}")).await;
        assert!(job["attempts"].as_i64() >= Some(2), "resumed: {job}");
    }

    // Each epoch stored once, and the curve of an uninterrupted run of the same spec.
    api.assert_curves_match(reference, &long, &seeds).await;
    let sweep = api.get(&format!("/v1/sweeps/{sweep_id}")).await;
    assert_eq!(sweep["status"], "succeeded", "{sweep}");

    // The stalled worker found out it had lost the job, and stopped it without writing.
    assert!(
        process(stalled_pid).logged("lost the job's lease"),
        "the stalled worker did not notice it lost its lease"
    );

    // The API replica streamed every short job to its end, whichever process trained it.
    let mut streamed_from = BTreeSet::new();
    let trained_by = trained_by.lock().unwrap().clone();
    for (id, stream) in streams {
        let text = stream.await.expect("the stream task");
        assert_eq!(
            text.matches("event: epoch").count() as u64,
            SHORT_EPOCHS,
            "job {id}: {text}"
        );
        assert!(text.contains("event: done"), "job {id}: {text}");
        streamed_from.extend(trained_by.get(&id).into_iter().flatten().copied());
    }
    assert_eq!(
        streamed_from, pids,
        "the streamed jobs were trained by every worker process"
    );
    drop(api_process);
}

/// The same queue across a database restart (`pg_ctl restart -m fast`, which cuts every
/// connection) while a long job trains: the API and both workers reconnect and keep
/// running, jobs submitted after the restart are claimed, every job ends `succeeded`, and
/// the long job's curve is that of an uninterrupted run, each epoch stored once. The
/// server is the test's own, since the other tests' databases share the CI one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_mid_run_loses_nothing() {
    let Some(server) = crate::test_db::Cluster::private() else {
        return;
    };
    let (_dir, common) = working_dir(&server.url);
    let (mut api_process, api) = start_api(&common).await;
    let mut workers = start_workers(&api, &common, 2).await;

    let mut seeds = HashMap::new();
    for i in 0..4 {
        let seed = (i % 2) as u64 + 1;
        let id = api
            .submit_retrying(&job(&format!("before-{i}"), seed, SHORT_EPOCHS, 0))
            .await;
        seeds.insert(id, seed);
    }
    let long = api.submit_retrying(&job("long", 9, LONG_EPOCHS, -1)).await;

    // Restart once the long job is well into its run.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let job = api.get(&format!("/v1/jobs/{long}")).await;
        let epoch = job["progress"]["epoch"].as_u64().unwrap_or(0);
        if job["status"] == "running" && epoch >= 2 {
            assert!(
                epoch < LONG_EPOCHS,
                "restart before the long job ends: {job}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the long job never ran: {job}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _server = tokio::task::spawn_blocking(move || {
        server.restart();
        server
    })
    .await
    .expect("the restart");

    // Submitted after the restart: claimed by workers whose connections were all cut.
    for i in 0..4 {
        let seed = (i % 2) as u64 + 1;
        let id = api
            .submit_retrying(&job(&format!("after-{i}"), seed, SHORT_EPOCHS, 0))
            .await;
        seeds.insert(id, seed);
    }
    let reference = api
        .submit_retrying(&job("long-reference", 9, LONG_EPOCHS, -2))
        .await;
    api.wait_until_all_ended(DEADLINE).await;

    let all = api.get("/v1/jobs?limit=100").await;
    let jobs = all["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 10, "{all}");
    for job in jobs {
        assert_eq!(job["status"], "succeeded", "{job}");
    }
    api.assert_curves_match(reference, &[long], &seeds).await;
    assert!(api_process.is_running(), "the API exited");
    for worker in &mut workers {
        assert!(worker.is_running(), "a worker exited across the restart");
    }
}

const LOAD_JOBS: usize = 1000;

/// 1,000 one-step jobs submitted concurrently through two API replicas and claimed by
/// three worker processes: every job is claimed once (one attempt, one epoch row) and
/// none is lost. Prints the submit throughput and, per worker, the turnaround from one
/// job's end to the start of its next (the claim under a full queue): the figures the
/// README states. Nothing is asserted on them (speed is measured, not tested).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_jobs_through_two_replicas_are_each_claimed_once() {
    use futures::StreamExt;

    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let (_dir, common) = working_dir(&db.url);
    let (_api_a, api_a) = start_api(&common).await;
    let (_api_b, api_b) = start_api(&common).await;
    let workers = start_workers(&api_a, &common, 3).await;

    let body = json!({
        "epochs": 1,
        "batch_size": 64,
        "train_limit": 64,
        "test_limit": 64,
        "schedule": {"kind": "constant", "lr": 0.05},
    });
    let submitted = std::time::Instant::now();
    let ids: Vec<i64> = futures::stream::iter(0..LOAD_JOBS)
        .map(|i| {
            let api = if i % 2 == 0 { &api_a } else { &api_b };
            let body = &body;
            async move { api.submit_retrying(body).await }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let submit_seconds = submitted.elapsed().as_secs_f64();
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), LOAD_JOBS);
    api_b.wait_until_all_ended(Duration::from_secs(400)).await;
    let drained_seconds = submitted.elapsed().as_secs_f64();

    let pool = sqlx::PgPool::connect(&db.url).await.expect("connect");
    let (jobs, succeeded, once): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE status = 'succeeded'), \
                count(*) FILTER (WHERE attempts = 1) FROM jobs",
    )
    .fetch_one(&pool)
    .await
    .expect("count the jobs");
    assert_eq!(jobs, LOAD_JOBS as i64, "none lost, none made up");
    assert_eq!(succeeded, LOAD_JOBS as i64, "every job succeeded");
    assert_eq!(once, LOAD_JOBS as i64, "every job was claimed exactly once");
    let (rows, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT job_id) FROM epoch_metrics")
            .fetch_one(&pool)
            .await
            .expect("count the epochs");
    assert_eq!(
        (rows, distinct),
        (LOAD_JOBS as i64, LOAD_JOBS as i64),
        "one epoch each"
    );
    let by_process: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT worker_pid, count(*) FROM jobs GROUP BY worker_pid ORDER BY worker_pid",
    )
    .fetch_all(&pool)
    .await
    .expect("jobs per worker");
    assert_eq!(
        by_process.len(),
        workers.len(),
        "every worker took jobs: {by_process:?}"
    );
    // The turnaround of a worker process between two jobs: the end of one, the claim of
    // the next (started_at is set by the claim), in milliseconds.
    let (p50, p90, p99): (f64, f64, f64) = sqlx::query_as(
        "WITH gaps AS ( \
           SELECT (extract(epoch FROM started_at - lag(finished_at) OVER \
             (PARTITION BY worker_host, worker_pid ORDER BY started_at)) * 1000)::float8 AS ms \
           FROM jobs) \
         SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), \
                percentile_cont(0.9) WITHIN GROUP (ORDER BY ms), \
                percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) \
         FROM gaps WHERE ms IS NOT NULL",
    )
    .fetch_one(&pool)
    .await
    .expect("the claim turnaround");
    pool.close().await;
    eprintln!(
        "load: {LOAD_JOBS} jobs submitted through 2 API replicas in {submit_seconds:.2} s \
         ({:.0} jobs/s, 32 requests in flight); all ended after {drained_seconds:.1} s; \
         jobs per worker {:?}; a worker's end-to-next-claim turnaround p50 {p50:.1} ms, \
         p90 {p90:.1} ms, p99 {p99:.1} ms",
        LOAD_JOBS as f64 / submit_seconds,
        by_process.iter().map(|(_, n)| n).collect::<Vec<_>>(),
    );
}
