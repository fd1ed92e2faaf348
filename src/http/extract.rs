//! Extractors shared by every feature's routes: the caller's identity, JSON
//! bodies and query parameters. Each turns bad input into an `Error`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use warp::{Filter, Rejection};

use crate::auth::Authenticator;
use crate::domain::{Caller, Id};
use crate::engine::Engine;
use crate::error::Error;

/// Hands the engine to a handler.
pub fn with_engine(engine: Arc<Engine>) -> impl Filter<Extract = (Arc<Engine>,), Error = Infallible> + Clone {
    warp::any().map(move || Arc::clone(&engine))
}

/// The caller, identified by the configured scheme (X-User-ID or a bearer token).
pub fn caller(auth: Arc<Authenticator>) -> impl Filter<Extract = (Caller,), Error = Rejection> + Clone {
    warp::header::optional::<String>("x-user-id")
        .and(warp::header::optional::<String>("authorization"))
        .and_then(move |user: Option<String>, bearer: Option<String>| {
            let identified = auth.identify(user.as_deref(), bearer.as_deref());
            async move { identified.map_err(warp::reject::custom) }
        })
}

/// A JSON object body of at most `limit` bytes, with or without a
/// Content-Length (chunked bodies are counted as they arrive). Not JSON at
/// all: 400. JSON of the wrong shape or types: 422, naming the field.
pub fn json<T: DeserializeOwned + Send>(limit: u64) -> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and(warp::body::stream())
        .and_then(move |declared: Option<u64>, body| async move {
            if declared.is_some_and(|n| n > limit) {
                return Err(warp::reject::custom(Error::PayloadTooLarge(limit)));
            }
            let bytes = read_capped(body, limit).await.map_err(warp::reject::custom)?;
            parse_json(&bytes).map_err(warp::reject::custom)
        })
}

async fn read_capped<S, B>(body: S, limit: u64) -> Result<Vec<u8>, Error>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>>,
    B: warp::Buf,
{
    use futures_util::StreamExt;
    let mut out = Vec::new();
    let mut body = std::pin::pin!(body);
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|e| Error::MalformedJson(format!("request body could not be read: {e}")))?;
        while chunk.has_remaining() {
            let piece = chunk.chunk();
            if (out.len() + piece.len()) as u64 > limit {
                return Err(Error::PayloadTooLarge(limit));
            }
            out.extend_from_slice(piece);
            let n = piece.len();
            chunk.advance(n);
        }
    }
    Ok(out)
}

/// Parses a request body that must be one JSON object and nothing else.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        // Serde would read an array's items as the struct's fields in order.
        Some(_) if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() => {
            return Err(Error::Invalid("request body must be a JSON object".into()));
        }
        Some(_) => return Err(Error::MalformedJson("expected a JSON object".into())),
        None => return Err(Error::Invalid("request body must be a JSON object".into())),
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data if path == "." => Error::Invalid(format!("request body: {inner}")),
            serde_json::error::Category::Data => Error::Invalid(format!("{path}: {inner}")),
            _ => Error::MalformedJson(inner.to_string()),
        }
    })?;
    // Anything after the object (a second object, stray bytes) is not JSON.
    de.end().map_err(|e| Error::MalformedJson(e.to_string()))?;
    Ok(value)
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
