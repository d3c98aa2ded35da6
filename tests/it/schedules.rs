//! Schedules: the engine as other modules use it (only through its public API),
//! and the schedule endpoints over a real HTTP server — previews in every format,
//! the catalogue, and every class of bad input.

use lrlab::preview::{to_csv, Preview};
use lrlab::schedule::{catalog, Monitor, Schedule, ScheduleSpec, Scheduler, SpecError};
use serde_json::{json, Value};

use crate::support::{error_of, spawn_app};

#[test]
fn a_request_body_spec_is_parsed_validated_and_previewed() {
    let body = json!({"schedule": {"kind": "warmup", "steps": 2, "then": {"kind": "linear", "start_lr": 1.0, "end_lr": 0.0, "steps": 4}}, "steps": 7});
    let schedule = Schedule::from_json(&body["schedule"]).unwrap();
    let preview = Preview::new(&schedule, 7).unwrap();
    assert_eq!(preview.lr, [0.0, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0]);
    let body = serde_json::to_value(preview.to_json(1000)).unwrap();
    assert_eq!(
        (
            &body["steps"],
            &body["lr"],
            &body["adaptive"],
            &body["downsampled"]
        ),
        (
            &json!(7),
            &json!([0.0, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0]),
            &json!(false),
            &json!(false)
        )
    );
    assert!(to_csv(&preview.lr).starts_with("step,lr\n0,0\n1,0.5\n"));
}

#[test]
fn errors_are_prefixed_with_the_body_field() {
    let body = json!({"schedule": {"kind": "warmup", "steps": 2, "then": {"kind": "cosine", "lr": 0.1, "max_steps": 0}}});
    let err: SpecError = Schedule::from_json(&body["schedule"])
        .unwrap_err()
        .prefixed("schedule");
    assert_eq!(
        (err.code.as_str(), err.path.as_str()),
        ("out_of_range", "schedule.then.max_steps")
    );
}

#[test]
fn a_stored_normalized_spec_rebuilds_the_same_schedule() {
    let schedule =
        Schedule::from_json(&json!({"kind": "one_cycle", "max_lr": 0.1, "total_steps": 50}))
            .unwrap();
    let stored = serde_json::to_string(schedule.spec()).unwrap();
    let spec: ScheduleSpec = serde_json::from_str(&stored).unwrap();
    let again = Schedule::new(spec).unwrap();
    assert_eq!(again.preview(60), schedule.preview(60));
    assert_eq!(
        again.max_step_reference(),
        Some(("total_steps".to_owned(), 50))
    );
}

#[test]
fn a_trainer_drives_an_adaptive_schedule_and_checkpoints_it() {
    let schedule = Schedule::from_json(
        &json!({"kind": "reduce_on_plateau", "lr": 0.1, "monitor": "train_loss", "patience": 0}),
    )
    .unwrap();
    let mut scheduler = Scheduler::new(schedule.clone());
    assert_eq!(scheduler.monitor(), Some(Monitor::TrainLoss));
    scheduler.observe(1.0);
    scheduler.observe(1.0);
    let checkpoint = serde_json::to_vec(&scheduler.state()).unwrap();
    let mut resumed = Scheduler::new(schedule);
    resumed.restore(serde_json::from_slice(&checkpoint).unwrap());
    assert_eq!(resumed.lr(10), scheduler.lr(10));
    assert!((resumed.lr(10) - 0.01).abs() < 1e-15);
}

#[test]
fn the_catalog_serializes_for_the_kinds_endpoint() {
    let kinds = serde_json::to_value(catalog()).unwrap();
    let kinds = kinds.as_array().unwrap();
    assert_eq!(kinds.len(), 14);
    assert!(kinds
        .iter()
        .all(|k| k["formula"].is_string() && k["fields"].is_array()));
}

