//! Bulk assign and bulk reclaim against the real server in-process.
//!
//! `cargo bench --bench bulk`
//!
//! 100,000 seats bought, then assigned by 10 bulk requests of 10,000
//! learners each (one connection, one after another: every answer waits for
//! its write to be durable), then reclaimed by 10 bulk requests of 10,000
//! seat ids. The baseline, in the same run: single allocations by seat id at
//! 64 connections for 4 s, in another school of the same server. Figures are
//! seats made durable per second, and bulk ÷ single.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{allocate_req, f0, f1, f2, table, Conn, Req, Server};

const PER_REQUEST: usize = 10_000;
const REQUESTS: usize = 10;

fn main() {
    let server = Server::start();
    let addr = server.addr;
    let client = common::runtime("client", 2);
    let (assign, reclaim, single) = client.block_on(async {
        let school = common::setup(addr, "Bulk District").await;
        let seats = common::purchase(addr, school, (PER_REQUEST * REQUESTS) as u64).await;
        let mut conn = Conn::open(addr).await.unwrap_or_else(|e| panic!("connect: {e}"));
        let mut assign = Vec::new();
        for r in 0..REQUESTS {
            let learners: Vec<String> = (0..PER_REQUEST).map(|i| format!("bulk-{r:02}-{i:05}")).collect();
            let body = serde_json::json!({"tenant_id": school, "learner_ids": learners}).to_string();
            assign.push(timed(&mut conn, Req::post("/api/v1/seats/assign/bulk", body), "assigned").await);
        }
        let mut reclaim = Vec::new();
        for chunk in seats.chunks(PER_REQUEST) {
            let body = serde_json::json!({"tenant_id": school, "seat_ids": chunk}).to_string();
            reclaim.push(timed(&mut conn, Req::post("/api/v1/seats/reclaim/bulk", body), "reclaimed").await);
        }
        // The baseline: one seat per request, 64 connections.
        let other = common::setup(addr, "Single District").await;
        let mut free = Vec::new();
        for _ in 0..3 {
            free.extend(common::purchase(addr, other, 100_000).await);
        }
        let free = Arc::new(free);
        let cursor = Arc::new(AtomicUsize::new(0));
        let next = move |_: usize, _: u64| {
            let i = cursor.fetch_add(1, Ordering::Relaxed);
            free.get(i).map(|seat| allocate_req(*seat, &format!("single-{i:08}")))
        };
        let single = common::drive(addr, 64, Duration::from_millis(500), Duration::from_secs(4), 200, next).await;
        (assign, reclaim, single.rate())
    });
    drop(client);
    drop(server);

    let rate = |runs: &[Duration]| (PER_REQUEST * runs.len()) as f64 / runs.iter().sum::<Duration>().as_secs_f64();
    let row = |name: &str, runs: &[Duration]| {
        let ms: Vec<f64> = runs.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        let (min, max) = ms.iter().fold((f64::MAX, 0f64), |(a, b), m| (a.min(*m), b.max(*m)));
        vec![
            name.to_owned(),
            runs.len().to_string(),
            f1(min),
            f1(max),
            f0(rate(runs)),
            format!("{}×", f2(rate(runs) / single)),
        ]
    };
    println!(
        "\nbulk: {} cores; server in-process, client on the same machine",
        common::cores()
    );
    table(
        "10 requests of 10,000 seats each, one after another (seats/s = seats ÷ total time; × = ÷ single allocations/s)",
        &["operation", "requests", "min ms", "max ms", "seats/s durable", "vs single"],
        &[row("POST /seats/assign/bulk", &assign), row("POST /seats/reclaim/bulk", &reclaim)],
    );
    println!(
        "\nsingle allocations by seat id, 64 connections, same server: {} /s",
        f0(single)
    );
}

/// Sends one bulk request; checks every row came out as `expected`.
async fn timed(conn: &mut Conn, req: Req, expected: &str) -> Duration {
    let started = Instant::now();
    let (status, body) = conn.call(req).await.unwrap_or_else(|e| panic!("bulk: {e}"));
    let took = started.elapsed();
    assert_eq!(
        status.as_u16(),
        200,
        "{}",
        String::from_utf8_lossy(&body[..body.len().min(300)])
    );
    let report: serde_json::Value = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("bulk body: {e}"));
    assert_eq!(report["totals"][expected], PER_REQUEST as u64, "{}", report["totals"]);
    took
}
