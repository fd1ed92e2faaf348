//! Framing a client library will not send: no body and no Content-Length,
//! bodies cut short, chunked garbage and chunked valid JSON, over raw sockets.

use serde_json::json;

use super::fixture::*;
use super::{client_error, raw_http, raw_request, refused};
use crate::raw;

#[tokio::test]
async fn post_without_body_or_content_length_is_422() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    let mut wrong = Vec::new();
    for (method, template) in BODY_ROUTES {
        let path = f.fill(template);
        let r = raw_http(&f.app, &raw_request(&f.app, method, &path, &[], "")).await;
        if r.status != 422 {
            wrong.push(format!(
                "{method} {path} (no body, no Content-Length): {} {}",
                r.status, r.body
            ));
        }
    }
    assert!(wrong.is_empty(), "not 422:\n{}", wrong.join("\n"));
    f.assert_unchanged(&before).await;
}

#[tokio::test]
async fn chunked_and_lengthless_bodies_are_never_5xx() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    for (method, template) in BODY_ROUTES {
        let path = f.fill(template);
        // A body with no Content-Length at all, cut short by the closing socket.
        let request = raw_request(&f.app, method, &path, &[], "{\"name\": ");
        let r = raw_http(&f.app, &request).await;
        client_error(&r, &format!("{method} {path} body without Content-Length"));
        // Chunked garbage: refused, whatever the reason.
        let chunked = raw_request(
            &f.app,
            method,
            &path,
            &["Transfer-Encoding: chunked"],
            "5\r\n{bad}\r\n0\r\n\r\n",
        );
        let r = raw_http(&f.app, &chunked).await;
        client_error(&r, &format!("{method} {path} chunked garbage"));
    }
    // A Content-Length that lies (says more than is sent) must not hang or crash the server.
    let request = raw_request(&f.app, "POST", "/api/v1/district", &["Content-Length: 20"], "{\"na");
    // Hang up half way through the body.
    raw::send_and_hang_up(f.app.addr, request.as_bytes()).await;
    f.assert_unchanged(&before).await;
}

#[tokio::test]
async fn chunked_valid_json_is_created_or_refused_with_411() {
    let f = Fixture::new().await;
    let body = "{\"name\": \"Chunked District\"}";
    let chunked = format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
    let request = raw_request(
        &f.app,
        "POST",
        "/api/v1/district",
        &["Transfer-Encoding: chunked"],
        &chunked,
    );
    let r = raw_http(&f.app, &request).await;
    if r.status == 201 {
        assert_eq!(r.body["name"], json!("Chunked District"));
    } else {
        refused(&r, &[411], "chunked POST /api/v1/district");
    }
    assert!(f.app.healthy().await);
}
