//! Shared by the HTTP benches: the real server started in-process, a lean
//! keep-alive HTTP/1.1 client (hyper 0.14, one connection per task), a
//! fixed-time load driver with latency percentiles, and table printing.
//!
//! No tracing subscriber is installed, so the server's per-request log lines
//! cost a disabled-callsite check and print nothing.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Bytes;
use hyper::client::conn::SendRequest;
use hyper::{Body, Method, Request, StatusCode};
use serde::Deserialize;
use tenant_service::store::{Disk, Hooks};
use tenant_service::{App, Settings};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

/// The platform admin (the only one who may create districts) that sets up
/// the tenants; `USER` is the district admin the load runs as, so requests go
/// through the same role checks as a real district's.
pub const ROOT: &str = "bench_root";
pub const USER: &str = "bench_admin";

// ---- runtimes ----------------------------------------------------------------

/// A multi-thread runtime with `workers` threads (0: one per core, as main.rs).
pub fn runtime(name: &str, workers: usize) -> Runtime {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.enable_all().thread_name(name);
    if workers > 0 {
        b.worker_threads(workers);
    }
    b.build().unwrap_or_else(|e| panic!("runtime: {e}"))
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// CPU time (user + system) used so far by every thread of this process:
/// server, load client, sled's threads. Divided by the requests of a window,
/// it is what one request costs the machine, whatever thread paid for it.
pub fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

// ---- the server ----------------------------------------------------------------

/// The experiment `TS_WHAT_IF` names, if any (read here, by the bench: the
/// service itself has no such switch).
pub fn what_if() -> Option<String> {
    std::env::var("TS_WHAT_IF").ok().filter(|v| !v.is_empty())
}

/// What the in-process servers write through: the real disk, or with
/// `TS_WHAT_IF=no-flush` a disk whose flush makes nothing durable (sled's
/// inserts still happen; the group commit still batches and wakes the
/// waiters, at no cost of the disk). Answers then go out before the disk
/// has the write: a measurement of what durability costs, never a service.
fn what_if_disk() -> Arc<dyn Hooks> {
    struct NoFlush;
    impl Hooks for NoFlush {
        fn flush(&self, _real: &dyn Fn() -> std::io::Result<()>) -> std::io::Result<()> {
            Ok(())
        }
    }
    match what_if().as_deref() {
        None => Arc::new(Disk),
        Some("no-flush") => Arc::new(NoFlush),
        Some(other) => panic!("TS_WHAT_IF={other}: the one experiment is `no-flush`"),
    }
}

/// The real application (App::open + App::serve) on 127.0.0.1:0, on its own
/// runtime (one worker per core, like the binary), with a data dir of its own.
pub struct Server {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    /// Set when the server owns a temporary dir; removed on drop.
    _temp: Option<tempfile::TempDir>,
    runtime: Option<Runtime>,
    shutdown: Option<oneshot::Sender<()>>,
    done: Option<std::sync::mpsc::Receiver<()>>,
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(|_| {})
    }

    /// `start` with settings adjusted (e.g. roles not enforced).
    pub fn start_with(adjust: impl FnOnce(&mut Settings)) -> Server {
        let temp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let dir = temp.path().join("data");
        let mut s = Server::start_in_with(&dir, adjust);
        s._temp = Some(temp);
        s
    }

    pub fn start_in(data_dir: &Path) -> Server {
        Server::start_in_with(data_dir, |_| {})
    }

    fn start_in_with(data_dir: &Path, adjust: impl FnOnce(&mut Settings)) -> Server {
        let mut settings = Settings {
            data_dir: data_dir.to_path_buf(),
            ..Settings::default()
        };
        settings.auth.platform_admins = vec![ROOT.to_owned()];
        adjust(&mut settings);
        let rt = runtime("server", 0);
        let app = rt
            .block_on(async { App::open_with(&settings, what_if_disk()) })
            .unwrap_or_else(|e| panic!("open: {e}"));
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        std_listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("nonblocking: {e}"));
        let addr = std_listener.local_addr().unwrap_or_else(|e| panic!("addr: {e}"));
        let (tx, rx) = oneshot::channel::<()>();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        rt.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap_or_else(|e| panic!("listener: {e}"));
            app.serve(listener, async {
                let _ = rx.await;
            })
            .await
            .unwrap_or_else(|e| panic!("serve: {e}"));
            let _ = done_tx.send(());
        });
        Server {
            addr,
            data_dir: data_dir.to_path_buf(),
            _temp: None,
            runtime: Some(rt),
            shutdown: Some(tx),
            done: Some(done_rx),
        }
    }

    /// Graceful stop: in-flight requests finish, the store is flushed and closed.
    pub fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(done) = self.done.take() {
            let _ = done.recv_timeout(Duration::from_secs(60));
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---- the client ----------------------------------------------------------------

/// One keep-alive HTTP/1.1 connection.
pub struct Conn {
    send: SendRequest<Body>,
    host: String,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (send, conn) = hyper::client::conn::handshake(stream)
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn {
            send,
            host: addr.to_string(),
        })
    }

    /// Sends one request and reads the whole body.
    pub async fn call(&mut self, req: Req) -> Result<(StatusCode, Bytes), hyper::Error> {
        let (status, _, body) = self.call_timed(req).await?;
        Ok((status, body))
    }

    /// As `call`, also returning when the response head arrived.
    pub async fn call_timed(&mut self, req: Req) -> Result<(StatusCode, Instant, Bytes), hyper::Error> {
        futures_ready(&mut self.send).await?;
        let mut b = Request::builder()
            .method(req.method)
            .uri(req.path)
            .header("host", &self.host)
            .header("x-user-id", req.user);
        if let Some(key) = &req.key {
            b = b.header("idempotency-key", key.as_str());
        }
        let body = match req.body {
            Some(json) => {
                b = b
                    .header("content-type", "application/json")
                    .header("content-length", json.len());
                Body::from(json)
            }
            None => Body::empty(),
        };
        let request = b.body(body).unwrap_or_else(|e| panic!("request: {e}"));
        let res = self.send.send_request(request).await?;
        let head = Instant::now();
        let status = res.status();
        let bytes = hyper::body::to_bytes(res.into_body()).await?;
        Ok((status, head, bytes))
    }
}

