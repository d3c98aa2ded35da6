//! Sweeps over the HTTP API: expansion and its errors, idempotency, common seeds, summaries
//! with intervals, ASHA's decisions with paused and stopped members, cancel and delete, and a
//! restart in the middle of a sweep.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{
    error_of, restart_app, spawn_app, spawn_app_from, test_config, write_data, TestApp,
};

async fn submit_sweep(app: &TestApp, body: &Value) -> (u16, Value) {
    let response = app.post_json("/v1/sweeps", body).await;
    let status = response.status().as_u16();
    (status, response.json().await.expect("sweep JSON"))
}

async fn sweep(app: &TestApp, id: i64) -> Value {
    let response = app.get(&format!("/v1/sweeps/{id}")).await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("sweep JSON")
}

/// Waits until the sweep has finished, woken by its members' events.
async fn wait_sweep(app: &TestApp, id: i64, timeout: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut events = app.service().subscribe();
    loop {
        let view = sweep(app, id).await;
        if matches!(
            view["status"].as_str(),
            Some("succeeded" | "failed" | "canceled")
        ) {
            return view;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "sweep {id} did not finish in {timeout:?}: {view}"
        );
        // A member's event wakes us; the sweep's own status is written just after its
        // members' (by a coordinator step in the background), so look again soon anyway.
        let soon = (tokio::time::Instant::now() + SWEEP_RECHECK).min(deadline);
        let _ = tokio::time::timeout_at(soon, events.recv()).await;
    }
}

/// How often `wait_sweep` reads the sweep again without an event.
const SWEEP_RECHECK: Duration = Duration::from_millis(200);

/// A small base job on the generated data.
fn base(epochs: u32) -> Value {
    json!({"epochs": epochs, "batch_size": 64, "schedule": {"kind": "constant", "lr": 0.05}})
}

