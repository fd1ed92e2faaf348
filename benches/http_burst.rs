//! The first morning of term: the real server, in-process on 127.0.0.1:0 with
//! a temporary data dir, takes a burst of allocations (every request a
//! different seat and learner, all in one school) and then summary polls; the
//! same client measures `GET /health` on the same server as the ceiling.
//!
//! `cargo bench --bench http_burst`
//!
//! Environment: BENCH_SECS (measured seconds per run, default 4),
//! BENCH_CLIENT_THREADS (client runtime workers, default 2).
//!
//! The client and the server share the machine's cores: the server runs on
//! its own runtime (one worker per core, as the binary does), plus its actor
//! and group-commit threads; the load client runs on a second runtime. Every
//! figure, the ceiling included, is measured under that same sharing.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{allocate_req, drive, f0, f2, pct, summary_req, table, Req, Run, Server};

const CONNS: [usize; 3] = [8, 32, 64];
const WARMUP: Duration = Duration::from_millis(500);

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Seats bought but not yet handed to a run.
struct Seats {
    free: Vec<u64>,
    bought: u64,
    buying: Duration,
}

impl Seats {
    /// Buys blocks of 100,000 until at least `need` seats are free.
    async fn ensure(&mut self, addr: SocketAddr, school: u64, need: usize) {
        while self.free.len() < need {
            let started = Instant::now();
            let ids = common::purchase(addr, school, 100_000).await;
            self.buying += started.elapsed();
            self.bought += 100_000;
            self.free.extend(ids);
        }
    }
}

struct Row {
    endpoint: &'static str,
    conns: usize,
    run: Run,
}

fn main() {
    let secs = env_num("BENCH_SECS", 4);
    let client_threads = env_num("BENCH_CLIENT_THREADS", 2) as usize;
    let duration = Duration::from_secs(secs);
    let server = Server::start();
    let addr = server.addr;
    let client = common::runtime("client", client_threads);

    let mut rows: Vec<Row> = Vec::new();
    let started = Instant::now();
    let (assigned_seen, assigned_expected, seats_bought, buying) = client.block_on(async {
        let district = common::district(addr, "Bench District").await;
        let school = common::school(addr, district, "Bench Elementary").await;
        let mut seats = Seats {
            free: Vec::new(),
            bought: 0,
            buying: Duration::ZERO,
        };

        let health = |_: usize, _: u64| Some(Req::get("/health"));
        for conns in CONNS {
            let run = drive(addr, conns, WARMUP, duration, 200, health).await;
            rows.push(Row {
                endpoint: "GET /health (ceiling, before)",
                conns,
                run,
            });
        }

        // Allocations: each run gets its own slice of fresh seats, bought
        // beforehand (outside the measured window) with a wide margin.
        let mut best_rate = 20_000.0f64;
        let mut allocated = 0u64;
        let learner_base = Arc::new(AtomicUsize::new(0));
        for conns in CONNS {
            let need = (best_rate * (duration + WARMUP).as_secs_f64() * 1.5) as usize + 10_000;
            seats.ensure(addr, school, need).await;
            let list = Arc::new(std::mem::take(&mut seats.free));
            let cursor = Arc::new(AtomicUsize::new(0));
            let base = learner_base.load(Ordering::Relaxed);
            let next = {
                let list = Arc::clone(&list);
                let cursor = Arc::clone(&cursor);
                move |_: usize, _: u64| {
                    let i = cursor.fetch_add(1, Ordering::Relaxed);
                    let seat = *list.get(i)?;
                    Some(allocate_req(seat, &format!("learner-{:08}", base + i)))
                }
            };
            let run = drive(addr, conns, WARMUP, duration, 200, next).await;
            let used = cursor.load(Ordering::Relaxed).min(list.len());
            if used >= list.len() {
                eprintln!("warning: allocate run at {conns} connections ran out of seats");
            }
            learner_base.fetch_add(used, Ordering::Relaxed);
            seats.free = list[used..].to_vec();
            allocated += run.all_ok;
            best_rate = best_rate.max(run.rate());
            rows.push(Row {
                endpoint: "POST /seats/allocate",
                conns,
                run,
            });
        }

        for conns in CONNS {
            let path = summary_req(school).path;
            let next = move |_: usize, _: u64| Some(Req::get(path.clone()));
            let run = drive(addr, conns, WARMUP, duration, 200, next).await;
            rows.push(Row {
                endpoint: "GET /seats/summary",
                conns,
                run,
            });
        }

        for conns in CONNS {
            let run = drive(addr, conns, WARMUP, duration, 200, health).await;
            rows.push(Row {
                endpoint: "GET /health (ceiling, after)",
                conns,
                run,
            });
        }

        // Never wrong: the counters must equal the allocations acknowledged.
        let body = common::call(addr, summary_req(school), 200).await;
        let summary: serde_json::Value = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("summary: {e}"));
        let assigned = summary["assigned_seats"].as_u64().unwrap_or(u64::MAX);
        (assigned, allocated, seats.bought, seats.buying)
    });
    let total = started.elapsed();
    drop(client);
    drop(server);

    // The ceiling for each connection count: the higher of the two health runs.
    let mut ceiling: HashMap<usize, f64> = HashMap::new();
    for r in rows.iter().filter(|r| r.endpoint.starts_with("GET /health")) {
        let c = ceiling.entry(r.conns).or_insert(0.0);
        *c = c.max(r.run.rate());
    }
    let table_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let ratio = if r.endpoint.starts_with("GET /health") {
                "-".to_string()
            } else {
                pct(r.run.rate() / ceiling[&r.conns])
            };
            vec![
                r.endpoint.to_string(),
                r.conns.to_string(),
                f0(r.run.rate()),
                f2(r.run.pct_ms(0.50)),
                f2(r.run.pct_ms(0.99)),
                f2(r.run.pct_ms(0.999)),
                f2(r.run.max_ms()),
                r.run.errors.to_string(),
                ratio,
            ]
        })
        .collect();
    println!(
        "\nhttp_burst: {} cores shared by server and client; client runtime {} workers, \
         one keep-alive HTTP/1.1 connection per task; {} s measured per run after {} ms warm-up",
        common::cores(),
        client_threads,
        secs,
        WARMUP.as_millis()
    );
    table(
        "Throughput and latency (ratio = req/s ÷ the higher /health ceiling at the same connections)",
        &[
            "endpoint",
            "conns",
            "req/s",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
            "errors",
            "of ceiling",
        ],
        &table_rows,
    );
    for r in rows.iter().filter(|r| !r.run.error_samples.is_empty()) {
        println!("errors at {} × {}: {:?}", r.endpoint, r.conns, r.run.error_samples);
    }
    println!(
        "\nseats bought for the burst: {seats_bought} in {:.2} s (not in any measured window); \
         allocations acknowledged: {assigned_expected}; summary counts assigned: {assigned_seen} ({})",
        buying.as_secs_f64(),
        if assigned_seen == assigned_expected {
            "exact"
        } else {
            "MISMATCH"
        }
    );
    println!("whole bench: {:.1} s", total.as_secs_f64());
}