async fn futures_ready(send: &mut SendRequest<Body>) -> Result<(), hyper::Error> {
    std::future::poll_fn(|cx| send.poll_ready(cx)).await
}

/// A request to send: method, path and an optional JSON body.
pub struct Req {
    pub method: Method,
    pub path: String,
    pub body: Option<String>,
    pub user: &'static str,
    /// An `Idempotency-Key` to send.
    pub key: Option<String>,
}

impl Req {
    pub fn get(path: impl Into<String>) -> Req {
        Req {
            method: Method::GET,
            path: path.into(),
            body: None,
            user: USER,
            key: None,
        }
    }

    pub fn post(path: impl Into<String>, body: String) -> Req {
        Req {
            method: Method::POST,
            path: path.into(),
            body: Some(body),
            user: USER,
            key: None,
        }
    }

    /// The request with an `Idempotency-Key`.
    pub fn keyed(mut self, key: String) -> Req {
        self.key = Some(key);
        self
    }

    pub fn by(mut self, user: &'static str) -> Req {
        self.user = user;
        self
    }
}

/// Sends one request on a fresh connection and insists on `expect`.
pub async fn call(addr: SocketAddr, req: Req, expect: u16) -> Bytes {
    let mut c = Conn::open(addr).await.unwrap_or_else(|e| panic!("connect: {e}"));
    let path = req.path.clone();
    let (status, body) = c.call(req).await.unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(
        status.as_u16(),
        expect,
        "{path}: {}",
        String::from_utf8_lossy(&body[..body.len().min(500)])
    );
    body
}

#[derive(Deserialize)]
struct Created {
    id: u64,
}

/// As the platform admin: a district with one school, and `USER` made admin
/// of the district (which makes it admin of the school too). Returns the school.
pub async fn setup(addr: SocketAddr, name: &str) -> u64 {
    let district = id_of(&call(addr, Req::post("/api/v1/district", json_name(name)).by(ROOT), 201).await);
    let school = id_of(
        &call(
            addr,
            Req::post(
                format!("/api/v1/district/{district}/schools"),
                json_name(&format!("{name} Elementary")),
            )
            .by(ROOT),
            201,
        )
        .await,
    );
    let grant = serde_json::json!({"user_id": USER, "tenant_id": district, "role": "admin"}).to_string();
    call(addr, Req::post("/api/v1/roles", grant).by(ROOT), 201).await;
    school
}

