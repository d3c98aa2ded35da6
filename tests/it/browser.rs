//! The dashboard in a real browser: Debian's headless Chromium, driven over WebDriver
//! (chromedriver) by fantoccini, against a server training on the generated data.
//!
//! One run goes through what a newcomer does: fill in the new-job form from a preset,
//! read the server's warnings and submit anyway, watch the job's charts grow over SSE
//! while it trains, then compare it with a fixed-rate job and switch the y axis to log
//! scale. Each page is checked for what is drawn (the charts' `data-*` hooks, legend
//! entries, the URL's state) and for errors in the browser's log, and screenshotted into
//! `$LRLAB_SCREENSHOTS` (default `target/screenshots`).
//!
//! Without Chromium and chromedriver the test is skipped with a message, except under
//! CI (`CI` set), where it fails: .ci/run installs both.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::support::{small_job, spawn_app, spawn_app_configured, TestApp};

/// Epochs of the job submitted from the form: enough to see its charts grow.
const EPOCHS: u64 = 6;
const WAIT: Duration = Duration::from_secs(120);

/// Where Chromium and chromedriver are (`LRLAB_CHROMIUM`, `LRLAB_CHROMEDRIVER` override).
fn binaries() -> Option<(PathBuf, PathBuf)> {
    let pick = |var: &str, candidates: &[&str]| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .into_iter()
            .chain(candidates.iter().map(PathBuf::from))
            .find(|path| path.is_file())
    };
    let chromium = pick(
        "LRLAB_CHROMIUM",
        &[
            "/usr/lib/chromium/chromium",
            "/usr/bin/chromium",
            "/usr/bin/chromium-browser",
        ],
    )?;
    let driver = pick(
        "LRLAB_CHROMEDRIVER",
        &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"],
    )?;
    Some((chromium, driver))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

/// A chromedriver process, stopped on drop — after ending its browser session, so a
/// failing test leaves no Chromium behind (killing chromedriver alone orphans it).
struct Driver {
    child: Child,
    port: u16,
    url: String,
    session: Option<String>,
}

impl Driver {
    /// `DELETE /session/{id}` over a plain socket: drop cannot await, and a blocking HTTP
    /// client cannot run inside the test's runtime.
    fn end_session(&self, session: &str) {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let request = format!(
            "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        );
        if stream.write_all(request.as_bytes()).is_ok() {
            let _ = stream.read_to_end(&mut Vec::new());
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            self.end_session(&session);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_driver(path: &Path) -> Driver {
    let port = free_port();
    let child = Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {}: {err}", path.display()));
    let driver = Driver {
        child,
        port,
        url: format!("http://127.0.0.1:{port}"),
        session: None,
    };
    let status = format!("{}/status", driver.url);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = reqwest::get(&status).await {
            let body: Value = response.json().await.unwrap_or_default();
            if body["value"]["ready"] == true {
                return driver;
            }
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn start_browser(driver: &Driver, chromium: &Path, profile: &Path) -> Client {
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--window-size=1280,900",
                "--force-device-scale-factor=1",
                format!("--user-data-dir={}", profile.display()),
            ],
        },
        "goog:loggingPrefs": {"browser": "ALL"},
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!("a JSON object literal")
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session in headless Chromium")
}

/// Where screenshots go.
fn screenshot_dir() -> PathBuf {
    let dir = std::env::var_os("LRLAB_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots"));
    std::fs::create_dir_all(&dir).expect("the screenshot directory");
    dir
}

/// Drives one browser session over one server.
struct Session {
    client: Client,
    driver_url: String,
    app_url: String,
    shots: PathBuf,
}

impl Session {
    async fn open(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.app_url))
            .await
            .unwrap_or_else(|err| panic!("open {path}: {err}"));
    }

    async fn eval(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|err| panic!("script failed ({err}): {script}"))
    }

