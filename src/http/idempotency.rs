//! `Idempotency-Key` on writes (the IETF httpapi draft, as Stripe does it):
//! the first request with a key runs and its answer is kept with its change
//! (`engine::answers`); a retry with the same key, from the same caller,
//! with the same method, path, query and body gets that answer again with
//! `Idempotent-Replayed: true` and changes nothing.

use warp::http::{HeaderMap, HeaderValue, Method, StatusCode};
use warp::reply::Response;

use super::error::ApiError;
use super::route::{read_body, Parts};
use crate::domain::{fingerprint, Answer, AnswerKey, Caller};
use crate::engine::{Engine, Kept, KeyGuard};

const HEADER: &str = "idempotency-key";
const REPLAYED: &str = "idempotent-replayed";

/// What a write with a key is to do.
pub enum Begin {
    /// No key: an ordinary request.
    Plain,
    /// Run it with its body already read (for the fingerprint), keeping the
    /// answer through the guard.
    Run { guard: KeyGuard, body: Vec<u8> },
    /// Send this answer again.
    Replay(Response),
}

/// For a `POST` or `PUT` with an `Idempotency-Key`: reads the body, and
/// asks the engine whether to run it or replay the first answer.
pub async fn begin(
    engine: &Engine,
    caller: Option<&Caller>,
    method: &Method,
    path: &str,
    parts: &mut Parts,
    limit: u64,
) -> Result<Begin, ApiError> {
    if !(method == Method::POST || method == Method::PUT) {
        return Ok(Begin::Plain);
    }
    let Some(key) = key(&parts.headers)? else {
        return Ok(Begin::Plain);
    };
    // Every write identifies its caller; the key is scoped to them.
    let caller = caller.ok_or(ApiError::Unauthenticated)?;
    let body = read_body(&parts.headers, std::mem::take(&mut parts.body), limit).await?;
    let print = fingerprint(method.as_str(), path, parts.query.as_deref(), &body);
    match engine.idempotent(AnswerKey::new(caller.user.as_str(), key), print)? {
        Kept::Run(guard) => Ok(Begin::Run { guard, body }),
        Kept::Replay(answer) => Ok(Begin::Replay(replay(answer))),
    }
}

/// The request's key: absent, or 1 to 255 printable ASCII characters
/// (a repeated header is refused: which copy was meant is not ours to guess).
fn key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let mut values = headers.get_all(HEADER).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return match headers.contains_key(HEADER) {
            true => Err(ApiError::BadIdempotencyKey),
            false => Ok(None),
        };
    };
    let bytes = value.as_bytes();
    if (1..=255).contains(&bytes.len()) && bytes.iter().all(|b| (0x20..=0x7e).contains(b)) {
        Ok(value.to_str().ok())
    } else {
        Err(ApiError::BadIdempotencyKey)
    }
}

/// A kept answer as sent the first time, marked as a replay.
fn replay(answer: Answer) -> Response {
    let mut response = Response::new(answer.body.into());
    *response.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let headers = response.headers_mut();
    headers.insert(
        warp::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

/// An answer as JSON with `status`, as `route::ok` and `route::created`
/// send it (the same bytes: serde_json is deterministic).
pub fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> (u16, Vec<u8>) {
    match serde_json::to_vec(value) {
        Ok(body) => (status.as_u16(), body),
        // Our views always serialize; were one not to, a 500 is kept.
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR.as_u16(), b"{}".to_vec()),
    }
}
