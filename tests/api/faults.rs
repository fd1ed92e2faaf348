//! A failing disk, injected behind the store (`tenant_service::Faults`):
//! - a failed write is 503 STORE_UNAVAILABLE and changes nothing, in memory
//!   or on disk, and the same request succeeds once the disk is back;
//! - a failed flush (fsync) is never retried: nothing after it is
//!   acknowledged, the service stops (in-process: `serve` returns
//!   `StoreFailed`; the real binary exits 1 with one line on stderr), and a
//!   restart recovers a consistent state with every acknowledged write.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tenant_service::ServeError;

use super::faulty_disk::Faults;

use super::helpers::*;
use super::load::{self, lock, Shared, Spec};
use super::process::Server;

/// Everything a client can observe about these tenants and seats.
async fn snapshot(app: &TestApp, district: u64, school: u64, seats: &[u64]) -> Value {
    let mut seat_views = Vec::new();
    for &s in seats {
        seat_views.push(json!({"seat": app.seat(s).await, "audit": app.audit(s).await}));
    }
    json!({
        "district": app.get(&format!("/api/v1/district/{district}")).await.body,
        "school": app.get(&format!("/api/v1/tenant/{school}")).await.body,
        "summary": app.summary(school).await,
        "roles": app.get(&format!("/api/v1/roles?tenantId={school}")).await.body,
        "user": app.get("/api/v1/users/teacher_1/tenants").await.body,
        "seats": seat_views,
    })
}

#[track_caller]
fn store_unavailable(r: &Response, what: &str) {
    assert_eq!(r.status, 503, "{what}: {}", r.body);
    assert_eq!(r.body["error_code"], json!("STORE_UNAVAILABLE"), "{what}: {}", r.body);
}

