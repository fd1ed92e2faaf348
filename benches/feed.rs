//! The change feed's cost and the standby's takeover (issue 18, "Bench"),
//! against a `nats-server` the bench starts itself (JetStream, a temporary
//! store, 127.0.0.1; with `BENCH_NATS=cluster` three servers routed as a
//! JetStream cluster and the streams at R3, as the replication tests start
//! them). Without nats-server the bench says so in one line and stops;
//! `TENANT_TEST_NATS_SERVER` names another binary.
//!
//! `cargo bench --bench feed`
//!
//! 1. Allocate at 64 connections against three servers in one run: the
//!    feed off (no `[replication]`), `mode = "async"` and `mode = "sync"`
//!    (the feed alone, no leadership; each its own stream and subjects on
//!    the same NATS). As in `http_burst` every request is a different seat
//!    and learner of one school, on keep-alive connections. The servers run
//!    in-process (the library's App, as `http_burst` does: each on its own
//!    runtime with one worker per core), so all three and the load client
//!    share the process and the machine alike; nats-server is a child
//!    process, and its CPU time is read from /proc per slice. The three are
//!    driven in BENCH_ROUNDS rounds of one slice each, the order rotating
//!    each round (on this shared VM the rate of the same request drifts by
//!    tens of percent within a minute; interleaving puts all three under the
//!    same conditions; the default of 6 rounds puts each server in each
//!    position twice). After a feed slice the bench waits until the outbox
//!    is empty before the next slice starts, so that no server's slice pays
//!    for another's publishing; the depth left at the slice's end and the
//!    time it took to drain are reported (a feed that does not drain within
//!    30 s is reported STUCK, and that server's later slices are skipped).
//!    Ratios are of the totals over all slices; percentiles are over every
//!    request of all slices.
//! 2. Feed lag under that load. The publish lag (a change's commit to
//!    JetStream's acknowledgment) is the service's own
//!    `tenant_feed_publish_lag_seconds` histogram, read from `/metrics` around
//!    the slices of part 1 (percentiles interpolated within its buckets, as
//!    Prometheus does). The end-to-end lag is what a consumer sees: after
//!    part 1, BENCH_LAG_ROUNDS more rounds of one async and one sync slice,
//!    each with an ordered JetStream consumer on that server's stream in
//!    this process, recording for every seat change the time it arrived
//!    minus the change's `at` (the same clock). The consumers are kept out of
//!    part 1 because parsing the messages costs CPU the feed-off server would
//!    not pay.
//! 3. Failover: a primary and a standby (`leadership = true`, sync mode
//!    unless BENCH_FAILOVER_MODE=async) as child processes of the release
//!    binary `cargo bench` built, each with its own data dir. 16 connections
//!    allocate on the primary; after 1 s it is killed (SIGKILL) and the
//!    connections turn to the standby, each retrying a refused allocation
//!    5 ms later. The takeover time is from the kill to the standby's first
//!    200, also as a multiple of the lease TTL (BENCH_LEASE_TTL_MS, default
//!    the config's). The killed one is then restarted on its data dir (it
//!    comes back as a standby) and, once it holds the new primary's latest
//!    write, the roles swap for the next of BENCH_FAILOVERS rounds (default
//!    3). Each round also checks that the new primary holds at least as many
//!    allocations as were acknowledged in all rounds so far.
//!
//! Environment: BENCH_SLICE_MS (measured ms per slice, default 1000),
//! BENCH_ROUNDS (default 6), BENCH_LAG_ROUNDS (default 2), BENCH_FAILOVERS
//! (default 3; 0 skips part 3), BENCH_LEASE_TTL_MS, BENCH_FAILOVER_MODE,
//! BENCH_CLIENT_THREADS (client runtime workers, default 2), BENCH_NATS;
//! RUST_LOG shows the in-process servers' log on stderr.

mod common;
#[allow(dead_code)]
#[path = "../tests/replication/harness.rs"]
mod harness;
#[path = "../tests/support/optional.rs"]
mod optional;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{pull::OrderedConfig, DeliverPolicy};
use futures_util::StreamExt;
use serde::Deserialize;
use tenant_service::config::{FeedMode, ReplicationSettings};
use tenant_service::domain::Timestamp;

use common::{allocate_req, f0, f1, f2, pct, summary_req, table, Conn, Req, Run, Server};
use harness::{free_port, Nats};

