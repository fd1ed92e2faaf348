//! JSON of the wrong type in a field, and missing fields: 422, naming the
//! field (`parse_json` and serde, before any domain rule is looked at).

use serde_json::{json, Value};

use super::fixture::*;
use super::{call, refused};

#[tokio::test]
async fn wrong_types_and_missing_fields_are_422() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    let (s, seat, free) = (f.school, f.assigned(), f.free());
    let cases: Vec<(&str, String, Value)> = vec![
        // district / school names
        ("POST", "/api/v1/district".into(), json!({})),
        ("POST", "/api/v1/district".into(), json!({"name": null})),
        ("POST", "/api/v1/district".into(), json!({"name": 42})),
        ("POST", "/api/v1/district".into(), json!({"name": 4.2})),
        ("POST", "/api/v1/district".into(), json!({"name": true})),
        ("POST", "/api/v1/district".into(), json!({"name": ["a"]})),
        ("POST", "/api/v1/district".into(), json!({"name": {"first": "a"}})),
        ("POST", "/api/v1/district".into(), json!({"Name": "wrong case"})),
        ("POST", f.fill("/api/v1/district/{d}/schools"), json!({})),
        ("POST", f.fill("/api/v1/district/{d}/schools"), json!({"name": null})),
        ("POST", f.fill("/api/v1/district/{d}/schools"), json!({"name": 7})),
        // tenant update
        ("PUT", format!("/api/v1/tenant/{s}"), json!({"name": 1})),
        ("PUT", format!("/api/v1/tenant/{s}"), json!({"name": false})),
        ("PUT", format!("/api/v1/tenant/{s}"), json!({"is_active": "yes"})),
        ("PUT", format!("/api/v1/tenant/{s}"), json!({"is_active": 0})),
        ("PUT", format!("/api/v1/tenant/{s}"), json!({"is_active": "false"})),
        (
            "PUT",
            format!("/api/v1/tenant/{s}"),
            json!({"name": "ok", "is_active": []}),
        ),
        // purchase
        ("POST", "/api/v1/seats/purchase".into(), json!({})),
        ("POST", "/api/v1/seats/purchase".into(), json!({"tenant_id": s})),
        ("POST", "/api/v1/seats/purchase".into(), json!({"count": 1})),
        (
            "POST",
            "/api/v1/seats/purchase".into(),
            json!({"tenant_id": s.to_string(), "count": 1}),
        ),
        (
            "POST",
            "/api/v1/seats/purchase".into(),
            json!({"tenant_id": s, "count": "1"}),
        ),
        (
            "POST",
            "/api/v1/seats/purchase".into(),
            json!({"tenant_id": s as f64 + 0.5, "count": 1}),
        ),
        (
            "POST",
            "/api/v1/seats/purchase".into(),
            json!({"tenant_id": true, "count": 1}),
        ),
        (
            "POST",
            "/api/v1/seats/purchase".into(),
            json!({"tenant_id": s, "count": true}),
        ),
        (
            "POST",
            "/api/v1/seats/purchase".into(),
            json!({"tenant_id": null, "count": 1}),
        ),
        (
            "POST",
            "/api/v1/seats/purchase".into(),
            json!({"tenant_id": s, "count": null}),
        ),
        (
            "POST",
            "/api/v1/seats/purchase".into(),
            json!({"tenant_id": [s], "count": 1}),
        ),
        (
            "POST",
            "/api/v1/seats/purchase".into(),
            json!({"tenant_id": {"id": s}, "count": 1}),
        ),
        // allocate
        ("POST", "/api/v1/seats/allocate".into(), json!({})),
        ("POST", "/api/v1/seats/allocate".into(), json!({"seat_id": free})),
        ("POST", "/api/v1/seats/allocate".into(), json!({"learner_id": "l1"})),
        (
            "POST",
            "/api/v1/seats/allocate".into(),
            json!({"seat_id": free.to_string(), "learner_id": "l1"}),
        ),
        (
            "POST",
            "/api/v1/seats/allocate".into(),
            json!({"seat_id": free as f64 + 0.5, "learner_id": "l1"}),
        ),
        (
            "POST",
            "/api/v1/seats/allocate".into(),
            json!({"seat_id": free, "learner_id": 123}),
        ),
        (
            "POST",
            "/api/v1/seats/allocate".into(),
            json!({"seat_id": free, "learner_id": null}),
        ),
        (
            "POST",
            "/api/v1/seats/allocate".into(),
            json!({"seat_id": free, "learner_id": true}),
        ),
        (
            "POST",
            "/api/v1/seats/allocate".into(),
            json!({"seat_id": null, "learner_id": "l1"}),
        ),
        (
            "POST",
            "/api/v1/seats/allocate".into(),
            json!({"seat_id": false, "learner_id": "l1"}),
        ),
        (
            "POST",
            "/api/v1/seats/allocate".into(),
            json!({"seat_id": free, "learner_id": ["l1"]}),
        ),
        // reclaim
        ("POST", "/api/v1/seats/reclaim".into(), json!({})),
        ("POST", "/api/v1/seats/reclaim".into(), json!({"reason": "no seat"})),
        (
            "POST",
            "/api/v1/seats/reclaim".into(),
            json!({"seat_id": seat.to_string()}),
        ),
        (
            "POST",
            "/api/v1/seats/reclaim".into(),
            json!({"seat_id": seat as f64 + 0.5}),
        ),
        ("POST", "/api/v1/seats/reclaim".into(), json!({"seat_id": null})),
        ("POST", "/api/v1/seats/reclaim".into(), json!({"seat_id": true})),
        (
            "POST",
            "/api/v1/seats/reclaim".into(),
            json!({"seat_id": seat, "reason": 5}),
        ),
        (
            "POST",
            "/api/v1/seats/reclaim".into(),
            json!({"seat_id": seat, "reason": false}),
        ),
        (
            "POST",
            "/api/v1/seats/reclaim".into(),
            json!({"seat_id": seat, "reason": ["why"]}),
        ),
        // roles
        ("POST", "/api/v1/roles".into(), json!({})),
        (
            "POST",
            "/api/v1/roles".into(),
            json!({"tenant_id": s, "role": "teacher"}),
        ),
        (
            "POST",
            "/api/v1/roles".into(),
            json!({"user_id": "u1", "role": "teacher"}),
        ),
        ("POST", "/api/v1/roles".into(), json!({"user_id": "u1", "tenant_id": s})),
        (
            "POST",
            "/api/v1/roles".into(),
            json!({"user_id": 17, "tenant_id": s, "role": "teacher"}),
        ),
        (
            "POST",
            "/api/v1/roles".into(),
            json!({"user_id": null, "tenant_id": s, "role": "teacher"}),
        ),
        (
            "POST",
            "/api/v1/roles".into(),
            json!({"user_id": "u1", "tenant_id": s.to_string(), "role": "teacher"}),
        ),
        (
            "POST",
            "/api/v1/roles".into(),
            json!({"user_id": "u1", "tenant_id": null, "role": "teacher"}),
        ),
        (
            "POST",
            "/api/v1/roles".into(),
            json!({"user_id": "u1", "tenant_id": 1.5, "role": "teacher"}),
        ),
    ];
    for (method, path, body) in &cases {
        let r = call(&f.app, method, path, body.to_string().as_bytes()).await;
        refused(&r, &[422], &format!("{method} {path} {body}"));
    }
    f.assert_unchanged(&before).await;
}

