//! `Idempotency-Key` on every write (issue: seat workflows §3): a retry gets
//! the first answer and writes nothing; another request under the same key
//! is refused; a key in flight is refused; keys are per caller; refusals are
//! not kept; answers survive a restart and kill -9 together with their
//! change (both there or both absent).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::faulty_disk::Faults;
use super::helpers::*;
use super::process::Server;

/// One answer as sent: status, raw body, and whether it was a replay.
#[derive(Debug, Clone, PartialEq)]
struct Raw {
    status: u16,
    body: String,
    replayed: bool,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

async fn send(req: reqwest::RequestBuilder) -> Raw {
    try_send(req).await.unwrap_or_else(|| panic!("request failed"))
}

/// `send`, or None if the connection failed (a server killed under it).
async fn try_send(req: reqwest::RequestBuilder) -> Option<Raw> {
    let r = req.send().await.ok()?;
    let status = r.status().as_u16();
    let replayed = match r.headers().get("idempotent-replayed") {
        None => false,
        Some(v) => {
            assert_eq!(v, "true", "Idempotent-Replayed is true or absent");
            true
        }
    };
    let body = r.text().await.ok()?;
    Some(Raw { status, body, replayed })
}

/// A write with a key, as `user`.
async fn keyed(app: &TestApp, method: &str, path: &str, key: &str, user: &str, body: &Value) -> Raw {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    send(
        app.client
            .request(method, app.url(path))
            .header("X-User-ID", user)
            .header("Idempotency-Key", key)
            .json(body),
    )
    .await
}

async fn post_keyed(app: &TestApp, path: &str, key: &str, body: Value) -> Raw {
    keyed(app, "POST", path, key, ADMIN, &body).await
}

async fn school_with_seats(app: &TestApp, seats: u64) -> (u64, u64, Vec<u64>) {
    let d = app.district("D").await;
    let s = app.school(d, "S").await;
    (d, s, app.purchase(s, seats).await)
}

#[tokio::test]
async fn a_retry_gets_the_first_answer_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let (_, _, seats) = school_with_seats(&app, 2).await;
    let body = json!({"seat_id": seats[0], "learner_id": "l-1"});
    let first = post_keyed(&app, "/api/v1/seats/allocate", "k-1", body.clone()).await;
    assert_eq!((first.status, first.replayed), (200, false), "{}", first.body);
    let again = post_keyed(&app, "/api/v1/seats/allocate", "k-1", body.clone()).await;
    assert_eq!(
        again,
        Raw {
            replayed: true,
            ..first.clone()
        },
        "the same status and the same bytes, marked as a replay"
    );
    // Without the key, the same body is the contract's refusal.
    assert_eq!(app.allocate(seats[0], "l-1").await.status, 400);
    assert_eq!(app.audit(seats[0]).await.len(), 2, "purchase and one allocation");
    // The seat was reclaimed meanwhile: the replay still tells what the first request did.
    assert_eq!(app.reclaim(seats[0], None).await.status, 200);
    let later = post_keyed(&app, "/api/v1/seats/allocate", "k-1", body).await;
    assert_eq!((later.status, &later.body, later.replayed), (200, &first.body, true));
    assert_eq!(app.seat(seats[0]).await["state"], "free", "the replay changed nothing");
}

#[tokio::test]
async fn the_same_key_for_another_request_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (_, s, seats) = school_with_seats(&app, 3).await;
    let first = post_keyed(
        &app,
        "/api/v1/seats/allocate",
        "k",
        json!({"seat_id": seats[0], "learner_id": "l-1"}),
    )
    .await;
    assert_eq!(first.status, 200);
    for (path, body) in [
        (
            "/api/v1/seats/allocate",
            json!({"seat_id": seats[1], "learner_id": "l-1"}),
        ),
        (
            "/api/v1/seats/allocate",
            json!({"seat_id": seats[0], "learner_id": "l-2"}),
        ),
        ("/api/v1/seats/assign", json!({"tenant_id": s, "learner_id": "l-3"})),
    ] {
        let r = post_keyed(&app, path, "k", body.clone()).await;
        assert_eq!(r.status, 422, "{path} {body}: {}", r.body);
        assert_eq!(r.json()["error_code"], "IDEMPOTENCY_KEY_REUSED");
        assert!(!r.replayed);
    }
    // Whitespace makes another body: the key names one exact request.
    let spaced = send(
        app.client
            .post(app.url("/api/v1/seats/allocate"))
            .header("X-User-ID", ADMIN)
            .header("Idempotency-Key", "k")
            .header("content-type", "application/json")
            .body(format!("{{ \"seat_id\": {}, \"learner_id\": \"l-1\" }}", seats[0])),
    )
    .await;
    assert_eq!(spaced.status, 422);
    let summary = app.summary(s).await;
    assert_eq!(
        (summary["assigned_seats"].as_u64(), summary["free_seats"].as_u64()),
        (Some(1), Some(2))
    );
}

