//! Beyond one machine: the change feed on NATS JetStream (`feed`: the
//! store's outbox published in order), and with `leadership` a warm
//! standby (`follow`) under a lease in a JetStream key-value bucket
//! (`lease`). Off without `[replication]`. docs/FEED.md is the consumer's
//! and operator's description.

pub mod diverge;
pub mod feed;
pub mod follow;
pub mod former;
pub mod lease;
pub mod message;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{FeedMode, ReplicationSettings};
use crate::engine::Engine;
use crate::store::{FeedRole, Store};

/// What the HTTP layer asks of replication: may this instance take writes,
/// and how far behind is it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Takes writes (also: no replication at all).
    Primary,
    /// Serves reads; writes go to `primary` (its URL, if known).
    Standby { primary: Option<String> },
    /// A former primary checking its store against the stream (see
    /// `diverge`): it may hold changes a rebuild takes back, so it answers
    /// neither reads nor writes of the API until that is settled.
    Settling,
}

/// Shared between the replication tasks and the HTTP layer.
pub struct Status {
    pub standing: watch::Sender<Standing>,
    /// A standby: how far behind the stream's end it is, in milliseconds
    /// (the `X-Replication-Lag-Ms` header).
    pub lag_ms: std::sync::atomic::AtomicU64,
    /// Set (with why) when this store left the stream's history and must be
    /// rebuilt from it: the process stops serving, sets the data dir aside
    /// and starts again on an empty one (see `diverge`).
    pub rebuild: watch::Sender<Option<String>>,
}

impl Default for Status {
    fn default() -> Self {
        Status {
            standing: watch::channel(Standing::Primary).0,
            lag_ms: std::sync::atomic::AtomicU64::new(0),
            rebuild: watch::channel(None).0,
        }
    }
}

/// Sync mode's view of NATS: out of reach (disconnected, or the last
/// publish failed) for longer than `grace` means gone, and writes are
/// refused at once. A shorter blip (a reconnect, a stream leader elected
/// after a NATS server died) is ridden out: the writes made meanwhile wait
/// for their acknowledgment (up to `sync_timeout_ms`) instead.
pub struct Unreachable {
    since: Option<std::time::Instant>,
    grace: Duration,
}

impl Unreachable {
    pub fn new(grace: Duration) -> Unreachable {
        Unreachable { since: None, grace }
    }

    /// Takes in whether NATS is reachable now.
    pub fn update(&mut self, reachable: bool) {
        match (reachable, self.since) {
            (true, _) => self.since = None,
            (false, None) => self.since = Some(std::time::Instant::now()),
            (false, Some(_)) => {}
        }
    }

    /// When it will count as gone, if it is out of reach now.
    pub fn deadline(&self) -> Option<std::time::Instant> {
        self.since.map(|s| s + self.grace)
    }

    pub fn gone(&self) -> bool {
        self.deadline().is_some_and(|d| std::time::Instant::now() >= d)
    }
}

/// The running replication tasks.
pub struct Replication {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    pub status: Arc<Status>,
}

/// How this instance meets NATS.
pub struct Link {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    /// Whether the client is connected now.
    pub connected: watch::Receiver<bool>,
}

