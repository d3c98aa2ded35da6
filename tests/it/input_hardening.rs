//! Input that was accepted and should not have been, found by black-box probing: duplicate
//! JSON keys, names that hide characters, request ids echoed verbatim, and an
//! Idempotency-Key refused for a retry that only spelled out a default.

use serde_json::{json, Value};

use crate::support::{error_of, spawn_app};

async fn post_raw(app: &crate::support::TestApp, path: &str, body: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url(path))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("POST")
}

#[tokio::test]
async fn a_key_given_twice_is_a_422_at_that_key_and_nothing_is_queued() {
    let app = spawn_app(0).await;
    for (body, path) in [
        (
            r#"{"epochs": 1, "epochs": 2, "schedule": {"kind": "constant", "lr": 0.1}}"#,
            "epochs",
        ),
        (
            r#"{"epochs": 1, "optimizer": {"momentum": 0.9, "momentum": 0.5}, "schedule": {"kind": "constant", "lr": 0.1}}"#,
            "optimizer.momentum",
        ),
        (
            r#"{"epochs": 1, "schedule": {"kind": "constant", "lr": 0.1, "lr": 0.3}}"#,
            "schedule.lr",
        ),
    ] {
        let (status, error) = error_of(post_raw(&app, "/v1/jobs", body).await).await;
        assert_eq!(status, 422, "{body}: {error}");
        assert_eq!(error["code"], "duplicate_key", "{error}");
        assert_eq!(error["path"], path, "{error}");
    }
    let sweep = r#"{"base": {"epochs": 1, "schedule": {"kind": "constant", "lr": 0.1}},
                    "grid": {"schedule.lr": [0.1, 0.2], "schedule.lr": [0.3]}}"#;
    let (status, error) = error_of(post_raw(&app, "/v1/sweeps", sweep).await).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (422, Some("duplicate_key")),
        "{error}"
    );
    assert_eq!(error["path"], "grid.schedule.lr");
    let jobs: Value = app.get("/v1/jobs").await.json().await.unwrap();
    assert_eq!(jobs["total"], 0, "{jobs}");
    app.shutdown().await;
}

#[tokio::test]
async fn names_with_invisible_characters_are_refused_and_trimmed_names_are_found() {
    let app = spawn_app(0).await;
    for name in ["co\u{200B}sine", "nul\u{0}byte", "\u{202E}txt.exe"] {
        let mut job = json!({"epochs": 1, "schedule": {"kind": "constant", "lr": 0.1}});
        job["name"] = json!(name);
        let (status, error) = error_of(app.post_json("/v1/jobs", &job).await).await;
        assert_eq!(
            (status, error["path"].as_str()),
            (422, Some("name")),
            "{name:?}: {error}"
        );
    }
    let id = app
        .submit(&json!({"name": "  spaced  ", "epochs": 1, "schedule": {"kind": "constant", "lr": 0.1}}))
        .await;
    assert_eq!(app.job(id).await["name"], "spaced");
    for query in ["spaced", "%20%20spaced%20%20"] {
        let page: Value = app
            .get(&format!("/v1/jobs?name={query}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(page["jobs"][0]["id"], id, "?name={query}: {page}");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_request_id_is_echoed_only_when_it_is_a_plain_token() {
    let app = spawn_app(0).await;
    let client = reqwest::Client::new();
    let echoed = |id: &'static str| {
        let client = client.clone();
        let url = app.url("/healthz");
        async move {
            let response = client
                .get(url)
                .header("x-request-id", id)
                .send()
                .await
                .unwrap();
            response.headers()["x-request-id"]
                .to_str()
                .unwrap()
                .to_string()
        }
    };
    assert_eq!(echoed("trace-42.a:b_c").await, "trace-42.a:b_c");
    for unsafe_id in ["<script>alert(1)</script>", "two words", "\"quoted\""] {
        let answered = echoed(unsafe_id).await;
        assert_ne!(answered, unsafe_id);
        assert_eq!(answered.len(), 36, "a fresh UUID instead: {answered}");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_retry_that_spells_out_a_default_replays_and_a_real_change_is_refused() {
    let app = spawn_app(0).await;
    let send = |body: Value| {
        let client = reqwest::Client::new();
        let url = app.url("/v1/jobs");
        async move {
            client
                .post(url)
                .header("idempotency-key", "retry-1")
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let first = send(json!({"epochs": 2, "schedule": {"kind": "constant", "lr": 0.1}})).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    // The same request with the defaults written out, keys in another order.
    let retry = send(json!({
        "schedule": {"lr": 0.1, "kind": "constant"},
        "batch_size": 256,
        "epochs": 2,
        "optimizer": {"momentum": 0.0}
    }))
    .await;
    assert_eq!(retry.status(), 200);
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(retry["id"], first["id"]);
    let changed =
        send(json!({"epochs": 2, "batch_size": 128, "schedule": {"kind": "constant", "lr": 0.1}}))
            .await;
    let (status, error) = error_of(changed).await;
    assert_eq!(status, 409, "{error}");
    // A seed given is part of the request: another seed is another request.
    let seeded =
        send(json!({"epochs": 2, "seed": 5, "schedule": {"kind": "constant", "lr": 0.1}})).await;
    assert_eq!(seeded.status(), 409);
    app.shutdown().await;
}