const CONNS: usize = 64;
const WARMUP: Duration = Duration::from_millis(200);
/// Connections allocating during a failover round.
const FAILOVER_CONNS: usize = 16;
/// A refused (or cut) allocation is retried after this.
const RETRY: Duration = Duration::from_millis(5);
/// How long the outbox may take to drain after a slice before the feed is
/// reported stuck.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);
const BLOCK: u64 = 100_000;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    static SAID: Once = Once::new();
    let Some(nats_bin) = optional::find(
        "TENANT_TEST_NATS_SERVER",
        &["/usr/sbin/nats-server", "/usr/bin/nats-server"],
        &SAID,
        |path| {
            format!(
                "feed bench NOT run: no nats-server at {path} (install it with `apt-get install -y nats-server`, \
                 or name one with TENANT_TEST_NATS_SERVER)"
            )
        },
    ) else {
        return;
    };
    let cluster = std::env::var("BENCH_NATS").is_ok_and(|v| v == "cluster");
    let slice = Duration::from_millis(env_num("BENCH_SLICE_MS", 1000));
    let rounds = env_num("BENCH_ROUNDS", 6) as usize;
    let lag_rounds = env_num("BENCH_LAG_ROUNDS", 2) as usize;
    let failovers = env_num("BENCH_FAILOVERS", 3) as usize;
    let ttl_ms = env_num("BENCH_LEASE_TTL_MS", ReplicationSettings::default().lease_ttl_ms);
    let failover_mode = match std::env::var("BENCH_FAILOVER_MODE").as_deref() {
        Ok("async") => FeedMode::Async,
        _ => FeedMode::Sync,
    };
    let client_threads = env_num("BENCH_CLIENT_THREADS", 2) as usize;
    // The in-process servers' log, when asked for (e.g.
    // RUST_LOG=warn,tenant_service::replication=debug), on stderr.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }

    let started = Instant::now();
    let nats = if cluster {
        Nats::cluster(&nats_bin)
    } else {
        vec![Nats::single(&nats_bin)]
    };
    let urls: Vec<String> = nats.iter().map(Nats::url).collect();
    let pids: Vec<u32> = nats.iter().filter_map(Nats::pid).collect();
    let replicas = nats.len();

    let client = common::runtime("client", client_threads);
    let compared = compare(&client, &urls, replicas, &pids, slice, rounds, lag_rounds);
    let failover =
        (failovers > 0).then(|| client.block_on(failover_rounds(&urls, replicas, ttl_ms, failover_mode, failovers)));
    let total = started.elapsed();
    drop(client);
    drop(nats);

    println!(
        "\nfeed: {} cores shared by the servers, the load client and nats-server ({}); client runtime {} \
         workers; {} rounds of one slice per server (order rotating), {} ms measured per slice after {} ms \
         warm-up, {} connections",
        common::cores(),
        if cluster {
            "three servers as a JetStream cluster, streams R3"
        } else {
            "one server, streams R1"
        },
        client_threads,
        rounds,
        slice.as_millis(),
        WARMUP.as_millis(),
        CONNS
    );
    compared.print();
    if let Some(f) = &failover {
        f.print(ttl_ms, failover_mode);
    }
    println!("\nwhole bench: {:.1} s", total.as_secs_f64());
}

// ---- 1 and 2: the feed off, async and sync -------------------------------------

/// One of the three servers compared, with everything measured on it.
struct Subject {
    name: &'static str,
    mode: Option<FeedMode>,
    /// Its `[replication]` (none with the feed off).
    feed: Option<ReplicationSettings>,
    server: Server,
    school: u64,
    pool: Pool,
    /// Part 1's slices.
    run: Run,
    /// nats-server's CPU time over part 1's slices (warm-up and drain included).
    nats_cpu: Duration,
    /// Allocations acknowledged over the same spans (warm-up included).
    all_ok: u64,
    /// The publish-lag histogram's growth over part 1.
    publish_lag: Buckets,
    /// The outbox's depth at each slice's end, and the time to drain it.
    depth_at_end: Vec<f64>,
    drains: Vec<Duration>,
    stuck: bool,
    /// Part 2: the slices with a consumer attached, and what it saw.
    lag_run: Run,
    consumer_lag_us: Arc<Mutex<Vec<i64>>>,
    /// The school's assigned seats at the end, by its summary.
    assigned: Option<u64>,
}

struct Compared {
    subjects: Vec<Subject>,
}

fn settings_for(urls: &[String], replicas: usize, mode: FeedMode, name: &str) -> ReplicationSettings {
    ReplicationSettings {
        nats_urls: urls.to_vec(),
        mode,
        // Each server its own stream: tenant ids repeat between servers, and
        // the publisher expects to be the only writer of its subjects.
        stream: format!("BENCH_{}", name.to_uppercase()),
        subject_prefix: format!("bench.{name}"),
        replicas,
        node_id: format!("bench-{name}"),
        ..ReplicationSettings::default()
    }
}

