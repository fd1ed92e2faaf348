//! Tenant Service: districts and schools, their seat pools, who holds which
//! seat, user roles per tenant, and the audit trail of every seat change.
//!
//! `App::open` recovers the store and starts the engine; `App::serve` runs the
//! HTTP API on a listener until a shutdown future resolves. `main.rs` and the
//! tests start the very same application.

// No unsafe code, except the one audited call in `release_startup_memory`.
#![deny(unsafe_code)]

pub mod auth;
pub mod config;
pub mod domain;
pub mod engine;
pub mod error;
pub mod http;
pub mod metrics;
mod server;
pub mod store;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;

pub use config::{AuditCommand, Cli, Command, Settings};
use engine::{Engine, RecoveryReport};
pub use store::Faults;
use store::Store;

pub struct App {
    engine: Arc<Engine>,
    auth: Arc<auth::Authenticator>,
    settings: Settings,
    pub recovery: RecoveryReport,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create data dir {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("data dir {0} exists but is not a directory")]
    NotADirectory(std::path::PathBuf),
    #[error(transparent)]
    Store(#[from] store::OpenError),
    #[error("cannot start the actor threads: {0}")]
    Actors(std::io::Error),
    #[error("tenant {0} holds more than {max} seats in the store, more than this build can serve", max = engine::MAX_SEATS)]
    TooManySeats(domain::TenantId),
    #[error(transparent)]
    Auth(#[from] auth::AuthConfigError),
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("the store failed to flush to disk; stopped so nothing unsafe is acknowledged")]
    StoreFailed,
    /// The history pass found a corrupt or unknown-version audit or trail
    /// record: the same line a start refused for it would print.
    #[error(transparent)]
    Corrupt(store::OpenError),
}

/// Audit retention: at start, then every hour.
async fn retention_loop(engine: Arc<Engine>, keep_days: u64, export_dir: std::path::PathBuf) {
    // Not before the history pass: a purge would wait for it anyway (it holds
    // the retention lock), and stats would wait behind the purge.
    engine.history_checked().await;
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        every.tick().await;
        match engine.retain(keep_days, export_dir.clone()).await {
            Ok(report) if report.exported > 0 => tracing::info!(
                exported = report.exported,
                purged = report.purged,
                file = ?report.file,
                "audit retention: entries older than {keep_days} days exported, then purged"
            ),
            Ok(_) => {}
            Err(e) => tracing::error!(error = ?e, "audit retention failed; nothing that was not exported was purged"),
        }
    }
}

impl App {
    /// Opens (or creates) the store in the data dir and rebuilds the engine from it.
    pub fn open(settings: &Settings) -> Result<App, StartError> {
        Self::open_with_faults(settings, Arc::new(Faults::none()))
    }

    /// `open` with failures injected behind the store's writes and flushes
    /// (tests of what a failing disk does; see `store::Faults`).
    pub fn open_with_faults(settings: &Settings, faults: Arc<Faults>) -> Result<App, StartError> {
        let started = Instant::now();
        let auth = Arc::new(auth::Authenticator::new(&settings.auth)?);
        if !settings.auth.enforce_roles {
            tracing::warn!("roles are not enforced (enforce_roles = false): every identified caller may do everything");
        }
        let dir = &settings.data_dir;
        if dir.exists() && !dir.is_dir() {
            return Err(StartError::NotADirectory(dir.clone()));
        }
        std::fs::create_dir_all(dir).map_err(|source| StartError::DataDir {
            path: dir.clone(),
            source,
        })?;
        let (store, recovered) = Store::open_with(dir, faults)?;
        let (engine, recovery) = Engine::start(
            store,
            recovered,
            settings.auth.enforce_roles,
            started,
            settings.mailbox_bound,
        )?;
        release_startup_memory();
        tracing::info!(
            tenants = recovery.tenants,
            seats = recovery.seats,
            roles = recovery.roles,
            millis = recovery.millis as u64,
            data_dir = %dir.display(),
            "recovered {} tenants, {} seats and {} roles in {} ms",
            recovery.tenants,
            recovery.seats,
            recovery.roles,
            recovery.millis
        );
        Ok(App {
            engine: Arc::new(engine),
            auth,
            settings: settings.clone(),
            recovery,
        })
    }

