//! Listings, lookups and the export (issue 14 §4) over HTTP: pages of
//! seats (a district's with its schools'), paging while seats change, the
//! export parsed back and compared with the listing, a learner's seats
//! across tenants, districts in reach, paged roles and role events, the
//! role checks on each, and the refusals.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::helpers::*;

use super::auth::{enforced, ROOT};

async fn get_as(app: &TestApp, user: &str, path: &str) -> Response {
    app.send(app.client.get(app.url(path)).header("X-User-ID", user)).await
}

async fn post_as(app: &TestApp, user: &str, path: &str, body: Value) -> Response {
    app.send(app.client.post(app.url(path)).header("X-User-ID", user).json(&body))
        .await
}

async fn grant(app: &TestApp, user: &str, tenant: u64, role: &str) -> u64 {
    let r = post_as(
        app,
        ROOT,
        "/api/v1/roles",
        json!({"user_id": user, "tenant_id": tenant, "role": role}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.id()
}

/// Every item of a paged listing, following `next_cursor` from `base`
/// (which already has a `?`); asserts each page's shape and its limit.
async fn all_pages(app: &TestApp, user: &str, base: &str, limit: usize) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let path = match &cursor {
            Some(c) => format!("{base}&limit={limit}&cursor={c}"),
            None => format!("{base}&limit={limit}"),
        };
        let r = get_as(app, user, &path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let page = r.body["items"]
            .as_array()
            .unwrap_or_else(|| panic!("{path}: no items: {}", r.body));
        assert!(page.len() <= limit, "{path}: {} items", page.len());
        items.extend(page.iter().cloned());
        match r.body["next_cursor"].as_str() {
            Some(c) => {
                assert_eq!(page.len(), limit, "{path}: a short page before the end");
                cursor = Some(c.to_owned());
            }
            None => {
                assert!(r.body["next_cursor"].is_null(), "{}", r.body);
                return items;
            }
        }
    }
    panic!("{base}: the cursor never ended");
}

fn ids(items: &[Value]) -> Vec<u64> {
    items
        .iter()
        .map(|s| s["id"].as_u64().unwrap_or_else(|| panic!("no id: {s}")))
        .collect()
}

async fn export(app: &TestApp, user: &str, tenant: u64) -> (u16, String, String) {
    let res = app
        .client
        .get(app.url(&format!("/api/v1/seats/export?tenantId={tenant}")))
        .header("X-User-ID", user)
        .send()
        .await
        .unwrap_or_else(|e| panic!("export: {e}"));
    let status = res.status().as_u16();
    let kind = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = res.text().await.unwrap_or_else(|e| panic!("export body: {e}"));
    (status, kind, text)
}

#[tokio::test]
async fn seats_page_in_id_order_and_a_districts_include_its_schools() {
    let app = TestApp::spawn().await;
    let d = app.district("D").await;
    let a = app.school(d, "A").await;
    let b = app.school(d, "B").await;
    // Interleaved purchases: the tenants' seat ids interleave too.
    let mut bought: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for (tenant, n) in [(a, 5), (d, 3), (b, 4), (a, 2), (d, 1)] {
        bought.entry(tenant).or_default().extend(app.purchase(tenant, n).await);
    }
    let a_seats = bought[&a].clone();
    assert_eq!(app.allocate(a_seats[1], "l-1").await.status, 200);
    assert_eq!(app.allocate(a_seats[6], "l-2").await.status, 200);
    assert_eq!(app.allocate(bought[&b][0], "l-1").await.status, 200);

    // A school: its own seats, in pages of any size.
    for limit in [1, 3, 7, 100] {
        let listed = all_pages(&app, ADMIN, &format!("/api/v1/seats?tenantId={a}"), limit).await;
        assert_eq!(ids(&listed), a_seats, "limit {limit}");
    }
    // Every item is the seat as GET /seats/{id} shows it.
    let listed = all_pages(&app, ADMIN, &format!("/api/v1/seats?tenantId={a}"), 100).await;
    for seat in &listed {
        assert_eq!(*seat, app.seat(seat["id"].as_u64().unwrap_or(0)).await);
    }

    // A district: its own seats and its schools', merged in id order.
    let family: Vec<u64> = bought
        .values()
        .flatten()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(family.len(), 15);
    for limit in [1, 2, 4, 15, 1000] {
        let listed = all_pages(&app, ADMIN, &format!("/api/v1/seats?tenantId={d}"), limit).await;
        assert_eq!(ids(&listed), family, "limit {limit}");
    }

    // Filters: state, learner, both; in a district too.
    let assigned = all_pages(&app, ADMIN, &format!("/api/v1/seats?tenantId={d}&state=assigned"), 2).await;
    assert_eq!(ids(&assigned), vec![a_seats[1], bought[&b][0], a_seats[6]]);
    assert!(assigned.iter().all(|s| s["state"] == "assigned"));
    let free = all_pages(&app, ADMIN, &format!("/api/v1/seats?tenantId={a}&state=free"), 3).await;
    assert_eq!(free.len(), 5);
    let reserved = get_as(&app, ADMIN, &format!("/api/v1/seats?tenantId={d}&state=reserved")).await;
    assert_eq!(reserved.body, json!({"items": [], "next_cursor": null}));
    let l1 = all_pages(&app, ADMIN, &format!("/api/v1/seats?tenantId={d}&learnerId=l-1"), 1).await;
    assert_eq!(ids(&l1), vec![a_seats[1], bought[&b][0]]);
    let l2 = get_as(&app, ADMIN, &format!("/api/v1/seats?tenantId={b}&learnerId=l-2")).await;
    assert_eq!(l2.body["items"], json!([]));
    let l2 = get_as(
        &app,
        ADMIN,
        &format!("/api/v1/seats?tenantId={a}&learnerId=l-2&state=assigned"),
    )
    .await;
    assert_eq!(ids(l2.body["items"].as_array().unwrap_or(&vec![])), vec![a_seats[6]]);

    // The default page is 100 seats.
    let big = app.school(d, "Big").await;
    let seats = app.purchase(big, 150).await;
    let first = app.get(&format!("/api/v1/seats?tenantId={big}")).await;
    assert_eq!(first.status, 200);
    assert_eq!(ids(first.body["items"].as_array().unwrap_or(&vec![])), seats[..100]);
    let cursor = first.body["next_cursor"]
        .as_str()
        .unwrap_or_else(|| panic!("{}", first.body));
    let rest = app.get(&format!("/api/v1/seats?tenantId={big}&cursor={cursor}")).await;
    assert_eq!(ids(rest.body["items"].as_array().unwrap_or(&vec![])), seats[100..]);
    assert!(rest.body["next_cursor"].is_null());

    // A tenant without seats: an empty page.
    let empty = app.school(d, "Empty").await;
    let r = app.get(&format!("/api/v1/seats?tenantId={empty}")).await;
    assert_eq!(
        (r.status, r.body.clone()),
        (200, json!({"items": [], "next_cursor": null}))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_visits_every_seat_once_while_seats_change() {
    let app = TestApp::spawn().await;
    let d = app.district("D").await;
    let a = app.school(d, "A").await;
    let b = app.school(d, "B").await;
    let mut before = BTreeSet::new();
    for (tenant, n) in [(a, 700), (d, 300), (b, 600), (a, 400)] {
        before.extend(app.purchase(tenant, n).await);
    }
    let seats: Vec<u64> = before.iter().copied().collect();

    // Writers: allocate and reclaim all over the district, and buy more
    // seats, while a reader pages through it.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4u64 {
        let client = app.client.clone();
        let url = app.url("");
        let seats = seats.clone();
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let mut changes = 0u64;
            let mut i = w;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && changes < 5_000 {
                let seat = seats[((i * 7919) % seats.len() as u64) as usize];
                let post = |path: &str, body: Value| {
                    client
                        .post(format!("{url}{path}"))
                        .header("X-User-ID", ADMIN)
                        .json(&body)
                        .send()
                };
                let r = post(
                    "/api/v1/seats/allocate",
                    json!({"seat_id": seat, "learner_id": format!("w{w}-{i}")}),
                )
                .await
                .unwrap_or_else(|e| panic!("allocate: {e}"));
                if r.status() == 400 {
                    let r = post("/api/v1/seats/reclaim", json!({"seat_id": seat}))
                        .await
                        .unwrap_or_else(|e| panic!("reclaim: {e}"));
                    assert!(r.status().is_success() || r.status() == 400, "{}", r.status());
                }
                changes += 1;
                i += 4;
            }
            changes
        }));
    }
    let buyer = {
        let client = app.client.clone();
        let url = app.url("/api/v1/seats/purchase");
        tokio::spawn(async move {
            let mut bought = Vec::new();
            for tenant in [b, a, d, a] {
                let r = client
                    .post(&url)
                    .header("X-User-ID", ADMIN)
                    .json(&json!({"tenant_id": tenant, "count": 50}))
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("purchase: {e}"));
                let seats: Vec<Value> = r.json().await.unwrap_or_else(|e| panic!("purchase body: {e}"));
                bought.extend(ids(&seats));
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            bought
        })
    };

    // Pages small enough that the walk takes a while.
    let listed = ids(&all_pages(&app, ADMIN, &format!("/api/v1/seats?tenantId={d}"), 17).await);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut changed = 0;
    for w in writers {
        changed += w.await.unwrap_or_else(|e| panic!("writer: {e}"));
    }
    let bought = buyer.await.unwrap_or_else(|e| panic!("buyer: {e}"));
    // Each writer makes at most one change after the walk ended.
    assert!(changed > 4, "the seats did not change during the walk");

    // Strictly increasing: no seat twice, none out of order.
    assert!(listed.windows(2).all(|w| w[0] < w[1]), "not in id order / repeated");
    // Every seat that existed throughout is there; anything else was bought meanwhile.
    let listed_set: BTreeSet<u64> = listed.iter().copied().collect();
    assert!(
        before.is_subset(&listed_set),
        "{} seats missing",
        before.difference(&listed_set).count()
    );
    let extra: BTreeSet<u64> = listed_set.difference(&before).copied().collect();
    assert!(
        extra.iter().all(|s| bought.contains(s)),
        "unknown seats listed: {extra:?}"
    );

    // At rest, a state filter counts what the summaries count.
    let assigned = all_pages(&app, ADMIN, &format!("/api/v1/seats?tenantId={d}&state=assigned"), 1000).await;
    let mut summed = 0;
    for t in [d, a, b] {
        summed += app.summary(t).await["assigned_seats"].as_u64().unwrap_or(0);
    }
    assert_eq!(assigned.len() as u64, summed);
    let everything = all_pages(&app, ADMIN, &format!("/api/v1/seats?tenantId={d}"), 1000).await;
    assert_eq!(everything.len(), before.len() + bought.len());
}

