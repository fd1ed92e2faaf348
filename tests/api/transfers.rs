//! Seats moved between the tenants of a district (issue 15 §2): answers and
//! refusals, the audit entries on both sides, roles, restarts, kill -9 at
//! random moments (each seat in exactly one tenant afterwards, counters in
//! agreement), and transfers racing allocations.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use serde_json::{json, Value};

use super::helpers::*;
use super::process::Server;

async fn transfer(app: &TestApp, body: Value) -> Response {
    app.post("/api/v1/seats/transfer", body).await
}

fn results(body: &Value) -> Vec<(u64, String)> {
    body["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["seat_id"].as_u64().unwrap_or_default(),
                r["result"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Every seat a tenant holds (a district's listing includes its schools').
async fn seats_of(get: impl AsyncGet, tenant: u64) -> Vec<u64> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/seats?tenantId={tenant}&limit=1000&cursor={c}"),
            None => format!("/api/v1/seats?tenantId={tenant}&limit=1000"),
        };
        let (status, body) = get.get(&path).await;
        assert_eq!(status, 200, "{body}");
        for s in body["items"].as_array().into_iter().flatten() {
            assert_eq!(s["tenant_id"], tenant, "{s}");
            out.push(s["id"].as_u64().unwrap_or_default());
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

/// A GET over either kind of server (in-process or child process).
trait AsyncGet: Copy {
    async fn get(self, path: &str) -> (u16, Value);
}

impl AsyncGet for &TestApp {
    async fn get(self, path: &str) -> (u16, Value) {
        let r = TestApp::get(self, path).await;
        (r.status, r.body)
    }
}

impl AsyncGet for &Server {
    async fn get(self, path: &str) -> (u16, Value) {
        Server::get(self, path).await
    }
}

#[tokio::test]
async fn free_seats_move_between_a_districts_tenants_with_an_entry_on_each_side() {
    let app = TestApp::spawn().await;
    let d = app.district("D").await;
    let a = app.school(d, "A").await;
    let b = app.school(d, "B").await;
    let bought = app.purchase(d, 10).await;

    let r = transfer(&app, json!({"from_tenant_id": d, "to_tenant_id": a, "count": 4})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (&r.body["from_tenant_id"], &r.body["to_tenant_id"]),
        (&json!(d), &json!(a))
    );
    let moved: Vec<u64> = results(&r.body).iter().map(|(s, _)| *s).collect();
    assert_eq!(moved, bought[..4], "the lowest free seats");
    assert_eq!(r.body["totals"]["transferred"], 4);
    let seat = app.seat(bought[0]).await;
    assert_eq!((&seat["tenant_id"], &seat["state"]), (&json!(a), &json!("free")));
    let reasons: Vec<(Value, Value)> = app
        .audit(bought[0])
        .await
        .iter()
        .map(|e| (e["reason"].clone(), e["changed_by"].clone()))
        .collect();
    assert_eq!(
        reasons,
        [
            (json!("Seat purchased"), json!(ADMIN)),
            (json!(format!("Transferred to tenant {a}")), json!(ADMIN)),
            (json!(format!("Transferred from tenant {d}")), json!(ADMIN)),
        ]
    );
    assert_eq!(app.summary(d).await["total_seats"], 6);
    assert_eq!(app.summary(a).await["total_seats"], 4);
    let district = app.get(&format!("/api/v1/district/{d}/summary")).await.body;
    assert_eq!(
        (&district["total_seats"], &district["own"]["total_seats"]),
        (&json!(10), &json!(6))
    );

    // By id, school to school: each seat on its own merits.
    assert_eq!(app.allocate(bought[1], "ava").await.status, 200);
    assert_eq!(
        app.post(
            "/api/v1/seats/reserve",
            json!({"tenant_id": a, "seat_id": bought[2], "ttl_seconds": 60})
        )
        .await
        .status,
        201
    );
    let r = transfer(
        &app,
        json!({"from_tenant_id": a, "to_tenant_id": b, "seat_ids": [bought[1], bought[3], bought[2], 9_999, bought[3], bought[5], 0]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rows: Vec<String> = results(&r.body).into_iter().map(|(_, x)| x).collect();
    assert_eq!(
        rows,
        [
            "not_available",
            "transferred",
            "not_available",
            "not_found",
            "duplicate",
            "not_found",
            "invalid"
        ]
    );
    assert_eq!(
        r.body["results"][0]["detail"],
        "Seat is not available. Current state: assigned"
    );
    assert_eq!(
        r.body["results"][2]["detail"],
        "Seat is not available. Current state: reserved"
    );
    assert_eq!(app.seat(bought[3]).await["tenant_id"], b);
    // A moved seat is its new tenant's to allocate.
    assert_eq!(app.allocate(bought[3], "bo").await.status, 200);
    assert_eq!(app.allocate(bought[0], "cy").await.status, 200);
    assert_eq!(seats_of(&app, b).await, [bought[3]]);
    assert_eq!(seats_of(&app, a).await, [bought[0], bought[1], bought[2]]);

    let stats = app.get(&format!("/api/v1/seats/stats?tenantId={d}")).await.body;
    assert_eq!(
        (&stats["transfers_in"], &stats["transfers_out"]),
        (&json!(5), &json!(5)),
        "{stats}"
    );
    let metrics = super::reservations::metrics_text(&app).await;
    assert!(
        metrics.contains(r#"tenant_seat_transitions_total{kind="transfer_in"} 5"#),
        "{metrics}"
    );
    for t in [d, a, b] {
        let v = app.get(&format!("/api/v1/audit/verify?tenantId={t}")).await.body;
        assert_eq!(v["intact"], true, "tenant {t}: {v}");
    }
    // All of it as it was after a restart.
    let app = app.restart().await;
    assert_eq!(app.seat(bought[3]).await["learner_id"], "bo");
    assert_eq!(seats_of(&app, b).await, [bought[3]]);
    assert_eq!(seats_of(&app, a).await, [bought[0], bought[1], bought[2]]);
    assert_eq!(app.summary(d).await["total_seats"], 6);
    for t in [d, a, b] {
        let v = app.get(&format!("/api/v1/audit/verify?tenantId={t}")).await.body;
        assert_eq!(v["intact"], true, "tenant {t} after restart: {v}");
    }
}

#[tokio::test]
async fn transfers_refuse_what_they_cannot_do() {
    let app = TestApp::spawn().await;
    let d = app.district("D").await;
    let a = app.school(d, "A").await;
    let o = app.district("O").await;
    app.purchase(d, 3).await;
    for (body, status, code) in [
        (
            json!({"from_tenant_id": d, "to_tenant_id": o, "count": 1}),
            422,
            "TRANSFER_ACROSS_DISTRICTS",
        ),
        (
            json!({"from_tenant_id": d, "to_tenant_id": d, "count": 1}),
            422,
            "VALIDATION_ERROR",
        ),
        (
            json!({"from_tenant_id": d, "to_tenant_id": a, "count": 4}),
            409,
            "NOT_ENOUGH_FREE_SEATS",
        ),
        (
            json!({"from_tenant_id": d, "to_tenant_id": a, "count": 0}),
            422,
            "VALIDATION_ERROR",
        ),
        (json!({"from_tenant_id": d, "to_tenant_id": a}), 422, "VALIDATION_ERROR"),
        (
            json!({"from_tenant_id": d, "to_tenant_id": a, "count": 1, "seat_ids": [1]}),
            422,
            "VALIDATION_ERROR",
        ),
        (
            json!({"from_tenant_id": d, "to_tenant_id": a, "seat_ids": []}),
            422,
            "VALIDATION_ERROR",
        ),
        (
            json!({"from_tenant_id": d, "to_tenant_id": 999, "count": 1}),
            404,
            "TENANT_NOT_FOUND",
        ),
    ] {
        let r = transfer(&app, body.clone()).await;
        assert_eq!(
            (r.status, r.body["error_code"].as_str()),
            (status, Some(code)),
            "{body}: {}",
            r.body
        );
    }
    let r = transfer(&app, json!({"from_tenant_id": d, "to_tenant_id": a, "count": 4})).await;
    assert_eq!(r.detail(), "Not enough free seats: 3 free, 4 asked for");
    assert_eq!(
        app.put(&format!("/api/v1/tenant/{a}"), json!({"is_active": false}))
            .await
            .status,
        200
    );
    let inactive = transfer(&app, json!({"from_tenant_id": d, "to_tenant_id": a, "count": 1})).await;
    assert_eq!(
        (inactive.status, &inactive.body["error_code"]),
        (409, &json!("TENANT_INACTIVE"))
    );
    assert_eq!(app.summary(d).await["total_seats"], 3, "nothing moved");
}

#[tokio::test]
async fn a_transfer_needs_an_admin_of_both_tenants_or_of_the_district() {
    let app = super::auth::enforced().await;
    let as_user = |user: &'static str, body: Value| {
        let req = app
            .client
            .post(app.url("/api/v1/seats/transfer"))
            .header("X-User-ID", user)
            .json(&body);
        let app = &app;
        async move { app.send(req).await }
    };
    let root = |path: String, body: Value| {
        let req = app.client.post(app.url(&path)).header("X-User-ID", "root").json(&body);
        let app = &app;
        async move { app.send(req).await }
    };
    let d = root("/api/v1/district".into(), json!({"name": "D"})).await.id();
    let a = root(format!("/api/v1/district/{d}/schools"), json!({"name": "A"}))
        .await
        .id();
    let b = root(format!("/api/v1/district/{d}/schools"), json!({"name": "B"}))
        .await
        .id();
    assert_eq!(
        root("/api/v1/seats/purchase".into(), json!({"tenant_id": a, "count": 5}))
            .await
            .status,
        201
    );
    for (user, tenant, role) in [
        ("a_admin", a, "admin"),
        ("both", a, "admin"),
        ("both", b, "admin"),
        ("d_admin", d, "admin"),
        ("a_manager", a, "manager"),
        ("b_manager", b, "manager"),
        ("a_manager", b, "admin"),
    ] {
        let r = root(
            "/api/v1/roles".into(),
            json!({"user_id": user, "tenant_id": tenant, "role": role}),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let body = json!({"from_tenant_id": a, "to_tenant_id": b, "count": 1});
    for (user, status) in [
        ("a_admin", 403),
        ("a_manager", 403),
        ("b_manager", 403),
        ("stranger", 404),
        ("both", 200),
        ("d_admin", 200),
    ] {
        let r = as_user(user, body.clone()).await;
        assert_eq!(r.status, status, "{user}: {}", r.body);
    }
}

/// The arrival's write refused (after the source's stood): the store stops
/// rather than leave seats in transit, and the restart writes the arrival.
#[tokio::test]
async fn an_arrival_cut_short_is_finished_at_start() {
    let faults = std::sync::Arc::new(super::faulty_disk::Faults::none());
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")));
    let app = TestApp::spawn_with_faults(std::sync::Arc::clone(&dir), |_| {}, std::sync::Arc::clone(&faults)).await;
    let d = app.district("D").await;
    let a = app.school(d, "A").await;
    let bought = app.purchase(a, 5).await;
    // Ids leased already: the source's write is the next, the arrival's the one after.
    assert_eq!(
        transfer(&app, json!({"from_tenant_id": a, "to_tenant_id": d, "count": 1}))
            .await
            .status,
        200
    );
    faults.fail_writes_after(1);
    let r = transfer(&app, json!({"from_tenant_id": a, "to_tenant_id": d, "count": 2})).await;
    assert_eq!(
        (r.status, &r.body["error_code"]),
        (503, &json!("STORE_UNAVAILABLE")),
        "{}",
        r.body
    );
    let (served, dir) = app.stopped_by_itself().await;
    assert!(served.is_err(), "the service stops after the failed arrival");
    let app = TestApp::spawn_in(dir).await;
    let moved = [bought[1], bought[2]];
    for seat in moved {
        let s = app.seat(seat).await;
        assert_eq!(s["tenant_id"], d, "{s}");
        let audit = app.audit(seat).await;
        let reasons: Vec<&str> = audit.iter().filter_map(|e| e["reason"].as_str()).collect();
        assert_eq!(
            reasons,
            [
                "Seat purchased",
                &format!("Transferred to tenant {d}"),
                &format!("Transferred from tenant {a}")
            ]
        );
    }
    assert_eq!(seats_of(&app, a).await, bought[3..]);
    assert_eq!(app.summary(a).await["total_seats"], 2);
    assert_eq!(
        app.get(&format!("/api/v1/district/{d}/summary")).await.body["own"]["total_seats"],
        3
    );
    for t in [a, d] {
        let v = app.get(&format!("/api/v1/audit/verify?tenantId={t}")).await.body;
        assert_eq!(v["intact"], true, "tenant {t}: {v}");
    }
}

/// kill -9 at a random moment of a transfer, ≥ 20 rounds: after each
/// restart every seat is in exactly one of the two schools, the counters
/// agree with the seats, an answered transfer stands, and both chains verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_transfers_leaves_every_seat_in_exactly_one_tenant() {
    const SEATS: u64 = 1_500;
    const MOVE: u64 = 500;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let mut server = Server::start(&data);
    let (_, d) = server
        .post("/api/v1/district", json!({"name": "D"}))
        .await
        .unwrap_or_default();
    let mut schools = Vec::new();
    for name in ["A", "B"] {
        let (_, s) = server
            .post(&format!("/api/v1/district/{}/schools", d["id"]), json!({"name": name}))
            .await
            .unwrap_or_default();
        schools.push(s["id"].as_u64().unwrap_or_else(|| panic!("no school")));
    }
    let (a, b) = (schools[0], schools[1]);
    let (status, _) = server
        .post("/api/v1/seats/purchase", json!({"tenant_id": a, "count": SEATS}))
        .await
        .unwrap_or_default();
    assert_eq!(status, 201);
    let mut rng = super::load::Rng::new(super::load::seed("TENANT_SOAK_SEED"));
    let all: BTreeSet<u64> = seats_of(&server, a).await.into_iter().collect();
    let (mut answered, mut cut, mut finished) = (0, 0, 0);
    // How long one transfer takes here: the kills fall anywhere from
    // before it starts to after it is answered.
    let timed = std::time::Instant::now();
    let (status, body) = server
        .post(
            "/api/v1/seats/transfer",
            json!({"from_tenant_id": a, "to_tenant_id": b, "count": MOVE}),
        )
        .await
        .unwrap_or_default();
    assert_eq!(status, 200, "{body}");
    let took = timed.elapsed().as_millis() as u64;
    let (mut in_a, mut in_b): (BTreeSet<u64>, BTreeSet<u64>) = (
        seats_of(&server, a).await.into_iter().collect(),
        seats_of(&server, b).await.into_iter().collect(),
    );
    for round in 0..20u64 {
        // Move from whichever school holds more.
        let (from, to) = if in_a.len() >= in_b.len() { (a, b) } else { (b, a) };
        let request = server.post(
            "/api/v1/seats/transfer",
            json!({"from_tenant_id": from, "to_tenant_id": to, "count": MOVE}),
        );
        let kill_at = Duration::from_millis(rng.below(took * 3 / 2 + 1));
        let outcome = tokio::time::timeout(kill_at, request).await;
        server.kill9();
        let acknowledged = match outcome {
            Ok(Some((200, body))) => {
                answered += 1;
                Some(body)
            }
            Ok(other) => panic!("round {round}: {other:?}"),
            Err(_) => {
                cut += 1;
                None
            }
        };
        server = Server::start(&data);
        finished += u64::from(server.stderr().contains("finished a transfer a crash cut short"));
        let now_a: BTreeSet<u64> = seats_of(&server, a).await.into_iter().collect();
        let now_b: BTreeSet<u64> = seats_of(&server, b).await.into_iter().collect();
        assert!(now_a.is_disjoint(&now_b), "round {round}: a seat in both schools");
        assert_eq!(
            now_a.union(&now_b).copied().collect::<BTreeSet<_>>(),
            all,
            "round {round}: a seat in neither school"
        );
        // The transfer happened whole or not at all.
        let moved: BTreeSet<u64> = if from == a {
            in_a.difference(&now_a)
        } else {
            in_b.difference(&now_b)
        }
        .copied()
        .collect();
        assert!(
            moved.len() as u64 == MOVE || moved.is_empty(),
            "round {round}: {} moved",
            moved.len()
        );
        if let Some(body) = acknowledged {
            let listed: BTreeSet<u64> = results(&body).iter().map(|(s, _)| *s).collect();
            assert_eq!(listed, moved, "round {round}: an answered transfer was lost");
        }
        for (t, seats) in [(a, &now_a), (b, &now_b)] {
            let (_, summary) = server.get(&format!("/api/v1/seats/summary?tenantId={t}")).await;
            assert_eq!(summary["total_seats"], seats.len() as u64, "round {round}: {summary}");
            assert_eq!(summary["free_seats"], seats.len() as u64, "round {round}: {summary}");
            let (_, verified) = server.get(&format!("/api/v1/audit/verify?tenantId={t}")).await;
            assert_eq!(verified["intact"], true, "round {round}, tenant {t}: {verified}");
        }
        // A sample of seats: each names the tenant that lists it.
        for seat in now_a.iter().step_by(97).chain(now_b.iter().step_by(97)) {
            let (_, s) = server.get(&format!("/api/v1/seats/{seat}")).await;
            let owner = if now_a.contains(seat) { a } else { b };
            assert_eq!(s["tenant_id"], owner, "round {round}: {s}");
        }
        (in_a, in_b) = (now_a, now_b);
    }
    eprintln!(
        "kill -9 during transfers: 20 rounds (a transfer of {MOVE} took {took} ms), {answered} answered before \
         the kill, {cut} cut mid-request, {finished} finished at start; every seat in exactly one school after each"
    );
}

/// Transfers by id and allocations on the same seats at once: no seat is
/// ever in two tenants or given to two learners, and counters agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_transfers_and_allocations_never_double_book() {
    let app = TestApp::spawn().await;
    let d = app.district("D").await;
    let a = app.school(d, "A").await;
    let b = app.school(d, "B").await;
    let seats = app.purchase(a, 200).await;
    let mut rng = super::load::Rng::new(super::load::seed("TENANT_SOAK_SEED"));
    let mut jobs = Vec::new();
    for i in 0..120u64 {
        let picks: Vec<u64> = (0..5).map(|_| seats[rng.below(200) as usize]).collect();
        jobs.push((i, picks));
    }
    let work = jobs.into_iter().map(|(i, picks)| {
        let app = &app;
        async move {
            match i % 3 {
                0 => {
                    let (from, to) = if i % 2 == 0 { (a, b) } else { (b, a) };
                    let r = transfer(
                        app,
                        json!({"from_tenant_id": from, "to_tenant_id": to, "seat_ids": picks}),
                    )
                    .await;
                    assert_eq!(r.status, 200, "{}", r.body);
                }
                _ => {
                    let r = app.allocate(picks[0], &format!("l{i}")).await;
                    assert!([200, 400, 404].contains(&r.status), "{}", r.body);
                }
            }
        }
    });
    futures_util::future::join_all(work).await;
    let in_a: HashSet<u64> = seats_of(&app, a).await.into_iter().collect();
    let in_b: HashSet<u64> = seats_of(&app, b).await.into_iter().collect();
    assert!(in_a.is_disjoint(&in_b));
    assert_eq!(in_a.len() + in_b.len(), 200);
    let mut learners = HashSet::new();
    for t in [a, b] {
        let mut counted = (0u64, 0u64);
        let page = app.get(&format!("/api/v1/seats?tenantId={t}&limit=1000")).await.body;
        for s in page["items"].as_array().into_iter().flatten() {
            if s["state"] == "assigned" {
                counted.1 += 1;
                assert!(
                    learners.insert(s["learner_id"].to_string()),
                    "a learner holds two seats: {s}"
                );
            } else {
                counted.0 += 1;
            }
        }
        let summary = app.summary(t).await;
        assert_eq!(
            (summary["free_seats"].as_u64(), summary["assigned_seats"].as_u64()),
            (Some(counted.0), Some(counted.1))
        );
        let v = app.get(&format!("/api/v1/audit/verify?tenantId={t}")).await.body;
        assert_eq!(v["intact"], true, "{v}");
    }
}
