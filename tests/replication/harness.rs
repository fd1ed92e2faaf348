//! NATS servers (one, or three as a JetStream cluster) and the service as
//! child processes on 127.0.0.1, each with its own temporary directory.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_tenant-service");
const NATS_ENV: &str = "TENANT_TEST_NATS_SERVER";

/// Debian's `nats-server` (or `TENANT_TEST_NATS_SERVER`); `None`, said once
/// on stderr, when it is not installed.
pub fn nats_server() -> Option<PathBuf> {
    static SAID: Once = Once::new();
    super::optional::find(
        NATS_ENV,
        &["/usr/sbin/nats-server", "/usr/bin/nats-server"],
        &SAID,
        |path| {
            format!(
                "replication tests (change feed, standby, failover) NOT run: no nats-server at {path} (install it \
                 with `apt-get install -y nats-server`, then run `cargo test --test replication`; `.ci/run` installs it)"
            )
        },
    )
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("free port: {e}"))
}

/// One nats-server with JetStream, in a cluster or alone.
pub struct Nats {
    bin: PathBuf,
    pub port: u16,
    args: Vec<String>,
    child: Option<Child>,
    _dir: Arc<tempfile::TempDir>,
}

impl Nats {
    pub fn single(bin: &Path) -> Nats {
        let mut n = Nats::new(bin, free_port(), Vec::new());
        n.start();
        n
    }

    /// One server with JetStream on `port` and a store of its own, plus `more` arguments.
    fn new(bin: &Path, port: u16, more: Vec<String>) -> Nats {
        let dir = Arc::new(tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}")));
        let mut args = vec![
            "-a".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
            "-js".into(),
            "-sd".into(),
            dir.path().display().to_string(),
        ];
        args.extend(more);
        Nats {
            bin: bin.to_path_buf(),
            port,
            args,
            child: None,
            _dir: dir,
        }
    }

