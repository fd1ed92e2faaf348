//! Tamper evidence: each tenant's audit entries form a SHA-256 hash chain.
//! Alter one stored byte and verification names that entry, over HTTP
//! (`GET /api/v1/audit/verify`) and offline (`tenant-service audit verify`).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use serde_json::Value;
use tenant_service::store::records;

use super::helpers::*;
use super::process::BIN;

/// The stored value under the first key of `kind` whose id bytes (1..9 or
/// 9..17) equal `id`, with `from` replaced by `to` (same length, so the
/// record still decodes: only the chain can tell).
fn alter(data: &Path, kind: u8, id_at: std::ops::Range<usize>, id: u64, from: &[u8], to: &[u8]) -> Vec<u8> {
    let db = open_sled(data);
    let (k, v) = db
        .scan_prefix([kind])
        .map(|kv| kv.unwrap_or_else(|e| panic!("{e}")))
        .find(|(k, _)| k.get(id_at.clone()) == Some(&id.to_be_bytes()[..]))
        .unwrap_or_else(|| panic!("no {} record for id {id}", char::from(kind)));
    let at = v
        .windows(from.len())
        .position(|w| w == from)
        .unwrap_or_else(|| panic!("{:?} not in the record", String::from_utf8_lossy(from)));
    let mut bad = v.to_vec();
    bad[at..at + to.len()].copy_from_slice(to);
    db.insert(&k, bad).unwrap_or_else(|e| panic!("{e}"));
    db.flush().unwrap_or_else(|e| panic!("{e}"));
    k.to_vec()
}

