//! The built binary as a child process, for what only a real process can
//! show: kill -9, SIGTERM, exit codes, start-up failures, its memory.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_tenant-service");

pub struct Server {
    pub child: Child,
    pub base: String,
    pub client: reqwest::Client,
    /// Everything the child wrote to stderr so far.
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Starts the binary on port 0 and reads the bound address from its log.
    pub fn start(data_dir: &Path) -> Server {
        Self::start_with(data_dir, &[], &[])
    }

    /// `start` with extra flags and environment variables.
    pub fn start_with(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut command = Command::new(BIN);
        command
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(args)
            .env("RUST_LOG", "info")
            // The old contract: any identified caller may act (see tests/api/auth.rs for roles).
            .env("TENANT_ENFORCE_ROLES", "false");
        for (k, v) in env {
            command.env(k, v);
        }
        Self::spawn(command)
    }

    /// The service on a disk of the tests' own (`faulty_disk::Faults`), as a
    /// process of its own that kill -9 can stop: this test binary re-run as
    /// the child `disk_child` below, which serves `data_dir` through a disk
    /// armed by `arm` (e.g. `slow:20`, `fail-flushes-after:60`). The release
    /// binary has no such switch; this is how a real process meets a slow or
    /// failing disk.
    pub fn start_on_disk(data_dir: &Path, arm: &str) -> Server {
        let exe = std::env::current_exe().unwrap_or_else(|e| panic!("test binary: {e}"));
        let mut command = Command::new(exe);
        command
            .args(["--exact", "process::disk_child", "--nocapture", "--test-threads=1"])
            .env(DISK_CHILD, format!("{arm}|{}", data_dir.display()));
        Self::spawn(command)
    }

    /// Starts `command` and reads the bound address from its log.
    fn spawn(mut command: Command) -> Server {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().unwrap_or_else(|e| panic!("spawn: {e}"));
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(pipe) = child.stderr.take() {
            let sink = Arc::clone(&stderr);
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
            let line = match lines.next() {
                Some(Ok(l)) => l,
                _ => {
                    // Give the stderr reader a moment to collect the reason.
                    let _ = child.wait();
                    std::thread::sleep(Duration::from_millis(50));
                    panic!(
                        "server exited before listening: {}",
                        stderr.lock().unwrap_or_else(|e| e.into_inner())
                    );
                }
            };
            if let Some(rest) = line.split("addr=").nth(1).filter(|_| line.contains("listening")) {
                break rest.split_whitespace().next().unwrap_or_default().to_owned();
            }
        };
        // Keep draining the log so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .unwrap_or_else(|e| panic!("client: {e}"));
        Server {
            child,
            base: format!("http://{addr}"),
            client,
            stderr,
        }
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.base
            .trim_start_matches("http://")
            .parse()
            .unwrap_or_else(|e| panic!("addr {}: {e}", self.base))
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill(); // SIGKILL on unix
        let _ = self.child.wait();
    }

    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap_or_else(|e| panic!("kill: {e}"));
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the child to exit by itself; its exit code.
    pub async fn exit_code(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap_or_else(|e| panic!("{e}")) {
                return status.code();
            }
            assert!(Instant::now() < deadline, "server did not exit within {within:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The child's resident memory, from /proc.
    pub fn rss_kib(&self) -> u64 {
        rss_kib(&format!("/proc/{}/status", self.child.id()))
    }

    pub async fn post(&self, path: &str, body: Value) -> Option<(u16, Value)> {
        let res = self
            .client
            .post(format!("{}{}", self.base, path))
            .header("X-User-ID", "crash_test")
            .json(&body)
            .send()
            .await
            .ok()?;
        let status = res.status().as_u16();
        Some((status, res.json().await.ok()?))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let res = self
            .client
            .get(format!("{}{}", self.base, path))
            .header("X-User-ID", "crash_test")
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or_else(|e| panic!("GET {path}: {e}")))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Set in `Server::start_on_disk`'s child: how to arm its disk, and its data dir.
const DISK_CHILD: &str = "TENANT_TEST_DISK_CHILD";

/// Not a test by itself: the child process of `Server::start_on_disk`. Run
/// without its variable (as in every normal test run) it returns at once.
/// As the child it serves until killed, logging like the binary, and ends
/// like the binary does when serving fails: one `tenant-service:` line on
/// stderr and exit code 1.
#[test]
fn disk_child() {
    let Ok(spec) = std::env::var(DISK_CHILD) else { return };
    let (arm, data_dir) = spec.split_once('|').unwrap_or_else(|| panic!("{DISK_CHILD}={spec}"));
    let disk = super::faulty_disk::Faults::none();
    match arm.split_once(':') {
        Some(("slow", ms)) => disk.slow_flushes(ms.parse().unwrap_or_else(|e| panic!("{arm}: {e}"))),
        Some(("fail-flushes-after", n)) => disk.fail_flushes_after(n.parse().unwrap_or_else(|e| panic!("{arm}: {e}"))),
        _ => panic!("{DISK_CHILD}: unknown disk {arm}"),
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_ansi(false)
        .init();
    let mut settings = tenant_service::Settings {
        data_dir: data_dir.into(),
        ..tenant_service::Settings::default()
    };
    // The old contract: any identified caller may act (as `start_with`).
    settings.auth.enforce_roles = false;
    let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("runtime: {e}"));
    let served = runtime.block_on(async {
        let app = tenant_service::App::open_with(&settings, Arc::new(disk)).map_err(|e| e.to_string())?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        app.serve(listener, std::future::pending())
            .await
            .map_err(|e| e.to_string())
    });
    if let Err(e) = served {
        eprintln!("tenant-service: {e}");
        std::process::exit(1);
    }
}

/// `VmRSS` of a /proc status file, in KiB.
pub fn rss_kib(status_file: &str) -> u64 {
    let status = std::fs::read_to_string(status_file).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}
