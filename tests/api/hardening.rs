//! Defects an adversarial review found in the engine's rules and in input
//! checks (each test failed before its fix): a role that could not be
//! revoked in an inactive tenant, writes that ignored inactivity, control
//! characters in audit reasons, a required field taken as "clear", and
//! `HEAD` refused where `GET` is allowed.

use serde_json::{json, Value};

use super::helpers::*;

const ROOT: &str = "root";

async fn as_user(app: &TestApp, user: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> Response {
    let mut req = app.client.request(method, app.url(path)).header("X-User-ID", user);
    if let Some(b) = body {
        req = req.json(&b);
    }
    app.send(req).await
}

#[tokio::test]
async fn a_school_admin_cannot_make_her_role_unrevocable_by_deactivating_her_school() {
    let app = TestApp::spawn_with(|s| {
        s.auth.enforce_roles = true;
        s.auth.platform_admins = vec![ROOT.into()];
    })
    .await;
    let post = |user: &'static str, path: String, body: Value| {
        let app = &app;
        async move { as_user(app, user, reqwest::Method::POST, &path, Some(body)).await }
    };
    let d = post(ROOT, "/api/v1/district".into(), json!({"name": "D"})).await.id();
    let s = post(ROOT, format!("/api/v1/district/{d}/schools"), json!({"name": "S"}))
        .await
        .id();
    let grant = |user: &'static str, tenant: u64| {
        post(
            ROOT,
            "/api/v1/roles".into(),
            json!({"user_id": user, "tenant_id": tenant, "role": "admin"}),
        )
    };
    let dadm = grant("dadm", d).await;
    assert_eq!(dadm.status, 201, "{}", dadm.body);
    let mut revoker = ["dadm", ROOT].into_iter();
    for round in 0..2 {
        let eve = grant("eve", s).await;
        assert_eq!(eve.status, 201, "round {round}: {}", eve.body);
        // She deactivates her own school...
        let off = as_user(
            &app,
            "eve",
            reqwest::Method::PUT,
            &format!("/api/v1/tenant/{s}"),
            Some(json!({"is_active": false})),
        )
        .await;
        assert_eq!(
            (off.status, &off.body["is_active"]),
            (200, &json!(false)),
            "{}",
            off.body
        );
        // ...and is revoked all the same, by the district admin, then by the platform admin.
        let by = revoker.next().unwrap_or(ROOT);
        let revoked = post(by, format!("/api/v1/roles/{}/deactivate", eve.id()), json!({})).await;
        assert_eq!(revoked.status, 200, "{by}: {}", revoked.body);
        assert_eq!(revoked.body["is_active"], false);
        // She can no longer read (or reactivate) the school.
        let read = as_user(&app, "eve", reqwest::Method::GET, &format!("/api/v1/tenant/{s}"), None).await;
        assert_eq!(read.status, 404, "{}", read.body);
        let on = as_user(
            &app,
            "eve",
            reqwest::Method::PUT,
            &format!("/api/v1/tenant/{s}"),
            Some(json!({"is_active": true})),
        )
        .await;
        assert_eq!(on.status, 404, "{}", on.body);
        // The district admin reactivates it for the next round.
        let on = as_user(
            &app,
            "dadm",
            reqwest::Method::PUT,
            &format!("/api/v1/tenant/{s}"),
            Some(json!({"is_active": true})),
        )
        .await;
        assert_eq!(on.status, 200, "{}", on.body);
    }
    // Granting stays a write: refused in an inactive tenant.
    as_user(
        &app,
        "dadm",
        reqwest::Method::PUT,
        &format!("/api/v1/tenant/{s}"),
        Some(json!({"is_active": false})),
    )
    .await;
    let refused = grant("mallory", s).await;
    assert_eq!((refused.status, refused.detail()), (409, "Tenant is inactive"));
}

