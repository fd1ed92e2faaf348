//! Extractors shared by every feature's routes: the caller's identity, JSON
//! bodies and query parameters. Each turns bad input into an `Error`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use warp::{Filter, Rejection};

use crate::domain::{Id, UserId};
use crate::engine::Engine;
use crate::error::Error;

/// Hands the engine to a handler.
pub fn with_engine(engine: Arc<Engine>) -> impl Filter<Extract = (Arc<Engine>,), Error = Infallible> + Clone {
    warp::any().map(move || Arc::clone(&engine))
}

/// The caller from `X-User-ID` (set by the gateway); 401 when missing or blank.
pub fn caller() -> impl Filter<Extract = (UserId,), Error = Rejection> + Clone {
    warp::header::optional::<String>("x-user-id").and_then(|raw: Option<String>| async move {
        raw.as_deref()
            .and_then(|r| UserId::parse(r).ok())
            .ok_or_else(|| warp::reject::custom(Error::Unauthenticated))
    })
}

/// A JSON body of at most `limit` bytes. Not JSON at all: 400. JSON of the
/// wrong shape or types: 422, naming the field.
pub fn json<T: DeserializeOwned + Send>(limit: u64) -> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    warp::body::content_length_limit(limit)
        .and(warp::body::bytes())
        .and_then(|bytes: warp::hyper::body::Bytes| async move { parse_json(&bytes).map_err(warp::reject::custom) })
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::Invalid("request body must be a JSON object".into()));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                if path == "." {
                    Error::Invalid(format!("request body: {inner}"))
                } else {
                    Error::Invalid(format!("{path}: {inner}"))
                }
            }
            _ => Error::MalformedJson(inner.to_string()),
        }
    })
}

/// The query string as key → value (the last value wins for repeated keys).
pub fn query() -> impl Filter<Extract = (HashMap<String, String>,), Error = Rejection> + Clone {
    warp::query::<HashMap<String, String>>()
}

/// A required id in the query string, e.g. `tenantId`.
pub fn query_id<I: Id>(query: &HashMap<String, String>, name: &str) -> Result<I, Error> {
    let raw = query
        .get(name)
        .ok_or_else(|| Error::Invalid(format!("query parameter {name} is required")))?;
    I::parse_str(raw.trim()).map_err(|_| Error::Invalid(format!("query parameter {name} must be a positive integer")))
}

/// A path segment, percent-decoded (warp hands segments over raw).
pub fn decode_segment(raw: &str) -> Result<String, Error> {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| Error::Invalid("path segment is not valid UTF-8".into()))
}
