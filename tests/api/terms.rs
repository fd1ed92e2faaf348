//! License terms (issue 15 §3): a purchase's `expires_at`, what an expired
//! seat may no longer do (409 SEAT_EXPIRED), the `expiring_before` listing,
//! `expired_seats` in the summary, and renewals (audited, kept across a
//! restart).

use std::time::Duration;

use serde_json::{json, Value};

use super::helpers::*;

fn in_seconds(s: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(s)).to_rfc3339()
}

async fn buy(app: &TestApp, tenant: u64, count: u64, expires_at: Option<&str>) -> Response {
    let mut body = json!({"tenant_id": tenant, "count": count});
    if let Some(at) = expires_at {
        body["expires_at"] = json!(at);
    }
    app.post("/api/v1/seats/purchase", body).await
}

fn ids(r: &Response) -> Vec<u64> {
    r.body
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["id"].as_u64())
        .collect()
}

fn listed(body: &Value) -> Vec<u64> {
    body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["id"].as_u64())
        .collect()
}

#[tokio::test]
async fn seats_past_their_term_cannot_be_taken_until_renewed() {
    let app = TestApp::spawn().await;
    let d = app.district("D").await;
    let s = app.school(d, "S").await;
    let end = in_seconds(2);
    let term = buy(&app, s, 3, Some(&end)).await;
    assert_eq!(term.status, 201, "{}", term.body);
    assert_eq!(
        term.body[0]["expires_at"].as_str().map(|t| t[..19].to_owned()),
        Some(end[..19].to_owned())
    );
    let termed = ids(&term);
    let open = ids(&buy(&app, s, 1, None).await);
    assert_eq!(app.seat(open[0]).await["expires_at"], Value::Null);
    assert_eq!(app.allocate(termed[0], "kept").await.status, 200);
    assert_eq!(app.summary(s).await["expired_seats"], 0);

    // Past the term (polled from the summary, which counts it at once).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while app.summary(s).await["expired_seats"] != 3 {
        assert!(std::time::Instant::now() < deadline, "the term did not end");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let summary = app.summary(s).await;
    assert_eq!(
        (
            &summary["free_seats"],
            &summary["assigned_seats"],
            &summary["total_seats"]
        ),
        (&json!(3), &json!(1), &json!(4)),
        "existing fields keep their meaning: {summary}"
    );
    let refused = app.allocate(termed[1], "late").await;
    assert_eq!(
        (refused.status, &refused.body["error_code"], refused.detail()),
        (409, &json!("SEAT_EXPIRED"), "Seat's license term has ended")
    );
    let reserve = app
        .post(
            "/api/v1/seats/reserve",
            json!({"tenant_id": s, "seat_id": termed[2], "ttl_seconds": 5}),
        )
        .await;
    assert_eq!(
        (reserve.status, &reserve.body["error_code"]),
        (409, &json!("SEAT_EXPIRED"))
    );
    // Assign passes the expired seats by: the seat with no term, then none.
    let a = app
        .post("/api/v1/seats/assign", json!({"tenant_id": s, "learner_id": "x"}))
        .await;
    assert_eq!((a.status, a.id()), (201, open[0]), "{}", a.body);
    let none = app
        .post("/api/v1/seats/assign", json!({"tenant_id": s, "learner_id": "y"}))
        .await;
    assert_eq!((none.status, &none.body["error_code"]), (409, &json!("NO_FREE_SEAT")));
    // The assigned one stays assigned, and is listed with the others.
    assert_eq!(app.seat(termed[0]).await["learner_id"], "kept");
    let before = in_seconds(60).replace('+', "%2B");
    let page = app
        .get(&format!("/api/v1/seats?tenantId={s}&expiring_before={before}"))
        .await;
    assert_eq!(listed(&page.body), termed, "{}", page.body);
    let page = app
        .get(&format!(
            "/api/v1/seats?tenantId={d}&expiring_before={before}&state=assigned"
        ))
        .await;
    assert_eq!(listed(&page.body), [termed[0]], "a district's listing has its schools'");
    let bad = app
        .get(&format!("/api/v1/seats?tenantId={s}&expiring_before=soon"))
        .await;
    assert_eq!(bad.status, 422);

    // Renewed: one seat by id, then all that end before a time.
    let later = in_seconds(3_600);
    let r = app
        .post(
            "/api/v1/seats/renew",
            json!({"tenant_id": s, "seat_ids": [termed[1], open[0], termed[1], 9_999], "expires_at": later}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rows: Vec<&str> = r.body["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x["result"].as_str())
        .collect();
    assert_eq!(rows, ["renewed", "not_renewed", "duplicate", "not_found"]);
    assert_eq!(r.body["results"][1]["detail"], "Seat has no license term to renew");
    assert_eq!(app.summary(s).await["expired_seats"], 2);
    assert_eq!(app.allocate(termed[1], "late").await.status, 200);
    let audit = app.audit(termed[1]).await;
    assert!(
        audit.iter().any(|e| e["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("License renewed until"))),
        "{audit:?}"
    );
    let shorter = app
        .post(
            "/api/v1/seats/renew",
            json!({"tenant_id": s, "seat_ids": [termed[1]], "expires_at": in_seconds(600)}),
        )
        .await;
    assert_eq!(shorter.body["results"][0]["result"], "not_renewed", "{}", shorter.body);
    let all = app
        .post(
            "/api/v1/seats/renew",
            json!({"tenant_id": s, "all_expiring_before": in_seconds(60), "expires_at": later}),
        )
        .await;
    assert_eq!(all.status, 200, "{}", all.body);
    let renewed: Vec<u64> = all.body["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x["seat_id"].as_u64())
        .collect();
    assert_eq!(renewed, [termed[0], termed[2]]);
    assert_eq!(app.summary(s).await["expired_seats"], 0);
    let stats = app.get(&format!("/api/v1/seats/stats?tenantId={s}")).await.body;
    assert_eq!(stats["renewals"], 3, "{stats}");

    // The terms as renewed after a restart, and the chain intact.
    let app = app.restart().await;
    for seat in &termed {
        let s = app.seat(*seat).await;
        assert_eq!(
            s["expires_at"].as_str().map(|t| t[..19].to_owned()),
            Some(later[..19].to_owned()),
            "{s}"
        );
    }
    assert_eq!(app.summary(s).await["expired_seats"], 0);
    let v = app.get(&format!("/api/v1/audit/verify?tenantId={s}")).await.body;
    assert_eq!(v["intact"], true, "{v}");
}

#[tokio::test]
async fn terms_refuse_times_that_make_no_sense() {
    let app = TestApp::spawn().await;
    let d = app.district("D").await;
    for (body, field) in [
        (
            json!({"tenant_id": d, "count": 1, "expires_at": in_seconds(-5)}),
            "expires_at must be in the future",
        ),
        (
            json!({"tenant_id": d, "count": 1, "expires_at": "next year"}),
            "expires_at must be an RFC 3339 time with an offset",
        ),
    ] {
        let r = app.post("/api/v1/seats/purchase", body).await;
        assert_eq!((r.status, r.detail()), (422, field));
    }
    let seats = ids(&buy(&app, d, 2, Some(&in_seconds(60))).await);
    for (body, code) in [
        (
            json!({"tenant_id": d, "seat_ids": [seats[0]], "expires_at": in_seconds(-1)}),
            422,
        ),
        (json!({"tenant_id": d, "seat_ids": [seats[0]]}), 422),
        (json!({"tenant_id": d, "expires_at": in_seconds(99)}), 422),
        (
            json!({"tenant_id": d, "seat_ids": [seats[0]], "all_expiring_before": in_seconds(9), "expires_at": in_seconds(99)}),
            422,
        ),
        (
            json!({"tenant_id": 777, "seat_ids": [seats[0]], "expires_at": in_seconds(99)}),
            404,
        ),
    ] {
        let r = app.post("/api/v1/seats/renew", body.clone()).await;
        assert_eq!(r.status, code, "{body}: {}", r.body);
    }
    // Renewing is an admin's.
    let enforced = super::auth::enforced().await;
    let post = |user: &'static str, path: String, body: Value| {
        let req = enforced
            .client
            .post(enforced.url(&path))
            .header("X-User-ID", user)
            .json(&body);
        let app = &enforced;
        async move { app.send(req).await }
    };
    let d = post("root", "/api/v1/district".into(), json!({"name": "D"})).await.id();
    let bought = post(
        "root",
        "/api/v1/seats/purchase".into(),
        json!({"tenant_id": d, "count": 1, "expires_at": in_seconds(60)}),
    )
    .await;
    let seat = bought.body[0]["id"].as_u64().unwrap_or_default();
    let granted = post(
        "root",
        "/api/v1/roles".into(),
        json!({"user_id": "mgr", "tenant_id": d, "role": "manager"}),
    )
    .await;
    assert_eq!(granted.status, 201);
    let renew = json!({"tenant_id": d, "seat_ids": [seat], "expires_at": in_seconds(999)});
    assert_eq!(
        post("mgr", "/api/v1/seats/renew".into(), renew.clone()).await.status,
        403
    );
    assert_eq!(post("root", "/api/v1/seats/renew".into(), renew).await.status, 200);
}
