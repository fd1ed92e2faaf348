//! The on-disk format: a data dir written by an earlier build opens, shows
//! exactly what that build acknowledged, verifies, and takes new writes.
//!
//! `tests/fixtures/store-69be213` was written by the build at commit 69be213
//! (before the engine was split by feature and the record types moved to
//! `domain`): a district (1) and its school (2); 5 seats bought in the
//! school; a 50 % alert threshold; seats 1, 2, 3 allocated to learner_1..3,
//! then seat 2 reclaimed ("Moved away"), which raised an alert up and one
//! down; teacher_123 granted teacher in the district; manager_9 granted
//! manager in the school, then deactivated. Stopped with SIGTERM.

use std::sync::Arc;

use serde_json::json;

use super::helpers::TestApp;

/// A copy of the fixture in a fresh temp dir (sled writes to what it opens).
fn copy_fixture() -> Arc<tempfile::TempDir> {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap_or_else(|e| panic!("{e}"));
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-69be213");
    for name in ["conf", "db"] {
        std::fs::copy(fixture.join(name), data.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    Arc::new(dir)
}

#[tokio::test]
async fn a_data_dir_written_by_an_earlier_build_opens_verifies_and_takes_writes() {
    let dir = copy_fixture();
    // Read-only verification first, as an operator would (`audit verify`).
    let reports =
        tenant_service::store::verify_dir(&dir.path().join("data"), None).unwrap_or_else(|e| panic!("verify: {e}"));
    assert_eq!(reports.len(), 2);
    assert!(reports.iter().all(|r| r.intact), "{reports:?}");

    let app = TestApp::spawn_in(dir).await;
    let district = app.get("/api/v1/district/1").await;
    assert_eq!(district.status, 200, "{}", district.body);
    assert_eq!(district.body["name"], "Springfield District");
    assert_eq!(district.body["children"][0]["name"], "Springfield Elementary");

    let summary = app.summary(2).await;
    assert_eq!(
        (
            &summary["total_seats"],
            &summary["free_seats"],
            &summary["assigned_seats"]
        ),
        (&json!(5), &json!(3), &json!(2)),
        "{summary}"
    );
    assert_eq!(app.seat(1).await["learner_id"], "learner_1");
    assert_eq!(app.seat(2).await["state"], "free");
    assert_eq!(app.seat(3).await["learner_id"], "learner_3");

    let trail = app.audit(2).await;
    let reasons: Vec<&str> = trail.iter().filter_map(|a| a["reason"].as_str()).collect();
    assert_eq!(reasons, ["Seat purchased", "Seat allocated to learner", "Moved away"]);
    assert_eq!(trail[1]["new_learner_id"], "learner_2");

    let roles = app.get("/api/v1/roles?tenantId=2").await;
    assert_eq!(roles.body[0]["user_id"], "manager_9");
    assert_eq!(roles.body[0]["is_active"], false);
    let teacher = app.get("/api/v1/users/teacher_123/tenants").await;
    assert_eq!(teacher.body[0]["role"], "teacher");

    let alerts = app.get("/api/v1/alerts?tenantId=2").await;
    assert_eq!(alerts.body["threshold_percent"], 50.0);
    let directions: Vec<&str> = alerts.body["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["direction"].as_str())
        .collect();
    assert_eq!(directions, ["up", "down"]);

    for tenant in [1, 2] {
        let verified = app.get(&format!("/api/v1/audit/verify?tenantId={tenant}")).await;
        assert_eq!(verified.body["intact"], true, "{}", verified.body);
    }

    // New writes go on from where the earlier build stopped: new ids, the
    // rules as before, and the chain still intact.
    let r = app.allocate(4, "learner_4").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        app.allocate(5, "learner_1").await.status,
        400,
        "learner_1 still holds seat 1"
    );
    let school = app.school(1, "Shelbyville Elementary").await;
    assert!(school > 2, "a tenant id was handed out twice: {school}");
    let seats = app.purchase(school, 2).await;
    assert!(
        seats.iter().all(|s| *s > 5),
        "a seat id was handed out twice: {seats:?}"
    );
    let verified = app.get("/api/v1/audit/verify?tenantId=2").await;
    assert_eq!(
        (&verified.body["intact"], &verified.body["entries"]),
        (&json!(true), &json!(10))
    );
}
