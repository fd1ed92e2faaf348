//! Restart with 1,000,000 seats and their audit: time from process start to
//! the first served request, and resident memory per seat afterwards.
//!
//! `cargo bench --bench recovery`
//!
//! 1. Build: the real server in-process on a temporary data dir; one district
//!    and one school; 10 purchases of 100,000 seats; 100,000 of them allocated
//!    through the server over 64 connections (so the store holds 100,000
//!    per-seat records and 100,000 stored audit entries next to the 1,000,000
//!    purchase entries derived from the 10 block records). Stopped gracefully.
//! 2. Baseline: the release binary (`tenant-service`, built by `cargo bench`)
//!    started as a child process on an empty data dir.
//! 3. Restart: the same binary on the built data dir, twice. For each start:
//!    spawn → first `GET /health` answered 200, spawn → first
//!    `GET /api/v1/seats/summary` answered 200 (checked: 1,000,000 seats,
//!    100,000 assigned), and VmRSS from /proc/PID/status right after it.
//!    The service answers once memory is rebuilt; its history pass (every
//!    audit and trail record checked, per-minute stats restored) runs after.
//!    The bench waits for the pass's log line, checks that the restored
//!    stats count every allocation once, and reads VmRSS then and 1 s later
//!    (the B/seat columns: the resident size the service keeps).
//!
//! `BENCH_ALLOCATE=1000000` allocates every seat instead (a stored audit
//! entry per seat; the build then takes about a minute).
//! `BENCH_KEEP=1` keeps the built data dir (its path is printed), for
//! profiling a start on it.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{allocate_req, f0, f1, f2, proc_status_bytes, summary_req, table, Conn, Req, Server};

const BLOCKS: u64 = 10;
const BLOCK: u64 = 100_000;
const SEATS: u64 = BLOCKS * BLOCK;
/// Seats allocated before the restart (`BENCH_ALLOCATE`, 1 to 1,000,000;
/// default 100,000): each writes a seat record, an audit entry and a trail key.
fn allocate_count() -> u64 {
    std::env::var("BENCH_ALLOCATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| (1..=SEATS).contains(n))
        .unwrap_or(100_000)
}
const CONNS: usize = 64;

struct Start {
    label: String,
    to_health: Duration,
    to_summary: Option<Duration>,
    recovery_log_ms: Option<u64>,
    /// Of which opening sled (its log replay), from its log line.
    sled_open_ms: Option<u64>,
    /// Spawn → the history pass's log line (every audit and trail record
    /// checked, per-minute stats restored; it runs while the service answers).
    to_history: Option<Duration>,
    rss: u64,
    /// After the history pass, and one second later.
    rss_history: u64,
    rss_settled: u64,
    hwm: u64,
}

/// What the child's log says, as it says it.
enum Logged {
    SledOpened(u64),
    Recovered(u64),
    History(Instant),
}

fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    l.local_addr().unwrap_or_else(|e| panic!("addr: {e}"))
}

fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Asks the child to stop (SIGTERM, a graceful stop) and waits for it.
fn stop_child(child: &mut Child) {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Starts the binary on `dir` and times its first answers.
fn start_binary(rt: &tokio::runtime::Runtime, label: &str, dir: &Path, summary_of: Option<(u64, u64)>) -> Start {
    let bin = env!("CARGO_BIN_EXE_tenant-service");
    let addr = free_port();
    let started = Instant::now();
    let mut child = Command::new(bin)
        .arg("--data-dir")
        .arg(dir)
        .arg("--listen")
        .arg(addr.to_string())
        .env("NO_COLOR", "1")
        .env("TENANT_PLATFORM_ADMINS", common::ROOT)
        .env_remove("RUST_LOG")
        .env_remove("TENANT_LISTEN")
        .env_remove("TENANT_DATA_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {bin}: {e}"));
    let pid = child.id();

    // The start-up log line carries the engine's own recovery time; the
    // history pass logs when it is done.
    let (log_tx, log_rx) = mpsc::channel();
    if let Some(out) = child.stdout.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let millis = line
                    .split("millis=")
                    .nth(1)
                    .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                    .and_then(|digits| digits.parse::<u64>().ok());
                let sled_millis = line
                    .split("sled_millis=")
                    .nth(1)
                    .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                    .and_then(|digits| digits.parse::<u64>().ok());
                if let Some(ms) = sled_millis {
                    let _ = log_tx.send(Logged::SledOpened(ms));
                } else if line.contains("checked every audit and trail record") {
                    let _ = log_tx.send(Logged::History(Instant::now()));
                } else if let (Some(ms), true) = (millis, line.contains("recovered")) {
                    let _ = log_tx.send(Logged::Recovered(ms));
                }
            }
        });
    }

    let (to_health, to_summary) = rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut conn = loop {
            assert!(Instant::now() < deadline, "{label}: the server did not start");
            if let Ok(conn) = Conn::open(addr).await {
                break conn;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        let to_health = loop {
            match conn.call(Req::get("/health")).await {
                Ok((status, _)) if status.as_u16() == 200 => break started.elapsed(),
                _ => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    if let Ok(c) = Conn::open(addr).await {
                        conn = c;
                    }
                }
            }
        };
        let mut to_summary = None;
        if let Some((tenant, allocated)) = summary_of {
            let (status, body) = conn
                .call(summary_req(tenant))
                .await
                .unwrap_or_else(|e| panic!("summary: {e}"));
            to_summary = Some(started.elapsed());
            assert_eq!(status.as_u16(), 200, "{}", String::from_utf8_lossy(&body));
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("summary: {e}"));
            assert_eq!(v["total_seats"].as_u64(), Some(SEATS), "{v}");
            assert_eq!(v["assigned_seats"].as_u64(), Some(allocated), "{v}");
        }
        (to_health, to_summary)
    });
    let rss = proc_status_bytes(pid, "VmRSS").unwrap_or(0);
    let (mut recovery_log_ms, mut sled_open_ms, mut to_history) = (None, None, None);
    let deadline = Instant::now() + Duration::from_secs(120);
    while to_history.is_none() && Instant::now() < deadline {
        match log_rx.recv_timeout(Duration::from_millis(100)) {
            Ok(Logged::Recovered(ms)) => recovery_log_ms = Some(ms),
            Ok(Logged::SledOpened(ms)) => sled_open_ms = Some(ms),
            Ok(Logged::History(at)) => to_history = Some(at.duration_since(started)),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let rss_history = proc_status_bytes(pid, "VmRSS").unwrap_or(0);
    if let Some((tenant, allocated)) = summary_of {
        // The restored per-minute stats count every allocation of the build
        // (all within the last day), once.
        let (status, body) = rt.block_on(async {
            let mut conn = Conn::open(addr).await.unwrap_or_else(|e| panic!("connect: {e}"));
            conn.call(Req::get(format!("/api/v1/seats/stats?tenantId={tenant}&window=24h")))
                .await
                .unwrap_or_else(|e| panic!("stats: {e}"))
        });
        assert_eq!(status.as_u16(), 200, "{}", String::from_utf8_lossy(&body));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("stats: {e}"));
        assert_eq!(v["allocations"].as_u64(), Some(allocated), "{v}");
    }
    std::thread::sleep(Duration::from_secs(1));
    let rss_settled = proc_status_bytes(pid, "VmRSS").unwrap_or(0);
    let hwm = proc_status_bytes(pid, "VmHWM").unwrap_or(0);
    stop_child(&mut child);
    Start {
        label: label.to_string(),
        to_health,
        to_summary,
        recovery_log_ms,
        sled_open_ms,
        to_history,
        rss,
        rss_history,
        rss_settled,
        hwm,
    }
}