/// Buys `count` seats (≤ 100,000) and returns their ids.
pub async fn purchase(addr: SocketAddr, tenant: u64, count: u64) -> Vec<u64> {
    let body = call(addr, purchase_req(tenant, count), 201).await;
    let seats: Vec<Created> = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("purchase body: {e}"));
    assert_eq!(seats.len() as u64, count);
    seats.into_iter().map(|s| s.id).collect()
}

pub fn purchase_req(tenant: u64, count: u64) -> Req {
    Req::post(
        "/api/v1/seats/purchase",
        format!(r#"{{"tenant_id":{tenant},"count":{count}}}"#),
    )
}

pub fn allocate_req(seat: u64, learner: &str) -> Req {
    Req::post(
        "/api/v1/seats/allocate",
        format!(r#"{{"seat_id":{seat},"learner_id":"{learner}"}}"#),
    )
}

/// A seat for `learner` in `tenant`, chosen by the server.
pub fn assign_req(tenant: u64, learner: &str) -> Req {
    Req::post(
        "/api/v1/seats/assign",
        format!(r#"{{"tenant_id":{tenant},"learner_id":"{learner}"}}"#),
    )
}

pub fn summary_req(tenant: u64) -> Req {
    Req::get(format!("/api/v1/seats/summary?tenantId={tenant}"))
}

fn json_name(name: &str) -> String {
    serde_json::json!({ "name": name }).to_string()
}

fn id_of(body: &[u8]) -> u64 {
    let c: Created = serde_json::from_slice(body).unwrap_or_else(|e| panic!("no id: {e}"));
    c.id
}

// ---- the load driver -------------------------------------------------------------

/// What one fixed-time run measured.
#[derive(Debug, Default, Clone)]
pub struct Run {
    pub ok: u64,
    pub errors: u64,
    /// Successes including those outside the measured window (warm-up, tail).
    pub all_ok: u64,
    pub elapsed: Duration,
    /// CPU time the whole process (server and client) used in the window.
    pub cpu: Duration,
    /// Latency of every successful request, in microseconds, sorted.
    pub latencies: Vec<u32>,
    /// First few error descriptions, for the report.
    pub error_samples: Vec<String>,
}

impl Run {
    /// Adds another run's counts, times and latencies (unsorted) to this one.
    pub fn absorb(&mut self, other: Run) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.all_ok += other.all_ok;
        self.elapsed += other.elapsed;
        self.cpu += other.cpu;
        self.latencies.extend(other.latencies);
        for s in other.error_samples {
            if self.error_samples.len() < 3 {
                self.error_samples.push(s);
            }
        }
    }

    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// Latency at quantile `q` (0..=1) in milliseconds.
    pub fn pct_ms(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies.len() as f64 * q).ceil() as usize).clamp(1, self.latencies.len()) - 1;
        f64::from(self.latencies[i]) / 1000.0
    }

    /// CPU microseconds (all threads, server and client) per successful request.
    pub fn cpu_us_per_req(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.ok.max(1) as f64
    }

    /// Cores kept busy on average during the window.
    pub fn cores_busy(&self) -> f64 {
        self.cpu.as_secs_f64() / self.elapsed.as_secs_f64()
    }

    pub fn max_ms(&self) -> f64 {
        self.latencies.last().map_or(f64::NAN, |&v| f64::from(v) / 1000.0)
    }
}

