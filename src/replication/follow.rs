//! The warm standby: reads the stream in order from where this store left
//! it and applies every change through the engine (`Engine::apply_change`).
//!
//! The epoch rule: a new primary's first message is an epoch marker
//! (`<prefix>.epoch`); every change message after it that carries an older
//! epoch is refused (a deposed primary's late publish, or the changes a
//! restarted one publishes from its outbox). Every reader of the stream
//! meets the marker at the same place, so all refuse the same changes.
//! A refused change of this very store means it left the stream's history
//! (see `diverge`): it stops following and says so (`diverged`).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_nats::jetstream::consumer::{pull::OrderedConfig, DeliverPolicy};
use async_nats::jetstream::stream::Stream;
use futures_util::StreamExt;
use tokio::sync::watch;

use crate::domain::{Id, TenantId, Timestamp};
use crate::engine::Engine;

use super::diverge::{judge, Verdict};
use super::message::{change_time, decode_change, Envelope, EpochMarker, EPOCH_TOKEN};
use super::{Standing, Status};

pub struct Follower {
    pub engine: Arc<Engine>,
    pub stream: Stream,
    pub prefix: String,
    pub status: Arc<Status>,
    /// The stream sequence of the last message applied.
    pub applied: watch::Sender<u64>,
    /// The highest epoch in force seen on the stream.
    pub epoch: watch::Sender<u64>,
    /// The id prefix of this store's own messages (`diverge::id_prefix`).
    pub ours: String,
    /// Set to the stream sequence of a refused message of this store's.
    pub diverged: watch::Sender<Option<u64>>,
}

impl Follower {
    /// Follows until `stop` is set; returns on an error (the caller starts
    /// again from the mark).
    pub async fn run(&self, mut stop: watch::Receiver<bool>) -> Result<(), String> {
        let from = *self.applied.borrow() + 1;
        let consumer = self
            .stream
            .create_consumer(OrderedConfig {
                filter_subject: format!("{}.>", self.prefix),
                deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: from },
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
        loop {
            let msg = tokio::select! {
                m = messages.next() => m,
                _ = stop.changed() => return Ok(()),
            };
            let Some(msg) = msg else {
                return Err("the stream's consumer ended".into());
            };
            let msg = msg.map_err(|e| e.to_string())?;
            let (seq, pending, published) = {
                let info = msg.info().map_err(|e| e.to_string())?;
                (info.stream_sequence, info.pending, info.published)
            };
            let ours = msg
                .headers
                .as_ref()
                .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
                .is_some_and(|id| id.as_str().starts_with(&self.ours));
            if !self.apply(&msg.subject, &msg.payload, ours).await? {
                self.diverged.send_replace(Some(seq));
                return Err(format!("message {seq} is this store's own change, refused by the epoch rule: this store left the stream's history"));
            }
            let lag = if pending == 0 {
                0
            } else {
                let published = published.unix_timestamp_nanos() / 1_000;
                ((Timestamp::now().micros() as i128 - published).max(0) / 1_000) as u64
            };
            self.status.lag_ms.store(lag, Ordering::Relaxed);
            let store = self.engine.store();
            let mut mark = store.feed_mark().map_err(|e| e.to_string())?;
            mark.applied = seq;
            mark.epoch = mark.epoch.max(*self.epoch.borrow());
            store.set_feed_mark(&mark).map_err(|e| e.to_string())?;
            self.applied.send_replace(seq);
        }
    }

    /// Applies one message; false: it is a change of this store's own that
    /// the epoch rule refuses.
    async fn apply(&self, subject: &str, payload: &[u8], ours: bool) -> Result<bool, String> {
        if subject == format!("{}.{EPOCH_TOKEN}", self.prefix) {
            let marker: EpochMarker = serde_json::from_slice(payload).map_err(|e| format!("epoch marker: {e}"))?;
            self.epoch.send_if_modified(|e| {
                let newer = marker.epoch > *e;
                *e = (*e).max(marker.epoch);
                newer
            });
            self.engine.metrics().feed.epoch.set(*self.epoch.borrow() as i64);
            self.status.standing.send_if_modified(|s| match s {
                Standing::Standby { primary } if primary.as_deref() != Some(marker.url.as_str()) => {
                    *primary = Some(marker.url.clone());
                    true
                }
                _ => false,
            });
            return Ok(true);
        }
        let env: Envelope = serde_json::from_slice(payload).map_err(|e| format!("feed message on {subject}: {e}"))?;
        let in_force = *self.epoch.borrow();
        if let Verdict::Refused { ours } = judge(false, env.epoch, in_force, ours) {
            if ours {
                return Ok(false);
            }
            tracing::warn!(origin = %env.origin, epoch = env.epoch, in_force = *self.epoch.borrow(),
                changes = env.changes.len(), "refused changes stamped with an older epoch");
            self.engine
                .metrics()
                .feed
                .stale_refused
                .inc_by(env.changes.len() as u64);
            return Ok(true);
        }
        let tenant = TenantId::new(env.tenant_id).ok_or("a feed message names tenant 0")?;
        let now = Timestamp::now().micros();
        for c in &env.changes {
            let change = decode_change(c)?;
            let at = change_time(&change).micros();
            self.engine
                .apply_change(tenant, change)
                .await
                .map_err(|e| format!("applying change {} of {}: {e:?}", c.n, env.origin))?;
            self.engine.metrics().feed.applied.inc();
            self.engine
                .metrics()
                .feed
                .apply_lag
                .observe((now - at).max(0) as f64 / 1e6);
        }
        Ok(true)
    }
}
