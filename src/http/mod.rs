//! The HTTP layer: each feature module declares its routes (`route::Route`,
//! one line each); this module puts them in one table, dispatches every
//! request through it, logs and counts every request, and maps every failure
//! to the contract's `{"detail", "error_code"}` body (`error`).

mod audit;
pub mod auth;
mod bulk;
pub mod cors;
mod docs;
pub mod error;
mod health;
mod idempotency;
mod listings;
mod metrics;
pub mod openapi;
mod reservations;
mod roles;
mod roster;
mod route;
mod seats;
pub mod server;
mod tenants;
mod transfers;
mod ui;

use std::sync::{Arc, LazyLock};
use std::time::Instant;

use tracing::Instrument;
use warp::http::{HeaderValue, Method};
use warp::reply::Response;

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
    /// Which browser pages may call (`[http] cors_origins`).
    pub cors: cors::Cors,
    /// `[roster] max_bytes`: the largest roster package taken.
    pub roster_max_bytes: u64,
    /// With `[replication] leadership`: whether this instance is a standby
    /// (writes refused, reads answered with the lag in a header).
    pub replication: Option<Arc<crate::replication::Status>>,
}

/// Every route, hot ones first: a lookup walks the table in order, and seat
/// allocations and summary polls are most of the traffic on the first
/// morning of term. (Order never decides between two matching routes: the
/// most specific wins.)
static TABLE: LazyLock<Table> = LazyLock::new(|| {
    Table::new(
        [
            seats::routes(),
            bulk::routes(),
            reservations::routes(),
            transfers::routes(),
            listings::routes(),
            health::routes(),
            metrics::routes(),
            tenants::routes(),
            roles::routes(),
            audit::routes(),
            docs::routes(),
            ui::routes(),
            roster::routes(),
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
///
/// Every request has an id: the caller's `X-Request-ID` when it is a sane
/// one, else a new uuid. It is echoed on the response (errors too) and is a
/// field of every log line the request causes (its span), with the caller
/// once identified and, for a refusal, its `error_code`.
async fn dispatch(ctx: &Ctx, method: Method, path: &str, parts: Parts) -> Response {
    let started = Instant::now();
    let request_id = request_id(&parts.headers);
    let origin = ctx.cors.allowed(&parts.headers);
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        caller = tracing::field::Empty,
        error_code = tracing::field::Empty,
    );
    let handled = async {
        if let Some(preflight) = ctx.cors.preflight(&method, origin.as_ref(), &parts.headers) {
            return (None, preflight);
        }
        // An Idempotency-Key's guard, held until the answer is durable.
        let mut held = None;
        let (label, answer) = match TABLE.lookup(&method, path) {
            Lookup::Found(i) if settling(ctx) && path.starts_with("/api/") => {
                let why = "this instance was the primary and is checking its store against the change feed";
                (Some(i), Err(Error::ReplicationUnavailable(why.into()).into()))
            }
            Lookup::Found(i) if method != Method::GET && method != Method::HEAD && standby(ctx).is_some() => {
                let primary = standby(ctx).flatten();
                let primary = primary.unwrap_or_else(|| "unknown (no primary holds the lease now)".into());
                (Some(i), Err(Error::ReadOnlyStandby(primary).into()))
            }
            Lookup::Found(i) => (Some(i), TABLE.run(i, ctx, path, parts, &mut held).await),
            Lookup::WrongMethod(i) => (Some(i), Err(ApiError::MethodNotAllowed)),
            Lookup::NotFound => (None, Err(ApiError::RouteNotFound)),
        };
        let refused = |e: ApiError| {
            tracing::Span::current().record("error_code", e.code());
            error::reply(&e)
        };
        let writes = method != Method::GET && method != Method::HEAD && method != Method::OPTIONS;
        let response = match answer {
            Ok(durable) => match durable.wait(ctx.engine.store()).await {
                // A write is acknowledged only by a primary still in force
                // as it answers (its lease; NATS in sync mode): one that
                // lost them meanwhile cannot vouch for the change.
                Ok(response) if writes && ctx.replication.is_some() => match ctx.engine.store().may_acknowledge() {
                    Ok(()) => response,
                    Err(e) => refused(Error::from(e).into()),
                },
                Ok(response) => response,
                Err(e) => refused(e.into()),
            },
            Err(e) => refused(e),
        };
        drop(held);
        (label, response)
    };
    let (label, mut response) = handled.instrument(span.clone()).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    if let Some(status) = ctx.replication.as_ref().filter(|_| standby(ctx).is_some()) {
        let lag = status.lag_ms.load(std::sync::atomic::Ordering::Relaxed);
        response.headers_mut().insert(REPLICATION_LAG, lag.into());
    }
    ctx.cors.decorate(origin, &mut response);
    let status = response.status().as_u16();
    ctx.engine
        .metrics()
        .request(label, method.as_str(), status, started.elapsed());
    span.in_scope(|| {
        tracing::info!(
            target: "tenant_service::request",
            method = %method,
            path,
            status,
            latency_us = started.elapsed().as_micros() as u64,
        )
    });
    response
}

const REQUEST_ID: &str = "x-request-id";

/// On a standby's answers: how far behind the stream's end it is (ms).
const REPLICATION_LAG: &str = "x-replication-lag-ms";

/// `Some(primary URL, if known)` while this instance is a standby.
fn standby(ctx: &Ctx) -> Option<Option<String>> {
    match &*ctx.replication.as_ref()?.standing.borrow() {
        crate::replication::Standing::Standby { primary } => Some(primary.clone()),
        crate::replication::Standing::Settling => Some(None),
        crate::replication::Standing::Primary => None,
    }
}

/// Whether this instance is a former primary still checking its store.
fn settling(ctx: &Ctx) -> bool {
    ctx.replication
        .as_ref()
        .is_some_and(|r| *r.standing.borrow() == crate::replication::Standing::Settling)
}

/// The caller's `X-Request-ID` if it is 1 to 128 characters of letters,
/// digits and `-_.:`, else a new uuid (never a value that could forge a
/// log line).
fn request_id(headers: &warp::http::HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}
