//! The change feed alone (no standby): what reaches the stream, in what
//! order, across a NATS outage, a kill -9, and in sync mode.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};

use super::harness::{changes_of, nats_server, read_stream, Nats, Service};
use super::{allocate, replication, seed, SETTLE, STREAM};

/// The audit ids of the seat changes a tenant's messages carry, in order.
fn seat_audits(changes: &[(u64, String, Value)]) -> Vec<u64> {
    changes
        .iter()
        .filter(|(_, kind, _)| kind == "seat" || kind == "seats")
        .flat_map(|(_, _, d)| d["seats"].as_array().cloned().unwrap_or_default())
        .map(|s| s["audit"]["id"].as_u64().unwrap_or(0))
        .collect()
}

/// The audit ids of a tenant's stored seat changes (not purchases), oldest first.
async fn stored_audits(s: &Service, tenant: u64) -> Vec<u64> {
    let (status, page) = s.get(&format!("/api/v1/audit?tenantId={tenant}&limit=1000")).await;
    assert_eq!(status, 200, "{page}");
    let mut ids: Vec<u64> = page["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|a| a["previous_state"] != Value::Null)
        .map(|a| a["id"].as_u64().unwrap_or(0))
        .collect();
    ids.sort_unstable();
    ids
}

async fn drained(s: &Service) {
    s.until("the outbox drains", SETTLE, || async {
        s.metric("tenant_feed_outbox_depth").await == 0.0
    })
    .await;
}

/// Every kind of write reaches the stream once, in commit order per tenant,
/// carrying the audit entry and its chain link; the metrics show it.
#[tokio::test]
async fn every_write_reaches_the_stream_once_in_commit_order() {
    let Some(bin) = nats_server() else { return };
    let nats = Nats::single(&bin);
    let s = Service::start(&replication(&[nats.url()], "async", "node_id = \"a\""));
    let (district, school, first) = seed(&s, 20).await;
    for i in 0..3 {
        assert_eq!(allocate(&s, first + i, &format!("l{i}")).await.0, 200);
    }
    let (status, body) = s
        .post("/api/v1/seats/reclaim", json!({"seat_id": first, "reason": "moved"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let learners: Vec<String> = (10..15).map(|i| format!("l{i}")).collect();
    let (status, body) = s
        .post(
            "/api/v1/seats/assign/bulk",
            json!({"tenant_id": school, "learner_ids": learners}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = s
        .post(
            "/api/v1/seats/reclaim/bulk",
            json!({"tenant_id": school, "learner_ids": ["l10", "l11"]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, role) = s
        .post(
            "/api/v1/roles",
            json!({"user_id": "dana", "tenant_id": school, "role": "teacher"}),
        )
        .await;
    assert_eq!(status, 201, "{role}");
    let role_id = role["id"].as_u64().unwrap_or(0);
    assert_eq!(
        s.post(&format!("/api/v1/roles/{role_id}/deactivate"), json!({}))
            .await
            .0,
        200
    );
    assert_eq!(
        s.put(&format!("/api/v1/tenant/{school}"), json!({"name": "North"}))
            .await
            .0,
        200
    );
    assert_eq!(
        s.put(
            &format!("/api/v1/tenant/{school}/alert-threshold"),
            json!({"percent": 80})
        )
        .await
        .0,
        200
    );
    drained(&s).await;
    assert!(s.metric("tenant_feed_published_total").await >= 13.0);

    let messages = read_stream(&nats.url(), STREAM).await;
    for (subject, m) in &messages {
        assert_eq!(m["schema"], json!("tenant-service/change-feed/1"), "{m}");
        assert_eq!(m["origin"], json!("a"));
        let (d, t) = (
            m["district_id"].as_u64().unwrap_or(0),
            m["tenant_id"].as_u64().unwrap_or(0),
        );
        assert_eq!(subject, &format!("tenant.changes.{d}.{t}"));
        assert_eq!(d, district);
    }
    let changes = changes_of(&messages, school);
    let kinds: Vec<&str> = changes.iter().map(|(_, k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "tenant",
            "purchase",
            "seat",
            "seat",
            "seat",
            "seat",
            "seats",
            "seats",
            "role",
            "role",
            "tenant",
            "threshold"
        ],
        "{changes:?}"
    );
    let ns: Vec<u64> = changes.iter().map(|(n, _, _)| *n).collect();
    assert!(ns.windows(2).all(|w| w[0] < w[1]), "commit order: {ns:?}");
    assert_eq!(seat_audits(&changes), stored_audits(&s, school).await);
    for (_, kind, detail) in &changes {
        if kind == "seat" || kind == "seats" {
            for seat in detail["seats"].as_array().cloned().unwrap_or_default() {
                assert_eq!(seat["chain_hash"].as_str().map(str::len), Some(64), "{seat}");
            }
        }
    }
    assert_eq!(changes_of(&messages, district).len(), 1, "the district's creation");
}

/// A NATS outage in async mode blocks and loses no write: the outbox grows
/// (in /metrics) and drains when NATS is back; then every change is on the
/// stream once, in order. A kill -9 while NATS is still away loses none of
/// them either: the restarted service publishes what it had committed.
#[tokio::test]
async fn async_writes_survive_a_nats_outage_and_a_kill_9() {
    let Some(bin) = nats_server() else { return };
    let mut nats = Nats::single(&bin);
    let mut s = Service::start(&replication(&[nats.url()], "async", "node_id = \"a\""));
    let (_, school, first) = seed(&s, 200).await;
    drained(&s).await;
    nats.kill();
    for i in 0..40 {
        let (status, body) = allocate(&s, first + i, &format!("l{i}")).await;
        assert_eq!(status, 200, "a write during the outage: {body}");
    }
    assert!(s.metric("tenant_feed_outbox_depth").await >= 40.0);
    // kill -9 with the changes only in the outbox.
    s.restart();
    assert!(
        s.metric("tenant_feed_outbox_depth").await >= 40.0,
        "the outbox survived"
    );
    for i in 40..60 {
        assert_eq!(allocate(&s, first + i, &format!("l{i}")).await.0, 200);
    }
    nats.start();
    drained(&s).await;
    let messages = read_stream(&nats.url(), STREAM).await;
    let changes = changes_of(&messages, school);
    let audits = seat_audits(&changes);
    assert_eq!(audits.len(), 60, "each seat change once");
    assert_eq!(audits.iter().collect::<HashSet<_>>().len(), 60);
    assert_eq!(audits, stored_audits(&s, school).await);
    let ns: Vec<u64> = changes.iter().map(|(n, _, _)| *n).collect();
    assert!(ns.windows(2).all(|w| w[0] < w[1]), "commit order: {ns:?}");
}

/// Sync mode: a reply waits for JetStream; with NATS away writes get 503
/// REPLICATION_UNAVAILABLE (at first after `sync_timeout_ms`, then at once),
/// reads go on except those that would show a change not yet on the stream
/// (they wait for it as its write did); when NATS is back writes are taken
/// again and the stream has every acknowledged one.
#[tokio::test]
async fn sync_mode_refuses_writes_while_nats_is_away() {
    let Some(bin) = nats_server() else { return };
    let mut nats = Nats::single(&bin);
    let s = Service::start(&replication(
        &[nats.url()],
        "sync",
        "node_id = \"a\"\nsync_timeout_ms = 1500",
    ));
    s.until("sync mode connected", SETTLE, || async {
        s.post("/api/v1/district", json!({"name": "Probe"})).await.0 == 201
    })
    .await;
    let (_, school, first) = seed(&s, 10).await;
    let (_, other, other_first) = seed(&s, 10).await;
    assert_eq!(allocate(&s, first, "l0").await.0, 200);
    assert_eq!(allocate(&s, other_first, "o0").await.0, 200);
    nats.kill();
    // The first write after the cut waits for JetStream, then is refused;
    // once NATS has been away for `sync_timeout_ms`, writes are refused at once.
    let started = std::time::Instant::now();
    let (status, body) = allocate(&s, first + 1, "l1").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error_code"], json!("REPLICATION_UNAVAILABLE"), "{body}");
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "it waited for JetStream"
    );
    s.until("writes refused at once", SETTLE, || async {
        let started = std::time::Instant::now();
        let (status, _) = allocate(&s, first + 3, "l3").await;
        status == 503 && started.elapsed() < Duration::from_millis(500)
    })
    .await;
    let (status, summary) = s.get(&format!("/api/v1/seats/summary?tenantId={other}")).await;
    assert_eq!(status, 200, "reads of what is on the stream go on: {summary}");
    assert_eq!(summary["assigned_seats"], json!(1));
    // The refused write may have been made here (it is published when NATS
    // is back): what would show it waits for the stream, like its write.
    let (status, summary) = s.get(&format!("/api/v1/seats/summary?tenantId={school}")).await;
    assert_eq!(status, 503, "{summary}");
    nats.start();
    s.until("writes taken again", SETTLE, || async {
        allocate(&s, first + 2, "l2").await.0 == 200
    })
    .await;
    let (status, summary) = s.get(&format!("/api/v1/seats/summary?tenantId={school}")).await;
    assert_eq!(status, 200, "{summary}");
    drained(&s).await;
    let messages = read_stream(&nats.url(), STREAM).await;
    let audits = seat_audits(&changes_of(&messages, school));
    // Every acknowledged write is there (a refused one may be too: it may
    // have been made locally and published later; never acknowledged).
    let stored = stored_audits(&s, school).await;
    assert_eq!(audits, stored);
    assert!(audits.len() >= 2);
}
