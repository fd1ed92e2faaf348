//! `Idempotency-Key` as the API document describes it: accepted on every
//! `POST` and `PUT` (each of them writes), replays marked by
//! `Idempotent-Replayed`, and the two refusals of its own. Everything the
//! document says about it is here, so that the feature and its description
//! change in one place.

use serde_json::{json, Value};

use crate::engine::Error;
use crate::http::error::ApiError;
use warp::http::Method;

pub const HEADER: &str = "Idempotency-Key";
pub const REPLAYED: &str = "Idempotent-Replayed";

/// Whether a route takes the header: every route that writes.
pub fn applies(method: &Method) -> bool {
    method == Method::POST || method == Method::PUT
}

/// The refusals only a keyed request can get (as `http::error` maps them).
pub fn refusals() -> Vec<ApiError> {
    vec![
        ApiError::BadIdempotencyKey,
        Error::KeyReused.into(),
        Error::KeyInFlight.into(),
    ]
}

/// The request header, as a reusable parameter.
pub fn parameter() -> Value {
    json!({
        "name": HEADER,
        "in": "header",
        "required": false,
        "description": "Makes a retry safe: a request repeated with the same key (1 to 255 printable \
            ASCII characters) and the same method, path and body is not applied again; the first \
            answer is replayed, marked `Idempotent-Replayed: true`. The same key with a different \
            request is refused (422 `IDEMPOTENCY_KEY_REUSED`); while the first request is still \
            being answered, a repeat is refused (409 `IDEMPOTENCY_KEY_IN_FLIGHT`). A key that \
            breaks the rule, or a repeated header, is refused (400 `INVALID_IDEMPOTENCY_KEY`). \
            Keys are per caller; answers are kept `[idempotency] retention_hours` (at least 24 \
            hours). Only answers to requests that were carried out are kept: a refusal is not, \
            so its retry runs again.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7E]+$"}
    })
}

/// The response header on a replayed answer.
pub fn replayed_header() -> Value {
    json!({
        "description": "`true` when this answer is the replay of an earlier request with the same \
            Idempotency-Key (nothing was applied again); absent otherwise.",
        "schema": {"type": "string", "enum": ["true"]}
    })
}

/// For the document's introduction.
pub const SUMMARY: &str = "Every `POST` and `PUT` takes an optional `Idempotency-Key` header (1 to 255 \
    printable ASCII characters): a retry with the same key and the same request is answered with the \
    first answer, marked `Idempotent-Replayed: true`, and applies nothing again.";