fn compare(
    client: &tokio::runtime::Runtime,
    urls: &[String],
    replicas: usize,
    nats_pids: &[u32],
    slice: Duration,
    rounds: usize,
    lag_rounds: usize,
) -> Compared {
    let modes = [
        ("off", None),
        ("async", Some(FeedMode::Async)),
        ("sync", Some(FeedMode::Sync)),
    ];
    // Started here, outside the client's runtime (opening blocks).
    let mut subjects: Vec<Subject> = modes
        .into_iter()
        .map(|(name, mode)| {
            let feed = mode.map(|m| settings_for(urls, replicas, m, name));
            let server = Server::start_with(|s| s.replication = feed.clone());
            Subject {
                name,
                mode,
                feed,
                server,
                school: 0,
                pool: Pool::default(),
                run: Run::default(),
                nats_cpu: Duration::ZERO,
                all_ok: 0,
                publish_lag: Buckets::default(),
                depth_at_end: Vec::new(),
                drains: Vec::new(),
                stuck: false,
                lag_run: Run::default(),
                consumer_lag_us: Arc::new(Mutex::new(Vec::new())),
                assigned: None,
            }
        })
        .collect();

    client.block_on(async {
        for s in &mut subjects {
            let addr = s.server.addr;
            // Sync mode takes no write before it reaches JetStream.
            takes_writes(addr, Duration::from_secs(60))
                .await
                .unwrap_or_else(|| panic!("the {} server took no write within 60 s", s.name));
            s.school = common::setup(addr, &format!("Feed {} District", s.name)).await;
        }
        // Seats for part 1, bought outside any measured window with a wide
        // margin (the rate guessed high).
        let window = (slice + WARMUP).as_secs_f64() * rounds as f64;
        let need = (15_000.0 * window * 1.5) as usize + 10_000;
        for s in &mut subjects {
            s.pool.ensure(s.server.addr, s.school, need).await;
            s.stuck |= drain(s.server.addr).await.1.is_none();
        }

        for round in 0..rounds {
            for i in 0..subjects.len() {
                let s = &mut subjects[(round + i) % 3];
                // A stuck feed stalls every later slice (sync mode answers
                // nothing): reported, not measured again.
                if s.stuck {
                    continue;
                }
                let addr = s.server.addr;
                let lag_before = Buckets::read(addr).await;
                let cpu_before = cpu_of(nats_pids);
                let run = common::drive(addr, CONNS, WARMUP, slice, 200, s.pool.next(s.name)).await;
                s.all_ok += run.all_ok;
                if s.feed.is_some() {
                    let (depth, took) = drain(addr).await;
                    s.depth_at_end.push(depth);
                    match took {
                        Some(took) => s.drains.push(took),
                        None => s.stuck = true,
                    }
                    s.publish_lag.add(&Buckets::read(addr).await.since(&lag_before));
                }
                s.nats_cpu += cpu_of(nats_pids).saturating_sub(cpu_before);
                eprintln!(
                    "round {round} {}: {:.0} req/s, {} errors, outbox {} at the end, drained in {}",
                    s.name,
                    run.rate(),
                    run.errors,
                    s.depth_at_end.last().map_or("-".into(), |d| f0(*d)),
                    if s.feed.is_none() {
                        "-".into()
                    } else if s.stuck {
                        "STUCK".into()
                    } else {
                        s.drains.last().map_or("-".into(), |d| format!("{} ms", d.as_millis()))
                    }
                );
                if !run.error_samples.is_empty() {
                    eprintln!("  errors: {:?}", run.error_samples);
                }
                s.run.absorb(run);
            }
        }
        for s in &mut subjects {
            s.run.latencies.sort_unstable();
            s.pool.settle();
        }

        // Part 2: the consumers, in rounds of their own.
        let best = subjects.iter().map(|s| s.run.rate()).fold(0.0, f64::max);
        let need = (best * (slice + WARMUP).as_secs_f64() * lag_rounds as f64 * 1.5) as usize + 10_000;
        let mut consumers = Vec::new();
        for s in subjects.iter_mut().filter(|s| s.feed.is_some() && !s.stuck) {
            s.pool.ensure(s.server.addr, s.school, need).await;
            s.stuck |= drain(s.server.addr).await.1.is_none();
            if let Some(feed) = &s.feed {
                consumers.push(consume(&urls[0], feed, Arc::clone(&s.consumer_lag_us)).await);
            }
        }
        for round in 0..lag_rounds {
            let fed: Vec<usize> = if round % 2 == 0 { vec![1, 2] } else { vec![2, 1] };
            for i in fed {
                let s = &mut subjects[i];
                if s.stuck {
                    continue;
                }
                let addr = s.server.addr;
                let run = common::drive(addr, CONNS, WARMUP, slice, 200, s.pool.next(s.name)).await;
                s.stuck |= drain(addr).await.1.is_none();
                s.lag_run.absorb(run);
            }
        }
        // The last changes reach the consumers after the outbox drained.
        tokio::time::sleep(Duration::from_millis(300)).await;
        for c in consumers {
            c.abort();
        }
        for s in &mut subjects {
            s.lag_run.latencies.sort_unstable();
            s.pool.settle();
            // Never wrong: the counters equal the allocations acknowledged.
            // (A stuck sync server answers this read 503: it waits for the
            // feed too.)
            s.assigned = summary(s.server.addr, s.school).await;
        }
    });
    Compared { subjects }
}