#[tokio::test]
async fn the_export_parses_back_to_the_listing() {
    let app = TestApp::spawn().await;
    let d = app.district("D").await;
    let a = app.school(d, "A").await;
    let b = app.school(d, "B").await;
    // More seats than one export page (10,000), interleaved across tenants.
    let mut seats = app.purchase(a, 9_000).await;
    seats.extend(app.purchase(d, 2_500).await);
    seats.extend(app.purchase(b, 9_000).await);
    seats.extend(app.purchase(a, 20).await);
    // Learner ids that need quoting, and ones a spreadsheet would run.
    let learners = [
        "plain",
        "with,comma",
        "with \"quotes\"",
        "=HYPERLINK(\"http://x\")",
        "+1",
        "-17",
        "@SUM(A1)",
        "l-17",
    ];
    for (i, learner) in learners.iter().enumerate() {
        let seat = seats[i * 2_600];
        assert_eq!(app.allocate(seat, learner).await.status, 200, "{learner}");
    }

    let (status, kind, text) = export(&app, ADMIN, d).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(kind, "text/csv; charset=utf-8");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap_or_else(|e| panic!("header: {e}"))
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header, ["seat_id", "tenant_id", "state", "learner_id", "assigned_at"]);
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| {
            r.unwrap_or_else(|e| panic!("row: {e}"))
                .iter()
                .map(str::to_owned)
                .collect()
        })
        .collect();

    let listed = all_pages(&app, ADMIN, &format!("/api/v1/seats?tenantId={d}"), 1000).await;
    assert_eq!(listed.len(), seats.len());
    assert_eq!(rows.len(), listed.len());
    for (row, seat) in rows.iter().zip(&listed) {
        let learner = seat["learner_id"].as_str().unwrap_or("");
        let defused = if learner.starts_with(['=', '+', '-', '@']) {
            format!("'{learner}")
        } else {
            learner.to_owned()
        };
        let expected = vec![
            seat["id"].to_string(),
            seat["tenant_id"].to_string(),
            seat["state"].as_str().unwrap_or("").to_owned(),
            defused,
            seat["assigned_at"].as_str().unwrap_or("").to_owned(),
        ];
        assert_eq!(*row, expected);
    }
    let exported: BTreeMap<String, String> = rows
        .iter()
        .filter(|r| !r[3].is_empty())
        .map(|r| (r[0].clone(), r[3].clone()))
        .collect();
    assert_eq!(exported.len(), learners.len());
    assert!(exported.values().any(|l| l == "with \"quotes\""));
    assert!(exported.values().any(|l| l == "'=HYPERLINK(\"http://x\")"));
    assert!(exported.values().any(|l| l == "'-17"));
    assert!(exported.values().any(|l| l == "l-17"));

    // A school's export is its own seats; an empty tenant's is the header.
    let (_, _, school) = export(&app, ADMIN, b).await;
    assert_eq!(school.lines().count(), 1 + 9_000);
    let empty = app.school(d, "Empty").await;
    let (status, _, text) = export(&app, ADMIN, empty).await;
    assert_eq!(
        (status, text.as_str()),
        (200, "seat_id,tenant_id,state,learner_id,assigned_at\n")
    );
    // HEAD answers as GET does, without the body.
    let head = app
        .client
        .head(app.url(&format!("/api/v1/seats/export?tenantId={d}")))
        .header("X-User-ID", ADMIN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("HEAD: {e}"));
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers().get("content-type").and_then(|v| v.to_str().ok()),
        Some("text/csv; charset=utf-8")
    );
    assert_eq!(head.bytes().await.map(|b| b.len()).ok(), Some(0));
}

