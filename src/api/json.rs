//! `AppJson`: the JSON body extractor that answers in our error shape.
//!
//! axum's own `Json` rejects with plain-text bodies and does not say which
//! field was wrong. Clients of lrlab need to know exactly that, so this
//! extractor reads the body itself and maps each failure to an [`ApiError`]:
//! wrong content type → 415, body over the limit → 413, malformed JSON → 400,
//! well-formed JSON of the wrong shape → 422 with the offending field's path.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use super::error::{ApiError, ErrorCode};

/// The largest request body lrlab reads (1 MiB); also enforced by a layer.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// A JSON request body, deserialized with path-aware errors.
#[derive(Debug, Clone)]
pub struct AppJson<T>(pub T);

/// A JSON request body whose objects keep the client's key order (see [`parse_json_ordered`]).
#[derive(Debug, Clone)]
pub struct OrderedJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        parse_json(&json_body(req, state).await?).map(AppJson)
    }
}

impl<S, T> FromRequest<S> for OrderedJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        parse_json_ordered(&json_body(req, state).await?).map(OrderedJson)
    }
}

/// The bytes of a JSON body: 415 for another content type, 413 over the limit.
async fn json_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    if !is_json(req.headers()) {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "expected a request body with content type application/json",
        ));
    }
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("request body is larger than the limit of {BODY_LIMIT} bytes"),
            )
        } else {
            ApiError::new(
                ErrorCode::UnreadableBody,
                format!("could not read the request body: {rejection}"),
            )
        }
    })
}

/// Parses `bytes` as JSON into `T`: a syntax error is a 400, a shape error a 422 naming the
/// field. Integral floats are read as integers (`"epochs": 1.0`), as JSON Schema counts them.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|err| {
        ApiError::new(
            ErrorCode::InvalidJson,
            format!("request body is not valid JSON: {err}"),
        )
    })?;
    Ok(crate::validation::from_json_value(&value)?)
}

/// Parses `bytes` as JSON into `T` straight from the text, so object keys keep the client's
/// order (a sweep's grid names and numbers its configs in that order).
pub fn parse_json_ordered<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    crate::validation::from_json_slice(bytes).map_err(|err| match err {
        crate::validation::JsonError::Syntax(err) => ApiError::new(
            ErrorCode::InvalidJson,
            format!("request body is not valid JSON: {err}"),
        ),
        crate::validation::JsonError::Field(field) => field.into(),
    })
}

/// `application/json` or any `application/*+json`, with or without parameters.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    let essence = essence.to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Probe {
        steps: u32,
        #[expect(dead_code, reason = "exists only to be deserialized")]
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "fields exist only to be deserialized")]
    struct Inner {
        lr: f64,
    }

    fn unprocessable(err: ApiError) -> (&'static str, String) {
        match err {
            ApiError::Client {
                code: ErrorCode::Field(code),
                path: Some(path),
                ..
            } => (code.as_str(), path),
            other => panic!("expected a 422, got {other:?}"),
        }
    }

    #[test]
    fn malformed_json_is_a_bad_request() {
        let err = parse_json::<Probe>(b"{\"steps\": ").unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        assert_eq!(err.code(), "invalid_json");
    }

    #[test]
    fn unknown_nested_field_is_named_in_the_path() {
        let err =
            parse_json::<Probe>(br#"{"steps": 3, "inner": {"lr": 1, "lrr": 2}}"#).unwrap_err();
        assert_eq!(
            unprocessable(err),
            ("unknown_field", "inner.lrr".to_string())
        );
    }

    #[test]
    fn missing_field_at_the_root_is_named_in_the_path() {
        let err = parse_json::<Probe>(b"{}").unwrap_err();
        assert_eq!(unprocessable(err), ("missing_field", "steps".to_string()));
    }

    #[test]
    fn wrong_type_names_the_field() {
        let err = parse_json::<Probe>(br#"{"steps": "many"}"#).unwrap_err();
        assert_eq!(unprocessable(err), ("invalid_type", "steps".to_string()));
    }

    #[test]
    fn integral_floats_are_integers_and_fractions_stay_refused() {
        let probe: Probe = parse_json(br#"{"steps": 3.0, "inner": {"lr": 1}}"#).unwrap();
        assert_eq!(probe.steps, 3);
        let err = parse_json::<Probe>(br#"{"steps": 3.5}"#).unwrap_err();
        assert_eq!(unprocessable(err).1, "steps");
        let err = parse_json::<Probe>(br#"{"steps": 1e300}"#).unwrap_err();
        assert_eq!(unprocessable(err).1, "steps");
    }

    #[test]
    fn json_content_types_are_recognised() {
        let mut headers = HeaderMap::new();
        assert!(!is_json(&headers));
        for (value, expected) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("application/problem+json", true),
            ("text/plain", false),
            ("application/x-www-form-urlencoded", false),
        ] {
            headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            assert_eq!(is_json(&headers), expected, "{value}");
        }
    }
}
