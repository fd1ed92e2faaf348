//! Reservations (issue 15 §1): reserve and release, the rules a reserved
//! seat follows, expiry by the actor's timer (1,000 at once), at start
//! after a restart and after kill -9, and races with assignment.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};

use super::helpers::*;
use super::process::Server;

async fn school_with_seats(app: &TestApp, seats: u64) -> (u64, Vec<u64>) {
    let d = app.district("D").await;
    let s = app.school(d, "S").await;
    (s, app.purchase(s, seats).await)
}

async fn reserve(app: &TestApp, body: Value) -> Response {
    app.post("/api/v1/seats/reserve", body).await
}

fn micros(rfc3339: &Value) -> i64 {
    let raw = rfc3339.as_str().unwrap_or_else(|| panic!("not a time: {rfc3339}"));
    chrono::DateTime::parse_from_rfc3339(raw)
        .unwrap_or_else(|e| panic!("{raw}: {e}"))
        .timestamp_micros()
}

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Polls `seat` until it is in `state` (within `within`).
async fn until_state(app: &TestApp, seat: u64, state: &str, within: Duration) -> Value {
    let deadline = std::time::Instant::now() + within;
    loop {
        let s = app.seat(seat).await;
        if s["state"] == state {
            return s;
        }
        assert!(std::time::Instant::now() < deadline, "seat {seat} is still {s}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every audit entry of a tenant's trail, oldest first.
pub(super) async fn trail(app: &TestApp, tenant: u64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/audit?tenantId={tenant}&limit=1000&cursor={c}"),
            None => format!("/api/v1/audit?tenantId={tenant}&limit=1000"),
        };
        let r = app.get(&path).await;
        assert_eq!(r.status, 200, "{}", r.body);
        out.extend(r.body["items"].as_array().cloned().unwrap_or_default());
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

#[tokio::test]
async fn reserved_seats_follow_their_rules_and_are_given_back() {
    let app = TestApp::spawn().await;
    let (s, seats) = school_with_seats(&app, 6).await;
    let started = now_micros();

    // Unnamed, the lowest free seat.
    let r = reserve(&app, json!({"tenant_id": s, "ttl_seconds": 60})).await;
    assert_eq!((r.status, r.id()), (201, seats[0]), "{}", r.body);
    assert_eq!(r.body["state"], "reserved");
    assert_eq!(r.body["reserved_for"], Value::Null);
    assert_eq!(r.body["learner_id"], Value::Null);
    let until = micros(&r.body["reserved_until"]);
    assert!(
        (started + 59_000_000..=now_micros() + 60_000_000).contains(&until),
        "{}",
        r.body
    );
    assert_eq!(micros(&r.body["reserved_at"]) + 60_000_000, until);

    // Named: a seat for a learner, who then holds it.
    let r = reserve(
        &app,
        json!({"tenant_id": s, "seat_id": seats[3], "learner_id": "lena", "ttl_seconds": 600}),
    )
    .await;
    assert_eq!((r.status, r.id()), (201, seats[3]), "{}", r.body);
    assert_eq!(r.body["reserved_for"], "lena");
    let again = reserve(&app, json!({"tenant_id": s, "learner_id": "lena", "ttl_seconds": 5})).await;
    assert_eq!(
        (again.status, &again.body["error_code"]),
        (400, &json!("LEARNER_ALREADY_HAS_SEAT"))
    );
    let other = app.allocate(seats[1], "lena").await;
    assert_eq!(
        (other.status, &other.body["error_code"]),
        (400, &json!("LEARNER_ALREADY_HAS_SEAT"))
    );
    // Only she may be allocated it; anyone may take the unnamed one.
    let taken = app.allocate(seats[3], "max").await;
    assert_eq!(
        (taken.status, taken.detail()),
        (400, "Seat is not available. Current state: reserved")
    );
    let hers = app.allocate(seats[3], "lena").await;
    assert_eq!((hers.status, &hers.body["state"]), (200, &json!("assigned")));
    assert_eq!(hers.body["reserved_until"], Value::Null);
    assert_eq!(app.allocate(seats[0], "max").await.status, 200);

    // Assign takes the learner's own reservation first.
    let r = reserve(
        &app,
        json!({"tenant_id": s, "seat_id": seats[5], "learner_id": "nia", "ttl_seconds": 600}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let a = app
        .post("/api/v1/seats/assign", json!({"tenant_id": s, "learner_id": "nia"}))
        .await;
    assert_eq!((a.status, a.id()), (201, seats[5]), "{}", a.body);

    // Release: reserved to free; anything else is refused.
    let r = reserve(&app, json!({"tenant_id": s, "ttl_seconds": 600})).await;
    let held = r.id();
    let freed = app.post("/api/v1/seats/release", json!({"seat_id": held})).await;
    assert_eq!(
        (freed.status, &freed.body["state"]),
        (200, &json!("free")),
        "{}",
        freed.body
    );
    let twice = app.post("/api/v1/seats/release", json!({"seat_id": held})).await;
    assert_eq!(
        (twice.status, &twice.body["error_code"], twice.detail()),
        (
            409,
            &json!("SEAT_NOT_RESERVED"),
            "Seat is not reserved. Current state: free"
        )
    );
    let assigned = app.post("/api/v1/seats/release", json!({"seat_id": seats[0]})).await;
    assert_eq!(assigned.status, 409, "{}", assigned.body);
    let reasons: Vec<Value> = app.audit(held).await.iter().map(|a| a["reason"].clone()).collect();
    assert_eq!(
        reasons,
        [
            json!("Seat purchased"),
            json!("Seat reserved"),
            json!("Reservation released")
        ]
    );

    let summary = app.summary(s).await;
    assert_eq!(
        (
            &summary["reserved_seats"],
            &summary["assigned_seats"],
            &summary["free_seats"]
        ),
        (&json!(0), &json!(3), &json!(3)),
        "{summary}"
    );
    let stats = app.get(&format!("/api/v1/seats/stats?tenantId={s}")).await.body;
    assert_eq!(
        (&stats["reservations"], &stats["releases"], &stats["allocations"]),
        (&json!(4), &json!(1), &json!(3)),
        "{stats}"
    );
    let metrics = metrics_text(&app).await;
    for line in [
        r#"tenant_seat_transitions_total{kind="reserve"} 4"#,
        r#"tenant_seat_transitions_total{kind="release"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} not in {metrics}");
    }
}

pub(super) async fn metrics_text(app: &TestApp) -> String {
    let res = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    res.text().await.unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn reserve_refuses_what_it_cannot_do_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (s, seats) = school_with_seats(&app, 1).await;
    let (other, theirs) = school_with_seats(&app, 1).await;
    for (body, status, code) in [
        (json!({"tenant_id": s, "ttl_seconds": 0}), 422, "VALIDATION_ERROR"),
        (
            json!({"tenant_id": s, "ttl_seconds": 2_592_001}),
            422,
            "VALIDATION_ERROR",
        ),
        (json!({"tenant_id": s}), 422, "VALIDATION_ERROR"),
        (
            json!({"tenant_id": s, "ttl_seconds": 5, "learner_id": " "}),
            422,
            "VALIDATION_ERROR",
        ),
        (
            json!({"tenant_id": s, "ttl_seconds": 5, "seat_id": theirs[0]}),
            404,
            "SEAT_NOT_FOUND",
        ),
        (json!({"tenant_id": 999, "ttl_seconds": 5}), 404, "TENANT_NOT_FOUND"),
    ] {
        let r = reserve(&app, body.clone()).await;
        assert_eq!(
            (r.status, r.body["error_code"].as_str()),
            (status, Some(code)),
            "{body}: {}",
            r.body
        );
    }
    assert_eq!(
        reserve(&app, json!({"tenant_id": s, "ttl_seconds": 5})).await.status,
        201
    );
    let full = reserve(&app, json!({"tenant_id": s, "ttl_seconds": 5})).await;
    assert_eq!((full.status, &full.body["error_code"]), (409, &json!("NO_FREE_SEAT")));
    let named = reserve(&app, json!({"tenant_id": s, "ttl_seconds": 5, "seat_id": seats[0]})).await;
    assert_eq!(
        (named.status, &named.body["error_code"]),
        (400, &json!("SEAT_NOT_AVAILABLE"))
    );
    assert_eq!(app.summary(other).await["reserved_seats"], 0);
    let unknown = app.post("/api/v1/seats/release", json!({"seat_id": 9_999})).await;
    assert_eq!(
        (unknown.status, &unknown.body["error_code"]),
        (404, &json!("SEAT_NOT_FOUND"))
    );
}

#[tokio::test]
async fn a_reservation_ends_by_itself_at_its_deadline_with_one_entry_by_system() {
    let app = TestApp::spawn().await;
    let (s, seats) = school_with_seats(&app, 2).await;
    let r = reserve(&app, json!({"tenant_id": s, "learner_id": "ola", "ttl_seconds": 1})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let until = micros(&r.body["reserved_until"]);
    let seat = until_state(&app, seats[0], "free", Duration::from_secs(5)).await;
    assert_eq!(seat["reserved_for"], Value::Null);
    let audit = app.audit(seats[0]).await;
    let last = audit.last().unwrap_or_else(|| panic!("no audit"));
    assert_eq!(audit.len(), 3, "{audit:?}");
    assert_eq!(
        (&last["changed_by"], &last["reason"], &last["previous_learner_id"]),
        (&json!("system"), &json!("Reservation expired"), &json!("ola"))
    );
    let at = micros(&last["created_at"]);
    assert!(
        (until..until + 2_000_000).contains(&at),
        "expired at {at}, deadline {until}"
    );
    // The learner is free to take a seat again.
    assert_eq!(app.allocate(seats[1], "ola").await.status, 200);
    let summary = app.summary(s).await;
    assert_eq!(
        (&summary["reserved_seats"], &summary["free_seats"]),
        (&json!(0), &json!(1))
    );
    let stats = app.get(&format!("/api/v1/seats/stats?tenantId={s}")).await.body;
    assert_eq!(stats["expirations"], 1, "{stats}");
    let metrics = metrics_text(&app).await;
    assert!(
        metrics.contains(r#"tenant_seat_transitions_total{kind="expire"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"tenant_seats{state="reserved"} 0"#), "{metrics}");
}

/// 1,000 reservations of one second: each ends within 2 s after its
/// deadline (never before it), with exactly one audit entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_one_second_reservations_all_expire_within_two_seconds_of_their_deadline() {
    const N: usize = 1_000;
    let app = TestApp::spawn().await;
    let (s, seats) = school_with_seats(&app, N as u64).await;
    let mut deadlines: HashMap<u64, i64> = HashMap::new();
    let requests = futures_util::stream::iter(seats.iter().map(|seat| {
        let app = &app;
        async move {
            let r = reserve(app, json!({"tenant_id": s, "seat_id": seat, "ttl_seconds": 1})).await;
            assert_eq!(r.status, 201, "{}", r.body);
            (*seat, micros(&r.body["reserved_until"]))
        }
    }));
    deadlines.extend(requests.buffer_unordered(100).collect::<Vec<_>>().await);
    let last = deadlines.values().max().copied().unwrap_or_default();
    // Wait (polling the summary) until every one has ended.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while app.summary(s).await["reserved_seats"] != 0 {
        assert!(std::time::Instant::now() < deadline, "reservations still held");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(now_micros() >= last);
    let expiries: Vec<Value> = trail(&app, s)
        .await
        .into_iter()
        .filter(|a| a["reason"] == "Reservation expired")
        .collect();
    assert_eq!(expiries.len(), N, "one expiry entry per reservation");
    let mut seen = HashSet::new();
    let mut worst = 0;
    for e in &expiries {
        let seat = e["seat_id"].as_u64().unwrap_or_default();
        assert!(seen.insert(seat), "seat {seat} expired twice");
        assert_eq!(e["changed_by"], "system");
        let late = micros(&e["created_at"]) - deadlines[&seat];
        assert!(late >= 0, "seat {seat} expired {late} µs before its deadline");
        assert!(late < 2_000_000, "seat {seat} expired {late} µs after its deadline");
        worst = worst.max(late);
    }
    eprintln!(
        "1,000 one-second reservations: the latest expiry came {} ms after its deadline",
        worst / 1000
    );
}

/// A deadline that passes while the service is down ends at start, dated
/// then and naming the deadline; one that has not passed still holds.
#[tokio::test]
async fn deadlines_passed_while_stopped_are_applied_at_start() {
    let app = TestApp::spawn().await;
    let (s, seats) = school_with_seats(&app, 2).await;
    let short = reserve(&app, json!({"tenant_id": s, "seat_id": seats[0], "ttl_seconds": 1})).await;
    let long = reserve(&app, json!({"tenant_id": s, "seat_id": seats[1], "ttl_seconds": 3600})).await;
    assert_eq!((short.status, long.status), (201, 201));
    let dir = app.stop().await;
    // Down past the short deadline.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let restarted_at = now_micros();
    let app = TestApp::spawn_in(dir).await;
    let freed = app.seat(seats[0]).await;
    assert_eq!(freed["state"], "free", "{freed}");
    let last = app.audit(seats[0]).await.pop().unwrap_or_default();
    let deadline = short.body["reserved_until"].as_str().unwrap_or_default();
    assert_eq!(
        last["reason"],
        format!("Reservation expired (deadline {deadline} passed while the service was down)")
    );
    assert!(
        micros(&last["created_at"]) >= restarted_at,
        "dated at application time: {last}"
    );
    let held = app.seat(seats[1]).await;
    assert_eq!(
        (&held["state"], &held["reserved_until"]),
        (&json!("reserved"), &long.body["reserved_until"])
    );
    assert_eq!(app.summary(s).await["reserved_seats"], 1);
    let verified = app.get(&format!("/api/v1/audit/verify?tenantId={s}")).await;
    assert_eq!(verified.body["intact"], true, "{}", verified.body);
}

/// kill -9 with reservations pending: the restart ends those whose
/// deadline passed and keeps the others (and their timers run again).
#[tokio::test]
async fn reservations_survive_kill_9_and_expire_after_it() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let mut server = Server::start(&data);
    let (_, d) = server
        .post("/api/v1/district", json!({"name": "D"}))
        .await
        .unwrap_or_default();
    let (_, sc) = server
        .post(&format!("/api/v1/district/{}/schools", d["id"]), json!({"name": "S"}))
        .await
        .unwrap_or_default();
    let s = sc["id"].as_u64().unwrap_or_else(|| panic!("no school"));
    let (_, bought) = server
        .post("/api/v1/seats/purchase", json!({"tenant_id": s, "count": 3}))
        .await
        .unwrap_or_default();
    let seats: Vec<u64> = bought
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x["id"].as_u64())
        .collect();
    for (seat, ttl) in [(seats[0], 1), (seats[1], 2), (seats[2], 3600)] {
        let (status, _) = server
            .post(
                "/api/v1/seats/reserve",
                json!({"tenant_id": s, "seat_id": seat, "ttl_seconds": ttl}),
            )
            .await
            .unwrap_or_default();
        assert_eq!(status, 201);
    }
    server.kill9();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let server = Server::start(&data);
    let (_, first) = server.get(&format!("/api/v1/seats/{}", seats[0])).await;
    assert_eq!(first["state"], "free", "past its deadline at start: {first}");
    // The second's deadline comes after the start: the timer ends it.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_, second) = server.get(&format!("/api/v1/seats/{}", seats[1])).await;
        if second["state"] == "free" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{second}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, third) = server.get(&format!("/api/v1/seats/{}", seats[2])).await;
    assert_eq!(third["state"], "reserved");
    let (_, audit) = server.get(&format!("/api/v1/seats/{}/audit", seats[1])).await;
    assert_eq!(
        audit.as_array().and_then(|a| a.last()).map(|a| a["reason"].clone()),
        Some(json!("Reservation expired"))
    );
    let (_, verified) = server.get(&format!("/api/v1/audit/verify?tenantId={s}")).await;
    assert_eq!(verified["intact"], true, "{verified}");
}

/// Reservations and assignments racing for the same few seats: no seat is
/// given twice, and the counters agree with the seats.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserve_and_assign_races_never_give_a_seat_twice() {
    const SEATS: u64 = 20;
    let app = TestApp::spawn().await;
    let (s, seats) = school_with_seats(&app, SEATS).await;
    let requests = (0..60).map(|i| {
        let app = &app;
        async move {
            let r = if i % 2 == 0 {
                reserve(
                    app,
                    json!({"tenant_id": s, "learner_id": format!("r{i}"), "ttl_seconds": 600}),
                )
                .await
            } else {
                app.post(
                    "/api/v1/seats/assign",
                    json!({"tenant_id": s, "learner_id": format!("a{i}")}),
                )
                .await
            };
            (r.status, r.body["id"].as_u64())
        }
    });
    let answers = futures_util::future::join_all(requests).await;
    let granted: Vec<u64> = answers
        .iter()
        .filter(|(st, _)| *st == 201)
        .filter_map(|(_, id)| *id)
        .collect();
    assert_eq!(granted.len() as u64, SEATS, "{answers:?}");
    assert_eq!(
        granted.iter().collect::<HashSet<_>>().len() as u64,
        SEATS,
        "a seat given twice"
    );
    assert!(answers.iter().all(|(st, _)| *st == 201 || *st == 409), "{answers:?}");
    let (free, reserved, assigned) = app.count_seats(&seats).await;
    let summary = app.summary(s).await;
    assert_eq!(
        (free, reserved, assigned),
        (
            summary["free_seats"].as_u64().unwrap_or(99),
            summary["reserved_seats"].as_u64().unwrap_or(99),
            summary["assigned_seats"].as_u64().unwrap_or(99)
        )
    );
    assert_eq!(free, 0);
}