#[tokio::test]
async fn bad_listing_queries_are_422_and_unknown_tenants_404() {
    let app = TestApp::spawn().await;
    let d = app.district("D").await;
    let a = app.school(d, "A").await;
    app.purchase(a, 3).await;
    let districts = app.get("/api/v1/districts?limit=1").await;
    assert_eq!(districts.status, 200);
    let district_cursor = districts.body["next_cursor"].as_str().map(str::to_owned);
    assert!(district_cursor.is_none(), "one district: {}", districts.body);
    let seat_page = app.get(&format!("/api/v1/seats?tenantId={a}&limit=1")).await;
    let seat_cursor = seat_page.body["next_cursor"].as_str().unwrap_or("").to_owned();

    for (path, detail) in [
        ("/api/v1/seats".to_owned(), "query parameter tenantId is required"),
        (
            "/api/v1/seats?tenantId=abc".to_owned(),
            "query parameter tenantId must be a positive integer",
        ),
        (
            format!("/api/v1/seats?tenantId={a}&limit=0"),
            "limit must be an integer from 1 to 1000",
        ),
        (
            format!("/api/v1/seats?tenantId={a}&limit=1001"),
            "limit must be an integer from 1 to 1000",
        ),
        (
            format!("/api/v1/seats?tenantId={a}&limit=ten"),
            "limit must be an integer from 1 to 1000",
        ),
        (
            format!("/api/v1/seats?tenantId={a}&cursor=garbage"),
            "cursor is not a cursor this service handed out",
        ),
        (
            format!("/api/v1/seats?tenantId={a}&cursor="),
            "cursor is not a cursor this service handed out",
        ),
        (
            format!("/api/v1/seats?tenantId={a}&state=taken"),
            "state must be free, reserved or assigned",
        ),
        (
            format!("/api/v1/seats?tenantId={a}&learnerId=%20"),
            "learner_id must be 1 to 255 characters and not blank",
        ),
        (
            "/api/v1/seats/export".to_owned(),
            "query parameter tenantId is required",
        ),
        (
            "/api/v1/districts?limit=0".to_owned(),
            "limit must be an integer from 1 to 1000",
        ),
        (
            // A seat listing's cursor is not a district listing's.
            format!("/api/v1/districts?cursor={seat_cursor}"),
            "cursor is not a cursor this service handed out",
        ),
        (
            format!("/api/v1/roles?tenantId={a}&limit=0"),
            "limit must be an integer from 1 to 1000",
        ),
        (
            format!("/api/v1/roles?tenantId={a}&cursor={seat_cursor}"),
            "cursor is not a cursor this service handed out",
        ),
        (
            format!("/api/v1/roles/events?tenantId={a}&cursor=x"),
            "cursor is not a cursor this service handed out",
        ),
        (
            "/api/v1/learners/%20/seats".to_owned(),
            "learner_id must be 1 to 255 characters and not blank",
        ),
        (
            "/api/v1/learners/%FF/seats".to_owned(),
            "path segment is not valid UTF-8",
        ),
    ] {
        let r = app.get(&path).await;
        assert_eq!((r.status, r.detail()), (422, detail), "{path}");
        assert_eq!(r.body["error_code"], "VALIDATION_ERROR");
    }

    for path in [
        "/api/v1/seats?tenantId=999".to_owned(),
        "/api/v1/seats/export?tenantId=999".to_owned(),
        "/api/v1/roles/events?tenantId=999&limit=5".to_owned(),
    ] {
        let r = app.get(&path).await;
        assert_eq!((r.status, r.detail()), (404, "Tenant not found"), "{path}");
        assert_eq!(r.body["error_code"], "TENANT_NOT_FOUND");
    }
    // Seat ids still route to the seat (the literal `export` does not take them).
    let seat = app
        .get(&format!("/api/v1/seats/{}", seat_page.body["items"][0]["id"]))
        .await;
    assert_eq!(seat.status, 200);
    let wrong = app.post("/api/v1/seats/export?tenantId=1", json!({})).await;
    assert_eq!(wrong.status, 405);
    // Every listing needs an identity.
    for path in [
        format!("/api/v1/seats?tenantId={a}"),
        format!("/api/v1/seats/export?tenantId={a}"),
        "/api/v1/learners/l-1/seats".to_owned(),
        "/api/v1/districts".to_owned(),
    ] {
        let r = app.send(app.client.get(app.url(&path))).await;
        assert_eq!(
            (r.status, r.body["error_code"].clone()),
            (401, json!("UNAUTHORIZED")),
            "{path}"
        );
    }
    let unknown_learner = app.get("/api/v1/learners/nobody-holds-this/seats").await;
    assert_eq!((unknown_learner.status, unknown_learner.body), (200, json!([])));
}

