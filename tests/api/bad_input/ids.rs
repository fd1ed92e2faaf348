//! Ids and counts out of range, in bodies, paths and query strings. Which
//! strings and numbers make an id or a count is unit-tested beside the types
//! (`domain::ids`, `domain::seat`); here each place an id arrives proves the
//! mapping to a 4xx that changes nothing.

use serde_json::json;

use super::fixture::*;
use super::{call, client_error, refused};

#[tokio::test]
async fn out_of_range_counts_create_no_seats() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    let s = f.school;
    // `SeatCount`'s range is unit-tested (`domain::seat`); "100001" proves its
    // mapping. The rest are not a u64 in JSON, or not a number at all.
    let counts = [
        "100001",
        "-1",
        "-0",
        "18446744073709551616",
        "99999999999999999999999999999",
        "1e30",
        "1e5",
        "2.5",
        "1.0",
        "-9223372036854775808",
        "\"5\"",
        "true",
        "null",
        "[1]",
        "{}",
    ];
    for count in counts {
        let body = format!("{{\"tenant_id\": {s}, \"count\": {count}}}");
        let r = call(&f.app, "POST", "/api/v1/seats/purchase", body.as_bytes()).await;
        refused(&r, &[422], &format!("purchase {body}"));
        let summary = f.app.summary(s).await;
        assert_eq!(summary["total_seats"], json!(5), "after {body}: {summary}");
    }
    let tenant_ids = ["0", "-1", "18446744073709551616", "1.5", "1e3", "\"1\""];
    for t in tenant_ids {
        let body = format!("{{\"tenant_id\": {t}, \"count\": 1}}");
        let r = call(&f.app, "POST", "/api/v1/seats/purchase", body.as_bytes()).await;
        refused(&r, &[422], &format!("purchase {body}"));
    }
    // A well-formed id that names no tenant.
    for t in [999_999u64, u64::MAX] {
        let r = f
            .app
            .post("/api/v1/seats/purchase", json!({"tenant_id": t, "count": 1}))
            .await;
        refused(&r, &[404], &format!("purchase for tenant {t}"));
        assert_eq!(r.detail(), "Tenant not found");
    }
    f.assert_unchanged(&before).await;
}

#[tokio::test]
async fn out_of_range_seat_ids_in_bodies_are_refused() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    for id in ["0", "-1", "18446744073709551616", "1e30", "2.5", "-0.0"] {
        let body = format!("{{\"seat_id\": {id}, \"learner_id\": \"l_new\"}}");
        let r = call(&f.app, "POST", "/api/v1/seats/allocate", body.as_bytes()).await;
        refused(&r, &[422], &format!("allocate {body}"));
        let body = format!("{{\"seat_id\": {id}}}");
        let r = call(&f.app, "POST", "/api/v1/seats/reclaim", body.as_bytes()).await;
        refused(&r, &[422], &format!("reclaim {body}"));
    }
    for id in [999_999u64, u64::MAX] {
        let r = f.app.allocate(id, "l_new").await;
        refused(&r, &[404], &format!("allocate seat {id}"));
        assert_eq!(r.detail(), "Seat not found");
        let r = f.app.reclaim(id, None).await;
        refused(&r, &[404], &format!("reclaim seat {id}"));
        assert_eq!(r.detail(), "Seat not found");
    }
    f.assert_unchanged(&before).await;
}

// ---- ids in paths and queries -------------------------------------------------------