    /// Serves until `shutdown` resolves (or the store fails): stops accepting,
    /// lets in-flight requests finish, then stops the actors and flushes.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let routes = http::routes(http::Ctx {
            engine: Arc::clone(&self.engine),
            auth: Arc::clone(&self.auth),
            body_limit: self.settings.max_body_bytes,
        });
        let engine = Arc::clone(&self.engine);
        let (failed_tx, mut failed_rx) = tokio::sync::oneshot::channel();
        // The history pass runs while the service answers (see
        // `Engine::check_history`); a corrupt record it finds stops the
        // service like a failed flush, with the line a refused start prints.
        let stop = async move {
            let checked = async {
                match engine.check_history().await {
                    Ok(()) => std::future::pending().await,
                    Err(e) => e,
                }
            };
            tokio::select! {
                () = shutdown => {}
                () = engine.store().failed() => { let _ = failed_tx.send(ServeError::StoreFailed); }
                e = checked => { let _ = failed_tx.send(ServeError::Corrupt(e)); }
            }
        };
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, "listening");
        }
        let limits = server::Limits {
            max_connections: self.settings.max_connections,
            header_timeout: Duration::from_millis(self.settings.header_timeout_ms),
            idle_timeout: Duration::from_millis(self.settings.idle_timeout_ms),
            body_timeout: Duration::from_millis(self.settings.body_timeout_ms),
        };
        let retention = self.settings.audit.retention_days.map(|days| {
            let engine = Arc::clone(&self.engine);
            let dir = self
                .settings
                .audit
                .export_dir
                .clone()
                .unwrap_or_else(|| self.settings.data_dir.join("audit-exports"));
            tokio::spawn(retention_loop(engine, days, dir))
        });
        server::serve(listener, routes, limits, stop).await;
        if let Some(task) = retention {
            task.abort();
        }
        tracing::info!("stopped accepting; in-flight requests finished");
        self.engine.stop();
        if let Ok(e) = failed_rx.try_recv() {
            return Err(e);
        }
        tracing::info!("store flushed; bye");
        Ok(())
    }
}

/// The allocator: jemalloc. sled 0.34 replaces a page's in-memory record on
/// every page-in and page-out, so a start that reads every record (the seat
/// scan, then the history pass) leaves some 500,000 small long-lived records
/// scattered among memory the scans freed. With glibc's malloc that freed
/// memory stayed resident, holes too small to return: 135 MB in use, 213-262
/// MB resident with every one of 1,000,000 seats allocated; jemalloc's size
/// classes keep like with like, and its purge returns the rest (BENCHMARKS.md
/// §4). Declared here, not in `main.rs`, so that the tests and benches that
/// run the app in-process measure the same allocator.
/// (Not with MSVC, where jemalloc does not build: the system allocator there.)
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Hands the memory recovery (and then the history pass) used only while
/// reading the store (every record decoded once, then dropped) back to the OS
/// now. jemalloc would return it by itself only as it decays, and it decays
/// only while the process allocates: a service that has just started may sit
/// idle for a long while.
pub(crate) fn release_startup_memory() {
    #[cfg(not(target_env = "msvc"))]
    release_jemalloc_memory();
}

#[cfg(not(target_env = "msvc"))]
#[allow(unsafe_code)]
fn release_jemalloc_memory() {
    // 4096 is MALLCTL_ARENAS_ALL: every arena.
    // SAFETY: the name is a NUL-terminated string, and a purge reads and
    // writes no value (null pointers, length 0), as jemalloc's manual has it.
    let rc = unsafe {
        tikv_jemalloc_sys::mallctl(
            c"arena.4096.purge".as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        )
    };
    if rc != 0 {
        tracing::warn!(rc, "could not hand the start-up memory back to the OS (jemalloc purge)");
    }
}
