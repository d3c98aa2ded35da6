//! Which requests the server answers: a foreign `Origin` may not change state (cross-site
//! requests from any page in the user's browser), and on a loopback bind a foreign `Host`
//! gets nothing (DNS rebinding) unless `--allowed-hosts` lists it.

use clap::Parser;
use lrlab::app::App;
use lrlab::cli::{Cli, Command};
use serde_json::Value;

use crate::support::{error_of, small_job, spawn_app, spawn_app_from, write_data, TestApp};

async fn get_with_host(app: &TestApp, path: &str, host: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .header("host", host)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_cross_origin_cancel_is_refused_and_the_job_is_left_alone() {
    let app = spawn_app(0).await;
    let id = app.submit(&small_job(1)).await;
    // What a page on another site can make a browser send without a preflight.
    let response = app
        .client
        .post(app.url(&format!("/v1/jobs/{id}/cancel")))
        .header("origin", "http://evil.example")
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    let (status, error) = error_of(response).await;
    assert_eq!(status, 403, "{error}");
    assert_eq!(error["code"], "forbidden_origin");
    assert!(
        error["message"].as_str().unwrap().contains("evil.example"),
        "{error}"
    );
    let job = app.job(id).await;
    assert_eq!(job["status"], "queued", "{job}");
    assert_eq!(job["cancel_requested"], false, "{job}");

    // Submit and delete are refused the same way, and nothing is stored.
    let response = app
        .client
        .post(app.url("/v1/jobs"))
        .header("origin", "https://evil.example")
        .json(&small_job(1))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await.1["code"], "forbidden_origin");
    let response = app
        .client
        .delete(app.url(&format!("/v1/jobs/{id}")))
        .header("origin", "null")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await.1["code"], "forbidden_origin");
    let listed: Value = app.get("/v1/jobs").await.json().await.unwrap();
    assert_eq!(listed["total"], 1);

    // Reads are answered whatever the Origin (the browser keeps them from the page).
    let response = app
        .client
        .get(app.url(&format!("/v1/jobs/{id}")))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // The server's own pages may cancel: their Origin is the server itself.
    let response = app
        .client
        .post(app.url(&format!("/v1/jobs/{id}/cancel")))
        .header("origin", format!("http://{}", app.app.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(app.job(id).await["status"], "canceled");
    // And so may clients that send no Origin at all (curl, scripts).
    let other = app.submit(&small_job(1)).await;
    assert_eq!(app.cancel(other).await.status(), 200);
    app.shutdown().await;
}

#[tokio::test]
async fn a_loopback_server_answers_only_loopback_host_names() {
    let app = spawn_app(0).await;
    let port = app.app.addr.port();
    for host in [
        format!("evil.example:{port}"),
        "evil.example".to_string(),
        format!("10.0.0.1:{port}"),
    ] {
        for path in ["/healthz", "/v1/jobs", "/"] {
            let (status, error) = error_of(get_with_host(&app, path, &host).await).await;
            assert_eq!(status, 403, "{host} {path}: {error}");
            assert_eq!(error["code"], "forbidden_host", "{host} {path}");
            assert!(
                error["message"]
                    .as_str()
                    .unwrap()
                    .contains("--allowed-hosts"),
                "{error}"
            );
        }
    }
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
    ] {
        assert_eq!(
            get_with_host(&app, "/healthz", &host).await.status(),
            200,
            "{host}"
        );
    }
    app.shutdown().await;
}

#[tokio::test]
async fn allowed_hosts_from_the_command_line_admit_the_names_they_list() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_data(dir.path());
    let cli = Cli::try_parse_from([
        "lrlab".to_string(),
        "serve".to_string(),
        "--bind=127.0.0.1:0".to_string(),
        format!("--db=sqlite://{}", dir.path().join("lrlab.db").display()),
        format!("--artifacts-dir={}", dir.path().join("artifacts").display()),
        format!("--data-dir={}", data.display()),
        "--no-download".to_string(),
        "--allowed-hosts=lab.example.org,10.0.0.5:8080".to_string(),
    ])
    .expect("the command line parses");
    let Command::Serve(args) = cli.command else {
        panic!("expected the serve command");
    };
    let app = spawn_app_from(args.app_config().expect("config"), dir).await;
    let port = app.app.addr.port();
    for (host, status) in [
        ("lab.example.org".to_string(), 200),
        (format!("lab.example.org:{port}"), 200),
        ("10.0.0.5:8080".to_string(), 200),
        ("10.0.0.5:9090".to_string(), 403),
        ("other.example.org".to_string(), 403),
        (format!("localhost:{port}"), 200),
    ] {
        assert_eq!(
            get_with_host(&app, "/healthz", &host).await.status(),
            status,
            "{host}"
        );
    }
    app.shutdown().await;
}

#[tokio::test]
async fn an_artifacts_dir_that_is_a_regular_file_stops_the_server_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_data(dir.path());
    let file = dir.path().join("artifacts");
    std::fs::write(&file, b"not a directory").unwrap();
    let mut config = crate::support::test_config(dir.path(), 1, data);
    config.node.artifacts_dir = file.clone();
    let error = match App::start(config).await {
        Ok(_) => panic!("a server with a file for --artifacts-dir must not start"),
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains("--artifacts-dir"), "{error}");
    assert!(error.contains(&file.display().to_string()), "{error}");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        b"not a directory",
        "the file is left alone"
    );
}