/// Platform admin builds: district D with schools A and B, district O with
/// school P; `kim` holds a seat in D, A, B and P.
struct World {
    d: u64,
    a: u64,
    b: u64,
    o: u64,
    p: u64,
    kim: BTreeMap<u64, u64>,
}

async fn world(app: &TestApp) -> World {
    let create = |path: String, name: &str| {
        let body = json!({ "name": name });
        async move { post_as(app, ROOT, &path, body).await.id() }
    };
    let d = create("/api/v1/district".into(), "D").await;
    let a = create(format!("/api/v1/district/{d}/schools"), "A").await;
    let b = create(format!("/api/v1/district/{d}/schools"), "B").await;
    let o = create("/api/v1/district".into(), "O").await;
    let p = create(format!("/api/v1/district/{o}/schools"), "P").await;
    let mut kim = BTreeMap::new();
    for t in [d, a, b, p] {
        let r = post_as(app, ROOT, "/api/v1/seats/purchase", json!({"tenant_id": t, "count": 3})).await;
        let seat = r.body[1]["id"].as_u64().unwrap_or_else(|| panic!("{}", r.body));
        let given = post_as(
            app,
            ROOT,
            "/api/v1/seats/allocate",
            json!({"seat_id": seat, "learner_id": "kim smith"}),
        )
        .await;
        assert_eq!(given.status, 200, "{}", given.body);
        kim.insert(t, seat);
    }
    grant(app, "adm", a, "admin").await;
    grant(app, "tch", a, "teacher").await;
    grant(app, "lrn", a, "learner").await;
    grant(app, "dadm", d, "admin").await;
    grant(app, "kim smith", a, "learner").await;
    World { d, a, b, o, p, kim }
}

