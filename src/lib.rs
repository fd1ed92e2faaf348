//! Tenant Service: districts and schools, their seat pools, who holds which
//! seat, user roles per tenant, and the audit trail of every seat change.
//!
//! `App::open` recovers the store and starts the engine; `App::serve` runs the
//! HTTP API on a listener until a shutdown future resolves. `main.rs` and the
//! tests start the very same application.

// No unsafe code, except the one audited call in `release_startup_memory`.
#![deny(unsafe_code)]

pub mod alloc;
pub mod client;
pub mod config;
pub mod domain;
pub mod engine;
pub mod http;
pub mod metrics;
pub mod replication;
pub mod roster;
pub mod store;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;

pub use config::{AuditCommand, Cli, Command, RosterCommand, Settings};
use engine::{Engine, RecoveryReport};
use http::auth;
use metrics::Metrics;
use store::{Disk, Hooks, Store};

pub struct App {
    engine: Arc<Engine>,
    auth: Arc<auth::Authenticator>,
    settings: Settings,
    hooks: Arc<dyn Hooks>,
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
    #[error(transparent)]
    Engine(#[from] engine::StartError),
    #[error("cannot build the metrics registry: {0}")]
    Metrics(#[from] prometheus::Error),
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
    /// A standby whose store left the feed's history could not be rebuilt.
    #[error("cannot rebuild the store from the change feed: {0}")]
    Rebuild(String),
}

/// How one round of `App::serve` ended.
enum Served {
    Stopped,
    /// The store must be rebuilt from the change feed; the listener is kept.
    Rebuild(TcpListener),
}

/// Audit retention: at start, then every hour.
async fn retention_loop(engine: Arc<Engine>, keep_days: u64, export_dir: std::path::PathBuf) {
    // Not before the history pass: a purge would wait for it anyway (it holds
    // the retention lock), and stats would wait behind the purge.
    engine.history_checked().await;
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        every.tick().await;
        let retained = match engine.retain(keep_days, export_dir.clone()).await {
            Ok(durable) => durable.wait(engine.store()).await,
            Err(e) => Err(e),
        };
        match retained {
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

/// `Idempotency-Key` answers past their retention: purged at start, then
/// every hour (lookups already ignore them; this gives the space back).
async fn answer_purge_loop(engine: Arc<Engine>) {
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        every.tick().await;
        match engine.purge_answers().await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "purged idempotency answers past their retention"),
            Err(e) => tracing::error!(error = ?e, "purging idempotency answers failed; they stay until the next run"),
        }
    }
}

/// Renames the data dir to `<name>.diverged-<unix microseconds>` beside it
/// (two rebuilds within a second keep both).
fn set_aside(dir: &std::path::Path) -> Result<std::path::PathBuf, String> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".into());
    let aside = dir.with_file_name(format!("{name}.diverged-{}", crate::domain::Timestamp::now().micros()));
    std::fs::rename(dir, &aside).map_err(|e| format!("cannot rename {} to {}: {e}", dir.display(), aside.display()))?;
    Ok(aside)
}

/// The start-up summary: one line saying what is starting, on what, how.
fn starting(settings: &Settings) {
    let dir = &settings.data_dir;
    let data_dir = std::fs::canonicalize(dir)
        .or_else(|_| std::path::absolute(dir))
        .unwrap_or_else(|_| dir.clone());
    let config = settings.config_file.as_ref().map_or_else(
        || "none".to_owned(),
        |f| {
            std::fs::canonicalize(f)
                .unwrap_or_else(|_| f.clone())
                .display()
                .to_string()
        },
    );
    let auth = match settings.auth.mode {
        config::AuthMode::Header => "header",
        config::AuthMode::Jwt => "jwt",
    };
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        config = %config,
        data_dir = %data_dir.display(),
        auth,
        enforce_roles = settings.auth.enforce_roles,
        platform_admins = settings.auth.platform_admins.len(),
        cors_origins = settings.http.cors_origins.len(),
        "starting"
    );
}

impl App {
    /// Opens (or creates) the store in the data dir and rebuilds the engine from it.
    pub fn open(settings: &Settings) -> Result<App, StartError> {
        Self::open_with(settings, Arc::new(Disk))
    }

