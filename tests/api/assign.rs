//! Assign without a seat id, bulk assign and bulk reclaim (issue: seat
//! workflows): each route's answers and refusals, exactly-once under
//! concurrency, all-or-nothing on a failing disk and across kill -9.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::faulty_disk::Faults;
use super::helpers::*;
use super::process::Server;

async fn school_with_seats(app: &TestApp, seats: u64) -> (u64, Vec<u64>) {
    let d = app.district("D").await;
    let s = app.school(d, "S").await;
    (s, app.purchase(s, seats).await)
}

/// The `result` of each row of a bulk answer, in order.
fn row_results(body: &Value) -> Vec<&str> {
    body["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|row| row["result"].as_str())
        .collect()
}

async fn assign(app: &TestApp, tenant: u64, learner: &str) -> Response {
    app.post(
        "/api/v1/seats/assign",
        json!({"tenant_id": tenant, "learner_id": learner}),
    )
    .await
}

#[tokio::test]
async fn assign_takes_the_lowest_free_seat_and_a_retry_gets_the_same_one() {
    let app = TestApp::spawn().await;
    let (s, seats) = school_with_seats(&app, 3).await;
    assert_eq!(app.allocate(seats[0], "first").await.status, 200);

    let r = assign(&app, s, "l1").await;
    assert_eq!((r.status, r.id()), (201, seats[1]), "{}", r.body);
    assert_eq!(
        (&r.body["state"], &r.body["learner_id"]),
        (&json!("assigned"), &json!("l1"))
    );
    let again = assign(&app, s, "l1").await;
    assert_eq!(
        (again.status, &again.body),
        (200, &r.body),
        "a retry answers the same seat, unchanged"
    );
    assert_eq!(app.audit(seats[1]).await.len(), 2, "the retry wrote nothing");
    // A learner who got a seat by id is found too.
    assert_eq!(assign(&app, s, "first").await.id(), seats[0]);

    assert_eq!(assign(&app, s, "l2").await.id(), seats[2]);
    let full = assign(&app, s, "l3").await;
    assert_eq!(
        (full.status, full.detail(), &full.body["error_code"]),
        (409, "No free seat in this tenant", &json!("NO_FREE_SEAT"))
    );
    // A reclaimed seat is the lowest free one again.
    assert_eq!(app.reclaim(seats[1], None).await.status, 200);
    assert_eq!(assign(&app, s, "l3").await.id(), seats[1]);

    let summary = app.summary(s).await;
    assert_eq!(
        (&summary["assigned_seats"], &summary["free_seats"]),
        (&json!(3), &json!(0))
    );
    for (body, status) in [
        (json!({"tenant_id": s, "learner_id": "  "}), 422),
        (json!({"tenant_id": s}), 422),
        (json!({"tenant_id": 0, "learner_id": "x"}), 422),
        (json!({"tenant_id": 9999, "learner_id": "x"}), 404),
    ] {
        let r = app.post("/api/v1/seats/assign", body.clone()).await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
    }
    assert_eq!(
        app.put(&format!("/api/v1/tenant/{s}"), json!({"is_active": false}))
            .await
            .status,
        200
    );
    assert_eq!(assign(&app, s, "l9").await.status, 409);
}

#[tokio::test]
async fn assign_and_bulk_need_the_role_that_allocate_needs() {
    let app = TestApp::spawn_with(|s| {
        s.auth.enforce_roles = true;
        s.auth.platform_admins = vec![ADMIN.into()];
    })
    .await;
    let (s, _) = school_with_seats(&app, 4).await;
    for (user, role) in [("mgr", "manager"), ("tch", "teacher")] {
        let r = app
            .post("/api/v1/roles", json!({"user_id": user, "tenant_id": s, "role": role}))
            .await;
        assert_eq!(r.status, 201);
    }
    let as_user = |user: &'static str, path: &'static str, body: Value| {
        let app = &app;
        async move {
            app.send(app.client.post(app.url(path)).header("X-User-ID", user).json(&body))
                .await
        }
    };
    let one = json!({"tenant_id": s, "learner_id": "l1"});
    let many = json!({"tenant_id": s, "learner_ids": ["l2"]});
    let back = json!({"tenant_id": s, "learner_ids": ["l2"]});
    assert_eq!(as_user("tch", "/api/v1/seats/assign", one.clone()).await.status, 403);
    assert_eq!(
        as_user("tch", "/api/v1/seats/assign/bulk", many.clone()).await.status,
        403
    );
    assert_eq!(
        as_user("tch", "/api/v1/seats/reclaim/bulk", back.clone()).await.status,
        403
    );
    assert_eq!(
        as_user("stranger", "/api/v1/seats/assign", one.clone()).await.status,
        404
    );
    assert_eq!(as_user("mgr", "/api/v1/seats/assign", one).await.status, 201);
    assert_eq!(as_user("mgr", "/api/v1/seats/assign/bulk", many).await.status, 200);
    assert_eq!(as_user("mgr", "/api/v1/seats/reclaim/bulk", back).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_assigns_give_each_seat_once_and_each_learner_one_seat() {
    let app = TestApp::spawn().await;
    let (s, seats) = school_with_seats(&app, 150).await;
    // 300 learners for 150 seats, each asking twice at once.
    let mut tasks = Vec::new();
    for i in 0..600 {
        let (client, url) = (app.client.clone(), app.url("/api/v1/seats/assign"));
        tasks.push(tokio::spawn(async move {
            let learner = format!("l{}", i % 300);
            let r = client
                .post(url)
                .header("X-User-ID", ADMIN)
                .json(&json!({"tenant_id": s, "learner_id": learner}))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or_else(|e| panic!("{e}"));
            (learner, status, body)
        }));
    }
    let mut holder_of_seat = std::collections::HashMap::new();
    let mut seat_of_learner = std::collections::HashMap::new();
    let (mut created, mut full) = (0, 0);
    for task in tasks {
        let (learner, status, body) = task.await.unwrap_or_else(|e| panic!("{e}"));
        match status {
            201 | 200 => {
                created += u32::from(status == 201);
                let seat = body["id"].as_u64().unwrap_or_else(|| panic!("{body}"));
                assert_eq!(body["learner_id"], json!(learner));
                if let Some(other) = holder_of_seat.insert(seat, learner.clone()) {
                    assert_eq!(other, learner, "seat {seat} given to two learners");
                }
                if let Some(other) = seat_of_learner.insert(learner.clone(), seat) {
                    assert_eq!(other, seat, "{learner} got two seats");
                }
            }
            409 => full += 1,
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!(created, 150, "exactly one 201 per seat");
    assert_eq!(holder_of_seat.len(), 150);
    assert!(full >= 150, "{full} refusals");
    let summary = app.summary(s).await;
    assert_eq!(
        (&summary["assigned_seats"], &summary["free_seats"]),
        (&json!(150), &json!(0))
    );
    let (free, _, assigned) = app.count_seats(&seats).await;
    assert_eq!((free, assigned), (0, 150), "per-seat truth");
}

#[tokio::test]
async fn bulk_assign_answers_every_row_in_order_and_survives_a_restart() {
    let app = TestApp::spawn().await;
    let (s, seats) = school_with_seats(&app, 4).await;
    assert_eq!(app.allocate(seats[0], "held").await.status, 200);
    let r = app
        .post(
            "/api/v1/seats/assign/bulk",
            json!({"tenant_id": s, "learner_ids": ["a", "held", " ", "b", "a", "c", "d", "e\u{0}"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rows = r.body["results"].as_array().cloned().unwrap_or_default();
    let results: Vec<&str> = rows.iter().filter_map(|row| row["result"].as_str()).collect();
    assert_eq!(
        results,
        [
            "assigned",
            "already_assigned",
            "invalid",
            "assigned",
            "duplicate",
            "assigned",
            "no_free_seat",
            "invalid"
        ]
    );
    let echoed: Vec<&str> = rows.iter().filter_map(|row| row["learner_id"].as_str()).collect();
    assert_eq!(echoed, ["a", "held", " ", "b", "a", "c", "d", "e\u{0}"]);
    let seat_of = |i: usize| rows[i]["seat"]["id"].as_u64();
    assert_eq!(
        (seat_of(0), seat_of(1), seat_of(3), seat_of(5)),
        (Some(seats[1]), Some(seats[0]), Some(seats[2]), Some(seats[3]))
    );
    assert!(
        rows[2]["detail"].as_str().is_some_and(|d| d.contains("learner_id")),
        "{}",
        rows[2]
    );
    assert_eq!(rows[6]["seat"], Value::Null);
    assert_eq!(
        r.body["totals"],
        json!({"assigned": 3, "already_assigned": 1, "no_free_seat": 1, "invalid": 2, "duplicate": 1})
    );
    for (seat, learner) in [(seats[1], "a"), (seats[2], "b"), (seats[3], "c")] {
        let trail = app.audit(seat).await;
        assert_eq!(trail.len(), 2, "{trail:?}");
        assert_eq!(
            (&trail[1]["new_learner_id"], &trail[1]["reason"]),
            (&json!(learner), &json!("Seat allocated to learner"))
        );
    }
    let app = app.restart().await;
    let summary = app.summary(s).await;
    assert_eq!(
        (&summary["assigned_seats"], &summary["free_seats"]),
        (&json!(4), &json!(0))
    );
    assert_eq!(app.seat(seats[3]).await["learner_id"], "c");
    let verified = app.get(&format!("/api/v1/audit/verify?tenantId={s}")).await;
    assert_eq!(verified.body["intact"], true, "{}", verified.body);

    for body in [
        json!({"tenant_id": s, "learner_ids": []}),
        json!({"tenant_id": s, "learner_ids": vec!["x"; 10_001]}),
        json!({"tenant_id": s, "learner_ids": [1, 2]}),
        json!({"tenant_id": s}),
    ] {
        let r = app.post("/api/v1/seats/assign/bulk", body).await;
        assert_eq!(r.status, 422, "{}", r.body);
    }
}

#[tokio::test]
async fn bulk_reclaim_by_seats_or_learners_frees_what_is_held() {
    let app = TestApp::spawn().await;
    let (s, seats) = school_with_seats(&app, 4).await;
    let other = app.school(app.district("Other").await, "O").await;
    let foreign = app.purchase(other, 1).await[0];
    for (i, seat) in seats.iter().take(3).enumerate() {
        assert_eq!(app.allocate(*seat, &format!("l{i}")).await.status, 200);
    }
    let r = app
        .post(
            "/api/v1/seats/reclaim/bulk",
            json!({"tenant_id": s, "seat_ids": [seats[0], seats[3], 0, foreign, seats[0], 999_999], "reason": "Term ended"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let results = row_results(&r.body);
    assert_eq!(
        results,
        [
            "reclaimed",
            "already_free",
            "invalid",
            "not_found",
            "duplicate",
            "not_found"
        ]
    );
    assert_eq!(
        r.body["totals"],
        json!({"reclaimed": 1, "already_free": 1, "not_found": 2, "invalid": 1, "duplicate": 1})
    );
    assert_eq!(app.audit(seats[0]).await[2]["reason"], "Term ended");
    assert_eq!(
        app.seat(foreign).await["state"],
        "free",
        "another tenant's seat is untouched"
    );

    let r = app
        .post(
            "/api/v1/seats/reclaim/bulk",
            json!({"tenant_id": s, "learner_ids": ["l1", "l2", "nobody"]}),
        )
        .await;
    let results = row_results(&r.body);
    assert_eq!(results, ["reclaimed", "reclaimed", "not_found"]);
    assert_eq!(app.audit(seats[1]).await[2]["reason"], "Seat reclaimed");
    let summary = app.summary(s).await;
    assert_eq!(summary["free_seats"], 4);

    for body in [
        json!({"tenant_id": s, "seat_ids": [seats[0]], "learner_ids": ["l1"]}),
        json!({"tenant_id": s}),
        json!({"tenant_id": s, "seat_ids": [seats[0]], "reason": "bad\nreason"}),
    ] {
        let r = app.post("/api/v1/seats/reclaim/bulk", body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {}", r.body);
    }
}

#[tokio::test]
async fn a_bulk_the_disk_refuses_changes_nothing() {
    let dir = Arc::new(tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")));
    let faults = Arc::new(Faults::none());
    let app = TestApp::spawn_with_faults(dir, |_| {}, Arc::clone(&faults)).await;
    let (s, seats) = school_with_seats(&app, 50).await;
    let learners: Vec<String> = (0..40).map(|i| format!("l{i}")).collect();
    faults.fail_writes_after(0);
    let r = app
        .post(
            "/api/v1/seats/assign/bulk",
            json!({"tenant_id": s, "learner_ids": learners}),
        )
        .await;
    assert_eq!(
        (r.status, &r.body["error_code"]),
        (503, &json!("STORE_UNAVAILABLE")),
        "{}",
        r.body
    );
    faults.heal_writes();
    assert_eq!(app.summary(s).await["assigned_seats"], 0);
    assert_eq!(app.audit(seats[0]).await.len(), 1);
    let app = app.restart().await;
    assert_eq!(
        app.summary(s).await["assigned_seats"],
        0,
        "nothing reached the disk either"
    );
    let r = app
        .post(
            "/api/v1/seats/assign/bulk",
            json!({"tenant_id": s, "learner_ids": learners}),
        )
        .await;
    assert_eq!(r.body["totals"]["assigned"], 40, "{}", r.body);
}

/// kill -9 at random moments while bulk assigns of 2,000 learners run: after
/// each restart a bulk is there whole (2,000 seats, 2,000 audit entries) or
/// not at all, and the chain verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_bulk_assigns_leaves_each_whole_or_absent() {
    const BULK: usize = 2_000;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let mut server = Server::start(&data);
    let post = |server: &Server, path: &str, body: Value| {
        let req = server
            .client
            .post(format!("{}{path}", server.base))
            .header("X-User-ID", "crash_test")
            .json(&body);
        async move {
            let r = req.send().await.ok()?;
            let status = r.status().as_u16();
            Some((status, r.json::<Value>().await.ok()?))
        }
    };
    let (_, d) = post(&server, "/api/v1/district", json!({"name": "D"}))
        .await
        .unwrap_or_default();
    let (_, s) = post(
        &server,
        &format!("/api/v1/district/{}/schools", d["id"]),
        json!({"name": "S"}),
    )
    .await
    .unwrap_or_default();
    let s = s["id"].as_u64().unwrap_or_else(|| panic!("no school"));
    let mut rng = super::load::Rng::new(super::load::seed("TENANT_SOAK_SEED"));
    let mut acknowledged = 0u64;
    let mut in_flight = 0u64;
    // Seats found assigned after the previous restart.
    let mut seen = 0u64;
    // Restarts that found a bulk's commit point without all its seat keys.
    let mut finished = 0u64;
    for round in 0..5u64 {
        let bought = post(
            &server,
            "/api/v1/seats/purchase",
            json!({"tenant_id": s, "count": BULK}),
        )
        .await
        .map(|(status, _)| status);
        assert_eq!(bought, Some(201), "round {round}");
        let learners: Vec<String> = (0..BULK).map(|i| format!("r{round}-{i}")).collect();
        let request = post(
            &server,
            "/api/v1/seats/assign/bulk",
            json!({"tenant_id": s, "learner_ids": learners}),
        );
        let kill_at = Duration::from_millis(rng.below(600));
        let answered = tokio::time::timeout(kill_at, request).await;
        server.kill9();
        match answered {
            Ok(Some((200, body))) => {
                assert_eq!(body["totals"]["assigned"], json!(BULK), "{}", body["totals"]);
                acknowledged += BULK as u64;
            }
            Ok(other) => panic!("round {round}: {other:?}"),
            Err(_) => in_flight += 1,
        }
        server = Server::start(&data);
        let (_, summary) = server.get(&format!("/api/v1/seats/summary?tenantId={s}")).await;
        finished += u64::from(server.stderr().contains("finished a bulk seat change"));
        let assigned = summary["assigned_seats"].as_u64().unwrap_or_default();
        assert_eq!(assigned % BULK as u64, 0, "round {round}: a bulk was cut: {summary}");
        assert!(
            assigned >= acknowledged,
            "round {round}: an acknowledged bulk was lost: {summary}"
        );
        // This round's bulk is there (its assignments are the newest
        // entries) or not at all (this round's purchase is).
        let grew = assigned > seen;
        (acknowledged, seen) = (assigned, assigned);
        let (_, verified) = server.get(&format!("/api/v1/audit/verify?tenantId={s}")).await;
        assert_eq!(verified["intact"], true, "round {round}: {verified}");
        let (_, page) = server
            .get(&format!("/api/v1/audit?tenantId={s}&limit=1&order=desc"))
            .await;
        let newest = &page["items"][0];
        let expected = if grew { "assigned" } else { "free" };
        assert_eq!(newest["new_state"], expected, "round {round}: {newest}");
    }
    eprintln!(
        "kill -9 during bulk assigns: 5 rounds, {in_flight} cut mid-request, {finished} finished at start, \
         {acknowledged} seats assigned, none partial"
    );
}

/// sled keeps a value past a size in a blob file of its own, which it never
/// fsyncs: a bulk's commit point must never be one (its parts are small), or
/// a power cut could take back an acknowledged bulk.
#[tokio::test]
async fn a_bulk_of_ten_thousand_writes_nothing_outside_the_fsynced_log() {
    let app = TestApp::spawn().await;
    let (s, _) = school_with_seats(&app, 10_000).await;
    let learners: Vec<String> = (0..10_000).map(|i| format!("learner-{i:05}")).collect();
    let r = app
        .post(
            "/api/v1/seats/assign/bulk",
            json!({"tenant_id": s, "learner_ids": learners}),
        )
        .await;
    assert_eq!(r.body["totals"]["assigned"], 10_000, "{}", r.body["totals"]);
    let blobs: Vec<_> = std::fs::read_dir(app.data_dir().join("blobs"))
        .map(|dir| dir.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(blobs.is_empty(), "sled wrote blob files: {blobs:?}");
}
