//! Leadership: one key in a JetStream key-value bucket whose entries live
//! `lease_ttl_ms` (the bucket's max age) unless rewritten. The primary
//! rewrites it every third of that, by compare-and-set on its revision; a
//! standby takes it only once it is gone (`create`: only if absent), with
//! the next epoch. A primary that has not renewed for half the TTL stops
//! acknowledging (the store's fence) well before the key can expire, so
//! two primaries never both acknowledge. A new primary publishes an epoch
//! marker, applies the stream up to it, and only then takes writes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::config::{FeedMode, ReplicationSettings};
use crate::engine::Engine;
use crate::store::FeedRole;

use super::follow::Follower;
use super::message::{EpochMarker, EPOCH_TOKEN, SCHEMA};
use super::{feed, Link, Standing, Status};

const KEY: &str = "primary";

/// The lease's value.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Lease {
    holder: String,
    epoch: u64,
    url: String,
}

pub async fn run(
    settings: ReplicationSettings,
    engine: Arc<Engine>,
    advertise: String,
    status: Arc<Status>,
    stop: watch::Receiver<bool>,
) {
    if let Err(e) = lead_or_follow(&settings, &engine, &advertise, &status, stop).await {
        tracing::error!(error = %e, "replication stopped");
    }
}

async fn lead_or_follow(
    settings: &ReplicationSettings,
    engine: &Arc<Engine>,
    advertise: &str,
    status: &Arc<Status>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let ttl = Duration::from_millis(settings.lease_ttl_ms);
    let sync = settings.mode == FeedMode::Sync;
    let store = engine.shared_store();
    let metrics = engine.shared_metrics();
    let link = Link::connect(settings).await?;
    let Some(stream) = link.stream(settings, &stop).await else {
        return Ok(());
    };
    tracing::debug!("the stream is there");
    let mut said = Instant::now() - Duration::from_secs(60);
    let kv = loop {
        // The bucket's stream, made as a bucket is (`KV_<bucket>`, one
        // message per key): made directly, because this client cannot read
        // nats-server 2.9's answer to its own bucket creation.
        let config = async_nats::jetstream::stream::Config {
            name: format!("KV_{}", settings.lease_bucket),
            subjects: vec![format!("$KV.{}.>", settings.lease_bucket)],
            max_messages_per_subject: 1,
            max_age: ttl,
            num_replicas: settings.replicas,
            discard: async_nats::jetstream::stream::DiscardPolicy::New,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            duplicate_window: ttl.min(Duration::from_secs(120)),
            ..Default::default()
        };
        let created = tokio::time::timeout(Duration::from_secs(3), link.js.get_or_create_stream(config))
            .await
            .map_err(|_| "timed out".to_owned())
            .and_then(|r| r.map(drop).map_err(|e| e.to_string()));
        match created {
            Err(create) => {
                if said.elapsed() > Duration::from_secs(5) {
                    tracing::warn!(error = %create, "the lease bucket is not reachable yet; retrying");
                    said = Instant::now();
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = stop.changed() => return Ok(()),
                }
            }
            Ok(()) => match link.js.get_key_value(&settings.lease_bucket).await {
                Ok(kv) => break kv,
                Err(e) => {
                    if said.elapsed() > Duration::from_secs(5) {
                        tracing::warn!(error = %e, "the lease bucket is not reachable yet; retrying");
                        said = Instant::now();
                    }
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(200)) => {}
                        _ = stop.changed() => return Ok(()),
                    }
                }
            },
        }
    };
    let mark = store.feed_mark().map_err(|e| e.to_string())?;
    // One publisher for the process: while a standby it publishes what a
    // former primary left in its outbox (stamped with that epoch, refused
    // by the epoch rule if a newer primary came first); while primary, the
    // new changes.
    let (healthy, healthy_rx) = watch::channel(true);
    let publisher = feed::Publisher {
        store: Arc::clone(&store),
        js: link.js.clone(),
        stream: stream.clone(),
        prefix: settings.subject_prefix.clone(),
        origin: settings.node_id.clone(),
        store_id: mark.store_id,
        district_of: engine.district_lookup(),
        metrics: Arc::clone(&metrics),
        healthy,
    };
    let publishing = tokio::spawn(publisher.run(stop.clone()));
    let (applied, _) = watch::channel(mark.applied);
    let (epoch_tx, _) = watch::channel(mark.epoch);
    let follower = Arc::new(Follower {
        engine: Arc::clone(engine),
        stream: stream.clone(),
        prefix: settings.subject_prefix.clone(),
        status: Arc::clone(status),
        applied,
        epoch: epoch_tx,
    });
    let result = loop {
        // ---- standby ----
        store.set_role(FeedRole::Standby, Duration::from_millis(settings.sync_timeout_ms));
        store.set_fence(Some("this instance is a standby".into()));
        metrics.feed.primary.set(0);
        status.standing.send_replace(Standing::Standby { primary: None });
        let (stop_follow, follow_stop) = watch::channel(false);
        let mut following = Some({
            let follower = Arc::clone(&follower);
            let mut stop = stop.clone();
            tokio::spawn(async move {
                loop {
                    if let Err(e) = follower.run(follow_stop.clone()).await {
                        tracing::warn!(error = %e, "following the stream failed; retrying from the last applied message");
                    }
                    if *follow_stop.borrow() || *stop.borrow() {
                        return;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(200)) => {}
                        _ = stop.changed() => return,
                    }
                }
            })
        });
        let taken = loop {
            tokio::select! {
                () = tokio::time::sleep(ttl / 4) => {}
                _ = stop.changed() => break None,
            }
            let entry = kv.entry(KEY).await;
            tracing::debug!(?entry, "the lease");
            match entry {
                Ok(Some(e)) if e.operation == kv::Operation::Put => {
                    if let Ok(lease) = serde_json::from_slice::<Lease>(&e.value) {
                        follower.epoch.send_if_modified(|ep| {
                            let newer = lease.epoch > *ep;
                            *ep = (*ep).max(lease.epoch);
                            newer
                        });
                        if lease.holder != settings.node_id {
                            status.standing.send_replace(Standing::Standby {
                                primary: Some(lease.url),
                            });
                        }
                    }
                    continue;
                }
                Ok(_) => {}
                Err(_) => continue,
            }
            let epoch = *follower.epoch.borrow() + 1;
            let lease = Lease {
                holder: settings.node_id.clone(),
                epoch,
                url: advertise.to_owned(),
            };
            let value = serde_json::to_vec(&lease).map_err(|e| e.to_string())?;
            match kv.create(KEY, value.clone().into()).await {
                Ok(rev) => {
                    tracing::info!(epoch, "took the lease; catching up before taking writes");
                    break Some((lease, value, rev));
                }
                Err(e) => tracing::debug!(error = %e, "the lease was taken first"),
            }
        };
        let Some((lease, value, mut rev)) = taken else {
            stop_follow.send_replace(true);
            if let Some(f) = following.take() {
                let _ = f.await;
            }
            break Ok(());
        };
        let mut renewed = Instant::now();
        // ---- taking over: the marker, then the rest of the stream up to it ----
        let marker = EpochMarker {
            schema: SCHEMA.into(),
            origin: settings.node_id.clone(),
            epoch: lease.epoch,
            url: advertise.to_owned(),
        };
        let payload = serde_json::to_vec(&marker).map_err(|e| e.to_string())?;
        let subject = format!("{}.{EPOCH_TOKEN}", settings.subject_prefix);
        let marker_seq = match link.js.publish(subject, payload.into()).await {
            Ok(ack) => ack.await.map(|a| a.sequence).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let marker_seq = match marker_seq {
            Ok(seq) => seq,
            Err(e) => {
                tracing::warn!(error = %e, "could not publish the epoch marker; standing down");
                let _ = kv.delete(KEY).await;
                stop_follow.send_replace(true);
                if let Some(f) = following.take() {
                    let _ = f.await;
                }
                continue;
            }
        };
        let mut caught_up = follower.applied.subscribe();
        let mut fenced = true;
        let mut leading = false;
        let mut healthy_rx = healthy_rx.clone();
        let mut connected = link.connected.clone();
        // ---- primary: renew; fence when the lease or NATS is gone ----
        let lost = loop {
            let may = renewed.elapsed() < ttl / 2
                && leading
                && (!sync || (*connected.borrow_and_update() && *healthy_rx.borrow_and_update()));
            if may == fenced {
                fenced = !may;
                store.set_fence((!may).then(|| "this primary cannot reach NATS or renew its lease".to_owned()));
                metrics.feed.primary.set(i64::from(may));
                if may {
                    engine.promoted();
                }
                if !may && leading {
                    tracing::warn!("stopped acknowledging writes: the lease or NATS is out of reach");
                }
            }
            let deadline = tokio::time::Instant::from_std(renewed + ttl / 2);
            tokio::select! {
                () = tokio::time::sleep(ttl / 3) => {
                    match tokio::time::timeout(ttl / 4, kv.update(KEY, value.clone().into(), rev)).await {
                        Ok(Ok(r)) => { rev = r; renewed = Instant::now(); }
                        Ok(Err(e)) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => break true,
                        _ => {}
                    }
                }
                () = tokio::time::sleep_until(deadline), if !fenced => {}
                ok = async { caught_up.wait_for(|a| *a + 1 >= marker_seq).await.is_ok() }, if !leading => {
                    if ok {
                        stop_follow.send_replace(true);
                        if let Some(f) = following.take() {
                            let _ = f.await;
                        }
                        store.set_epoch(lease.epoch);
                        let mut mark = store.feed_mark().map_err(|e| e.to_string())?;
                        mark.epoch = lease.epoch;
                        mark.primary = true;
                        store.set_feed_mark(&mark).map_err(|e| e.to_string())?;
                        store.set_role(FeedRole::Primary { sync }, Duration::from_millis(settings.sync_timeout_ms));
                        metrics.feed.epoch.set(lease.epoch as i64);
                        status.lag_ms.store(0, std::sync::atomic::Ordering::Relaxed);
                        status.standing.send_replace(Standing::Primary);
                        leading = true;
                        tracing::info!(epoch = lease.epoch, "primary: taking writes");
                    }
                }
                _ = connected.changed() => {}
                _ = healthy_rx.changed() => {}
                _ = stop.changed() => break false,
            }
        };
        store.set_fence(Some("this instance lost its lease".into()));
        stop_follow.send_replace(true);
        if let Some(f) = following.take() {
            let _ = f.await;
        }
        if !lost {
            break Ok(());
        }
        tracing::warn!("another instance holds the lease now; this one is a standby again");
    };
    publishing.abort();
    let _ = publishing.await;
    result
}
