//! Each route declared once: `Route::post("/api/v1/seats/allocate", allocate)`
//! gives its method and path template, whether it needs a caller, and its
//! handler. The same table dispatches requests (one service for all of
//! them, straight under hyper), names each request's metrics label (the
//! template, never the raw path), and lists the routes the metrics
//! pre-register.
//!
//! What every handler gets is a `Request`: the caller (identified before the
//! handler runs), the path parameters, the query and the body, read on
//! demand. A handler that takes a body reads it first, as the contract's
//! refusals go: identity, then body, then the values in it and in the path.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use hyper::body::HttpBody;
use hyper::Body;
use serde::de::DeserializeOwned;
use serde::Serialize;
use warp::http::{HeaderMap, Method, StatusCode};
use warp::reply::Response;
use warp::Reply;

use super::auth::Authenticator;
use super::error::ApiError;
use super::idempotency::{self, Begin};
use crate::domain::{Caller, Id};
use crate::engine::{Durable, Engine, KeyGuard, KeyStamp, Keyed};

/// What a handler answers: a response to send once it is durable.
pub type Answer = Result<Durable<Response>, ApiError>;

type Handler = Box<dyn Fn(Request) -> Pin<Box<dyn Future<Output = Answer> + Send>> + Send + Sync>;

pub struct Route {
    pub method: Method,
    /// The path template, e.g. `/api/v1/seats/{id}/audit`: also the
    /// request's metrics label.
    pub path: &'static str,
    /// Needs no identity (health, metrics).
    pub open: bool,
    /// A body limit of its own, above the configured one (bulk routes), or
    /// one read from the configuration (roster imports).
    body_limit: Option<BodyLimit>,
    segments: Vec<Segment>,
    handler: Handler,
}

