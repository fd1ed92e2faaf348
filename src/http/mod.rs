//! The HTTP layer: each feature module declares its routes (`route::Route`,
//! one line each); this module puts them in one table, dispatches every
//! request through it, logs and counts every request, and maps every failure
//! to the contract's `{"detail", "error_code"}` body (`error`).

mod audit;
pub mod auth;
pub mod error;
mod health;
mod listings;
mod metrics;
mod roles;
mod route;
mod seats;
pub mod server;
mod tenants;

use std::convert::Infallible;
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use warp::http::{HeaderMap, Method};
use warp::path::FullPath;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use crate::engine::{Engine, Error};
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

/// Every route of the service, as one filter that never rejects.
pub fn routes(ctx: Ctx) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone + Send + Sync + 'static {
    let ctx = Arc::new(ctx);
    let query = warp::query::raw().or_else(|_| async { Ok::<_, Infallible>((String::new(),)) });
    warp::method()
        .and(warp::path::full())
        .and(query)
        .and(warp::header::headers_cloned())
        .and(warp::body::stream())
        .then(
            move |method: Method, path: FullPath, query: String, headers: HeaderMap, body| {
                let ctx = Arc::clone(&ctx);
                let parts = Parts::new(query, headers, body);
                async move { dispatch(&ctx, method, path.as_str(), parts).await }
            },
        )
        // Only taking a body twice would reject, and nothing does.
        .recover(|rejection: Rejection| async move {
            let unexpected = Error::Internal(anyhow::anyhow!("unhandled rejection: {rejection:?}"));
            Ok::<_, Infallible>(error::reply(&unexpected.into()))
        })
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