#[tokio::test]
async fn type_errors_name_the_offending_field() {
    let f = Fixture::new().await;
    let cases = [
        ("/api/v1/seats/purchase", json!({"tenant_id": f.school}), "count"),
        (
            "/api/v1/seats/purchase",
            json!({"tenant_id": f.school, "count": "3"}),
            "count",
        ),
        (
            "/api/v1/seats/purchase",
            json!({"tenant_id": "x", "count": 3}),
            "tenant_id",
        ),
        ("/api/v1/seats/allocate", json!({"seat_id": f.free()}), "learner_id"),
        (
            "/api/v1/seats/allocate",
            json!({"seat_id": f.free(), "learner_id": 1}),
            "learner_id",
        ),
        (
            "/api/v1/seats/reclaim",
            json!({"seat_id": f.assigned(), "reason": 1}),
            "reason",
        ),
        (
            "/api/v1/roles",
            json!({"user_id": "u", "tenant_id": f.school, "role": "root"}),
            "role",
        ),
        ("/api/v1/district", json!({"name": 1}), "name"),
    ];
    for (path, body, field) in cases {
        let r = f.app.post(path, body.clone()).await;
        refused(&r, &[422], &format!("POST {path} {body}"));
        assert!(
            r.detail().contains(field),
            "POST {path} {body}: detail does not name {field}: {}",
            r.body
        );
    }
}

#[tokio::test]
async fn role_of_the_wrong_json_type_is_422() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    let mut wrong = Vec::new();
    for role in [
        Value::Null,
        json!(1),
        json!(true),
        json!(["teacher"]),
        json!({"teacher": null}),
        json!(2.5),
    ] {
        let body = json!({"user_id": "u_new", "tenant_id": f.school, "role": role});
        let r = f.app.post("/api/v1/roles", body.clone()).await;
        if r.status != 422 {
            wrong.push(format!("POST /api/v1/roles {body}: {} {}", r.status, r.body));
        } else {
            refused(&r, &[422], &format!("role {role}"));
        }
    }
    assert!(wrong.is_empty(), "not 422:\n{}", wrong.join("\n"));
    f.assert_unchanged(&before).await;
}