#[tokio::test]
async fn keys_are_per_caller() {
    let app = TestApp::spawn().await;
    let (_, s, _) = school_with_seats(&app, 1).await;
    let body = json!({"tenant_id": s, "count": 2});
    let alice = keyed(&app, "POST", "/api/v1/seats/purchase", "buy", "alice", &body).await;
    let bob = keyed(&app, "POST", "/api/v1/seats/purchase", "buy", "bob", &body).await;
    assert_eq!((alice.status, bob.status), (201, 201));
    assert!(!bob.replayed, "bob's key is his own");
    assert_ne!(alice.json()[0]["id"], bob.json()[0]["id"], "two purchases");
    let alice_again = keyed(&app, "POST", "/api/v1/seats/purchase", "buy", "alice", &body).await;
    assert_eq!((alice_again.replayed, &alice_again.body), (true, &alice.body));
    assert_eq!(app.summary(s).await["total_seats"], 5);
}

#[tokio::test]
async fn a_refusal_is_not_kept_so_a_retry_runs_again() {
    let app = TestApp::spawn().await;
    let (_, s, seats) = school_with_seats(&app, 1).await;
    assert_eq!(app.allocate(seats[0], "holder").await.status, 200);
    let body = json!({"tenant_id": s, "learner_id": "late"});
    let refused = post_keyed(&app, "/api/v1/seats/assign", "late-1", body.clone()).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert_eq!(refused.json()["error_code"], "NO_FREE_SEAT");
    assert_eq!(app.reclaim(seats[0], None).await.status, 200);
    let retried = post_keyed(&app, "/api/v1/seats/assign", "late-1", body.clone()).await;
    assert_eq!((retried.status, retried.replayed), (201, false), "{}", retried.body);
    let replayed = post_keyed(&app, "/api/v1/seats/assign", "late-1", body).await;
    assert_eq!((replayed.status, replayed.replayed), (201, true));
}

#[tokio::test]
async fn a_key_whose_first_request_is_running_is_refused_with_409() {
    let faults = Arc::new(Faults::none());
    let dir = Arc::new(tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")));
    let app = TestApp::spawn_with_faults(dir, |_| {}, Arc::clone(&faults)).await;
    let (_, s, _) = school_with_seats(&app, 2).await;
    let body = json!({"tenant_id": s, "learner_id": "l-1"});
    // The disk stops answering: the request that runs cannot finish.
    faults.stall_writes(true);
    let assign = || {
        let req = app
            .client
            .post(app.url("/api/v1/seats/assign"))
            .header("X-User-ID", ADMIN)
            .header("Idempotency-Key", "same")
            .json(&body);
        tokio::spawn(send(req))
    };
    let (mut a, mut b) = (assign(), assign());
    // Whichever came second is refused while the first is stuck; the first
    // cannot answer before the disk does.
    let (refused, running) = tokio::select! {
        r = &mut a => (r, b),
        r = &mut b => (r, a),
    };
    let refused = refused.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert_eq!(refused.json()["error_code"], "IDEMPOTENCY_KEY_IN_FLIGHT");
    faults.stall_writes(false);
    let ran = running.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((ran.status, ran.replayed), (201, false), "{}", ran.body);
    // Once the runner is answered, a retry is a replay of it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let replay = loop {
        let r = post_keyed(&app, "/api/v1/seats/assign", "same", body.clone()).await;
        if r.status != 409 {
            break r;
        }
        assert!(std::time::Instant::now() < deadline, "the key stayed in flight");
        tokio::task::yield_now().await;
    };
    assert_eq!((replay.status, replay.replayed), (201, true), "{}", replay.body);
    assert_eq!(replay.body, ran.body);
    assert_eq!(app.summary(s).await["assigned_seats"], 1);
}