fn main() {
    let bench_started = Instant::now();
    let allocate = allocate_count();
    let temp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let data = temp.path().join("data");
    let empty = temp.path().join("empty");
    let me = std::process::id();
    let client = common::runtime("client", 2);

    // ---- 1. build the store in-process ---------------------------------------
    let rss_before_build = proc_status_bytes(me, "VmRSS").unwrap_or(0);
    let build_started = Instant::now();
    let mut server = Server::start_in(&data);
    let addr = server.addr;
    let (school, purchase_time, alloc) = client.block_on(async {
        let school = common::setup(addr, "Recovery District").await;
        let started = Instant::now();
        let mut first_seat = u64::MAX;
        for _ in 0..BLOCKS {
            let ids = common::purchase(addr, school, BLOCK).await;
            first_seat = first_seat.min(ids[0]);
        }
        let purchase_time = started.elapsed();
        let alloc = common::drive_all(addr, CONNS, 200, move |i| {
            // Every tenth seat, so allocations touch all ten blocks.
            (i < allocate).then(|| allocate_req(first_seat + i * (SEATS / allocate), &format!("learner-{i:07}")))
        })
        .await;
        (school, purchase_time, alloc)
    });
    let rss_in_process = proc_status_bytes(me, "VmRSS").unwrap_or(0);
    server.stop();
    let build_time = build_started.elapsed();
    assert_eq!(alloc.1, 0, "allocation errors while building");
    let on_disk = dir_size(&data);

    // ---- 2. the empty baseline, 3. restarts with the data ------------------
    let mut starts = vec![start_binary(&client, "empty data dir", &empty, None)];
    for n in 1..=2 {
        starts.push(start_binary(
            &client,
            &format!("1,000,000 seats, restart {n}"),
            &data,
            Some((school, allocate)),
        ));
    }
    drop(client);
    let baseline = starts[0].rss_settled;

    println!(
        "\nrecovery: {} cores; store of {} seats in {} blocks, {} allocated (per-seat records + audit entries)",
        common::cores(),
        SEATS,
        BLOCKS,
        allocate
    );
    table(
        "Building the store in-process (real server, HTTP)",
        &["step", "time s", "rate", "notes"],
        &[
            vec![
                format!("purchase {BLOCKS} × {BLOCK}"),
                f2(purchase_time.as_secs_f64()),
                format!("{} seats/s", f0(SEATS as f64 / purchase_time.as_secs_f64())),
                "one request each, sequential".into(),
            ],
            vec![
                format!("allocate {allocate}"),
                f2(alloc.2.as_secs_f64()),
                format!("{} req/s", f0(alloc.0 as f64 / alloc.2.as_secs_f64())),
                format!("{CONNS} connections, {} errors", alloc.1),
            ],
            vec![
                "whole build incl. open/stop".into(),
                f2(build_time.as_secs_f64()),
                "-".into(),
                format!(
                    "bench process RSS grew {} MB ({} B/seat, server + client in one process)",
                    f1((rss_in_process.saturating_sub(rss_before_build)) as f64 / 1e6),
                    f0(rss_in_process.saturating_sub(rss_before_build) as f64 / SEATS as f64)
                ),
            ],
            vec![
                "data dir on disk".into(),
                "-".into(),
                "-".into(),
                format!("{} MB", f1(on_disk as f64 / 1e6)),
            ],
        ],
    );
    table(
        "Start of the release binary (spawn → first answer; RSS right after the first summary, after the history pass, and 1 s later; B/seat from the last)",
        &[
            "start",
            "to /health ms",
            "to summary ms",
            "recovery (log) ms",
            "of which sled open ms",
            "history pass done ms",
            "RSS MB",
            "RSS after history MB",
            "RSS +1 s MB",
            "peak MB",
            "B/seat",
            "B/seat net of empty",
        ],
        &starts
            .iter()
            .map(|s| {
                let seats = if s.to_summary.is_some() { SEATS } else { 0 };
                let per = |v: u64| {
                    if seats == 0 {
                        "-".to_string()
                    } else {
                        f0(v as f64 / seats as f64)
                    }
                };
                vec![
                    s.label.clone(),
                    f1(s.to_health.as_secs_f64() * 1000.0),
                    s.to_summary.map_or("-".into(), |d| f1(d.as_secs_f64() * 1000.0)),
                    s.recovery_log_ms.map_or("-".into(), |ms| ms.to_string()),
                    s.sled_open_ms.map_or("-".into(), |ms| ms.to_string()),
                    s.to_history.map_or("-".into(), |d| f1(d.as_secs_f64() * 1000.0)),
                    f1(s.rss as f64 / 1e6),
                    f1(s.rss_history as f64 / 1e6),
                    f1(s.rss_settled as f64 / 1e6),
                    f1(s.hwm as f64 / 1e6),
                    per(s.rss_settled),
                    per(s.rss_settled.saturating_sub(baseline)),
                ]
            })
            .collect::<Vec<_>>(),
    );
    if std::env::var_os("BENCH_KEEP").is_some() {
        println!("data dir kept: {}", temp.keep().join("data").display());
    }
    println!("whole bench: {:.1} s", bench_started.elapsed().as_secs_f64());
}
