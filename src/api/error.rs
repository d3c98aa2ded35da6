//! The one error type of the HTTP edge, and its mapping to status codes.
//!
//! Every handler returns `Result<_, ApiError>`. Each variant carries a stable,
//! machine-readable `code`; clients match on it, never on the message. Internal
//! failures are logged with their full chain and answered with a generic 500
//! so that nothing about the server's insides leaks into a response.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::schedule::SpecError;

/// An error answered to an HTTP client as `{"error": {"code", "message", "path"?}}`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request could not be read at all (malformed JSON, bad query string).
    #[error("{message}")]
    BadRequest {
        code: &'static str,
        message: String,
        path: Option<String>,
    },
    /// The body is not `application/json`.
    #[error("expected a request body with content type application/json")]
    UnsupportedMediaType,
    /// The body is larger than the server accepts.
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// The request is well-formed JSON but breaks a rule; `path` names the field.
    #[error("{message}")]
    Unprocessable {
        code: &'static str,
        message: String,
        path: String,
    },
    /// No such resource.
    #[error("{what} not found")]
    NotFound { what: String },
    /// The resource is in a state that forbids the operation.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// Anything else: a bug or an I/O failure. Logged, never detailed to clients.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// The body of every error response.
#[derive(Debug, Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Debug, Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
}

impl ApiError {
    /// A 422 for a field that breaks a rule.
    pub fn invalid(
        code: &'static str,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ApiError::Unprocessable {
            code,
            message: message.into(),
            path: path.into(),
        }
    }

    /// A schedule-spec error found under the request field `prefix` (e.g. `"schedule"`).
    pub fn from_spec(err: SpecError, prefix: &str) -> Self {
        let err = err.prefixed(prefix);
        ApiError::Unprocessable {
            code: err.code,
            message: err.message,
            path: err.path,
        }
    }

    /// Any internal failure: kept for the log, hidden from the client.
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(err.into())
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. }
            | ApiError::Unprocessable { code, .. }
            | ApiError::Conflict { code, .. } => code,
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::NotFound { .. } => "not_found",
            ApiError::Internal(_) => "internal",
        }
    }

    fn path(&self) -> Option<&str> {
        match self {
            ApiError::BadRequest { path, .. } => path.as_deref(),
            ApiError::Unprocessable { path, .. } => Some(path.as_str()),
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(err) = &self {
            tracing::error!(error = ?err, "internal error while handling a request");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.to_string(),
                path: self.path(),
            },
        };
        (self.status(), Json(body)).into_response()
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(err: crate::store::StoreError) -> Self {
        ApiError::internal(err)
    }
}
