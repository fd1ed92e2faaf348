//! Reservations, transfers and license terms against the real server
//! in-process.
//!
//! `cargo bench --bench lifecycle`
//!
//! 1. Allocate with 100,000 pending reservations: two schools of one server
//!    with 200,000 seats each; in one, 100,000 seats reserved for an hour.
//!    Single allocations by seat id of free seats, 64 connections, in
//!    alternating windows (3 × 2 s each); allocations/s and the ratio.
//! 2. Restart with 100,000 pending reservations: two data dirs of 200,000
//!    seats, one with 100,000 reserved (an hour), the other with 100,000
//!    assigned (as many seat records). Each opened 3 times, alternately:
//!    open to first summary answered.
//! 3. Transfer: 10 requests of 10,000 seats (`count`), between a school and
//!    its district, one after another; seats/s durable. The baseline in the
//!    same run: 5 bulk assigns of 10,000 learners in another school.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{allocate_req, f0, f1, f2, table, Conn, Req, Server};

const PENDING: usize = 100_000;
const PER_REQUEST: u64 = 10_000;

fn main() {
    let (with, without) = allocate_with_pending();
    let (pending_ms, assigned_ms) = restart_with_pending();
    let (transfer, assign) = transfer_rate();

    println!(
        "\nlifecycle: {} cores; server in-process, client on the same machine",
        common::cores()
    );
    table(
        "1. single allocations by seat id, 64 connections, 3 alternating windows of 2 s each",
        &["school", "allocations/s (each window)", "mean", "vs none pending"],
        &[
            row_rate("100,000 reservations pending", &with, mean(&without)),
            row_rate("none pending", &without, mean(&without)),
        ],
    );
    table(
        "2. restart: open to the first summary answered, 3 opens each, alternating",
        &["data dir (200,000 seats)", "ms (each open)", "median", "vs assigned"],
        &[
            row_ms("100,000 reserved (pending)", &pending_ms, median(&assigned_ms)),
            row_ms("100,000 assigned", &assigned_ms, median(&assigned_ms)),
        ],
    );
    let rate =
        |runs: &[Duration]| (PER_REQUEST as usize * runs.len()) as f64 / runs.iter().sum::<Duration>().as_secs_f64();
    let ms = |runs: &[Duration]| {
        let v: Vec<f64> = runs.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        let (min, max) = v.iter().fold((f64::MAX, 0f64), |(a, b), m| (a.min(*m), b.max(*m)));
        (f1(min), f1(max))
    };
    let (tmin, tmax) = ms(&transfer);
    let (amin, amax) = ms(&assign);
    table(
        "3. requests of 10,000 seats, one after another (seats/s = seats ÷ total time)",
        &[
            "operation",
            "requests",
            "min ms",
            "max ms",
            "seats/s durable",
            "vs bulk assign",
        ],
        &[
            vec![
                "POST /seats/transfer (count 10,000)".into(),
                transfer.len().to_string(),
                tmin,
                tmax,
                f0(rate(&transfer)),
                format!("{}×", f2(rate(&transfer) / rate(&assign))),
            ],
            vec![
                "POST /seats/assign/bulk (10,000)".into(),
                assign.len().to_string(),
                amin,
                amax,
                f0(rate(&assign)),
                "1×".into(),
            ],
        ],
    );
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn row_rate(name: &str, runs: &[f64], base: f64) -> Vec<String> {
    vec![
        name.into(),
        runs.iter().map(|r| f0(*r)).collect::<Vec<_>>().join(", "),
        f0(mean(runs)),
        format!("{}×", f2(mean(runs) / base)),
    ]
}

fn row_ms(name: &str, runs: &[f64], base: f64) -> Vec<String> {
    vec![
        name.into(),
        runs.iter().map(|r| f1(*r)).collect::<Vec<_>>().join(", "),
        f1(median(runs)),
        format!("{}×", f2(median(runs) / base)),
    ]
}

/// Buys 200,000 seats in a new school; its id and the seats.
async fn school(addr: std::net::SocketAddr, name: &str) -> (u64, Vec<u64>) {
    let school = common::setup(addr, name).await;
    let mut seats = common::purchase(addr, school, 100_000).await;
    seats.extend(common::purchase(addr, school, 100_000).await);
    (school, seats)
}

fn reserve_req(tenant: u64, seat: u64) -> Req {
    Req::post(
        "/api/v1/seats/reserve",
        format!(r#"{{"tenant_id":{tenant},"seat_id":{seat},"ttl_seconds":3600}}"#),
    )
}

/// Sends one request per seat of `seats` at 64 connections, all answered `expect`.
async fn each(
    addr: std::net::SocketAddr,
    seats: Arc<Vec<u64>>,
    expect: u16,
    req: impl Fn(u64, u64) -> Req + Send + Sync + 'static,
) {
    let n = seats.len();
    let (ok, errors, _) = common::drive_all(addr, 64, expect, move |i| seats.get(i as usize).map(|s| req(i, *s))).await;
    assert_eq!((ok, errors), (n as u64, 0));
}

fn allocate_with_pending() -> (Vec<f64>, Vec<f64>) {
    let server = Server::start();
    let addr = server.addr;
    let client = common::runtime("client", 2);
    client.block_on(async {
        let (pending, p_seats) = school(addr, "Pending").await;
        let (_, q_seats) = school(addr, "Plain").await;
        let reserved = Arc::new(p_seats[..PENDING].to_vec());
        each(addr, reserved, 201, move |_, seat| reserve_req(pending, seat)).await;
        let summary = common::call(addr, common::summary_req(pending), 200).await;
        assert!(String::from_utf8_lossy(&summary).contains(r#""reserved_seats":100000"#));
        let free = |seats: &[u64]| Arc::new(seats[PENDING..].to_vec());
        let (p_free, q_free) = (free(&p_seats), free(&q_seats));
        let (p_at, q_at) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (mut with, mut without) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            for (seats, at, out) in [(&p_free, &p_at, &mut with), (&q_free, &q_at, &mut without)] {
                let (seats, at) = (Arc::clone(seats), Arc::clone(at));
                let next = move |_: usize, _: u64| {
                    let i = at.fetch_add(1, Ordering::Relaxed);
                    seats.get(i).map(|s| allocate_req(*s, &format!("l-{s}")))
                };
                let run = common::drive(addr, 64, Duration::from_millis(300), Duration::from_secs(2), 200, next).await;
                assert_eq!(run.errors, 0, "{:?}", run.error_samples);
                out.push(run.rate());
            }
        }
        (with, without)
    })
}

fn restart_with_pending() -> (Vec<f64>, Vec<f64>) {
    let temp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dirs = [temp.path().join("pending"), temp.path().join("assigned")];
    let mut schools = Vec::new();
    for (k, dir) in dirs.iter().enumerate() {
        let mut server = Server::start_in(dir);
        let addr = server.addr;
        let client = common::runtime("client", 2);
        let s = client.block_on(async {
            let (s, seats) = school(addr, "Restart").await;
            let first = Arc::new(seats[..PENDING].to_vec());
            if k == 0 {
                each(addr, first, 201, move |_, seat| reserve_req(s, seat)).await;
            } else {
                each(addr, first, 200, |i, seat| allocate_req(seat, &format!("l-{i}"))).await;
            }
            s
        });
        drop(client);
        server.stop();
        schools.push(s);
    }
    let (mut pending, mut assigned) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        for (k, dir) in dirs.iter().enumerate() {
            let started = Instant::now();
            let mut server = Server::start_in(dir);
            let client = common::runtime("client", 1);
            let body = client.block_on(common::call(server.addr, common::summary_req(schools[k]), 200));
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            let expect = if k == 0 {
                r#""reserved_seats":100000"#
            } else {
                r#""assigned_seats":100000"#
            };
            assert!(String::from_utf8_lossy(&body).contains(expect));
            drop(client);
            server.stop();
            if k == 0 {
                pending.push(ms)
            } else {
                assigned.push(ms)
            }
        }
    }
    (pending, assigned)
}

fn transfer_rate() -> (Vec<Duration>, Vec<Duration>) {
    let server = Server::start();
    let addr = server.addr;
    let client = common::runtime("client", 2);
    client.block_on(async {
        let school = common::setup(addr, "Transfer").await;
        common::purchase(addr, school, 100_000).await;
        let tenant = common::call(addr, Req::get(format!("/api/v1/tenant/{school}")), 200).await;
        let tenant: serde_json::Value = serde_json::from_slice(&tenant).unwrap_or_else(|e| panic!("{e}"));
        let district = tenant["parent_id"]
            .as_u64()
            .unwrap_or_else(|| panic!("no district: {tenant}"));
        let mut conn = Conn::open(addr).await.unwrap_or_else(|e| panic!("connect: {e}"));
        let mut transfer = Vec::new();
        for r in 0..10 {
            let (from, to) = if r % 2 == 0 {
                (school, district)
            } else {
                (district, school)
            };
            let body =
                serde_json::json!({"from_tenant_id": from, "to_tenant_id": to, "count": PER_REQUEST}).to_string();
            transfer.push(timed(&mut conn, Req::post("/api/v1/seats/transfer", body), "transferred").await);
        }
        let other = common::setup(addr, "Assign").await;
        common::purchase(addr, other, 5 * PER_REQUEST).await;
        let mut assign = Vec::new();
        for r in 0..5 {
            let learners: Vec<String> = (0..PER_REQUEST).map(|i| format!("b-{r}-{i:05}")).collect();
            let body = serde_json::json!({"tenant_id": other, "learner_ids": learners}).to_string();
            assign.push(timed(&mut conn, Req::post("/api/v1/seats/assign/bulk", body), "assigned").await);
        }
        (transfer, assign)
    })
}

/// Sends one request of 10,000 rows; checks every row came out as `expected`.
async fn timed(conn: &mut Conn, req: Req, expected: &str) -> Duration {
    let started = Instant::now();
    let (status, body) = conn.call(req).await.unwrap_or_else(|e| panic!("request: {e}"));
    let took = started.elapsed();
    assert_eq!(
        status.as_u16(),
        200,
        "{}",
        String::from_utf8_lossy(&body[..body.len().min(300)])
    );
    let report: serde_json::Value = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("body: {e}"));
    assert_eq!(report["totals"][expected], PER_REQUEST, "{}", report["totals"]);
    took
}
