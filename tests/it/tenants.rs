//! Tenants and tokens over HTTP: every route × role allowed or denied as `api::ACCESS`
//! (and docs/AUTH.md) says, other tenants' objects answered 404 by every route, revoked
//! and expired tokens 401, the per-token rate limit, the per-tenant queue limit, and the
//! real binary refusing a network bind without tokens.

use std::num::NonZeroU32;
use std::process::Command;

use chrono::{Duration, Utc};
use lrlab::api::{access_markdown, access_table, Access};
use lrlab::app::AuthConfig;
use lrlab::auth::{hash_token, Role};
use lrlab::store::NewToken;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{small_job, spawn_app_configured, TestApp};

/// The admin token every server here starts with.
const ADMIN: &str = "lrlab_test-bootstrap-admin-token-0123456789abcdef";

async fn spawn_with_tokens(adjust: impl FnOnce(&mut AuthConfig)) -> TestApp {
    spawn_app_configured(0, |config| {
        config.auth = AuthConfig {
            tokens: true,
            bootstrap_token: Some(ADMIN.to_string()),
            ..AuthConfig::default()
        };
        adjust(&mut config.auth);
    })
    .await
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new().request(method, app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.expect("request")
}

/// A new token of `tenant` with `role`, made by the admin over the API.
async fn token(app: &TestApp, tenant: &str, role: &str) -> String {
    let response = call(
        app,
        Method::POST,
        "/v1/tokens",
        Some(ADMIN),
        Some(&json!({"tenant": tenant, "role": role})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("json");
    body["token"].as_str().expect("the token").to_string()
}

async fn submit_as(app: &TestApp, token: &str) -> i64 {
    let response = call(
        app,
        Method::POST,
        "/v1/jobs",
        Some(token),
        Some(&small_job(1)),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json::<Value>().await.expect("json")["id"]
        .as_i64()
        .expect("an id")
}

async fn sweep_as(app: &TestApp, token: &str) -> i64 {
    let mut base = small_job(1);
    base.as_object_mut().expect("an object").remove("seed");
    let sweep = json!({"name": "s", "base": base, "grid": {"schedule.lr": [0.1]}, "seeds": [0]});
    let response = call(app, Method::POST, "/v1/sweeps", Some(token), Some(&sweep)).await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "{:?}",
        response.text().await
    );
    response.json::<Value>().await.expect("json")["id"]
        .as_i64()
        .expect("an id")
}

#[test]
fn docs_auth_md_holds_the_generated_route_table() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/AUTH.md"))
        .expect("docs/AUTH.md");
    assert!(
        doc.contains(&access_markdown()),
        "docs/AUTH.md's table is out of date; replace it with:\n{}",
        access_markdown()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_allows_and_denies_each_role_as_the_access_table_says() {
    let app = spawn_with_tokens(|_| {}).await;
    let tokens = [
        (Role::Viewer, token(&app, "lab", "viewer").await),
        (Role::Member, token(&app, "lab", "member").await),
        (Role::Admin, ADMIN.to_string()),
    ];
    let member = &tokens[1].1;
    let job = submit_as(&app, member).await;
    let sweep = sweep_as(&app, member).await;
    for rule in access_table() {
        let id = if rule.path.starts_with("/v1/sweeps/") {
            sweep.to_string()
        } else if rule.path.starts_with("/v1/tokens/") {
            "999999".to_string()
        } else {
            job.to_string()
        };
        let mut path = rule
            .path
            .replace("{id}", &id)
            .replace("{*path}", "js/api.js");
        if rule.path.starts_with("/v1/compare") {
            path.push_str(&format!("?ids={job}"));
        }
        let method = Method::from_bytes(rule.method.as_bytes()).expect("method");
        let anonymous = call(&app, method.clone(), &path, None, None).await.status();
        match rule.access {
            // This server has no --metrics-token: /metrics is open too.
            Access::Open | Access::Metrics => assert!(
                anonymous != StatusCode::UNAUTHORIZED && anonymous != StatusCode::FORBIDDEN,
                "{} {path} is open, got {anonymous}",
                rule.method
            ),
            Access::Least(least) => {
                assert_eq!(
                    anonymous,
                    StatusCode::UNAUTHORIZED,
                    "{} {path} without a token",
                    rule.method
                );
                for (role, token) in &tokens {
                    let status = call(&app, method.clone(), &path, Some(token), None)
                        .await
                        .status();
                    if *role >= least {
                        assert!(
                            status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                            "{} {path} as {role}: allowed, got {status}",
                            rule.method
                        );
                    } else {
                        assert_eq!(
                            status,
                            StatusCode::FORBIDDEN,
                            "{} {path} as {role}",
                            rule.method
                        );
                    }
                }
            }
        }
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_jobs_and_sweeps_are_not_found_by_any_route() {
    let app = spawn_with_tokens(|_| {}).await;
    let alice = token(&app, "alice", "member").await;
    let bob = token(&app, "bob", "member").await;
    let bob_viewer = token(&app, "bob", "viewer").await;
    let job = submit_as(&app, &alice).await;
    let sweep = sweep_as(&app, &alice).await;
    let bobs = submit_as(&app, &bob).await;

    for (method, path) in [
        (Method::GET, format!("/v1/jobs/{job}")),
        (Method::GET, format!("/v1/jobs/{job}/metrics")),
        (Method::GET, format!("/v1/jobs/{job}/steps")),
        (Method::GET, format!("/v1/jobs/{job}/weights")),
        (Method::GET, format!("/v1/jobs/{job}/events")),
        (Method::GET, format!("/v1/jobs/{job}/chart.svg")),
        (Method::GET, format!("/v1/compare/steps?ids={bobs},{job}")),
        (Method::GET, format!("/v1/compare.svg?ids={job}")),
        (Method::POST, format!("/v1/jobs/{job}/cancel")),
        (Method::DELETE, format!("/v1/jobs/{job}")),
        (Method::GET, format!("/v1/sweeps/{sweep}")),
        (Method::GET, format!("/v1/sweeps/{sweep}/series")),
        (Method::GET, format!("/v1/sweeps/{sweep}/decisions")),
        (Method::GET, format!("/v1/sweeps/{sweep}/chart.svg")),
        (Method::POST, format!("/v1/sweeps/{sweep}/cancel")),
        (Method::DELETE, format!("/v1/sweeps/{sweep}")),
    ] {
        for token in [&bob, &bob_viewer] {
            let response = call(&app, method.clone(), &path, Some(token), None).await;
            let status = response.status();
            let body: Value = response.json().await.unwrap_or_default();
            let allowed_to_write = token == &bob || method == Method::GET;
            let expected = if allowed_to_write {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::FORBIDDEN
            };
            assert_eq!(status, expected, "{method} {path}: {body}");
            if expected == StatusCode::NOT_FOUND {
                assert_eq!(body["error"]["code"], "not_found", "{method} {path}");
            }
        }
    }
    // Listings show each tenant its own; the admin sees all.
    let ids = |body: Value, key: &str| -> Vec<i64> {
        body[key]
            .as_array()
            .expect("a list")
            .iter()
            .map(|j| j["id"].as_i64().expect("id"))
            .collect()
    };
    let listed = call(&app, Method::GET, "/v1/jobs", Some(&bob), None)
        .await
        .json::<Value>()
        .await
        .expect("json");
    assert_eq!(ids(listed, "jobs"), [bobs]);
    let listed = call(
        &app,
        Method::GET,
        &format!("/v1/jobs?sweep={sweep}"),
        Some(&bob),
        None,
    )
    .await
    .json::<Value>()
    .await
    .expect("json");
    assert_eq!(listed["total"], 0);
    let listed = call(&app, Method::GET, "/v1/sweeps", Some(&bob), None)
        .await
        .json::<Value>()
        .await
        .expect("json");
    assert_eq!(listed["total"], 0);
    let listed = call(&app, Method::GET, "/v1/jobs", Some(ADMIN), None)
        .await
        .json::<Value>()
        .await
        .expect("json");
    assert_eq!(listed["total"], 3, "the admin sees every tenant's jobs");
    // The owner still sees and changes its own.
    let own = call(
        &app,
        Method::POST,
        &format!("/v1/jobs/{job}/cancel"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(own.status(), StatusCode::OK);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_are_per_tenant() {
    let app = spawn_with_tokens(|_| {}).await;
    let alice = token(&app, "alice", "member").await;
    let bob = token(&app, "bob", "member").await;
    let mut ids = Vec::new();
    for (token, epochs) in [(&alice, 1), (&bob, 2)] {
        let response = reqwest::Client::new()
            .post(app.url("/v1/jobs"))
            .bearer_auth(token)
            .header("Idempotency-Key", "same-key")
            .json(&small_job(epochs))
            .send()
            .await
            .expect("request");
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "a new job for each tenant"
        );
        ids.push(response.json::<Value>().await.expect("json")["id"].clone());
    }
    assert_ne!(ids[0], ids[1]);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_invalid_revoked_and_expired_tokens_are_401_with_www_authenticate() {
    let app = spawn_with_tokens(|_| {}).await;
    let member = token(&app, "lab", "member").await;
    assert_eq!(
        call(&app, Method::GET, "/v1/jobs", Some(&member), None)
            .await
            .status(),
        StatusCode::OK
    );
    let listed: Value = call(&app, Method::GET, "/v1/tokens", Some(ADMIN), None)
        .await
        .json()
        .await
        .expect("json");
    let tokens = listed["tokens"].as_array().expect("tokens");
    assert!(
        tokens
            .iter()
            .all(|t| t.get("hash").is_none() && t.get("token").is_none()),
        "{listed}"
    );
    let id = tokens
        .iter()
        .find(|t| t["role"] == "member")
        .expect("the member")["id"]
        .as_i64()
        .expect("id");
    let revoked = call(
        &app,
        Method::DELETE,
        &format!("/v1/tokens/{id}"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);

    let expired = "lrlab_an-expired-token-of-the-test-0123456789abcdef";
    app.store()
        .create_token(NewToken {
            tenant: "lab",
            role: Role::Admin,
            hash: &hash_token(expired),
            expires_at: Some(Utc::now() - Duration::minutes(1)),
        })
        .await
        .expect("store a token");

    for token in [
        None,
        Some("lrlab_not-a-real-token-at-all-0123456789abcdef"),
        Some("short"),
        Some(member.as_str()),
        Some(expired),
    ] {
        let response = call(&app, Method::GET, "/v1/jobs", token, None).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{token:?}");
        assert!(response.headers()[reqwest::header::WWW_AUTHENTICATE]
            .to_str()
            .expect("ascii")
            .starts_with("Bearer"));
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    // Probes and metrics need no token.
    for open in ["/healthz", "/readyz", "/metrics", "/"] {
        assert_eq!(
            call(&app, Method::GET, open, None, None).await.status(),
            StatusCode::OK,
            "{open}"
        );
    }
    let health: Value = call(&app, Method::GET, "/healthz", None, None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(health["auth"], "tokens");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_past_its_rate_gets_429_with_retry_after() {
    let app = spawn_with_tokens(|auth| {
        auth.rate = Some((NonZeroU32::MIN, NonZeroU32::new(3).expect("3")));
    })
    .await;
    let member = token(&app, "lab", "member").await;
    for _ in 0..3 {
        assert_eq!(
            call(&app, Method::GET, "/v1/jobs", Some(&member), None)
                .await
                .status(),
            StatusCode::OK
        );
    }
    let limited = call(&app, Method::GET, "/v1/jobs", Some(&member), None).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited.headers()[reqwest::header::RETRY_AFTER]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(
        limited.json::<Value>().await.expect("json")["error"]["code"],
        "rate_limited"
    );
    // Budgets are per token: another token is not held back.
    let other = token(&app, "lab", "viewer").await;
    assert_eq!(
        call(&app, Method::GET, "/v1/jobs", Some(&other), None)
            .await
            .status(),
        StatusCode::OK
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_at_its_queued_job_limit_gets_429_and_others_do_not() {
    let app = spawn_with_tokens(|auth| auth.max_queued_per_tenant = Some(1)).await;
    let alice = token(&app, "alice", "member").await;
    let bob = token(&app, "bob", "member").await;
    submit_as(&app, &alice).await;
    let refused = call(
        &app,
        Method::POST,
        "/v1/jobs",
        Some(&alice),
        Some(&small_job(1)),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        refused.json::<Value>().await.expect("json")["error"]["code"],
        "tenant_queue_full"
    );
    submit_as(&app, &bob).await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_over_the_size_limit_is_422_naming_the_field_for_every_role() {
    let app = spawn_with_tokens(|auth| auth.max_sweep_jobs = Some(3)).await;
    let alice = token(&app, "alice", "member").await;
    let mut base = small_job(1);
    base.as_object_mut().expect("an object").remove("seed");
    let sweep = |lrs: Value, seeds: Value| json!({"name": "s", "base": base.clone(), "grid": {"schedule.lr": lrs}, "seeds": seeds});
    for who in [alice.as_str(), ADMIN] {
        // 2 configs × 2 seeds = 4 jobs > 3.
        let refused = call(
            &app,
            Method::POST,
            "/v1/sweeps",
            Some(who),
            Some(&sweep(json!([0.1, 0.2]), json!([0, 1]))),
        )
        .await;
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body: Value = refused.json().await.expect("json");
        assert_eq!(body["error"]["code"], "sweep_too_large", "{body}");
        assert_eq!(body["error"]["path"], "grid");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("4 jobs") && m.contains("at most 3")),
            "{body}"
        );
    }
    // One config with four seeds: the seeds are what is too many.
    let refused = call(
        &app,
        Method::POST,
        "/v1/sweeps",
        Some(&alice),
        Some(&sweep(json!([0.1]), json!([0, 1, 2, 3]))),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        refused.json::<Value>().await.expect("json")["error"]["path"],
        "seeds"
    );
    // Nothing was queued by the refusals; a sweep at the limit is taken.
    let queued = app
        .app
        .service
        .list(&lrlab::store::JobFilter::default())
        .await
        .expect("list")
        .total;
    assert_eq!(queued, 0);
    let taken = call(
        &app,
        Method::POST,
        "/v1/sweeps",
        Some(&alice),
        Some(&sweep(json!([0.1, 0.2, 0.3]), json!([0]))),
    )
    .await;
    assert_eq!(taken.status(), StatusCode::CREATED);
    app.shutdown().await;
}

#[test]
fn fair_use_limits_flow_from_the_command_line_to_the_config() {
    use clap::Parser;
    let cli = lrlab::cli::Cli::try_parse_from([
        "lrlab",
        "serve",
        "--max-running-per-tenant",
        "2",
        "--max-sweep-jobs",
        "50",
    ])
    .expect("parse");
    let lrlab::cli::Command::Serve(args) = cli.command else {
        panic!("serve");
    };
    let config = args.app_config().expect("config");
    assert_eq!(config.node.claim_limits.max_running_per_tenant, Some(2));
    assert_eq!(config.auth.max_sweep_jobs, Some(50));
    let cli = lrlab::cli::Cli::try_parse_from(["lrlab", "worker", "--max-running-per-tenant", "3"])
        .expect("parse");
    let lrlab::cli::Command::Worker(args) = cli.command else {
        panic!("worker");
    };
    assert_eq!(
        args.node
            .node_config()
            .expect("config")
            .claim_limits
            .max_running_per_tenant,
        Some(3)
    );
    // 0 (the default) is no limit.
    let cli = lrlab::cli::Cli::try_parse_from(["lrlab", "serve"]).expect("parse");
    let lrlab::cli::Command::Serve(args) = cli.command else {
        panic!("serve");
    };
    let config = args.app_config().expect("config");
    assert_eq!(config.node.claim_limits.max_running_per_tenant, None);
    assert_eq!(config.auth.max_sweep_jobs, None);
}

const METRICS_SECRET: &str = "scrape-secret-0123456789abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_metrics_token_metrics_needs_that_token_and_healthz_stays_open() {
    let app = spawn_app_configured(0, |config| {
        config.auth = AuthConfig {
            tokens: true,
            bootstrap_token: Some(ADMIN.to_string()),
            ..AuthConfig::default()
        };
        config.node.metrics_token = Some(lrlab::api::MetricsToken::new(METRICS_SECRET));
    })
    .await;
    let wrong = format!("{METRICS_SECRET}x");
    for token in [None, Some(ADMIN), Some(wrong.as_str()), Some("short")] {
        let response = call(&app, Method::GET, "/metrics", token, None).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{token:?}");
        assert!(response.headers().contains_key("www-authenticate"));
    }
    let scraped = call(&app, Method::GET, "/metrics", Some(METRICS_SECRET), None).await;
    assert_eq!(scraped.status(), StatusCode::OK);
    assert!(scraped.text().await.expect("text").contains("lrlab_"));
    // The metrics token is no API token.
    assert_eq!(
        call(&app, Method::GET, "/v1/jobs", Some(METRICS_SECRET), None)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    for open in ["/healthz", "/readyz"] {
        assert_eq!(
            call(&app, Method::GET, open, None, None).await.status(),
            StatusCode::OK,
            "{open}"
        );
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_metrics_listener_asks_for_the_metrics_token_too() {
    let api = spawn_app_configured(0, |_| {}).await;
    let mut node_config = api.config.node.clone();
    node_config.metrics_token = Some(lrlab::api::MetricsToken::new(METRICS_SECRET));
    let node = lrlab::app::Node::start(node_config, Some("127.0.0.1:0".parse().expect("addr")))
        .await
        .expect("start the worker process");
    let url = format!(
        "http://{}/metrics",
        node.metrics_addr().expect("a listener")
    );
    let client = reqwest::Client::new();
    let anonymous = client.get(&url).send().await.expect("send");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let scraped = client
        .get(&url)
        .bearer_auth(METRICS_SECRET)
        .send()
        .await
        .expect("send");
    assert_eq!(scraped.status(), StatusCode::OK);
    node.shutdown().await;
    api.shutdown().await;
}

#[test]
fn a_short_metrics_token_is_refused_and_an_empty_one_leaves_metrics_open() {
    use clap::Parser;
    let parse = |token: &str| {
        let cli = lrlab::cli::Cli::try_parse_from(["lrlab", "serve", "--metrics-token", token])
            .expect("parse");
        let lrlab::cli::Command::Serve(args) = cli.command else {
            panic!("serve");
        };
        args.app_config()
    };
    let error = parse("short").expect_err("too short").to_string();
    assert!(error.contains("--metrics-token"), "{error}");
    assert!(parse("").expect("config").node.metrics_token.is_none());
    assert!(parse(METRICS_SECRET)
        .expect("config")
        .node
        .metrics_token
        .is_some_and(|token| token.matches(METRICS_SECRET) && !token.matches("x")));
}

#[test]
fn serve_refuses_a_network_bind_without_tokens_and_says_how_to_make_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_lrlab"))
        .arg("serve")
        .args(["--bind", "0.0.0.0:0"])
        .arg("--db")
        .arg(format!(
            "sqlite://{}",
            dir.path().join("lrlab.db").display()
        ))
        .arg("--artifacts-dir")
        .arg(dir.path().join("artifacts"))
        .env_remove("LRLAB_AUTH")
        .env_remove("LRLAB_BOOTSTRAP_TOKEN")
        .env_remove("LRLAB_INSECURE_NO_AUTH")
        .output()
        .expect("run lrlab serve");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("LRLAB_BOOTSTRAP_TOKEN") && stderr.contains("lrlab token create"),
        "{stderr}"
    );
}

#[test]
fn token_create_prints_the_token_alone_on_the_last_line_and_stores_its_hash() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}", dir.path().join("lrlab.db").display());
    let lrlab = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_lrlab"))
            .arg("token")
            .args(args)
            .args(["--db", &db])
            .env_remove("LRLAB_DATABASE_URL")
            .output()
            .expect("run lrlab token");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8")
    };
    let created = lrlab(&[
        "create",
        "--tenant",
        "lab",
        "--role",
        "member",
        "--expires",
        "30d",
    ]);
    let token = created.lines().last().expect("a last line");
    assert!(
        token.starts_with("lrlab_") && token.len() == 70,
        "{created}"
    );
    let listed = lrlab(&["list"]);
    assert!(
        listed.contains("\tlab\tmember\t") && !listed.contains(token),
        "{listed}"
    );
    assert!(!listed.contains(&hash_token(token)), "list shows no hash");
    assert!(lrlab(&["revoke", "1"]).contains("revoked token 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_no_auth_on_a_network_bind_says_so_on_healthz() {
    let app = spawn_app_configured(0, |config| {
        config.bind = "0.0.0.0:0".parse().expect("address");
        config.auth.insecure_no_auth = true;
    })
    .await;
    let url = format!("http://127.0.0.1:{}/healthz", app.app.addr.port());
    let health: Value = reqwest::get(url)
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(health["auth"], "insecure-no-auth");
    assert!(
        health["warning"]
            .as_str()
            .is_some_and(|w| w.contains("anyone")),
        "{health}"
    );
    app.shutdown().await;
}
