//! Stop, reopen the same data dir, compare everything.

use serde_json::{json, Value};

use super::helpers::*;

async fn snapshot(app: &TestApp, tenants: &[u64], seats: &[u64], users: &[&str]) -> Vec<Value> {
    let mut out = Vec::new();
    for &t in tenants {
        out.push(app.get(&format!("/api/v1/tenant/{t}")).await.body);
        out.push(app.summary(t).await);
        out.push(app.get(&format!("/api/v1/roles?tenantId={t}")).await.body);
        let d = app.get(&format!("/api/v1/district/{t}")).await;
        out.push(json!([d.status, d.body]));
    }
    for &s in seats {
        out.push(app.seat(s).await);
        out.push(json!(app.audit(s).await));
    }
    for u in users {
        out.push(app.get(&format!("/api/v1/users/{u}/tenants")).await.body);
    }
    out
}

#[tokio::test]
async fn a_varied_history_survives_a_restart() {
    let app = TestApp::spawn().await;
    let d = app.district("Springfield \"District\" ✏️").await;
    let a = app.school(d, "A").await;
    let b = app.school(d, "B").await;
    let other = app.district("Other").await;
    let mut seats = app.purchase(a, 20).await;
    seats.extend(app.purchase(b, 5).await);
    seats.extend(app.purchase(d, 3).await);
    seats.extend(app.purchase(a, 4).await);
    for (i, &s) in seats.iter().enumerate().take(20) {
        assert_eq!(app.allocate(s, &format!("learner_{i}")).await.status, 200);
    }
    for &s in seats.iter().take(10).step_by(2) {
        assert_eq!(app.reclaim(s, Some("moved")).await.status, 200);
    }
    for (user, tenant, role) in [("t1", d, "teacher"), ("t1", a, "admin"), ("m1", b, "manager")] {
        let r = app
            .post(
                "/api/v1/roles",
                json!({"user_id": user, "tenant_id": tenant, "role": role}),
            )
            .await;
        assert_eq!(r.status, 201);
    }
    assert_eq!(
        app.put(
            &format!("/api/v1/tenant/{b}"),
            json!({"name": "B renamed", "is_active": false})
        )
        .await
        .status,
        200
    );
    let tenants = [d, a, b, other];
    let users = ["t1", "m1"];
    let before = snapshot(&app, &tenants, &seats, &users).await;

    let app = app.restart().await;
    let after = snapshot(&app, &tenants, &seats, &users).await;
    assert_eq!(before, after);

    // The rules still hold on the recovered state.
    let r = app.allocate(seats[0], "learner_12").await;
    assert_eq!(
        (r.status, r.detail()),
        (400, "Learner already has a seat in this tenant")
    );
    let r = app
        .post(
            "/api/v1/roles",
            json!({"user_id": "t1", "tenant_id": d, "role": "admin"}),
        )
        .await;
    assert_eq!(r.status, 400);

    // New ids never reuse old ones.
    let new_tenant = app.district("After restart").await;
    assert!(!tenants.contains(&new_tenant));
    let new_seats = app.purchase(a, 3).await;
    assert!(new_seats.iter().all(|s| !seats.contains(s)));
    let old_audit_ids: Vec<u64> = app
        .audit(seats[0])
        .await
        .iter()
        .filter_map(|e| e["id"].as_u64())
        .collect();
    assert_eq!(app.allocate(new_seats[0], "fresh").await.status, 200);
    let new_audit_ids: Vec<u64> = app
        .audit(new_seats[0])
        .await
        .iter()
        .filter_map(|e| e["id"].as_u64())
        .collect();
    assert!(new_audit_ids.iter().all(|id| !old_audit_ids.contains(id)));

    // And a second restart is as good as the first.
    let before = snapshot(&app, &tenants, &seats, &users).await;
    let app = app.restart().await;
    assert_eq!(snapshot(&app, &tenants, &seats, &users).await, before);
}

#[tokio::test]
async fn a_second_instance_on_the_same_data_dir_is_refused() {
    let app = TestApp::spawn().await;
    let settings = tenant_service::Settings {
        data_dir: app.data_dir(),
        ..Default::default()
    };
    match tenant_service::App::open(&settings) {
        Ok(_) => panic!("a second instance opened a locked data dir"),
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains("in use by another"), "{msg}");
            assert!(msg.contains(&app.data_dir().display().to_string()), "{msg}");
        }
    }
    assert!(app.healthy().await);
}

/// A crash between a transition's commit point (the seat key, which carries
/// the audit entry) and its trail key leaves the trail key missing: the next
/// start restores it, so every change still has its audit entry.
#[tokio::test]
async fn a_trail_entry_lost_after_its_commit_point_is_restored_on_start() {
    use tenant_service::domain::{AuditId, Id, SeatId};
    use tenant_service::store::records;

    let app = TestApp::spawn().await;
    let t = app.district("D").await;
    let seat = app.purchase(t, 1).await[0];
    assert_eq!(app.allocate(seat, "l1").await.status, 200);
    let before = app.audit(seat).await;
    let last = before.last().and_then(|a| a["id"].as_u64()).unwrap_or_default();
    let dir = app.stop().await;

    // What a crash at that moment leaves behind: the trail key never written.
    {
        let db = sled::Config::new()
            .path(dir.path().join("data"))
            .open()
            .unwrap_or_else(|e| panic!("{e}"));
        let seat_id = SeatId::new(seat).unwrap_or_else(|| panic!("seat id"));
        let audit_id = AuditId::new(last).unwrap_or_else(|| panic!("audit id"));
        let removed = db
            .remove(records::audit_key(seat_id, audit_id))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(removed.is_some(), "the audit key was where expected");
        // The tenant-trail key (and chain link) of that change: the newest
        // under the tenant's trail prefix.
        let mut prefix = vec![records::TRAIL];
        prefix.extend_from_slice(&t.to_be_bytes());
        let (newest, _) = db
            .scan_prefix(&prefix)
            .next_back()
            .and_then(Result::ok)
            .unwrap_or_else(|| panic!("no trail key for tenant {t}"));
        db.remove(newest).unwrap_or_else(|e| panic!("{e}"));
        db.flush().unwrap_or_else(|e| panic!("{e}"));
    }

    let app = TestApp::spawn_in(dir).await;
    assert_eq!(app.audit(seat).await, before);
    assert_eq!(app.seat(seat).await["learner_id"], "l1");
    let page = app.get(&format!("/api/v1/audit?tenantId={t}&order=desc&limit=1")).await;
    assert_eq!(page.body["items"][0]["id"].as_u64(), Some(last), "{}", page.body);
    let verified = app.get(&format!("/api/v1/audit/verify?tenantId={t}")).await;
    assert_eq!(verified.body["intact"], true, "{}", verified.body);
}
