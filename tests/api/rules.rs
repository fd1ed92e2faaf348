//! The business rules the old service promised, as scenarios.

use serde_json::json;

use super::helpers::*;

#[tokio::test]
async fn a_learner_holds_one_seat_per_tenant_but_may_hold_one_in_each() {
    let app = TestApp::spawn().await;
    let district = app.district("D").await;
    let a = app.school(district, "A").await;
    let b = app.school(district, "B").await;
    let seats_a = app.purchase(a, 2).await;
    let seats_b = app.purchase(b, 1).await;
    let seats_d = app.purchase(district, 1).await;

    assert_eq!(app.allocate(seats_a[0], "l1").await.status, 200);
    assert_eq!(app.allocate(seats_a[1], "l1").await.status, 400);
    // Rule 1 is per tenant: the same learner may hold a seat in a sibling school and in the district.
    assert_eq!(app.allocate(seats_b[0], "l1").await.status, 200);
    assert_eq!(app.allocate(seats_d[0], "l1").await.status, 200);
    // Learner ids are compared trimmed: " l1 " is l1.
    let r = app.allocate(seats_a[1], " l1 ").await;
    assert_eq!(
        (r.status, r.detail()),
        (400, "Learner already has a seat in this tenant")
    );
}

#[tokio::test]
async fn free_assigned_free_with_one_audit_entry_per_change() {
    let app = TestApp::spawn().await;
    let t = app.district("D").await;
    let seat = app.purchase(t, 1).await[0];
    assert_eq!(app.audit(seat).await.len(), 1);
    let a = app.allocate(seat, "l1").await;
    assert_eq!(a.body["state"], "assigned");
    assert_eq!(app.audit(seat).await.len(), 2);
    let f = app.reclaim(seat, None).await;
    assert_eq!(f.body["state"], "free");
    assert_eq!(app.audit(seat).await.len(), 3);
    // The learner is released by the reclaim.
    assert_eq!(app.allocate(seat, "l1").await.status, 200);
    assert_eq!(app.audit(seat).await.len(), 4);
}

#[tokio::test]
async fn refused_operations_change_nothing() {
    let app = TestApp::spawn().await;
    let t = app.district("D").await;
    let seats = app.purchase(t, 3).await;
    assert_eq!(app.allocate(seats[0], "l1").await.status, 200);
    let before_summary = app.summary(t).await;
    let mut before_seats = Vec::new();
    let mut before_audit = Vec::new();
    for &s in &seats {
        before_seats.push(app.seat(s).await);
        before_audit.push(app.audit(s).await);
    }

    let refusals = [
        app.allocate(seats[0], "l2").await, // seat taken
        app.allocate(seats[1], "l1").await, // learner has a seat
        app.reclaim(seats[2], None).await,  // already free
        app.allocate(seats[1], "").await,   // invalid learner
        app.reclaim(seats[0], Some(&"x".repeat(501))).await,
        app.post("/api/v1/seats/purchase", json!({"tenant_id": t, "count": 0}))
            .await,
        app.post("/api/v1/seats/purchase", json!({"tenant_id": t, "count": 100_001}))
            .await,
    ];
    for r in &refusals {
        assert!((400..500).contains(&r.status), "{} {}", r.status, r.body);
    }

    assert_eq!(app.summary(t).await, before_summary);
    for (i, &s) in seats.iter().enumerate() {
        assert_eq!(app.seat(s).await, before_seats[i]);
        assert_eq!(app.audit(s).await, before_audit[i]);
    }
}

#[tokio::test]
async fn summary_counts_match_seats_through_a_mixed_history() {
    let app = TestApp::spawn().await;
    let t = app.district("D").await;
    let mut seats = app.purchase(t, 10).await;
    seats.extend(app.purchase(t, 5).await);
    for (i, &s) in seats.iter().enumerate().take(9) {
        assert_eq!(app.allocate(s, &format!("l{i}")).await.status, 200);
    }
    for &s in seats.iter().step_by(3) {
        let _ = app.reclaim(s, None).await;
    }
    let summary = app.summary(t).await;
    let (free, reserved, assigned) = app.count_seats(&seats).await;
    assert_eq!(summary["total_seats"], json!(seats.len()));
    assert_eq!(
        (
            summary["free_seats"].clone(),
            summary["reserved_seats"].clone(),
            summary["assigned_seats"].clone()
        ),
        (json!(free), json!(reserved), json!(assigned))
    );
    let pct = ((reserved + assigned) as f64 / seats.len() as f64 * 10_000.0).round() / 100.0;
    assert_eq!(summary["utilization_percentage"], json!(pct));
}

#[tokio::test]
async fn purchase_at_district_scale_is_one_request() {
    let app = TestApp::spawn().await;
    let t = app.district("Big").await;
    let seats = app.purchase(t, 100_000).await;
    assert_eq!(seats.len(), 100_000);
    assert!(
        seats.windows(2).all(|w| w[1] == w[0] + 1),
        "one contiguous block of ids"
    );
    let s = app.summary(t).await;
    assert_eq!(
        (s["total_seats"].clone(), s["free_seats"].clone()),
        (json!(100_000), json!(100_000))
    );
    // One audit entry per seat, purchase included, at both ends of the block.
    for seat in [seats[0], seats[99_999]] {
        let audit = app.audit(seat).await;
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0]["reason"], "Seat purchased");
    }
    let a0 = app.audit(seats[0]).await[0]["id"].as_u64();
    let a1 = app.audit(seats[1]).await[0]["id"].as_u64();
    assert_ne!(a0, a1, "each seat has its own purchase entry");
}

#[tokio::test]
async fn ids_are_unique_across_purchases() {
    let app = TestApp::spawn().await;
    let a = app.district("A").await;
    let b = app.district("B").await;
    let mut all = app.purchase(a, 50).await;
    all.extend(app.purchase(b, 50).await);
    all.extend(app.purchase(a, 50).await);
    let mut sorted = all.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), all.len());
    assert!(all.iter().all(|&id| id > 0));
}
