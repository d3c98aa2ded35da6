//! The HTTP layer: axum routes over the schedule engine and the job service.
//!
//! Each resource owns its routes (`health`, `schedules`, `jobs`, …); [`router`]
//! merges them and wraps them in the cross-cutting layers (host and origin
//! checks, request ids, tracing spans, timeout, compression, body limit) in one
//! place. Handlers are thin: extract, call one service method, shape the answer.

mod auth;
mod charts;
mod compare;
mod dashboard;
mod encode;
mod error;
mod events;
mod guard;
mod health;
mod idempotency;
mod job_results;
mod job_view;
mod jobs;
mod json;
mod observability;
mod query;
mod request_id;
mod routes;
mod schedules;
mod sweeps;
mod tokens;
mod workers;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request, StatusCode};
use axum::Router;
use tower::ServiceBuilder;
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use routes::Routes;

pub use auth::{
    access_markdown, access_table, Access, AuthPolicy, MetricsToken, Names, RouteAccess,
};
pub use error::{ApiError, ErrorCode};
pub use guard::HostPolicy;
pub use json::BODY_LIMIT;
pub use routes::Route;
pub use schedules::MAX_PREVIEW_STEPS;

use crate::service::Service;

/// How long a request may take before the server answers 408. Previews of a
/// million steps take well under a second; SSE streams are not affected
/// because their headers are sent at once.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Shared state of every handler: cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    service: Service,
    hosts: HostPolicy,
    auth: AuthPolicy,
    limiter: auth::Limiter,
}

impl AppState {
    /// State over a running job service, answering the hosts `hosts` allows, without
    /// authentication.
    pub fn new(service: Service, hosts: HostPolicy) -> Self {
        AppState::with_auth(service, hosts, AuthPolicy::default())
    }

    /// State that authenticates requests as `auth` says.
    pub fn with_auth(service: Service, hosts: HostPolicy, auth: AuthPolicy) -> Self {
        AppState(Arc::new(Inner {
            service,
            hosts,
            limiter: auth::Limiter::new(&auth),
            auth,
        }))
    }

    /// How requests are authenticated.
    pub fn auth(&self) -> &AuthPolicy {
        &self.0.auth
    }

    fn limiter(&self) -> &auth::Limiter {
        &self.0.limiter
    }

    /// The job service (queue, workers, events).
    pub fn service(&self) -> &Service {
        &self.0.service
    }

    /// Which `Host` values are answered.
    pub fn hosts(&self) -> &HostPolicy {
        &self.0.hosts
    }
}

/// Every route of [`router`], sorted: what openapi.yaml must describe, exactly.
pub fn routes() -> Vec<Route> {
    all_routes().table()
}

/// Each resource's routes, merged; [`router`] and [`routes`] are both built from it.
fn all_routes() -> Routes<AppState> {
    Routes::new()
        .merge(health::routes())
        .merge(observability::routes())
        .merge(schedules::routes())
        .merge(jobs::routes())
        .merge(job_results::routes())
        .merge(events::routes())
        .merge(compare::routes())
        .merge(charts::routes())
        .merge(sweeps::routes())
        .merge(workers::routes())
        .merge(tokens::routes())
        .merge(dashboard::routes())
}

/// The whole application: every route with its layers. Tests drive this directly.
pub fn router(state: AppState) -> Router {
    crate::observability::install();
    let request_id = HeaderName::from_static(request_id::HEADER);
    let layers = ServiceBuilder::new()
        .map_request(request_id::drop_unsafe::<axum::body::Body>)
        .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", method = %request.method(), uri = %request.uri(), request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(CompressionLayer::new())
        .layer(DefaultBodyLimit::max(BODY_LIMIT));
    all_routes()
        .into_router()
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authorize,
        ))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::check,
        ))
        .with_state(state)
        .layer(layers)
        .layer(axum::middleware::from_fn(observability::track))
}

/// `GET /metrics` alone, for `lrlab worker --metrics-bind`: a worker has no API, but
/// Prometheus scrapes it like any server (with the same host checks).
pub fn metrics_router(state: AppState) -> Router {
    crate::observability::install();
    observability::routes()
        .into_router()
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::gate_metrics,
        ))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::check,
        ))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("route")
}