#[tokio::test]
async fn alert_thresholds_are_writes_refused_in_an_inactive_tenant_and_need_their_field() {
    let app = TestApp::spawn().await;
    let d = app.district("D").await;
    let s = app.school(d, "S").await;
    let path = format!("/api/v1/tenant/{s}/alert-threshold");
    let set = app.put(&path, json!({"percent": 80})).await;
    assert_eq!(set.status, 200, "{}", set.body);

    for body in [json!({}), json!({"percent_": 5}), json!({"Percent": null})] {
        let r = app.put(&path, body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {}", r.body);
        assert!(r.detail().contains("percent"), "{}", r.body);
    }
    let alerts = app.get(&format!("/api/v1/alerts?tenantId={s}")).await;
    assert_eq!(alerts.body["threshold_percent"], 80.0, "a refused body changed nothing");

    assert_eq!(
        app.put(&format!("/api/v1/tenant/{s}"), json!({"is_active": false}))
            .await
            .status,
        200
    );
    for body in [json!({"percent": 50}), json!({"percent": null})] {
        let r = app.put(&path, body.clone()).await;
        assert_eq!((r.status, r.detail()), (409, "Tenant is inactive"), "{body}");
    }
    assert_eq!(
        app.put(&format!("/api/v1/tenant/{s}"), json!({"is_active": true}))
            .await
            .status,
        200
    );
    let alerts = app.get(&format!("/api/v1/alerts?tenantId={s}")).await;
    assert_eq!(alerts.body["threshold_percent"], 80.0);
    let cleared = app.put(&path, json!({"percent": null})).await;
    assert_eq!((cleared.status, &cleared.body["percent"]), (200, &Value::Null));
}

#[tokio::test]
async fn reclaim_reasons_with_control_or_bidi_characters_are_422_and_change_nothing() {
    let app = TestApp::spawn().await;
    let d = app.district("D").await;
    let s = app.school(d, "S").await;
    let seat = app.purchase(s, 1).await[0];
    assert_eq!(app.allocate(seat, "l1").await.status, 200);
    for reason in [
        "a\u{0}b",
        "two\nlines",
        "\u{1b}[2Jcleared",
        "paid \u{202e}0001$",
        "\u{2067}x",
    ] {
        let r = app
            .post("/api/v1/seats/reclaim", json!({"seat_id": seat, "reason": reason}))
            .await;
        assert_eq!(r.status, 422, "{reason:?}: {}", r.body);
        assert!(r.detail().contains("control characters"), "{}", r.body);
    }
    assert_eq!(app.seat(seat).await["state"], "assigned");
    assert_eq!(app.audit(seat).await.len(), 2, "purchase and allocation only");
    let r = app.reclaim(seat, Some("Moved to Shelbyville – année 2 🏫")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(app.audit(seat).await[2]["reason"], "Moved to Shelbyville – année 2 🏫");
}

#[tokio::test]
async fn head_is_answered_wherever_get_is_without_a_body() {
    let app = TestApp::spawn().await;
    let d = app.district("D").await;
    for path in ["/", "/health", "/api/v1/health", "/metrics"] {
        let r = app
            .client
            .head(app.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status(), 200, "HEAD {path}");
    }
    let get = app
        .client
        .get(app.url(&format!("/api/v1/district/{d}")))
        .header("X-User-ID", ADMIN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let head = app
        .client
        .head(app.url(&format!("/api/v1/district/{d}")))
        .header("X-User-ID", ADMIN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers().get("content-length"),
        get.headers().get("content-length")
    );
    assert_eq!(head.headers().get("content-type"), get.headers().get("content-type"));
    assert!(head.bytes().await.unwrap_or_default().is_empty(), "HEAD has no body");
    // The same refusals as GET: identity first, then the route's own.
    let anon = app
        .client
        .head(app.url("/api/v1/seats/summary?tenantId=1"))
        .send()
        .await;
    assert_eq!(anon.map(|r| r.status().as_u16()).ok(), Some(401));
    // Where GET is not allowed, HEAD is not either.
    let post_only = app.client.head(app.url("/api/v1/district")).send().await;
    assert_eq!(post_only.map(|r| r.status().as_u16()).ok(), Some(405));
}

/// The old service's clients may end a path with one `/`: it names the same
/// route (answers, refusals and all), as it always has.
#[tokio::test]
async fn one_trailing_slash_names_the_same_route() {
    let app = TestApp::spawn().await;
    let d = app.district("D").await;
    let s = app.school(d, "S").await;
    let seat = app.purchase(s, 1).await[0];
    let health = app.client.get(app.url("/health/")).send().await;
    let health: Option<Value> = match health {
        Ok(r) => r.json().await.ok(),
        Err(e) => panic!("{e}"),
    };
    assert_eq!(health, Some(json!({"status": "healthy"})));
    let r = app.get(&format!("/api/v1/seats/{seat}/")).await;
    assert_eq!((r.status, r.id()), (200, seat));
    let r = app.send(app.client.get(app.url("/api/v1/me/"))).await;
    assert_eq!(r.status, 401);
    let r = app.post("/api/v1/me/", json!({})).await;
    assert_eq!(r.status, 405);
    let r = app
        .post("/api/v1/seats/allocate/", json!({"seat_id": seat, "learner_id": "l1"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Two are not one.
    assert_eq!(app.get("/health//").await.status, 404);
}