#[tokio::test]
async fn listings_follow_the_role_matrix() {
    let app = enforced().await;
    let w = world(&app).await;
    // Reading seats (list and export) needs what reading a seat needs:
    // teacher or above, in the tenant or its district.
    let cases = [
        ("root", w.a, 200),
        ("root", w.p, 200),
        ("adm", w.a, 200),
        ("tch", w.a, 200),
        ("lrn", w.a, 403),
        ("tch", w.b, 403),
        ("tch", w.d, 403),
        ("dadm", w.a, 200),
        ("dadm", w.d, 200),
        ("dadm", w.p, 404),
        ("nobody", w.a, 404),
    ];
    for (user, tenant, status) in cases {
        let r = get_as(&app, user, &format!("/api/v1/seats?tenantId={tenant}")).await;
        assert_eq!(r.status, status, "{user} lists {tenant}: {}", r.body);
        let (exported, _, body) = export(&app, user, tenant).await;
        assert_eq!(exported, status, "{user} exports {tenant}: {body}");
        if status == 403 {
            assert_eq!(r.body["error_code"], "FORBIDDEN");
            assert_eq!(r.detail(), "This action requires the teacher role in this tenant");
        }
    }
    let listed = get_as(&app, "dadm", &format!("/api/v1/seats?tenantId={}", w.d)).await;
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(9));

    // Paged roles need what the whole list needs; the role trail, an admin.
    let roles = format!("/api/v1/roles?tenantId={}&limit=2", w.a);
    assert_eq!(get_as(&app, "tch", &roles).await.status, 200);
    assert_eq!(get_as(&app, "lrn", &roles).await.status, 403);
    assert_eq!(get_as(&app, "nobody", &roles).await.status, 404);
    let events = format!("/api/v1/roles/events?tenantId={}&limit=2", w.a);
    assert_eq!(get_as(&app, "adm", &events).await.status, 200);
    assert_eq!(get_as(&app, "tch", &events).await.status, 403);
    assert_eq!(get_as(&app, "nobody", &events).await.status, 404);
}

