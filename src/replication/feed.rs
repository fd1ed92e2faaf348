//! The publisher: takes the outbox's entries in order and publishes them to
//! the stream, one message per tenant at a time (several tenants at once),
//! removing each entry once JetStream has acknowledged it.
//!
//! Order and exactly-once, per tenant: each message is published with
//! `Nats-Expected-Last-Subject-Sequence` (the stream sequence of the
//! tenant's previous message), so JetStream refuses it unless it goes right
//! after what this publisher last saw there. When refused, or after a
//! restart, the subject's last message is read back: if it is this store's
//! and already carries some of the entries (an acknowledgment lost to a
//! crash or a cut connection), those are done, not sent again; if it is
//! another instance's (a newer primary wrote there since), the subject's
//! messages from `scan_from` on are read (headers only) for the last of
//! this store's, whose id names the entries it carried. A failed
//! message is retried before anything later of the same tenant is sent.
//! The `Nats-Msg-Id` (origin, store, first and last entry) lets JetStream
//! drop a plain resend too.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use async_nats::jetstream::{self, stream::Stream};
use tokio::sync::watch;

use crate::domain::{Id, TenantId, Timestamp};
use crate::metrics::Metrics;
use crate::store::{Change, Pending, Store};

use super::diverge::{id_prefix, last_number, HeaderScan, EPOCH_HEADER};
use super::message::{change_time, envelope, Envelope};

/// The largest message sent: below NATS's default `max_payload` (1 MiB).
const MAX_MESSAGE: usize = 768 * 1024;
/// Entries read from the outbox per round.
const READ_BATCH: usize = 16_384;

/// Looks up the district a tenant belongs to (itself for a district).
pub type DistrictOf = Arc<dyn Fn(TenantId) -> Option<TenantId> + Send + Sync>;

pub struct Publisher {
    pub store: Arc<Store>,
    pub js: jetstream::Context,
    pub stream: Stream,
    pub prefix: String,
    pub origin: String,
    pub store_id: u64,
    /// Where on the stream this store's own messages may start (after the
    /// last message it applied as a standby; 1 if it never was one).
    pub scan_from: u64,
    pub district_of: DistrictOf,
    pub metrics: Arc<Metrics>,
    /// Whether the last round published without a failure (sync mode fences
    /// writes while it is false; see `replication`).
    pub healthy: watch::Sender<bool>,
}

/// What publishing one tenant's message came to.
enum Sent {
    /// These entries are on the stream; its subject's last sequence is now this.
    Done(Vec<u64>, u64),
    /// Refused: the subject's last message is another than expected. Its
    /// sequence, and the entries it shows are already there.
    Moved(Vec<u64>, u64),
    Failed(String),
}