impl Compared {
    fn print(&self) {
        let off = self
            .subjects
            .iter()
            .find(|s| s.mode.is_none())
            .map_or(f64::NAN, |s| s.run.rate());
        let rows: Vec<Vec<String>> = self
            .subjects
            .iter()
            .map(|s| {
                let run = &s.run;
                let (depth, drain) = if s.feed.is_some() {
                    let depth = s.depth_at_end.iter().copied().fold(0.0, f64::max);
                    let drain = s.drains.iter().max().map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0);
                    (f0(depth), if s.stuck { "STUCK".into() } else { f0(drain) })
                } else {
                    ("-".into(), "-".into())
                };
                vec![
                    label(s.mode),
                    f0(run.rate()),
                    pct(run.rate() / off),
                    f2(run.pct_ms(0.50)),
                    f2(run.pct_ms(0.99)),
                    f2(run.pct_ms(0.999)),
                    run.errors.to_string(),
                    f1(run.cpu_us_per_req()),
                    f1(s.nats_cpu.as_secs_f64() * 1e6 / s.all_ok.max(1) as f64),
                    depth,
                    drain,
                ]
            })
            .collect();
        table(
            "1. POST /seats/allocate at 64 connections (of feed off = req/s ÷ the feed-off server's, same run)",
            &[
                "server",
                "req/s",
                "of feed off",
                "p50 ms",
                "p99 ms",
                "p99.9 ms",
                "errors",
                "CPU µs/req",
                "nats-server CPU µs/alloc",
                "outbox at slice end (max)",
                "drain ms (max)",
            ],
            &rows,
        );
        println!(
            "(CPU µs/req: this process, servers and client, in the measured windows; nats-server's over each \
             slice with its warm-up and drain, per allocation acknowledged)"
        );

        let rows: Vec<Vec<String>> = self
            .subjects
            .iter()
            .filter(|s| s.feed.is_some())
            .map(|s| {
                let mut lags = s.consumer_lag_us.lock().unwrap_or_else(|e| e.into_inner()).clone();
                lags.sort_unstable();
                let at = |q: f64| {
                    if lags.is_empty() {
                        return f64::NAN;
                    }
                    let i = ((lags.len() as f64 * q).ceil() as usize).clamp(1, lags.len()) - 1;
                    lags[i] as f64 / 1000.0
                };
                vec![
                    label(s.mode),
                    f2(s.publish_lag.quantile(0.50) * 1000.0),
                    f2(s.publish_lag.quantile(0.99) * 1000.0),
                    f0(s.publish_lag.count()),
                    f2(at(0.50)),
                    f2(at(0.99)),
                    f2(at(1.0)),
                    lags.len().to_string(),
                    f0(s.lag_run.rate()),
                    f2(s.lag_run.pct_ms(0.99)),
                ]
            })
            .collect();
        table(
            "2. Feed lag under that load: publish (commit → JetStream ack, the service's histogram, part 1's \
             slices) and end to end (commit → a consumer's receipt, slices of their own)",
            &[
                "server",
                "publish p50 ms",
                "publish p99 ms",
                "changes",
                "consumer p50 ms",
                "consumer p99 ms",
                "consumer max ms",
                "changes seen",
                "req/s with consumer",
                "p99 ms with consumer",
            ],
            &rows,
        );
        for s in self.subjects.iter().filter(|s| !s.run.error_samples.is_empty()) {
            println!("errors on the {} server: {:?}", s.name, s.run.error_samples);
        }
        for s in self.subjects.iter().filter(|s| s.stuck) {
            println!(
                "STUCK: the {} server's outbox did not drain within {} s (after {} measured slices; its later slices were \
                 skipped)",
                s.name,
                DRAIN_LIMIT.as_secs(),
                s.depth_at_end.len()
            );
        }
        for s in &self.subjects {
            let acked = s.run.all_ok + s.lag_run.all_ok;
            println!(
                "{}: {acked} allocations acknowledged, the summary counts {} assigned ({}); {} seats bought \
                 outside the measured windows",
                label(s.mode),
                s.assigned.map_or("-".into(), |n| n.to_string()),
                match s.assigned {
                    Some(n) if n == acked => "exact",
                    Some(_) => "MISMATCH",
                    None => "the summary was not answered",
                },
                s.pool.bought
            );
        }
    }
}

