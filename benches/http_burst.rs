//! The first morning of term: the real server, in-process on 127.0.0.1:0 with
//! a temporary data dir, takes a burst of allocations (every request a
//! different seat and learner, all in one school) and then summary polls; the
//! same client measures `GET /health` on the same server as the ceiling.
//!
//! `cargo bench --bench http_burst`
//!
//! The ceiling is measured interleaved with what it is compared to: for each
//! connection count, ROUNDS rounds of one slice of `/health` and one slice of
//! the endpoint (order alternating), each slice on fresh keep-alive
//! connections after a short warm-up. On a small shared VM the rate of the
//! very same request drifts by tens of percent over a minute; interleaving
//! puts the endpoint and its ceiling under the same conditions. Rates are
//! totals over all slices; percentiles are over every request of all slices.
//!
//! The client and the server share the machine's cores: the server runs on
//! its own runtime (one worker per core, as the binary does), plus its actor
//! and group-commit threads (and sled's IO threads); the load client runs on
//! a second runtime. Every figure, the ceiling included, is measured under
//! that same sharing.
//!
//! Environment: BENCH_SLICE_MS (measured milliseconds per slice, default
//! 1000), BENCH_ROUNDS (default 4), BENCH_CLIENT_THREADS (client runtime
//! workers, default 2), and for profiling one part alone BENCH_CONNS (e.g.
//! `64`), BENCH_ONLY (`allocate`, `summary`, `refused`, `roles`, `assign`,
//! `keyed`, comma separated) and BENCH_NO_CEILING=1 (skip the `/health` slices, e.g. under
//! `perf record`).
//!
//! Besides rates, each row reports the CPU time of the whole process (server
//! and client, getrusage) per request and the cores it kept busy: where the
//! ratio to the ceiling is set by CPU, not by waiting. The `refused` row is
//! the allocate request with everything but its write: the same body, route,
//! role check and actor round trip, for a seat already held, so the actor
//! refuses it and nothing is written (400). Allocate minus refused is what
//! the durable write costs inside the server. For the allocate slices the
//! group commit's own figures (flushes, writes per flush, time flushing) are
//! read from `/metrics` before and after each slice.
//!
//! What-if runs (BENCHMARKS.md, "Where the time goes"): with
//! `TS_WHAT_IF=no-flush` the bench opens its server on a disk whose flush
//! makes nothing durable (`benches/common`, through the store's `Hooks`),
//! which shows what allocation would cost with durability free. Those
//! answers are not durable; the header says so.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{allocate_req, assign_req, drive, f0, f1, f2, pct, summary_req, table, Req, Run, Server};

const CONNS: [usize; 3] = [8, 32, 64];
const WARMUP: Duration = Duration::from_millis(200);

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Bytes this process (server and client) has sent to storage so far.
fn disk_written() -> u64 {
    common::proc_io(std::process::id(), "write_bytes").unwrap_or(0)
}

/// Seats bought but not yet handed out, in id order.
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

/// Everything measured for one endpoint at one connection count.
#[derive(Default)]
struct Total {
    run: Run,
    disk: u64,
}

impl Total {
    fn add(&mut self, run: Run, disk: u64) {
        self.run.absorb(run);
        self.disk += disk;
    }

    fn finish(mut self) -> Total {
        self.run.latencies.sort_unstable();
        self
    }
}

/// The group commit's counters, from `/metrics`.
#[derive(Default, Clone, Copy)]
struct Flushes {
    count: f64,
    writes: f64,
    seconds: f64,
}

impl Flushes {
    async fn read(addr: SocketAddr) -> Flushes {
        let body = common::call(addr, Req::get("/metrics"), 200).await;
        let text = String::from_utf8_lossy(&body);
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        Flushes {
            count: value("tenant_group_commit_flush_seconds_count"),
            writes: value("tenant_group_commit_batch_size_sum"),
            seconds: value("tenant_group_commit_flush_seconds_sum"),
        }
    }

