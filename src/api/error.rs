//! The one error type of the HTTP edge, and its mapping to status codes.
//!
//! Every handler returns `Result<_, ApiError>`. Each error carries a stable,
//! machine-readable [`ErrorCode`]; clients match on it, never on the message.
//! Service and validation errors are mapped here, in one place. Internal
//! failures are logged with their cause chain and answered with a generic 500
//! so that nothing about the server's insides leaks into a response; a database
//! that is unreachable for the moment (a restart, a network cut) is a 503 with
//! `Retry-After` instead, since the same request will succeed once it is back.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::service::ServiceError;
use crate::validation::{FieldCode, FieldError};

/// Every code an error body can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// A field breaks a rule (422); the field codes of [`FieldCode`].
    Field(FieldCode),
    /// The body is not valid JSON (400).
    InvalidJson,
    /// The body could not be read (400).
    UnreadableBody,
    /// A query parameter is unknown or has a bad value (400).
    InvalidQuery,
    /// A header has a bad value (400).
    InvalidHeader,
    /// The body is not `application/json` (415).
    UnsupportedMediaType,
    /// The body is over the limit (413).
    PayloadTooLarge,
    /// No such route or resource (404).
    NotFound,
    /// Cancel of a finished job (409).
    JobFinished,
    /// Delete of a job that has not finished (409).
    JobNotFinished,
    /// An `Idempotency-Key` reused with a different request (409).
    IdempotencyKeyReused,
    /// Cancel of a finished sweep (409).
    SweepFinished,
    /// Delete of a sweep that has not finished (409).
    SweepNotFinished,
    /// No token, or one that is unknown, revoked or expired (401).
    Unauthorized,
    /// The token's role may not call this route (403).
    Forbidden,
    /// The token has made too many requests; `Retry-After` says when to retry (429).
    RateLimited,
    /// The tenant has as many queued jobs as it may (429).
    TenantQueueFull,
    /// A sweep with more jobs than the server's `--max-sweep-jobs` (422, with the field).
    SweepTooLarge,
    /// A state-changing request from a foreign web page (403).
    ForbiddenOrigin,
    /// A `Host` header this server does not answer to (403).
    ForbiddenHost,
    /// The request took longer than the server allows (408).
    RequestTimeout,
    /// The server cannot take work now (503).
    Unavailable,
    /// A bug or an I/O failure (500); details are in the server log.
    Internal,
}

impl ErrorCode {
    /// Every code, for documentation checks.
    pub fn all() -> Vec<ErrorCode> {
        let mut all: Vec<ErrorCode> = FieldCode::ALL.into_iter().map(ErrorCode::Field).collect();
        all.extend([
            ErrorCode::InvalidJson,
            ErrorCode::UnreadableBody,
            ErrorCode::InvalidQuery,
            ErrorCode::InvalidHeader,
            ErrorCode::UnsupportedMediaType,
            ErrorCode::PayloadTooLarge,
            ErrorCode::NotFound,
            ErrorCode::JobFinished,
            ErrorCode::JobNotFinished,
            ErrorCode::IdempotencyKeyReused,
            ErrorCode::SweepFinished,
            ErrorCode::SweepNotFinished,
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::RateLimited,
            ErrorCode::TenantQueueFull,
            ErrorCode::SweepTooLarge,
            ErrorCode::ForbiddenOrigin,
            ErrorCode::ForbiddenHost,
            ErrorCode::RequestTimeout,
            ErrorCode::Unavailable,
            ErrorCode::Internal,
        ]);
        all
    }

