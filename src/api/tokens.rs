//! `/v1/tokens`: admins create, list and revoke API tokens. A new token is in the
//! creation's answer only; afterwards only its id, tenant, role and dates are shown.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ErrorCode};
use super::json::AppJson;
use super::routes::Routes;
use super::AppState;
use crate::auth::{parse_duration, Role};
use crate::store::TokenRecord;
use crate::validation::FieldCode;

/// Routes of this resource.
pub fn routes() -> Routes<AppState> {
    Routes::new()
        .post("/v1/tokens", create)
        .get("/v1/tokens", list)
        .delete("/v1/tokens/{id}", revoke)
}

/// `POST /v1/tokens`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTokenRequest {
    tenant: String,
    role: String,
    /// `90m`, `12h`, `30d`; absent: the token does not expire.
    #[serde(default)]
    expires_in: Option<String>,
}

/// A token as listed: never its secret nor its hash.
#[derive(Debug, Serialize)]
struct TokenView {
    id: i64,
    tenant: String,
    role: &'static str,
    created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revoked_at: Option<DateTime<Utc>>,
}

impl From<TokenRecord> for TokenView {
    fn from(record: TokenRecord) -> Self {
        TokenView {
            id: record.id,
            tenant: record.tenant,
            role: record.role.as_str(),
            created_at: record.created_at,
            expires_at: record.expires_at,
            revoked_at: record.revoked_at,
        }
    }
}

#[derive(Debug, Serialize)]
struct CreatedToken {
    #[serde(flatten)]
    view: TokenView,
    /// The token itself: shown this once, stored only as a hash.
    token: String,
}

async fn create(
    State(state): State<AppState>,
    AppJson(request): AppJson<NewTokenRequest>,
) -> Result<Response, ApiError> {
    let role = request.role.parse::<Role>().map_err(|err| {
        ApiError::at(
            ErrorCode::Field(FieldCode::UnknownValue),
            "role",
            err.to_string(),
        )
    })?;
    let expires_at = match request.expires_in.as_deref() {
        None => None,
        Some(text) => {
            let duration = parse_duration(text).map_err(|err| {
                ApiError::at(
                    ErrorCode::Field(FieldCode::InvalidValue),
                    "expires_in",
                    err.to_string(),
                )
            })?;
            chrono::Duration::from_std(duration)
                .ok()
                .map(|duration| Utc::now() + duration)
        }
    };
    let (token, record) = state
        .service()
        .create_token(&request.tenant, role, expires_at)
        .await?;
    let location = format!("/v1/tokens/{}", record.id);
    let body = CreatedToken {
        view: record.into(),
        token,
    };
    Ok((
        StatusCode::CREATED,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        Json(body),
    )
        .into_response())
}

#[derive(Debug, Serialize)]
struct TokenList {
    tokens: Vec<TokenView>,
}

async fn list(State(state): State<AppState>) -> Result<Json<TokenList>, ApiError> {
    let tokens = state.service().tokens().await?;
    Ok(Json(TokenList {
        tokens: tokens.into_iter().map(TokenView::from).collect(),
    }))
}

async fn revoke(
    State(state): State<AppState>,
    path: Result<Path<i64>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Ok(Path(id)) = path else {
        return Err(ApiError::not_found("token"));
    };
    state.service().revoke_token(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
