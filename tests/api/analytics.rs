//! District analytics: `GET /api/v1/district/{id}/summary`.

use serde_json::json;

use super::helpers::*;

#[tokio::test]
async fn a_district_summary_adds_its_own_and_its_schools_seats() {
    let app = TestApp::spawn().await;
    let d = app.district("D").await;
    let a = app.school(d, "A").await;
    let b = app.school(d, "B").await;
    let empty = app.school(d, "Empty").await;
    let own = app.purchase(d, 4).await;
    let in_a = app.purchase(a, 10).await;
    let in_b = app.purchase(b, 6).await;
    assert_eq!(app.allocate(own[0], "l1").await.status, 200);
    for (i, &s) in in_a.iter().take(5).enumerate() {
        assert_eq!(app.allocate(s, &format!("a{i}")).await.status, 200);
    }
    assert_eq!(app.reclaim(in_a[0], None).await.status, 200);
    assert_eq!(app.allocate(in_b[5], "b").await.status, 200);

    let r = app.get(&format!("/api/v1/district/{d}/summary")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.body;
    assert_eq!(body["tenant_id"], d);
    assert_eq!(body["tenant_name"], "D");
    assert_eq!(body["total_seats"], 20);
    assert_eq!(body["assigned_seats"], 1 + 4 + 1);
    assert_eq!(body["free_seats"], 20 - 6);
    assert_eq!(body["reserved_seats"], 0);
    assert_eq!(body["utilization_percentage"], 30.0);
    assert_eq!(body["own"], app.summary(d).await);
    let schools = body["schools"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        schools,
        vec![app.summary(a).await, app.summary(b).await, app.summary(empty).await]
    );
    assert_eq!(schools[2]["utilization_percentage"], 0.0);

    // A school is not a district; unknown ids are not either.
    let r = app.get(&format!("/api/v1/district/{a}/summary")).await;
    assert_eq!((r.status, r.detail()), (404, "District not found"));
    let r = app.get("/api/v1/district/999/summary").await;
    assert_eq!((r.status, r.detail()), (404, "District not found"));
    let r = app.get("/api/v1/district/x/summary").await;
    assert_eq!(r.status, 422);

    // Survives a restart unchanged.
    let app = app.restart().await;
    let r = app.get(&format!("/api/v1/district/{d}/summary")).await;
    assert_eq!(r.body, body);
}

#[tokio::test]
async fn a_district_summary_needs_a_reading_role_in_the_district() {
    let app = TestApp::spawn_with(|s| {
        s.auth.enforce_roles = true;
        s.auth.platform_admins = vec![ADMIN.into()];
    })
    .await;
    let d = app.district("D").await;
    let a = app.school(d, "A").await;
    app.purchase(a, 3).await;
    for (user, tenant, role) in [("dt", d, "teacher"), ("st", a, "teacher")] {
        let r = app
            .post(
                "/api/v1/roles",
                json!({"user_id": user, "tenant_id": tenant, "role": role}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let as_user = |user: &'static str| {
        let app = &app;
        async move {
            app.send(
                app.client
                    .get(app.url(&format!("/api/v1/district/{d}/summary")))
                    .header("X-User-ID", user),
            )
            .await
        }
    };
    let r = as_user("dt").await;
    assert_eq!((r.status, r.body["total_seats"].clone()), (200, json!(3)));
    assert_eq!(as_user("st").await.status, 403);
    let r = as_user("stranger").await;
    assert_eq!((r.status, r.detail()), (404, "District not found"));
}
