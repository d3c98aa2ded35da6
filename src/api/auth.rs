//! Who may call which route: bearer tokens, roles, tenants, rate limits and the audit log.
//!
//! [`ACCESS`] is the one list of every route's minimum role; docs/AUTH.md's table and the
//! test that tries every route with every role are both generated from it. [`authorize`]
//! is the one middleware that applies it: it authenticates the bearer token (401), checks
//! the role (403), rate-limits per token (429), checks that the job or sweep a route names
//! is the caller's tenant's (404 otherwise, like a missing one), hands the handler a
//! [`Caller`], and writes an audit line (target `lrlab::audit`) for every write.

use std::num::NonZeroU32;
use std::time::Duration;

use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::{ApiError, ErrorCode};
use super::AppState;
use crate::auth::{plausible_token, Caller, Role};
use crate::job::JobId;
use crate::sweep::SweepId;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token: probes, the dashboard's static files.
    Open,
    /// Open, unless the server has a `--metrics-token`: then that token alone (scrapers
    /// are not tenants, so no API token opens it, and that token opens nothing else).
    Metrics,
    /// A token with at least this role.
    Least(Role),
}

/// What a route names, whose tenant must be the caller's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Names {
    Nothing,
    /// The job in the path's `{id}`.
    Job,
    /// The sweep in the path's `{id}`.
    Sweep,
    /// The jobs in the `ids` query parameter.
    JobIds,
}

/// One route's rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteAccess {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    pub names: Names,
}

const fn rule(
    method: &'static str,
    path: &'static str,
    access: Access,
    names: Names,
) -> RouteAccess {
    RouteAccess {
        method,
        path,
        access,
        names,
    }
}

const OPEN: Access = Access::Open;
const VIEWER: Access = Access::Least(Role::Viewer);
const MEMBER: Access = Access::Least(Role::Member);
const ADMIN: Access = Access::Least(Role::Admin);

/// Every API route's rule. The dashboard's pages and assets are open (they are the same
/// static files for everyone; the data they show comes from the routes below).
pub const ACCESS: &[RouteAccess] = &[
    rule("GET", "/healthz", OPEN, Names::Nothing),
    rule("GET", "/readyz", OPEN, Names::Nothing),
    rule("GET", "/metrics", Access::Metrics, Names::Nothing),
    rule("GET", "/v1/schedules/kinds", VIEWER, Names::Nothing),
    rule("POST", "/v1/schedules/preview", VIEWER, Names::Nothing),
    rule("POST", "/v1/jobs", MEMBER, Names::Nothing),
    rule("GET", "/v1/jobs", VIEWER, Names::Nothing),
    rule("GET", "/v1/jobs/{id}", VIEWER, Names::Job),
    rule("DELETE", "/v1/jobs/{id}", MEMBER, Names::Job),
    rule("POST", "/v1/jobs/{id}/cancel", MEMBER, Names::Job),
    rule("GET", "/v1/jobs/{id}/metrics", VIEWER, Names::Job),
    rule("GET", "/v1/jobs/{id}/steps", VIEWER, Names::Job),
    rule("GET", "/v1/jobs/{id}/weights", VIEWER, Names::Job),
    rule("GET", "/v1/jobs/{id}/events", VIEWER, Names::Job),
    rule("GET", "/v1/jobs/{id}/chart.svg", VIEWER, Names::Job),
    rule("GET", "/v1/compare/steps", VIEWER, Names::JobIds),
    rule("GET", "/v1/compare.svg", VIEWER, Names::JobIds),
    rule("POST", "/v1/sweeps", MEMBER, Names::Nothing),
    rule("GET", "/v1/sweeps", VIEWER, Names::Nothing),
    rule("GET", "/v1/sweeps/presets", VIEWER, Names::Nothing),
    rule("POST", "/v1/sweeps/presets/{name}", MEMBER, Names::Nothing),
    rule("GET", "/v1/sweeps/{id}", VIEWER, Names::Sweep),
    rule("DELETE", "/v1/sweeps/{id}", MEMBER, Names::Sweep),
    rule("POST", "/v1/sweeps/{id}/cancel", MEMBER, Names::Sweep),
    rule("GET", "/v1/sweeps/{id}/series", VIEWER, Names::Sweep),
    rule("GET", "/v1/sweeps/{id}/decisions", VIEWER, Names::Sweep),
    rule("GET", "/v1/sweeps/{id}/chart.svg", VIEWER, Names::Sweep),
    // Every tenant's jobs run on the same workers: the list names their job ids.
    rule("GET", "/v1/workers", ADMIN, Names::Nothing),
    rule("POST", "/v1/tokens", ADMIN, Names::Nothing),
    rule("GET", "/v1/tokens", ADMIN, Names::Nothing),
    rule("DELETE", "/v1/tokens/{id}", ADMIN, Names::Nothing),
];

