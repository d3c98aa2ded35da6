//! Comparing jobs and drawing them: `/v1/compare/steps`, the chart images, and dry-run
//! submissions, over a real server with jobs trained on the generated data.

use crate::support::{small_job, spawn_app, TestApp, TRAIN_IMAGES};
use serde_json::{json, Value};

async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("error JSON");
    (status, body["error"].clone())
}

/// Every per-update record of a job.
async fn all_steps(app: &TestApp, id: i64) -> Vec<Value> {
    let page: Value = app
        .get(&format!("/v1/jobs/{id}/steps?limit=100000"))
        .await
        .json()
        .await
        .unwrap();
    page["steps"].as_array().unwrap().clone()
}

fn column(job: &Value, key: &str) -> Vec<Option<f64>> {
    job[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} missing: {job}"))
        .iter()
        .map(Value::as_f64)
        .collect()
}

/// Two finished jobs: 2 epochs at a constant rate, and 1 epoch of a per-update cosine.
async fn two_jobs(app: &TestApp) -> (i64, i64) {
    let long = app.submit(&small_job(2)).await;
    let mut short = small_job(1);
    short["name"] = json!("short");
    short["schedule"] = json!({"kind": "cosine", "lr": 0.1, "final_lr": 0.01, "max_steps": 8});
    short["schedule_unit"] = json!("step");
    let short = app.submit(&short).await;
    app.wait_finished(long).await;
    app.wait_finished(short).await;
    (long, short)
}

