//! The HTTP layer: each feature module declares its routes (`route::Route`,
//! one line each); this module puts them in one table, dispatches every
//! request through it, logs and counts every request, and maps every failure
//! to the contract's `{"detail", "error_code"}` body (`error`).

mod audit;
pub mod auth;
mod bulk;
pub mod error;
mod health;
mod listings;
mod metrics;
mod roles;
mod route;
mod seats;
pub mod server;
mod tenants;

use std::sync::{Arc, LazyLock};
use std::time::Instant;

use warp::http::Method;
use warp::reply::Response;

use crate::engine::Engine;
use auth::Authenticator;
use error::ApiError;
pub use route::parse_json;
use route::{Lookup, Parts, Table};

/// What every route needs.
#[derive(Clone)]
pub struct Ctx {
    pub engine: Arc<Engine>,
    pub auth: Arc<Authenticator>,
    pub body_limit: u64,
}

/// Every route, hot ones first: a lookup walks the table in order, and seat
/// allocations and summary polls are most of the traffic on the first
/// morning of term. The listings go before them all the same: their literal
/// `/api/v1/seats/export` must be tried before `/api/v1/seats/{id}`.
static TABLE: LazyLock<Table> = LazyLock::new(|| {
    Table::new(
        [
            listings::routes(),
            seats::routes(),
            bulk::routes(),
            health::routes(),
            metrics::routes(),
            tenants::routes(),
            roles::routes(),
            audit::routes(),
        ]
        .into_iter()
        .flatten()
        .collect(),
    )
});

/// Every route's template, in table order: the metrics labels.
pub fn route_labels() -> Vec<&'static str> {
    TABLE.routes().iter().map(|r| r.path).collect()
}

/// Every route of the service, as the one handler the accept loop calls
/// for each request (straight under hyper: no filter chain to walk).
#[derive(Clone)]
pub struct Router(Arc<Ctx>);

impl Router {
    pub fn new(ctx: Ctx) -> Router {
        Router(Arc::new(ctx))
    }

    pub async fn handle(&self, request: hyper::Request<hyper::Body>) -> Response {
        let (head, body) = request.into_parts();
        let parts = Parts {
            query: head.uri.query().map(str::to_owned),
            headers: head.headers,
            body,
        };
        dispatch(&self.0, head.method, head.uri.path(), parts).await
    }
}

/// Finds the route, runs it, waits until its answer is durable, and logs
/// and counts the request under its route's template.
async fn dispatch(ctx: &Ctx, method: Method, path: &str, parts: Parts) -> Response {
    let started = Instant::now();
    let (label, answer) = match TABLE.lookup(&method, path) {
        Lookup::Found(i) => (Some(i), TABLE.run(i, ctx, path, parts).await),
        Lookup::WrongMethod(i) => (Some(i), Err(ApiError::MethodNotAllowed)),
        Lookup::NotFound => (None, Err(ApiError::RouteNotFound)),
    };
    let response = match answer {
        Ok(durable) => match durable.wait(ctx.engine.store()).await {
            Ok(response) => response,
            Err(e) => error::reply(&e.into()),
        },
        Err(e) => error::reply(&e),
    };
    let status = response.status().as_u16();
    ctx.engine
        .metrics()
        .request(label, method.as_str(), status, started.elapsed());
    tracing::info!(
        target: "tenant_service::request",
        method = %method,
        path,
        status,
        latency_us = started.elapsed().as_micros() as u64,
    );
    response
}
