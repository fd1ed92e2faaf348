//! Starts the real application on 127.0.0.1:0 with a temporary data dir and
//! offers typed request helpers, so tests read like the contract.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{json, Value};
use tenant_service::{App, ServeError, Settings};

use super::faulty_disk::Faults;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ADMIN: &str = "admin_7";

pub struct TestApp {
    pub addr: SocketAddr,
    /// Kept so that a restart starts with the same configuration.
    pub settings: Settings,
    pub client: reqwest::Client,
    /// Kept alive for the whole test (and across restarts), removed on drop.
    pub dir: Arc<tempfile::TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), ServeError>>>,
}

pub struct Response {
    pub status: u16,
    pub body: Value,
}

impl Response {
    pub fn id(&self) -> u64 {
        self.body["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("no id in {}: {}", self.status, self.body))
    }

    /// Asserts an error response of the contract's shape and returns its detail.
    pub fn detail(&self) -> &str {
        assert!(self.body["error_code"].is_string(), "no error_code in {}", self.body);
        self.body["detail"]
            .as_str()
            .unwrap_or_else(|| panic!("no detail in {}: {}", self.status, self.body))
    }
}

impl TestApp {
    /// The old contract: header identity, roles not enforced.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// A fresh data dir and settings adjusted by `configure` (roles are not
    /// enforced unless `configure` says so).
    pub async fn spawn_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
        let dir = Arc::new(tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}")));
        Self::spawn_with_faults(dir, configure, Arc::new(Faults::none())).await
    }

    pub async fn spawn_in(dir: Arc<tempfile::TempDir>) -> TestApp {
        Self::spawn_with_faults(dir, |_| {}, Arc::new(Faults::none())).await
    }

    /// A server with adjusted settings and failures injected behind its store.
    pub async fn spawn_with_faults(
        dir: Arc<tempfile::TempDir>,
        adjust: impl FnOnce(&mut Settings),
        faults: Arc<Faults>,
    ) -> TestApp {
        let mut settings = Settings {
            data_dir: dir.path().join("data"),
            ..Settings::default()
        };
        settings.auth.enforce_roles = false;
        adjust(&mut settings);
        Self::start(dir, settings, faults).await
    }