#[tokio::test]
async fn compare_steps_cuts_every_job_at_the_same_buckets_keeping_extremes() {
    let app = spawn_app(1).await;
    let (long, short) = two_jobs(&app).await;
    let per_epoch = TRAIN_IMAGES.div_ceil(64);
    assert_eq!(
        per_epoch, 8,
        "the arithmetic below assumes 8 updates per epoch"
    );

    let response = app
        .get(&format!("/v1/compare/steps?ids={long},{short}&buckets=5"))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    // 16 updates in at most 5 buckets: 4 per bucket, 4 buckets.
    assert_eq!(body["buckets"], 4, "{body}");
    assert_eq!(body["bucket_size"], 4);
    assert_eq!(body["step"], json!([0, 4, 8, 12]));
    let jobs = body["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2);
    assert_eq!(
        (jobs[0]["id"].as_i64(), jobs[1]["id"].as_i64()),
        (Some(long), Some(short))
    );
    assert_eq!(jobs[1]["name"], "short");

    // Each bucket's extremes and mean are those of the raw records.
    for (job, id) in jobs.iter().zip([long, short]) {
        let steps = all_steps(&app, id).await;
        for (b, start) in [0usize, 4, 8, 12].into_iter().enumerate() {
            let chunk: Vec<&Value> = steps
                .iter()
                .filter(|s| (start..start + 4).contains(&(s["step"].as_u64().unwrap() as usize)))
                .collect();
            let lr: Vec<f64> = chunk.iter().map(|s| s["lr"].as_f64().unwrap()).collect();
            let loss: Vec<f64> = chunk.iter().filter_map(|s| s["loss"].as_f64()).collect();
            let min = |v: &[f64]| v.iter().copied().reduce(f64::min);
            let max = |v: &[f64]| v.iter().copied().reduce(f64::max);
            assert_eq!(column(job, "lr_min")[b], min(&lr), "job {id} bucket {b}");
            assert_eq!(column(job, "lr_max")[b], max(&lr), "job {id} bucket {b}");
            assert_eq!(
                column(job, "loss_min")[b],
                min(&loss),
                "job {id} bucket {b}"
            );
            assert_eq!(
                column(job, "loss_max")[b],
                max(&loss),
                "job {id} bucket {b}"
            );
            let mean = (!loss.is_empty()).then(|| loss.iter().sum::<f64>() / loss.len() as f64);
            match (column(job, "loss_mean")[b], mean) {
                (Some(got), Some(want)) => assert!((got - want).abs() < 1e-12, "{got} {want}"),
                (got, want) => assert_eq!(got, want, "job {id} bucket {b}"),
            }
        }
    }
    // The one-epoch job has no updates in the last two buckets: null there.
    assert_eq!(jobs[1]["lr_min"][2], Value::Null);
    assert_eq!(jobs[1]["loss_mean"][3], Value::Null);
    assert!(jobs[1]["lr_min"][1].is_number());
    // The cosine job's rate falls within its first epoch's buckets: min < max.
    assert!(column(&jobs[1], "lr_min")[0] < column(&jobs[1], "lr_max")[0]);

    // Without `buckets`, 1000 buckets: one update each.
    let body: Value = app
        .get(&format!("/v1/compare/steps?ids={short}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (body["buckets"].as_u64(), body["bucket_size"].as_u64()),
        (Some(8), Some(1))
    );
    app.shutdown().await;
}

#[tokio::test]
async fn compare_steps_refuses_bad_parameters_and_names_unknown_jobs() {
    let app = spawn_app(0).await;
    let id = app.submit(&small_job(1)).await;

    let (status, error) = error_of(app.get(&format!("/v1/compare/steps?ids={id},999")).await).await;
    assert_eq!(status, 404);
    assert_eq!(error["code"], "not_found");
    assert_eq!(error["path"], "ids");
    assert!(
        error["message"].as_str().unwrap().contains("999"),
        "{error}"
    );

    for (query, path) in [
        ("", "ids"),
        ("ids=", "ids"),
        ("ids=1,two", "ids"),
        ("ids=1&buckets=0", "buckets"),
        ("ids=1&buckets=5001", "buckets"),
        ("ids=1&buckets=many", "buckets"),
        ("ids=1&bucket=3", "bucket"),
    ] {
        let (status, error) = error_of(app.get(&format!("/v1/compare/steps?{query}")).await).await;
        assert_eq!(
            (status, error["path"].as_str()),
            (400, Some(path)),
            "{query}: {error}"
        );
    }
    let many: Vec<String> = (1..=51).map(|i| i.to_string()).collect();
    let (status, error) = error_of(
        app.get(&format!("/v1/compare/steps?ids={}", many.join(",")))
            .await,
    )
    .await;
    assert_eq!((status, error["path"].as_str()), (400, Some("ids")));

    // A queued job has no updates yet: no buckets, and no error.
    let body: Value = app
        .get(&format!("/v1/compare/steps?ids={id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["buckets"], 0);
    assert_eq!(body["jobs"][0]["lr_min"], json!([]));
    app.shutdown().await;
}

/// The contents of an SVG's `<text>` elements, trimmed, unescaped for `&` only.
fn texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            Some(
                t.split_once('>')?
                    .1
                    .split_once("</text>")?
                    .0
                    .trim()
                    .replace("&amp;", "&"),
            )
        })
        .collect()
}

async fn svg(app: &TestApp, path: &str) -> String {
    let response = app.get(path).await;
    assert_eq!(response.status(), 200, "{path}");
    assert_eq!(
        response.headers()["content-type"],
        "image/svg+xml",
        "{path}"
    );
    assert!(response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .starts_with("default-src 'none'"));
    response.text().await.unwrap()
}

#[tokio::test]
async fn chart_images_are_titled_labelled_and_name_each_job_and_schedule() {
    let app = spawn_app(1).await;
    let (long, short) = two_jobs(&app).await;

    let image = svg(&app, &format!("/v1/jobs/{long}/chart.svg?metric=test_acc")).await;
    let words = texts(&image);
    for expected in [
        format!("Test accuracy — constant #{long}"),
        "epoch".to_string(),
        "accuracy".to_string(),
        format!("constant #{long}: constant 0.05"),
    ] {
        assert!(words.contains(&expected), "{expected:?} not in {words:?}");
    }
    assert!(image.contains("<polyline"), "a curve is drawn");

    for metric in [
        "train_loss",
        "train_acc",
        "test_loss",
        "lr",
        "lr_step",
        "loss_step",
    ] {
        let image = svg(
            &app,
            &format!("/v1/jobs/{short}/chart.svg?metric={metric}&log_y=true"),
        )
        .await;
        let x = if metric.ends_with("_step") {
            "update"
        } else {
            "epoch"
        };
        assert!(
            texts(&image).iter().any(|t| t == x),
            "{metric}: {:?}",
            texts(&image)
        );
    }

    let image = svg(
        &app,
        &format!("/v1/compare.svg?ids={long},{short}&metric=lr&width=640&height=400"),
    )
    .await;
    assert!(image.contains("width=\"640\"") && image.contains("height=\"400\""));
    let words = texts(&image);
    assert!(
        words.contains(&"Learning rate per epoch — 2 jobs".to_string()),
        "{words:?}"
    );
    assert!(
        words.contains(&format!("constant #{long}: constant 0.05")),
        "{words:?}"
    );
    assert!(
        words.contains(&format!(
            "short #{short}: cosine 0.1→0.01 over 8 (per update)"
        )),
        "{words:?}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn chart_images_refuse_unknown_jobs_metrics_and_sizes_with_the_error_json() {
    let app = spawn_app(0).await;
    let id = app.submit(&small_job(1)).await;
    // A job without data yet is an empty chart, not an error.
    let image = svg(&app, &format!("/v1/jobs/{id}/chart.svg")).await;
    assert!(texts(&image).contains(&"No data yet".to_string()));

    for (path, status, field) in [
        (
            format!("/v1/jobs/{id}/chart.svg?metric=accuracy"),
            400,
            Some("metric"),
        ),
        (
            format!("/v1/jobs/{id}/chart.svg?width=199"),
            400,
            Some("width"),
        ),
        (
            format!("/v1/jobs/{id}/chart.svg?height=4001"),
            400,
            Some("height"),
        ),
        (
            format!("/v1/jobs/{id}/chart.svg?log_y=yes"),
            400,
            Some("log_y"),
        ),
        ("/v1/jobs/999/chart.svg".to_string(), 404, None),
        (format!("/v1/compare.svg?ids={id},998"), 404, Some("ids")),
        ("/v1/compare.svg".to_string(), 400, Some("ids")),
        (
            format!("/v1/compare.svg?ids={id}&metric=lr_stepp"),
            400,
            Some("metric"),
        ),
    ] {
        let response = app.get(&path).await;
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        let (got, error) = error_of(response).await;
        assert_eq!(
            (got, error["path"].as_str()),
            (status, field),
            "{path}: {error}"
        );
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_dry_run_checks_and_warns_like_a_submission_and_stores_nothing() {
    let app = spawn_app(0).await;
    let body = json!({
        "name": "cosine-warmup",
        "epochs": 3,
        "train_limit": 1000,
        "schedule": {"kind": "cosine", "lr": 0.3, "final_lr": 0.01, "max_steps": 20, "warmup_steps": 5}
    });
    let response = app
        .client
        .post(app.url("/v1/jobs?dry_run=true"))
        .header("idempotency-key", "dry-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("location").is_none());
    let dry: Value = response.json().await.unwrap();
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["spec"]["name"], "cosine-warmup");
    assert_eq!(dry["spec"]["batch_size"], 256, "defaults are filled");
    assert!(dry["spec"]["seed"].is_u64());
    assert_eq!(
        dry["total_steps"],
        3 * 4,
        "1000 images in batches of 256, 3 epochs"
    );
    let codes: Vec<&str> = dry["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["code"].as_str())
        .collect();
    assert!(codes.contains(&"schedule_longer_than_job"), "{dry}");

    // Nothing was stored; the same key then queues the job for real.
    let page: Value = app.get("/v1/jobs").await.json().await.unwrap();
    assert_eq!(page["total"], 0);
    let response = app
        .client
        .post(app.url("/v1/jobs"))
        .header("idempotency-key", "dry-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);

    // A dry run refuses what a submission refuses, in the same words.
    let mut bad = body.clone();
    bad["epochs"] = json!(0);
    let (status, error) = error_of(app.post_json("/v1/jobs?dry_run=true", &bad).await).await;
    assert_eq!((status, error["path"].as_str()), (422, Some("epochs")));
    let (status, error) = error_of(app.post_json("/v1/jobs?dry_run=maybe", &body).await).await;
    assert_eq!((status, error["path"].as_str()), (400, Some("dry_run")));
    let (status, error) = error_of(app.post_json("/v1/jobs?dryrun=true", &body).await).await;
    assert_eq!((status, error["path"].as_str()), (400, Some("dryrun")));
    let page: Value = app.get("/v1/jobs").await.json().await.unwrap();
    assert_eq!(page["total"], 1);
    app.shutdown().await;
}

#[tokio::test]
async fn integral_floats_count_as_integers_and_null_limits_as_absent() {
    let app = spawn_app(0).await;
    let response = app
        .post_json(
            "/v1/jobs",
            &json!({"epochs": 2.0, "batch_size": 64.0, "test_limit": null, "train_limit": null,
                    "schedule": {"kind": "step", "lr": 1, "step_size": 1.0, "factor": 0.5}}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let job: Value = response.json().await.unwrap();
    assert_eq!(job["spec"]["epochs"], 2);
    assert_eq!(job["spec"]["schedule"]["step_size"], 1);
    assert_eq!(job["spec"]["test_limit"], Value::Null);
    let (status, error) = error_of(
        app.post_json(
            "/v1/jobs",
            &json!({"epochs": 2.5, "schedule": {"kind": "constant", "lr": 0.1}}),
        )
        .await,
    )
    .await;
    assert_eq!((status, error["path"].as_str()), (422, Some("epochs")));
    app.shutdown().await;
}
