//! The HTTP layer: each feature module owns its routes; this module combines
//! them, logs every request, and installs the one `recover` that turns every
//! rejection into the contract's `{"detail", "error_code"}` body.

mod audit;
mod extract;
mod health;
mod metrics;
mod roles;
mod seats;
mod tenants;

use std::convert::Infallible;
use std::sync::Arc;

use serde::Serialize;
use serde_json::json;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use crate::auth::Authenticator;
use crate::engine::Engine;
use crate::error::Error;

pub use extract::parse_json;

/// What a handler returns. Handlers answer errors themselves (through
/// `respond`) rather than rejecting: a rejection would make warp try the
/// remaining routes, and a later route's complaint could replace this one's.
type Answer = Result<Box<dyn Reply>, Error>;

fn respond(answer: Answer) -> Box<dyn Reply> {
    answer.unwrap_or_else(|err| Box::new(error_reply(&err)))
}

fn created<T: Serialize>(value: &T) -> Box<dyn Reply> {
    Box::new(warp::reply::with_status(warp::reply::json(value), StatusCode::CREATED))
}

fn ok<T: Serialize>(value: &T) -> Box<dyn Reply> {
    Box::new(warp::reply::json(value))
}

/// What every route needs.
#[derive(Clone)]
pub struct Ctx {
    pub engine: Arc<Engine>,
    pub auth: Arc<Authenticator>,
    pub body_limit: u64,
}

/// Every route of the service, with error mapping and request logging.
pub fn routes(ctx: Ctx) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone + Send + Sync + 'static {
    let body_limit = ctx.body_limit;
    let engine = Arc::clone(&ctx.engine);
    // Hot routes first: warp tries routes in order, and seat allocations and
    // summary polls are most of the traffic on the first morning of term.
    let api = seats::routes(&ctx)
        .or(tenants::routes(&ctx))
        .unify()
        .or(roles::routes(&ctx))
        .unify()
        .or(audit::routes(&ctx))
        .unify();
    health::routes()
        .map(|r| Box::new(r) as Box<dyn Reply>)
        .or(metrics::routes(&ctx))
        .unify()
        .or(api)
        .unify()
        .recover(move |rejection| recover(rejection, body_limit))
        .with(warp::log::custom(move |info| {
            engine.metrics().request(
                info.method().as_str(),
                info.path(),
                info.status().as_u16(),
                info.elapsed(),
            );
            tracing::info!(
                target: "tenant_service::request",
                method = %info.method(),
                path = info.path(),
                status = info.status().as_u16(),
                latency_us = info.elapsed().as_micros() as u64,
            );
        }))
}

/// The one place a failure becomes a response.
pub fn error_reply(err: &Error) -> warp::reply::Response {
    let status = err.status();
    // Shedding load is the plan working, and one line per shed request would
    // turn an overload into a logging storm.
    if matches!(err, Error::Overloaded) {
        tracing::debug!("request shed: overloaded");
    } else if status.is_server_error() {
        tracing::error!(error = ?err, "request failed");
    }
    let body = warp::reply::json(&json!({"detail": err.to_string(), "error_code": err.code()}));
    let mut response = warp::reply::with_status(body, status).into_response();
    if let Some(challenge) = err.challenge() {
        response.headers_mut().insert(
            warp::http::header::WWW_AUTHENTICATE,
            warp::http::HeaderValue::from_static(challenge),
        );
    }
    if let Some(secs) = err.retry_after() {
        response
            .headers_mut()
            .insert(warp::http::header::RETRY_AFTER, secs.into());
    }
    response
}

async fn recover(rejection: Rejection, body_limit: u64) -> Result<warp::reply::Response, Infallible> {
    if let Some(err) = rejection.find::<Error>() {
        return Ok(error_reply(err));
    }
    // Order matters: a rejection raised after the path and method matched
    // (header, query) is about the route the caller meant, while 404 and 405
    // may come from sibling routes that share the path.
    let err = if let Some(e) = rejection.find::<warp::reject::InvalidQuery>() {
        Error::Invalid(format!("query string is not valid: {e}"))
    } else if rejection.find::<warp::reject::InvalidHeader>().is_some()
        || rejection.find::<warp::reject::MissingHeader>().is_some()
    {
        Error::Unauthenticated
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        Error::PayloadTooLarge(body_limit)
    } else if rejection.find::<warp::reject::LengthRequired>().is_some() {
        Error::LengthRequired
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        Error::MethodNotAllowed
    } else if rejection.is_not_found() {
        Error::RouteNotFound
    } else {
        Error::Internal(anyhow::anyhow!("unhandled rejection: {rejection:?}"))
    };
    Ok(error_reply(&err))
}
