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

#[tokio::test]
async fn stats_count_transitions_per_minute_in_a_window_and_survive_a_restart() {
    let app = TestApp::spawn().await;
    let d = app.district("D").await;
    let s = app.school(d, "S").await;
    let seats = app.purchase(s, 5).await;
    assert_eq!(app.allocate(seats[0], "l1").await.status, 200);
    assert_eq!(app.allocate(seats[1], "l2").await.status, 200);
    assert_eq!(
        app.allocate(seats[1], "l3").await.status,
        400,
        "a refusal is no transition"
    );
    assert_eq!(app.reclaim(seats[0], None).await.status, 200);
    app.purchase(d, 3).await;

    let stats = |tenant: u64, window: &'static str| {
        let app = &app;
        async move {
            let r = app.get(&format!("/api/v1/seats/stats?tenantId={tenant}{window}")).await;
            assert_eq!(r.status, 200, "{}", r.body);
            r.body
        }
    };
    let district = stats(d, "&window=15m").await;
    assert_eq!(district["tenant_id"], d);
    assert_eq!(district["window_minutes"], 15);
    assert_eq!(
        (
            district["purchases"].clone(),
            district["allocations"].clone(),
            district["reclaims"].clone()
        ),
        (json!(8), json!(2), json!(1))
    );
    assert_eq!(district["per_minute"]["purchases"], 0.53);
    let minutes = district["minutes"].as_array().cloned().unwrap_or_default();
    assert!(!minutes.is_empty() && minutes.len() <= 2, "{district}");
    let sum = |field: &str| minutes.iter().filter_map(|m| m[field].as_u64()).sum::<u64>();
    assert_eq!((sum("purchases"), sum("allocations"), sum("reclaims")), (8, 2, 1));
    let peak = &district["peak_minute"];
    let peak_total = ["purchases", "allocations", "reclaims"]
        .iter()
        .filter_map(|f| peak[*f].as_u64())
        .sum::<u64>();
    assert!(peak_total >= 6, "the busiest minute holds at least half of 11: {peak}");

    let school = stats(s, "").await;
    assert_eq!(school["window_minutes"], 60, "the default window is 1h");
    assert_eq!(
        (school["purchases"].clone(), school["reclaims"].clone()),
        (json!(5), json!(1))
    );

    // Rebuilt from the trail on start.
    let app = app.restart().await;
    let r = app.get(&format!("/api/v1/seats/stats?tenantId={d}&window=24h")).await;
    assert_eq!(
        (
            r.body["purchases"].clone(),
            r.body["allocations"].clone(),
            r.body["reclaims"].clone()
        ),
        (json!(8), json!(2), json!(1)),
        "{}",
        r.body
    );
    // Changes after the restart are counted once: by the actors as they
    // happen, not again by the history pass that counts what came before
    // (and may still be running).
    assert_eq!(app.allocate(seats[2], "l9").await.status, 200);
    app.purchase(d, 2).await;
    let counted = |app: TestApp| async move {
        let r = app.get(&format!("/api/v1/seats/stats?tenantId={d}&window=24h")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let got = (
            r.body["purchases"].clone(),
            r.body["allocations"].clone(),
            r.body["reclaims"].clone(),
        );
        (app, got)
    };
    let (app, got) = counted(app).await;
    assert_eq!(got, (json!(10), json!(3), json!(1)));
    let (app, got) = counted(app.restart().await).await;
    assert_eq!(got, (json!(10), json!(3), json!(1)), "after a second restart");

    // An idle tenant: zeros and no peak.
    let idle = app.district("Idle").await;
    let r = app.get(&format!("/api/v1/seats/stats?tenantId={idle}&window=1h")).await;
    assert_eq!(r.body["peak_minute"], serde_json::Value::Null);
    assert_eq!(r.body["minutes"], json!([]));

    for bad in [
        "0m",
        "5%C3%A9",
        "%C3%A9h",
        "25h",
        "1441m",
        "abc",
        "15s",
        "",
        "h",
        "-5m",
        "99999999999999999999h",
    ] {
        let r = app.get(&format!("/api/v1/seats/stats?tenantId={d}&window={bad}")).await;
        assert_eq!(r.status, 422, "window={bad}: {}", r.body);
    }
    assert_eq!(app.get("/api/v1/seats/stats?tenantId=999").await.status, 404);
}

