//! Leadership: one key in a JetStream key-value bucket whose entries live
//! `lease_ttl_ms` (the bucket's max age) unless rewritten. The primary
//! rewrites it every fifth of that, by compare-and-set on its revision; a
//! standby takes it only once it is gone (`create`: only if absent), with
//! the next epoch. A primary whose last good renewal was *sent* 7/10 of the
//! TTL ago stops acknowledging (the store's fence): the bucket stamped that
//! renewal after it was sent, so the key outlives the fence by at least
//! 3/10 of the TTL, and two primaries never both acknowledge. A new primary
//! publishes an epoch marker, applies the stream up to it, and only then
//! takes writes.
//!
//! Why these fractions: a NATS server killed outright leaves its streams
//! leaderless until an election (seconds, see docs/FEED.md); between the
//! last renewal before it and the fence there are 1/2 of the TTL, which a
//! TTL of 20 s makes longer than an election, so losing one NATS server of
//! three neither fences the primary nor hands the lease over.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::config::{FeedMode, ReplicationSettings};
use crate::engine::Engine;
use crate::store::FeedRole;

use super::diverge::{id_prefix, EPOCH_HEADER};
use super::follow::Follower;
use super::former::{check_own_changes, rebuild, OwnChanges};
use super::message::{EpochMarker, EPOCH_TOKEN, SCHEMA};
use super::{feed, Link, Standing, Status, Unreachable};

const KEY: &str = "primary";

/// How often the primary renews, as a fraction of the TTL.
const RENEW_EVERY: u32 = 5;
/// After a failed renewal, the next try comes this soon.
const RETRY: Duration = Duration::from_millis(250);

