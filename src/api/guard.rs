//! Which requests a server answers: `Host` names (DNS rebinding) and foreign `Origin`s
//! (cross-site requests), checked before any route runs.
//!
//! A web page on another site can make the user's browser send "simple" requests
//! (`POST` with `text/plain`, no preflight) to `localhost:8080`, e.g. cancelling
//! jobs; and a DNS name that its owner re-points at 127.0.0.1 reaches every route
//! with the page's own origin. So: a state-changing request whose `Origin` is not
//! this server is refused, and on a loopback bind only loopback host names are
//! answered (plus any `--allowed-hosts`).

use std::net::SocketAddr;

use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, ErrorCode};
use super::AppState;

/// Which `Host` header values the server answers to.
#[derive(Debug, Clone, Default)]
pub struct HostPolicy {
    /// Accept only loopback names (and `extra`): the server listens on loopback.
    loopback_only: bool,
    /// Host names (with or without a port) accepted in addition.
    extra: Vec<String>,
}

impl HostPolicy {
    /// The policy for a server bound to `bind`: loopback names only on a loopback address,
    /// anything elsewhere; `allowed` (from `--allowed-hosts`) restricts or extends it.
    pub fn for_bind(bind: SocketAddr, allowed: Option<Vec<String>>) -> HostPolicy {
        let extra: Vec<String> = allowed
            .unwrap_or_default()
            .into_iter()
            .map(|host| host.trim().to_ascii_lowercase())
            .filter(|host| !host.is_empty())
            .collect();
        HostPolicy {
            loopback_only: bind.ip().is_loopback() || !extra.is_empty(),
            extra,
        }
    }

    /// Any host accepted (tests that drive the router directly).
    pub fn any() -> HostPolicy {
        HostPolicy::default()
    }

    /// Whether a request with this `Host` value is answered.
    pub fn allows(&self, host: &str) -> bool {
        if !self.loopback_only {
            return true;
        }
        let host = host.trim().to_ascii_lowercase();
        let name = host_name(&host);
        is_loopback_name(name)
            || self
                .extra
                .iter()
                .any(|allowed| *allowed == host || allowed == name)
    }
}

/// `host[:port]` → `host`, keeping IPv6 brackets (`[::1]:8080` → `[::1]`).
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

fn is_loopback_name(name: &str) -> bool {
    matches!(name, "localhost" | "127.0.0.1" | "[::1]") || name.ends_with(".localhost")
}

/// The middleware: 403 for a foreign `Host` or a state-changing request from a foreign
/// `Origin`.
pub async fn check(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match verdict(state.hosts(), &request) {
        Ok(()) => next.run(request).await,
        Err(err) => err.into_response(),
    }
}

fn verdict(hosts: &HostPolicy, request: &Request) -> Result<(), ApiError> {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
        .unwrap_or("");
    if !hosts.allows(host) {
        return Err(ApiError::new(
            ErrorCode::ForbiddenHost,
            format!(
                "this server does not answer to host `{host}`; it listens on a loopback address, so only localhost names are accepted unless --allowed-hosts lists others"
            ),
        ));
    }
    let changes_state = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if changes_state {
        if let Some(origin) = request.headers().get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            if !same_origin(origin, host) {
                return Err(ApiError::new(
                    ErrorCode::ForbiddenOrigin,
                    format!(
                        "requests that change state are refused from other web sites (Origin `{origin}` is not this server, `{host}`)"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Whether an `Origin` (`http://localhost:8080`) names the server the request reached.
fn same_origin(origin: &str, host: &str) -> bool {
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    !authority.is_empty() && authority.eq_ignore_ascii_case(host.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> HostPolicy {
        HostPolicy::for_bind("127.0.0.1:8080".parse().unwrap(), None)
    }

    #[test]
    fn a_loopback_bind_answers_loopback_names_only() {
        let policy = loopback();
        for host in [
            "localhost:8080",
            "127.0.0.1:8080",
            "[::1]:8080",
            "LOCALHOST",
            "app.localhost:8080",
        ] {
            assert!(policy.allows(host), "{host}");
        }
        for host in [
            "evil.example:8080",
            "127.0.0.1.evil.example",
            "",
            "10.0.0.1:8080",
        ] {
            assert!(!policy.allows(host), "{host}");
        }
    }

    #[test]
    fn allowed_hosts_extend_and_restrict() {
        let policy = HostPolicy::for_bind(
            "0.0.0.0:8080".parse().unwrap(),
            Some(vec!["lab.example.org".into()]),
        );
        assert!(policy.allows("lab.example.org:8080"));
        assert!(policy.allows("localhost:8080"));
        assert!(!policy.allows("other.example.org"));
        let open = HostPolicy::for_bind("0.0.0.0:8080".parse().unwrap(), None);
        assert!(open.allows("anything.example"));
    }

    #[test]
    fn origins_must_name_the_server_itself() {
        assert!(same_origin("http://localhost:8080", "localhost:8080"));
        assert!(!same_origin("http://evil.example", "localhost:8080"));
        assert!(!same_origin("null", "localhost:8080"));
        assert!(!same_origin("http://localhost:9090", "localhost:8080"));
    }
}