#[tokio::test]
async fn a_failed_write_is_503_and_leaves_memory_and_disk_as_they_were() {
    let faults = Arc::new(Faults::none());
    let dir = Arc::new(tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")));
    let app = TestApp::spawn_with_faults(Arc::clone(&dir), |_| {}, Arc::clone(&faults)).await;
    let district = app.district("Faulty District").await;
    let school = app.school(district, "Faulty School").await;
    let seats = app.purchase(school, 4).await;
    assert_eq!(app.allocate(seats[0], "learner_a").await.status, 200);
    let r = app
        .post(
            "/api/v1/roles",
            json!({"user_id": "teacher_1", "tenant_id": school, "role": "teacher"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let before = snapshot(&app, district, school, &seats).await;

    // Every kind of write, with the disk refusing every write.
    faults.fail_writes_after(0);
    store_unavailable(&app.allocate(seats[1], "learner_b").await, "allocate");
    // A refusal writes nothing, so the rules still answer.
    let r = app.allocate(seats[2], "learner_a").await;
    assert_eq!(
        (r.status, r.detail()),
        (400, "Learner already has a seat in this tenant")
    );
    store_unavailable(&app.reclaim(seats[0], Some("x")).await, "reclaim");
    let r = app
        .post("/api/v1/seats/purchase", json!({"tenant_id": school, "count": 3}))
        .await;
    store_unavailable(&r, "purchase");
    store_unavailable(&app.post("/api/v1/district", json!({"name": "D2"})).await, "district");
    let r = app
        .post(&format!("/api/v1/district/{district}/schools"), json!({"name": "S2"}))
        .await;
    store_unavailable(&r, "school");
    let r = app
        .put(&format!("/api/v1/tenant/{school}"), json!({"name": "Renamed"}))
        .await;
    store_unavailable(&r, "rename");
    let r = app
        .post(
            "/api/v1/roles",
            json!({"user_id": "teacher_2", "tenant_id": school, "role": "admin"}),
        )
        .await;
    store_unavailable(&r, "role");
    // A big purchase writes three records (seat id lease, audit id lease,
    // the block): fail it at each of them in turn.
    for allowed in 0..3 {
        faults.fail_writes_after(allowed);
        let r = app
            .post("/api/v1/seats/purchase", json!({"tenant_id": school, "count": 5000}))
            .await;
        store_unavailable(&r, &format!("purchase failing after {allowed} writes"));
    }
    faults.heal_writes();
    assert_eq!(
        snapshot(&app, district, school, &seats).await,
        before,
        "a refused write changed what clients see"
    );

    // Memory did not run ahead of disk: the refused changes go through now,
    // and learner_b was never recorded as holding a seat.
    assert_eq!(app.allocate(seats[1], "learner_b").await.status, 200);
    assert_eq!(app.reclaim(seats[0], None).await.status, 200);
    let more = app.purchase(school, 2).await;
    assert!(
        more.iter().all(|s| s > seats.iter().max().unwrap_or(&0)),
        "ids reused after failed purchases: {more:?}"
    );
    let mut all = seats.clone();
    all.extend(&more);
    let live = snapshot(&app, district, school, &all).await;
    let app = app.restart().await;
    assert_eq!(
        snapshot(&app, district, school, &all).await,
        live,
        "memory and disk diverged"
    );
    let (free, _, assigned) = app.count_seats(&all).await;
    let summary = app.summary(school).await;
    assert_eq!(
        (summary["free_seats"].as_u64(), summary["assigned_seats"].as_u64()),
        (Some(free), Some(assigned))
    );
}

#[tokio::test]
async fn a_failed_flush_stops_the_service_and_a_restart_is_consistent() {
    let faults = Arc::new(Faults::none());
    let dir = Arc::new(tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")));
    let app = TestApp::spawn_with_faults(Arc::clone(&dir), |_| {}, Arc::clone(&faults)).await;
    let district = app.district("Fsync District").await;
    let seats = app.purchase(district, 6).await;
    for (i, seat) in seats.iter().take(3).enumerate() {
        assert_eq!(app.allocate(*seat, &format!("l{i}")).await.status, 200);
    }
    faults.fail_flushes_after(0);
    // The write reaches sled; its flush fails; it is not acknowledged.
    store_unavailable(&app.allocate(seats[3], "l3").await, "allocate during a failed flush");
    // Nothing is acknowledged after it: a write is refused, or the server is
    // already gone (the connection fails).
    let next = app
        .client
        .post(app.url("/api/v1/seats/allocate"))
        .header("X-User-ID", ADMIN)
        .json(&json!({"seat_id": seats[4], "learner_id": "l4"}))
        .send()
        .await;
    if let Ok(r) = next {
        assert_eq!(r.status().as_u16(), 503, "a write after a failed flush was answered");
    }
    let (served, dir) = app.stopped_by_itself().await;
    assert!(
        matches!(served, Err(ServeError::StoreFailed)),
        "serve ended with {served:?}"
    );

    // A restart (on a healthy disk) shows every acknowledged write; the one
    // whose flush failed may or may not be there, but whole if it is.
    let app = TestApp::spawn_in(dir).await;
    for (i, seat) in seats.iter().take(3).enumerate() {
        let s = app.seat(*seat).await;
        assert_eq!(
            (s["state"].clone(), s["learner_id"].clone()),
            (json!("assigned"), json!(format!("l{i}")))
        );
    }
    let s3 = app.seat(seats[3]).await;
    let audit3 = app.audit(seats[3]).await;
    assert_eq!(
        audit3.len(),
        if s3["state"] == "assigned" { 2 } else { 1 },
        "{audit3:?}"
    );
    let (free, _, assigned) = app.count_seats(&seats).await;
    let summary = app.summary(district).await;
    assert_eq!(
        (summary["free_seats"].as_u64(), summary["assigned_seats"].as_u64()),
        (Some(free), Some(assigned))
    );
    assert_eq!(
        app.allocate(seats[5], "l5").await.status,
        200,
        "the restarted service takes writes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fsync_under_load_makes_the_process_exit_non_zero_and_restart_consistent() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let ledger = Shared::default();
    // Enough good flushes to set up and run a moment of load, then the disk fails.
    let mut server = Server::start_on_disk(&data, "fail-flushes-after:60");
    let tenants = load::tenants(&ledger, &server.base, &server.client, "Fsync", 2).await;
    let spec = Spec {
        clients: 8,
        seats_per_client: 16,
        learners_per_tenant: 40,
        stop: Arc::new(AtomicBool::new(false)),
    };
    // Clients run until the store fails under them (503 or a cut connection).
    load::run(&server.base, &server.client, &tenants, &ledger, &spec, 7).await;
    let code = server.exit_code(Duration::from_secs(15)).await;
    assert_eq!(code, Some(1), "exit code after a failed fsync");
    let stderr = server.stderr();
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("tenant-service:")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("failed to flush"), "{stderr}");
    let stats = lock(&ledger).stats;
    assert!(
        stats.store_unavailable + stats.unanswered > 0,
        "the failure was never met: {stats:?}"
    );

    let server = Server::start(&data);
    let checked = load::check(&ledger, &server.base, &server.client, false).await;
    eprintln!(
        "failed fsync: exit 1; {} acknowledged writes all present, {} answered 503 STORE_UNAVAILABLE, \
         {} cut off; {} seats checked",
        stats.acked, stats.store_unavailable, stats.unanswered, checked.seats
    );
}