/// Since when the primary may no longer acknowledge: 7/10 of the TTL after
/// its last good renewal was sent.
fn must_stop(renewed: Instant, ttl: Duration) -> Instant {
    renewed + ttl * 7 / 10
}

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
    let sync = settings.mode == FeedMode::Sync;
    let grace = Duration::from_millis(settings.sync_timeout_ms);
    let store = engine.shared_store();
    let metrics = engine.shared_metrics();
    let link = Link::connect(settings).await?;
    let Some(stream) = link.stream(settings, &stop).await else {
        return Ok(());
    };
    tracing::debug!("the stream is there");
    let Some((kv, ttl)) = bucket(&link, settings, &mut stop).await else {
        return Ok(());
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
        scan_from: mark.applied + 1,
        district_of: engine.district_lookup(),
        metrics: Arc::clone(&metrics),
        healthy,
    };
    let publishing = tokio::spawn(publisher.run(stop.clone()));
    let (applied, _) = watch::channel(mark.applied);
    let (epoch_tx, _) = watch::channel(mark.epoch);
    let (diverged, _) = watch::channel(None);
    let ours = id_prefix(&settings.node_id, mark.store_id);
    let follower = Arc::new(Follower {
        engine: Arc::clone(engine),
        stream: stream.clone(),
        prefix: settings.subject_prefix.clone(),
        status: Arc::clone(status),
        applied,
        epoch: epoch_tx,
        ours: ours.clone(),
        diverged,
    });
    let mut diverged = follower.diverged.subscribe();
    let result = 'roles: loop {
        // ---- standby ----
        store.set_role(FeedRole::Standby, Duration::from_millis(settings.sync_timeout_ms));
        store.set_fence(Some("this instance is a standby".into()));
        metrics.feed.primary.set(0);
        // A former primary: its changes must be on the stream and taken
        // there before it follows (or leads) again, and until then it
        // answers nothing (`Standing::Settling`).
        match check_own_changes(&store, status, &stream, &settings.subject_prefix, &ours, stop.clone()).await? {
            OwnChanges::Taken => {}
            OwnChanges::Stopped => break Ok(()),
            OwnChanges::Refused(seq) => break rebuild(&stream, status, seq, stop.clone()).await,
        }
        let mut following = Following::start(Arc::clone(&follower), stop.clone());
        let poll = (ttl / 10).min(Duration::from_secs(1));
        let mut lease_epoch = 0;
        let taken = loop {
            tokio::select! {
                () = tokio::time::sleep(poll) => {}
                _ = stop.changed() => break Err(None),
                _ = diverged.changed() => {
                    let refused = *diverged.borrow_and_update();
                    if let Some(seq) = refused {
                        break Err(Some(seq));
                    }
                }
            }
            let entry = kv.entry(KEY).await;
            tracing::debug!(?entry, "the lease");
            match entry {
                Ok(Some(e)) if e.operation == kv::Operation::Put => {
                    if let Ok(lease) = serde_json::from_slice::<Lease>(&e.value) {
                        // Not the follower's epoch in force: that moves only
                        // at the markers on the stream, where every reader
                        // meets them (a store catching up from far behind
                        // must not judge old changes by today's lease).
                        lease_epoch = lease_epoch.max(lease.epoch);
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
            // Above every epoch ever in force: the last marker on the
            // stream says (this store may not have read that far yet, and
            // an expired lease leaves no trace in the bucket).
            let last_marker = match last_marker_epoch(&stream, &settings.subject_prefix).await {
                Ok(e) => e,
                Err(e) => {
                    tracing::debug!(error = %e, "cannot read the last epoch marker; not taking the lease now");
                    continue;
                }
            };
            let epoch = lease_epoch.max(last_marker).max(*follower.epoch.borrow()) + 1;
            let lease = Lease {
                holder: settings.node_id.clone(),
                epoch,
                url: advertise.to_owned(),
            };
            let value = serde_json::to_vec(&lease).map_err(|e| e.to_string())?;
            let sent = Instant::now();
            match kv.create(KEY, value.clone().into()).await {
                Ok(rev) => {
                    tracing::info!(epoch, "took the lease; catching up before taking writes");
                    break Ok((lease, value, rev, sent));
                }
                Err(e) => tracing::debug!(error = %e, "the lease was taken first"),
            }
        };
        let (lease, value, mut rev, mut renewed) = match taken {
            Ok(taken) => taken,
            Err(why) => {
                following.stop().await;
                match why {
                    Some(seq) => break rebuild(&stream, status, seq, stop.clone()).await,
                    None => break Ok(()),
                }
            }
        };
        // ---- taking over: the marker, then the rest of the stream up to it ----
        let marker = EpochMarker {
            schema: SCHEMA.into(),
            origin: settings.node_id.clone(),
            epoch: lease.epoch,
            url: advertise.to_owned(),
        };
        let payload = serde_json::to_vec(&marker).map_err(|e| e.to_string())?;
        let subject = format!("{}.{EPOCH_TOKEN}", settings.subject_prefix);
        let publish = PublishMessage::build()
            .payload(payload.into())
            .header(EPOCH_HEADER, lease.epoch.to_string().as_str());
        let marker_seq = match link.js.send_publish(subject, publish).await {
            Ok(ack) => ack.await.map(|a| a.sequence).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let marker_seq = match marker_seq {
            Ok(seq) => seq,
            Err(e) => {
                tracing::warn!(error = %e, "could not publish the epoch marker; standing down");
                // Only our own lease: it may have run out meanwhile and be another's now.
                let _ = kv.delete_expect_revision(KEY, Some(rev)).await;
                following.stop().await;
                continue;
            }
        };
        let mut caught_up = follower.applied.subscribe();
        let mut fenced = true;
        let mut leading = false;
        let mut healthy_rx = healthy_rx.clone();
        let mut connected = link.connected.clone();
        let mut next_renew = renewed + ttl / RENEW_EVERY;
        store.set_lease_until(Some(must_stop(renewed, ttl)));
        // Sync mode: since when NATS has been out of reach (see `Unreachable`).
        let mut unreachable = Unreachable::new(grace);
        // ---- primary: renew; fence when the lease or NATS is gone ----
        let lost = loop {
            unreachable.update(*connected.borrow_and_update() && *healthy_rx.borrow_and_update());
            let stop_at = must_stop(renewed, ttl);
            let may = Instant::now() < stop_at && leading && (!sync || !unreachable.gone());
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
            let wake = unreachable.deadline().map_or(stop_at, |d| d.min(stop_at));
            tokio::select! {
                () = tokio::time::sleep_until(next_renew.into()) => {
                    let sent = Instant::now();
                    match tokio::time::timeout(ttl / 4, kv.update(KEY, value.clone().into(), rev)).await {
                        Ok(Ok(r)) => {
                            rev = r;
                            renewed = sent;
                            store.set_lease_until(Some(must_stop(renewed, ttl)));
                            next_renew = sent + ttl / RENEW_EVERY;
                        }
                        Ok(Err(e)) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                            // Our own renewal may have landed after its
                            // timeout: then the key is still ours (its time
                            // unknown, so `renewed` stays), else it is lost.
                            match kv.entry(KEY).await {
                                Ok(Some(e)) if e.operation == kv::Operation::Put
                                    && e.value.as_ref() == value.as_slice() =>
                                {
                                    rev = e.revision;
                                    next_renew = Instant::now();
                                }
                                _ => break true,
                            }
                        }
                        _ => next_renew = Instant::now() + RETRY.min(ttl / RENEW_EVERY),
                    }
                }
                () = tokio::time::sleep_until(wake.into()), if !fenced => {}
                ok = async { caught_up.wait_for(|a| *a + 1 >= marker_seq).await.is_ok() }, if !leading => {
                    if ok {
                        following.stop().await;
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
                // Catching up, the follower met a change of this store's
                // that the stream refused: it cannot lead from here.
                _ = diverged.changed(), if !leading => {
                    let refused = *diverged.borrow_and_update();
                    if let Some(seq) = refused {
                        store.set_fence(Some("this instance is rebuilding its store".into()));
                        following.stop().await;
                        let _ = kv.delete_expect_revision(KEY, Some(rev)).await;
                        break 'roles rebuild(&stream, status, seq, stop.clone()).await;
                    }
                }
                _ = connected.changed() => {}
                _ = healthy_rx.changed() => {}
                _ = stop.changed() => break false,
            }
        };
        store.set_fence(Some("this instance lost its lease".into()));
        store.set_lease_until(None);
        following.stop().await;
        if !lost {
            break Ok(());
        }
        tracing::warn!("another instance holds the lease now; this one is a standby again");
    };
    publishing.abort();
    let _ = publishing.await;
    result
}

/// The lease bucket (made if missing) and its TTL: its max age, which may
/// differ from `lease_ttl_ms` if another instance (or an earlier setting)
/// made it. `None` once stopped.
async fn bucket(
    link: &Link,
    settings: &ReplicationSettings,
    stop: &mut watch::Receiver<bool>,
) -> Option<(kv::Store, Duration)> {
    let ttl = Duration::from_millis(settings.lease_ttl_ms);
    let mut said: Option<Instant> = None;
    loop {
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
            // Reads go to the stream's leader: on nats-server 2.9 a direct
            // get of a clustered bucket can go unanswered.
            allow_direct: false,
            duplicate_window: ttl.min(Duration::from_secs(120)),
            ..Default::default()
        };
        let made = tokio::time::timeout(Duration::from_secs(3), link.js.get_or_create_stream(config))
            .await
            .map_err(|_| "timed out".to_owned())
            .and_then(|r| r.map(|s| s.cached_info().config.max_age).map_err(|e| e.to_string()));
        let got = match made {
            Ok(max_age) => link
                .js
                .get_key_value(&settings.lease_bucket)
                .await
                .map(|kv| (kv, max_age))
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        match got {
            Ok((kv, max_age)) => {
                if max_age != ttl {
                    tracing::warn!(
                        bucket_ms = max_age.as_millis() as u64,
                        lease_ttl_ms = settings.lease_ttl_ms,
                        "the lease bucket's TTL is not this instance's lease_ttl_ms; the bucket's rules (every \
                         instance times its lease by it)"
                    );
                }
                return Some((kv, max_age));
            }
            Err(e) => {
                if said.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
                    tracing::warn!(error = %e, "the lease bucket is not reachable yet; retrying");
                    said = Some(Instant::now());
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = stop.changed() => return None,
                }
            }
        }
    }
}

/// The follower's task while this instance is a standby (or catching up).
struct Following {
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Following {
    fn start(follower: Arc<Follower>, mut stop: watch::Receiver<bool>) -> Following {
        let (tx, follow_stop) = watch::channel(false);
        let task = tokio::spawn(async move {
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
        });
        Following {
            stop: tx,
            task: Some(task),
        }
    }

    async fn stop(&mut self) {
        self.stop.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// The epoch of the last marker on the stream (0: none yet).
async fn last_marker_epoch(stream: &Stream, prefix: &str) -> Result<u64, String> {
    match stream
        .get_last_raw_message_by_subject(&format!("{prefix}.{EPOCH_TOKEN}"))
        .await
    {
        Ok(msg) => serde_json::from_slice::<EpochMarker>(&msg.payload)
            .map(|m| m.epoch)
            .map_err(|e| format!("epoch marker {}: {e}", msg.sequence)),
        Err(e) if e.kind() == async_nats::jetstream::stream::LastRawMessageErrorKind::NoMessageFound => Ok(0),
        Err(e) => Err(e.to_string()),
    }
}