    async fn start(dir: Arc<tempfile::TempDir>, settings: Settings, faults: Arc<Faults>) -> TestApp {
        // An in-process restart can find sled's file lock still held for a
        // moment after the previous instance dropped its store (sled releases
        // it from its own IO threads). A new process never meets this: the OS
        // drops the lock at exit. So only "locked" is waited out, boundedly.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let app = loop {
            match App::open_with(&settings, faults.clone()) {
                Ok(app) => break app,
                Err(e) if e.to_string().contains("in use by another") && std::time::Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(e) => panic!("open: {e}"),
            }
        };
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("addr: {e}"));
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            app.serve(listener, async {
                let _ = rx.await;
            })
            .await
        });
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .unwrap_or_else(|e| panic!("client: {e}"));
        TestApp {
            addr,
            settings,
            client,
            dir,
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Graceful stop: in-flight requests finish, the store is flushed and closed.
    pub async fn stop(mut self) -> Arc<tempfile::TempDir> {
        self.shutdown_now().await;
        Arc::clone(&self.dir)
    }

    /// Stops and starts again on the same data dir.
    pub async fn restart(self) -> TestApp {
        let settings = self.settings.clone();
        let dir = self.stop().await;
        TestApp::start(dir, settings, Arc::new(Faults::none())).await
    }

    async fn shutdown_now(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let served = server.await.unwrap_or_else(|e| panic!("server task: {e}"));
            served.unwrap_or_else(|e| panic!("serve: {e}"));
        }
    }

    /// Waits for the server to stop by itself (no shutdown is sent) and
    /// returns how `serve` ended; the data dir is kept for a restart.
    pub async fn stopped_by_itself(mut self) -> (Result<(), ServeError>, Arc<tempfile::TempDir>) {
        let server = self.server.take().unwrap_or_else(|| panic!("server already stopped"));
        let served = server.await.unwrap_or_else(|e| panic!("server task: {e}"));
        (served, Arc::clone(&self.dir))
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Response {
        let res = req.send().await.unwrap_or_else(|e| panic!("request failed: {e}"));
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_else(|e| panic!("body: {e}"));
        let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status}: body is not JSON ({e}): {text}"));
        Response { status, body }
    }

    pub async fn get(&self, path: &str) -> Response {
        self.send(self.client.get(self.url(path)).header("X-User-ID", ADMIN))
            .await
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.send(self.client.post(self.url(path)).header("X-User-ID", ADMIN).json(&body))
            .await
    }

    pub async fn put(&self, path: &str, body: Value) -> Response {
        self.send(self.client.put(self.url(path)).header("X-User-ID", ADMIN).json(&body))
            .await
    }

    /// A raw body with any content, for malformed-input tests.
    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> Response {
        self.send(
            self.client
                .post(self.url(path))
                .header("X-User-ID", ADMIN)
                .header("content-type", "application/json")
                .body(body),
        )
        .await
    }

    pub async fn district(&self, name: &str) -> u64 {
        let r = self.post("/api/v1/district", json!({"name": name})).await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.id()
    }

    pub async fn school(&self, district: u64, name: &str) -> u64 {
        let r = self
            .post(&format!("/api/v1/district/{district}/schools"), json!({"name": name}))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.id()
    }

    pub async fn purchase(&self, tenant: u64, count: u64) -> Vec<u64> {
        let r = self
            .post("/api/v1/seats/purchase", json!({"tenant_id": tenant, "count": count}))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let seats = r.body.as_array().unwrap_or_else(|| panic!("not a list: {}", r.body));
        seats
            .iter()
            .map(|s| s["id"].as_u64().unwrap_or_else(|| panic!("seat without id: {s}")))
            .collect()
    }

    pub async fn allocate(&self, seat: u64, learner: &str) -> Response {
        self.post(
            "/api/v1/seats/allocate",
            json!({"seat_id": seat, "learner_id": learner}),
        )
        .await
    }

    pub async fn reclaim(&self, seat: u64, reason: Option<&str>) -> Response {
        let body = match reason {
            Some(r) => json!({"seat_id": seat, "reason": r}),
            None => json!({"seat_id": seat}),
        };
        self.post("/api/v1/seats/reclaim", body).await
    }

    pub async fn summary(&self, tenant: u64) -> Value {
        let r = self.get(&format!("/api/v1/seats/summary?tenantId={tenant}")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body
    }

    pub async fn seat(&self, seat: u64) -> Value {
        let r = self.get(&format!("/api/v1/seats/{seat}")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body
    }

    pub async fn audit(&self, seat: u64) -> Vec<Value> {
        let r = self.get(&format!("/api/v1/seats/{seat}/audit")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body.as_array().cloned().unwrap_or_default()
    }

    /// Summary counters recomputed from every seat, one request per seat.
    pub async fn count_seats(&self, seats: &[u64]) -> (u64, u64, u64) {
        let (mut free, mut reserved, mut assigned) = (0, 0, 0);
        for &s in seats {
            match self.seat(s).await["state"].as_str() {
                Some("free") => free += 1,
                Some("reserved") => reserved += 1,
                Some("assigned") => assigned += 1,
                other => panic!("seat {s} has state {other:?}"),
            }
        }
        (free, reserved, assigned)
    }

    pub async fn healthy(&self) -> bool {
        let r = self.send(self.client.get(self.url("/health"))).await;
        r.status == 200 && r.body == json!({"status": "healthy"})
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Opens a stopped service's store with sled directly. A store just closed
/// (by this process or a child) may still hold its lock for a moment while
/// sled's background threads let go, so a busy lock is retried for a while.
pub fn open_sled(data: &std::path::Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match sled::Config::new().path(data).open() {
            Ok(db) => return db,
            Err(e) if e.to_string().contains("could not acquire lock") && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("open {}: {e}", data.display()),
        }
    }
}