    /// Three servers routed to each other: a JetStream cluster (R3 streams).
    pub fn cluster(bin: &Path) -> Vec<Nats> {
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
        let routes = ports
            .iter()
            .map(|(_, c)| format!("nats://127.0.0.1:{c}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut out: Vec<Nats> = ports
            .iter()
            .enumerate()
            .map(|(i, (port, cport))| {
                let more = vec![
                    "-n".into(),
                    format!("n{i}"),
                    "--cluster_name".into(),
                    "tenants".into(),
                    "--cluster".into(),
                    format!("nats://127.0.0.1:{cport}"),
                    "--routes".into(),
                    routes.clone(),
                    // Clients reach only the servers they are given (else
                    // they learn the others, and no client is ever cut off).
                    "--no_advertise".into(),
                ];
                Nats::new(bin, *port, more)
            })
            .collect();
        for n in &mut out {
            n.start();
        }
        out
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn start(&mut self) {
        let child = Command::new(&self.bin)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("nats-server: {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen on {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The running server's process id (the feed bench reads its CPU time).
    #[allow(dead_code)]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// kill -9.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The service as a child process, with its own data dir and config file.
pub struct Service {
    child: Option<Child>,
    pub base: String,
    pub client: reqwest::Client,
    pub dir: Arc<tempfile::TempDir>,
    config: String,
    stderr: Arc<Mutex<String>>,
}

impl Service {
    /// A new data dir; `replication` is the `[replication]` section's body.
    pub fn start(replication: &str) -> Service {
        let dir = Arc::new(tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}")));
        Self::start_in(dir, replication)
    }

    pub fn start_in(dir: Arc<tempfile::TempDir>, replication: &str) -> Service {
        let config = format!("[replication]\n{replication}\n");
        let mut s = Service {
            child: None,
            base: String::new(),
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(128)
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap_or_else(|e| panic!("client: {e}")),
            dir,
            config,
            stderr: Arc::new(Mutex::new(String::new())),
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let config = self.dir.path().join("config.toml");
        std::fs::write(&config, &self.config).unwrap_or_else(|e| panic!("config: {e}"));
        let mut command = Command::new(BIN);
        command
            .args(["--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .env("RUST_LOG", "info,async_nats=warn,tenant_service::replication=debug")
            .env("TENANT_ENFORCE_ROLES", "false")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap_or_else(|e| panic!("spawn: {e}"));
        if let Some(pipe) = child.stderr.take() {
            let sink = Arc::clone(&self.stderr);
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut s = sink.lock().unwrap_or_else(|e| e.into_inner());
                    s.push_str(&line);
                    s.push('\n');
                }
            });
        }
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(rest) = line.split("addr=").nth(1).filter(|_| line.contains("listening")) {
                        break rest.split_whitespace().next().unwrap_or_default().to_owned();
                    }
                }
                _ => {
                    let _ = child.wait();
                    std::thread::sleep(Duration::from_millis(50));
                    panic!("service exited before listening: {}", self.stderr());
                }
            }
        };
        // The log (stdout) joins stderr: what `until` shows when it gives up.
        let sink = Arc::clone(&self.stderr);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut s = sink.lock().unwrap_or_else(|e| e.into_inner());
                s.push_str(&line);
                s.push('\n');
            }
        });
        self.base = format!("http://{addr}");
        self.child = Some(child);
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts again on the same data dir and configuration.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(self.client.post(format!("{}{}", self.base, path)).json(&body))
            .await
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(self.client.put(format!("{}{}", self.base, path)).json(&body))
            .await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.client.get(format!("{}{}", self.base, path))).await
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        match req.header("X-User-ID", "admin_7").send().await {
            Ok(res) => {
                let status = res.status().as_u16();
                (status, res.json().await.unwrap_or(Value::Null))
            }
            Err(e) => (0, json!({"transport": e.to_string()})),
        }
    }

    /// `GET /metrics`, one value.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("metrics: {e}"))
            .text()
            .await
            .unwrap_or_default();
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /metrics"))
    }

    /// Waits until `check` holds (polling), or panics with `what`.
    pub async fn until<F, Fut>(&self, what: &str, within: Duration, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + within;
        while !check().await {
            assert!(
                Instant::now() < deadline,
                "{what}: not within {within:?}\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Every message on the stream, in stream order: (subject, payload).
pub async fn read_stream(url: &str, stream: &str) -> Vec<(String, Value)> {
    let client = async_nats::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let js = async_nats::jetstream::new(client);
    let mut s = js
        .get_stream(stream)
        .await
        .unwrap_or_else(|e| panic!("stream {stream}: {e}"));
    let info = s.info().await.unwrap_or_else(|e| panic!("info: {e}")).clone();
    let mut out = Vec::new();
    for seq in info.state.first_sequence..=info.state.last_sequence {
        if info.state.messages == 0 {
            break;
        }
        match s.get_raw_message(seq).await {
            Ok(m) => {
                let v: Value = serde_json::from_slice(&m.payload).unwrap_or(Value::Null);
                out.push((m.subject.to_string(), v));
            }
            Err(e) => panic!("message {seq}: {e}"),
        }
    }
    out
}

/// The changes of one tenant's messages, in stream order: (n, kind, detail).
pub fn changes_of(messages: &[(String, Value)], tenant: u64) -> Vec<(u64, String, Value)> {
    messages
        .iter()
        .filter(|(_, m)| m["tenant_id"] == json!(tenant))
        .flat_map(|(_, m)| m["changes"].as_array().cloned().unwrap_or_default())
        .map(|c| {
            (
                c["n"].as_u64().unwrap_or(0),
                c["kind"].as_str().unwrap_or("").to_owned(),
                c["detail"].clone(),
            )
        })
        .collect()
}

/// The name of the server leading `stream` (a cluster's `n0`..`n2`).
pub async fn stream_leader(url: &str, stream: &str) -> Option<String> {
    let client = async_nats::connect(url).await.ok()?;
    let js = async_nats::jetstream::new(client);
    let mut s = js.get_stream(stream).await.ok()?;
    let info = s.info().await.ok()?;
    info.cluster.as_ref().and_then(|c| c.leader.clone())
}

impl Service {
    /// The data dirs a rebuild set aside beside this service's.
    pub fn set_aside(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.dir.path())
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with("data.diverged-"))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The cluster tests run one at a time: each starts three nats-servers and
/// two services, and on two cores several at once starve the lease's
/// renewals (a primary then rightly fences itself, and a test of failover
/// timing measures the machine instead). The single-server tests still run
/// beside them.
pub async fn one_cluster_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static ONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    ONE.lock().await
}
