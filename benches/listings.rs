//! Seat listings and the export at scale (issue 14 §5), on one in-process
//! server in one run:
//!
//! (a) `GET /api/v1/seats` pages (limit 100 and 1000: the first page, a page
//!     deep in, a state, a learner) on a school with 1,000,000 seats next to
//!     the same queries on a school with 1,000, each answering as many
//!     seats: the ratio of the medians is the figure (target: within 1.5×).
//!     The pool's own `page` is timed the same way, without HTTP.
//! (b) `GET /api/v1/seats/export` of the 1,000,000 seats, read as it
//!     arrives and dropped: its time, and how far the process's resident
//!     memory rose above where it was when the export began (the peak,
//!     VmHWM, reset through `/proc/self/clear_refs` just before). Server
//!     and client share the process, so the growth bounds both.
//!
//! `cargo bench --bench listings`
//!
//! Environment: BENCH_SEATS (the big school, default 1,000,000),
//! BENCH_REPEAT (timed requests per query, default 200).

mod common;

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{allocate_req, call, f1, f2, table, Req, Server};
use hyper::body::HttpBody;
use tenant_service::domain::{AuditId, BlockRecord, Id, LearnerId, SeatId, SeatState, TenantId, Timestamp, UserId};
use tenant_service::engine::{SeatFilter, SeatPool};

const SMALL: u64 = 1_000;
/// Assigned seats: every 10th, over the whole small school and over the
/// first `SPAN` seats and the `SPAN` seats from the middle of the big one,
/// so the pages a query reads have the same mix in both.
const EVERY: u64 = 10;
const SPAN: u64 = 20_000;

/// The seat offsets (0-based, in id order) assigned in a school of `size`.
fn assigned_offsets(size: u64) -> Vec<u64> {
    if size <= 2 * SPAN {
        (0..size).step_by(EVERY as usize).collect()
    } else {
        (0..SPAN)
            .step_by(EVERY as usize)
            .chain((size / 2..size / 2 + SPAN).step_by(EVERY as usize))
            .collect()
    }
}

/// One timed listing query; both schools answer it with the same number of
/// seats (the small school has 100 assigned and 900 free seats, so the
/// filtered queries are at limit 100 only).
struct Query {
    what: &'static str,
    limit: usize,
    /// Start after min(size / 2, size - limit) seats: half-way in, or the
    /// last full page (for the small school at limit 1000, the first).
    deep: bool,
    state: Option<SeatState>,
    /// The 6th assigned seat's learner.
    learner: bool,
}

const QUERIES: [Query; 8] = [
    Query {
        what: "first page",
        limit: 100,
        deep: false,
        state: None,
        learner: false,
    },
    Query {
        what: "a page deep in",
        limit: 100,
        deep: true,
        state: None,
        learner: false,
    },
    Query {
        what: "state=assigned",
        limit: 100,
        deep: false,
        state: Some(SeatState::Assigned),
        learner: false,
    },
    Query {
        what: "state=free",
        limit: 100,
        deep: false,
        state: Some(SeatState::Free),
        learner: false,
    },
    Query {
        what: "learnerId",
        limit: 100,
        deep: false,
        state: None,
        learner: true,
    },
    Query {
        what: "first page",
        limit: 1000,
        deep: false,
        state: None,
        learner: false,
    },
    Query {
        what: "a page deep in",
        limit: 1000,
        deep: true,
        state: None,
        learner: false,
    },
    Query {
        what: "learnerId",
        limit: 1000,
        deep: false,
        state: None,
        learner: true,
    },
];

impl Query {
    fn skip(&self, size: u64) -> u64 {
        if self.deep {
            (size / 2).min(size - self.limit as u64)
        } else {
            0
        }
    }

    fn label(&self) -> String {
        format!("{}, limit {}", self.what, self.limit)
    }
}

