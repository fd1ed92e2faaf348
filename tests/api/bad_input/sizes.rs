//! Bodies over the size limit are 413 on every body route.

use serde_json::json;

use super::fixture::*;
use super::{call, refused};

const BIG: usize = 1024 * 1024;

/// About 1 MB of valid JSON for a route.
fn big_body(f: &Fixture, template: &str) -> Vec<u8> {
    let mut body = f.valid_body(template);
    if let Some(obj) = body.as_object_mut() {
        obj.insert("padding".into(), json!("p".repeat(BIG)));
    }
    body.to_string().into_bytes()
}

#[tokio::test]
async fn oversized_body_is_413_on_post_district() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    let huge_name = json!({"name": "n".repeat(BIG)}).to_string().into_bytes();
    let r = call(&f.app, "POST", "/api/v1/district", &huge_name).await;
    refused(&r, &[413], "POST /api/v1/district with a 1 MB name");
    let r = call(&f.app, "POST", "/api/v1/district", &big_body(&f, "/api/v1/district")).await;
    refused(&r, &[413], "POST /api/v1/district with 1 MB of padding");
    let path = f.fill("/api/v1/district/{d}/schools");
    let r = call(&f.app, "POST", &path, &big_body(&f, "/api/v1/district/{d}/schools")).await;
    refused(&r, &[413], &format!("POST {path} with 1 MB"));
    // Just over the limit, and not JSON at all: the size is refused first.
    let r = call(&f.app, "POST", "/api/v1/district", &vec![b'{'; 65_537]).await;
    refused(&r, &[413], "POST /api/v1/district with 65537 bytes");
    // Just under the limit is read (and refused for what it says, not its size).
    let mut under = b"{\"name\": \"".to_vec();
    under.resize(65_000, b'a');
    under.extend_from_slice(b"\"}");
    let r = call(&f.app, "POST", "/api/v1/district", &under).await;
    refused(&r, &[422], "POST /api/v1/district with a 65 kB name");
    f.assert_unchanged(&before).await;
}

#[tokio::test]
async fn oversized_body_is_413_on_every_body_route() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    let mut wrong = Vec::new();
    for (method, template) in BODY_ROUTES {
        let path = f.fill(template);
        let r = call(&f.app, method, &path, &big_body(&f, template)).await;
        if r.status != 413 {
            wrong.push(format!("{method} {path}: {} {}", r.status, r.body));
        } else {
            refused(&r, &[413], &format!("{method} {path} with 1 MB"));
        }
    }
    f.assert_unchanged(&before).await;
    assert!(wrong.is_empty(), "not 413 for a 1 MB body:\n{}", wrong.join("\n"));
}
