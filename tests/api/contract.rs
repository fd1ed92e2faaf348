//! Every route of API.md: fields, enum strings, status codes, error sentences.

use serde_json::{json, Value};

use super::helpers::*;

fn assert_tenant_shape(t: &Value) {
    for field in [
        "id",
        "name",
        "kind",
        "parent_id",
        "created_at",
        "updated_at",
        "is_active",
    ] {
        assert!(t.get(field).is_some(), "tenant lacks {field}: {t}");
    }
    for ts in ["created_at", "updated_at"] {
        let s = t[ts].as_str().unwrap_or_else(|| panic!("{ts} not a string: {t}"));
        assert!(chrono_like(s), "{ts} is not RFC 3339 with an offset: {s}");
    }
}

/// `2026-09-01T08:00:00.123456Z`: date, time, fraction, offset.
fn chrono_like(s: &str) -> bool {
    s.len() >= 20 && s.as_bytes()[4] == b'-' && s.as_bytes()[10] == b'T' && (s.ends_with('Z') || s.contains('+'))
}

const SEAT_FIELDS: [&str; 8] = [
    "id",
    "tenant_id",
    "state",
    "learner_id",
    "reserved_at",
    "assigned_at",
    "created_at",
    "updated_at",
];

#[tokio::test]
async fn health_routes_need_no_identity() {
    let app = TestApp::spawn().await;
    let root = app.send(app.client.get(app.url("/"))).await;
    assert_eq!(root.status, 200);
    assert_eq!(root.body["service"], "tenant-svc");
    assert_eq!(root.body["status"], "running");
    assert!(root.body["version"].is_string());
    assert!(app.healthy().await);
    let api = app.send(app.client.get(app.url("/api/v1/health"))).await;
    assert_eq!(
        (api.status, api.body),
        (200, json!({"message": "Tenant service is healthy"}))
    );
}

