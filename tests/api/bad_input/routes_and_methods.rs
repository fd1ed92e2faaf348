//! Unknown paths are 404 and known paths with the wrong method 405, both
//! with the error body.

use super::fixture::*;
use super::{call, client_error, refused, request};
use crate::helpers::*;

#[tokio::test]
async fn unknown_routes_are_404_with_error_body() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    let paths = [
        "/nope",
        "/api",
        "/api/v1",
        "/api/v2/health",
        "/api/v1/schools",
        "/api/v1/district/1/schools/2",
        "/api/v1/tenants/1",
        "/api/v1/seats/1/audit/2",
        "/api/v1/seats/1/2/3",
        "/api/v1/users",
        "/api/v1/users/u1",
        "/api/v1/roles/1",
        "/API/V1/HEALTH",
        "/healthz",
        "/%FF",
        "/api/v1/%00",
    ];
    for path in paths {
        for user in [Some(ADMIN), None] {
            let r = request(&f.app, "GET", path, user, None).await;
            refused(&r, &[404], &format!("GET {path} ({user:?})"));
        }
        let r = call(&f.app, "POST", path, b"{}").await;
        refused(&r, &[404], &format!("POST {path}"));
    }
    f.assert_unchanged(&before).await;
}

#[tokio::test]
async fn wrong_methods_are_405_where_the_route_exists() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    let cases = [
        ("DELETE", f.fill("/api/v1/district/{d}")),
        ("PUT", f.fill("/api/v1/district/{d}")),
        ("PATCH", f.fill("/api/v1/district/{d}")),
        ("GET", "/api/v1/district".to_string()),
        ("PUT", "/api/v1/district".to_string()),
        ("DELETE", "/api/v1/district".to_string()),
        ("GET", f.fill("/api/v1/district/{d}/schools")),
        ("DELETE", f.fill("/api/v1/tenant/{s}")),
        ("POST", f.fill("/api/v1/tenant/{s}")),
        ("PATCH", f.fill("/api/v1/tenant/{s}")),
        ("DELETE", f.fill("/api/v1/seats/{seat}")),
        ("PUT", f.fill("/api/v1/seats/{seat}")),
        ("POST", f.fill("/api/v1/seats/{seat}/audit")),
        ("DELETE", "/api/v1/roles".to_string()),
        ("PUT", "/api/v1/roles".to_string()),
        ("POST", format!("/api/v1/users/{FIXTURE_USER}/tenants")),
        ("POST", "/api/v1/health".to_string()),
        ("DELETE", "/health".to_string()),
        ("POST", "/".to_string()),
        ("OPTIONS", "/api/v1/roles".to_string()),
    ];
    for (method, path) in &cases {
        let r = call(&f.app, method, path, b"{}").await;
        refused(&r, &[405], &format!("{method} {path}"));
    }
    // GET on the POST-only seat routes matches /seats/{id} (the word is not an
    // id): any refusal will do.
    for word in ["purchase", "allocate", "reclaim"] {
        for method in ["GET", "PUT", "DELETE"] {
            let path = format!("/api/v1/seats/{word}");
            let r = call(&f.app, method, &path, b"{}").await;
            client_error(&r, &format!("{method} {path}"));
        }
    }
    f.assert_unchanged(&before).await;
}
