//! The audit query (`GET /api/v1/audit`): pages across a tenant's trail and a
//! district's, cursors inside purchase blocks, filters, limits, authorization
//! and restarts. Every page walk is checked against the per-seat trails.

use std::collections::HashSet;

use serde_json::{json, Value};

use super::helpers::*;

async fn get_as(app: &TestApp, user: &str, path: &str) -> Response {
    app.send(app.client.get(app.url(path)).header("X-User-ID", user)).await
}

async fn post_as(app: &TestApp, user: &str, path: &str, body: Value) -> Response {
    app.send(app.client.post(app.url(path)).header("X-User-ID", user).json(&body))
        .await
}

/// Every page of a query, following `next_cursor`; returns the entries and
/// how many pages it took.
async fn walk(app: &TestApp, query: &str) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for pages in 1..10_000 {
        let path = match &cursor {
            Some(c) => format!("/api/v1/audit?{query}&cursor={c}"),
            None => format!("/api/v1/audit?{query}"),
        };
        let r = app.get(&path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        items.extend(r.body["items"].as_array().cloned().unwrap_or_default());
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => {
                assert!(r.body["next_cursor"].is_null(), "{}", r.body);
                return (items, pages);
            }
        }
    }
    panic!("{query}: no end after 10,000 pages");
}

fn ids(items: &[Value]) -> Vec<u64> {
    items
        .iter()
        .map(|i| i["id"].as_u64().unwrap_or_else(|| panic!("no id: {i}")))
        .collect()
}

/// The entries of these seats as `/seats/{id}/audit` shows them, in trail
/// order (time, then id).
async fn expected(app: &TestApp, seats: &[u64]) -> Vec<Value> {
    let mut all = Vec::new();
    for &s in seats {
        all.extend(app.audit(s).await);
    }
    all.sort_by_key(|a| {
        (
            a["created_at"].as_str().unwrap_or_default().to_owned(),
            a["id"].as_u64(),
        )
    });
    all
}

/// A tenant with two purchases and a varied history on some seats.
async fn history(app: &TestApp, tenant: u64, tag: &str) -> Vec<u64> {
    let mut seats = app.purchase(tenant, 7).await;
    for (i, &s) in seats.iter().take(4).enumerate() {
        assert_eq!(app.allocate(s, &format!("{tag}-l{i}")).await.status, 200);
    }
    assert_eq!(app.reclaim(seats[1], Some("moved")).await.status, 200);
    assert_eq!(app.allocate(seats[1], &format!("{tag}-l9")).await.status, 200);
    seats.extend(app.purchase(tenant, 3).await);
    assert_eq!(app.allocate(seats[8], &format!("{tag}-l0-again")).await.status, 200);
    seats
}

#[tokio::test]
async fn pages_cover_the_trail_exactly_once_in_both_orders_at_any_page_size() {
    let app = TestApp::spawn().await;
    let d = app.district("D").await;
    let seats = history(&app, d, "d").await;
    let want = expected(&app, &seats).await;
    assert_eq!(want.len(), 10 + 7);

    for limit in [1, 2, 3, 5, 16, 17, 100] {
        let (asc, pages) = walk(&app, &format!("tenantId={d}&limit={limit}")).await;
        assert_eq!(asc, want, "asc, limit {limit}");
        assert_eq!(pages, want.len().div_ceil(limit).max(1), "asc, limit {limit}");
        let (mut desc, _) = walk(&app, &format!("tenantId={d}&limit={limit}&order=desc")).await;
        desc.reverse();
        assert_eq!(desc, want, "desc, limit {limit}");
    }
    // The default page is 100 entries and says nothing follows.
    let r = app.get(&format!("/api/v1/audit?tenantId={d}")).await;
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(want.len()));
    assert!(r.body["next_cursor"].is_null());

    // The contract's SeatAudit shape, purchase entries included.
    let first = &want[0];
    assert_eq!(first["reason"], "Seat purchased");
    assert!(first["previous_state"].is_null());
    assert_eq!(first["new_state"], "free");
    assert_eq!(first["changed_by"], ADMIN);
}

#[tokio::test]
async fn a_district_includes_its_schools_and_a_school_only_itself() {
    let app = TestApp::spawn().await;
    let d = app.district("D").await;
    let a = app.school(d, "A").await;
    let b = app.school(d, "B").await;
    let other = app.district("O").await;
    // Interleave the tenants' writes so that the merge has work to do.
    let mut all_seats = Vec::new();
    for round in 0..3 {
        for &t in &[d, a, b, other] {
            let seats = app.purchase(t, 2).await;
            assert_eq!(app.allocate(seats[0], &format!("r{round}")).await.status, 200);
            all_seats.push((t, seats));
        }
    }
    let seats_of = |ts: &[u64]| -> Vec<u64> {
        all_seats
            .iter()
            .filter(|(t, _)| ts.contains(t))
            .flat_map(|(_, s)| s.clone())
            .collect()
    };
    let district_want = expected(&app, &seats_of(&[d, a, b])).await;
    assert_eq!(district_want.len(), 3 * 3 * 3);
    for limit in [1, 4, 1000] {
        let (got, _) = walk(&app, &format!("tenantId={d}&limit={limit}")).await;
        assert_eq!(got, district_want, "district, limit {limit}");
        let (mut got, _) = walk(&app, &format!("tenantId={d}&limit={limit}&order=desc")).await;
        got.reverse();
        assert_eq!(got, district_want, "district desc, limit {limit}");
    }
    let (school, _) = walk(&app, &format!("tenantId={a}&limit=2")).await;
    assert_eq!(school, expected(&app, &seats_of(&[a])).await);
    let (elsewhere, _) = walk(&app, &format!("tenantId={other}")).await;
    assert_eq!(elsewhere, expected(&app, &seats_of(&[other])).await);
}

