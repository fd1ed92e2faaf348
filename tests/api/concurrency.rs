//! Real parallel requests; invariants checked against per-seat truth.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use super::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_learner_racing_for_forty_seats_gets_exactly_one() {
    let app = Arc::new(TestApp::spawn().await);
    let t = app.district("D").await;
    let seats = app.purchase(t, 40).await;
    let tasks: Vec<_> = seats
        .iter()
        .map(|&s| {
            let app = Arc::clone(&app);
            tokio::spawn(async move { app.allocate(s, "the_learner").await.status })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap_or_else(|e| panic!("{e}")));
    }
    assert_eq!(statuses.iter().filter(|&&s| s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|&&s| s == 400).count(), 39, "{statuses:?}");
    assert_eq!(app.summary(t).await["assigned_seats"], 1);
    assert_eq!(app.count_seats(&seats).await, (39, 0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forty_learners_racing_for_one_seat_leave_one_owner() {
    let app = Arc::new(TestApp::spawn().await);
    let t = app.district("D").await;
    let seat = app.purchase(t, 1).await[0];
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let app = Arc::clone(&app);
            tokio::spawn(async move { (i, app.allocate(seat, &format!("learner_{i}")).await) })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (i, r) = task.await.unwrap_or_else(|e| panic!("{e}"));
        match r.status {
            200 => winners.push(i),
            400 => assert_eq!(r.detail(), "Seat is not available. Current state: assigned"),
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    assert_eq!(winners.len(), 1);
    let owner = format!("learner_{}", winners[0]);
    assert_eq!(app.seat(seat).await["learner_id"], json!(owner));
    let audit = app.audit(seat).await;
    assert_eq!(audit.len(), 2, "purchase + exactly one allocation");
    assert_eq!(audit[1]["new_learner_id"], json!(owner));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_from_many_clients_is_exact() {
    const CLIENTS: usize = 32;
    const PER_CLIENT: usize = 100;
    let app = Arc::new(TestApp::spawn().await);
    let district = app.district("D").await;
    let schools = [
        app.school(district, "A").await,
        app.school(district, "B").await,
        district,
    ];
    let mut seats_of: HashMap<u64, Vec<u64>> = HashMap::new();
    for &t in &schools {
        seats_of.insert(t, app.purchase(t, (CLIENTS * PER_CLIENT) as u64).await);
    }

    // Each client allocates its own seats to its own learners in each tenant,
    // then reclaims every fourth one.
    let started = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let app = Arc::clone(&app);
            let mine: Vec<(u64, u64)> = schools
                .iter()
                .flat_map(|t| {
                    seats_of[t][c * PER_CLIENT..(c + 1) * PER_CLIENT]
                        .iter()
                        .map(move |&s| (*t, s))
                })
                .collect();
            tokio::spawn(async move {
                let mut transitions = 0u64;
                for (i, (_, seat)) in mine.iter().enumerate() {
                    let r = app.allocate(*seat, &format!("c{c}-l{}", i % PER_CLIENT)).await;
                    assert_eq!(r.status, 200, "{}", r.body);
                    transitions += 1;
                    if i % 4 == 0 {
                        let r = app.reclaim(*seat, Some("burst")).await;
                        assert_eq!(r.status, 200, "{}", r.body);
                        transitions += 1;
                    }
                }
                transitions
            })
        })
        .collect();
    let mut transitions = 0;
    for task in tasks {
        transitions += task.await.unwrap_or_else(|e| panic!("{e}"));
    }
    let elapsed = started.elapsed();
    eprintln!("burst: {transitions} transitions from {CLIENTS} clients in {elapsed:?}");

    let mut audit_entries = 0;
    for &t in &schools {
        let seats = &seats_of[&t];
        let summary = app.summary(t).await;
        let counted = app.count_seats(seats).await;
        assert_eq!(
            (
                summary["free_seats"].clone(),
                summary["reserved_seats"].clone(),
                summary["assigned_seats"].clone()
            ),
            (json!(counted.0), json!(counted.1), json!(counted.2))
        );
        assert_eq!(counted.2, (CLIENTS * PER_CLIENT * 3 / 4) as u64);
        for &s in seats {
            audit_entries += app.audit(s).await.len() as u64 - 1; // minus the purchase entry
        }
    }
    assert_eq!(audit_entries, transitions, "one audit entry per transition");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_role_grants_for_one_user_and_tenant_admit_one() {
    let app = Arc::new(TestApp::spawn().await);
    let t = app.district("D").await;
    let tasks: Vec<_> = ["admin", "manager", "teacher", "learner"]
        .iter()
        .cycle()
        .take(24)
        .map(|role| {
            let app = Arc::clone(&app);
            let role = role.to_string();
            tokio::spawn(async move {
                app.post(
                    "/api/v1/roles",
                    json!({"user_id": "racer", "tenant_id": t, "role": role}),
                )
                .await
                .status
            })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        match task.await.unwrap_or_else(|e| panic!("{e}")) {
            201 => created += 1,
            400 => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(
        app.get("/api/v1/users/racer/tenants")
            .await
            .body
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}