#[derive(Clone, Copy)]
enum BodyLimit {
    /// At least this, or the configured `max_body_bytes` if larger.
    AtLeast(u64),
    /// Exactly what the configuration says for this route.
    Configured(fn(&super::Ctx) -> u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment {
    Literal(&'static str),
    /// `{name}`: any non-empty segment, handed to the handler raw.
    Param,
}

impl Route {
    pub fn get<F, Fut>(path: &'static str, handler: F) -> Route
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Answer> + Send + 'static,
    {
        Self::new(Method::GET, path, handler)
    }

    pub fn post<F, Fut>(path: &'static str, handler: F) -> Route
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Answer> + Send + 'static,
    {
        Self::new(Method::POST, path, handler)
    }

    pub fn put<F, Fut>(path: &'static str, handler: F) -> Route
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Answer> + Send + 'static,
    {
        Self::new(Method::PUT, path, handler)
    }

    /// The route needs no identity.
    pub fn open(mut self) -> Route {
        self.open = true;
        self
    }

    /// The route takes bodies up to `bytes` (or the configured limit, if
    /// that is larger).
    pub fn max_body(mut self, bytes: u64) -> Route {
        self.body_limit = Some(BodyLimit::AtLeast(bytes));
        self
    }

    /// The route takes bodies up to the limit `limit` reads from the
    /// configuration (e.g. `[roster] max_bytes`).
    pub fn max_body_from(mut self, limit: fn(&super::Ctx) -> u64) -> Route {
        self.body_limit = Some(BodyLimit::Configured(limit));
        self
    }

    /// Its own body limit, if it has one (the API document names it).
    /// (A limit read from the configuration is the document's to describe.)
    pub fn own_body_limit(&self) -> Option<u64> {
        match self.body_limit {
            Some(BodyLimit::AtLeast(bytes)) => Some(bytes),
            Some(BodyLimit::Configured(_)) | None => None,
        }
    }

    fn new<F, Fut>(method: Method, path: &'static str, handler: F) -> Route
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Answer> + Send + 'static,
    {
        let segments = split(path)
            .map(|s| {
                if s.starts_with('{') && s.ends_with('}') {
                    Segment::Param
                } else {
                    Segment::Literal(s)
                }
            })
            .collect();
        Route {
            method,
            path,
            open: false,
            body_limit: None,
            segments,
            handler: Box::new(move |req| Box::pin(handler(req))),
        }
    }

    fn param_count(&self) -> usize {
        self.segments.iter().filter(|s| **s == Segment::Param).count()
    }

    /// Whether `path` (split in segments) matches this route's template.
    fn matches(&self, path: &[&str]) -> bool {
        path.len() == self.segments.len()
            && self.segments.iter().zip(path).all(|(seg, part)| match seg {
                Segment::Literal(lit) => lit == part,
                Segment::Param => !part.is_empty(),
            })
    }

    fn params(&self, path: &str) -> Vec<String> {
        self.segments
            .iter()
            .zip(split(path))
            .filter(|(seg, _)| **seg == Segment::Param)
            .map(|(_, part)| (*part).to_owned())
            .collect()
    }
}

/// A path's segments after its leading `/` (`/` itself is one empty
/// segment). One trailing `/` names the same route, as it always has
/// (`/health/` is `/health`); an empty segment anywhere else matches nothing.
fn split(path: &str) -> impl Iterator<Item = &str> {
    let path = match path.strip_suffix('/') {
        Some(trimmed) if !trimmed.is_empty() => trimmed,
        _ => path,
    };
    path.strip_prefix('/').unwrap_or("\u{0}").split('/')
}

/// The most segments any route has; longer paths are not found.
const MAX_SEGMENTS: usize = 8;

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// The index of the first route matching path and method.
    Found(usize),
    /// The path is a route's (the first such index), the method is not.
    WrongMethod(usize),
    NotFound,
}

/// Every route. A lookup walks them in order (so the hot routes go first)
/// and takes the most specific one that matches path and method.
pub struct Table(Vec<Route>);

impl Table {
    pub fn new(routes: Vec<Route>) -> Table {
        Table(routes)
    }

    pub fn routes(&self) -> &[Route] {
        &self.0
    }

    /// `HEAD` is answered wherever `GET` is (without the body).
    pub fn lookup(&self, method: &Method, path: &str) -> Lookup {
        let method = if method == Method::HEAD { &Method::GET } else { method };
        let mut parts = [""; MAX_SEGMENTS];
        let mut n = 0;
        for part in split(path) {
            if n == MAX_SEGMENTS {
                return Lookup::NotFound;
            }
            parts[n] = part;
            n += 1;
        }
        let parts = &parts[..n];
        let mut path_known = None;
        // The most specific route wins: a literal segment beats a `{param}`
        // in its place (`/seats/export` over `/seats/{id}`), whatever the
        // table order; among equals, the first.
        let mut best: Option<(usize, usize)> = None;
        for (i, route) in self.0.iter().enumerate() {
            if route.matches(parts) {
                if route.method != *method {
                    path_known.get_or_insert(i);
                    continue;
                }
                let params = route.param_count();
                if params == 0 {
                    return Lookup::Found(i);
                }
                if best.is_none_or(|(_, fewest)| params < fewest) {
                    best = Some((i, params));
                }
            }
        }
        match (best, path_known) {
            (Some((i, _)), _) => Lookup::Found(i),
            (None, Some(i)) => Lookup::WrongMethod(i),
            (None, None) => Lookup::NotFound,
        }
    }

    /// Runs route `index` for a request: identifies the caller, then hands
    /// the request to the handler.
    /// A request with an `Idempotency-Key` leaves its key's guard in `held`:
    /// the caller keeps it until the answer is durable.
    pub async fn run(
        &self,
        index: usize,
        ctx: &super::Ctx,
        path: &str,
        mut parts: Parts,
        held: &mut Option<KeyGuard>,
    ) -> Answer {
        let Some(route) = self.0.get(index) else {
            return Err(ApiError::RouteNotFound);
        };
        let caller = if route.open {
            None
        } else {
            let caller = identify(&ctx.auth, &parts.headers)?;
            tracing::Span::current().record("caller", caller.user.as_str());
            Some(caller)
        };
        let body_limit = match route.body_limit {
            None => ctx.body_limit,
            Some(BodyLimit::AtLeast(own)) => own.max(ctx.body_limit),
            Some(BodyLimit::Configured(limit)) => limit(ctx),
        };
        let begun = idempotency::begin(
            &ctx.engine,
            caller.as_ref(),
            &route.method,
            path,
            &mut parts,
            body_limit,
        )
        .await?;
        let (stamp, read) = match begun {
            Begin::Plain => (None, None),
            Begin::Run { guard, body } => {
                let stamp = guard.stamp();
                *held = Some(guard);
                (Some(stamp), Some(body))
            }
            Begin::Replay(response) => return Ok(Durable::ready(response)),
        };
        let request = Request {
            caller,
            params: route.params(path),
            query: parts.query,
            headers: parts.headers,
            body: Some(parts.body),
            read,
            stamp,
            body_limit,
            engine: Arc::clone(&ctx.engine),
        };
        (route.handler)(request).await
    }
}

/// The raw request past its method and path.
pub struct Parts {
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Body,
}

/// The caller, identified by the configured scheme (X-User-ID or a bearer
/// token). A header that is not visible ASCII is no identity; nor is a
/// repeated one: which copy a proxy meant is not ours to guess, so the
/// request is refused as unidentified.
fn identify(auth: &Authenticator, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let one = |name: &str| -> Result<Option<&str>, ApiError> {
        let mut values = headers.get_all(name).iter();
        match (values.next(), values.next()) {
            (Some(v), None) => v.to_str().map(Some).map_err(|_| ApiError::Unauthenticated),
            _ => Ok(None),
        }
    };
    auth.identify(one("x-user-id")?, one("authorization")?)
}

/// One request, as a handler sees it.
pub struct Request {
    caller: Option<Caller>,
    params: Vec<String>,
    query: Option<String>,
    headers: HeaderMap,
    body: Option<Body>,
    /// The body, when it was read before the handler (`Idempotency-Key`).
    read: Option<Vec<u8>>,
    /// The request's `Idempotency-Key` and fingerprint, if it has one.
    stamp: Option<KeyStamp>,
    body_limit: u64,
    pub engine: Arc<Engine>,
}

impl Request {
    /// For a write whose request carries an `Idempotency-Key`: its answer,
    /// `value` as JSON with `status`, kept with its change.
    pub fn keyed<T: Serialize + 'static>(&self, status: StatusCode) -> Option<Keyed<T>> {
        self.keyed_by(move |value: &T| idempotency::json(status, value))
    }

    /// `keyed`, with an answer rendered by `render`.
    pub fn keyed_by<T: 'static>(&self, render: impl FnOnce(&T) -> (u16, Vec<u8>) + Send + 'static) -> Option<Keyed<T>> {
        self.stamp.map(|stamp| stamp.keyed(render))
    }

    /// The caller (identified routes only).
    pub fn caller(&self) -> Result<&Caller, ApiError> {
        self.caller.as_ref().ok_or(ApiError::Unauthenticated)
    }

    /// The `n`th `{param}` of the path, raw (not percent-decoded).
    pub fn param(&self, n: usize) -> &str {
        self.params.get(n).map_or("", String::as_str)
    }

    /// The `n`th `{param}` as an id.
    pub fn id<I: Id>(&self, n: usize) -> Result<I, ApiError> {
        Ok(I::parse_str(self.param(n))?)
    }

    /// The `n`th `{param}`, percent-decoded.
    pub fn decoded(&self, n: usize) -> Result<String, ApiError> {
        percent_encoding::percent_decode_str(self.param(n))
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| ApiError::invalid("path segment is not valid UTF-8"))
    }

    /// The query string as key → value (the last value wins for repeated keys).
    pub fn query(&self) -> Result<HashMap<String, String>, ApiError> {
        serde_urlencoded::from_str(self.query.as_deref().unwrap_or_default())
            .map_err(|e| ApiError::invalid(format!("query string is not valid: {e}")))
    }

    /// A required id in the query string, e.g. `tenantId`.
    pub fn query_id<I: Id>(query: &HashMap<String, String>, name: &str) -> Result<I, ApiError> {
        let raw = query
            .get(name)
            .ok_or_else(|| ApiError::invalid(format!("query parameter {name} is required")))?;
        I::parse_str(raw.trim())
            .map_err(|_| ApiError::invalid(format!("query parameter {name} must be a positive integer")))
    }

    /// The body's bytes, at most the route's limit (413 past it, as soon as
    /// a Content-Length or the bytes received say so).
    pub async fn bytes(&mut self) -> Result<Vec<u8>, ApiError> {
        if let Some(bytes) = self.read.take() {
            return Ok(bytes);
        }
        let limit = self.body_limit;
        let declared = self
            .headers
            .get(warp::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(ApiError::PayloadTooLarge(limit));
        }
        let body = self
            .body
            .take()
            .ok_or_else(|| ApiError::invalid("request body was already read"))?;
        read_capped(body, limit).await
    }

    /// The route's body limit.
    pub fn body_limit(&self) -> u64 {
        self.body_limit
    }

    /// A request header's value, if it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as one JSON object of at most the configured size, with or
    /// without a Content-Length (chunked bodies are counted as they arrive).
    /// Not JSON at all: 400. JSON of the wrong shape or types: 422, naming
    /// the field.
    pub async fn json<T: DeserializeOwned>(&mut self) -> Result<T, ApiError> {
        if let Some(bytes) = self.read.take() {
            return parse_json(&bytes);
        }
        let body = self
            .body
            .take()
            .ok_or_else(|| ApiError::invalid("request body was already read"))?;
        parse_json(&read_body(&self.headers, body, self.body_limit).await?)
    }
}

/// A whole body of at most `limit` bytes, refused early when its declared
/// Content-Length is already larger.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: u64) -> Result<Vec<u8>, ApiError> {
    let declared = headers
        .get(warp::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge(limit));
    }
    read_capped(body, limit).await
}

async fn read_capped(mut body: Body, limit: u64) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk =
            chunk.map_err(|e| ApiError::MalformedJson(format!("request body could not be read: {}", chain(&e))))?;
        if (out.len() + chunk.len()) as u64 > limit {
            return Err(ApiError::PayloadTooLarge(limit));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// An error and its causes, one sentence (hyper's own says only "error
/// reading a body from connection").
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

/// Parses a request body that must be one JSON object and nothing else.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        // Serde would read an array's items as the struct's fields in order.
        Some(_) if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() => {
            return Err(ApiError::invalid("request body must be a JSON object"));
        }
        Some(_) => return Err(ApiError::MalformedJson("expected a JSON object".into())),
        None => return Err(ApiError::invalid("request body must be a JSON object")),
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data if path == "." => ApiError::invalid(format!("request body: {inner}")),
            serde_json::error::Category::Data => ApiError::invalid(format!("{path}: {inner}")),
            _ => ApiError::MalformedJson(inner.to_string()),
        }
    })?;
    // Anything after the object (a second object, stray bytes) is not JSON.
    de.end().map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    Ok(value)
}

