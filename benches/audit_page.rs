//! An audit page from a long trail: `GET /api/v1/audit` on a school whose
//! trail holds ≥ 10,000,000 entries (100 purchases of 100,000 seats, then
//! allocations), next to the same queries on a school with a 1,000-entry
//! trail, on the same in-process server in the same run. A page's cost
//! should follow the page, not the history: the ratio is the figure.
//!
//! `cargo bench --bench audit_page`
//!
//! Environment: BENCH_TRAIL (entries bought for the long trail, default
//! 10,000,000), BENCH_REPEAT (timed requests per query, default 200).

mod common;

use std::net::SocketAddr;
use std::time::Instant;

use common::{allocate_req, call, f2, table, Req, Server};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The median and p99 time of `repeat` sequential requests, in ms.
async fn time_query(addr: SocketAddr, path: &str, repeat: u64) -> (f64, f64, usize) {
    let mut conn = common::Conn::open(addr)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let mut times = Vec::with_capacity(repeat as usize);
    let mut items = 0;
    for _ in 0..repeat {
        let started = Instant::now();
        let (status, body) = conn
            .call(Req::get(path))
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        times.push(started.elapsed());
        assert_eq!(status.as_u16(), 200, "GET {path}: {}", String::from_utf8_lossy(&body));
        let page: serde_json::Value = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("page: {e}"));
        items = page["items"].as_array().map_or(0, Vec::len);
    }
    times.sort_unstable();
    let at = |q: f64| times[((times.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1000.0;
    (at(0.5), at(0.99), items)
}

/// A cursor `depth` pages into the trail (following `next_cursor`).
async fn cursor_after(addr: SocketAddr, base: &str, depth: usize) -> Option<String> {
    let mut cursor: Option<String> = None;
    for _ in 0..depth {
        let path = match &cursor {
            Some(c) => format!("{base}&cursor={c}"),
            None => base.to_string(),
        };
        let body = call(addr, Req::get(path), 200).await;
        let page: serde_json::Value = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("page: {e}"));
        cursor = Some(page["next_cursor"].as_str()?.to_string());
    }
    cursor
}

fn main() {
    let trail = env_num("BENCH_TRAIL", 10_000_000);
    let repeat = env_num("BENCH_REPEAT", 200);
    let server = Server::start();
    let addr = server.addr;
    let client = common::runtime("client", 2);
    let started = Instant::now();
    let rows = client.block_on(async {
        let big = common::setup(addr, "Big Trail District").await;
        let small = common::setup(addr, "Small Trail District").await;
        let building = Instant::now();
        let mut bought = 0;
        let mut some_seats = Vec::new();
        while bought < trail {
            let n = (trail - bought).min(100_000);
            let ids = common::purchase(addr, big, n).await;
            if some_seats.is_empty() {
                some_seats = ids[..1_000.min(ids.len())].to_vec();
            }
            bought += n;
        }
        for (i, seat) in some_seats.iter().enumerate() {
            call(addr, allocate_req(*seat, &format!("trail-learner-{i}")), 200).await;
        }
        let small_seats = common::purchase(addr, small, 1_000).await;
        for (i, seat) in small_seats.iter().take(100).enumerate() {
            call(addr, allocate_req(*seat, &format!("small-learner-{i}")), 200).await;
        }
        let build = building.elapsed();
        println!(
            "audit_page: trail of {} entries ({} purchases + {} allocations) built in {:.1} s",
            bought + some_seats.len() as u64,
            bought.div_ceil(100_000),
            some_seats.len(),
            build.as_secs_f64()
        );

        let mut rows = Vec::new();
        for (name, tenant, size) in [("long", big, bought + 1_000), ("short", small, 1_100)] {
            let base = format!("/api/v1/audit?tenantId={tenant}&limit=100");
            // 50 pages in, or the last page of a shorter trail.
            let depth = ((size / 100) as usize).saturating_sub(1).min(50);
            let deep = cursor_after(addr, &base, depth).await;
            let queries: Vec<(&str, String)> = vec![
                ("first page, oldest first", base.clone()),
                ("first page, newest first", format!("{base}&order=desc")),
                (
                    "a page deep in (≤ 50 cursor hops)",
                    match &deep {
                        Some(c) => format!("{base}&cursor={c}"),
                        None => base.clone(),
                    },
                ),
                (
                    "limit 1000, newest first",
                    format!("/api/v1/audit?tenantId={tenant}&limit=1000&order=desc"),
                ),
            ];
            for (what, path) in queries {
                let (p50, p99, items) = time_query(addr, &path, repeat).await;
                rows.push((name, size, what, p50, p99, items));
            }
        }
        rows
    });
    drop(client);
    drop(server);

    let mut out = Vec::new();
    for (name, size, what, p50, p99, items) in &rows {
        let short = rows
            .iter()
            .find(|r| r.0 == "short" && r.2 == *what)
            .map_or(f64::NAN, |r| r.3);
        out.push(vec![
            format!("{name} ({size} entries)"),
            what.to_string(),
            items.to_string(),
            f2(*p50),
            f2(*p99),
            format!("{:.2}×", p50 / short),
        ]);
    }
    table(
        "GET /api/v1/audit, sequential requests on one keep-alive connection (ratio = p50 ÷ the same query on the short trail)",
        &["trail", "query", "items", "p50 ms", "p99 ms", "vs short"],
        &out,
    );
    println!("whole bench: {:.1} s", started.elapsed().as_secs_f64());
}
