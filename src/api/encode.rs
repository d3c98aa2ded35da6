//! Large response bodies: rendered and compressed off the async runtime's threads.
//!
//! A million-step CSV or a long page of per-update records takes tens of
//! milliseconds to write and more to gzip; done on a runtime thread it stalls
//! every other request (ten such previews once made `/healthz` take 9 s). So
//! bodies that can be large are rendered on a blocking thread and, when the
//! client accepts gzip, compressed there too; the response then carries
//! `Content-Encoding`, which the compression layer leaves alone.

use std::io::Write;

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use flate2::write::GzEncoder;
use flate2::Compression;

use super::error::ApiError;

/// Bodies smaller than this are not worth compressing.
const COMPRESS_ABOVE: usize = 1024;

/// Renders a body with `render` on a blocking thread and answers it as `content_type`,
/// gzipped there if `request` accepts gzip.
pub async fn off_runtime<F>(
    request: &HeaderMap,
    content_type: &'static str,
    render: F,
) -> Result<Response, ApiError>
where
    F: FnOnce() -> Result<String, ApiError> + Send + 'static,
{
    let gzip = accepts_gzip(request);
    let (body, compressed) = tokio::task::spawn_blocking(move || {
        let body = render()?.into_bytes();
        if gzip && body.len() > COMPRESS_ABOVE {
            let mut encoder =
                GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::fast());
            encoder.write_all(&body).map_err(ApiError::internal)?;
            Ok::<_, ApiError>((encoder.finish().map_err(ApiError::internal)?, true))
        } else {
            Ok((body, false))
        }
    })
    .await
    .map_err(ApiError::internal)??;
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if compressed {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    Ok(response)
}

/// Serializes `value` as JSON with [`off_runtime`].
pub async fn json_off_runtime<T>(request: &HeaderMap, value: T) -> Result<Response, ApiError>
where
    T: serde::Serialize + Send + 'static,
{
    off_runtime(request, "application/json", move || {
        serde_json::to_string(&value).map_err(ApiError::internal)
    })
    .await
}

/// Whether `Accept-Encoding` lists gzip with a non-zero quality.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let zero = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !zero
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, value.parse().unwrap());
        h
    }

    #[test]
    fn gzip_is_detected_with_and_without_qualities() {
        assert!(accepts_gzip(&headers("gzip")));
        assert!(accepts_gzip(&headers("br, gzip;q=0.8")));
        assert!(accepts_gzip(&headers("*")));
        assert!(!accepts_gzip(&headers("gzip;q=0")));
        assert!(!accepts_gzip(&headers("br, deflate")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