fn label(mode: Option<FeedMode>) -> String {
    match mode {
        None => "feed off".into(),
        Some(FeedMode::Async) => "feed, mode = \"async\"".into(),
        Some(FeedMode::Sync) => "feed, mode = \"sync\"".into(),
    }
}

/// Waits until the server's outbox is empty: (its depth when called, how
/// long it took; `None` when it did not drain within `DRAIN_LIMIT`).
async fn drain(addr: SocketAddr) -> (f64, Option<Duration>) {
    let started = Instant::now();
    let first = metric(addr, "tenant_feed_outbox_depth").await;
    let mut depth = first;
    while depth > 0.0 {
        if started.elapsed() > DRAIN_LIMIT {
            for line in metrics_text(addr)
                .await
                .lines()
                .filter(|l| l.starts_with("tenant_feed") && !l.contains("bucket"))
            {
                eprintln!("  stuck: {line}");
            }
            return (first, None);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        depth = metric(addr, "tenant_feed_outbox_depth").await;
    }
    (first, Some(started.elapsed()))
}

/// The school's assigned seats by its summary; `None` if it did not answer 200.
async fn summary(addr: SocketAddr, school: u64) -> Option<u64> {
    let mut conn = Conn::open(addr).await.ok()?;
    let (status, body) = conn.call(summary_req(school)).await.ok()?;
    let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
    (status.as_u16() == 200).then(|| v["assigned_seats"].as_u64()).flatten()
}

async fn metrics_text(addr: SocketAddr) -> String {
    String::from_utf8_lossy(&common::call(addr, Req::get("/metrics"), 200).await).into_owned()
}

async fn metric(addr: SocketAddr, name: &str) -> f64 {
    metrics_text(addr)
        .await
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

/// A Prometheus histogram's cumulative bucket counts (upper bound, count).
#[derive(Default, Clone)]
struct Buckets(Vec<(f64, f64)>);

impl Buckets {
    const NAME: &'static str = "tenant_feed_publish_lag_seconds_bucket{le=\"";

    async fn read(addr: SocketAddr) -> Buckets {
        let text = metrics_text(addr).await;
        Buckets(
            text.lines()
                .filter_map(|l| {
                    let rest = l.strip_prefix(Self::NAME)?;
                    let (le, count) = rest.split_once("\"} ")?;
                    let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
                    Some((le, count.trim().parse().ok()?))
                })
                .collect(),
        )
    }

    fn since(&self, before: &Buckets) -> Buckets {
        Buckets(
            self.0
                .iter()
                .map(|&(le, n)| {
                    let was = before.0.iter().find(|(l, _)| *l == le).map_or(0.0, |(_, c)| *c);
                    (le, n - was)
                })
                .collect(),
        )
    }

    fn add(&mut self, other: &Buckets) {
        if self.0.is_empty() {
            self.0 = other.0.clone();
            return;
        }
        for (mine, theirs) in self.0.iter_mut().zip(&other.0) {
            mine.1 += theirs.1;
        }
    }

    fn count(&self) -> f64 {
        self.0.last().map_or(0.0, |(_, n)| *n)
    }

    /// The `q` quantile in seconds, interpolated linearly within its bucket
    /// (as Prometheus's histogram_quantile); in the last, unbounded bucket,
    /// the last finite bound.
    fn quantile(&self, q: f64) -> f64 {
        let total = self.count();
        if total == 0.0 {
            return f64::NAN;
        }
        let rank = q * total;
        let (mut lower, mut below) = (0.0, 0.0);
        for &(le, n) in &self.0 {
            if n >= rank {
                if le.is_infinite() {
                    return lower;
                }
                return lower + (le - lower) * (rank - below) / (n - below).max(f64::MIN_POSITIVE);
            }
            (lower, below) = (le, n);
        }
        lower
    }
}

/// The summed user and system CPU time of these processes (from /proc).
fn cpu_of(pids: &[u32]) -> Duration {
    // SAFETY: sysconf reads a constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let secs: f64 = pids
        .iter()
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // Fields after the command name (which may hold spaces): utime and
            // stime are the 14th and 15th of the line, 12th and 13th after it.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) / ticks)
        })
        .sum();
    Duration::from_secs_f64(secs)
}

/// A feed message, as far as the lag needs it.
#[derive(Deserialize)]
struct FeedMessage {
    changes: Vec<FeedChange>,
}

