//! Bodies that are not one JSON object: malformed JSON, stray bytes after
//! the object, and arrays whose items line up with a body's fields.

use serde_json::json;

use super::fixture::*;
use super::{call, refused};

#[tokio::test]
async fn malformed_json_bodies_are_refused_on_every_body_route() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    // Not JSON at all: 400 or 422.
    let not_json: &[&[u8]] = &[
        b"{bad",
        b"{\"name\": \"trunc",
        b"{\"tenant_id\": 1, \"count\":",
        b"{\"seat_id\": 1,",
        b"{",
        b"hello world",
        b"<xml/>",
        b"",
        b"   \n\t ",
        b"{'name': 'single quotes'}",
        b"{name: \"unquoted key\"}",
        b"{\"name\": \"x\",}",
        b"\xff\xfe\x00garbage",
        b"{\"name\": \"\xff\xfe\"}",
        b"{\"name\": \"\\ud800\"}",
        b"NaN",
        b"{\"count\": NaN}",
    ];
    // JSON, but not an object: 422 (the contract: wrong types are 422).
    // (Arrays that match a body's fields by position: see
    // `json_array_bodies_are_not_taken_as_objects`.)
    let not_object: &[&[u8]] = &[
        b"[]",
        b"[{\"name\": \"x\"}]",
        b"[[]]",
        b"42",
        b"-1.5",
        b"\"a string\"",
        b"null",
        b"true",
    ];
    for (method, template) in BODY_ROUTES {
        let path = f.fill(template);
        for body in not_json {
            // The helper's raw POST where it can (it sends no Content-Length for an empty body).
            let r = if *method == "POST" && !body.is_empty() {
                f.app.post_raw(&path, body.to_vec()).await
            } else {
                call(&f.app, method, &path, body).await
            };
            refused(
                &r,
                &[400, 422],
                &format!("{method} {path} {:?}", String::from_utf8_lossy(body)),
            );
        }
        for body in not_object {
            let r = call(&f.app, method, &path, body).await;
            refused(
                &r,
                &[422],
                &format!("{method} {path} {:?}", String::from_utf8_lossy(body)),
            );
        }
    }
    f.assert_unchanged(&before).await;
}

#[tokio::test]
async fn trailing_bytes_after_the_json_body_are_refused() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    let mut wrong = Vec::new();
    for (method, template) in BODY_ROUTES {
        let path = f.fill(template);
        let valid = f.valid_body(template).to_string();
        for tail in [" trailing", "{\"name\": \"y\"}", "]", ",", "}", " 42", "\u{0}"] {
            let body = format!("{valid}{tail}");
            let r = call(&f.app, method, &path, body.as_bytes()).await;
            if ![400, 422].contains(&r.status) {
                wrong.push(format!("{method} {path} {body:?}: {} {}", r.status, r.body));
            }
        }
    }
    assert!(wrong.is_empty(), "accepted with trailing bytes:\n{}", wrong.join("\n"));
    f.assert_unchanged(&before).await;
}

#[tokio::test]
async fn json_array_bodies_are_not_taken_as_objects() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    let (s, free, seat) = (f.school, f.free(), f.assigned());
    let cases = [
        ("POST", "/api/v1/district".to_string(), json!(["Array District"])),
        ("POST", f.fill("/api/v1/district/{d}/schools"), json!(["Array School"])),
        ("PUT", format!("/api/v1/tenant/{s}"), json!(["Array Rename", false])),
        ("POST", "/api/v1/seats/purchase".to_string(), json!([s, 2])),
        (
            "POST",
            "/api/v1/seats/allocate".to_string(),
            json!([free, "array_learner"]),
        ),
        (
            "POST",
            "/api/v1/seats/reclaim".to_string(),
            json!([seat, "array reason"]),
        ),
        ("POST", "/api/v1/roles".to_string(), json!(["array_user", s, "admin"])),
    ];
    let mut wrong = Vec::new();
    for (method, path, body) in &cases {
        let r = call(&f.app, method, path, body.to_string().as_bytes()).await;
        if r.status != 422 {
            wrong.push(format!("{method} {path} {body}: {} {}", r.status, r.body));
        }
    }
    assert!(wrong.is_empty(), "array bodies accepted:\n{}", wrong.join("\n"));
    f.assert_unchanged(&before).await;
}