fn assert_close(actual: &Value, expected: &[f64]) {
    let actual: Vec<f64> = actual
        .as_array()
        .expect("lr array")
        .iter()
        .map(|v| v.as_f64().expect("number"))
        .collect();
    assert_eq!(actual.len(), expected.len(), "{actual:?}");
    for (t, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!((a - e).abs() < 1e-12, "t={t}: got {a}, expected {e}");
    }
}

#[tokio::test]
async fn preview_of_warmup_then_cosine_returns_the_exact_curve() {
    let app = spawn_app(0).await;
    let body = json!({
        "schedule": {"kind": "warmup", "steps": 5, "then":
            {"kind": "cosine", "lr": 0.3, "final_lr": 0.01, "max_steps": 20}},
        "steps": 27
    });
    let response = app.post_json("/v1/schedules/preview", &body).await;
    assert_eq!(response.status(), 200);
    let preview: Value = response.json().await.unwrap();
    assert_eq!(preview["steps"], 27);
    assert_eq!(preview["adaptive"], false);
    // Hand-computed: warm-up 0 → 0.3 over 5 steps, then the cosine from its own
    // step 0: 0.01 + 0.29·(1 + cos(π·k/20))/2, flat at 0.01 after k = 20.
    let mut expected: Vec<f64> = (0..5).map(|t| 0.3 * t as f64 / 5.0).collect();
    expected.extend(
        (0..=20)
            .map(|k| 0.01 + 0.29 * (1.0 + (std::f64::consts::PI * k as f64 / 20.0).cos()) / 2.0),
    );
    expected.push(0.01);
    assert_close(&preview["lr"], &expected);
    // The normalized spec comes back with every default filled in.
    assert_eq!(preview["schedule"]["then"]["warmup_steps"], 0);
    assert_eq!(preview["schedule"]["mode"], "linear");
}