    /// `open`, with `hooks` around the store's writes and flushes (tests and
    /// benches pass their own disk; see `store::Hooks`).
    pub fn open_with(settings: &Settings, hooks: Arc<dyn Hooks>) -> Result<App, StartError> {
        let started = Instant::now();
        let auth = Arc::new(auth::Authenticator::new(&settings.auth)?);
        let dir = &settings.data_dir;
        if dir.exists() && !dir.is_dir() {
            return Err(StartError::NotADirectory(dir.clone()));
        }
        std::fs::create_dir_all(dir).map_err(|source| StartError::DataDir {
            path: dir.clone(),
            source,
        })?;
        starting(settings);
        if !settings.auth.enforce_roles {
            tracing::warn!("roles are not enforced (enforce_roles = false): every identified caller may do everything");
        } else if settings.auth.platform_admins.is_empty() {
            tracing::warn!(
                "roles are enforced and no platform admin is configured ([auth] platform_admins or \
                 TENANT_PLATFORM_ADMINS): nobody can create a district"
            );
        }
        let (store, recovered) = Store::open_with(dir, Arc::clone(&hooks))?;
        let metrics = Arc::new(Metrics::new(&http::route_labels())?);
        let options = engine::Options {
            enforce_roles: settings.auth.enforce_roles,
            mailbox_bound: settings.mailbox_bound,
            answers_kept: Duration::from_secs(settings.idempotency.retention_hours.saturating_mul(3600)),
        };
        if let Some(r) = &settings.replication {
            replication::prepare_store(r, &store);
        }
        let (engine, recovery) = Engine::start(store, recovered, options, metrics, started)?;
        if let Some(r) = &settings.replication {
            replication::prepare(r, &engine);
        }
        alloc::release_startup_memory();
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
            hooks,
            recovery,
        })
    }

    /// Serves until `shutdown` resolves (or the store fails): stops accepting,
    /// lets in-flight requests finish, then stops the actors and flushes.
    ///
    /// A standby whose store left the change feed's history (see
    /// `replication::diverge`) stops the same way, sets its data dir aside
    /// (renamed, not deleted) and serves again on the same socket from an
    /// empty store, which it fills from the feed.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let shutdown = futures_util::FutureExt::shared(Box::pin(shutdown));
        let (mut app, mut listener) = (self, listener);
        loop {
            let (settings, hooks) = (app.settings.clone(), Arc::clone(&app.hooks));
            match app.serve_once(listener, shutdown.clone()).await? {
                Served::Stopped => return Ok(()),
                Served::Rebuild(kept) => {
                    let aside = set_aside(&settings.data_dir).map_err(ServeError::Rebuild)?;
                    tracing::warn!(set_aside = %aside.display(), "the old data dir is kept there; starting on an empty one");
                    app = App::open_with(&settings, hooks).map_err(|e| ServeError::Rebuild(e.to_string()))?;
                    listener = kept;
                }
            }
        }
    }

    async fn serve_once(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<Served, ServeError> {
        let replication = self.settings.replication.clone().map(|r| {
            // Default: the address actually bound (the configured one may be port 0).
            let bound = listener
                .local_addr()
                .map_or_else(|_| self.settings.listen.to_string(), |a| a.to_string());
            let advertise = r.advertise_url.clone().unwrap_or_else(|| format!("http://{bound}"));
            replication::Replication::start(r, Arc::clone(&self.engine), advertise)
        });
        let router = http::Router::new(http::Ctx {
            replication: replication.as_ref().map(|r| Arc::clone(&r.status)),
            engine: Arc::clone(&self.engine),
            auth: Arc::clone(&self.auth),
            body_limit: self.settings.max_body_bytes,
            cors: http::cors::Cors::new(&self.settings.http.cors_origins),
            roster_max_bytes: self.settings.roster.max_bytes,
        });
        let engine = Arc::clone(&self.engine);
        let mut rebuild = replication.as_ref().map(|r| r.status.rebuild.subscribe());
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
            let rebuild = async {
                let asked = match rebuild.as_mut() {
                    Some(r) => r.wait_for(Option::is_some).await.is_ok(),
                    None => false,
                };
                if !asked {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                () = shutdown => {}
                () = engine.store().failed() => { let _ = failed_tx.send(ServeError::StoreFailed); }
                e = checked => { let _ = failed_tx.send(ServeError::Corrupt(e)); }
                () = rebuild => return http::server::Then::Keep,
            }
            http::server::Then::Close
        };
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, "listening");
        }
        let limits = http::server::Limits {
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
        let purge = tokio::spawn(answer_purge_loop(Arc::clone(&self.engine)));
        let kept = http::server::serve(listener, router, limits, stop).await;
        // Awaited once aborted, so that neither task still holds the engine
        // (and with it sled's lock on the data dir) once `serve` returns.
        for task in retention.into_iter().chain([purge]) {
            task.abort();
            let _ = task.await;
        }
        tracing::info!("stopped accepting; in-flight requests finished");
        if let Some(r) = replication {
            r.stop().await;
        }
        self.engine.stop();
        if let Ok(e) = failed_rx.try_recv() {
            return Err(e);
        }
        if let Some(kept) = kept {
            tracing::info!("store flushed; rebuilding it from the change feed");
            return Ok(Served::Rebuild(kept));
        }
        tracing::info!("store flushed; bye");
        Ok(Served::Stopped)
    }
}