#[tokio::test]
async fn filters_by_learner_author_time_and_seat() {
    let app = TestApp::spawn().await;
    let d = app.district("D").await;
    let s = app.school(d, "S").await;
    let seats = app.purchase(s, 4).await;
    assert_eq!(app.allocate(seats[0], "lena").await.status, 200);
    assert_eq!(app.reclaim(seats[0], None).await.status, 200);
    let r = post_as(
        &app,
        "manager_2",
        "/api/v1/seats/allocate",
        json!({"seat_id": seats[1], "learner_id": "lena"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(app.allocate(seats[2], "otto").await.status, 200);

    // A learner's entries, through the district: her allocation, the reclaim
    // that took the seat back (previous learner) and her second seat.
    let (lena, _) = walk(&app, &format!("tenantId={d}&learnerId=lena&limit=1")).await;
    assert_eq!(lena.len(), 3, "{lena:?}");
    assert!(lena
        .iter()
        .all(|e| e["new_learner_id"] == "lena" || e["previous_learner_id"] == "lena"));

    let (by_manager, _) = walk(&app, &format!("tenantId={s}&changedBy=manager_2")).await;
    assert_eq!(by_manager.len(), 1, "{by_manager:?}");
    assert_eq!(by_manager[0]["seat_id"], seats[1]);
    // The purchase entries are the admin's (4) plus three of the changes.
    let (by_admin, _) = walk(&app, &format!("tenantId={s}&changedBy={ADMIN}&limit=3")).await;
    assert_eq!(by_admin.len(), 4 + 3);

    // Time windows: since is inclusive, until exclusive.
    let (all, _) = walk(&app, &format!("tenantId={s}")).await;
    let cut = all[5]["created_at"].as_str().unwrap_or_default().to_owned();
    let enc = |t: &str| t.replace('+', "%2B").replace(':', "%3A");
    let (after, _) = walk(&app, &format!("tenantId={s}&since={}", enc(&cut))).await;
    let (before, _) = walk(&app, &format!("tenantId={s}&until={}&limit=2", enc(&cut))).await;
    let mut joined = before.clone();
    joined.extend(after.clone());
    assert_eq!(joined, all);
    assert!(after.iter().all(|e| e["created_at"].as_str() >= Some(cut.as_str())));
    let (none, _) = walk(&app, &format!("tenantId={s}&since={}&until={}", enc(&cut), enc(&cut))).await;
    assert!(none.is_empty());

    // One seat, with or without its tenant; a tenant that does not hold it gets nothing.
    let (seat, _) = walk(&app, &format!("seatId={}&limit=1", seats[0])).await;
    assert_eq!(seat, app.audit(seats[0]).await);
    let (seat, _) = walk(&app, &format!("seatId={}&tenantId={d}&order=desc", seats[0])).await;
    assert_eq!(seat.len(), 3);
    assert_eq!(seat[0]["new_state"], "free");
    assert_eq!(seat[2]["reason"], "Seat purchased");
    let other = app.district("O").await;
    let (seat, _) = walk(&app, &format!("seatId={}&tenantId={other}", seats[0])).await;
    assert!(seat.is_empty());
}

#[tokio::test]
async fn a_sparse_filter_is_served_in_bounded_steps_and_still_finds_everything() {
    let app = TestApp::spawn().await;
    let t = app.district("D").await;
    let seats = app.purchase(t, 30).await;
    // Entries of many learners, one of which is rare.
    for (i, &s) in seats.iter().enumerate() {
        let learner = if i == 29 { "rare".to_owned() } else { format!("l{i}") };
        assert_eq!(app.allocate(s, &learner).await.status, 200);
    }
    let (found, _) = walk(&app, &format!("tenantId={t}&learnerId=rare")).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["seat_id"], seats[29]);
    let (found, _) = walk(&app, &format!("tenantId={t}&learnerId=rare&order=desc&limit=1")).await;
    assert_eq!(found.len(), 1);
    let (none, _) = walk(&app, &format!("tenantId={t}&learnerId=nobody")).await;
    assert!(none.is_empty());
}

#[tokio::test]
async fn a_big_purchase_pages_through_its_block_and_on_into_later_entries() {
    let app = TestApp::spawn().await;
    let t = app.district("D").await;
    let seats = app.purchase(t, 2_500).await;
    assert_eq!(app.allocate(seats[10], "x").await.status, 200);
    let more = app.purchase(t, 3).await;
    let (asc, pages) = walk(&app, &format!("tenantId={t}&limit=1000")).await;
    assert_eq!(pages, 3);
    assert_eq!(asc.len(), 2_500 + 1 + 3);
    let got = ids(&asc);
    let unique: HashSet<u64> = got.iter().copied().collect();
    assert_eq!(unique.len(), got.len(), "an entry repeated across pages");
    assert!(got[..2_500].windows(2).all(|w| w[0] < w[1]));
    assert_eq!(asc[2_500]["new_learner_id"], "x");
    assert_eq!(asc[2_501]["seat_id"], more[0]);
    let (mut desc, _) = walk(&app, &format!("tenantId={t}&limit=999&order=desc")).await;
    desc.reverse();
    assert_eq!(desc, asc);
    // A learner filter skips a block whole: one step, not 2,500.
    let (x, pages) = walk(&app, &format!("tenantId={t}&learnerId=x&limit=1")).await;
    assert_eq!(x.len(), 1);
    assert!(pages <= 2, "{pages} pages");
}

#[tokio::test]
async fn bad_queries_are_refused_with_422_and_unknown_tenants_with_404() {
    let app = TestApp::spawn().await;
    let t = app.district("D").await;
    for q in [
        String::new(),
        format!("tenantId={t}&limit=0"),
        format!("tenantId={t}&limit=1001"),
        format!("tenantId={t}&limit=ten"),
        format!("tenantId={t}&order=up"),
        format!("tenantId={t}&cursor=garbage"),
        format!("tenantId={t}&cursor=1.x"),
        format!("tenantId={t}&since=yesterday"),
        format!("tenantId={t}&until=2026-01-01"),
        "tenantId=0".to_owned(),
        "tenantId=-1".to_owned(),
        "seatId=abc".to_owned(),
        format!("tenantId={t}&learnerId=%20"),
    ] {
        let r = app.get(&format!("/api/v1/audit?{q}")).await;
        assert_eq!(r.status, 422, "{q}: {}", r.body);
        assert_eq!(r.body["error_code"], "VALIDATION_ERROR", "{q}");
    }
    let r = app.get("/api/v1/audit?tenantId=999").await;
    assert_eq!((r.status, r.detail()), (404, "Tenant not found"));
    let r = app.get("/api/v1/audit?seatId=999").await;
    assert_eq!((r.status, r.detail()), (404, "Seat not found"));
    let r = app.get(&format!("/api/v1/audit?tenantId={t}&limit=1000")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"items": [], "next_cursor": null}));
    let r = app
        .send(app.client.get(app.url(&format!("/api/v1/audit?tenantId={t}"))))
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn reading_the_audit_needs_manager_in_the_tenant_or_its_district() {
    let app = TestApp::spawn_with(|s| {
        s.auth.enforce_roles = true;
        s.auth.platform_admins = vec![ADMIN.into()];
    })
    .await;
    let d = app.district("D").await;
    let a = app.school(d, "A").await;
    app.purchase(a, 2).await;
    for (user, tenant, role) in [("dm", d, "manager"), ("sm", a, "manager"), ("st", a, "teacher")] {
        let r = app
            .post(
                "/api/v1/roles",
                json!({"user_id": user, "tenant_id": tenant, "role": role}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let page = |user: &'static str, tenant: u64| {
        let app = &app;
        async move { get_as(app, user, &format!("/api/v1/audit?tenantId={tenant}")).await }
    };
    assert_eq!(page("dm", d).await.body["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(page("dm", a).await.status, 200);
    assert_eq!(page("sm", a).await.status, 200);
    let r = page("sm", d).await;
    assert_eq!(
        r.status, 403,
        "a school's manager may not read the district: {}",
        r.body
    );
    let r = page("st", a).await;
    assert_eq!(
        (r.status, r.detail()),
        (403, "This action requires the manager role in this tenant")
    );
    let r = page("stranger", a).await;
    assert_eq!((r.status, r.detail()), (404, "Tenant not found"));
}

#[tokio::test]
async fn the_trail_survives_a_restart_and_continues_after_it() {
    let app = TestApp::spawn().await;
    let d = app.district("D").await;
    let seats = history(&app, d, "a").await;
    let (before, _) = walk(&app, &format!("tenantId={d}&limit=4")).await;
    let app = app.restart().await;
    let (after, _) = walk(&app, &format!("tenantId={d}&limit=4")).await;
    assert_eq!(after, before);
    assert_eq!(app.reclaim(seats[0], None).await.status, 200);
    let newer = app.purchase(d, 2).await;
    let (now, _) = walk(&app, &format!("tenantId={d}&limit=3")).await;
    assert_eq!(now[..before.len()], before[..]);
    assert_eq!(now.len(), before.len() + 3);
    assert_eq!(now[before.len()]["seat_id"], seats[0]);
    assert_eq!(now[before.len() + 2]["seat_id"], newer[1]);
}