    fn since(self, before: Flushes) -> Flushes {
        Flushes {
            count: self.count - before.count,
            writes: self.writes - before.writes,
            seconds: self.seconds - before.seconds,
        }
    }

    fn add(&mut self, other: Flushes) {
        self.count += other.count;
        self.writes += other.writes;
        self.seconds += other.seconds;
    }
}

struct Row {
    endpoint: String,
    conns: usize,
    total: Total,
    /// The interleaved `/health` rate this row is compared to.
    ceiling: Option<f64>,
}

fn main() {
    let slice = Duration::from_millis(env_num("BENCH_SLICE_MS", 1000));
    let rounds = env_num("BENCH_ROUNDS", 4) as usize;
    let client_threads = env_num("BENCH_CLIENT_THREADS", 2) as usize;
    let conn_counts: Vec<usize> = std::env::var("BENCH_CONNS")
        .ok()
        .map(|v| v.split(',').filter_map(|c| c.trim().parse().ok()).collect())
        .unwrap_or_else(|| CONNS.to_vec());
    // The experiment the in-process server runs, as the store reads it.
    let what_if = common::what_if();
    let only = std::env::var("BENCH_ONLY").unwrap_or_else(|_| "allocate,summary,refused,roles,assign,keyed".into());
    let phase = |name: &str| only.split(',').any(|p| p.trim() == name);
    let no_ceiling = env_num("BENCH_NO_CEILING", 0) == 1;
    let server = Server::start();
    let addr = server.addr;
    // Started here, outside the client's runtime (opening blocks).
    let open = phase("roles").then(|| Server::start_with(|s| s.auth.enforce_roles = false));
    let client = common::runtime("client", client_threads);

    let mut rows: Vec<Row> = Vec::new();
    let started = Instant::now();
    let (assigned_seen, assigned_expected, seats_bought, buying, flush_rows) = client.block_on(async {
        let school = common::setup(addr, "Bench District").await;
        let mut seats = Seats {
            free: Vec::new(),
            bought: 0,
            buying: Duration::ZERO,
        };

        // Allocations: every request a fresh seat (bought beforehand, outside
        // any measured window, with a wide margin) and a fresh learner.
        // A what-if run answers faster.
        let mut best_rate = if what_if.is_some() { 50_000.0f64 } else { 15_000.0f64 };
        let mut allocated = 0u64;
        // Seats the allocate slices handed out, for the refused slices.
        let mut held: Vec<u64> = Vec::new();
        let mut flush_rows: Vec<Vec<String>> = Vec::new();
        let mut learners_used = 0usize;
        for &conns in conn_counts.iter().filter(|_| phase("allocate")) {
            let window = (slice + WARMUP).as_secs_f64() * rounds as f64;
            seats
                .ensure(addr, school, (best_rate * window * 1.5) as usize + 10_000)
                .await;
            let list = Arc::new(std::mem::take(&mut seats.free));
            let cursor = Arc::new(AtomicUsize::new(0));
            let next = || {
                let (list, cursor, base) = (Arc::clone(&list), Arc::clone(&cursor), learners_used);
                move |_: usize, _: u64| {
                    let i = cursor.fetch_add(1, Ordering::Relaxed);
                    let seat = *list.get(i)?;
                    Some(allocate_req(seat, &format!("learner-{:08}", base + i)))
                }
            };
            let (ceiling, alloc, flushes) = interleaved(addr, conns, rounds, slice, no_ceiling, 200, next).await;
            let used = cursor.load(Ordering::Relaxed).min(list.len());
            if used >= list.len() {
                eprintln!("warning: allocate at {conns} connections ran out of seats");
            }
            learners_used += used;
            held.extend_from_slice(&list[..used]);
            seats.free = list[used..].to_vec();
            allocated += alloc.run.all_ok;
            // The slice windows include warm-ups: flushes/s is over that time.
            flush_rows.push(vec![
                conns.to_string(),
                f0(flushes.count / window),
                f1(flushes.writes / flushes.count.max(1.0)),
                f2(flushes.seconds * 1000.0 / flushes.count.max(1.0)),
                pct(flushes.seconds / window),
            ]);
            best_rate = best_rate.max(alloc.run.rate());
            push_pair(&mut rows, conns, "POST /seats/allocate", ceiling, alloc);
        }

        for &conns in conn_counts.iter().filter(|_| phase("summary")) {
            let path = summary_req(school).path;
            let next = || {
                let path = path.clone();
                move |_: usize, _: u64| Some(Req::get(path.clone()))
            };
            let (ceiling, summary, _) = interleaved(addr, conns, rounds, slice, no_ceiling, 200, next).await;
            push_pair(&mut rows, conns, "GET /seats/summary", ceiling, summary);
        }

        // The same request minus its write: seats already held, so the actor
        // refuses each one (400) after the same parsing, role check and
        // round trip, and nothing is written.
        if phase("refused") && !held.is_empty() {
            let conns = 64;
            let held = Arc::new(std::mem::take(&mut held));
            let next = || {
                let held = Arc::clone(&held);
                move |c: usize, i: u64| {
                    let seat = held[(c * 7919 + i as usize) % held.len()];
                    Some(allocate_req(seat, &format!("refused-{c}-{i}")))
                }
            };
            let (ceiling, refused, _) = interleaved(addr, conns, rounds, slice, no_ceiling, 400, next).await;
            push_pair(
                &mut rows,
                conns,
                "POST /seats/allocate, refused (no write)",
                ceiling,
                refused,
            );
        }

        // Role enforcement's cost (issue 5: within 10%): the same allocate
        // burst against a second server with `enforce_roles = false`,
        // interleaved slice by slice with the enforcing one.
        if let Some(open) = &open {
            let open_school = common::setup(open.addr, "Open District").await;
            let conns = 64;
            let window = (slice + WARMUP).as_secs_f64() * rounds as f64;
            let need = (best_rate * window * 1.5) as usize + 10_000;
            seats.ensure(addr, school, need).await;
            let mut open_seats = Seats {
                free: Vec::new(),
                bought: 0,
                buying: Duration::ZERO,
            };
            open_seats.ensure(open.addr, open_school, need).await;
            let mut totals = [Total::default(), Total::default()];
            let lists = [Arc::new(std::mem::take(&mut seats.free)), Arc::new(open_seats.free)];
            let cursors = [Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0))];
            for round in 0..rounds {
                for part in order(round) {
                    let p = part as usize;
                    let target = if p == 0 { addr } else { open.addr };
                    let (list, cursor, base) = (Arc::clone(&lists[p]), Arc::clone(&cursors[p]), learners_used);
                    let next = move |_: usize, _: u64| {
                        let i = cursor.fetch_add(1, Ordering::Relaxed);
                        let seat = *list.get(i)?;
                        Some(allocate_req(seat, &format!("roles-{p}-{:08}", base + i)))
                    };
                    let disk = disk_written();
                    let run = drive(target, conns, WARMUP, slice, 200, next).await;
                    totals[p].add(run, disk_written() - disk);
                }
            }
            let used = cursors[0].load(Ordering::Relaxed).min(lists[0].len());
            allocated += totals[0].run.all_ok;
            seats.free = lists[0][used..].to_vec();
            let [enforced, open_total] = totals.map(Total::finish);
            let open_rate = open_total.run.rate();
            rows.push(Row {
                endpoint: "POST /seats/allocate, roles not enforced".into(),
                conns,
                total: open_total,
                ceiling: None,
            });
            // Here "of ceiling" is enforced ÷ not enforced.
            rows.push(Row {
                endpoint: "POST /seats/allocate, roles enforced (of: not enforced)".into(),
                conns,
                total: enforced,
                ceiling: Some(open_rate),
            });
        }

        // Idempotency-Key's cost (issue 14: within 15%): allocations with a
        // fresh key each, interleaved slice by slice with allocations without
        // one, on the same server and school; "of" is keyed ÷ plain.
        if phase("keyed") {
            let conns = 64;
            let window = (slice + WARMUP).as_secs_f64() * rounds as f64;
            seats
                .ensure(addr, school, (best_rate * window * 2.5) as usize + 20_000)
                .await;
            let list = Arc::new(std::mem::take(&mut seats.free));
            let cursor = Arc::new(AtomicUsize::new(0));
            let mut totals = [Total::default(), Total::default()];
            for round in 0..rounds {
                for part in order(round) {
                    let p = part as usize;
                    let (list, cursor, base) = (Arc::clone(&list), Arc::clone(&cursor), learners_used);
                    let next = move |_: usize, _: u64| {
                        let i = cursor.fetch_add(1, Ordering::Relaxed);
                        let seat = *list.get(i)?;
                        let req = allocate_req(seat, &format!("keyed-{p}-{:08}", base + i));
                        Some(if p == 0 { req.keyed(format!("key-{seat}")) } else { req })
                    };
                    let disk = disk_written();
                    let run = drive(addr, conns, WARMUP, slice, 200, next).await;
                    totals[p].add(run, disk_written() - disk);
                }
            }
            let used = cursor.load(Ordering::Relaxed).min(list.len());
            if used >= list.len() {
                eprintln!("warning: keyed allocate ran out of seats");
            }
            allocated += totals[0].run.all_ok + totals[1].run.all_ok;
            seats.free = list[used..].to_vec();
            let [keyed, plain] = totals.map(Total::finish);
            let plain_rate = plain.run.rate();
            rows.push(Row {
                endpoint: "POST /seats/allocate, no Idempotency-Key".into(),
                conns,
                total: plain,
                ceiling: None,
            });
            rows.push(Row {
                endpoint: "POST /seats/allocate, Idempotency-Key (of: no key)".into(),
                conns,
                total: keyed,
                ceiling: Some(plain_rate),
            });
        }

        // Assign (the server picks the lowest free seat) at 64 connections,
        // in a school of its own so it takes none of the seats listed above;
        // "of ceiling" as for allocate, so the two compare through it.
        let mut assigned_elsewhere = None;
        if phase("assign") {
            let conns = 64;
            let assign_school = common::setup(addr, "Assign District").await;
            let window = (slice + WARMUP).as_secs_f64() * rounds as f64;
            let mut pool = Seats {
                free: Vec::new(),
                bought: 0,
                buying: Duration::ZERO,
            };
            pool.ensure(addr, assign_school, (best_rate * window * 1.5) as usize + 10_000)
                .await;
            let available = pool.free.len();
            let cursor = Arc::new(AtomicUsize::new(0));
            let next = || {
                let cursor = Arc::clone(&cursor);
                move |_: usize, _: u64| {
                    let i = cursor.fetch_add(1, Ordering::Relaxed);
                    (i < available).then(|| assign_req(assign_school, &format!("assign-{i:08}")))
                }
            };
            let (ceiling, assign, _) = interleaved(addr, conns, rounds, slice, no_ceiling, 201, next).await;
            assigned_elsewhere = Some((assign_school, assign.run.all_ok));
            push_pair(&mut rows, conns, "POST /seats/assign", ceiling, assign);
        }
        if let Some((assign_school, acked)) = assigned_elsewhere {
            let body = common::call(addr, summary_req(assign_school), 200).await;
            let summary: serde_json::Value = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("summary: {e}"));
            assert_eq!(summary["assigned_seats"].as_u64(), Some(acked), "assign counters");
        }

        // Never wrong: the counters must equal the allocations acknowledged.
        let body = common::call(addr, summary_req(school), 200).await;
        let summary: serde_json::Value = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("summary: {e}"));
        let assigned = summary["assigned_seats"].as_u64().unwrap_or(u64::MAX);
        (assigned, allocated, seats.bought, seats.buying, flush_rows)
    });
    let total = started.elapsed();
    drop(client);
    drop(server);
    drop(open);

    let table_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let run = &r.total.run;
            vec![
                r.endpoint.clone(),
                r.conns.to_string(),
                f0(run.rate()),
                f2(run.pct_ms(0.50)),
                f2(run.pct_ms(0.99)),
                f2(run.pct_ms(0.999)),
                f2(run.max_ms()),
                run.errors.to_string(),
                r.ceiling.map_or("-".to_string(), |c| pct(run.rate() / c)),
                f1(run.cpu_us_per_req()),
                f2(run.cores_busy()),
                f0(r.total.disk as f64 / run.all_ok.max(1) as f64),
            ]
        })
        .collect();
    println!(
        "\nhttp_burst: {} cores shared by server and client; client runtime {} workers, one keep-alive \
         HTTP/1.1 connection per task; per connection count {} rounds of (/health slice, endpoint slice), \
         {} ms measured per slice after {} ms warm-up",
        common::cores(),
        client_threads,
        rounds,
        slice.as_millis(),
        WARMUP.as_millis()
    );
    if let Some(what_if) = &what_if {
        println!("WHAT-IF RUN, TS_WHAT_IF={what_if}: allocations were answered before they were durable");
    }
    table(
        "Throughput and latency (of ceiling = req/s ÷ the /health rate measured interleaved with it)",
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
            "CPU µs/req",
            "cores busy",
            "disk B/req",
        ],
        &table_rows,
    );
    if !flush_rows.is_empty() {
        table(
            "Group commit during the allocate slices (from /metrics; per second of slice incl. warm-up)",
            &["conns", "flushes/s", "writes/flush", "mean flush ms", "time flushing"],
            &flush_rows,
        );
        if what_if.is_some() {
            println!("(what-if run: each \"flush\" above made nothing durable: no sled flush, no fsync)");
        }
    }
    for r in rows.iter().filter(|r| !r.total.run.error_samples.is_empty()) {
        println!(
            "errors at {} × {}: {:?}",
            r.endpoint, r.conns, r.total.run.error_samples
        );
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

/// `rounds` rounds of one `/health` slice (unless `no_ceiling`) and one
/// slice of the requests `next()` makes, in alternating order, each
/// expecting `expect`: (the ceiling, the endpoint, the group commit's work
/// during the endpoint's slices, read from `/metrics` outside them).
async fn interleaved<F>(
    addr: SocketAddr,
    conns: usize,
    rounds: usize,
    slice: Duration,
    no_ceiling: bool,
    expect: u16,
    next: impl Fn() -> F,
) -> (Total, Total, Flushes)
where
    F: Fn(usize, u64) -> Option<Req> + Send + Sync + 'static,
{
    let health = |_: usize, _: u64| Some(Req::get("/health"));
    let (mut ceiling, mut measured, mut flushes) = (Total::default(), Total::default(), Flushes::default());
    for round in 0..rounds {
        for part in order(round) {
            let disk = disk_written();
            if part == 0 {
                if !no_ceiling {
                    let run = drive(addr, conns, WARMUP, slice, 200, health).await;
                    ceiling.add(run, disk_written() - disk);
                }
            } else {
                let before = Flushes::read(addr).await;
                let run = drive(addr, conns, WARMUP, slice, expect, next()).await;
                measured.add(run, disk_written() - disk);
                flushes.add(Flushes::read(addr).await.since(before));
            }
        }
    }
    (ceiling, measured, flushes)
}

/// Slice order in a round: `/health` first in even rounds, last in odd ones.
fn order(round: usize) -> [u8; 2] {
    if round.is_multiple_of(2) {
        [0, 1]
    } else {
        [1, 0]
    }
}

fn push_pair(rows: &mut Vec<Row>, conns: usize, endpoint: &str, ceiling: Total, measured: Total) {
    let ceiling = ceiling.finish();
    let rate = (ceiling.run.ok > 0).then(|| ceiling.run.rate());
    if rate.is_some() {
        rows.push(Row {
            endpoint: format!(
                "GET /health (with {})",
                endpoint.trim_start_matches("GET ").trim_start_matches("POST ")
            ),
            conns,
            total: ceiling,
            ceiling: None,
        });
    }
    rows.push(Row {
        endpoint: endpoint.to_string(),
        conns,
        total: measured.finish(),
        ceiling: rate,
    });
}