#[tokio::test]
async fn a_learners_seats_in_every_tenant_the_caller_may_read() {
    let app = enforced().await;
    let w = world(&app).await;
    let path = "/api/v1/learners/kim%20smith/seats";
    let seen = |r: &Response| -> BTreeSet<u64> {
        assert_eq!(r.status, 200, "{}", r.body);
        r.body
            .as_array()
            .unwrap_or_else(|| panic!("not a list: {}", r.body))
            .iter()
            .map(|s| {
                assert_eq!(s["learner_id"], "kim smith");
                s["tenant_id"].as_u64().unwrap_or(0)
            })
            .collect()
    };
    let all: BTreeSet<u64> = w.kim.keys().copied().collect();
    assert_eq!(seen(&get_as(&app, ROOT, path).await), all);
    // The district admin reads the district and its schools, not O's.
    assert_eq!(seen(&get_as(&app, "dadm", path).await), BTreeSet::from([w.d, w.a, w.b]));
    // A teacher in A reads A only; a learner role reads nothing of others'.
    assert_eq!(seen(&get_as(&app, "tch", path).await), BTreeSet::from([w.a]));
    assert_eq!(seen(&get_as(&app, "lrn", path).await), BTreeSet::new());
    assert_eq!(seen(&get_as(&app, "nobody", path).await), BTreeSet::new());
    // Kim sees her own seats in the district where she holds a role.
    assert_eq!(
        seen(&get_as(&app, "kim smith", path).await),
        BTreeSet::from([w.d, w.a, w.b])
    );
    // In id order, each as GET /seats/{id} shows it.
    let r = get_as(&app, ROOT, path).await;
    let listed = r.body.as_array().cloned().unwrap_or_default();
    let seat_ids = ids(&listed);
    let mut sorted = seat_ids.clone();
    sorted.sort_unstable();
    assert_eq!(seat_ids, sorted);
    for seat in &listed {
        let one = get_as(&app, ROOT, &format!("/api/v1/seats/{}", seat["id"])).await;
        assert_eq!(one.body, *seat);
    }
    // Reclaimed: gone from the lookup.
    let r = post_as(&app, ROOT, "/api/v1/seats/reclaim", json!({"seat_id": w.kim[&w.p]})).await;
    assert_eq!(r.status, 200);
    assert_eq!(seen(&get_as(&app, ROOT, path).await), BTreeSet::from([w.d, w.a, w.b]));
}

