//! The web dashboard: `index.html` at every page path, its files under `/assets/`.
//!
//! The files in `web/` are compiled into the binary with `include_bytes!`, so a
//! release binary serves the dashboard with nothing to install beside it and
//! nothing fetched from elsewhere at run time. A table is enough for a dozen
//! files (no embedding crate needed); a test checks that it lists every file in
//! `web/`, so a new file cannot be forgotten. Pages are plain HTML, CSS and ES
//! modules: there is no build step.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::map_response;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::routes::Routes;

/// The policy sent with every dashboard response. Scripts and styles come only
/// from this origin: `index.html` has no inline script, style attribute or event
/// handler (a test checks), and uPlot sets element styles through the CSSOM,
/// which `style-src` does not restrict. Nothing may frame the dashboard.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Paths answered with `index.html`; the page's script picks what to show.
pub(super) const PAGES: &[&str] = &[
    "/",
    "/jobs/{id}",
    "/compare",
    "/new",
    "/sweeps",
    "/sweeps/{id}",
];

const INDEX: &[u8] = include_bytes!("../../web/index.html");

/// One embedded file, served at `/assets/{path}`.
struct Asset {
    path: &'static str,
    body: &'static [u8],
}

macro_rules! assets {
    ($($path:literal),* $(,)?) => {
        &[$(Asset { path: $path, body: include_bytes!(concat!("../../web/", $path)) }),*]
    };
}

/// Every file of `web/` but `index.html` and the `.md` notes.
const ASSETS: &[Asset] = assets![
    "app.css",
    "favicon.svg",
    "js/api.js",
    "js/charts.js",
    "js/chartstate.js",
    "js/compare.js",
    "js/dom.js",
    "js/job.js",
    "js/jobs.js",
    "js/main.js",
    "js/new.js",
    "js/sweeps.js",
    "vendor/uplot/LICENSE",
    "vendor/uplot/uPlot.iife.min.js",
    "vendor/uplot/uPlot.min.css",
];

/// The dashboard's routes. Generic over the state because no handler needs
/// it, so the tests can drive this router on its own.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Routes<S> {
    PAGES
        .iter()
        .fold(Routes::new(), |routes, page| routes.get(page, index))
        .get("/assets/{*path}", asset)
        .wrap(|router| router.layer(map_response(security_headers)))
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", INDEX, &headers)
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().find(|asset| asset.path == path) {
        Some(asset) => serve(asset.path, asset.body, &headers),
        None => ApiError::not_found("asset").into_response(),
    }
}

/// The file with its type and validator. Browsers revalidate on every load
/// (`no-cache`) and get a body-less 304 while the file is unchanged, so a new
/// binary's files are picked up at once without hashed file names.
fn serve(path: &str, body: &'static [u8], headers: &HeaderMap) -> Response {
    let etag = etag(path);
    let mut response = if matches_etag(headers, etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, content_type(path))], body).into_response()
    };
    let out = response.headers_mut();
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(etag) {
        out.insert(header::ETAG, value);
    }
    response
}

fn content_type(path: &str) -> &'static str {
    match std::path::Path::new(path)
        .extension()
        .and_then(|ext| ext.to_str())
    {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        None if path.ends_with("LICENSE") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// A weak validator from the content's hash: weak because the compression
/// layer may send the same file gzipped or not.
fn etag(path: &str) -> &'static str {
    static ETAGS: OnceLock<HashMap<&'static str, String>> = OnceLock::new();
    let tags = ETAGS.get_or_init(|| {
        let hash = |body: &[u8]| {
            let digest = Sha256::digest(body);
            let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
            format!("W/\"{hex}\"")
        };
        ASSETS
            .iter()
            .map(|asset| (asset.path, hash(asset.body)))
            .chain([("index.html", hash(INDEX))])
            .collect()
    });
    tags.get(path).map_or("", String::as_str)
}

