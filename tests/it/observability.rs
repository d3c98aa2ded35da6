//! `GET /metrics` and the logs: what an operator's monitoring and log collector see.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::{small_job, spawn_app, write_data};
use serde_json::Value;

/// The value of the sample `name{labels}` (labels exactly as rendered), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            line.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
}

async fn scrape(app: &crate::support::TestApp) -> String {
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    let kind = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    response.text().await.unwrap()
}

#[tokio::test]
async fn metrics_count_jobs_epochs_and_requests_by_route_template() {
    let app = spawn_app(1).await;
    let id = app.submit(&small_job(2)).await;
    app.wait_finished(id).await;
    // Two more that stay queued: the worker is stopped first.
    app.service().begin_shutdown();
    app.submit(&small_job(1)).await;
    app.submit(&small_job(1)).await;
    for _ in 0..3 {
        app.get(&format!("/v1/jobs/{id}")).await;
    }
    app.get("/no/such/route").await;

    let text = scrape(&app).await;
    // Counted from this server's store at scrape time.
    assert_eq!(
        sample(&text, r#"lrlab_jobs{status="queued"}"#),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"lrlab_jobs{status="succeeded"}"#),
        Some(1.0)
    );
    assert_eq!(sample(&text, r#"lrlab_jobs{status="failed"}"#), Some(0.0));
    assert_eq!(sample(&text, "lrlab_queue_depth"), Some(2.0));
    // Counters are per process (other tests' servers add to them): at least ours.
    assert!(sample(&text, "lrlab_jobs_started_total") >= Some(1.0));
    assert!(sample(&text, "lrlab_epochs_completed_total") >= Some(2.0));
    assert!(sample(&text, r#"lrlab_jobs_finished_total{status="succeeded"}"#) >= Some(1.0));
    assert!(text.contains("lrlab_worker_examples_per_second{worker=\"worker-0\"}"));
    let requests = r#"lrlab_http_requests_total{route="/v1/jobs/{id}",method="GET",status="200"}"#;
    assert!(sample(&text, requests) >= Some(3.0), "{text}");
    assert!(
        sample(
            &text,
            r#"lrlab_http_requests_total{route="unmatched",method="GET",status="404"}"#
        ) >= Some(1.0)
    );
    assert!(
        text.contains(r#"lrlab_http_request_duration_seconds_bucket{route="/v1/jobs/{id}",method="GET",le="0.001"}"#),
        "a histogram by route template"
    );
    assert!(
        !text.contains(&format!("route=\"/v1/jobs/{id}\"")),
        "never the raw path"
    );
    assert!(text.contains("# TYPE lrlab_http_request_duration_seconds histogram"));
    assert!(text.contains("# HELP lrlab_jobs "));
    app.shutdown().await;
}

/// Runs `lrlab serve --log-format json` over a generated data set, submits a job, waits
/// for it, and returns every log line as JSON.
fn json_logs_of_one_job() -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let data = write_data(dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_lrlab"))
        .args([
            "--log-format",
            "json",
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--no-download",
        ])
        .arg("--db")
        .arg(format!(
            "sqlite://{}",
            dir.path().join("lrlab.db").display()
        ))
        .arg("--data-dir")
        .arg(&data)
        .arg("--artifacts-dir")
        .arg(dir.path().join("artifacts"))
        .env("LRLAB_LOG", "info")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start lrlab serve");
    let stderr = child.stderr.take().unwrap();
    let (lines_tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut logs: Vec<Value> = Vec::new();
    let next = |logs: &mut Vec<Value>, until: &dyn Fn(&Value) -> bool| -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines.recv_timeout(left).expect("the log line came in time");
            let entry: Value = serde_json::from_str(&line)
                .unwrap_or_else(|err| panic!("not a JSON log line ({err}): {line}"));
            logs.push(entry.clone());
            if until(&entry) {
                return entry;
            }
        }
    };
    let message = |entry: &Value| {
        entry["fields"]["message"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let listening = next(&mut logs, &|e| message(e).contains("listening on http://"));
    let address = listening["fields"]["address"].as_str().unwrap().to_string();
    let client = reqwest::blocking::Client::new();
    let job: Value = client
        .post(format!("http://{address}/v1/jobs"))
        .header("x-request-id", "log-test-1")
        .json(&small_job(2))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let id = job["id"].as_i64().unwrap();
    next(&mut logs, &|e| message(e) == "job ended");
    let _ = child.kill();
    let _ = child.wait();
    assert!(id > 0);
    logs
}

#[test]
fn logs_have_a_line_per_request_and_per_job_event_with_their_ids() {
    let logs = json_logs_of_one_job();
    let message = |entry: &Value| {
        entry["fields"]["message"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let request = logs
        .iter()
        .find(|e| message(e) == "request" && e["fields"]["request_id"] == "log-test-1")
        .unwrap_or_else(|| panic!("no request line in {logs:#?}"));
    assert_eq!(request["fields"]["route"], "/v1/jobs");
    assert_eq!(request["fields"]["method"], "POST");
    assert_eq!(request["fields"]["status"], 201);
    assert!(request["fields"]["latency_ms"].as_f64().unwrap() >= 0.0);

    // The job id is on every job event: a field of the line or of its `job` span.
    let job_id_of = |entry: &Value| {
        entry["fields"]["job"]
            .as_str()
            .map(str::to_string)
            .or_else(|| entry["span"]["id"].as_str().map(str::to_string))
            .or_else(|| entry["fields"]["job"].as_i64().map(|i| i.to_string()))
    };
    for event in ["job queued", "job started", "epoch stored", "job ended"] {
        let lines: Vec<&Value> = logs.iter().filter(|e| message(e) == event).collect();
        assert!(!lines.is_empty(), "no `{event}` line in {logs:#?}");
        for line in &lines {
            assert_eq!(job_id_of(line).as_deref(), Some("1"), "{event}: {line}");
        }
    }
    let epochs = logs.iter().filter(|e| message(e) == "epoch stored").count();
    assert_eq!(epochs, 2);
}