fn learner_name(prefix: &str, i: usize) -> String {
    format!("{prefix}-{i}")
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The median and p99 (ms) and the items of `repeat` requests for each of
/// two paths, sent alternately on two keep-alive connections, so that both
/// see the same machine (other sessions share it; see BENCHMARKS.md, Noise).
async fn time_pair(addr: SocketAddr, paths: [&str; 2], repeat: u64) -> [(f64, f64, usize); 2] {
    let mut conns = [common::Conn::open(addr).await, common::Conn::open(addr).await]
        .map(|c| c.unwrap_or_else(|e| panic!("connect: {e}")));
    let mut times = [Vec::with_capacity(repeat as usize), Vec::with_capacity(repeat as usize)];
    let mut items = [0, 0];
    for _ in 0..repeat {
        for k in 0..2 {
            let started = Instant::now();
            let (status, body) = conns[k]
                .call(Req::get(paths[k]))
                .await
                .unwrap_or_else(|e| panic!("GET {}: {e}", paths[k]));
            times[k].push(started.elapsed());
            assert_eq!(
                status.as_u16(),
                200,
                "GET {}: {}",
                paths[k],
                String::from_utf8_lossy(&body)
            );
            let page: serde_json::Value = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("page: {e}"));
            items[k] = page["items"].as_array().map_or(0, Vec::len);
        }
    }
    [0, 1].map(|k| {
        let t = &mut times[k];
        t.sort_unstable();
        let at = |q: f64| t[((t.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1000.0;
        (at(0.5), at(0.99), items[k])
    })
}

/// The cursor after the first `skip` seats of a listing (following pages).
async fn cursor_after(addr: SocketAddr, tenant: u64, skip: u64) -> Option<String> {
    let mut cursor: Option<String> = None;
    let mut left = skip;
    while left > 0 {
        let limit = left.min(1000);
        let path = match &cursor {
            Some(c) => format!("/api/v1/seats?tenantId={tenant}&limit={limit}&cursor={c}"),
            None => format!("/api/v1/seats?tenantId={tenant}&limit={limit}"),
        };
        let body = call(addr, Req::get(path), 200).await;
        let page: serde_json::Value = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("page: {e}"));
        cursor = Some(page["next_cursor"].as_str()?.to_owned());
        left -= limit;
    }
    cursor
}

/// This process's VmRSS or VmHWM, in bytes.
fn vm(field: &str) -> u64 {
    common::proc_status_bytes(std::process::id(), field).unwrap_or(0)
}

/// Resets VmHWM to the current RSS (Linux: `5` to clear_refs).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

struct Export {
    elapsed: Duration,
    first_byte: Duration,
    bytes: u64,
    rows: u64,
    rss_before: u64,
    peak: u64,
    rss_after: u64,
    peak_reset: bool,
}

/// One export, read chunk by chunk as it arrives (nothing kept but counts).
async fn export(addr: SocketAddr, tenant: u64) -> Export {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let (mut send, conn) = hyper::client::conn::handshake(stream)
        .await
        .unwrap_or_else(|e| panic!("handshake: {e}"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let request = hyper::Request::get(format!("/api/v1/seats/export?tenantId={tenant}"))
        .header("host", addr.to_string())
        .header("x-user-id", common::USER)
        .body(hyper::Body::empty())
        .unwrap_or_else(|e| panic!("request: {e}"));
    let peak_reset = reset_peak();
    let rss_before = vm("VmRSS");
    let started = Instant::now();
    let res = send
        .send_request(request)
        .await
        .unwrap_or_else(|e| panic!("export: {e}"));
    assert_eq!(res.status().as_u16(), 200);
    let mut body = res.into_body();
    let (mut bytes, mut rows, mut first_byte) = (0u64, 0u64, None);
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap_or_else(|e| panic!("export body: {e}"));
        first_byte.get_or_insert_with(|| started.elapsed());
        bytes += chunk.len() as u64;
        rows += chunk.iter().filter(|b| **b == b'\n').count() as u64;
    }
    let elapsed = started.elapsed();
    Export {
        elapsed,
        first_byte: first_byte.unwrap_or(elapsed),
        bytes,
        rows,
        rss_before,
        peak: vm("VmHWM"),
        rss_after: vm("VmRSS"),
        peak_reset,
    }
}

/// A pool like the school of `size` seats the server holds: blocks of
/// 100,000, `assigned_offsets` assigned (the i-th to learner `p-i`).
fn pool(size: u64) -> SeatPool {
    let id = |n: u64| SeatId::new(n).unwrap_or_else(|| panic!("id {n}"));
    let tenant = TenantId::new(1).unwrap_or_else(|| panic!("tenant"));
    let by = UserId::parse("bench").unwrap_or_else(|e| panic!("{e}"));
    let mut pool = SeatPool::new(tenant);
    let mut first = 1;
    while first <= size {
        let count = 100_000.min(size - first + 1);
        pool.add_block(
            BlockRecord {
                tenant_id: tenant,
                first_seat: id(first),
                count,
                first_audit: AuditId::new(first).unwrap_or_else(|| panic!("audit id")),
                created_at: Timestamp::now(),
                changed_by: by.clone(),
            },
            None,
        );
        first += count;
    }
    for (i, offset) in assigned_offsets(size).into_iter().enumerate() {
        let learner = LearnerId::parse(&learner_name("p", i)).unwrap_or_else(|e| panic!("{e}"));
        let change = pool
            .allocate(id(offset + 1), learner, Timestamp::now())
            .unwrap_or_else(|e| panic!("{e}"));
        pool.apply(change);
    }
    pool
}

/// The median time (µs) of one `SeatPool::page` call on each of the two
/// pools, and its items: 200 samples of 20 calls, the pools alternately.
fn time_pages(pools: [(&SeatPool, u64); 2], q: &Query) -> [(f64, usize); 2] {
    let filter = SeatFilter {
        state: q.state,
        learner: q
            .learner
            .then(|| LearnerId::parse(&learner_name("p", 5)).unwrap_or_else(|e| panic!("{e}"))),
        expiring_before: None,
    };
    let mut times = [Vec::with_capacity(200), Vec::with_capacity(200)];
    let mut items = [0, 0];
    for _ in 0..200 {
        for (k, (pool, size)) in pools.iter().enumerate() {
            let after = SeatId::new(q.skip(*size));
            let started = Instant::now();
            for _ in 0..20 {
                items[k] = black_box(pool.page(after, &filter, q.limit)).seats.len();
            }
            times[k].push(started.elapsed() / 20);
        }
    }
    [0, 1].map(|k| {
        times[k].sort_unstable();
        (times[k][times[k].len() / 2].as_secs_f64() * 1e6, items[k])
    })
}

fn main() {
    let seats = env_num("BENCH_SEATS", 1_000_000);
    let repeat = env_num("BENCH_REPEAT", 300);
    let started = Instant::now();

    // ---- the pool alone --------------------------------------------------
    let big_pool = pool(seats);
    let small_pool = pool(SMALL);
    let mut pool_rows = Vec::new();
    for q in &QUERIES {
        let [(b, items), (s, small_items)] = time_pages([(&big_pool, seats), (&small_pool, SMALL)], q);
        pool_rows.push(vec![
            q.label(),
            format!("{items} / {small_items}"),
            f2(b),
            f2(s),
            format!("{:.2}×", b / s),
        ]);
    }
    drop((big_pool, small_pool));

    // ---- over HTTP -----------------------------------------------------------
    let server = Server::start();
    let addr = server.addr;
    let client = common::runtime("client", 2);
    let (rows, exported, build, assigned) = client.block_on(async {
        let big = common::setup(addr, "Big Listing District").await;
        let small = common::setup(addr, "Small Listing District").await;
        let building = Instant::now();
        let mut big_seats = Vec::with_capacity(seats as usize);
        while (big_seats.len() as u64) < seats {
            let n = (seats - big_seats.len() as u64).min(100_000);
            big_seats.extend(common::purchase(addr, big, n).await);
        }
        let small_seats = common::purchase(addr, small, SMALL).await;
        let mut to_assign = Vec::new();
        for (prefix, school) in [("big", &big_seats), ("small", &small_seats)] {
            for (i, offset) in assigned_offsets(school.len() as u64).into_iter().enumerate() {
                to_assign.push((school[offset as usize], learner_name(prefix, i)));
            }
        }
        let assigned = to_assign.len() as u64;
        let list = std::sync::Arc::new(to_assign);
        let (ok, errors, _) = common::drive_all(addr, 32, 200, move |i| {
            list.get(i as usize).map(|(seat, learner)| allocate_req(*seat, learner))
        })
        .await;
        assert_eq!((ok, errors), (assigned, 0));
        let build = building.elapsed();

        let mut rows = Vec::new();
        for q in &QUERIES {
            let mut paths = Vec::new();
            for (prefix, tenant, size) in [("big", big, seats), ("small", small, SMALL)] {
                let mut path = format!("/api/v1/seats?tenantId={tenant}&limit={}", q.limit);
                if let Some(cursor) = cursor_after(addr, tenant, q.skip(size)).await {
                    path.push_str(&format!("&cursor={cursor}"));
                }
                if let Some(state) = q.state {
                    path.push_str(&format!("&state={state}"));
                }
                if q.learner {
                    path.push_str(&format!("&learnerId={}", learner_name(prefix, 5)));
                }
                paths.push(path);
            }
            let [b, s] = time_pair(addr, [&paths[0], &paths[1]], repeat).await;
            rows.push((q.label(), b, s));
        }
        let exported = export(addr, big).await;
        (rows, exported, build, assigned)
    });
    drop(client);
    drop(server);

    println!(
        "listings: {seats} + {SMALL} seats bought and {assigned} allocated over HTTP in {:.1} s",
        build.as_secs_f64()
    );
    table(
        &format!("SeatPool::page alone, median of 200 samples of 20 calls, the pools alternately: {seats} seats vs {SMALL} (ratio = big ÷ small)"),
        &["query", "items big / small", "big µs", "small µs", "ratio"],
        &pool_rows,
    );
    let out: Vec<Vec<String>> = rows
        .iter()
        .map(|(label, (bp50, bp99, bitems), (sp50, sp99, sitems))| {
            vec![
                label.clone(),
                format!("{bitems} / {sitems}"),
                f2(*bp50),
                f2(*bp99),
                f2(*sp50),
                f2(*sp99),
                format!("{:.2}×", bp50 / sp50),
            ]
        })
        .collect();
    table(
        &format!(
            "GET /api/v1/seats, {repeat} requests per query and school, big and small alternately, one keep-alive connection each: {seats} seats vs {SMALL} (ratio = p50 ÷ p50)"
        ),
        &["query", "items big / small", "big p50 ms", "big p99 ms", "small p50 ms", "small p99 ms", "ratio"],
        &out,
    );
    let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
    let e = &exported;
    table(
        &format!("GET /api/v1/seats/export of {seats} seats (streamed; read chunk by chunk and dropped)"),
        &[
            "rows",
            "CSV MB",
            "time s",
            "first byte ms",
            "seats/s",
            "RSS before MB",
            "peak RSS MB",
            "peak growth MB",
            "RSS after MB",
        ],
        &[vec![
            (e.rows - 1).to_string(),
            f1(mb(e.bytes)),
            f2(e.elapsed.as_secs_f64()),
            f1(e.first_byte.as_secs_f64() * 1000.0),
            format!("{:.0}", (e.rows - 1) as f64 / e.elapsed.as_secs_f64()),
            f1(mb(e.rss_before)),
            f1(mb(e.peak)),
            f1(mb(e.peak.saturating_sub(e.rss_before))),
            f1(mb(e.rss_after)),
        ]],
    );
    if !e.peak_reset {
        println!("(could not reset VmHWM: the peak is the process's whole life)");
    }
    println!("whole bench: {:.1} s", started.elapsed().as_secs_f64());
}
