//! Identity: every API route wants a usable `X-User-ID` before anything
//! else is looked at; the health routes want none.

use serde_json::{json, Value};

use super::fixture::*;
use super::{refused, request};
use crate::helpers::*;

/// Every /api/v1 route but health: (method, path template, body).
fn identified_routes(f: &Fixture) -> Vec<(&'static str, String, Option<Value>)> {
    let mut routes: Vec<(&'static str, String, Option<Value>)> = vec![
        ("GET", f.fill("/api/v1/district/{d}"), None),
        ("GET", f.fill("/api/v1/tenant/{s}"), None),
        ("GET", f.fill("/api/v1/seats/summary?tenantId={s}"), None),
        ("GET", f.fill("/api/v1/seats/{seat}"), None),
        ("GET", f.fill("/api/v1/seats/{seat}/audit"), None),
        ("GET", f.fill("/api/v1/roles?tenantId={s}"), None),
        ("GET", format!("/api/v1/users/{FIXTURE_USER}/tenants"), None),
        // Bad ids and bad queries: identity is checked first, whatever else is wrong.
        ("GET", "/api/v1/seats/abc".into(), None),
        ("GET", "/api/v1/seats/summary".into(), None),
        ("GET", "/api/v1/district/0".into(), None),
    ];
    for (method, template) in BODY_ROUTES {
        routes.push((method, f.fill(template), Some(f.valid_body(template))));
    }
    // A bad body is not looked at before the identity.
    routes.push(("POST", "/api/v1/district".into(), Some(json!({"name": ""}))));
    routes.push(("POST", "/api/v1/seats/purchase".into(), Some(json!([1]))));
    routes
}

#[tokio::test]
async fn missing_or_blank_identity_is_401_on_every_api_route() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    for (method, path, body) in identified_routes(&f) {
        let body = body.map(|b| b.to_string().into_bytes());
        for user in [None, Some(""), Some("   "), Some("\t")] {
            let r = request(&f.app, method, &path, user, body.clone()).await;
            refused(&r, &[401], &format!("{method} {path} with X-User-ID {user:?}"));
        }
    }
    f.assert_unchanged(&before).await;
}

#[tokio::test]
async fn health_routes_need_no_identity() {
    let app = TestApp::spawn().await;
    for (path, expected) in [
        ("/", None),
        ("/health", Some(json!({"status": "healthy"}))),
        ("/api/v1/health", Some(json!({"message": "Tenant service is healthy"}))),
    ] {
        for user in [None, Some(""), Some(ADMIN)] {
            let r = request(&app, "GET", path, user, None).await;
            assert_eq!(r.status, 200, "GET {path} with {user:?}: {}", r.body);
            if let Some(expected) = &expected {
                assert_eq!(&r.body, expected, "GET {path}");
            } else {
                assert_eq!(r.body["service"], json!("tenant-svc"));
                assert_eq!(r.body["status"], json!("running"));
            }
        }
    }
}

#[tokio::test]
async fn non_ascii_identity_header_is_401() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    let mut wrong = Vec::new();
    for (method, path, body) in identified_routes(&f) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let value = reqwest::header::HeaderValue::from_bytes(b"caf\xe9").unwrap_or_else(|e| panic!("{e}"));
        let mut req = f
            .app
            .client
            .request(method.clone(), f.app.url(&path))
            .header("X-User-ID", value);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let r = f.app.send(req).await;
        if r.status != 401 {
            wrong.push(format!("{method} {path}: {} {}", r.status, r.body));
        } else {
            refused(&r, &[401], &format!("{method} {path} with a non-ASCII X-User-ID"));
        }
    }
    f.assert_unchanged(&before).await;
    assert!(
        wrong.is_empty(),
        "not 401 with a non-ASCII X-User-ID:\n{}",
        wrong.join("\n")
    );
}
