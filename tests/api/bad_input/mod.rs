//! Bad input of every kind, over HTTP against the real server: malformed and
//! mistyped bodies, out-of-range values, odd paths and queries, missing
//! identity, unknown routes and methods, oversized bodies, and a fixed-seed
//! fuzz. Every refusal must be a 4xx with the contract's error body, must
//! change nothing, and must leave the server healthy.
//!
//! The rules of each field (lengths, ranges, which characters) are unit
//! tests beside the domain types in `src/domain`; here one case per route and
//! field proves that a broken rule becomes a 422 that changes nothing.

mod field_types;
mod fixture;
mod framing;
mod fuzz;
mod identity;
mod ids;
mod json_bodies;
mod names_and_text;
mod routes_and_methods;
mod sizes;

use super::helpers::*;
use super::raw;

/// Any method, any path, optional identity, optional raw body.
async fn request(app: &TestApp, method: &str, path: &str, user: Option<&str>, body: Option<Vec<u8>>) -> Response {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or_else(|e| panic!("method {method}: {e}"));
    let mut req = app.client.request(method, app.url(path));
    if let Some(user) = user {
        req = req.header("X-User-ID", user);
    }
    if let Some(body) = body {
        if body.is_empty() {
            // reqwest sends no Content-Length for an empty body; a real client would.
            req = req.header("content-length", "0");
        }
        req = req.header("content-type", "application/json").body(body);
    }
    app.send(req).await
}

/// A raw body with the admin's identity.
async fn call(app: &TestApp, method: &str, path: &str, body: &[u8]) -> Response {
    request(app, method, path, Some(ADMIN), Some(body.to_vec())).await
}

/// A request over a plain socket, for what reqwest will not send (no
/// Content-Length, chunked bodies): the admin's identity, a JSON content type,
/// `Connection: close`, then `extra` headers and `body` as they are.
fn raw_request(app: &TestApp, method: &str, path: &str, extra: &[&str], body: &str) -> String {
    let host = format!("Host: {}", app.addr);
    let user = format!("X-User-ID: {ADMIN}");
    let mut headers = vec![
        host.as_str(),
        user.as_str(),
        "Content-Type: application/json",
        "Connection: close",
    ];
    headers.extend_from_slice(extra);
    raw::request(method, path, &headers, body)
}

/// Sends a `raw_request` and reads the answer: its status and JSON body.
async fn raw_http(app: &TestApp, request: &str) -> Response {
    let reply = raw::send(app.addr, request.as_bytes(), raw::After::KeepOpen)
        .await
        .unwrap_or_else(|| panic!("no answer to {request:?}"));
    assert!(
        !reply.head.contains("transfer-encoding: chunked"),
        "chunked reply; this helper reads only Content-Length replies: {}",
        reply.head
    );
    let body = reply.json().unwrap_or_else(|| {
        panic!(
            "{}: body is not JSON: {:?}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        )
    });
    Response {
        status: reply.status,
        body,
    }
}

/// Asserts a refusal with one of `allowed` statuses and the contract's error body.
#[track_caller]
fn refused(r: &Response, allowed: &[u16], what: &str) {
    assert!(
        allowed.contains(&r.status),
        "{what}: expected one of {allowed:?}, got {}: {}",
        r.status,
        r.body
    );
    let detail = r.detail();
    assert!(!detail.trim().is_empty(), "{what}: empty detail in {}", r.body);
    let code = r.body["error_code"].as_str().unwrap_or_default();
    assert!(
        !code.is_empty()
            && code
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
        "{what}: error_code is not UPPER_SNAKE: {}",
        r.body
    );
}

/// Asserts some 4xx refusal with the contract's error body.
#[track_caller]
fn client_error(r: &Response, what: &str) {
    assert!(
        (400..500).contains(&r.status),
        "{what}: expected a 4xx, got {}: {}",
        r.status,
        r.body
    );
    refused(r, &[r.status], what);
}