#[derive(Deserialize)]
struct FeedChange {
    kind: String,
    at: String,
}

/// An ordered consumer on the server's stream from now on, recording for
/// each seat change its arrival minus its commit time (µs).
async fn consume(url: &str, feed: &ReplicationSettings, lags: Arc<Mutex<Vec<i64>>>) -> tokio::task::JoinHandle<()> {
    let client = async_nats::connect(url)
        .await
        .unwrap_or_else(|e| panic!("consumer: connect: {e}"));
    let js = async_nats::jetstream::new(client);
    let stream = js
        .get_stream(&feed.stream)
        .await
        .unwrap_or_else(|e| panic!("consumer: stream {}: {e}", feed.stream));
    let consumer = stream
        .create_consumer(OrderedConfig {
            deliver_policy: DeliverPolicy::New,
            filter_subject: format!("{}.*.*", feed.subject_prefix),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("consumer: {e}"));
    let mut messages = consumer
        .messages()
        .await
        .unwrap_or_else(|e| panic!("consumer: messages: {e}"));
    tokio::spawn(async move {
        while let Some(Ok(m)) = messages.next().await {
            let now = Timestamp::now().micros();
            let Ok(msg) = serde_json::from_slice::<FeedMessage>(&m.payload) else {
                continue;
            };
            let mut lags = lags.lock().unwrap_or_else(|e| e.into_inner());
            for c in msg.changes.iter().filter(|c| c.kind == "seat") {
                if let Ok(at) = Timestamp::parse_rfc3339("at", &c.at) {
                    lags.push(now - at.micros());
                }
            }
        }
    })
}

/// Seats bought but not yet handed out, and the learners used so far.
#[derive(Default)]
struct Pool {
    list: Arc<Vec<u64>>,
    cursor: Arc<AtomicUsize>,
    /// Learners named before `list` was last replaced.
    used: usize,
    bought: u64,
}

impl Pool {
    /// Buys blocks until at least `need` seats are left.
    async fn ensure(&mut self, addr: SocketAddr, school: u64, need: usize) {
        self.settle();
        let mut free = self.list[self.cursor.load(Ordering::Relaxed).min(self.list.len())..].to_vec();
        while free.len() < need {
            free.extend(common::purchase(addr, school, BLOCK).await);
            self.bought += BLOCK;
        }
        self.used += self.cursor.swap(0, Ordering::Relaxed).min(self.list.len());
        self.list = Arc::new(free);
    }

    fn settle(&self) {
        if self.cursor.load(Ordering::Relaxed) >= self.list.len() && !self.list.is_empty() {
            eprintln!("warning: a slice ran out of seats (its rate is understated)");
        }
    }

    /// The requests of one slice: each a fresh seat and learner.
    fn next(&self, tag: &'static str) -> impl Fn(usize, u64) -> Option<Req> + Send + Sync + 'static {
        let (list, cursor, base) = (Arc::clone(&self.list), Arc::clone(&self.cursor), self.used);
        move |_, _| {
            let i = cursor.fetch_add(1, Ordering::Relaxed);
            let seat = *list.get(i)?;
            Some(allocate_req(seat, &format!("{tag}-{:08}", base + i)))
        }
    }
}

/// Retries creating a district (as the platform admin) until one is
/// created: how long that took, or `None` after `within`.
async fn takes_writes(addr: SocketAddr, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        if let Ok(mut conn) = Conn::open(addr).await {
            let req = Req::post("/api/v1/district", r#"{"name":"Probe"}"#.into()).by(common::ROOT);
            if matches!(conn.call(req).await, Ok((status, _)) if status.as_u16() == 201) {
                return Some(started.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

// ---- 3: failover ---------------------------------------------------------------

/// The release binary as a child process, with its own data dir and config.
struct Instance {
    name: String,
    addr: SocketAddr,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Instance {
    fn start(name: &str, replication: &str) -> Instance {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        std::fs::write(dir.path().join("config.toml"), format!("[replication]\n{replication}"))
            .unwrap_or_else(|e| panic!("config: {e}"));
        let mut i = Instance {
            name: name.to_owned(),
            addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
            dir,
            child: None,
        };
        i.spawn();
        i
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("log.txt")
    }

    /// Starts the binary (again) on the same port, data dir and config.
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap_or_else(|e| panic!("log: {e}"));
        let err = log.try_clone().unwrap_or_else(|e| panic!("log: {e}"));
        let bin = env!("CARGO_BIN_EXE_tenant-service");
        let child = Command::new(bin)
            .arg("--listen")
            .arg(self.addr.to_string())
            .arg("--config")
            .arg(self.dir.path().join("config.toml"))
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .env("RUST_LOG", "warn,tenant_service::replication=info")
            .env("NO_COLOR", "1")
            .env("TENANT_PLATFORM_ADMINS", common::ROOT)
            .env_remove("TENANT_LISTEN")
            .env_remove("TENANT_DATA_DIR")
            .env_remove("TENANT_ENFORCE_ROLES")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {bin}: {e}"));
        self.child = Some(child);
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The end of its log, for a failure's message.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn fail(&self, what: &str) -> ! {
        panic!(
            "{what} ({}, log {}):\n{}",
            self.name,
            self.log_path().display(),
            self.log_tail()
        )
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill9();
    }
}

struct Takeover {
    killed: String,
    took: Duration,
    acked_before: u64,
    held: u64,
    acked_total: u64,
    /// The restarted former primary: from its start to holding the new primary's latest write.
    caught_up: Duration,
}

struct Failover {
    rounds: Vec<Takeover>,
    replicas: usize,
}

async fn failover_rounds(urls: &[String], replicas: usize, ttl_ms: u64, mode: FeedMode, rounds: usize) -> Failover {
    let config = |node: &str| {
        let urls = urls.iter().map(|u| format!("{u:?}")).collect::<Vec<_>>().join(", ");
        let mode = if mode == FeedMode::Sync { "sync" } else { "async" };
        format!(
            "nats_urls = [{urls}]\nmode = {mode:?}\nstream = \"BENCH_FAILOVER\"\nsubject_prefix = \"bench.failover\"\n\
             lease_bucket = \"BENCH_LEADER\"\nnode_id = {node:?}\nleadership = true\nreplicas = {replicas}\n\
             lease_ttl_ms = {ttl_ms}\n"
        )
    };
    let mut primary = Instance::start("a", &config("a"));
    if takes_writes(primary.addr, Duration::from_secs(60)).await.is_none() {
        primary.fail("the first instance took no write within 60 s");
    }
    let mut standby = Instance::start("b", &config("b"));
    let school = common::setup(primary.addr, "Failover District").await;
    let mut seats: Vec<u64> = Vec::new();
    let mut total_seats = 0;
    let acked = Arc::new(AtomicU64::new(0));
    let mut out = Vec::new();
    let mut learner_base = 0usize;
    for round in 0..rounds {
        // Enough seats for a second of load and the takeover's retries
        // (a refused seat is offered again, so those take none).
        if seats.len() < 60_000 {
            seats.extend(common::purchase(primary.addr, school, BLOCK).await);
            total_seats += BLOCK;
        }
        if !holds_total(standby.addr, school, total_seats, Duration::from_secs(60)).await {
            standby.fail("the standby did not follow the purchase within 60 s");
        }

        let list = Arc::new(std::mem::take(&mut seats));
        let cursor = Arc::new(AtomicUsize::new(0));
        let killed = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let first_ok: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
        let acked_before = Arc::new(AtomicU64::new(0));
        let (from, to) = (primary.addr, standby.addr);
        let tasks: Vec<_> = (0..FAILOVER_CONNS)
            .map(|_| {
                let (list, cursor, killed, stop, first_ok, acked, acked_before) = (
                    Arc::clone(&list),
                    Arc::clone(&cursor),
                    Arc::clone(&killed),
                    Arc::clone(&stop),
                    Arc::clone(&first_ok),
                    Arc::clone(&acked),
                    Arc::clone(&acked_before),
                );
                tokio::spawn(async move {
                    let mut conn: Option<(SocketAddr, Conn)> = None;
                    let mut seat = None;
                    while !stop.load(Ordering::Relaxed) {
                        let after_kill = killed.load(Ordering::Relaxed);
                        let target = if after_kill { to } else { from };
                        if conn.as_ref().is_none_or(|(a, _)| *a != target) {
                            conn = Conn::open(target).await.ok().map(|c| (target, c));
                        }
                        let Some((_, c)) = conn.as_mut() else {
                            tokio::time::sleep(RETRY).await;
                            continue;
                        };
                        let i = match seat {
                            Some(i) => i,
                            None => cursor.fetch_add(1, Ordering::Relaxed),
                        };
                        let Some(&id) = list.get(i) else { return };
                        seat = Some(i);
                        match c.call(allocate_req(id, &format!("f{}", learner_base + i))).await {
                            Ok((status, _)) if status.as_u16() == 200 => {
                                seat = None;
                                acked.fetch_add(1, Ordering::Relaxed);
                                if after_kill {
                                    let mut first = first_ok.lock().unwrap_or_else(|e| e.into_inner());
                                    first.get_or_insert_with(Instant::now);
                                } else {
                                    acked_before.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            // Refused, nothing written (a standby, or a fenced primary): the same seat again.
                            Ok(_) => tokio::time::sleep(RETRY).await,
                            // Cut: whether it was written is unknown; its seat is not offered again.
                            Err(_) => {
                                seat = None;
                                conn = None;
                                tokio::time::sleep(RETRY).await;
                            }
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(1)).await;
        killed.store(true, Ordering::Relaxed);
        let kill_at = Instant::now();
        primary.kill9();
        let limit = Duration::from_millis(ttl_ms) + Duration::from_secs(30);
        let took = loop {
            if let Some(first) = *first_ok.lock().unwrap_or_else(|e| e.into_inner()) {
                break first.duration_since(kill_at);
            }
            if kill_at.elapsed() > limit {
                standby.fail(&format!("no write acknowledged within {limit:?} of the primary's kill"));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            let _ = t.await;
        }
        let used = cursor.load(Ordering::Relaxed).min(list.len());
        learner_base += used;
        seats = list[used..].to_vec();
        let acked_total = acked.load(Ordering::Relaxed);
        let held = assigned(standby.addr, school).await;

        // The former primary comes back as a standby and catches up; then
        // the roles swap.
        let restarted = Instant::now();
        primary.spawn();
        let probe = seats.pop().unwrap_or_else(|| panic!("out of seats"));
        let body = common::call(standby.addr, allocate_req(probe, &format!("probe-{round}")), 200).await;
        drop(body);
        acked.fetch_add(1, Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if holds_seat(primary.addr, probe, &format!("probe-{round}")).await {
                break;
            }
            if Instant::now() > deadline {
                primary.fail("the restarted former primary did not catch up within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        out.push(Takeover {
            killed: primary.name.clone(),
            took,
            acked_before: acked_before.load(Ordering::Relaxed),
            held,
            acked_total,
            caught_up: restarted.elapsed(),
        });
        std::mem::swap(&mut primary, &mut standby);
    }
    Failover { rounds: out, replicas }
}

/// Whether the standby shows `total` seats in the school (polling until `within`).
async fn holds_total(addr: SocketAddr, school: u64, total: u64, within: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < within {
        if let Ok(mut conn) = Conn::open(addr).await {
            if let Ok((status, body)) = conn.call(summary_req(school)).await {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                if status.as_u16() == 200 && v["total_seats"].as_u64() == Some(total) {
                    return true;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

async fn assigned(addr: SocketAddr, school: u64) -> u64 {
    let body = common::call(addr, summary_req(school), 200).await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    v["assigned_seats"].as_u64().unwrap_or(0)
}

/// Whether the instance answers and shows `seat` held by `learner`.
async fn holds_seat(addr: SocketAddr, seat: u64, learner: &str) -> bool {
    let Ok(mut conn) = Conn::open(addr).await else {
        return false;
    };
    match conn.call(Req::get(format!("/api/v1/seats/{seat}"))).await {
        Ok((status, body)) if status.as_u16() == 200 => {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            v["learner_id"].as_str() == Some(learner)
        }
        _ => false,
    }
}

impl Failover {
    fn print(&self, ttl_ms: u64, mode: FeedMode) {
        let ttl = ttl_ms as f64;
        let rows: Vec<Vec<String>> = self
            .rounds
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let ms = r.took.as_secs_f64() * 1000.0;
                vec![
                    (i + 1).to_string(),
                    r.killed.clone(),
                    f0(ms),
                    format!("{}×", f2(ms / ttl)),
                    r.acked_before.to_string(),
                    format!(
                        "{} of {}{}",
                        r.held,
                        r.acked_total,
                        if r.held >= r.acked_total { "" } else { " (LOST)" }
                    ),
                    f0(r.caught_up.as_secs_f64() * 1000.0),
                ]
            })
            .collect();
        table(
            &format!(
                "3. Failover: kill -9 of the primary under {FAILOVER_CONNS} connections of allocations, {} mode, \
                 lease TTL {ttl_ms} ms, R{}",
                if mode == FeedMode::Sync { "sync" } else { "async" },
                self.replicas
            ),
            &[
                "round",
                "killed",
                "kill → first write on the standby ms",
                "× TTL",
                "acked in the 1 s before",
                "new primary holds (≥ acked so far)",
                "restart → caught up ms",
            ],
            &rows,
        );
        let mut took: Vec<f64> = self.rounds.iter().map(|r| r.took.as_secs_f64() * 1000.0).collect();
        took.sort_by(f64::total_cmp);
        if let Some(median) = took.get(took.len() / 2) {
            println!(
                "takeover median: {} ms = {}× the lease TTL ({} rounds)",
                f0(*median),
                f2(median / ttl),
                took.len()
            );
        }
    }
}
