//! Overload: bounded mailboxes, a connection cap, slow clients cut off, and
//! a storm of thousands of connections against the real binary.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::faulty_disk::Faults;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::helpers::*;
use super::process::Server;
use super::raw;

/// A JSON POST on a kept-alive connection, as a storm client sends it.
fn post_request(path: &str, body: &Value) -> String {
    let body = body.to_string();
    let length = format!("Content-Length: {}", body.len());
    raw::request(
        "POST",
        path,
        &["Host: t", "X-User-ID: storm", "Content-Type: application/json", &length],
        &body,
    )
}

pub(super) const HEALTH: &str = "GET /health HTTP/1.1\r\nHost: t\r\n\r\n";

#[tokio::test]
async fn a_full_mailbox_answers_503_with_retry_after_and_nothing_is_lost() {
    let faults = Arc::new(Faults::none());
    let dir = Arc::new(tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")));
    let app = TestApp::spawn_with_faults(dir, |s| s.mailbox_bound = 4, Arc::clone(&faults)).await;
    let district = app.district("Busy").await;
    let seats = app.purchase(district, 20).await;
    // The disk stops answering: the first allocation holds the actor, three
    // more wait in its mailbox, and everything past the bound must be refused
    // at once rather than queue.
    faults.stall_writes(true);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for (i, seat) in seats.iter().copied().enumerate() {
        let (client, url, tx) = (app.client.clone(), app.url("/api/v1/seats/allocate"), tx.clone());
        tokio::spawn(async move {
            let r = client
                .post(url)
                .header("X-User-ID", ADMIN)
                .json(&json!({"seat_id": seat, "learner_id": format!("l{i}")}))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let retry = r.headers().get("retry-after").map(|v| v.as_bytes().to_vec());
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or_else(|e| panic!("{e}"));
            let _ = tx.send((seat, status, retry, body));
        });
    }
    drop(tx);
    let mut shed = Vec::new();
    while shed.len() < seats.len() - 4 {
        let (seat, status, retry, body) = rx.recv().await.unwrap_or_else(|| panic!("answers missing"));
        assert_eq!(
            (status, body["error_code"].clone()),
            (503, json!("SERVICE_OVERLOADED")),
            "{body}"
        );
        assert_eq!(retry.as_deref(), Some(&b"1"[..]), "no Retry-After");
        shed.push(seat);
    }
    assert!(app.healthy().await, "/health must answer while a tenant is saturated");
    faults.stall_writes(false);
    let mut done = Vec::new();
    while let Some((seat, status, _, body)) = rx.recv().await {
        assert_eq!(status, 200, "{body}");
        done.push(seat);
    }
    assert_eq!(done.len(), 4);
    // Shed requests changed nothing; the accepted ones are all there.
    for seat in &seats {
        let state = app.seat(*seat).await["state"].clone();
        assert_eq!(
            state,
            json!(if done.contains(seat) { "assigned" } else { "free" }),
            "seat {seat}"
        );
    }
    assert_eq!(app.summary(district).await["assigned_seats"], json!(4));
    // Once drained, the tenant takes requests again.
    assert_eq!(app.allocate(shed[0], "late").await.status, 200);
}

#[tokio::test]
async fn past_the_connection_cap_new_connections_get_503_and_idle_ones_are_cut() {
    let dir = Arc::new(tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")));
    let app = TestApp::spawn_with_faults(
        dir,
        |s| {
            s.max_connections = 8;
            s.header_timeout_ms = 500;
        },
        Arc::new(Faults::none()),
    )
    .await;
    // Eight connections that never send a byte take every slot.
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(raw::connect(app.addr).await);
    }
    let mut ninth = raw::connect(app.addr).await;
    let r = raw::exchange(&mut ninth, HEALTH)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let body = r.json().unwrap_or_default();
    assert_eq!(
        (r.status, body["error_code"].clone()),
        (503, json!("SERVICE_OVERLOADED")),
        "{body}"
    );
    assert!(r.head.contains("retry-after: 1"), "{}", r.head);
    // The idle ones are cut by the header timeout and their slots come back.
    for stream in &mut idle {
        let after = raw::closed_by_server(stream).await;
        assert!(after < Duration::from_secs(5), "an idle connection was kept {after:?}");
    }
    let mut fresh = raw::connect(app.addr).await;
    let r = raw::exchange(&mut fresh, HEALTH)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((r.status, r.json()), (200, Some(json!({"status": "healthy"}))));
}

/// The storm: 2,000 connections open at once, each allocating a seat and
/// reading it back, 200 clients trickling headers one byte at a time, and a
/// probe on /health throughout, against the real binary with a small mailbox
/// bound (so shedding happens) and the default 10 s header timeout (ample
/// for 2,000 connects and a barrier on a busy 2-core machine).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_connections_and_slow_clients_keeps_health_answering_in_bounded_memory() {
    const CONNECTIONS: usize = 2_000;
    const SLOW: usize = 200;
    const RSS_LIMIT_KIB: u64 = 256 * 1024;
    let limit = rlimit::increase_nofile_limit(3 * (CONNECTIONS + SLOW) as u64 + 256)
        .unwrap_or_else(|e| panic!("cannot raise the open-file limit: {e}"));
    assert!(
        limit as usize > 2 * (CONNECTIONS + SLOW),
        "open-file limit {limit} is too low for this test"
    );
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = dir.path().join("storm.toml");
    std::fs::write(
        &config,
        "max_connections = 4096\nheader_timeout_ms = 10000\nmailbox_bound = 256\nlog_level = \"warn\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let config_arg = config.display().to_string();
    let mut server = Server::start_with(
        &data,
        &["--config", &config_arg],
        &[("RUST_LOG", "warn,tenant_service=info")],
    );
    let addr = server.addr();
    let (_, d) = server
        .post("/api/v1/district", json!({"name": "Storm"}))
        .await
        .unwrap_or_default();
    let district = d["id"].as_u64().unwrap_or_else(|| panic!("{d}"));
    let (_, s) = server
        .post(
            "/api/v1/seats/purchase",
            json!({"tenant_id": district, "count": CONNECTIONS}),
        )
        .await
        .unwrap_or_default();
    let seats: Vec<u64> = s
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x["id"].as_u64())
        .collect();
    assert_eq!(seats.len(), CONNECTIONS);
    let rss_before = server.rss_kib();

    // Every storm connection is open before any sends a request.
    let mut streams = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        streams.push(raw::connect(addr).await);
    }
    let go = Arc::new(tokio::sync::Barrier::new(CONNECTIONS + 1));
    let shed = Arc::new(AtomicU64::new(0));
    let storm: Vec<_> = streams
        .into_iter()
        .zip(seats.clone())
        .enumerate()
        .map(|(i, (mut stream, seat))| {
            let (go, shed) = (Arc::clone(&go), Arc::clone(&shed));
            tokio::spawn(async move {
                go.wait().await;
                let allocate = post_request(
                    "/api/v1/seats/allocate",
                    &json!({"seat_id": seat, "learner_id": format!("s{i}")}),
                );
                // Shed requests are retried as the server asks (Retry-After: 1).
                for _ in 0..10 {
                    let r = raw::exchange(&mut stream, &allocate)
                        .await
                        .unwrap_or_else(|e| panic!("seat {seat}: {e}"));
                    let body = r.json().unwrap_or_default();
                    match r.status {
                        200 => {
                            // Read it back (a read can be shed too: retry it likewise).
                            let get =
                                format!("GET /api/v1/seats/{seat} HTTP/1.1\r\nHost: t\r\nX-User-ID: storm\r\n\r\n");
                            for _ in 0..10 {
                                let r = raw::exchange(&mut stream, &get).await.unwrap_or_else(|e| panic!("{e}"));
                                let body = r.json().unwrap_or_default();
                                if r.status == 503 && body["error_code"] == "SERVICE_OVERLOADED" {
                                    shed.fetch_add(1, Ordering::Relaxed);
                                    tokio::time::sleep(Duration::from_secs(1)).await;
                                    continue;
                                }
                                assert_eq!(
                                    (r.status, body["learner_id"].clone()),
                                    (200, json!(format!("s{i}"))),
                                    "{}",
                                    r.head
                                );
                                return Some(seat);
                            }
                            panic!("seat {seat}: never read back");
                        }
                        503 if body["error_code"] == "SERVICE_OVERLOADED" => {
                            shed.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                        status => panic!("seat {seat}: {status} {body}"),
                    }
                }
                None
            })
        })
        .collect();

    // Slow clients: one header byte every 250 ms (a head would take ~30 s).
    let slow: Vec<_> = (0..SLOW)
        .map(|_| {
            tokio::spawn(async move {
                let mut stream = raw::connect(addr).await;
                let started = Instant::now();
                let head = b"GET /api/v1/health HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
                for byte in head {
                    if stream.write_all(&[*byte]).await.is_err() {
                        return started.elapsed();
                    }
                    let mut buf = [0u8; 64];
                    // Wait 250 ms for the next byte, noticing if the server hangs up.
                    match tokio::time::timeout(Duration::from_millis(250), stream.read(&mut buf)).await {
                        Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
                        Ok(Ok(_)) => panic!("a slow client got an answer"),
                        Err(_) => {}
                    }
                }
                panic!("a slow client sent its whole head in {:?} without being cut", started.elapsed());
            })
        })
        .collect();

    // The probe: /health on a fresh connection every 50 ms, and the server's memory.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pid_status = format!("/proc/{}/status", server.child.id());
    let probe = {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let (mut worst, mut probes, mut peak_rss) = (Duration::ZERO, 0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let mut s = raw::connect(addr).await;
                let r = raw::exchange(&mut s, HEALTH)
                    .await
                    .unwrap_or_else(|e| panic!("probe: {e}"));
                assert_eq!(
                    (r.status, r.json().unwrap_or_default()),
                    (200, json!({"status": "healthy"})),
                    "/health stopped answering"
                );
                worst = worst.max(started.elapsed());
                probes += 1;
                peak_rss = peak_rss.max(super::process::rss_kib(&pid_status));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (worst, probes, peak_rss)
        })
    };

    let storm_started = Instant::now();
    go.wait().await;
    let mut acked = Vec::new();
    for t in storm {
        if let Some(seat) = t.await.unwrap_or_else(|e| panic!("storm client: {e}")) {
            acked.push(seat);
        }
    }
    let storm_took = storm_started.elapsed();
    let mut cut_after = Duration::ZERO;
    for t in slow {
        cut_after = cut_after.max(t.await.unwrap_or_else(|e| panic!("slow client: {e}")));
    }
    stop.store(true, Ordering::Relaxed);
    let (worst, probes, peak_rss) = probe.await.unwrap_or_else(|e| panic!("probe: {e}"));
    assert!(
        cut_after < Duration::from_secs(15),
        "slow clients were kept {cut_after:?}"
    );
    // A probe may wait out one SYN retransmit (1 s) when the listen backlog
    // overflows during the connect burst; never more than a few seconds.
    assert!(worst < Duration::from_secs(5), "/health took {worst:?}");
    assert!(peak_rss < RSS_LIMIT_KIB, "server RSS reached {peak_rss} KiB");

    // Nothing acknowledged is lost: stop cleanly, restart, read every seat back.
    server.sigterm();
    assert_eq!(
        server.exit_code(Duration::from_secs(30)).await,
        Some(0),
        "{}",
        server.stderr()
    );
    let server = Server::start(&data);
    for (i, seat) in seats.iter().enumerate() {
        let (_, body) = server.get(&format!("/api/v1/seats/{seat}")).await;
        let expected = if acked.contains(seat) {
            json!(format!("s{i}"))
        } else {
            Value::Null
        };
        assert_eq!(body["learner_id"], expected, "seat {seat}");
    }
    let (_, summary) = server.get(&format!("/api/v1/seats/summary?tenantId={district}")).await;
    assert_eq!(summary["assigned_seats"], json!(acked.len()));
    eprintln!(
        "storm: {CONNECTIONS} connections + {SLOW} slow-header clients; {} allocations acknowledged in \
         {storm_took:?}, {} requests shed (503 + Retry-After) and retried; slow clients cut within \
         {cut_after:?}; {probes} /health probes, slowest {worst:?}; server RSS {} KiB before, peak {} KiB; \
         0 acknowledged writes lost",
        acked.len(),
        shed.load(Ordering::Relaxed),
        rss_before,
        peak_rss
    );
}