impl Link {
    /// Connects in the background (the service starts, and in async mode
    /// serves, whether NATS is there or not).
    pub async fn connect(settings: &ReplicationSettings) -> Result<Link, String> {
        let (tx, connected) = watch::channel(false);
        let tx = Arc::new(tx);
        let events = Arc::clone(&tx);
        let options = async_nats::ConnectOptions::new()
            .name(format!("tenant-service {}", settings.node_id))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(1))
            .request_timeout(Some(Duration::from_secs(2)))
            .ping_interval(Duration::from_secs(1))
            .reconnect_delay_callback(|n| Duration::from_millis((50 * n as u64).min(500)))
            .event_callback(move |event| {
                let events = Arc::clone(&events);
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            tracing::info!("connected to NATS");
                            events.send_replace(true);
                        }
                        async_nats::Event::Disconnected | async_nats::Event::Closed => {
                            tracing::warn!("lost the connection to NATS");
                            events.send_replace(false);
                        }
                        other => tracing::debug!(event = %other, "NATS"),
                    }
                }
            });
        let client = async_nats::connect_with_options(settings.nats_urls.clone(), options)
            .await
            .map_err(|e| e.to_string())?;
        if client.connection_state() == async_nats::connection::State::Connected {
            tx.send_replace(true);
        }
        let js = jetstream::ContextBuilder::new()
            .timeout(Duration::from_secs(2))
            .build(client.clone());
        Ok(Link { client, js, connected })
    }

    /// The stream of changes, created if missing (retried until NATS answers).
    pub async fn stream(
        &self,
        settings: &ReplicationSettings,
        stop: &watch::Receiver<bool>,
    ) -> Option<jetstream::stream::Stream> {
        let config = jetstream::stream::Config {
            name: settings.stream.clone(),
            subjects: vec![format!("{}.>", settings.subject_prefix)],
            num_replicas: settings.replicas,
            storage: jetstream::stream::StorageType::File,
            duplicate_window: Duration::from_secs(120),
            allow_direct: true,
            ..Default::default()
        };
        let mut said: Option<std::time::Instant> = None;
        loop {
            if *stop.borrow() {
                return None;
            }
            match self.js.get_or_create_stream(config.clone()).await {
                Ok(stream) => return Some(stream),
                Err(e) => {
                    if said.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
                        tracing::warn!(error = %e, stream = %settings.stream, "the change feed's stream is not reachable yet; retrying");
                        said = Some(std::time::Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
}

/// The store's role, set before the engine starts: the changes a start
/// makes by itself (a transfer's arrival a crash cut short, reservations
/// whose deadline passed) go to the outbox like any other; on an instance
/// that starts as a standby they are not made (the primary makes them, or
/// this one once promoted).
pub fn prepare_store(settings: &ReplicationSettings, store: &Store) {
    let role = match settings.leadership {
        true => FeedRole::Standby,
        false => FeedRole::Primary {
            sync: settings.mode == FeedMode::Sync,
        },
    };
    store.set_role(role, Duration::from_millis(settings.sync_timeout_ms));
}

/// The store's part once the engine has started, before the first
/// request is served.
pub fn prepare(settings: &ReplicationSettings, engine: &Engine) {
    let sync = settings.mode == FeedMode::Sync;
    if sync || settings.leadership {
        // Sync mode: nothing is acknowledged until NATS is there. With
        // leadership the store starts as a standby (its writes refused by
        // the HTTP standing); the fence is what a promotion lifts.
        engine.store().set_fence(Some("not yet connected to NATS".into()));
    }
}

impl Replication {
    /// Starts the feed (and with `leadership`, the lease and the standby).
    pub fn start(settings: ReplicationSettings, engine: Arc<Engine>, advertise: String) -> Replication {
        let (stop, stopped) = watch::channel(false);
        let status = Arc::new(Status::default());
        let mut tasks = Vec::new();
        if settings.leadership {
            // A former primary answers nothing until it has checked its
            // store against the stream (see `former`).
            let former = engine.store().feed_mark().is_ok_and(|m| m.primary);
            status.standing.send_replace(match former {
                true => Standing::Settling,
                false => Standing::Standby { primary: None },
            });
            tasks.push(tokio::spawn(lease::run(
                settings,
                engine,
                advertise,
                Arc::clone(&status),
                stopped,
            )));
        } else {
            tasks.push(tokio::spawn(feed_only(settings, engine, stopped)));
        }
        Replication { stop, tasks, status }
    }

    /// Stops every task (the outbox keeps what was not published).
    pub async fn stop(self) {
        self.stop.send_replace(true);
        for task in self.tasks {
            task.abort();
            let _ = task.await;
        }
    }
}

/// The feed without leadership: this instance always takes writes; the
/// outbox publishes them. Sync mode fences writes while NATS is away.
async fn feed_only(settings: ReplicationSettings, engine: Arc<Engine>, stop: watch::Receiver<bool>) {
    let link = match Link::connect(&settings).await {
        Ok(link) => link,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the NATS client; the change feed is not published");
            return;
        }
    };
    let sync = settings.mode == FeedMode::Sync;
    let Some(stream) = link.stream(&settings, &stop).await else {
        return;
    };
    let store_id = match engine.store().feed_mark() {
        Ok(mark) => mark.store_id,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the feed mark");
            return;
        }
    };
    let (healthy, mut healthy_rx) = watch::channel(true);
    let publisher = feed::Publisher {
        store: engine.shared_store(),
        js: link.js.clone(),
        stream,
        prefix: settings.subject_prefix.clone(),
        origin: settings.node_id.clone(),
        store_id,
        scan_from: 1,
        district_of: engine.district_lookup(),
        metrics: engine.shared_metrics(),
        healthy,
    };
    let publishing = tokio::spawn(publisher.run(stop.clone()));
    if sync {
        let mut connected = link.connected.clone();
        let mut stop = stop.clone();
        let mut unreachable = Unreachable::new(Duration::from_millis(settings.sync_timeout_ms));
        let mut fenced = None;
        loop {
            unreachable.update(*connected.borrow_and_update() && *healthy_rx.borrow_and_update());
            let gone = unreachable.gone();
            if fenced != Some(gone) {
                fenced = Some(gone);
                engine
                    .store()
                    .set_fence(gone.then(|| "NATS JetStream is unreachable".to_owned()));
            }
            let wake = unreachable.deadline().filter(|_| !gone);
            tokio::select! {
                _ = connected.changed() => {}
                _ = healthy_rx.changed() => {}
                () = async { tokio::time::sleep_until(wake.unwrap_or_else(std::time::Instant::now).into()).await }, if wake.is_some() => {}
                _ = stop.changed() => break,
            }
        }
    }
    let _ = publishing.await;
    drop(link);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nats_counts_as_gone_only_after_the_grace() {
        let mut u = Unreachable::new(Duration::from_secs(3600));
        assert!(!u.gone() && u.deadline().is_none());
        u.update(false);
        let first = u.deadline();
        assert!(first.is_some() && !u.gone(), "a blip is ridden out");
        u.update(false);
        assert_eq!(u.deadline(), first, "counted from when it went away");
        u.update(true);
        assert!(u.deadline().is_none() && !u.gone());
        let mut u = Unreachable::new(Duration::ZERO);
        u.update(false);
        assert!(u.gone());
        u.update(true);
        assert!(!u.gone());
    }
}
