//! A router that remembers what it serves.
//!
//! axum's `Router` cannot list its routes, yet openapi.yaml must describe exactly the
//! routes lrlab answers — no more, no fewer. So every resource declares its routes
//! through [`Routes`], which adds each one to the axum router *and* to a table in the
//! same call; [`super::routes`] returns that table, and a test compares it with the
//! document in both directions.

use axum::handler::Handler;
use axum::routing::{self, MethodRouter};
use axum::Router;

/// One route: an HTTP method and a path template as axum writes it (`/v1/jobs/{id}`,
/// `/assets/{*path}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
}

impl Route {
    /// The path as OpenAPI writes it: a catch-all `{*path}` is a plain `{path}` there.
    pub fn openapi_path(&self) -> String {
        self.path.replace("{*", "{")
    }
}

/// An axum router with the table of its routes.
pub struct Routes<S> {
    router: Router<S>,
    table: Vec<Route>,
}

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Routes::new()
    }
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub fn new() -> Self {
        Routes {
            router: Router::new(),
            table: Vec::new(),
        }
    }

    pub fn get<H, T>(self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.add("GET", path, routing::get(handler))
    }

    pub fn post<H, T>(self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.add("POST", path, routing::post(handler))
    }

    pub fn delete<H, T>(self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.add("DELETE", path, routing::delete(handler))
    }

    fn add(mut self, method: &'static str, path: &'static str, route: MethodRouter<S>) -> Self {
        self.router = self.router.route(path, route);
        self.table.push(Route { method, path });
        self
    }

    /// Adds another resource's routes.
    pub fn merge(mut self, other: Routes<S>) -> Self {
        self.router = self.router.merge(other.router);
        self.table.extend(other.table);
        self
    }

    /// Wraps the routes added so far, e.g. in a layer that only they need.
    pub fn wrap(mut self, wrap: impl FnOnce(Router<S>) -> Router<S>) -> Self {
        self.router = wrap(self.router);
        self
    }

    /// The axum router.
    pub fn into_router(self) -> Router<S> {
        self.router
    }

    /// The table of routes, sorted.
    pub fn table(&self) -> Vec<Route> {
        let mut table = self.table.clone();
        table.sort();
        table
    }
}