    /// The code as it appears in error bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Field(code) => code.as_str(),
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::UnreadableBody => "unreadable_body",
            ErrorCode::InvalidQuery => "invalid_query",
            ErrorCode::InvalidHeader => "invalid_header",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::NotFound => "not_found",
            ErrorCode::JobFinished => "job_finished",
            ErrorCode::JobNotFinished => "job_not_finished",
            ErrorCode::IdempotencyKeyReused => "idempotency_key_reused",
            ErrorCode::SweepFinished => "sweep_finished",
            ErrorCode::SweepNotFinished => "sweep_not_finished",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TenantQueueFull => "tenant_queue_full",
            ErrorCode::SweepTooLarge => "sweep_too_large",
            ErrorCode::ForbiddenOrigin => "forbidden_origin",
            ErrorCode::ForbiddenHost => "forbidden_host",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status of an error with this code.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::Field(_) | ErrorCode::SweepTooLarge => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidJson
            | ErrorCode::UnreadableBody
            | ErrorCode::InvalidQuery
            | ErrorCode::InvalidHeader => StatusCode::BAD_REQUEST,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::JobFinished
            | ErrorCode::JobNotFinished
            | ErrorCode::IdempotencyKeyReused
            | ErrorCode::SweepFinished
            | ErrorCode::SweepNotFinished => StatusCode::CONFLICT,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden | ErrorCode::ForbiddenOrigin | ErrorCode::ForbiddenHost => {
                StatusCode::FORBIDDEN
            }
            ErrorCode::RateLimited | ErrorCode::TenantQueueFull => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Lets tests compare a code with its word directly.
impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// An error answered to an HTTP client as `{"error": {"code", "message", "path"?}}`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A client error: its code, a sentence, and the field, parameter or header concerned.
    #[error("{message}")]
    Client {
        code: ErrorCode,
        message: String,
        path: Option<String>,
    },
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
    /// A client error without a field.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError::Client {
            code,
            message: message.into(),
            path: None,
        }
    }

    /// A client error about one field, parameter or header.
    pub fn at(code: ErrorCode, path: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Client {
            code,
            message: message.into(),
            path: Some(path.into()),
        }
    }

    /// A 400 for a query parameter.
    pub fn bad_query(parameter: &str, message: impl Into<String>) -> Self {
        ApiError::at(ErrorCode::InvalidQuery, parameter, message)
    }

    /// A 404 for `what` (`job 17`, `route`).
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        ApiError::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    /// Any internal failure: kept for the log, hidden from the client.
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(err.into())
    }

    /// A store failure: a 503 when it may pass ([`StoreError::is_transient`]: the database
    /// restarting, a cut connection, a full pool), else internal. The cause is logged
    /// either way.
    ///
    /// [`StoreError::is_transient`]: crate::store::StoreError::is_transient
    fn store(err: crate::store::StoreError) -> Self {
        if !err.is_transient() {
            return ApiError::internal(err);
        }
        tracing::warn!(error = %err, "the database is not reachable for the moment; answered 503");
        ApiError::new(
            ErrorCode::Unavailable,
            "the database is not reachable for the moment; retry shortly",
        )
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        self.code().status()
    }

    /// The stable machine-readable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Client { code, .. } => *code,
            ApiError::Internal(_) => ErrorCode::Internal,
        }
    }

    fn path(&self) -> Option<&str> {
        match self {
            ApiError::Client { path, .. } => path.as_deref(),
            ApiError::Internal(_) => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(err) = &self {
            // The cause chain on one line: no backtrace in the log for an I/O error.
            tracing::error!(error = %format!("{err:#}"), "internal error while handling a request");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().as_str(),
                message: self.to_string(),
                path: self.path(),
            },
        };
        let mut response = (self.status(), Json(body)).into_response();
        if self.code() == ErrorCode::Unavailable {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<FieldError> for ApiError {
    fn from(err: FieldError) -> Self {
        ApiError::at(ErrorCode::Field(err.code), err.path, err.message)
    }
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        let code = match err {
            ServiceError::Invalid(field) => return field.into(),
            ServiceError::Store(err) => return ApiError::store(err),
            err @ ServiceError::Artifacts { .. } => return ApiError::internal(err),
            err @ ServiceError::ArtifactsKept { .. } => {
                // Say what happened (nothing was deleted), keep the path for the log.
                let message = err.to_string();
                tracing::error!(error = %format!("{:#}", anyhow::Error::from(err)), "a delete was refused");
                return ApiError::new(ErrorCode::Internal, message);
            }
            ServiceError::NotFound(_)
            | ServiceError::NoWeights(_)
            | ServiceError::SweepNotFound(_)
            | ServiceError::TokenNotFound(_) => ErrorCode::NotFound,
            ServiceError::TenantQueueFull { .. } => ErrorCode::TenantQueueFull,
            ServiceError::SweepTooLarge { path, .. } => {
                return ApiError::at(ErrorCode::SweepTooLarge, path, err.to_string())
            }
            ServiceError::InvalidTenant(ref err) => {
                return ApiError::at(
                    ErrorCode::Field(crate::validation::FieldCode::InvalidValue),
                    "tenant",
                    err.to_string(),
                )
            }
            ServiceError::IdempotencyKeyReused { .. } | ServiceError::SweepKeyReused { .. } => {
                ErrorCode::IdempotencyKeyReused
            }
            ServiceError::AlreadyFinished { .. } => ErrorCode::JobFinished,
            ServiceError::NotFinished { .. } => ErrorCode::JobNotFinished,
            ServiceError::SweepFinished { .. } => ErrorCode::SweepFinished,
            ServiceError::SweepNotFinished { .. } => ErrorCode::SweepNotFinished,
        };
        ApiError::new(code, err.to_string())
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(err: crate::store::StoreError) -> Self {
        ApiError::store(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    #[test]
    fn a_database_that_may_come_back_is_a_503_with_retry_after_and_a_bug_a_500() {
        let transient: ApiError =
            ServiceError::Store(StoreError::Sqlx(sqlx::Error::PoolTimedOut)).into();
        let response = transient.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");

        let direct: ApiError = StoreError::Sqlx(sqlx::Error::PoolTimedOut).into();
        assert_eq!(direct.code(), ErrorCode::Unavailable);

        let bug: ApiError = StoreError::Sqlx(sqlx::Error::RowNotFound).into();
        let response = bug.into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(response.headers().get(header::RETRY_AFTER).is_none());
    }
}