#[tokio::test]
async fn crossing_the_threshold_either_way_raises_alerts_that_persist() {
    let app = TestApp::spawn().await;
    let d = app.district("D").await;
    let s = app.school(d, "S").await;
    let seats = app.purchase(s, 10).await;
    let r = app
        .put(&format!("/api/v1/tenant/{s}/alert-threshold"), json!({"percent": 50}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (r.body["tenant_id"].clone(), r.body["percent"].clone()),
        (json!(s), json!(50.0))
    );
    let alerts = |tenant: u64| {
        let app = &app;
        async move {
            let r = app.get(&format!("/api/v1/alerts?tenantId={tenant}")).await;
            assert_eq!(r.status, 200, "{}", r.body);
            r.body
        }
    };
    assert_eq!(
        alerts(s).await["alerts"],
        json!([]),
        "setting a threshold raises nothing"
    );

    for (i, &seat) in seats.iter().take(6).enumerate() {
        assert_eq!(app.allocate(seat, &format!("l{i}")).await.status, 200);
    }
    assert_eq!(app.reclaim(seats[0], None).await.status, 200); // 60 -> 50: still at it
    assert_eq!(app.reclaim(seats[1], None).await.status, 200); // 50 -> 40: down
    assert_eq!(app.allocate(seats[0], "again").await.status, 200); // 40 -> 50: up
    let bought = app.purchase(s, 10).await; // 50 -> 25: down, by a purchase
    let body = alerts(s).await;
    assert_eq!(body["threshold_percent"], 50.0);
    let list = body["alerts"].as_array().cloned().unwrap_or_default();
    let seen: Vec<(String, f64, f64)> = list
        .iter()
        .map(|a| {
            (
                a["direction"].as_str().unwrap_or_default().to_owned(),
                a["utilization_before"].as_f64().unwrap_or(-1.0),
                a["utilization_after"].as_f64().unwrap_or(-1.0),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("up".into(), 40.0, 50.0),
            ("down".into(), 50.0, 40.0),
            ("up".into(), 40.0, 50.0),
            ("down".into(), 50.0, 25.0),
        ]
    );
    // Each alert names the audit entry of the change that raised it.
    let fifth = app.audit(seats[4]).await;
    assert_eq!(list[0]["audit_id"], fifth[1]["id"]);
    assert_eq!(list[3]["audit_id"], app.audit(bought[0]).await[0]["id"]);
    // A district lists its schools' alerts; its own threshold is unset.
    let district = alerts(d).await;
    assert_eq!(district["threshold_percent"], serde_json::Value::Null);
    assert_eq!(district["alerts"].as_array().map(Vec::len), Some(4));

    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .text()
        .await
        .unwrap_or_default();
    assert!(
        metrics.contains("tenant_utilization_alerts_total{direction=\"up\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tenant_utilization_alerts_total{direction=\"down\"} 2"),
        "{metrics}"
    );

    // Threshold and alerts survive a restart, and crossings go on being seen.
    let app = app.restart().await;
    let after = app.get(&format!("/api/v1/alerts?tenantId={s}")).await.body;
    assert_eq!(after, body);
    for (i, &seat) in bought.iter().take(5).enumerate() {
        assert_eq!(app.allocate(seat, &format!("m{i}")).await.status, 200); // up at 10/20
    }
    let r = app.get(&format!("/api/v1/alerts?tenantId={s}")).await;
    assert_eq!(r.body["alerts"].as_array().map(Vec::len), Some(5), "{}", r.body);

    // Cleared: no more alerts.
    let r = app
        .put(&format!("/api/v1/tenant/{s}/alert-threshold"), json!({"percent": null}))
        .await;
    assert_eq!((r.status, r.body["percent"].clone()), (200, serde_json::Value::Null));
    assert_eq!(app.reclaim(bought[0], None).await.status, 200);
    let r = app.get(&format!("/api/v1/alerts?tenantId={s}")).await;
    assert_eq!(r.body["alerts"].as_array().map(Vec::len), Some(5));

    for bad in [
        json!({"percent": 0}),
        json!({"percent": 100.5}),
        json!({"percent": "80"}),
    ] {
        let r = app
            .put(&format!("/api/v1/tenant/{s}/alert-threshold"), bad.clone())
            .await;
        assert_eq!(r.status, 422, "{bad}: {}", r.body);
    }
    let r = app
        .put("/api/v1/tenant/999/alert-threshold", json!({"percent": 5}))
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(app.get("/api/v1/alerts?tenantId=999").await.status, 404);
}

#[tokio::test]
async fn only_admins_set_thresholds_and_readers_see_alerts() {
    let app = TestApp::spawn_with(|s| {
        s.auth.enforce_roles = true;
        s.auth.platform_admins = vec![ADMIN.into()];
    })
    .await;
    let d = app.district("D").await;
    for (user, role) in [("adm", "admin"), ("tea", "teacher")] {
        let r = app
            .post("/api/v1/roles", json!({"user_id": user, "tenant_id": d, "role": role}))
            .await;
        assert_eq!(r.status, 201);
    }
    let put = |user: &'static str| {
        let app = &app;
        async move {
            app.send(
                app.client
                    .put(app.url(&format!("/api/v1/tenant/{d}/alert-threshold")))
                    .header("X-User-ID", user)
                    .json(&json!({"percent": 90})),
            )
            .await
        }
    };
    assert_eq!(put("tea").await.status, 403);
    assert_eq!(put("adm").await.status, 200);
    let r = app
        .send(
            app.client
                .get(app.url(&format!("/api/v1/alerts?tenantId={d}")))
                .header("X-User-ID", "tea"),
        )
        .await;
    assert_eq!((r.status, r.body["threshold_percent"].clone()), (200, json!(90.0)));
}

#[tokio::test]
async fn history_has_one_entry_per_day_ending_today_and_carries_snapshots_forward() {
    let app = TestApp::spawn().await;
    let d = app.district("D").await;
    let s = app.school(d, "S").await;
    let seats = app.purchase(s, 4).await;
    assert_eq!(app.allocate(seats[0], "l1").await.status, 200);
    app.purchase(d, 2).await;

    let r = app.get(&format!("/api/v1/seats/history?tenantId={d}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let days = r.body["days"].as_array().cloned().unwrap_or_default();
    assert_eq!(days.len(), 30, "30 days by default");
    let today = chrono::Utc::now().date_naive();
    assert_eq!(days[29]["date"], today.to_string());
    assert_eq!(days[29]["total_seats"], 6, "a district's days include its schools");
    assert_eq!(days[29]["assigned_seats"], 1);
    assert_eq!(days[29]["utilization_percentage"], 16.67);
    assert_eq!(days[28]["total_seats"], 0, "nothing before today");

    // A snapshot stored for two days ago (as the school's actor writes one
    // when a day with changes is followed by a change on a later day) is
    // shown for its day and carried forward to yesterday.
    let dir = app.stop().await;
    {
        let db = open_sled(&dir.path().join("data"));
        let day = chrono::Utc::now().timestamp().div_euclid(86_400) - 2;
        let snapshot = tenant_service::domain::Counts {
            free: 3,
            reserved: 0,
            assigned: 1,
        };
        let school =
            <tenant_service::domain::TenantId as tenant_service::domain::Id>::new(s).unwrap_or_else(|| panic!("id"));
        db.insert(
            tenant_service::store::records::history_key(school, day),
            tenant_service::store::records::encode(&snapshot),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        db.flush().unwrap_or_else(|e| panic!("{e}"));
    }
    let app = TestApp::spawn_in(dir).await;
    let r = app.get(&format!("/api/v1/seats/history?tenantId={s}&days=4")).await;
    let totals: Vec<(u64, u64)> = r.body["days"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|d| {
            (
                d["total_seats"].as_u64().unwrap_or(99),
                d["assigned_seats"].as_u64().unwrap_or(99),
            )
        })
        .collect();
    assert_eq!(totals, vec![(0, 0), (4, 1), (4, 1), (4, 1)], "{}", r.body);

    for bad in ["0", "367", "x", "-1"] {
        let r = app.get(&format!("/api/v1/seats/history?tenantId={s}&days={bad}")).await;
        assert_eq!(r.status, 422, "days={bad}");
    }
    assert_eq!(app.get("/api/v1/seats/history?tenantId=999").await.status, 404);
}

#[tokio::test]
async fn stats_wait_for_the_history_pass_and_a_stop_during_it_answers_them_at_once() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")));
    let app = TestApp::spawn_in(std::sync::Arc::clone(&dir)).await;
    let d = app.district("D").await;
    app.purchase(d, 2).await;
    let dir = app.stop().await;

    // This start's history pass is held before it reads anything: the
    // purchase before the restart cannot be counted yet.
    let faults = std::sync::Arc::new(super::faulty_disk::Faults::none());
    faults.stall_history(true);
    let app = TestApp::spawn_with_faults(dir, |_| {}, std::sync::Arc::clone(&faults)).await;
    // Everything else answers meanwhile.
    let summary = app.get(&format!("/api/v1/seats/summary?tenantId={d}")).await;
    assert_eq!((summary.status, summary.body["total_seats"].clone()), (200, json!(2)));
    let url = app.url(&format!("/api/v1/seats/stats?tenantId={d}&window=24h"));
    let waiting = tokio::spawn(async move {
        let res = reqwest::Client::new()
            .get(url)
            .header("X-User-ID", ADMIN)
            .send()
            .await
            .unwrap_or_else(|e| panic!("stats: {e}"));
        let status = res.status().as_u16();
        let body: serde_json::Value = res.json().await.unwrap_or_else(|e| panic!("stats body: {e}"));
        (status, body)
    });
    // A later request on the same tenant goes through while stats wait
    // (a stats request is not answered from partial counts).
    let summary = app.get(&format!("/api/v1/seats/summary?tenantId={d}")).await;
    assert_eq!(summary.status, 200);
    assert!(!waiting.is_finished(), "stats answered while the pass was held");

    // A stop while the pass is held: the waiting request is answered (503,
    // the service is stopping) instead of holding the drain for its 30 s
    // grace, and the stop completes. The pass is never released.
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(10), app.stop()).await;
    assert!(stopped.is_ok(), "the stop waited for the held history pass");
    let (status, body) = tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
        .await
        .unwrap_or_else(|_| panic!("the waiting stats request was never answered"))
        .unwrap_or_else(|e| panic!("stats task: {e}"));
    assert_eq!(
        (status, body["error_code"].clone()),
        (503, json!("STORE_UNAVAILABLE")),
        "{body}"
    );

    // Released (a new start, no faults): counted once.
    let app = TestApp::spawn_in(stopped.unwrap_or_else(|_| unreachable!())).await;
    let r = app.get(&format!("/api/v1/seats/stats?tenantId={d}&window=24h")).await;
    assert_eq!((r.status, r.body["purchases"].clone()), (200, json!(2)), "{}", r.body);
}