#[tokio::test]
async fn preview_as_csv_has_one_row_per_step() {
    let app = spawn_app(0).await;
    let body = json!({"schedule": {"kind": "multi_factor", "lr": 0.5, "milestones": [2, 4], "factor": 0.5}, "steps": 6});
    let response = app
        .client
        .post(app.url("/v1/schedules/preview?format=csv"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = response.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "step,lr");
    // PyTorch's MultiStepLR lowers the rate at the milestone itself.
    let rates: Vec<f64> = lines[1..]
        .iter()
        .map(|line| line.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(rates, vec![0.5, 0.5, 0.25, 0.25, 0.125, 0.125]);
}

#[tokio::test]
async fn preview_as_svg_is_a_labelled_chart() {
    let app = spawn_app(0).await;
    let body = json!({"schedule": {"kind": "cosine", "lr": 0.3, "max_steps": 100}, "steps": 100});
    let response = app
        .client
        .post(app.url("/v1/schedules/preview?format=svg"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/svg+xml");
    let svg = response.text().await.unwrap();
    assert!(svg.contains("<svg"), "{svg:.200}");
    assert!(svg.contains("learning rate"), "axis label missing");
    assert!(svg.contains("cosine"), "title missing");
    assert!(
        svg.contains("<polyline") || svg.contains("<path"),
        "no curve drawn"
    );
}

#[tokio::test]
async fn reduce_on_plateau_preview_says_it_is_adaptive() {
    let app = spawn_app(0).await;
    let body = json!({"schedule": {"kind": "reduce_on_plateau", "lr": 0.1}, "steps": 3});
    let preview: Value = app
        .post_json("/v1/schedules/preview", &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(preview["adaptive"], true);
    assert_close(&preview["lr"], &[0.1, 0.1, 0.1]);
}

#[tokio::test]
async fn malformed_json_is_a_400() {
    let app = spawn_app(0).await;
    let response = app
        .client
        .post(app.url("/v1/schedules/preview"))
        .header("content-type", "application/json")
        .body("{\"schedule\": ")
        .send()
        .await
        .unwrap();
    let (status, error) = error_of(response).await;
    assert_eq!(status, 400);
    assert_eq!(error["code"], "invalid_json");
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_415() {
    let app = spawn_app(0).await;
    let response = app
        .client
        .post(app.url("/v1/schedules/preview"))
        .header("content-type", "text/plain")
        .body("steps=3")
        .send()
        .await
        .unwrap();
    let (status, error) = error_of(response).await;
    assert_eq!(status, 415);
    assert_eq!(error["code"], "unsupported_media_type");
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_a_413() {
    let app = spawn_app(0).await;
    let milestones: Vec<u64> = (0..300_000).collect();
    let body = json!({"schedule": {"kind": "multi_factor", "lr": 0.1, "milestones": milestones, "factor": 0.5}, "steps": 3});
    let response = app.post_json("/v1/schedules/preview", &body).await;
    let (status, error) = error_of(response).await;
    assert_eq!(status, 413);
    assert_eq!(error["code"], "payload_too_large");
}

#[tokio::test]
async fn an_unknown_nested_field_is_a_422_naming_its_path() {
    let app = spawn_app(0).await;
    let body = json!({"schedule": {"kind": "warmup", "steps": 5, "then":
        {"kind": "cosine", "lr": 0.1, "max_steps": 10, "bogus": 1}}, "steps": 3});
    let (status, error) = error_of(app.post_json("/v1/schedules/preview", &body).await).await;
    assert_eq!(status, 422);
    assert_eq!(error["path"], "schedule.then.bogus");
    assert!(error["message"].as_str().unwrap().contains("bogus"));
}

#[tokio::test]
async fn a_broken_rule_is_a_422_naming_the_field() {
    let app = spawn_app(0).await;
    let cases = [
        (
            json!({"kind": "cosine", "lr": 0.1, "max_steps": 10, "warmup_steps": 10}),
            "schedule.warmup_steps",
        ),
        (json!({"kind": "constant", "lr": -1.0}), "schedule.lr"),
        (
            json!({"kind": "multi_factor", "lr": 0.1, "milestones": [5, 3], "factor": 0.5}),
            "schedule.milestones",
        ),
        (
            json!({"kind": "sequential", "phases": [{"steps": 3, "schedule": {"kind": "step", "lr": 0.1, "step_size": 0, "factor": 0.5}}]}),
            "schedule.phases[0].schedule.step_size",
        ),
        (
            json!({"kind": "one_cycle", "max_lr": 0.1, "total_steps": 100, "pct_start": 1.5}),
            "schedule.pct_start",
        ),
    ];
    for (schedule, path) in cases {
        let body = json!({"schedule": schedule, "steps": 3});
        let (status, error) = error_of(app.post_json("/v1/schedules/preview", &body).await).await;
        assert_eq!(status, 422, "{schedule}: {error}");
        assert!(
            error["path"].as_str().unwrap().starts_with(path),
            "{schedule}: path {} should name {path}",
            error["path"]
        );
    }
}

#[tokio::test]
async fn an_unknown_kind_lists_the_valid_ones() {
    let app = spawn_app(0).await;
    let body = json!({"schedule": {"kind": "exponential", "lr": 0.1}, "steps": 3});
    let (status, error) = error_of(app.post_json("/v1/schedules/preview", &body).await).await;
    assert_eq!(status, 422);
    assert_eq!(error["path"], "schedule.kind");
    assert!(
        error["message"].as_str().unwrap().contains("cosine"),
        "{error}"
    );
}

#[tokio::test]
async fn steps_out_of_range_and_bad_formats_are_rejected() {
    let app = spawn_app(0).await;
    for steps in [0, 1_000_001] {
        let body = json!({"schedule": {"kind": "constant", "lr": 0.1}, "steps": steps});
        let (status, error) = error_of(app.post_json("/v1/schedules/preview", &body).await).await;
        assert_eq!(status, 422);
        assert_eq!(error["path"], "steps");
    }
    let body = json!({"schedule": {"kind": "constant", "lr": 0.1}, "steps": 3});
    let response = app
        .client
        .post(app.url("/v1/schedules/preview?format=png"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, error) = error_of(response).await;
    assert_eq!(status, 400);
    assert_eq!(error["path"], "format");
}

#[tokio::test]
async fn a_million_step_preview_is_served_downsampled_by_default_and_whole_on_request() {
    let app = spawn_app(0).await;
    // A step schedule: the drop at 600,000 must survive the downsampling.
    let body = json!({"schedule": {"kind": "multi_factor", "lr": 0.1, "milestones": [600_001], "factor": 0.5}, "steps": 1_000_000});
    let preview: Value = app
        .post_json("/v1/schedules/preview", &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(preview["steps"], 1_000_000);
    assert_eq!(preview["downsampled"], true);
    assert_eq!(preview["bucket_size"], 500);
    let lr_min = preview["lr_min"].as_array().unwrap();
    let lr_max = preview["lr_max"].as_array().unwrap();
    assert_eq!(
        (preview["lr"].as_array().unwrap().len(), lr_min.len()),
        (2000, 2000)
    );
    // Bucket 1200 covers steps 600,000..600,500: it holds both rates.
    assert_eq!(
        (lr_max[1200].as_f64(), lr_min[1200].as_f64()),
        (Some(0.1), Some(0.05))
    );
    assert_eq!(preview["step"][1200], 600_000);

    let whole: Value = app
        .post_json("/v1/schedules/preview?max_points=1000000", &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(whole["downsampled"], false);
    assert_eq!(whole["lr"].as_array().unwrap().len(), 1_000_000);

    let csv = app
        .client
        .post(app.url("/v1/schedules/preview?format=csv"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 1_000_001);
}

/// Ten concurrent million-step previews, gzipped, used to stall every other request for
/// seconds: their rendering and compression ran on the async runtime's threads. With one
/// runtime thread, a health check must still be answered while they run.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn heavy_previews_do_not_stall_other_requests() {
    let app = spawn_app(0).await;
    let body = json!({"schedule": {"kind": "cosine", "lr": 0.1, "max_steps": 1_000_000}, "steps": 1_000_000});
    let heavy: Vec<_> = (0..10)
        .map(|_| {
            let request = app
                .client
                .post(app.url("/v1/schedules/preview?format=csv"))
                .header("accept-encoding", "gzip")
                .json(&body)
                .send();
            tokio::spawn(async move { request.await.map(|r| r.status()) })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let started = std::time::Instant::now();
    let health = app.get("/healthz").await;
    let waited = started.elapsed();
    assert_eq!(health.status(), 200);
    // The stalled server took 6–9 s; rendering off the runtime answers in milliseconds.
    assert!(
        waited < std::time::Duration::from_secs(3),
        "/healthz took {waited:?}"
    );
    for request in heavy {
        assert_eq!(request.await.unwrap().unwrap(), 200);
    }
}

#[tokio::test]
async fn the_catalogue_lists_every_kind_with_fields_and_formula() {
    let app = spawn_app(0).await;
    let response = app.get("/v1/schedules/kinds").await;
    assert_eq!(response.status(), 200);
    let catalogue: Value = response.json().await.unwrap();
    let kinds: Vec<&str> = catalogue["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "constant",
        "inverse_power",
        "factor",
        "step",
        "multi_factor",
        "cosine",
        "polynomial",
        "linear",
        "cosine_restarts",
        "cyclic",
        "one_cycle",
        "warmup",
        "sequential",
        "reduce_on_plateau",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    for kind in catalogue["kinds"].as_array().unwrap() {
        assert!(!kind["formula"].as_str().unwrap().is_empty());
        assert!(!kind["fields"].as_array().unwrap().is_empty(), "{kind}");
    }
}

#[tokio::test]
async fn health_and_unknown_routes() {
    let app = spawn_app(0).await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let (status, error) = error_of(app.get("/v1/nothing-here").await).await;
    assert_eq!(status, 404);
    assert_eq!(error["code"], "not_found");
}