impl Publisher {
    /// Runs until `stop` is set or the store fails.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        // The last stream sequence on each tenant's subject, once known.
        let mut last: HashMap<TenantId, u64> = HashMap::new();
        let mut backoff = Duration::from_millis(50);
        loop {
            if *stop.borrow() {
                return;
            }
            // Entries below `below` are finished; their flush is covered by
            // the latest write, taken after.
            let below = self.store.outbox_ready_below();
            if self.store.flushed(self.store.latest()).await.is_err() {
                return;
            }
            let pending = match self.store.outbox_read(0, below, READ_BATCH) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the change feed's outbox");
                    return;
                }
            };
            if pending.is_empty() {
                self.store.outbox_idle();
                tokio::select! {
                    () = self.store.outbox_changed() => {}
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            let messages = self.messages(pending);
            let sends = messages.iter().map(|(tenant, district, entries)| {
                let known = last.get(tenant).copied();
                self.send(*tenant, *district, entries, known)
            });
            let results = futures_util::future::join_all(sends).await;
            let mut failed = None;
            for ((tenant, _, entries), sent) in messages.iter().zip(results) {
                let (done, seq) = match sent {
                    Sent::Done(done, seq) | Sent::Moved(done, seq) => (done, seq),
                    Sent::Failed(why) => {
                        failed = Some(why);
                        continue;
                    }
                };
                last.insert(*tenant, seq);
                if done.is_empty() {
                    continue;
                }
                if let Err(e) = self.store.outbox_published(&done) {
                    tracing::error!(error = %e, "cannot remove published entries from the outbox");
                    return;
                }
                let now = Timestamp::now().micros();
                for p in entries.iter().filter(|p| done.contains(&p.seq)) {
                    let lag = (now - change_time(&p.entry.change).micros()).max(0);
                    self.metrics.feed.publish_lag.observe(lag as f64 / 1e6);
                }
                self.metrics.feed.published.inc_by(done.len() as u64);
            }
            match failed {
                None => {
                    backoff = Duration::from_millis(50);
                    self.healthy.send_if_modified(|h| !std::mem::replace(h, true));
                }
                Some(why) => {
                    self.metrics.feed.publish_errors.inc();
                    if self.healthy.send_if_modified(|h| std::mem::replace(h, false)) {
                        tracing::warn!(error = %why, depth = self.store.outbox_depth(),
                            "the change feed cannot publish; changes wait in the outbox");
                    }
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    /// Each tenant's first message of this round: its entries in order, up
    /// to `MAX_MESSAGE` bytes, all of one epoch, and none past a transfer's
    /// arrival whose source still has an earlier entry here (see `held`).
    fn messages(&self, pending: Vec<Pending>) -> Vec<(TenantId, TenantId, Vec<Pending>)> {
        let mut by_tenant: BTreeMap<TenantId, (usize, Vec<Pending>)> = BTreeMap::new();
        let mut closed: std::collections::HashSet<TenantId> = std::collections::HashSet::new();
        // Tenants with an entry earlier in this round.
        let mut earlier: std::collections::HashSet<TenantId> = std::collections::HashSet::new();
        for p in pending {
            let tenant = p.entry.tenant;
            let held = held(&p, &earlier);
            earlier.insert(tenant);
            if closed.contains(&tenant) {
                continue;
            }
            if held {
                closed.insert(tenant);
                continue;
            }
            let (bytes, entries) = by_tenant.entry(tenant).or_default();
            let size = p.change_bytes.len() * 3;
            let other_epoch = entries.first().is_some_and(|f| f.entry.epoch != p.entry.epoch);
            if !entries.is_empty() && (*bytes + size > MAX_MESSAGE || other_epoch) {
                closed.insert(tenant);
                continue;
            }
            *bytes += size;
            entries.push(p);
        }
        by_tenant
            .into_iter()
            .map(|(tenant, (_, entries))| {
                let district = (self.district_of)(tenant).unwrap_or(tenant);
                (tenant, district, entries)
            })
            .collect()
    }

    fn subject(&self, tenant: TenantId, district: TenantId) -> String {
        format!("{}.{}.{}", self.prefix, district.get(), tenant.get())
    }

    async fn send(&self, tenant: TenantId, district: TenantId, entries: &[Pending], known: Option<u64>) -> Sent {
        let subject = self.subject(tenant, district);
        let expected = match known {
            Some(seq) => seq,
            None => {
                // First message of this tenant since start: what is there?
                match self.last_there(&subject, entries).await {
                    Ok((done, seq)) if !done.is_empty() => return Sent::Moved(done, seq),
                    Ok((_, seq)) => seq,
                    Err(why) => return Sent::Failed(why),
                }
            }
        };
        let epoch = entries.first().map_or(0, |p| p.entry.epoch);
        let env = envelope(&self.origin, epoch, tenant, district, entries);
        let (first, last_n) = (env.first, env.last);
        let payload = match serde_json::to_vec(&env) {
            Ok(p) => p,
            Err(e) => return Sent::Failed(format!("cannot encode a feed message: {e}")),
        };
        let publish = PublishMessage::build()
            .payload(payload.into())
            .message_id(format!("{}{first}-{last_n}", id_prefix(&self.origin, self.store_id)))
            .header(EPOCH_HEADER, epoch.to_string().as_str())
            .expected_last_subject_sequence(expected);
        let acked = match self.js.send_publish(subject.clone(), publish).await {
            Ok(ack) => ack.await,
            Err(e) => Err(e),
        };
        match acked {
            Ok(ack) => Sent::Done(entries.iter().map(|p| p.seq).collect(), ack.sequence),
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => match self.last_there(&subject, entries).await
            {
                Ok((done, seq)) => Sent::Moved(done, seq),
                Err(why) => Sent::Failed(why),
            },
            Err(e) => Sent::Failed(e.to_string()),
        }
    }

    /// The subject's last message: its sequence, and which of `entries` it
    /// shows are already on the stream (this origin and store, numbered up
    /// to its last).
    async fn last_there(&self, subject: &str, entries: &[Pending]) -> Result<(Vec<u64>, u64), String> {
        match self.stream.get_last_raw_message_by_subject(subject).await {
            Ok(msg) => {
                let env: Option<Envelope> = serde_json::from_slice(&msg.payload).ok();
                let last_ours = match env {
                    Some(env) if env.origin == self.origin && self.ours(&msg.headers, &env) => Some(env.last),
                    Some(_) => self.last_ours(subject, msg.sequence).await?,
                    None => None,
                };
                let done = match last_ours {
                    Some(last) => entries.iter().map(|p| p.seq).filter(|n| *n <= last).collect(),
                    None => Vec::new(),
                };
                Ok((done, msg.sequence))
            }
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok((Vec::new(), 0)),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The last outbox number this store's messages on `subject` carried,
    /// reading its messages from `scan_from` up to `upto` (headers only:
    /// the message id names the numbers).
    async fn last_ours(&self, subject: &str, upto: u64) -> Result<Option<u64>, String> {
        if upto < self.scan_from {
            return Ok(None);
        }
        let ours = id_prefix(&self.origin, self.store_id);
        let mut scan = HeaderScan::start(&self.stream, subject.to_owned(), self.scan_from, upto).await?;
        let mut last = None;
        while let Some((_, msg)) = scan.next().await? {
            let id = msg
                .headers
                .as_ref()
                .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID));
            if let Some(n) = id.and_then(|id| last_number(id.as_str(), &ours)) {
                last = last.max(Some(n));
            }
        }
        Ok(last)
    }

    /// Whether a message of this origin came from this data dir (its id names the store).
    fn ours(&self, headers: &async_nats::HeaderMap, env: &Envelope) -> bool {
        let id = format!("{}{}-{}", id_prefix(&self.origin, self.store_id), env.first, env.last);
        headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .is_some_and(|v| v.as_str() == id)
    }
}

/// Whether `p` is the arriving side of a transfer whose source has an
/// earlier entry still to publish (`earlier`: the tenants with one). The
/// source's change, the transfer's commit point, goes on the stream first,
/// so a standby, reading the stream in order, meets the seats leaving
/// before it meets them arriving (and their purchase before either):
/// publishing tenants side by side would otherwise let the arrival win.
fn held(p: &Pending, earlier: &std::collections::HashSet<TenantId>) -> bool {
    match &p.entry.change {
        Change::Seats { from: Some(from), .. } => earlier.contains(from),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::OutboxEntry;

    fn pending(tenant: u64, from: Option<u64>) -> Pending {
        let id = |n| TenantId::new(n).unwrap_or_else(|| unreachable!());
        Pending {
            seq: 1,
            entry: OutboxEntry {
                tenant: id(tenant),
                epoch: 0,
                witness: None,
                change: Change::Seats {
                    part: 0,
                    parts: 1,
                    writes: Vec::new(),
                    from: from.map(id),
                },
            },
            change_bytes: Vec::new(),
        }
    }

    /// An arrival waits while its source has an earlier entry to publish;
    /// nothing else waits for another tenant.
    #[test]
    fn an_arrival_waits_for_its_source_alone() {
        let earlier: std::collections::HashSet<TenantId> = [TenantId::new(4)].into_iter().flatten().collect();
        assert!(held(&pending(5, Some(4)), &earlier));
        assert!(!held(&pending(5, Some(6)), &earlier));
        assert!(!held(&pending(5, None), &earlier));
        assert!(!held(&pending(4, None), &earlier));
    }
}