/// Every route's rule: [`ACCESS`] and the dashboard's open files.
pub fn access_table() -> Vec<RouteAccess> {
    let mut table = ACCESS.to_vec();
    table.extend(
        super::dashboard::PAGES
            .iter()
            .map(|page| rule("GET", page, OPEN, Names::Nothing)),
    );
    table.push(rule("GET", "/assets/{*path}", OPEN, Names::Nothing));
    table
}

/// The rule of a matched route. A route missing from the table needs an admin: a new
/// route is closed until it is listed (a test keeps the table and the router equal).
fn rule_of(method: &Method, path: &str) -> RouteAccess {
    access_table()
        .into_iter()
        .find(|rule| rule.method == method.as_str() && rule.path == path)
        .unwrap_or(rule("", "", ADMIN, Names::Nothing))
}

/// The markdown table of docs/AUTH.md.
pub fn access_markdown() -> String {
    let mut out = String::from("| method | route | who may call it |\n|---|---|---|\n");
    for rule in ACCESS {
        let who = match rule.access {
            Access::Open => "anyone, no token".to_string(),
            Access::Metrics => {
                "anyone, no token; with `--metrics-token`, that token only".to_string()
            }
            Access::Least(Role::Viewer) => "viewer, member, admin".to_string(),
            Access::Least(Role::Member) => "member, admin".to_string(),
            Access::Least(Role::Admin) => "admin".to_string(),
        };
        let scope = match rule.names {
            Names::Nothing => "",
            Names::Job | Names::JobIds => " (own tenant's jobs; admin: all)",
            Names::Sweep => " (own tenant's sweeps; admin: all)",
        };
        out.push_str(&format!(
            "| {} | `{}` | {who}{scope} |\n",
            rule.method, rule.path
        ));
    }
    out.push_str("| GET | dashboard pages and `/assets/{*path}` | anyone, no token |\n");
    out
}

/// The `--metrics-token` that `/metrics` asks for, kept as its SHA-256: the policy holds
/// no secret, and comparing two digests of fixed length in constant time makes the
/// answer's timing independent of the presented token's length and content.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MetricsToken([u8; 32]);

impl MetricsToken {
    pub fn new(token: &str) -> MetricsToken {
        MetricsToken(Sha256::digest(token.as_bytes()).into())
    }

    /// Whether `presented` is the token (constant-time, `subtle`).
    pub fn matches(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        digest.ct_eq(&self.0).into()
    }
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(..)")
    }
}

/// How requests are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthPolicy {
    /// Bearer tokens are required (else every caller is the default tenant's admin).
    pub tokens: bool,
    /// Authentication is off on a network bind, by `--insecure-no-auth`: said at start
    /// and on /healthz.
    pub insecure: bool,
    /// Requests per minute per token, with bursts of up to `burst`.
    pub per_minute: NonZeroU32,
    pub burst: NonZeroU32,
    /// The token `/metrics` needs (`None`: it is open).
    pub metrics_token: Option<MetricsToken>,
}