#[tokio::test]
async fn districts_list_those_in_the_callers_reach() {
    let app = enforced().await;
    let w = world(&app).await;
    let mut more = Vec::new();
    for i in 0..5 {
        more.push(
            post_as(&app, ROOT, "/api/v1/district", json!({"name": format!("X{i}")}))
                .await
                .id(),
        );
    }
    let every: Vec<u64> = [w.d, w.o].into_iter().chain(more.iter().copied()).collect();
    for limit in [1, 2, 7, 100] {
        let listed = all_pages(&app, ROOT, "/api/v1/districts?", limit).await;
        assert_eq!(ids(&listed), every, "limit {limit}");
        assert!(listed
            .iter()
            .all(|t| t["kind"] == "district" && t["parent_id"].is_null()));
    }
    // A role in a school or in the district: that district.
    grant(&app, "both", more[3], "teacher").await;
    let school_of_o = w.p;
    grant(&app, "both", school_of_o, "manager").await;
    assert_eq!(
        ids(&all_pages(&app, "both", "/api/v1/districts?", 1).await),
        vec![w.o, more[3]]
    );
    assert_eq!(ids(&all_pages(&app, "tch", "/api/v1/districts?", 10).await), vec![w.d]);
    assert_eq!(ids(&all_pages(&app, "dadm", "/api/v1/districts?", 10).await), vec![w.d]);
    let none = get_as(&app, "nobody", "/api/v1/districts").await;
    assert_eq!(
        (none.status, none.body),
        (200, json!({"items": [], "next_cursor": null}))
    );
    // The items are the districts as GET /tenant/{id} shows them.
    let listed = all_pages(&app, ROOT, "/api/v1/districts?", 100).await;
    let one = get_as(&app, ROOT, &format!("/api/v1/tenant/{}", w.d)).await;
    assert_eq!(listed[0], one.body);
}

#[tokio::test]
async fn roles_and_role_events_page_only_when_asked() {
    let app = TestApp::spawn().await;
    let d = app.district("D").await;
    let a = app.school(d, "A").await;
    let mut granted = Vec::new();
    for i in 0..7 {
        let r = app
            .post(
                "/api/v1/roles",
                json!({"user_id": format!("u{i}"), "tenant_id": a, "role": "teacher"}),
            )
            .await;
        assert_eq!(r.status, 201);
        granted.push(r.id());
    }
    // Another tenant's roles are not listed.
    assert_eq!(
        app.post(
            "/api/v1/roles",
            json!({"user_id": "u0", "tenant_id": d, "role": "admin"})
        )
        .await
        .status,
        201
    );
    let r = app
        .post(&format!("/api/v1/roles/{}/deactivate", granted[2]), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Without limit or cursor: the array, exactly as before.
    let whole = app.get(&format!("/api/v1/roles?tenantId={a}")).await;
    assert_eq!(whole.status, 200);
    let array = whole
        .body
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("{}", whole.body));
    assert_eq!(ids(&array), granted);
    for limit in [1, 3, 7, 1000] {
        let paged = all_pages(&app, ADMIN, &format!("/api/v1/roles?tenantId={a}"), limit).await;
        assert_eq!(paged, array, "limit {limit}");
    }
    // A cursor alone pages with the default limit.
    let first = app.get(&format!("/api/v1/roles?tenantId={a}&limit=2")).await;
    let cursor = first.body["next_cursor"].as_str().unwrap_or("").to_owned();
    let rest = app.get(&format!("/api/v1/roles?tenantId={a}&cursor={cursor}")).await;
    assert_eq!(rest.body["items"].as_array().map(Vec::len), Some(5));
    assert!(rest.body["next_cursor"].is_null());

    let whole = app.get(&format!("/api/v1/roles/events?tenantId={a}")).await;
    let events = whole
        .body
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("{}", whole.body));
    assert_eq!(events.len(), 8);
    assert_eq!(events[7]["change"], "deactivated");
    for limit in [1, 3, 8, 1000] {
        let paged = all_pages(&app, ADMIN, &format!("/api/v1/roles/events?tenantId={a}"), limit).await;
        assert_eq!(paged, events, "limit {limit}");
    }
    // After a restart, the same pages.
    let app = app.restart().await;
    let paged = all_pages(&app, ADMIN, &format!("/api/v1/roles/events?tenantId={a}"), 3).await;
    assert_eq!(paged, events);
    let paged = all_pages(&app, ADMIN, &format!("/api/v1/roles?tenantId={a}"), 3).await;
    assert_eq!(paged, array);
    let empty = app.get(&format!("/api/v1/roles?tenantId={d}&limit=5")).await;
    assert_eq!(empty.body["items"].as_array().map(Vec::len), Some(1));
}
