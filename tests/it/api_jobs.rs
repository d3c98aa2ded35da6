//! The jobs API end to end: a real server, a real SQLite file, real training
//! on a small generated data set.

use crate::support::{error_of, learning_job, small_job, spawn_app, spawn_app_with, TRAIN_IMAGES};
use lrlab::job::JobId;
use serde_json::{json, Value};

#[tokio::test]
async fn a_job_goes_from_queued_to_succeeded_with_a_row_per_epoch_and_per_update() {
    let app = spawn_app(1).await;
    let response = app.post_json("/v1/jobs", &learning_job(3)).await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let job: Value = response.json().await.unwrap();
    let id = job["id"].as_i64().unwrap();
    assert_eq!(location, format!("/v1/jobs/{id}"));
    assert!(matches!(job["status"].as_str(), Some("queued" | "running")));
    // Defaults are filled in and stored.
    let spec = &job["spec"];
    assert_eq!(spec["model"], "lenet");
    assert_eq!(spec["dataset"], "fashion-mnist");
    assert_eq!(spec["schedule_unit"], "epoch");
    assert_eq!(spec["optimizer"]["kind"], "sgd");
    assert_eq!(spec["optimizer"]["nesterov"], false);
    assert_eq!(spec["name"], "constant");

    let job = app.wait_finished(id).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["attempts"], 1);
    assert_eq!(job["progress"]["fraction"], 1.0);
    assert_eq!(job["progress"]["epoch"], 3);
    assert!(job["started_at"].is_string() && job["finished_at"].is_string());
    assert_eq!(job["latest_metrics"]["epoch"], 3);
    // It learned: chance is 0.1, and this job reaches 0.88 (0.73 at worst over seeds 0–5).
    let test_acc = job["latest_metrics"]["test_acc"].as_f64().unwrap();
    assert!(test_acc > 0.6, "the job did not learn: {job}");

    let rows: Value = app
        .get(&format!("/v1/jobs/{id}/metrics"))
        .await
        .json()
        .await
        .unwrap();
    let epochs: Vec<i64> = rows["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["epoch"].as_i64().unwrap())
        .collect();
    assert_eq!(epochs, vec![1, 2, 3]);
    let loss = |row: usize| rows["epochs"][row]["train_loss"].as_f64().unwrap();
    assert!(loss(2) < loss(0), "the training loss should fall: {rows}");

    let steps_per_epoch = TRAIN_IMAGES.div_ceil(32);
    let steps: Value = app
        .get(&format!("/v1/jobs/{id}/steps?limit=100000"))
        .await
        .json()
        .await
        .unwrap();
    let steps = steps["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3 * steps_per_epoch);
    for (i, step) in steps.iter().enumerate() {
        assert_eq!(step["step"], i as u64);
        assert_eq!(step["lr"], 0.05);
        assert!(step["loss"].as_f64().unwrap().is_finite());
    }

    let weights = app.get(&format!("/v1/jobs/{id}/weights")).await;
    assert_eq!(weights.status(), 200);
    let bytes = weights.bytes().await.unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    assert!(
        header
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.contains("conv1")),
        "{header}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn metrics_come_as_rows_series_and_csv() {
    let app = spawn_app(1).await;
    let id = app.submit(&small_job(2)).await;
    app.wait_finished(id).await;

    let series: Value = app
        .get(&format!("/v1/jobs/{id}/metrics?format=series"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(series["epoch"], json!([1, 2]));
    for metric in [
        "train_loss",
        "train_acc",
        "test_loss",
        "test_acc",
        "lr",
        "seconds",
        "examples_per_sec",
    ] {
        assert_eq!(series[metric].as_array().unwrap().len(), 2, "{metric}");
    }
    assert_eq!(series["lr"], json!([0.05, 0.05]));

    let csv = app.get(&format!("/v1/jobs/{id}/metrics?format=csv")).await;
    assert!(csv.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = csv.text().await.unwrap();
    assert_eq!(text.lines().count(), 3);
    assert!(text.starts_with("epoch,train_loss,train_acc,test_loss,test_acc,lr"));

    let (status, error) =
        error_of(app.get(&format!("/v1/jobs/{id}/metrics?format=xml")).await).await;
    assert_eq!(status, 400);
    assert_eq!(error["path"], "format");
    app.shutdown().await;
}

#[tokio::test]
async fn each_validation_rule_is_a_422_naming_the_field() {
    let app = spawn_app(0).await;
    let base = small_job(1);
    let with = |patch: Value| {
        let mut body = base.clone();
        for (key, value) in patch.as_object().unwrap() {
            body[key] = value.clone();
        }
        body
    };
    let cases = [
        (with(json!({"epochs": 0})), "epochs", "out_of_range"),
        (with(json!({"epochs": 1001})), "epochs", "out_of_range"),
        (with(json!({"batch_size": 0})), "batch_size", "out_of_range"),
        (
            with(json!({"batch_size": 60001})),
            "batch_size",
            "out_of_range",
        ),
        (with(json!({"model": "resnet"})), "model", "unknown_value"),
        (
            with(json!({"dataset": "mnist"})),
            "dataset",
            "unknown_value",
        ),
        (
            with(json!({"optimizer": {"momentum": 1.0}})),
            "optimizer.momentum",
            "out_of_range",
        ),
        (
            with(json!({"optimizer": {"weight_decay": -0.1}})),
            "optimizer.weight_decay",
            "out_of_range",
        ),
        (
            with(json!({"optimizer": {"nesterov": true}})),
            "optimizer.nesterov",
            "invalid_value",
        ),
        (
            with(json!({"optimizer": {"kind": "adam"}})),
            "optimizer.kind",
            "unknown_value",
        ),
        (
            with(json!({"optimizer": {"momentun": 0.9}})),
            "optimizer.momentun",
            "unknown_field",
        ),
        (with(json!({"epoch": 3})), "epoch", "unknown_field"),
        (
            with(json!({"schedule_unit": "batch"})),
            "schedule_unit",
            "unknown_value",
        ),
        (
            with(json!({"train_limit": 0})),
            "train_limit",
            "out_of_range",
        ),
        (with(json!({"epochs": "ten"})), "epochs", "invalid_type"),
        (
            with(json!({"schedule": {"kind": "cosine", "lr": 0.1}})),
            "schedule.max_steps",
            "missing_field",
        ),
        (with(json!({"name": ""})), "name", "invalid_value"),
    ];
    for (body, path, code) in cases {
        let (status, error) = error_of(app.post_json("/v1/jobs", &body).await).await;
        assert_eq!(status, 422, "{body}: {error}");
        assert_eq!(error["path"], path, "{body}: {error}");
        assert_eq!(error["code"], code, "{body}: {error}");
    }
    let mut missing = base.clone();
    missing.as_object_mut().unwrap().remove("schedule");
    let (status, error) = error_of(app.post_json("/v1/jobs", &missing).await).await;
    assert_eq!((status, error["path"].as_str()), (422, Some("schedule")));

    let listed: Value = app.get("/v1/jobs").await.json().await.unwrap();
    assert_eq!(
        listed["total"], 0,
        "a rejected submission must not be stored"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn unknown_jobs_are_404_with_the_error_json() {
    let app = spawn_app(0).await;
    for path in [
        "/v1/jobs/999",
        "/v1/jobs/abc",
        "/v1/jobs/999/metrics",
        "/v1/jobs/999/steps",
        "/v1/jobs/999/weights",
        "/v1/jobs/999/events",
    ] {
        let (status, error) = error_of(app.get(path).await).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(error["code"], "not_found", "{path}");
    }
    let (status, _) = error_of(
        app.client
            .post(app.url("/v1/jobs/999/cancel"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = error_of(
        app.client
            .delete(app.url("/v1/jobs/999"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    app.shutdown().await;
}

#[tokio::test]
async fn a_queued_job_is_canceled_at_once_and_a_finished_one_cannot_be() {
    let app = spawn_app(0).await;
    let id = app.submit(&small_job(1)).await;
    let response = app
        .client
        .post(app.url(&format!("/v1/jobs/{id}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let job: Value = response.json().await.unwrap();
    assert_eq!(job["status"], "canceled");
    let (status, error) = error_of(
        app.client
            .post(app.url(&format!("/v1/jobs/{id}/cancel")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(error["code"], "job_finished");
    app.shutdown().await;
}

#[tokio::test]
async fn deleting_removes_a_finished_job_with_its_metrics_and_artifacts() {
    let app = spawn_app(1).await;
    let id = app.submit(&small_job(1)).await;
    app.wait_finished(id).await;
    let artifacts = app.dir.path().join("artifacts").join(id.to_string());
    assert!(artifacts.exists(), "artifacts should exist before deletion");
    let response = app
        .client
        .delete(app.url(&format!("/v1/jobs/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(app.get(&format!("/v1/jobs/{id}")).await.status(), 404);
    assert!(app
        .store()
        .epoch_metrics(JobId::new(id))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(app.store().step_count(JobId::new(id)).await.unwrap(), 0);
    assert!(!artifacts.exists(), "artifacts should be gone");
    app.shutdown().await;
}

#[tokio::test]
async fn a_queued_job_cannot_be_deleted() {
    let app = spawn_app(0).await;
    let id = app.submit(&small_job(1)).await;
    let (status, error) = error_of(
        app.client
            .delete(app.url(&format!("/v1/jobs/{id}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(error["code"], "job_not_finished");
    app.shutdown().await;
}

#[tokio::test]
async fn listing_pages_newest_first_and_filters_by_status_and_name() {
    let app = spawn_app(0).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut body = small_job(1);
        body["name"] = json!(if i % 2 == 0 { "even" } else { "odd" });
        ids.push(app.submit(&body).await);
    }
    app.client
        .post(app.url(&format!("/v1/jobs/{}/cancel", ids[0])))
        .send()
        .await
        .unwrap();

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/jobs?limit=2&cursor={c}"),
            None => "/v1/jobs?limit=2".to_string(),
        };
        let page: Value = app.get(&path).await.json().await.unwrap();
        assert_eq!(page["total"], 5);
        seen.extend(
            page["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|j| j["id"].as_i64().unwrap()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);

    let queued: Value = app
        .get("/v1/jobs?status=queued")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(queued["total"], 4);
    let both: Value = app
        .get("/v1/jobs?status=queued&status=canceled")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(both["total"], 5);
    let even: Value = app
        .get("/v1/jobs?name=even&status=queued")
        .await
        .json()
        .await
        .unwrap();
    let even_ids: Vec<i64> = even["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_i64().unwrap())
        .collect();
    assert_eq!(even_ids, vec![ids[4], ids[2]]);

    let (status, error) = error_of(app.get("/v1/jobs?limit=5000").await).await;
    assert_eq!((status, error["path"].as_str()), (400, Some("limit")));
    app.shutdown().await;
}

#[tokio::test]
async fn queue_position_follows_priority_then_age() {
    let app = spawn_app(0).await;
    let low = app.submit(&small_job(1)).await;
    let mut urgent = small_job(1);
    urgent["priority"] = json!(5);
    let high = app.submit(&urgent).await;
    assert_eq!(app.job(high).await["queue_position"], 0);
    assert_eq!(app.job(low).await["queue_position"], 1);
    app.shutdown().await;
}

#[tokio::test]
async fn an_idempotency_key_returns_the_first_job_instead_of_a_duplicate() {
    let app = spawn_app(0).await;
    let post = |body: Value, key: &'static str| {
        app.client
            .post(app.url("/v1/jobs"))
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    let first = post(small_job(1), "abc-1").await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let retry = post(small_job(1), "abc-1").await.unwrap();
    assert_eq!(retry.status(), 200);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(retry["id"], first["id"]);
    let (status, error) = error_of(post(small_job(2), "abc-1").await.unwrap()).await;
    assert_eq!(status, 409);
    assert_eq!(error["code"], "idempotency_key_reused");
    let listed: Value = app.get("/v1/jobs").await.json().await.unwrap();
    assert_eq!(listed["total"], 1);
    app.shutdown().await;
}

fn warning_codes(job: &Value) -> Vec<String> {
    job["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn jobs_that_will_not_run_as_meant_carry_warnings() {
    let app = spawn_app(0).await;
    async fn submit_with(app: &crate::support::TestApp, schedule: Value, unit: &str) -> Value {
        let body = json!({"epochs": 10, "schedule": schedule, "schedule_unit": unit});
        let response = app.post_json("/v1/jobs", &body).await;
        assert_eq!(response.status(), 201);
        response.json::<Value>().await.unwrap()
    }
    let submit = |schedule: Value, unit: &'static str| submit_with(&app, schedule, unit);
    // max_steps counted in updates on a job stepped per epoch.
    let job = submit(
        json!({"kind": "cosine", "lr": 0.3, "max_steps": 2345}),
        "epoch",
    )
    .await;
    assert_eq!(warning_codes(&job), vec!["schedule_longer_than_job"]);
    assert_eq!(job["warnings"][0]["path"], "schedule.max_steps");
    assert!(job["warnings"][0]["message"]
        .as_str()
        .unwrap()
        .contains("\"step\""));
    // max_steps counted in epochs on a job stepped per update.
    let job = submit(json!({"kind": "cosine", "lr": 0.3, "max_steps": 8}), "step").await;
    assert_eq!(warning_codes(&job), vec!["schedule_ends_early"]);
    let job = submit(
        json!({"kind": "warmup", "steps": 2, "then": {"kind": "constant", "lr": 0.1}}),
        "epoch",
    )
    .await;
    assert_eq!(warning_codes(&job), vec!["zero_rate_at_start"]);
    let job = submit(json!({"kind": "factor", "lr": 2.0, "factor": 0.9}), "epoch").await;
    assert_eq!(warning_codes(&job), vec!["rate_likely_diverges"]);
    let job = submit(
        json!({"kind": "cosine", "lr": 0.3, "final_lr": 0.01, "max_steps": 8}),
        "epoch",
    )
    .await;
    assert!(warning_codes(&job).is_empty(), "{job}");
    // Stored with the job.
    let id = job["id"].as_i64().unwrap();
    assert_eq!(
        app.job(id - 1).await["warnings"][0]["code"],
        "rate_likely_diverges"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_job_whose_data_is_missing_fails_clearly_and_the_worker_lives_on() {
    let app = spawn_app_with(1, false).await;
    let first = app.submit(&small_job(1)).await;
    let job = app.wait_finished(first).await;
    assert_eq!(job["status"], "failed");
    assert_eq!(job["error"]["code"], "data_unavailable");
    assert!(
        job["error"]["message"]
            .as_str()
            .unwrap()
            .contains("dataset-fashion-mnist"),
        "{job}"
    );
    // The server's directories stay on the server (its log has them).
    let message = job["error"]["message"].as_str().unwrap();
    assert!(
        !message.contains("/tmp/") && !message.contains("/usr/") && !message.contains("/home/"),
        "an absolute path in a client's error: {message}"
    );
    let second = app.submit(&small_job(1)).await;
    assert_eq!(app.wait_finished(second).await["status"], "failed");
    assert_eq!(app.get("/healthz").await.status(), 200);
    app.shutdown().await;
}

#[tokio::test]
async fn a_diverging_job_fails_with_a_diverged_error() {
    let app = spawn_app(1).await;
    let mut body = small_job(3);
    body["schedule"] = json!({"kind": "constant", "lr": 1.0e4});
    let id = app.submit(&body).await;
    let job = app.wait_finished(id).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "diverged");
    assert!(
        job["error"]["message"].as_str().unwrap().contains("epoch"),
        "{job}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn submissions_that_are_not_json_or_too_large_are_rejected_and_not_stored() {
    let app = spawn_app(0).await;
    let post_raw = |content_type: &'static str, body: String| {
        app.client
            .post(app.url("/v1/jobs"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let (status, error) = error_of(
        post_raw("application/json", "{\"epochs\": 3,".into())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("invalid_json"))
    );
    let (status, error) = error_of(
        post_raw("text/plain", small_job(1).to_string())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let (status, error) = error_of(post_raw("application/json", huge).await.unwrap()).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (413, Some("payload_too_large"))
    );
    let listed: Value = app.get("/v1/jobs").await.json().await.unwrap();
    assert_eq!(listed["total"], 0);
    app.shutdown().await;
}
