//! Audit retention: export, then purge, then the chain still verifies from
//! the checkpoint, and the trail goes on after it.

use std::sync::Arc;
use std::time::Duration;

use super::faulty_disk::Faults;
use serde_json::{json, Value};

use super::helpers::*;

async fn with_retention(dir: Arc<tempfile::TempDir>, days: Option<u64>) -> TestApp {
    TestApp::spawn_with_faults(dir, |s| s.audit.retention_days = days, Arc::new(Faults::none())).await
}

async fn trail(app: &TestApp, tenant: u64) -> Vec<Value> {
    let r = app.get(&format!("/api/v1/audit?tenantId={tenant}&limit=1000")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["items"].as_array().cloned().unwrap_or_default()
}

async fn verify(app: &TestApp, tenant: u64) -> Value {
    let r = app.get(&format!("/api/v1/audit/verify?tenantId={tenant}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

fn exports(app: &TestApp) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(app.data_dir().join("audit-exports"))
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// Waits until the tenant's trail is empty (the purge at start is done).
async fn purged(app: &TestApp, tenant: u64) {
    for _ in 0..250 {
        if trail(app, tenant).await.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("tenant {tenant}'s trail was not purged");
}

/// A district and a school with three seats, one of them allocated and
/// reclaimed: five trail entries in the school. Returns (district, school, seats).
async fn school_with_history(app: &TestApp) -> (u64, u64, Vec<u64>) {
    let d = app.district("D").await;
    let s = app.school(d, "S").await;
    let seats = app.purchase(s, 3).await;
    assert_eq!(app.allocate(seats[0], "l1").await.status, 200);
    assert_eq!(app.reclaim(seats[0], None).await.status, 200);
    (d, s, seats)
}

#[tokio::test]
async fn export_then_purge_leaves_a_chain_that_verifies_and_goes_on() {
    let app = TestApp::spawn().await;
    let (d, s, seats) = school_with_history(&app).await;
    app.purchase(d, 2).await;
    let r = app
        .post(
            "/api/v1/roles",
            json!({"user_id": "sam", "tenant_id": s, "role": "manager"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let role_events = app.get(&format!("/api/v1/roles/events?tenantId={s}")).await.body;
    assert_eq!(role_events.as_array().map(Vec::len), Some(1), "{role_events}");
    let school_before = trail(&app, s).await;
    let district_only = 2;
    assert_eq!(school_before.len(), 5);
    assert_eq!(verify(&app, s).await["entries"], 5);

    // Keep 0 days: at start, everything before now is exported, then purged.
    let dir = app.stop().await;
    let app = with_retention(dir, Some(0)).await;
    purged(&app, s).await;
    purged(&app, d).await;
    let files = exports(&app);
    assert_eq!(files.len(), 1, "{files:?}");
    let lines: Vec<Value> = std::fs::read_to_string(&files[0])
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(
        lines.len(),
        5 + district_only + 1,
        "nothing is purged that was not exported"
    );
    // Role grants and deactivations are part of the trail too.
    let role_line = lines
        .iter()
        .find(|l| l["kind"] == "role_event")
        .cloned()
        .unwrap_or_default();
    let mut role_line_fields = role_line.clone();
    if let Some(o) = role_line_fields.as_object_mut() {
        o.remove("kind");
    }
    assert_eq!(role_line_fields, role_events[0]);
    assert_eq!(
        app.get(&format!("/api/v1/roles/events?tenantId={s}")).await.body,
        json!([])
    );
    assert_eq!(
        app.get(&format!("/api/v1/roles?tenantId={s}")).await.body[0]["user_id"],
        "sam",
        "the role itself stays"
    );
    for entry in &school_before {
        let line = lines
            .iter()
            .find(|l| l["id"] == entry["id"])
            .unwrap_or_else(|| panic!("{entry} not exported"));
        assert_eq!(line["tenant_id"], s);
        assert_eq!(line["kind"], "seat_audit");
        assert_eq!(line["reason"], entry["reason"]);
    }
    assert_eq!(
        verify(&app, s).await,
        json!({"tenant_id": s, "entries": 0, "purged_entries": 5, "seats_checked": 1, "intact": true, "first_bad_entry": null})
    );
    assert_eq!(verify(&app, d).await["purged_entries"], 2);
    assert_eq!(
        app.audit(seats[1]).await,
        Vec::<Value>::new(),
        "the purchase entry is purged too"
    );
    // Seats themselves are untouched.
    assert_eq!(app.summary(s).await["total_seats"], 3);

    // The chain goes on from the checkpoint, in memory and after a restart.
    assert_eq!(app.allocate(seats[2], "l2").await.status, 200);
    let v = verify(&app, s).await;
    assert_eq!(
        (v["entries"].clone(), v["intact"].clone()),
        (json!(1), json!(true)),
        "{v}"
    );
    let dir = app.stop().await;
    let app = with_retention(dir, None).await;
    assert_eq!(verify(&app, s).await["intact"], true);
    assert_eq!(
        app.get(&format!("/api/v1/roles/events?tenantId={s}")).await.body,
        json!([]),
        "a restart does not bring back a purged role event (the role's last one)"
    );
    assert_eq!(app.reclaim(seats[2], None).await.status, 200);
    let v = verify(&app, s).await;
    assert_eq!(
        (v["entries"].clone(), v["purged_entries"].clone(), v["intact"].clone()),
        (json!(2), json!(5), json!(true)),
        "{v}"
    );
    assert_eq!(trail(&app, s).await.len(), 2);

    // A second purge adds to the checkpoint and writes a second export.
    let dir = app.stop().await;
    assert_eq!(
        trail_keys_on_disk(&dir.path().join("data"), d).await,
        0,
        "a restart does not bring back the district's purged purchase (its last purged entry)"
    );
    let app = with_retention(dir, Some(0)).await;
    purged(&app, s).await;
    let files = exports(&app);
    assert_eq!(files.len(), 2);
    let second = std::fs::read_to_string(&files[1]).unwrap_or_default();
    assert!(
        !second.contains("role_event"),
        "a role event is exported (and counted) once: {second}"
    );
    let v = verify(&app, s).await;
    assert_eq!(
        (v["entries"].clone(), v["purged_entries"].clone(), v["intact"].clone()),
        (json!(0), json!(7), json!(true)),
        "{v}"
    );
    // With a long retention nothing recent is touched.
    assert_eq!(app.allocate(seats[0], "l3").await.status, 200);
    let dir = app.stop().await;
    let app = with_retention(dir, Some(30)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(trail(&app, s).await.len(), 1);
    assert_eq!(exports(&app).len(), 2);
}

/// Trail keys (and the seat audit records they name) still on disk for a
/// tenant, read from the stopped server's store directly.
async fn trail_keys_on_disk(dir: &std::path::Path, tenant: u64) -> usize {
    // The stopped server's sled may take a moment to release its lock.
    for _ in 0..500 {
        if let Ok(db) = sled::Config::new().path(dir).open() {
            let mut prefix = vec![b'X'];
            prefix.extend_from_slice(&tenant.to_be_bytes());
            return db.scan_prefix(prefix).count();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the store at {} stayed locked", dir.display());
}

#[tokio::test]
async fn a_purge_cut_short_after_its_checkpoint_hides_what_it_covers_and_the_next_start_finishes_it() {
    let app = TestApp::spawn().await;
    let (_, s, seats) = school_with_history(&app).await;
    assert_eq!(trail(&app, s).await.len(), 5);
    assert_eq!(app.audit(seats[0]).await.len(), 3);
    let dir = app.stop().await;
    let on_disk_before = trail_keys_on_disk(&dir.path().join("data"), s).await;
    assert_eq!(on_disk_before, 3, "a purchase block and two seat changes");

    // The purge at start writes its checkpoint (one write), then every
    // removal fails: the store is left as a crash between them would leave it.
    let faults = Arc::new(Faults::none());
    faults.fail_writes_after(1);
    let app = TestApp::spawn_with_faults(dir, |st| st.audit.retention_days = Some(0), Arc::clone(&faults)).await;
    let mut v = verify(&app, s).await;
    for _ in 0..250 {
        if v["purged_entries"] == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        v = verify(&app, s).await;
    }
    assert_eq!(
        v,
        json!({"tenant_id": s, "entries": 0, "purged_entries": 5, "seats_checked": 1, "intact": true, "first_bad_entry": null})
    );
    assert_eq!(trail(&app, s).await, Vec::<Value>::new());
    assert_eq!(app.audit(seats[0]).await, Vec::<Value>::new());
    faults.heal_writes();
    let dir = app.stop().await;
    assert_eq!(
        trail_keys_on_disk(&dir.path().join("data"), s).await,
        3,
        "the removals failed, so the covered keys are still there"
    );

    // The next start removes them; nothing visible changes, and the trail
    // goes on from the checkpoint.
    let app = with_retention(dir, None).await;
    assert_eq!(verify(&app, s).await["intact"], true);
    assert_eq!(trail(&app, s).await, Vec::<Value>::new());
    assert_eq!(app.allocate(seats[1], "l2").await.status, 200);
    let v = verify(&app, s).await;
    assert_eq!(
        (v["entries"].clone(), v["purged_entries"].clone(), v["intact"].clone()),
        (json!(1), json!(5), json!(true)),
        "{v}"
    );
    assert_eq!(app.summary(s).await["assigned_seats"], 1);
    let dir = app.stop().await;
    assert_eq!(
        trail_keys_on_disk(&dir.path().join("data"), s).await,
        1,
        "only the new entry"
    );
}

/// The store of a stopped server, opened directly (its lock may take a
/// moment to be released).
async fn open_store(dir: &std::path::Path, faults: Arc<Faults>) -> Arc<tenant_service::store::Store> {
    for _ in 0..500 {
        if let Ok((store, _)) = tenant_service::store::Store::open_with(dir, faults.clone()) {
            return store;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the store at {} stayed locked", dir.display());
}

#[tokio::test]
async fn a_purge_after_one_cut_short_removes_its_leftovers_without_counting_them_again() {
    use tenant_service::domain::{Id, TenantId, Timestamp};
    let app = TestApp::spawn().await;
    let d = app.district("D").await;
    let s = app.school(d, "S").await;
    let seats = app.purchase(s, 3).await;
    assert_eq!(app.allocate(seats[0], "l1").await.status, 200);
    let between = Timestamp::now();
    assert_eq!(app.reclaim(seats[0], None).await.status, 200);
    let dir = app.stop().await;
    let faults = Arc::new(Faults::none());
    let store = open_store(&dir.path().join("data"), Arc::clone(&faults)).await;
    let tenant = TenantId::new(s).unwrap_or_else(|| panic!("tenant id {s}"));
    let exports = dir.path().join("exports");

    // First run: purchase and allocation are old enough; the checkpoint
    // (4 entries: 3 seats bought, 1 allocation) is written, the removals fail.
    faults.fail_writes_after(1);
    assert!(store.retain(between, &exports).is_err());
    faults.heal_writes();
    let report = store
        .verify_chain(tenant, None)
        .unwrap_or_else(|e| panic!("verify: {e}"));
    assert_eq!((report.entries, report.purged_entries, report.intact), (1, 4, true));

    // Second run: the reclaim too. The leftovers go, counted once.
    let (done, seq) = store
        .retain(Timestamp::now(), &exports)
        .unwrap_or_else(|e| panic!("retain: {e}"));
    store.durable(seq).await.unwrap_or_else(|e| panic!("durable: {e}"));
    assert_eq!((done.exported, done.purged), (1, 1), "{done:?}");
    let report = store
        .verify_chain(tenant, None)
        .unwrap_or_else(|e| panic!("verify: {e}"));
    assert_eq!((report.entries, report.purged_entries, report.intact), (0, 5, true));
    store.close();
    drop(store);
    assert_eq!(trail_keys_on_disk(&dir.path().join("data"), s).await, 0);
}