#[tokio::test]
async fn districts_and_schools() {
    let app = TestApp::spawn().await;
    let r = app
        .post("/api/v1/district", json!({"name": "Springfield District"}))
        .await;
    assert_eq!(r.status, 201);
    assert_tenant_shape(&r.body);
    assert_eq!(r.body["kind"], "district");
    assert_eq!(r.body["parent_id"], Value::Null);
    assert_eq!(r.body["is_active"], true);
    let district = r.id();

    let s = app
        .post(
            &format!("/api/v1/district/{district}/schools"),
            json!({"name": "Springfield Elementary"}),
        )
        .await;
    assert_eq!(s.status, 201);
    assert_tenant_shape(&s.body);
    assert_eq!(
        (s.body["kind"].clone(), s.body["parent_id"].clone()),
        (json!("school"), json!(district))
    );
    let school = s.id();
    let second = app.school(district, "Springfield High").await;

    let d = app.get(&format!("/api/v1/district/{district}")).await;
    assert_eq!(d.status, 200);
    assert_tenant_shape(&d.body);
    let children: Vec<u64> = d.body["children"]
        .as_array()
        .map(|c| c.iter().filter_map(|t| t["id"].as_u64()).collect())
        .unwrap_or_default();
    assert_eq!(children, vec![school, second]);

    // A school is not a district: 404 on read and as a parent (no third level).
    let r = app.get(&format!("/api/v1/district/{school}")).await;
    assert_eq!((r.status, r.detail()), (404, "District not found"));
    let r = app
        .post(&format!("/api/v1/district/{school}/schools"), json!({"name": "Nested"}))
        .await;
    assert_eq!((r.status, r.detail()), (404, "District not found"));
    let r = app
        .post("/api/v1/district/999999/schools", json!({"name": "Orphan"}))
        .await;
    assert_eq!((r.status, r.detail()), (404, "District not found"));
    let r = app.get("/api/v1/district/999999").await;
    assert_eq!((r.status, r.detail()), (404, "District not found"));

    // Refused creations left nothing behind.
    let d = app.get(&format!("/api/v1/district/{district}")).await;
    assert_eq!(d.body["children"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn tenants_read_and_update() {
    let app = TestApp::spawn().await;
    let district = app.district("Shelbyville").await;
    let school = app.school(district, "Shelbyville Elementary").await;

    let t = app.get(&format!("/api/v1/tenant/{school}")).await;
    assert_eq!(t.status, 200);
    assert_tenant_shape(&t.body);
    assert!(t.body.get("children").is_none(), "GET /tenant has no children field");
    assert_eq!(t.body["name"], "Shelbyville Elementary");

    let u = app
        .put(
            &format!("/api/v1/tenant/{school}"),
            json!({"name": "Renamed", "is_active": false}),
        )
        .await;
    assert_eq!(u.status, 200);
    assert_eq!(
        (u.body["name"].clone(), u.body["is_active"].clone()),
        (json!("Renamed"), json!(false))
    );
    assert!(u.body["updated_at"].as_str() >= t.body["updated_at"].as_str());
    assert_eq!(u.body["created_at"], t.body["created_at"]);

    // Partial update keeps the other field.
    let u = app
        .put(&format!("/api/v1/tenant/{school}"), json!({"is_active": true}))
        .await;
    assert_eq!(
        (u.body["name"].clone(), u.body["is_active"].clone()),
        (json!("Renamed"), json!(true))
    );
    assert_eq!(app.get(&format!("/api/v1/tenant/{school}")).await.body, u.body);

    let r = app.get("/api/v1/tenant/424242").await;
    assert_eq!((r.status, r.detail()), (404, "Tenant not found"));
    let r = app.put("/api/v1/tenant/424242", json!({"name": "x"})).await;
    assert_eq!((r.status, r.detail()), (404, "Tenant not found"));
    let r = app.put(&format!("/api/v1/tenant/{school}"), json!({"name": ""})).await;
    assert_eq!(r.status, 422);
    assert_eq!(
        app.get(&format!("/api/v1/tenant/{school}")).await.body["name"],
        "Renamed"
    );
}

#[tokio::test]
async fn seat_routes_and_error_sentences() {
    let app = TestApp::spawn().await;
    let district = app.district("D").await;
    let school = app.school(district, "S").await;

    let r = app
        .post("/api/v1/seats/purchase", json!({"tenant_id": school, "count": 3}))
        .await;
    assert_eq!(r.status, 201);
    let seats = r.body.as_array().cloned().unwrap_or_default();
    assert_eq!(seats.len(), 3);
    for s in &seats {
        for f in SEAT_FIELDS {
            assert!(s.get(f).is_some(), "seat lacks {f}: {s}");
        }
        assert_eq!(s["state"], "free");
        assert_eq!(s["tenant_id"], json!(school));
        assert_eq!(
            (s["learner_id"].clone(), s["assigned_at"].clone()),
            (Value::Null, Value::Null)
        );
    }
    let ids: Vec<u64> = seats.iter().filter_map(|s| s["id"].as_u64()).collect();

    let r = app
        .post("/api/v1/seats/purchase", json!({"tenant_id": 987654, "count": 1}))
        .await;
    assert_eq!((r.status, r.detail()), (404, "Tenant not found"));

    let a = app.allocate(ids[0], "learner_123").await;
    assert_eq!(a.status, 200);
    assert_eq!(
        (a.body["state"].clone(), a.body["learner_id"].clone()),
        (json!("assigned"), json!("learner_123"))
    );
    assert!(a.body["assigned_at"].is_string());
    assert_eq!(app.seat(ids[0]).await, a.body);

    let r = app.allocate(ids[0], "learner_456").await;
    assert_eq!(
        (r.status, r.detail()),
        (400, "Seat is not available. Current state: assigned")
    );
    let r = app.allocate(ids[1], "learner_123").await;
    assert_eq!(
        (r.status, r.detail()),
        (400, "Learner already has a seat in this tenant")
    );
    let r = app.allocate(999_999, "learner_9").await;
    assert_eq!((r.status, r.detail()), (404, "Seat not found"));

    let summary = app.summary(school).await;
    assert_eq!(
        summary,
        // `expired_seats` is an addition (license terms); the rest is the contract's.
        json!({"tenant_id": school, "tenant_name": "S", "total_seats": 3, "free_seats": 2,
               "reserved_seats": 0, "assigned_seats": 1, "utilization_percentage": 33.33,
               "expired_seats": 0})
    );

    let c = app.reclaim(ids[0], Some("Learner left")).await;
    assert_eq!(c.status, 200);
    assert_eq!(c.body["state"], "free");
    for f in ["learner_id", "reserved_at", "assigned_at"] {
        assert_eq!(c.body[f], Value::Null, "reclaim clears {f}");
    }
    let r = app.reclaim(ids[0], None).await;
    assert_eq!((r.status, r.detail()), (400, "Seat is already free"));
    let r = app.reclaim(999_999, None).await;
    assert_eq!((r.status, r.detail()), (404, "Seat not found"));

    let r = app.get("/api/v1/seats/999999").await;
    assert_eq!((r.status, r.detail()), (404, "Seat not found"));
    let r = app.get("/api/v1/seats/summary?tenantId=999999").await;
    assert_eq!((r.status, r.detail()), (404, "Tenant not found"));
    let r = app.get("/api/v1/seats/999999/audit").await;
    assert_eq!((r.status, r.detail()), (404, "Seat not found"));

    let empty = app.district("Empty").await;
    let s = app.summary(empty).await;
    assert_eq!(
        (s["total_seats"].clone(), s["utilization_percentage"].clone()),
        (json!(0), json!(0.0))
    );
}

#[tokio::test]
async fn audit_records_every_change_with_contract_reasons() {
    let app = TestApp::spawn().await;
    let district = app.district("D").await;
    let seat = app.purchase(district, 1).await[0];
    assert_eq!(app.allocate(seat, "learner_1").await.status, 200);
    assert_eq!(app.reclaim(seat, None).await.status, 200);
    assert_eq!(app.allocate(seat, "learner_2").await.status, 200);
    assert_eq!(app.reclaim(seat, Some("Moved school")).await.status, 200);

    let audit = app.audit(seat).await;
    let steps: Vec<(Value, Value, Value, Value, Value)> = audit
        .iter()
        .map(|a| {
            (
                a["previous_state"].clone(),
                a["new_state"].clone(),
                a["previous_learner_id"].clone(),
                a["new_learner_id"].clone(),
                a["reason"].clone(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            (
                Value::Null,
                json!("free"),
                Value::Null,
                Value::Null,
                json!("Seat purchased")
            ),
            (
                json!("free"),
                json!("assigned"),
                Value::Null,
                json!("learner_1"),
                json!("Seat allocated to learner")
            ),
            (
                json!("assigned"),
                json!("free"),
                json!("learner_1"),
                Value::Null,
                json!("Seat reclaimed")
            ),
            (
                json!("free"),
                json!("assigned"),
                Value::Null,
                json!("learner_2"),
                json!("Seat allocated to learner")
            ),
            (
                json!("assigned"),
                json!("free"),
                json!("learner_2"),
                Value::Null,
                json!("Moved school")
            ),
        ]
    );
    let ids: Vec<u64> = audit.iter().filter_map(|a| a["id"].as_u64()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first, unique ids: {ids:?}");
    for a in &audit {
        assert_eq!(a["seat_id"], json!(seat));
        assert_eq!(a["changed_by"], ADMIN);
        assert!(a["created_at"].is_string());
    }
}

#[tokio::test]
async fn roles_per_tenant_and_per_user() {
    let app = TestApp::spawn().await;
    let district = app.district("D").await;
    let school = app.school(district, "S").await;

    let r = app
        .post(
            "/api/v1/roles",
            json!({"user_id": "teacher_123", "tenant_id": district, "role": "teacher"}),
        )
        .await;
    assert_eq!(r.status, 201);
    for f in ["id", "user_id", "tenant_id", "role", "created_at", "is_active"] {
        assert!(r.body.get(f).is_some(), "role lacks {f}: {}", r.body);
    }
    assert_eq!(
        (r.body["role"].clone(), r.body["is_active"].clone()),
        (json!("teacher"), json!(true))
    );

    let dup = app
        .post(
            "/api/v1/roles",
            json!({"user_id": "teacher_123", "tenant_id": district, "role": "admin"}),
        )
        .await;
    assert_eq!(
        (dup.status, dup.detail()),
        (400, "User already has an active role in this tenant")
    );
    // A different role in a different tenant is fine.
    let other = app
        .post(
            "/api/v1/roles",
            json!({"user_id": "teacher_123", "tenant_id": school, "role": "manager"}),
        )
        .await;
    assert_eq!(other.status, 201);
    let missing = app
        .post(
            "/api/v1/roles",
            json!({"user_id": "u", "tenant_id": 777777, "role": "admin"}),
        )
        .await;
    assert_eq!((missing.status, missing.detail()), (404, "Tenant not found"));
    for role in ["admin", "manager", "learner"] {
        let user = format!("user_{role}");
        let r = app
            .post(
                "/api/v1/roles",
                json!({"user_id": user, "tenant_id": school, "role": role}),
            )
            .await;
        assert_eq!((r.status, r.body["role"].clone()), (201, json!(role)));
    }

    let listed = app.get(&format!("/api/v1/roles?tenantId={district}")).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body, json!([r.body]));
    let listed = app.get(&format!("/api/v1/roles?tenantId={school}")).await;
    assert_eq!(listed.body.as_array().map(Vec::len), Some(4));

    let mine = app.get("/api/v1/users/teacher_123/tenants").await;
    assert_eq!(mine.status, 200);
    let tenants: Vec<u64> = mine
        .body
        .as_array()
        .unwrap_or(&vec![])
        .iter()
        .filter_map(|r| r["tenant_id"].as_u64())
        .collect();
    assert_eq!(tenants, vec![district, school]);
    let nobody = app.get("/api/v1/users/nobody/tenants").await;
    assert_eq!((nobody.status, nobody.body), (200, json!([])));
    let spaced = app
        .post(
            "/api/v1/roles",
            json!({"user_id": "user with space", "tenant_id": district, "role": "learner"}),
        )
        .await;
    assert_eq!(spaced.status, 201);
    let r = app.get("/api/v1/users/user%20with%20space/tenants").await;
    assert_eq!(r.body.as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn framework_errors_use_the_error_body() {
    let app = TestApp::spawn().await;
    let r = app.get("/api/v1/nothing-here").await;
    assert_eq!((r.status, r.body["error_code"].clone()), (404, json!("NOT_FOUND")));
    r.detail();
    let r = app
        .send(
            app.client
                .delete(app.url("/api/v1/district"))
                .header("X-User-ID", ADMIN),
        )
        .await;
    assert_eq!(r.status, 405);
    r.detail();
    let r = app
        .send(app.client.post(app.url("/api/v1/district")).json(&json!({"name": "x"})))
        .await;
    assert_eq!((r.status, r.body["error_code"].clone()), (401, json!("UNAUTHORIZED")));
    let r = app
        .send(app.client.get(app.url("/api/v1/tenant/1")).header("X-User-ID", "  "))
        .await;
    assert_eq!(r.status, 401);
}
