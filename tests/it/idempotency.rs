//! `Idempotency-Key`: keys that cannot be one are refused, and racing retries make one job.

use std::collections::HashSet;

use futures::future::join_all;
use reqwest::header::HeaderValue;
use serde_json::Value;

use crate::support::{error_of, small_job, spawn_app};

#[tokio::test]
async fn a_bad_idempotency_key_is_a_400_naming_the_header_and_nothing_is_stored() {
    let app = spawn_app(0).await;
    let too_long = "k".repeat(256);
    let bad: [(&str, HeaderValue); 4] = [
        ("empty", HeaderValue::from_static("")),
        ("blank", HeaderValue::from_static("   ")),
        ("256 characters", HeaderValue::from_str(&too_long).unwrap()),
        (
            "not ASCII",
            HeaderValue::from_bytes("clé-1".as_bytes()).unwrap(),
        ),
    ];
    for (what, key) in bad {
        let response = app
            .client
            .post(app.url("/v1/jobs"))
            .header("idempotency-key", key)
            .json(&small_job(1))
            .send()
            .await
            .unwrap();
        let (status, error) = error_of(response).await;
        assert_eq!(status, 400, "{what}: {error}");
        assert_eq!(error["code"], "invalid_header", "{what}: {error}");
        assert_eq!(error["path"], "Idempotency-Key", "{what}: {error}");
    }
    let listed: Value = app.get("/v1/jobs").await.json().await.unwrap();
    assert_eq!(
        listed["total"], 0,
        "a refused submission must not be stored"
    );

    // The longest key allowed is taken.
    let response = app
        .client
        .post(app.url("/v1/jobs"))
        .header("idempotency-key", "k".repeat(255))
        .json(&small_job(1))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_submissions_with_one_key_make_one_job_and_all_name_it() {
    let app = spawn_app(0).await;
    let post = |body: Value| {
        app.client
            .post(app.url("/v1/jobs"))
            .header("idempotency-key", "retry-storm")
            .json(&body)
            .send()
    };
    let answers = join_all((0..20).map(|_| post(small_job(1)))).await;
    let mut created = 0;
    let mut ids = HashSet::new();
    for answer in answers {
        let answer = answer.unwrap();
        match answer.status().as_u16() {
            201 => created += 1,
            200 => assert_eq!(answer.headers()["idempotent-replayed"], "true"),
            other => panic!(
                "unexpected status {other}: {}",
                answer.text().await.unwrap()
            ),
        }
        let job: Value = answer.json().await.unwrap();
        ids.insert(job["id"].as_i64().unwrap());
    }
    assert_eq!(created, 1, "exactly one submission creates the job");
    assert_eq!(ids.len(), 1, "every answer names the same job: {ids:?}");
    let listed: Value = app.get("/v1/jobs").await.json().await.unwrap();
    assert_eq!(listed["total"], 1);

    // The same key with another body is a conflict that names the first job.
    let (status, error) = error_of(post(small_job(2)).await.unwrap()).await;
    assert_eq!(status, 409);
    assert_eq!(error["code"], "idempotency_key_reused");
    let id = ids.into_iter().next().unwrap();
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains(&format!("job {id}")),
        "{error}"
    );
    app.shutdown().await;
}
