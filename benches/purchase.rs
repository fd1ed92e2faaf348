//! One request buying 100,000 seats, against the real server in-process.
//!
//! `cargo bench --bench purchase`
//!
//! Wall time from sending `POST /api/v1/seats/purchase` to having read the
//! whole response body (every seat, as the contract returns them), on a fresh
//! keep-alive connection, three times; a 1,000-seat purchase (the old
//! service's cap) is the baseline, also three times. The time to the response
//! head is shown too: warp answers once the whole body is serialized, so head
//! to end is the transfer of the body.

mod common;

use std::time::{Duration, Instant};

use common::{f1, f2, purchase_req, table, Conn, Server};

const REPEAT: usize = 3;

struct Sample {
    count: u64,
    head: Duration,
    total: Duration,
    bytes: usize,
}

fn main() {
    let server = Server::start();
    let addr = server.addr;
    let client = common::runtime("client", 2);
    let samples = client.block_on(async {
        let school = common::setup(addr, "Bench District").await;
        let mut conn = Conn::open(addr).await.unwrap_or_else(|e| panic!("connect: {e}"));
        let mut samples = Vec::new();
        for count in [1_000u64, 100_000] {
            for _ in 0..REPEAT {
                let started = Instant::now();
                let (status, head, body) = conn
                    .call_timed(purchase_req(school, count))
                    .await
                    .unwrap_or_else(|e| panic!("purchase: {e}"));
                let total = started.elapsed();
                assert_eq!(
                    status.as_u16(),
                    201,
                    "{}",
                    String::from_utf8_lossy(&body[..body.len().min(300)])
                );
                samples.push(Sample {
                    count,
                    head: head - started,
                    total,
                    bytes: body.len(),
                });
            }
        }
        samples
    });
    drop(client);
    drop(server);

    let best = |count: u64| {
        samples
            .iter()
            .filter(|s| s.count == count)
            .map(|s| s.total)
            .min()
            .unwrap_or_default()
    };
    let per_seat_base = best(1_000).as_secs_f64() / 1_000.0;
    println!(
        "\npurchase: {} cores; server in-process, client on the same machine",
        common::cores()
    );
    table(
        "POST /api/v1/seats/purchase, one request each (per seat = total ÷ count)",
        &[
            "seats",
            "run",
            "to head ms",
            "total ms",
            "body MB",
            "µs per seat",
            "vs 1,000-seat per-seat",
        ],
        &samples
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let per_seat = s.total.as_secs_f64() / s.count as f64;
                vec![
                    s.count.to_string(),
                    (i % REPEAT + 1).to_string(),
                    f1(s.head.as_secs_f64() * 1000.0),
                    f1(s.total.as_secs_f64() * 1000.0),
                    f2(s.bytes as f64 / 1e6),
                    f2(per_seat * 1e6),
                    format!("{}×", f2(per_seat / per_seat_base)),
                ]
            })
            .collect::<Vec<_>>(),
    );
    println!(
        "\nbest of {REPEAT}: 1,000 seats {:.1} ms, 100,000 seats {:.1} ms (target ≤ 1000 ms)",
        best(1_000).as_secs_f64() * 1000.0,
        best(100_000).as_secs_f64() * 1000.0
    );
}