/// Drives `conns` connections, each a task sending requests back to back for
/// `warmup` (not counted) and then `duration`. `next(conn, i)` makes the i-th
/// request of a connection, or `None` when there is nothing left to send;
/// `expect` is the status that counts as success.
pub async fn drive<F>(addr: SocketAddr, conns: usize, warmup: Duration, duration: Duration, expect: u16, next: F) -> Run
where
    F: Fn(usize, u64) -> Option<Req> + Send + Sync + 'static,
{
    let next = Arc::new(next);
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::with_capacity(conns);
    for c in 0..conns {
        let next = Arc::clone(&next);
        let measuring = Arc::clone(&measuring);
        let stop = Arc::clone(&stop);
        tasks.push(tokio::spawn(async move {
            let mut run = Run::default();
            let mut conn = match Conn::open(addr).await {
                Ok(conn) => conn,
                Err(e) => {
                    run.errors += 1;
                    run.error_samples.push(format!("connect: {e}"));
                    return run;
                }
            };
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let Some(req) = next(c, i) else { break };
                i += 1;
                let counted = measuring.load(Ordering::Relaxed);
                let started = Instant::now();
                let result = conn.call(req).await;
                let micros = started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                if matches!(&result, Ok((status, _)) if status.as_u16() == expect) {
                    run.all_ok += 1;
                }
                // Only requests both started and finished inside the window count.
                if !counted || stop.load(Ordering::Relaxed) {
                    if result.is_err() {
                        conn = match Conn::open(addr).await {
                            Ok(conn) => conn,
                            Err(_) => return run,
                        };
                    }
                    continue;
                }
                match result {
                    Ok((status, _)) if status.as_u16() == expect => {
                        run.ok += 1;
                        run.latencies.push(micros);
                    }
                    Ok((status, body)) => {
                        run.errors += 1;
                        if run.error_samples.len() < 3 {
                            run.error_samples.push(format!(
                                "{status}: {}",
                                String::from_utf8_lossy(&body[..body.len().min(200)])
                            ));
                        }
                    }
                    Err(e) => {
                        run.errors += 1;
                        if run.error_samples.len() < 3 {
                            run.error_samples.push(format!("transport: {e}"));
                        }
                        conn = match Conn::open(addr).await {
                            Ok(conn) => conn,
                            Err(_) => return run,
                        };
                    }
                }
            }
            run
        }));
    }
    tokio::time::sleep(warmup).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let cpu_before = cpu_time();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let cpu = cpu_time().saturating_sub(cpu_before);
    let elapsed = started.elapsed();
    let mut total = Run {
        elapsed,
        cpu,
        ..Run::default()
    };
    for t in tasks {
        // A task's run carries no time of its own: the window is the total's.
        total.absorb(t.await.unwrap_or_else(|e| panic!("load task: {e}")));
    }
    total.latencies.sort_unstable();
    total
}

/// Sends every request `next(i)` yields (until `None`) over `conns` connections,
/// as fast as they are answered. Returns (successes, errors, elapsed).
pub async fn drive_all<F>(addr: SocketAddr, conns: usize, expect: u16, next: F) -> (u64, u64, Duration)
where
    F: Fn(u64) -> Option<Req> + Send + Sync + 'static,
{
    let next = Arc::new(next);
    let cursor = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(conns);
    for _ in 0..conns {
        let next = Arc::clone(&next);
        let cursor = Arc::clone(&cursor);
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut errors) = (0u64, 0u64);
            let mut conn = Conn::open(addr).await.unwrap_or_else(|e| panic!("connect: {e}"));
            while let Some(req) = next(cursor.fetch_add(1, Ordering::Relaxed)) {
                match conn.call(req).await {
                    Ok((status, _)) if status.as_u16() == expect => ok += 1,
                    Ok(_) => errors += 1,
                    Err(_) => {
                        errors += 1;
                        conn = Conn::open(addr).await.unwrap_or_else(|e| panic!("connect: {e}"));
                    }
                }
            }
            (ok, errors)
        }));
    }
    let (mut ok, mut errors) = (0, 0);
    for t in tasks {
        let (o, e) = t.await.unwrap_or_else(|e| panic!("task: {e}"));
        ok += o;
        errors += e;
    }
    (ok, errors, started.elapsed())
}

// ---- process and table helpers ---------------------------------------------------

/// A field of /proc/PID/status in bytes (e.g. "VmRSS", "VmHWM").
pub fn proc_status_bytes(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb * 1024)
    })
}

/// A field of /proc/PID/io (e.g. "write_bytes": bytes this process caused to
/// be sent to the storage layer).
pub fn proc_io(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':')?.trim().parse().ok())
}

/// Prints a table with a header row, columns padded to fit.
pub fn table(title: &str, header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    println!("\n{title}");
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:>w$}", w = *w))
            .collect();
        println!("| {} |", padded.join(" | "));
    };
    line(header.iter().map(|h| h.to_string()).collect());
    println!(
        "|{}|",
        widths
            .iter()
            .map(|w| format!("{}:", "-".repeat(w + 1)))
            .collect::<Vec<_>>()
            .join("|")
    );
    for row in rows {
        line(row.clone());
    }
}

pub fn f0(v: f64) -> String {
    format!("{v:.0}")
}

pub fn f1(v: f64) -> String {
    format!("{v:.1}")
}

pub fn f2(v: f64) -> String {
    format!("{v:.2}")
}

pub fn f3(v: f64) -> String {
    format!("{v:.3}")
}

pub fn pct(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}