#[tokio::test]
async fn a_malformed_key_is_refused_with_400_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (_, s, _) = school_with_seats(&app, 1).await;
    let long = "k".repeat(256);
    for key in ["", long.as_str(), "tab\there"] {
        let r = send(
            app.client
                .post(app.url("/api/v1/seats/assign"))
                .header("X-User-ID", ADMIN)
                .header("Idempotency-Key", key)
                .json(&json!({"tenant_id": s, "learner_id": "l"})),
        )
        .await;
        assert_eq!(r.status, 400, "{key:?}: {}", r.body);
        assert_eq!(r.json()["error_code"], "INVALID_IDEMPOTENCY_KEY");
    }
    let non_ascii = reqwest::header::HeaderValue::from_bytes("clé".as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let r = send(
        app.client
            .post(app.url("/api/v1/seats/assign"))
            .header("X-User-ID", ADMIN)
            .header("Idempotency-Key", non_ascii)
            .json(&json!({"tenant_id": s, "learner_id": "l"})),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    let twice = send(
        app.client
            .post(app.url("/api/v1/seats/assign"))
            .header("X-User-ID", ADMIN)
            .header("Idempotency-Key", "a")
            .header("Idempotency-Key", "b")
            .json(&json!({"tenant_id": s, "learner_id": "l"})),
    )
    .await;
    assert_eq!(twice.status, 400, "{}", twice.body);
    // The longest allowed key works.
    let max = "k".repeat(255);
    let ok = post_keyed(
        &app,
        "/api/v1/seats/assign",
        &max,
        json!({"tenant_id": s, "learner_id": "l"}),
    )
    .await;
    assert_eq!(ok.status, 201, "{}", ok.body);
    assert_eq!(app.summary(s).await["assigned_seats"], 1);
    // A read ignores the header.
    let read = send(
        app.client
            .get(app.url(&format!("/api/v1/seats/summary?tenantId={s}")))
            .header("X-User-ID", ADMIN)
            .header("Idempotency-Key", &max),
    )
    .await;
    assert_eq!((read.status, read.replayed), (200, false));
}

/// Every route that writes takes a key: the first answer, then the same
/// answer replayed, with nothing written the second time.
#[tokio::test]
async fn every_write_route_replays_its_first_answer() {
    let app = TestApp::spawn().await;
    let (d, s, seats) = school_with_seats(&app, 4).await;
    let role = app
        .post(
            "/api/v1/roles",
            json!({"user_id": "teacher-1", "tenant_id": s, "role": "teacher"}),
        )
        .await
        .id();
    let school_path = format!("/api/v1/district/{d}/schools");
    let tenant_path = format!("/api/v1/tenant/{s}");
    let threshold_path = format!("/api/v1/tenant/{s}/alert-threshold");
    let deactivate_path = format!("/api/v1/roles/{role}/deactivate");
    let term = |hours: i64| (chrono::Utc::now() + chrono::Duration::hours(hours)).to_rfc3339();
    let cases: Vec<(&str, &str, Value, u16)> = vec![
        ("POST", "/api/v1/district", json!({"name": "Keyed District"}), 201),
        ("POST", &school_path, json!({"name": "Keyed School"}), 201),
        ("PUT", &tenant_path, json!({"name": "Renamed"}), 200),
        ("PUT", &tenant_path, json!({"name": "Renamed"}), 200),
        ("PUT", &threshold_path, json!({"percent": 90}), 200),
        (
            "POST",
            "/api/v1/seats/purchase",
            json!({"tenant_id": s, "count": 3}),
            201,
        ),
        (
            "POST",
            "/api/v1/seats/allocate",
            json!({"seat_id": seats[0], "learner_id": "a"}),
            200,
        ),
        (
            "POST",
            "/api/v1/seats/assign",
            json!({"tenant_id": s, "learner_id": "b"}),
            201,
        ),
        (
            "POST",
            "/api/v1/seats/assign",
            json!({"tenant_id": s, "learner_id": "b"}),
            200,
        ),
        ("POST", "/api/v1/seats/reclaim", json!({"seat_id": seats[0]}), 200),
        (
            "POST",
            "/api/v1/seats/assign/bulk",
            json!({"tenant_id": s, "learner_ids": ["c", "d", "c", ""]}),
            200,
        ),
        (
            "POST",
            "/api/v1/seats/reclaim/bulk",
            json!({"tenant_id": s, "learner_ids": ["c", "zz"]}),
            200,
        ),
        (
            "POST",
            "/api/v1/seats/assign/bulk",
            json!({"tenant_id": s, "learner_ids": ["d"]}),
            200,
        ),
        (
            "POST",
            "/api/v1/seats/reserve",
            json!({"tenant_id": s, "seat_id": seats[3], "learner_id": "r", "ttl_seconds": 600}),
            201,
        ),
        ("POST", "/api/v1/seats/release", json!({"seat_id": seats[3]}), 200),
        (
            "POST",
            "/api/v1/seats/transfer",
            json!({"from_tenant_id": s, "to_tenant_id": d, "count": 1}),
            200,
        ),
        (
            "POST",
            "/api/v1/seats/purchase",
            json!({"tenant_id": s, "count": 2, "expires_at": term(1)}),
            201,
        ),
        (
            "POST",
            "/api/v1/seats/renew",
            json!({"tenant_id": s, "all_expiring_before": term(2), "expires_at": term(3)}),
            200,
        ),
        (
            "POST",
            "/api/v1/roles",
            json!({"user_id": "admin-2", "tenant_id": s, "role": "admin"}),
            201,
        ),
        ("POST", &deactivate_path, json!({}), 200),
    ];
    for (n, (method, path, body, status)) in cases.into_iter().enumerate() {
        let key = format!("case-{n}");
        let first = keyed(&app, method, path, &key, ADMIN, &body).await;
        assert_eq!(
            (first.status, first.replayed),
            (status, false),
            "{method} {path}: {}",
            first.body
        );
        let trail = app.get(&format!("/api/v1/audit?tenantId={s}&limit=1000")).await.body;
        let district = app.get(&format!("/api/v1/district/{d}")).await.body;
        let roles = app.get(&format!("/api/v1/roles?tenantId={s}")).await.body;
        let again = keyed(&app, method, path, &key, ADMIN, &body).await;
        assert_eq!(
            again,
            Raw {
                replayed: true,
                ..first
            },
            "{method} {path}"
        );
        assert_eq!(
            app.get(&format!("/api/v1/audit?tenantId={s}&limit=1000")).await.body,
            trail,
            "{method} {path}: the replay wrote no audit entry"
        );
        assert_eq!(
            app.get(&format!("/api/v1/district/{d}")).await.body,
            district,
            "{method} {path}: the replay created or renamed nothing"
        );
        assert_eq!(
            app.get(&format!("/api/v1/roles?tenantId={s}")).await.body,
            roles,
            "{method} {path}: the replay granted nothing"
        );
    }
}

/// A purchase's answer lists every seat: far larger than one part.
#[tokio::test]
async fn a_large_answer_is_replayed_whole_after_a_restart() {
    let app = TestApp::spawn().await;
    let (_, s, _) = school_with_seats(&app, 1).await;
    let body = json!({"tenant_id": s, "count": 2000});
    let first = post_keyed(&app, "/api/v1/seats/purchase", "big", body.clone()).await;
    assert_eq!(first.status, 201);
    assert!(first.body.len() > 100_000, "{} bytes", first.body.len());
    let learners: Vec<String> = (0..1500).map(|i| format!("bulk-{i}")).collect();
    let bulk_body = json!({"tenant_id": s, "learner_ids": learners});
    let bulk = post_keyed(&app, "/api/v1/seats/assign/bulk", "bulk", bulk_body.clone()).await;
    assert_eq!(bulk.status, 200);

    let app = app.restart().await;
    let again = post_keyed(&app, "/api/v1/seats/purchase", "big", body).await;
    assert_eq!((again.status, again.replayed), (201, true));
    assert!(again.body == first.body, "the same bytes after a restart");
    let bulk_again = post_keyed(&app, "/api/v1/seats/assign/bulk", "bulk", bulk_body).await;
    assert_eq!((bulk_again.replayed, bulk_again.body == bulk.body), (true, true));
    assert_eq!(app.summary(s).await["total_seats"], 2001, "bought once");
    assert_eq!(app.summary(s).await["assigned_seats"], 1500, "assigned once");
}

/// Past `[idempotency] retention_hours` an answer is gone: the key runs
/// again. (Tests may set less than the 24 hours a configuration must.)
#[tokio::test]
async fn an_answer_past_its_retention_is_not_replayed() {
    let app = TestApp::spawn_with(|s| s.idempotency.retention_hours = 0).await;
    let (_, s, _) = school_with_seats(&app, 1).await;
    let body = json!({"tenant_id": s, "count": 1});
    let first = post_keyed(&app, "/api/v1/seats/purchase", "old", body.clone()).await;
    let again = post_keyed(&app, "/api/v1/seats/purchase", "old", body).await;
    assert_eq!((first.status, again.status, again.replayed), (201, 201, false));
    assert_ne!(first.body, again.body, "a second purchase");
    assert_eq!(app.summary(s).await["total_seats"], 3);
}

/// kill -9 while keyed assigns (single and bulk) are in flight on a slow
/// disk, then the same requests again: a learner who holds a seat after the
/// restart must get the first answer replayed (the change and its answer
/// survived together); one who holds none must be assigned now, not be
/// told of a change that never happened.
#[tokio::test]
async fn kill_9_keeps_each_answer_exactly_when_its_change_survived() {
    const SINGLES: usize = 12;
    const BULK: usize = 600;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let mut server = Server::start_on_disk(&data, "slow:15");
    let request = |server: &Server, path: &str, key: Option<String>, body: Value| {
        let mut req = server
            .client
            .post(format!("{}{path}", server.base))
            .header("X-User-ID", "crash_test")
            .json(&body);
        if let Some(key) = key {
            req = req.header("Idempotency-Key", key);
        }
        req
    };
    let post = |server: &Server, path: &str, key: Option<String>, body: Value| send(request(server, path, key, body));
    let holds = |held: &Value| held.as_array().is_some_and(|seats| !seats.is_empty());
    let d = post(&server, "/api/v1/district", None, json!({"name": "D"}))
        .await
        .json()["id"]
        .clone();
    let s = post(
        &server,
        &format!("/api/v1/district/{d}/schools"),
        None,
        json!({"name": "S"}),
    )
    .await
    .json()["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no school"));
    let mut rng = super::load::Rng::new(super::load::seed("TENANT_SOAK_SEED"));
    let (mut replays, mut reruns) = (0, 0);
    for round in 0..4 {
        let bought = post(
            &server,
            "/api/v1/seats/purchase",
            None,
            json!({"tenant_id": s, "count": SINGLES + BULK}),
        )
        .await;
        assert_eq!(bought.status, 201, "round {round}");
        let singles: Vec<(String, Value)> = (0..SINGLES)
            .map(|i| {
                (
                    format!("r{round}-s{i}"),
                    json!({"tenant_id": s, "learner_id": format!("r{round}-l{i}")}),
                )
            })
            .collect();
        let bulk_learners: Vec<String> = (0..BULK).map(|i| format!("r{round}-b{i}")).collect();
        let bulk = (
            format!("r{round}-bulk"),
            json!({"tenant_id": s, "learner_ids": bulk_learners}),
        );
        let mut tasks = Vec::new();
        for (key, body) in singles.iter().cloned() {
            tasks.push(tokio::spawn(try_send(request(
                &server,
                "/api/v1/seats/assign",
                Some(key),
                body,
            ))));
        }
        tasks.push(tokio::spawn(try_send(request(
            &server,
            "/api/v1/seats/assign/bulk",
            Some(bulk.0.clone()),
            bulk.1.clone(),
        ))));
        tokio::time::sleep(Duration::from_millis(rng.below(120))).await;
        server.kill9();
        let mut answered = Vec::new();
        for task in tasks {
            answered.push(task.await.ok().flatten());
        }
        server = Server::start(&data);
        for (i, (key, body)) in singles.iter().enumerate() {
            let learner = body["learner_id"].as_str().unwrap_or_default();
            let (_, held) = server.get(&format!("/api/v1/learners/{learner}/seats")).await;
            let holds = holds(&held);
            let retry = post(&server, "/api/v1/seats/assign", Some(key.clone()), body.clone()).await;
            assert_eq!(retry.status, 201, "round {round} {learner}: {}", retry.body);
            assert_eq!(
                retry.replayed, holds,
                "round {round} {learner}: replayed iff the change survived"
            );
            if let Some(Some(first)) = answered.get(i) {
                assert_eq!(first.status, 201);
                assert!(holds, "round {round} {learner}: an acknowledged assign was lost");
                assert_eq!(retry.body, first.body, "round {round} {learner}: the first answer");
            }
            if holds {
                replays += 1;
            } else {
                reruns += 1;
            }
        }
        let (_, summary) = server.get(&format!("/api/v1/seats/summary?tenantId={s}")).await;
        let first_bulk = format!("r{round}-b0");
        let (_, held) = server.get(&format!("/api/v1/learners/{first_bulk}/seats")).await;
        let bulk_there = holds(&held);
        let retry = post(
            &server,
            "/api/v1/seats/assign/bulk",
            Some(bulk.0.clone()),
            bulk.1.clone(),
        )
        .await;
        assert_eq!(retry.status, 200, "round {round}: {}", retry.body);
        assert_eq!(
            retry.replayed, bulk_there,
            "round {round}: bulk replayed iff it survived: {summary}"
        );
        assert_eq!(
            retry.json()["totals"]["assigned"],
            BULK,
            "round {round}: the bulk assigned every learner once"
        );
        let (_, verified) = server.get(&format!("/api/v1/audit/verify?tenantId={s}")).await;
        assert_eq!(verified["intact"], true, "round {round}: {verified}");
        server.kill9();
        server = Server::start_on_disk(&data, "slow:15");
    }
    server.kill9();
    eprintln!("kill -9 with keyed writes in flight: {replays} replayed, {reruns} ran again after the restart");
}