#[tokio::test]
async fn the_example_sweep_expands_into_configs_times_seeds_named_from_their_overrides() {
    let app = spawn_app(0).await;
    let body = json!({
        "name": "exponent",
        "base": {"epochs": 30, "batch_size": 256, "schedule": {"kind": "inverse_power", "lr": 0.1, "power": 0.5}},
        "grid": {"schedule.power": [0.25, 0.5, 0.75, 1.0]},
        "variants": [{"name": "cosine", "schedule": {"kind": "cosine", "lr": 0.3, "final_lr": 0.01, "max_steps": 20}}],
        "seeds": [0, 1, 2],
        "early_stopping": {"kind": "asha", "metric": "test_acc", "mode": "max", "grace_period": 2, "reduction_factor": 3},
        "max_concurrent": 4
    });
    let response = app.post_json("/v1/sweeps", &body).await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let view: Value = response.json().await.unwrap();
    assert_eq!(location, format!("/v1/sweeps/{}", view["id"]));
    let configs = view["configs"].as_array().unwrap();
    let names: Vec<&str> = configs
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "power=0.25",
            "power=0.5",
            "power=0.75",
            "power=1.0",
            "cosine"
        ]
    );
    assert_eq!(view["progress"]["total"], 15);
    assert_eq!(view["status"], "queued");
    for config in configs {
        let seeds: Vec<u64> = config["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["seed"].as_u64().unwrap())
            .collect();
        assert_eq!(seeds, [0, 1, 2]);
    }
    // The members are ordinary jobs, listed by their sweep; the grid value is in their spec.
    let jobs: Value = app
        .get(&format!("/v1/jobs?sweep={}&limit=100", view["id"]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(jobs["total"], 15);
    let first = jobs["jobs"].as_array().unwrap().last().unwrap();
    assert_eq!(first["spec"]["schedule"]["power"], 0.25);
    assert_eq!(first["spec"]["seed"], 0);
    assert_eq!(first["name"], "exponent/power=0.25/seed=0");
    // ASHA's rungs: members first pause after the grace period.
    assert_eq!(view["early_stopping"]["grace_period"], 2);
}

#[tokio::test]
async fn bad_paths_values_and_limits_are_422s_naming_the_sweep_field() {
    let app = spawn_app(0).await;
    let cases = [
        (
            json!({"base": base(2), "grid": {"schedule.lrr": [0.1]}}),
            "grid.schedule.lrr",
        ),
        (
            json!({"base": base(2), "grid": {"schedule.lr": [0.1, -1.0]}}),
            "grid.schedule.lr[1]",
        ),
        (
            json!({"base": {"epochs": 2, "schedule": {"kind": "constant", "lr": -0.1}}}),
            "base.schedule.lr",
        ),
        (
            json!({"base": base(2), "variants": [{"epochs": 0}]}),
            "variants[0].epochs",
        ),
        (
            json!({"base": base(2), "grid": {"schedule.lr": (0..101).map(|i| 0.001 * f64::from(i + 1)).collect::<Vec<_>>()}}),
            "grid.schedule.lr",
        ),
        (
            json!({"base": base(2), "grid": {"schedule.lr": (0..40).map(|i| 0.001 * f64::from(i + 1)).collect::<Vec<_>>(), "batch_size": (1..=26).collect::<Vec<_>>()}}),
            "grid",
        ),
        (json!({"base": base(2), "seeds": [1, 1]}), "seeds[1]"),
        (json!({"base": base(2), "colour": "red"}), "colour"),
    ];
    for (body, path) in cases {
        let (status, error) = submit_sweep(&app, &body).await;
        assert_eq!(status, 422, "{body}: {error}");
        assert_eq!(error["error"]["path"], path, "{body}: {error}");
    }
    let listed: Value = app.get("/v1/jobs").await.json().await.unwrap();
    assert_eq!(
        listed["total"], 0,
        "a rejected sweep must not queue any job"
    );
}

#[tokio::test]
async fn an_idempotency_key_returns_the_first_sweep() {
    let app = spawn_app(0).await;
    let body = json!({"base": base(2), "grid": {"schedule.lr": [0.05, 0.1]}, "repeats": 2});
    let send = |body: Value| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/v1/sweeps"))
                .header("idempotency-key", "sweep-1")
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let first = send(body.clone()).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    // The same sweep spelled differently (explicit seeds) is the same request.
    let mut respelled = body.clone();
    respelled.as_object_mut().unwrap().remove("repeats");
    respelled["seeds"] = json!([0, 1]);
    let again = send(respelled).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    let mut other = body;
    other["grid"]["schedule.lr"] = json!([0.2]);
    let conflict = send(other).await;
    assert_eq!(conflict.status(), 409);
    let jobs: Value = app.get("/v1/jobs").await.json().await.unwrap();
    assert_eq!(jobs["total"], 4);
}

#[tokio::test]
async fn the_same_seed_gives_every_config_the_same_initial_weights_and_batch_order() {
    let app = spawn_app(1).await;
    let body = json!({
        "base": {"epochs": 1, "batch_size": 64, "train_limit": 256, "test_limit": 64,
                 "schedule": {"kind": "constant", "lr": 0.05}},
        "grid": {"schedule.lr": [0.01, 0.3]},
        "seeds": [4, 5]
    });
    let (status, view) = submit_sweep(&app, &body).await;
    assert_eq!(status, 201, "{view}");
    let id = view["id"].as_i64().unwrap();
    let view = wait_sweep(&app, id, Duration::from_secs(120)).await;
    assert_eq!(view["status"], "succeeded", "{view}");
    // The first update's loss is computed before any weight changes: it depends only on
    // the initial weights and the first batch, so equal seeds give equal first losses.
    let mut first_loss = std::collections::HashMap::new();
    for config in view["configs"].as_array().unwrap() {
        for member in config["members"].as_array().unwrap() {
            let steps: Value = app
                .get(&format!("/v1/jobs/{}/steps?limit=2", member["job"]))
                .await
                .json()
                .await
                .unwrap();
            let loss = steps["steps"][0]["loss"].as_f64().unwrap();
            let second = steps["steps"][1]["loss"].as_f64().unwrap();
            first_loss
                .entry(member["seed"].as_u64().unwrap())
                .or_insert_with(Vec::new)
                .push((loss, second));
        }
    }
    let (seed4, seed5) = (&first_loss[&4], &first_loss[&5]);
    assert_eq!(seed4[0].0, seed4[1].0, "seed 4's configs start alike");
    assert_eq!(seed5[0].0, seed5[1].0, "seed 5's configs start alike");
    assert_ne!(seed4[0].0, seed5[0].0, "different seeds start differently");
    // After one update at different rates the losses part.
    assert_ne!(seed4[0].1, seed4[1].1);
}

#[tokio::test]
async fn a_finished_sweep_has_a_summary_with_intervals_series_and_csv() {
    let app = spawn_app(2).await;
    let body = json!({
        "name": "lr",
        "base": {"epochs": 2, "batch_size": 64, "optimizer": {"momentum": 0.9},
                 "schedule": {"kind": "constant", "lr": 0.05}},
        "grid": {"schedule.lr": [0.001, 0.05]},
        "seeds": [0, 1, 2]
    });
    let (status, view) = submit_sweep(&app, &body).await;
    assert_eq!(status, 201, "{view}");
    let id = view["id"].as_i64().unwrap();
    let view = wait_sweep(&app, id, Duration::from_secs(180)).await;
    assert_eq!(view["status"], "succeeded", "{view}");
    assert_eq!(view["progress"]["done"], 6);
    let summary = &view["summary"];
    assert_eq!(summary["metric"], "test_acc");
    let rows = summary["configs"].as_array().unwrap();
    for row in rows {
        let final_value = &row["final_value"];
        assert_eq!(final_value["n"], 3, "{row}");
        let (mean, low, high) = (
            final_value["mean"].as_f64().unwrap(),
            final_value["ci95"]["low"].as_f64().unwrap(),
            final_value["ci95"]["high"].as_f64().unwrap(),
        );
        assert!(low <= mean && mean <= high, "{row}");
    }
    // lr 0.05 with momentum learns this data in two epochs; lr 0.001 barely moves.
    assert_eq!(summary["ranking"], json!([1, 0]), "{summary}");
    assert_eq!(rows[1]["indistinguishable_from_best"], true);
    assert_eq!(rows[0]["vs_best"]["method"], "paired");
    assert_eq!(rows[0]["vs_best"]["pairs"], 3);
    assert!(rows[0]["vs_best"]["mean"].as_f64().unwrap() < 0.0);

    let series: Value = app
        .get(&format!("/v1/sweeps/{id}/series?metric=test_loss"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(series["metric"], "test_loss");
    let points = series["configs"][0]["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    assert_eq!(points[1]["n"], 3);
    let csv = app
        .get(&format!("/v1/sweeps/{id}/series?format=csv"))
        .await
        .text()
        .await
        .unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "config,epoch,n,mean,std,min,max,ci95_low,ci95_high"
    );
    assert_eq!(lines.len(), 1 + 2 * 2);
    assert!(lines[1].starts_with("lr=0.001,1,3,"));
    // Finished: it can be deleted, with its jobs.
    let deleted = app
        .client
        .delete(app.url(&format!("/v1/sweeps/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(app.get(&format!("/v1/sweeps/{id}")).await.status(), 404);
    let jobs: Value = app.get("/v1/jobs").await.json().await.unwrap();
    assert_eq!(jobs["total"], 0);
}

#[tokio::test]
async fn asha_stops_hopeless_configs_at_the_rung_and_records_every_decision() {
    let app = spawn_app(2).await;
    // Three configs, one of which cannot learn (lr 0): η = 3 keeps one config past the
    // rung at epoch 1; the others are paused there and, once nothing can resume them, end
    // `stopped_early`. Synchronous decisions make the test independent of which member
    // the worker happens to finish first (asynchronous arrivals are covered by the engine's
    // own scripted tests).
    let body = json!({
        "name": "asha",
        "base": {"epochs": 3, "batch_size": 64, "optimizer": {"momentum": 0.9},
                 "schedule": {"kind": "constant", "lr": 0.05}},
        "grid": {"schedule.lr": [0.0, 0.001, 0.05]},
        "seeds": [0, 1],
        "early_stopping": {"kind": "asha", "metric": "test_acc", "grace_period": 1,
                           "reduction_factor": 3, "synchronous": true}
    });
    let (status, view) = submit_sweep(&app, &body).await;
    assert_eq!(status, 201, "{view}");
    let id = view["id"].as_i64().unwrap();
    let view = wait_sweep(&app, id, Duration::from_secs(180)).await;
    assert_eq!(view["status"], "succeeded", "{view}");
    let decisions: Value = app
        .get(&format!("/v1/sweeps/{id}/decisions"))
        .await
        .json()
        .await
        .unwrap();
    let decisions = decisions["decisions"].as_array().unwrap().clone();
    assert!(!decisions.is_empty());
    // Every config was judged at the rung, and the best (lr 0.05) went on.
    let at_rung: Vec<&Value> = decisions.iter().filter(|d| d["rung_epoch"] == 1).collect();
    let best = at_rung
        .iter()
        .rfind(|d| d["config_name"] == "lr=0.05")
        .expect("a decision about lr=0.05");
    assert_eq!(best["action"], "continue", "{decisions:?}");
    for hopeless in ["lr=0.0", "lr=0.001"] {
        let actions: Vec<&str> = at_rung
            .iter()
            .filter(|d| d["config_name"] == hopeless)
            .map(|d| d["action"].as_str().unwrap())
            .collect();
        assert_eq!(actions, ["pause", "stop"], "{hopeless}: {decisions:?}");
    }
    // Members of configs stopped early have one epoch and end `stopped_early`; the winner's
    // members trained all three epochs.
    for config in view["configs"].as_array().unwrap() {
        for member in config["members"].as_array().unwrap() {
            let job = app.job(member["job"].as_i64().unwrap()).await;
            if config["name"] == "lr=0.05" {
                assert_eq!(job["status"], "succeeded", "{job}");
                assert_eq!(job["progress"]["epoch"], 3);
            } else {
                assert_eq!(job["status"], "stopped_early", "{job}");
                assert_eq!(job["progress"]["epoch"], 1, "{job}");
            }
        }
    }
    let stops = decisions.iter().filter(|d| d["action"] == "stop").count();
    assert_eq!(stops, 2, "{decisions:?}");
}

#[tokio::test]
async fn canceling_a_sweep_cancels_its_members() {
    let app = spawn_app(1).await;
    let body =
        json!({"base": base(200), "grid": {"schedule.lr": [0.01, 0.02, 0.03]}, "seeds": [0]});
    let (_, view) = submit_sweep(&app, &body).await;
    let id = view["id"].as_i64().unwrap();
    let first = view["configs"][0]["members"][0]["job"].as_i64().unwrap();
    app.wait_for(first, Duration::from_secs(60), |s| s == "running")
        .await;
    let response = app
        .client
        .post(app.url(&format!("/v1/sweeps/{id}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let view = wait_sweep(&app, id, Duration::from_secs(60)).await;
    assert_eq!(view["status"], "canceled");
    for config in view["configs"].as_array().unwrap() {
        assert_eq!(config["members"][0]["status"], "canceled", "{config}");
    }
    let again = app
        .client
        .post(app.url(&format!("/v1/sweeps/{id}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
}

#[tokio::test]
async fn the_presets_are_valid_sweeps() {
    let app = spawn_app(0).await;
    let presets: Value = app.get("/v1/sweeps/presets").await.json().await.unwrap();
    let presets = presets["presets"].as_array().unwrap();
    let names: Vec<&str> = presets
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in ["chapter", "exponent", "warmup_length", "best_fixed"] {
        assert!(names.contains(&name), "{names:?}");
    }
    for preset in presets {
        assert!(!preset["question"].as_str().unwrap().is_empty());
        let (status, view) = submit_sweep(&app, &preset["request"]).await;
        assert_eq!(status, 201, "{}: {view}", preset["name"]);
    }
    let chapter = presets.iter().find(|p| p["name"] == "chapter").unwrap();
    let (_, view) = submit_sweep(&app, &chapter["request"]).await;
    assert_eq!(view["progress"]["total"], 18, "6 schedules × 3 seeds");

    // One POST starts a preset by name; the same key replays it; an unknown name is a 404.
    let by_name = |name: &str| {
        reqwest::Client::new()
            .post(app.url(&format!("/v1/sweeps/presets/{name}")))
            .header("idempotency-key", "preset-1")
    };
    let created = by_name("exponent").send().await.unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["name"], "exponent");
    let powers: Vec<&Value> = created["configs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["overrides"]["schedule.power"])
        .collect();
    assert_eq!(
        powers,
        [&json!(0.25), &json!(0.5), &json!(0.75), &json!(1.0)]
    );
    let replayed = by_name("exponent").send().await.unwrap();
    assert_eq!(replayed.status(), 200);
    let replayed: Value = replayed.json().await.unwrap();
    assert_eq!(replayed["id"], created["id"]);
    let (status, error) = error_of(by_name("no-such").send().await.unwrap()).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (404, Some("not_found")),
        "{error}"
    );
}

/// A server stopped in the middle of an ASHA sweep and started again on the same database
/// neither repeats a decision nor duplicates a member, and the sweep finishes.
#[tokio::test]
async fn a_restart_mid_sweep_repeats_no_decision_and_duplicates_no_member() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_data(dir.path());
    let config = test_config(dir.path(), 1, data);
    let app = spawn_app_from(config.clone(), tempfile::tempdir().unwrap()).await;
    let body = json!({
        "base": {"epochs": 3, "batch_size": 64, "optimizer": {"momentum": 0.9},
                 "schedule": {"kind": "constant", "lr": 0.05}},
        "grid": {"schedule.lr": [0.0, 0.05]},
        "seeds": [0, 1],
        "early_stopping": {"kind": "asha", "metric": "test_acc", "grace_period": 1, "reduction_factor": 2}
    });
    let (_, view) = submit_sweep(&app, &body).await;
    let id = view["id"].as_i64().unwrap();
    // Stop once the first decisions are stored.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let decisions: Value = app
            .get(&format!("/v1/sweeps/{id}/decisions"))
            .await
            .json()
            .await
            .unwrap();
        if !decisions["decisions"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no decision in time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stopped = app.stop().await;

    let app = restart_app(config, stopped).await;
    let view = wait_sweep(&app, id, Duration::from_secs(180)).await;
    assert_eq!(view["status"], "succeeded", "{view}");
    let jobs: Value = app.get("/v1/jobs?limit=100").await.json().await.unwrap();
    assert_eq!(jobs["total"], 4, "no member duplicated");
    let decisions: Value = app
        .get(&format!("/v1/sweeps/{id}/decisions"))
        .await
        .json()
        .await
        .unwrap();
    let decisions = decisions["decisions"].as_array().unwrap();
    let mut seen = std::collections::HashSet::new();
    for decision in decisions {
        let key = (
            decision["rung_epoch"].as_u64(),
            decision["config"].as_u64(),
            decision["action"].as_str().map(str::to_string),
        );
        assert!(seen.insert(key), "decision repeated: {decisions:?}");
    }
    app.shutdown().await;
    drop(dir);
}

/// `lrlab sweep FILE.json` runs a sweep without a server and writes its results; run again
/// with the same file and directory, it finds the finished sweep instead of starting anew.
#[test]
fn the_sweep_command_runs_a_sweep_in_the_foreground_and_writes_its_results() {
    use lrlab::cli::sweep::{run_sweep, SweepArgs};
    let dir = tempfile::tempdir().unwrap();
    let data = write_data(dir.path());
    let file = dir.path().join("sweep.json");
    std::fs::write(
        &file,
        json!({
            "name": "cli",
            "base": {"epochs": 2, "batch_size": 64, "train_limit": 256, "test_limit": 64,
                     "schedule": {"kind": "constant", "lr": 0.05}},
            "grid": {"schedule.lr": [0.01, 0.05]},
            "seeds": [0, 1]
        })
        .to_string(),
    )
    .unwrap();
    let out = dir.path().join("out");
    let args = SweepArgs {
        file: Some(file.clone()),
        preset: None,
        out: out.clone(),
        workers: 1,
        device: vec![lrlab::train::DeviceSpec::Cpu],
        data_dir: Some(data),
        no_download: true,
        lockstep: lrlab::cli::serve::Switch::On,
    };
    // A preset that does not exist is refused with the list of those that do.
    let unknown = run_sweep(SweepArgs {
        file: None,
        preset: Some("nope".to_string()),
        ..args.clone()
    })
    .unwrap_err();
    assert!(
        unknown
            .to_string()
            .contains("chapter, exponent, warmup_length, best_fixed"),
        "{unknown}"
    );
    run_sweep(args.clone()).unwrap();
    let chart = std::fs::read_to_string(out.join("chart-test_acc.svg")).unwrap();
    assert!(
        chart.starts_with("<svg") && chart.contains("lr=0.01") && chart.contains("lr=0.05"),
        "{chart}"
    );
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let rows: Vec<&str> = summary.lines().collect();
    assert_eq!(rows.len(), 3, "{summary}");
    assert!(rows[0].starts_with("rank,config,complete,n,final_mean"));
    assert!(rows[1].contains(",lr=0.01,true,2,"), "{summary}");
    let series = std::fs::read_to_string(out.join("series-test_acc.csv")).unwrap();
    assert_eq!(series.lines().count(), 1 + 2 * 2, "{series}");
    assert!(out.join("decisions.csv").exists());
    // The same command again: the same sweep (its file's hash is its idempotency key), no
    // new jobs.
    run_sweep(args).unwrap();
    let again = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert_eq!(again, summary);
    let counts = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = lrlab::store::open(&format!("sqlite://{}", out.join("sweep.db").display()))
            .await
            .unwrap();
        let (sweeps, _) = store
            .list_sweeps(&lrlab::store::SweepFilter {
                before: None,
                limit: 10,
                tenant: None,
            })
            .await
            .unwrap();
        let (_, jobs) = store
            .list_jobs(&lrlab::store::JobFilter {
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        (sweeps.len(), jobs)
    });
    assert_eq!(counts, (1, 4));
}