#[tokio::test]
async fn bad_ids_in_paths_are_4xx_with_detail() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    // Which strings are ids is unit-tested (`domain::ids`): "abc" stands for
    // them on every route. The rest are about the path itself: segments
    // arrive percent-encoded, and a valid id may name nothing.
    let bad = [
        "abc",
        "18446744073709551615",
        "%20",
        "%00",
        "%FF",
        "1%2F2",
        "%F0%9F%8F%AB",
        "999999",
    ];
    for id in bad {
        for path in [
            format!("/api/v1/seats/{id}"),
            format!("/api/v1/seats/{id}/audit"),
            format!("/api/v1/tenant/{id}"),
            format!("/api/v1/district/{id}"),
        ] {
            let r = f.app.get(&path).await;
            client_error(&r, &format!("GET {path}"));
        }
        let path = format!("/api/v1/tenant/{id}");
        let r = f.app.put(&path, json!({"name": "Renamed"})).await;
        client_error(&r, &format!("PUT {path}"));
        let path = format!("/api/v1/district/{id}/schools");
        let r = f.app.post(&path, json!({"name": "Orphan"})).await;
        client_error(&r, &format!("POST {path}"));
    }
    // The ones the brief names explicitly, with the statuses a client can rely on.
    for (path, status) in [
        ("/api/v1/seats/0", 422),
        ("/api/v1/seats/-1", 422),
        ("/api/v1/seats/99999999999999999999", 422),
        ("/api/v1/tenant/abc", 422),
        ("/api/v1/district/1.5", 422),
        ("/api/v1/seats/999999", 404),
        ("/api/v1/tenant/999999", 404),
        ("/api/v1/district/999999", 404),
    ] {
        let r = f.app.get(path).await;
        refused(&r, &[status], &format!("GET {path}"));
    }
    // A school is not a district, and a seat id is not a tenant.
    let r = f.app.get(&format!("/api/v1/district/{}", f.school)).await;
    refused(&r, &[404], "GET district of a school");
    assert_eq!(r.detail(), "District not found");
    let r = f
        .app
        .post(
            &format!("/api/v1/district/{}/schools", f.school),
            json!({"name": "Grandchild"}),
        )
        .await;
    refused(&r, &[404], "school under a school");
    assert_eq!(r.detail(), "District not found");
    // Odd user ids in the path are just users without roles.
    for user in ["%FF", "%00", "%20", "a%2Fb", "%F0%9F%8F%AB"] {
        let path = format!("/api/v1/users/{user}/tenants");
        let r = f.app.get(&path).await;
        assert!(
            r.status == 200 || (400..500).contains(&r.status),
            "GET {path}: {} {}",
            r.status,
            r.body
        );
        if r.status == 200 {
            assert_eq!(r.body, json!([]), "GET {path}");
        } else {
            client_error(&r, &format!("GET {path}"));
        }
    }
    f.assert_unchanged(&before).await;
}

#[tokio::test]
async fn bad_tenant_ids_in_queries_are_4xx_with_detail() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    // As in paths, "abc" stands for the id rules (`domain::ids`); the rest are
    // about the query string.
    let queries = [
        "?tenantId=abc",
        "",
        "?",
        "?tenantId=",
        "?tenantId",
        "?tenantId=%FF",
        "?tenantId=%00",
        "?tenantid=1",
        "?tenant_id=1",
        "?tenantId[]=1",
        "?tenantId=1%202",
        "?%zz=%zz",
        "?tenantId=%",
    ];
    for q in queries {
        for route in ["/api/v1/seats/summary", "/api/v1/roles"] {
            let path = format!("{route}{q}");
            let r = f.app.get(&path).await;
            refused(&r, &[400, 422], &format!("GET {path}"));
        }
    }
    f.assert_unchanged(&before).await;
}

// Regression: the summary route's own refusal must not be replaced by the
// /seats/{id} route's "seat_id must be a positive integer" (fixed in c16b878).
#[tokio::test]
async fn summary_refusals_are_the_summary_routes_own() {
    let f = Fixture::new().await;
    let r = f.app.get("/api/v1/seats/summary?tenantId=999999").await;
    refused(&r, &[404], "summary of an unknown tenant");
    assert_eq!(r.detail(), "Tenant not found");
    for q in ["", "?tenantId=", "?tenantId=abc", "?tenantId=0"] {
        let path = format!("/api/v1/seats/summary{q}");
        let r = f.app.get(&path).await;
        refused(&r, &[422], &format!("GET {path}"));
        assert!(
            r.detail().contains("tenantId"),
            "GET {path}: detail does not name tenantId: {}",
            r.body
        );
    }
}