/// `If-None-Match` names this validator (weak comparison, as for GET).
fn matches_etag(headers: &HeaderMap, etag: &str) -> bool {
    let strip = |tag: &str| tag.trim().trim_start_matches("W/").to_string();
    let ours = strip(etag);
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|tag| tag.trim() == "*" || strip(tag) == ours)
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    // For browsers that predate CSP's frame-ancestors.
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::PathBuf;

    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    fn web_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("web")
    }

    async fn get(uri: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut request = Request::get(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Body::empty()).expect("a valid request");
        let response = routes::<()>()
            .into_router()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("an in-memory body")
            .to_bytes()
            .to_vec();
        (status, headers, body)
    }

    fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    }

    fn assert_security_headers(uri: &str, headers: &HeaderMap) {
        let csp = header(headers, "content-security-policy");
        assert!(csp.starts_with("default-src 'self'"), "{uri}: CSP {csp:?}");
        assert!(csp.contains("script-src 'self';"), "{uri}: CSP {csp:?}");
        assert!(!csp.contains("unsafe-inline"), "{uri}: CSP {csp:?}");
        assert!(csp.contains("frame-ancestors 'none'"), "{uri}: CSP {csp:?}");
        assert_eq!(
            header(headers, "x-content-type-options"),
            "nosniff",
            "{uri}"
        );
        assert_eq!(header(headers, "referrer-policy"), "same-origin", "{uri}");
    }

    #[tokio::test]
    async fn index_is_served_at_every_page_path_with_the_security_headers() {
        for uri in [
            "/",
            "/jobs/7",
            "/compare?ids=1,2&metric=test_acc&logx=0&logy=1&smooth=0",
            "/new",
            "/new?preset=cosine",
            "/sweeps",
            "/sweeps/3",
        ] {
            let (status, headers, body) = get(uri, &[]).await;
            assert_eq!(status, StatusCode::OK, "{uri}");
            assert_eq!(
                header(&headers, "content-type"),
                "text/html; charset=utf-8",
                "{uri}"
            );
            assert_eq!(header(&headers, "cache-control"), "no-cache", "{uri}");
            assert_security_headers(uri, &headers);
            assert_eq!(body, INDEX, "{uri}");
        }
    }

    #[tokio::test]
    async fn every_asset_is_served_with_its_content_type_and_current_content() {
        for asset in ASSETS {
            let uri = format!("/assets/{}", asset.path);
            let (status, headers, body) = get(&uri, &[]).await;
            assert_eq!(status, StatusCode::OK, "{uri}");
            let expected = match asset.path.rsplit('.').next() {
                Some("js") => "text/javascript; charset=utf-8",
                Some("css") => "text/css; charset=utf-8",
                Some("svg") => "image/svg+xml",
                _ if asset.path.ends_with("/LICENSE") => "text/plain; charset=utf-8",
                other => panic!("{uri}: no expected type for {other:?}"),
            };
            assert_eq!(header(&headers, "content-type"), expected, "{uri}");
            assert_security_headers(&uri, &headers);
            let on_disk = fs::read(web_dir().join(asset.path)).expect("the file exists");
            assert_eq!(body, on_disk, "{uri} is stale: rebuild");
        }
    }

    #[tokio::test]
    async fn unknown_assets_are_a_json_404() {
        for uri in [
            "/assets/nope.js",
            "/assets/js",
            "/assets/../Cargo.toml",
            "/assets/%2e%2e/Cargo.toml",
            "/assets/js/../../src/main.rs",
        ] {
            let (status, headers, body) = get(uri, &[]).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
            assert!(
                header(&headers, "content-type").starts_with("application/json"),
                "{uri}"
            );
            let json: serde_json::Value = serde_json::from_slice(&body).expect("a JSON body");
            assert_eq!(json["error"]["code"], "not_found", "{uri}: {json}");
            assert_security_headers(uri, &headers);
        }
    }

    #[tokio::test]
    async fn an_unchanged_file_is_revalidated_with_a_304() {
        let (_, headers, _) = get("/assets/js/main.js", &[]).await;
        let etag = header(&headers, "etag").to_string();
        assert!(etag.starts_with("W/\""), "{etag:?}");

        let (status, headers, body) = get("/assets/js/main.js", &[("if-none-match", &etag)]).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        assert!(body.is_empty());
        assert_eq!(header(&headers, "etag"), etag);

        let (status, _, body) = get("/assets/js/main.js", &[("if-none-match", "W/\"0000\"")]).await;
        assert_eq!(status, StatusCode::OK);
        assert!(!body.is_empty());

        let (_, index_headers, _) = get("/", &[]).await;
        assert_ne!(
            header(&index_headers, "etag"),
            etag,
            "each file has its own validator"
        );
    }

    /// The start tags of an HTML document, lower-cased, with the text up to the next tag.
    fn tags(html: &str) -> Vec<(String, String)> {
        let lower = html.to_lowercase();
        let mut out = Vec::new();
        let mut rest = lower.as_str();
        while let Some(start) = rest.find('<') {
            rest = &rest[start + 1..];
            let Some(end) = rest.find('>') else { break };
            let tag = rest[..end].to_string();
            rest = &rest[end + 1..];
            let text = rest[..rest.find('<').unwrap_or(rest.len())].to_string();
            if !tag.starts_with('/') && !tag.starts_with('!') {
                out.push((tag, text));
            }
        }
        out
    }

    #[test]
    fn index_html_has_no_inline_script_style_or_event_handler() {
        let html = std::str::from_utf8(INDEX).expect("UTF-8");
        let tags = tags(html);
        let scripts: Vec<_> = tags
            .iter()
            .filter(|(tag, _)| tag.starts_with("script"))
            .collect();
        assert!(!scripts.is_empty(), "index.html loads its scripts");
        for (tag, text) in &scripts {
            assert!(
                tag.contains(" src=\"/assets/"),
                "inline or foreign script: <{tag}>"
            );
            assert!(text.trim().is_empty(), "<{tag}> has inline code: {text:?}");
        }
        for (tag, _) in &tags {
            assert!(!tag.starts_with("style"), "a <style> element: <{tag}>");
            for attribute in tag.split_whitespace().skip(1) {
                let name = attribute.split('=').next().unwrap_or("");
                assert!(name != "style", "a style attribute: <{tag}>");
                assert!(!name.starts_with("on"), "an inline event handler: <{tag}>");
            }
        }
    }

    #[test]
    fn scripts_do_nothing_a_strict_policy_forbids() {
        for asset in ASSETS.iter().filter(|asset| asset.path.starts_with("js/")) {
            let code = std::str::from_utf8(asset.body).expect("UTF-8");
            for forbidden in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "eval(",
                "new Function",
                "setAttribute('style'",
                "document.write",
            ] {
                assert!(!code.contains(forbidden), "{} uses {forbidden}", asset.path);
            }
        }
    }

    #[test]
    fn every_file_in_web_is_embedded_and_every_reference_resolves() {
        fn walk(dir: &std::path::Path, base: &std::path::Path, out: &mut Vec<String>) {
            for entry in fs::read_dir(dir).expect("web/ is readable") {
                let path = entry.expect("a directory entry").path();
                if path.is_dir() {
                    walk(&path, base, out);
                } else if let Ok(relative) = path.strip_prefix(base) {
                    out.push(relative.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        let mut files = Vec::new();
        walk(&web_dir(), &web_dir(), &mut files);
        let embedded: Vec<&str> = ASSETS.iter().map(|asset| asset.path).collect();
        for file in files
            .iter()
            .filter(|f| *f != "index.html" && !f.ends_with(".md"))
        {
            assert!(
                embedded.contains(&file.as_str()),
                "web/{file} is not in ASSETS"
            );
        }

        let html = std::str::from_utf8(INDEX).expect("UTF-8");
        let mut references: Vec<String> = html
            .split("\"/assets/")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .map(str::to_string)
            .collect();
        for asset in ASSETS.iter().filter(|asset| asset.path.starts_with("js/")) {
            let code = std::str::from_utf8(asset.body).expect("UTF-8");
            references.extend(
                code.split(" from './")
                    .skip(1)
                    .filter_map(|rest| rest.split('\'').next())
                    .map(|module| format!("js/{module}")),
            );
        }
        assert!(
            references.len() > ASSETS.len() / 2,
            "found the references: {references:?}"
        );
        for reference in &references {
            assert!(
                embedded.contains(&reference.as_str()),
                "{reference} is referenced but not embedded"
            );
        }
    }
}