impl Default for AuthPolicy {
    /// No authentication (a loopback bind), a generous per-token rate.
    fn default() -> Self {
        AuthPolicy {
            tokens: false,
            insecure: false,
            per_minute: NonZeroU32::new(600).unwrap_or(NonZeroU32::MIN),
            burst: NonZeroU32::new(100).unwrap_or(NonZeroU32::MIN),
            metrics_token: None,
        }
    }
}

impl AuthPolicy {
    /// The mode word /healthz shows.
    pub fn mode(&self) -> &'static str {
        match (self.tokens, self.insecure) {
            (true, _) => "tokens",
            (false, true) => "insecure-no-auth",
            (false, false) => "none",
        }
    }
}

/// Per-token request budgets.
pub(super) struct Limiter(DefaultKeyedRateLimiter<i64>);

impl Limiter {
    pub(super) fn new(policy: &AuthPolicy) -> Limiter {
        let quota = Quota::per_minute(policy.per_minute).allow_burst(policy.burst);
        Limiter(RateLimiter::keyed(quota))
    }

    /// `Err(wait)` when the token has spent its budget.
    fn check(&self, token: i64) -> Result<(), Duration> {
        self.0
            .check_key(&token)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// A 401 that says how to authenticate.
fn unauthorized(message: &str) -> Response {
    let mut response = ApiError::new(ErrorCode::Unauthorized, message).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"lrlab\""),
    );
    response
}

/// The bearer token of a request, if it carries one.
fn bearer(request: &Request) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The middleware of every matched route (see the module's documentation).
pub(super) async fn authorize(
    State(state): State<AppState>,
    matched: Option<MatchedPath>,
    params: Result<RawPathParams, RawPathParamsRejection>,
    mut request: Request,
    next: Next,
) -> Response {
    let params = params.ok();
    let path = matched.as_ref().map_or("", MatchedPath::as_str);
    let rule = rule_of(request.method(), path);
    match rule.access {
        Access::Open => return next.run(request).await,
        Access::Metrics => return metrics_gate(state.auth(), request, next).await,
        Access::Least(_) => {}
    }
    // Owned copies: a request body is not `Sync`, so no reference to the request may be
    // held across the lookups below.
    let token = bearer(&request).map(str::to_string);
    let query = request.uri().query().map(str::to_string);
    let caller = match authenticate(&state, token.as_deref(), rule).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    if let Err(err) = check_names(&state, &caller, rule, params.as_ref(), query.as_deref()).await {
        return err.into_response();
    }
    let write = !matches!(*request.method(), Method::GET | Method::HEAD);
    let method = request.method().clone();
    let named = params
        .as_ref()
        .and_then(|p| p.iter().find(|(name, _)| *name == "id"))
        .map(|(_, value)| value.to_string());
    request.extensions_mut().insert(caller.clone());
    let response = next.run(request).await;
    if write && response.status().is_success() {
        let created = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|location| location.rsplit('/').next())
            .map(str::to_string);
        tracing::info!(
            target: "lrlab::audit",
            tenant = %caller.tenant,
            token = caller.token.map_or_else(|| "-".to_string(), |id| id.to_string()),
            action = %format!("{method} {path}"),
            object = named.or(created).as_deref().unwrap_or("-"),
            status = response.status().as_u16(),
            "write"
        );
    }
    response
}

/// `/metrics`: open without a `--metrics-token`; with one, a 401 unless the request
/// carries it.
pub(super) async fn metrics_gate(policy: &AuthPolicy, request: Request, next: Next) -> Response {
    if let Some(expected) = policy.metrics_token {
        if !bearer(&request).is_some_and(|token| expected.matches(token)) {
            return unauthorized(
                "/metrics needs the server's metrics token: send `Authorization: Bearer <--metrics-token>`",
            );
        }
    }
    next.run(request).await
}

/// [`metrics_gate`] as the middleware of a worker's metrics listener.
pub(super) async fn gate_metrics(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    metrics_gate(state.auth(), request, next).await
}