    /// Waits until `script` returns something other than null or false, and returns it.
    async fn until(&self, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let value = self.eval(script).await;
            if !value.is_null() && value != false {
                return value;
            }
            if Instant::now() > deadline {
                let page = self.eval("return document.body.innerText").await;
                panic!("timed out waiting for {what}; the page reads: {page}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn click(&self, selector: &str) {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(selector))
            .await
            .unwrap_or_else(|err| panic!("no {selector}: {err}"))
            .click()
            .await
            .unwrap_or_else(|err| panic!("click {selector}: {err}"));
    }

    /// Replaces the value of a form field as a person would: clear it, type.
    async fn fill(&self, path: &str, value: &str) {
        let field = self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(&format!("[data-testid=\"field-{path}\"]")))
            .await
            .unwrap_or_else(|err| panic!("no field {path}: {err}"));
        field.clear().await.expect("clear");
        field.send_keys(value).await.expect("type");
    }

    async fn screenshot(&self, name: &str) {
        // Let the last redraw land before taking the picture.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let png = self.client.screenshot().await.expect("a screenshot");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write the screenshot");
        eprintln!("screenshot: {}", path.display());
    }

    /// Browser log entries since the last call that are errors of the page's own making:
    /// level SEVERE from scripts, the console or security checks (a `network` entry is a
    /// failed request, such as an expected 404 of a feature probe).
    async fn page_errors(&self) -> Vec<Value> {
        let session = self
            .client
            .session_id()
            .await
            .expect("session id")
            .expect("a session");
        let response = reqwest::Client::new()
            .post(format!("{}/session/{session}/se/log", self.driver_url))
            .json(&json!({"type": "browser"}))
            .send()
            .await
            .expect("the WebDriver log endpoint answers");
        let body: Value = response.json().await.expect("log JSON");
        let entries = body["value"]
            .as_array()
            .unwrap_or_else(|| panic!("no browser log: {body}"))
            .clone();
        entries
            .into_iter()
            .filter(|entry| {
                entry["level"] == "SEVERE"
                    && matches!(
                        entry["source"].as_str(),
                        Some("javascript" | "console-api" | "security")
                    )
            })
            .collect()
    }

    async fn assert_no_page_errors(&self, page: &str) {
        let errors = self.page_errors().await;
        assert!(
            errors.is_empty(),
            "{page}: errors in the browser log: {errors:#?}"
        );
    }

    async fn attr(&self, selector: &str, name: &str) -> Option<String> {
        let script = format!(
            "const e = document.querySelector({}); return e ? e.getAttribute({}) : null",
            json!(selector),
            json!(name)
        );
        self.eval(&script).await.as_str().map(str::to_string)
    }
}

/// A fixed-rate job to compare with, trained to the end through the API.
async fn fixed_rate_job(app: &TestApp) -> i64 {
    let id = app
        .submit(&json!({
            "name": "fixed-0.1",
            "epochs": 3,
            "batch_size": 32,
            "schedule": {"kind": "constant", "lr": 0.1},
            "seed": 3
        }))
        .await;
    app.wait_finished(id).await;
    id
}

/// A job that would run for ages: it holds the only worker until it is canceled, so the
/// form's job waits in the queue and its page opens before its charts have any point.
async fn blocker(app: &TestApp) -> i64 {
    app.submit(&json!({
        "name": "blocker",
        "epochs": 1000,
        "batch_size": 8,
        "schedule": {"kind": "constant", "lr": 0.01},
        "priority": 10
    }))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_submits_watches_and_compares_jobs_in_chromium() {
    let Some((chromium, driver_path)) = binaries() else {
        let message =
            "Chromium or chromedriver is missing (apt-get install chromium chromium-driver)";
        assert!(
            std::env::var_os("CI").is_none(),
            "{message}: the browser test cannot run in CI"
        );
        eprintln!("skipping the browser test: {message}");
        return;
    };
    let app = spawn_app(1).await;
    let profile = tempfile::tempdir().expect("a browser profile dir");
    let mut driver = start_driver(&driver_path).await;
    let client = start_browser(&driver, &chromium, profile.path()).await;
    driver.session = client.session_id().await.expect("a session id");
    let session = Session {
        client,
        driver_url: driver.url.clone(),
        app_url: app.url(""),
        shots: screenshot_dir(),
    };

    let fixed = fixed_rate_job(&app).await;
    let blocker = blocker(&app).await;

    // ---- the new-job form, from the cosine-with-warm-up preset ----
    session.open("/new?preset=cosine_warmup").await;
    session
        .until(
            "the preset's preview",
            "return document.querySelector('[data-testid=\"chart-preview\"]')?.dataset.state === 'ready'",
        )
        .await;
    assert_eq!(
        session
            .attr("[data-testid=\"preset-cosine_warmup\"]", "aria-pressed")
            .await
            .as_deref(),
        Some("true")
    );
    session.fill("epochs", &EPOCHS.to_string()).await;
    session.fill("batch_size", "16").await;
    session.fill("train_limit", "512").await;
    let request = session
        .until(
            "the request body to follow the form",
            &format!(
                "const b = JSON.parse(document.querySelector('[data-testid=\"request-json\"]').textContent); \
                 return b.epochs === {EPOCHS} && b.train_limit === 512 ? b : null"
            ),
        )
        .await;
    assert_eq!(request["schedule"]["kind"], "cosine");
    assert_eq!(request["schedule"]["warmup_steps"], 5);

    // A dry run shows the server's warnings first (20 cosine epochs in a 6-epoch job).
    session.click("[data-testid=\"submit\"]").await;
    session
        .until(
            "the server's warnings",
            "return document.querySelector('[data-testid=\"warnings-box\"] [data-code=\"schedule_longer_than_job\"]') !== null \
             && document.querySelector('[data-testid=\"submit\"]').textContent === 'Submit anyway'",
        )
        .await;
    let page: Value = app.get("/v1/jobs").await.json().await.unwrap();
    assert_eq!(page["total"], 2, "the dry run stored nothing");
    // The preview, redrawn as the fields were typed, does not replace the server's words.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let shown = session
        .eval("return [...document.querySelectorAll('[data-testid=\"warnings-box\"] [data-code]')].map(w => w.dataset.code)")
        .await;
    assert!(
        shown
            .as_array()
            .unwrap()
            .contains(&json!("schedule_longer_than_job")),
        "{shown}"
    );
    session.screenshot("new-job").await;
    session.assert_no_page_errors("/new").await;

    session.click("[data-testid=\"submit\"]").await;
    let href = session
        .until(
            "the submitted job's link",
            "return document.querySelector('[data-testid=\"submitted-job-link\"]')?.getAttribute('href') ?? null",
        )
        .await;
    let href = href.as_str().expect("a link").to_string();
    let cosine: i64 = href
        .trim_start_matches("/jobs/")
        .parse()
        .unwrap_or_else(|_| panic!("a job link: {href}"));

    // ---- the job page: its charts grow over SSE while it trains ----
    session.click("[data-testid=\"submitted-job-link\"]").await;
    session
        .until(
            "the job page",
            "return document.querySelector('[data-testid=\"chart-test_acc\"]') !== null",
        )
        .await;
    let chart = "[data-testid=\"chart-test_acc\"]";
    session
        .until(
            "the queued job's empty charts",
            "return document.querySelector('.page-head')?.dataset.status === 'queued' \
             && document.querySelector('[data-testid=\"chart-test_acc\"]').dataset.state === 'empty'",
        )
        .await;
    // Free the worker: the job starts while its page watches.
    let response = app
        .client
        .post(app.url(&format!("/v1/jobs/{blocker}/cancel")))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let mut seen = Vec::new();
    let deadline = Instant::now() + WAIT;
    loop {
        let points: u64 = session
            .attr(chart, "data-points")
            .await
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        if seen.last() != Some(&points) {
            seen.push(points);
        }
        if points == EPOCHS {
            break;
        }
        assert!(Instant::now() < deadline, "the chart stopped at {seen:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "points only grow: {seen:?}"
    );
    assert!(
        seen.iter().any(|&p| p > 0 && p < EPOCHS),
        "the chart was seen growing while the job trained, not only complete: {seen:?}"
    );
    assert_eq!(
        session.attr(chart, "data-state").await.as_deref(),
        Some("ready")
    );
    session
        .until(
            "the job to succeed",
            "return document.querySelector('.page-head')?.dataset.status === 'succeeded'",
        )
        .await;
    session
        .until(
            "the per-update charts",
            "return document.querySelector('[data-testid=\"chart-loss_step\"]')?.dataset.state === 'ready'",
        )
        .await;
    for key in ["train_loss", "train_acc", "test_loss", "lr", "lr_step"] {
        let selector = format!("[data-testid=\"chart-{key}\"]");
        assert_eq!(
            session.attr(&selector, "data-state").await.as_deref(),
            Some("ready"),
            "{key}"
        );
    }
    assert_eq!(
        session
            .attr("[data-testid=\"svg-test_acc\"]", "href")
            .await
            .as_deref(),
        Some(format!("/v1/jobs/{cosine}/chart.svg?metric=test_acc").as_str())
    );
    session.screenshot("job").await;
    session.assert_no_page_errors("/jobs/{id}").await;

    // ---- the jobs list ----
    session.open("/").await;
    session
        .until(
            "the three job rows",
            "return document.querySelectorAll('[data-testid=\"job-row\"]').length === 3",
        )
        .await;
    assert_eq!(
        session
            .attr(
                &format!("[data-testid=\"job-row\"][data-job-id=\"{blocker}\"]"),
                "data-status"
            )
            .await
            .as_deref(),
        Some("canceled")
    );
    session.screenshot("jobs").await;
    session.assert_no_page_errors("/").await;

    // ---- the compare page, then log scale ----
    session
        .open(&format!("/compare?ids={fixed},{cosine}&metric=test_acc"))
        .await;
    let chart = "[data-testid=\"chart-test_acc\"]";
    session
        .until(
            "the comparison",
            &format!("return document.querySelector('{chart}')?.dataset.state === 'ready' && document.querySelectorAll('[data-testid=\"legend-entry\"]').length === 2"),
        )
        .await;
    assert_eq!(
        session.attr(chart, "data-series").await.as_deref(),
        Some("2")
    );
    let points: u64 = session
        .attr(chart, "data-points")
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(points, 3 + EPOCHS, "every epoch of both jobs is drawn");
    let legend = session
        .eval(
            "return [...document.querySelectorAll('[data-testid=\"legend-entry\"]')].map(e => [e.dataset.jobId, e.textContent])",
        )
        .await;
    let legend = legend.as_array().unwrap();
    assert_eq!(legend[0][0], fixed.to_string());
    assert_eq!(legend[1][0], cosine.to_string());
    assert!(
        legend[0][1].as_str().unwrap().contains("fixed-0.1"),
        "{legend:?}"
    );
    assert!(
        legend[1][1].as_str().unwrap().contains("cosine-warmup"),
        "{legend:?}"
    );
    assert!(
        legend[1][1]
            .as_str()
            .unwrap()
            .contains("cosine 0.3→0.01 over 20, warm-up 5"),
        "{legend:?}"
    );

    session.click("#logy").await;
    session
        .until(
            "log y in the URL",
            "return new URLSearchParams(location.search).get('logy') === '1'",
        )
        .await;
    assert_eq!(
        session
            .eval("return document.querySelector('#logy').checked")
            .await,
        true
    );
    assert_eq!(
        session.attr(chart, "data-state").await.as_deref(),
        Some("ready")
    );
    let svg = session
        .attr("[data-testid=\"svg-test_acc\"]", "href")
        .await
        .unwrap();
    assert!(svg.contains("log_y=true"), "{svg}");
    session.screenshot("compare").await;
    session.assert_no_page_errors("/compare").await;

    // The server draws the same comparison as an image.
    let response = app.get(&svg).await;
    assert_eq!(response.status(), 200);
    let image = response.text().await.unwrap();
    assert!(image.contains("cosine-warmup") && image.contains("fixed-0.1"));

    // A sweep over the rate, started from the form's "Sweep…" button on the rate field:
    // two values on two common seeds, watched to the end on its page.
    session.open("/new?preset=fixed").await;
    session.fill("epochs", "2").await;
    session.fill("train_limit", "256").await;
    session.click("[data-testid=\"sweep-schedule.lr\"]").await;
    let values = session
        .client
        .find(Locator::Css("[data-testid=\"sweep-values-schedule.lr\"]"))
        .await
        .expect("the values box opens");
    values.send_keys("0.05, 0.2").await.expect("type");
    let seeds = session
        .client
        .find(Locator::Css("[data-testid=\"sweep-seeds-schedule.lr\"]"))
        .await
        .expect("the seeds box");
    seeds.clear().await.expect("clear");
    seeds.send_keys("1, 2").await.expect("type");
    session
        .click("[data-testid=\"sweep-start-schedule.lr\"]")
        .await;
    let sweep = session
        .until(
            "the sweep's page",
            "const m = location.pathname.match(/^\\/sweeps\\/(\\d+)$/); return m ? Number(m[1]) : null",
        )
        .await
        .as_i64()
        .unwrap();
    let stored: Value = app
        .get(&format!("/v1/sweeps/{sweep}"))
        .await
        .json()
        .await
        .unwrap();
    let overrides: Vec<Value> = stored["configs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["overrides"]["schedule.lr"].clone())
        .collect();
    assert_eq!(overrides, vec![json!(0.05), json!(0.2)], "{stored}");
    assert_eq!(stored["seeds"], json!([1, 2]));
    assert_eq!(stored["configs"][0]["epochs"], 2);
    session
        .until(
            "every member done",
            "const p = document.querySelector('[data-testid=\"sweep-progress\"]'); return p && p.textContent === '4 of 4 members done'",
        )
        .await;
    session
        .until(
            "the band chart with both configs",
            "const f = document.querySelector('[data-testid=\"chart-sweep-test_acc\"]'); return f && f.dataset.state === 'ready' && f.dataset.series === '2' && Number(f.dataset.points) === 2 * 2 * 3",
        )
        .await;
    let rows = session
        .until(
            "a summary row per config, ranked",
            "const r = [...document.querySelectorAll('[data-testid^=\"summary-row-\"]')].map(r => r.cells[0].textContent); return r.length === 2 ? r : null",
        )
        .await;
    assert_eq!(rows, json!(["1", "2"]));
    session.screenshot("sweep").await;
    session.assert_no_page_errors("/sweeps/{id}").await;

    // The list shows it, and every preset the server offers, each with a Run button.
    session.open("/sweeps").await;
    session
        .until(
            "the sweep in the list",
            &format!(
                "return document.querySelector('[data-testid=\"sweep-row-{sweep}\"]') !== null"
            ),
        )
        .await;
    let presets: Value = app.get("/v1/sweeps/presets").await.json().await.unwrap();
    let buttons = session
        .eval("return document.querySelectorAll('[data-testid^=\"run-preset-\"]').length")
        .await;
    assert_eq!(buttons, json!(presets["presets"].as_array().unwrap().len()));
    session.assert_no_page_errors("/sweeps").await;

    session.client.close().await.expect("close the browser");
    driver.session = None;
    drop(driver);
    app.shutdown().await;
}

/// The admin token of the server with tokens on.
const ADMIN: &str = "lrlab_browser-bootstrap-admin-token-0123456789";

/// `method path` with a bearer token, answered as JSON.
async fn call_as(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("send");
    let status = response.status();
    let body: Value = response.json().await.unwrap_or_default();
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tokens_the_dashboard_logs_in_and_shows_only_its_tenants_jobs_live() {
    let Some((chromium, driver_path)) = binaries() else {
        let message =
            "Chromium or chromedriver is missing (apt-get install chromium chromium-driver)";
        assert!(
            std::env::var_os("CI").is_none(),
            "{message}: the browser test cannot run in CI"
        );
        eprintln!("skipping the browser test: {message}");
        return;
    };
    let app = spawn_app_configured(1, |config| {
        config.auth = lrlab::app::AuthConfig {
            tokens: true,
            bootstrap_token: Some(ADMIN.to_string()),
            ..lrlab::app::AuthConfig::default()
        };
    })
    .await;
    let token = |tenant: &'static str| {
        let app = &app;
        async move {
            call_as(
                app,
                ADMIN,
                reqwest::Method::POST,
                "/v1/tokens",
                Some(json!({"tenant": tenant, "role": "member"})),
            )
            .await["token"]
                .as_str()
                .expect("a token")
                .to_string()
        }
    };
    let alice = token("lab-a").await;
    let bob = token("lab-b").await;
    // Bob's job holds the only worker until it is canceled, so Alice's waits in the queue
    // and her job page opens before it trains.
    let bobs = call_as(
        &app,
        &bob,
        reqwest::Method::POST,
        "/v1/jobs",
        Some(json!({
            "name": "bobs-blocker",
            "epochs": 1000,
            "batch_size": 8,
            "schedule": {"kind": "constant", "lr": 0.01}
        })),
    )
    .await["id"]
        .as_i64()
        .expect("an id");
    let mut request = small_job(3);
    request["name"] = json!("alices-job");
    let alices = call_as(
        &app,
        &alice,
        reqwest::Method::POST,
        "/v1/jobs",
        Some(request),
    )
    .await["id"]
        .as_i64()
        .expect("an id");

    let profile = tempfile::tempdir().expect("a browser profile dir");
    let mut driver = start_driver(&driver_path).await;
    let client = start_browser(&driver, &chromium, profile.path()).await;
    driver.session = client.session_id().await.expect("a session id");
    let session = Session {
        client,
        driver_url: driver.url.clone(),
        app_url: app.url(""),
        shots: screenshot_dir(),
    };

    // ---- the token form, once ----
    session.open("/").await;
    let input = session
        .client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("[data-testid=\"token-input\"]"))
        .await
        .expect("the token form");
    input.send_keys(&alice).await.expect("type the token");
    session.screenshot("token-form").await;
    session.click("[data-testid=\"token-submit\"]").await;
    session
        .until(
            "Alice's job in the list",
            &format!("return document.querySelector('[data-testid=\"job-row\"][data-job-id=\"{alices}\"]') !== null"),
        )
        .await;
    let rows = session
        .eval("return [...document.querySelectorAll('[data-testid=\"job-row\"]')].map(r => Number(r.dataset.jobId))")
        .await;
    assert_eq!(rows, json!([alices]), "only lab-a's job, not Bob's {bobs}");
    assert!(
        session
            .eval("return sessionStorage.getItem('lrlab.token')")
            .await
            .as_str()
            == Some(alice.as_str())
    );
    assert!(
        session
            .eval("return document.querySelector('[data-testid=\"logout\"]') !== null")
            .await
            == true
    );
    session.screenshot("tenant-jobs").await;
    session.assert_no_page_errors("/ with a token").await;

    // ---- the job page: live over the fetch-based event stream ----
    session.open(&format!("/jobs/{alices}")).await;
    let chart = "[data-testid=\"chart-test_acc\"]";
    session
        .until(
            "the queued job's empty charts",
            "return document.querySelector('.page-head')?.dataset.status === 'queued' \
             && document.querySelector('[data-testid=\"chart-test_acc\"]')?.dataset.state === 'empty'",
        )
        .await;
    assert!(
        session
            .eval("return document.querySelector('[data-testid=\"token-dialog\"]') === null")
            .await
            == true,
        "the token is kept for the session: no second form"
    );
    call_as(
        &app,
        &bob,
        reqwest::Method::POST,
        &format!("/v1/jobs/{bobs}/cancel"),
        None,
    )
    .await;
    session
        .until(
            "the job to succeed, seen live",
            &format!(
                "return document.querySelector('.page-head')?.dataset.status === 'succeeded' \
                 && document.querySelector('{chart}')?.dataset.points === '3'"
            ),
        )
        .await;
    session.screenshot("tenant-job").await;
    session
        .assert_no_page_errors("/jobs/{id} with a token")
        .await;

    // Bob's job is not found for Alice, as if it did not exist.
    session.open(&format!("/jobs/{bobs}")).await;
    session
        .until(
            "the not-found job",
            "return document.body.innerText.includes('cannot be shown')",
        )
        .await;
    app.shutdown().await;
}