/// 200 with `value` as JSON.
pub fn ok<T: Serialize>(value: T) -> Response {
    warp::reply::json(&value).into_response()
}

/// 201 with `value` as JSON.
pub fn created<T: Serialize>(value: T) -> Response {
    warp::reply::with_status(warp::reply::json(&value), StatusCode::CREATED).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(_: Request) -> impl Future<Output = Answer> {
        std::future::ready(Ok(Durable::ready(ok(()))))
    }

    fn table() -> Table {
        Table::new(vec![
            Route::get("/", answer).open(),
            Route::get("/health", answer).open(),
            Route::post("/api/v1/seats/allocate", answer),
            Route::get("/api/v1/seats/summary", answer),
            Route::get("/api/v1/seats/{id}", answer),
            Route::get("/api/v1/seats/{id}/audit", answer),
            Route::get("/api/v1/users/{id}/tenants", answer),
            // After `{id}` in the table, still the more specific.
            Route::get("/api/v1/seats/export", answer),
        ])
    }

    #[test]
    fn literals_win_over_params_and_methods_are_told_apart() {
        let t = table();
        assert_eq!(t.lookup(&Method::GET, "/"), Lookup::Found(0));
        assert_eq!(t.lookup(&Method::POST, "/api/v1/seats/allocate"), Lookup::Found(2));
        assert_eq!(t.lookup(&Method::GET, "/api/v1/seats/summary"), Lookup::Found(3));
        assert_eq!(t.lookup(&Method::GET, "/api/v1/seats/17"), Lookup::Found(4));
        assert_eq!(t.lookup(&Method::GET, "/api/v1/seats/export"), Lookup::Found(7));
        // The word is not an id, but the path is a seat's: the handler refuses it.
        assert_eq!(t.lookup(&Method::GET, "/api/v1/seats/allocate"), Lookup::Found(4));
        assert_eq!(t.lookup(&Method::GET, "/api/v1/seats/17/audit"), Lookup::Found(5));
        assert_eq!(t.lookup(&Method::DELETE, "/api/v1/seats/17"), Lookup::WrongMethod(4));
        assert_eq!(t.lookup(&Method::POST, "/"), Lookup::WrongMethod(0));
        assert_eq!(t.lookup(&Method::HEAD, "/health"), Lookup::Found(1));
        // One trailing slash is the same route (as under warp before).
        assert_eq!(t.lookup(&Method::GET, "/health/"), Lookup::Found(1));
        assert_eq!(t.lookup(&Method::GET, "/api/v1/seats/17/"), Lookup::Found(4));
        assert_eq!(t.lookup(&Method::POST, "/api/v1/seats/17/"), Lookup::WrongMethod(4));
        assert_eq!(
            t.lookup(&Method::GET, "/api/v1/users/some%20one/tenants"),
            Lookup::Found(6)
        );
    }

    #[test]
    fn unknown_paths_are_not_found() {
        let t = table();
        for path in [
            "/health//",
            "health",
            "",
            "/api/v1/seats/",
            "/api/v1/seats//audit",
            "/../../etc/passwd",
            "/api/v1/seats/1/audit/x/y/z/w/v",
        ] {
            assert_eq!(t.lookup(&Method::GET, path), Lookup::NotFound, "{path:?}");
        }
    }

    #[test]
    fn params_are_the_raw_segments() {
        let t = table();
        let route = &t.routes()[6];
        assert_eq!(
            route.params("/api/v1/users/some%20one/tenants"),
            vec!["some%20one".to_owned()]
        );
        assert_eq!(t.routes()[4].params("/api/v1/seats/17/"), vec!["17".to_owned()]);
    }
}