/// The caller of a request under `rule`: 401 without a live token, 403 with too small a
/// role, 429 past the token's rate.
async fn authenticate(
    state: &AppState,
    token: Option<&str>,
    rule: RouteAccess,
) -> Result<Caller, Response> {
    let policy = state.auth();
    let caller = if policy.tokens {
        let Some(token) = token.filter(|token| plausible_token(token)) else {
            return Err(unauthorized(
                "this route needs a token: send `Authorization: Bearer <token>` (create one with `lrlab token create`)",
            ));
        };
        let record = state
            .service()
            .authenticate(token)
            .await
            .map_err(|err| ApiError::from(err).into_response())?;
        let Some(record) = record else {
            return Err(unauthorized("the token is unknown, revoked or expired"));
        };
        if let Err(wait) = state.limiter().check(record.id) {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut response = ApiError::new(
                ErrorCode::RateLimited,
                format!("too many requests with this token; retry in {secs} s"),
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
            return Err(response);
        }
        Caller {
            token: Some(record.id),
            tenant: record.tenant,
            role: record.role,
        }
    } else {
        Caller::unauthenticated()
    };
    if let Access::Least(least) = rule.access {
        if caller.role < least {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                format!(
                    "this route needs the {least} role; the token is a {}",
                    caller.role
                ),
            )
            .into_response());
        }
    }
    Ok(caller)
}

/// The job or sweep a route names must be the caller's tenant's: else 404, as if it did
/// not exist. Ids that do not parse are left to the handler (its own 404 or 400).
async fn check_names(
    state: &AppState,
    caller: &Caller,
    rule: RouteAccess,
    params: Option<&RawPathParams>,
    query: Option<&str>,
) -> Result<(), ApiError> {
    if caller.scope().is_none() {
        return Ok(());
    }
    let id = || {
        params
            .and_then(|p| p.iter().find(|(name, _)| *name == "id"))
            .map(|(_, value)| value.to_string())
    };
    match rule.names {
        Names::Nothing => Ok(()),
        Names::Job => match id().and_then(|id| id.parse::<JobId>().ok()) {
            Some(job) => Ok(state.service().authorize_job(caller, job).await?),
            None => Ok(()),
        },
        Names::Sweep => match id().and_then(|id| id.parse::<SweepId>().ok()) {
            Some(sweep) => Ok(state.service().authorize_sweep(caller, sweep).await?),
            None => Ok(()),
        },
        Names::JobIds => {
            let Ok(pairs) =
                serde_urlencoded::from_str::<Vec<(String, String)>>(query.unwrap_or(""))
            else {
                return Ok(());
            };
            let words = pairs
                .iter()
                .filter(|(key, _)| key == "ids")
                .flat_map(|(_, value)| value.split(','))
                .map(str::trim);
            for word in words {
                if let Ok(job) = word.parse::<JobId>() {
                    state
                        .service()
                        .authorize_job(caller, job)
                        .await
                        .map_err(super::compare::unknown_job)?;
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_has_exactly_one_rule() {
        let mut ruled: Vec<(&str, &str)> =
            access_table().iter().map(|r| (r.method, r.path)).collect();
        ruled.sort();
        let before = ruled.len();
        ruled.dedup();
        assert_eq!(before, ruled.len(), "a route is listed twice");
        let routes: Vec<(&str, &str)> = super::super::routes()
            .iter()
            .map(|r| (r.method, r.path))
            .collect();
        assert_eq!(ruled, routes);
    }

    #[test]
    fn writes_need_a_member_and_tokens_an_admin() {
        for rule in ACCESS {
            if rule.path.starts_with("/v1/tokens") {
                assert_eq!(rule.access, ADMIN, "{rule:?}");
            } else if rule.method != "GET" && rule.path != "/v1/schedules/preview" {
                assert_eq!(rule.access, MEMBER, "{rule:?}");
            }
        }
        assert_eq!(rule_of(&Method::GET, "/v1/unlisted").access, ADMIN);
    }
}