async fn verify(app: &TestApp, tenant: u64) -> Value {
    let r = app.get(&format!("/api/v1/audit/verify?tenantId={tenant}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

/// A school with a purchase of 3 and three changes; returns (district,
/// school, the purchase's first audit id, the reclaim's audit id).
async fn populate(app: &TestApp) -> (u64, u64, u64, u64) {
    let d = app.district("D").await;
    let s = app.school(d, "S").await;
    let seats = app.purchase(s, 3).await;
    assert_eq!(app.allocate(seats[0], "l1").await.status, 200);
    assert_eq!(app.reclaim(seats[0], Some("moved away")).await.status, 200);
    assert_eq!(app.allocate(seats[1], "l2").await.status, 200);
    app.purchase(d, 2).await;
    let trail = app.audit(seats[0]).await;
    let id = |i: usize| trail[i]["id"].as_u64().unwrap_or_else(|| panic!("{trail:?}"));
    (d, s, id(0), id(2))
}

#[tokio::test]
async fn an_altered_byte_is_named_by_verify_and_a_repaired_chain_verifies_again() {
    let app = TestApp::spawn().await;
    let (d, s, purchase, reclaim) = populate(&app).await;
    assert_eq!(
        verify(&app, s).await,
        serde_json::json!({"tenant_id": s, "entries": 6, "purged_entries": 0, "seats_checked": 2, "intact": true, "first_bad_entry": null})
    );
    assert_eq!(verify(&app, d).await["entries"], 2);

    // One byte of the reclaim's reason.
    let dir = app.stop().await;
    let data = dir.path().join("data");
    alter(&data, records::AUDIT, 9..17, reclaim, b"moved", b"moveD");
    let app = TestApp::spawn_in(dir).await;
    let report = verify(&app, s).await;
    assert_eq!(report["intact"], false, "{report}");
    assert_eq!(report["first_bad_entry"]["audit_id"], reclaim, "{report}");
    assert_eq!(report["entries"], 4, "3 purchased + 1 allocation before it: {report}");
    assert!(report["first_bad_entry"]["reason"]
        .as_str()
        .unwrap_or_default()
        .contains("hash does not match"));
    // The district's chain is its own, and untouched.
    assert_eq!(verify(&app, d).await["intact"], true);

    // Put the byte back: intact again. Then alter the purchase block's author.
    let dir = app.stop().await;
    alter(&data, records::AUDIT, 9..17, reclaim, b"moveD", b"moved");
    let block_seat = {
        let db = open_sled(&data);
        let (k, _) = db
            .scan_prefix([records::BLOCK])
            .next()
            .and_then(Result::ok)
            .unwrap_or_else(|| panic!("no block"));
        records::key_id(&k).unwrap_or_default()
    };
    let app = TestApp::spawn_in(Arc::clone(&dir)).await;
    assert_eq!(verify(&app, s).await["intact"], true);
    drop(app.stop().await);
    alter(&data, records::BLOCK, 1..9, block_seat, ADMIN.as_bytes(), b"admin_8");
    let app = TestApp::spawn_in(dir).await;
    let report = verify(&app, s).await;
    assert_eq!(report["intact"], false, "{report}");
    assert_eq!(report["first_bad_entry"]["audit_id"], purchase, "{report}");
    assert_eq!(report["entries"], 0);
    // The altered block is what the service now shows: that is what the chain is for.
    let trail = app.get(&format!("/api/v1/audit?tenantId={s}&limit=1")).await;
    assert_eq!(trail.body["items"][0]["changed_by"], "admin_8");
}

#[tokio::test]
async fn verify_needs_the_manager_role_and_a_known_tenant() {
    let app = TestApp::spawn_with(|s| {
        s.auth.enforce_roles = true;
        s.auth.platform_admins = vec![ADMIN.into()];
    })
    .await;
    let d = app.district("D").await;
    let r = app
        .post(
            "/api/v1/roles",
            serde_json::json!({"user_id": "t", "tenant_id": d, "role": "teacher"}),
        )
        .await;
    assert_eq!(r.status, 201);
    let as_teacher = app
        .send(
            app.client
                .get(app.url(&format!("/api/v1/audit/verify?tenantId={d}")))
                .header("X-User-ID", "t"),
        )
        .await;
    assert_eq!(as_teacher.status, 403);
    assert_eq!(app.get("/api/v1/audit/verify?tenantId=999").await.status, 404);
    assert_eq!(app.get("/api/v1/audit/verify").await.status, 422);
    assert_eq!(verify(&app, d).await["entries"], 0);
}

/// A usage error (2) is never mistaken for a chain that is not intact (3).
#[test]
fn a_usage_error_exits_2_and_a_broken_chain_3() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (code, reports, stderr) = cli(dir.path(), &["--tenant", "abc"]);
    assert_eq!((code, reports.len()), (2, 0), "{stderr}");
    assert!(stderr.contains("--tenant"), "{stderr}");
    let help = Command::new(BIN)
        .arg("--help")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("2 usage error") && help.contains("3 `audit verify`"),
        "{help}"
    );
}

fn cli(data: &Path, extra: &[&str]) -> (i32, Vec<Value>, String) {
    let out = Command::new(BIN)
        .args(["audit", "verify", "--data-dir"])
        .arg(data)
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let reports = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (
        out.status.code().unwrap_or(-1),
        reports,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_offline_verifier_reports_every_tenant_names_the_altered_entry_and_refuses_a_live_store() {
    let app = TestApp::spawn().await;
    let (d, s, _, reclaim) = populate(&app).await;
    let data = app.data_dir();

    // The service holds the store: the verifier says so and reads nothing.
    let (code, reports, stderr) = cli(&data, &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(reports.is_empty());
    assert!(stderr.contains("in use by another tenant-service process"), "{stderr}");

    let dir = app.stop().await;
    let (code, reports, stderr) = cli(&data, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(reports.len(), 2);
    assert_eq!(
        reports[0],
        serde_json::json!({"tenant_id": d, "entries": 2, "purged_entries": 0, "seats_checked": 0, "intact": true, "first_bad_entry": null})
    );
    assert_eq!(reports[1]["entries"], 6);

    alter(&data, records::AUDIT, 9..17, reclaim, b"away", b"Away");
    let (code, reports, _) = cli(&data, &["--tenant", &s.to_string()]);
    assert_eq!(code, 3);
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["tenant_id"], s);
    assert_eq!(reports[0]["first_bad_entry"]["audit_id"], reclaim);

    // A record too damaged to decode (it would stop a start) is still named.
    {
        let db = open_sled(&data);
        let (k, _) = db
            .scan_prefix([records::AUDIT])
            .map(|kv| kv.unwrap_or_else(|e| panic!("{e}")))
            .find(|(k, _)| k.get(9..17) == Some(&reclaim.to_be_bytes()[..]))
            .unwrap_or_else(|| panic!("no audit record"));
        db.insert(&k, vec![records::FORMAT, 0xff])
            .unwrap_or_else(|e| panic!("{e}"));
        db.flush().unwrap_or_else(|e| panic!("{e}"));
    }
    let (code, reports, _) = cli(&data, &["--tenant", &s.to_string()]);
    assert_eq!(code, 3);
    assert_eq!(reports[0]["first_bad_entry"]["audit_id"], reclaim);
    assert!(reports[0]["first_bad_entry"]["reason"]
        .as_str()
        .unwrap_or_default()
        .contains("unreadable"));

    let (code, _, stderr) = cli(&data, &["--tenant", "999"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("tenant 999 is not in the store"), "{stderr}");
    let (code, _, stderr) = cli(&dir.path().join("nowhere"), &[]);
    assert_eq!(code, 1);
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(!dir.path().join("nowhere").exists(), "the verifier created a data dir");
}

/// Runs both verifiers over one tenant of a stopped store: the service's
/// (started on it) and the offline one (after the service stopped again).
/// They must agree; returns the report and the directory.
async fn both_verifiers(dir: Arc<tempfile::TempDir>, tenant: u64) -> (Value, Arc<tempfile::TempDir>) {
    let app = TestApp::spawn_in(dir).await;
    let served = verify(&app, tenant).await;
    let dir = app.stop().await;
    let (code, offline, stderr) = cli(&dir.path().join("data"), &["--tenant", &tenant.to_string()]);
    assert_eq!(code, if served["intact"] == true { 0 } else { 3 }, "{stderr}");
    assert_eq!(offline, vec![served.clone()], "the two verifiers disagree");
    (served, dir)
}

/// Edits a stopped store's records by hand, as someone with the disk would.
fn edit(data: &Path, f: impl FnOnce(&sled::Db)) {
    let db = open_sled(data);
    f(&db);
    db.flush().unwrap_or_else(|e| panic!("{e}"));
}

fn audit_key(seat: u64, id: u64) -> Vec<u8> {
    let mut k = vec![records::AUDIT];
    k.extend_from_slice(&seat.to_be_bytes());
    k.extend_from_slice(&id.to_be_bytes());
    k
}

fn reason(report: &Value) -> &str {
    report["first_bad_entry"]["reason"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn an_audit_record_no_trail_entry_links_is_named_by_both_verifiers() {
    let app = TestApp::spawn().await;
    let d = app.district("D").await;
    let s = app.school(d, "S").await;
    let seats = app.purchase(s, 2).await;
    assert_eq!(app.allocate(seats[0], "learner-1").await.status, 200);
    let history = app.audit(seats[0]).await;
    let allocation = history[1]["id"].as_u64().unwrap_or_else(|| panic!("{history:?}"));
    let dir = app.stop().await;
    let data = dir.path().join("data");

    // The allocation's record copied under a new id, with no trail key: the
    // seat's history shows it twice, and the chain alone is still intact.
    let copy = allocation + 100;
    edit(&data, |db| {
        let v = db
            .get(audit_key(seats[0], allocation))
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("no audit record {allocation}"));
        db.insert(audit_key(seats[0], copy), v)
            .unwrap_or_else(|e| panic!("{e}"));
    });
    let app = TestApp::spawn_in(dir).await;
    assert_eq!(app.audit(seats[0]).await.len(), 3, "the copy is shown");
    let dir = app.stop().await;
    let (report, dir) = both_verifiers(dir, s).await;
    assert_eq!(report["intact"], false, "{report}");
    assert_eq!(report["entries"], 3, "the chain itself is whole: {report}");
    assert_eq!(report["first_bad_entry"]["audit_id"], copy, "{report}");
    assert_eq!(report["first_bad_entry"]["seat_id"], seats[0], "{report}");
    assert!(reason(&report).contains("not on the tenant's chain"), "{report}");
    assert_eq!(
        report["first_bad_entry"]["record"],
        format!("A/{:016x}{copy:016x}", seats[0]),
        "{report}"
    );

    // Under another seat of the tenant (one never changed), likewise.
    edit(&data, |db| {
        let v = db
            .remove(audit_key(seats[0], copy))
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("no copy"));
        db.insert(audit_key(seats[1], copy), v)
            .unwrap_or_else(|e| panic!("{e}"));
    });
    let (report, dir) = both_verifiers(dir, s).await;
    assert_eq!(report["first_bad_entry"]["seat_id"], seats[1], "{report}");
    assert_eq!(report["first_bad_entry"]["audit_id"], copy, "{report}");

    // Removed again: intact, and the district was never concerned.
    edit(&data, |db| {
        db.remove(audit_key(seats[1], copy)).unwrap_or_else(|e| panic!("{e}"));
    });
    let (report, dir) = both_verifiers(dir, s).await;
    assert_eq!(report["intact"], true, "{report}");
    assert_eq!(report["seats_checked"], 1, "{report}");
    assert_eq!(both_verifiers(dir, d).await.0["intact"], true);
}

#[tokio::test]
async fn a_seat_record_that_is_not_what_its_last_audit_entry_left_is_named_by_both_verifiers() {
    let app = TestApp::spawn().await;
    let d = app.district("D").await;
    let s = app.school(d, "S").await;
    let seats = app.purchase(s, 3).await;
    assert_eq!(app.allocate(seats[0], "learner-1").await.status, 200);
    assert_eq!(app.reclaim(seats[0], None).await.status, 200);
    assert_eq!(app.allocate(seats[1], "learner-2").await.status, 200);
    let history = app.audit(seats[1]).await;
    let allocation = history[1]["id"].as_u64().unwrap_or_else(|| panic!("{history:?}"));
    let dir = app.stop().await;
    let data = dir.path().join("data");
    let seat_key = records::key(records::SEAT, seats[1]);
    let original = open_sled(&data)
        .get(seat_key)
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no seat record"))
        .to_vec();

    // 1. The learner in the seat record (its first field holding one): the
    // service shows the new learner, the audit entry the old.
    alter(&data, records::SEAT, 1..9, seats[1], b"learner-2", b"learner-9");
    let app = TestApp::spawn_in(dir).await;
    assert_eq!(app.seat(seats[1]).await["learner_id"], "learner-9");
    assert_eq!(app.audit(seats[1]).await[1]["new_learner_id"], "learner-2");
    let dir = app.stop().await;
    let (report, dir) = both_verifiers(dir, s).await;
    assert_eq!(report["intact"], false, "{report}");
    assert_eq!(report["entries"], 6, "{report}");
    assert_eq!(report["first_bad_entry"]["seat_id"], seats[1], "{report}");
    assert_eq!(report["first_bad_entry"]["audit_id"], allocation, "{report}");
    assert_eq!(
        report["first_bad_entry"]["record"],
        format!("S/{:016x}", seats[1]),
        "{report}"
    );
    assert!(
        reason(&report).contains("learner learner-9") && reason(&report).contains("learner learner-2"),
        "{report}"
    );

    // 2. The learner in the record and in the copy of its last entry it
    // carries: the copy is not the entry on the chain.
    alter(&data, records::SEAT, 1..9, seats[1], b"learner-2", b"learner-9");
    let (report, dir) = both_verifiers(dir, s).await;
    assert_eq!(report["first_bad_entry"]["seat_id"], seats[1], "{report}");
    assert!(
        reason(&report).contains("differs from the one on the chain"),
        "{report}"
    );

    // 3. The record gone: the seat shows as free since its purchase.
    edit(&data, |db| {
        db.remove(seat_key).unwrap_or_else(|e| panic!("{e}"));
    });
    let (report, dir) = both_verifiers(dir, s).await;
    assert_eq!(report["first_bad_entry"]["seat_id"], seats[1], "{report}");
    assert_eq!(report["first_bad_entry"]["audit_id"], allocation, "{report}");
    assert!(reason(&report).contains("seat record is missing"), "{report}");

    // Put back: intact.
    edit(&data, |db| {
        db.insert(seat_key, original).unwrap_or_else(|e| panic!("{e}"));
    });
    let (report, _) = both_verifiers(dir, s).await;
    assert_eq!(
        (
            report["intact"].clone(),
            report["entries"].clone(),
            report["seats_checked"].clone()
        ),
        (Value::Bool(true), 6.into(), 2.into()),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verify_while_the_tenant_changes_finds_its_chain_and_records_intact() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let app = Arc::new(TestApp::spawn().await);
    let t = app.district("D").await;
    let seats = app.purchase(t, 6).await;
    let stop = Arc::new(AtomicBool::new(false));
    // Seat changes and purchases written while the walks run: whatever a
    // walk meets half written is a write in flight, never a bad record.
    let mut writers: Vec<_> = seats
        .iter()
        .enumerate()
        .map(|(i, &seat)| {
            let (app, stop) = (Arc::clone(&app), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut changes = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    assert_eq!(app.allocate(seat, &format!("learner-{i}")).await.status, 200);
                    assert_eq!(app.reclaim(seat, None).await.status, 200);
                    changes += 2;
                }
                changes
            })
        })
        .collect();
    writers.push({
        let (app, stop) = (Arc::clone(&app), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut bought = 0u64;
            while !stop.load(Ordering::Relaxed) {
                app.purchase(t, 2).await;
                bought += 2;
            }
            bought
        })
    });
    for _ in 0..40 {
        let report = verify(&app, t).await;
        assert_eq!(report["intact"], true, "{report}");
    }
    stop.store(true, Ordering::Relaxed);
    let mut entries = seats.len() as u64;
    for w in writers {
        entries += w.await.unwrap_or_else(|e| panic!("{e}"));
    }
    let report = verify(&app, t).await;
    assert_eq!(
        (report["intact"].clone(), report["entries"].clone()),
        (Value::Bool(true), entries.into())
    );
    let app = Arc::try_unwrap(app).unwrap_or_else(|_| panic!("the writers still hold the app"));
    let (report, _) = both_verifiers(app.stop().await, t).await;
    assert_eq!(report["seats_checked"], seats.len() as u64, "{report}");
}
