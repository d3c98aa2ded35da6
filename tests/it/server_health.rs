//! `/healthz` (alive, database answering) and `/readyz` (can take work) tell the truth: a
//! database with corrupt pages is not healthy, and a server shutting down is not ready.

use std::io::{Seek, SeekFrom, Write};
use std::str::FromStr;

use serde_json::Value;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::support::{error_of, small_job, spawn_app, spawn_app_from, test_config};
use crate::test_db::http_backend_is_postgres;

/// Overwrites the page holding the `jobs` table (its root, which in a small table is all of
/// it) of a closed SQLite file with garbage; the schema and the migrations table stay sound.
async fn corrupt_jobs_table(url: &str, file: &std::path::Path) {
    let mut connection = SqliteConnectOptions::from_str(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    // Everything into the main file, so no WAL copy of the page hides the damage.
    sqlx::query("PRAGMA journal_mode = DELETE")
        .execute(&mut connection)
        .await
        .unwrap();
    let (page_size,): (i64,) = sqlx::query_as("PRAGMA page_size")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    let (root,): (i64,) =
        sqlx::query_as("SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = 'jobs'")
            .fetch_one(&mut connection)
            .await
            .unwrap();
    connection.close().await.unwrap();
    assert!(root > 1, "the jobs table's root page is {root}");
    let mut db = std::fs::OpenOptions::new().write(true).open(file).unwrap();
    db.seek(SeekFrom::Start(((root - 1) * page_size) as u64))
        .unwrap();
    db.write_all(&vec![0xEE; page_size as usize]).unwrap();
    db.sync_all().unwrap();
}

#[tokio::test]
async fn healthz_is_503_and_readyz_not_ready_on_a_database_with_corrupt_pages() {
    if http_backend_is_postgres() {
        eprintln!("note: skipping: the test damages a SQLite file's pages");
        return;
    }
    let app = spawn_app(0).await;
    for _ in 0..3 {
        app.submit(&small_job(1)).await;
    }
    assert_eq!(app.get("/healthz").await.status(), 200);
    let url = test_config(app.dir.path(), 0, app.dir.path().join("data"))
        .node
        .db;
    let dir = app.stop().await.dir;

    corrupt_jobs_table(&url, &dir.path().join("lrlab.db")).await;
    let config = test_config(dir.path(), 0, dir.path().join("data"));
    let app = spawn_app_from(config, dir).await;
    // The listing fails on the damaged page …
    assert_eq!(app.get("/v1/jobs").await.status(), 500);
    // … and so must the health check, instead of saying ok.
    let (status, error) = error_of(app.get("/healthz").await).await;
    assert_eq!(status, 503, "{error}");
    assert_eq!(error["code"], "unavailable");
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 503);
    let ready: Value = response.json().await.unwrap();
    assert_eq!(ready["status"], "not_ready", "{ready}");
    assert!(
        ready["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("database"),
        "{ready}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn readyz_is_ready_while_serving_and_503_once_shutdown_begins() {
    let app = spawn_app(1).await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["status"], "ready");

    app.service().begin_shutdown();
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 503);
    let ready: Value = response.json().await.unwrap();
    assert_eq!(ready["status"], "not_ready");
    assert_eq!(ready["reasons"], serde_json::json!(["shutting down"]));
    // Still alive: the process runs and its database answers.
    assert_eq!(app.get("/healthz").await.status(), 200);
    app.shutdown().await;
}
