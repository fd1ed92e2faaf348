//! Whether this store holds changes the stream's history refused.
//!
//! A primary's changes reach the stream after they are committed here. If
//! a newer primary's epoch marker got there first (the old primary was
//! killed and its outbox drained after a takeover, or a deposed primary's
//! publish came late), every reader refuses them: this store then holds
//! changes no other copy has, and following the stream on top of them
//! would mix two histories (two learners on one seat, a broken chain). Such
//! a store cannot follow again; it is rebuilt from the stream instead (see
//! `lease`). Only a store that was primary can be in this state, and only
//! through its own messages, which the message id names.

use async_nats::jetstream::consumer::{pull::OrderedConfig, DeliverPolicy};
use async_nats::jetstream::stream::Stream;
use futures_util::StreamExt;

use super::message::{EpochMarker, EPOCH_TOKEN};

/// How long a scan of the stream waits for its next message.
pub const SCAN_IDLE: std::time::Duration = std::time::Duration::from_secs(10);

/// The header carrying a message's epoch (change messages and markers).
pub const EPOCH_HEADER: &str = "Tenant-Feed-Epoch";

/// The start of every message id this data dir publishes (origin, then
/// store id: a new data dir under the same node id is another store).
pub fn id_prefix(origin: &str, store_id: u64) -> String {
    format!("{origin}-{store_id:016x}-")
}

/// The last outbox number a message id of `ours` names (`<ours><first>-<last>`).
pub fn last_number(id: &str, ours: &str) -> Option<u64> {
    id.strip_prefix(ours)?.split_once('-')?.1.parse().ok()
}

/// What a reader of the stream decides about one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A marker: the epoch in force from here on (at least).
    Marker(u64),
    Applied,
    /// Stamped with an older epoch than the one in force.
    Refused {
        ours: bool,
    },
}

/// The epoch rule, as every reader applies it.
pub fn judge(is_marker: bool, epoch: u64, in_force: u64, ours: bool) -> Verdict {
    if is_marker {
        Verdict::Marker(epoch.max(in_force))
    } else if epoch < in_force {
        Verdict::Refused { ours }
    } else {
        Verdict::Applied
    }
}

/// Reads the stream's message headers from `from` to its end as it is now,
/// starting with `in_force` as the epoch in force: the sequence of the first
/// message of `ours` (an id prefix) that the epoch rule refuses, if any.
pub async fn first_refused(
    stream: &Stream,
    prefix: &str,
    from: u64,
    mut in_force: u64,
    ours: &str,
) -> Result<Option<u64>, String> {
    let last = stream
        .clone()
        .info()
        .await
        .map_err(|e| e.to_string())?
        .state
        .last_sequence;
    if last < from {
        return Ok(None);
    }
    let marker_subject = format!("{prefix}.{EPOCH_TOKEN}");
    let mut scan = HeaderScan::start(stream, format!("{prefix}.>"), from, last).await?;
    while let Some((seq, msg)) = scan.next().await? {
        let headers = msg.headers.as_ref();
        let header = |name: &str| headers.and_then(|h| h.get(name)).map(|v| v.as_str().to_owned());
        let is_marker = msg.subject.as_str() == marker_subject;
        let epoch = match header(EPOCH_HEADER).and_then(|e| e.parse().ok()) {
            Some(epoch) => epoch,
            // A marker published without the header: its body says.
            None if is_marker => {
                let raw = stream.get_raw_message(seq).await.map_err(|e| e.to_string())?;
                let marker: EpochMarker =
                    serde_json::from_slice(&raw.payload).map_err(|e| format!("epoch marker {seq}: {e}"))?;
                marker.epoch
            }
            None => 0,
        };
        let mine = header(async_nats::header::NATS_MESSAGE_ID.as_ref()).is_some_and(|id| id.starts_with(ours));
        match judge(is_marker, epoch, in_force, mine) {
            Verdict::Marker(e) => in_force = e,
            Verdict::Refused { ours: true } => return Ok(Some(seq)),
            Verdict::Refused { ours: false } | Verdict::Applied => {}
        }
    }
    Ok(None)
}

/// The messages of `filter` from `from` up to `upto` (headers only: what a
/// scan needs is in them), in stream order.
pub struct HeaderScan {
    messages: async_nats::jetstream::consumer::pull::Ordered,
    upto: u64,
    done: bool,
}

impl HeaderScan {
    pub async fn start(stream: &Stream, filter: String, from: u64, upto: u64) -> Result<HeaderScan, String> {
        let consumer = stream
            .create_consumer(OrderedConfig {
                filter_subject: filter,
                deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: from },
                headers_only: true,
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        let messages = consumer.messages().await.map_err(|e| e.to_string())?;
        Ok(HeaderScan {
            messages,
            upto,
            done: upto < from,
        })
    }

    /// The next message and its stream sequence; `None` past `upto`.
    /// Nothing for `SCAN_IDLE` before the bound (its message removed, or
    /// NATS stalled) is an error, not the end: the caller tries again.
    pub async fn next(&mut self) -> Result<Option<(u64, async_nats::jetstream::Message)>, String> {
        if self.done {
            return Ok(None);
        }
        let msg = match tokio::time::timeout(SCAN_IDLE, self.messages.next()).await {
            Ok(Some(msg)) => msg.map_err(|e| e.to_string())?,
            Ok(None) => return Err("the stream's consumer ended before the end of the scan".into()),
            Err(_) => return Err("the stream stopped delivering before the end of the scan".into()),
        };
        let seq = msg.info().map_err(|e| e.to_string())?.stream_sequence;
        self.done = seq >= self.upto;
        Ok(Some((seq, msg)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_epoch_rule() {
        assert_eq!(judge(true, 3, 2, false), Verdict::Marker(3));
        // An older marker does not lower the epoch in force.
        assert_eq!(judge(true, 1, 2, false), Verdict::Marker(2));
        assert_eq!(judge(false, 2, 2, true), Verdict::Applied);
        assert_eq!(judge(false, 1, 2, true), Verdict::Refused { ours: true });
        assert_eq!(judge(false, 1, 2, false), Verdict::Refused { ours: false });
    }

    #[test]
    fn a_store_knows_its_own_messages() {
        let ours = id_prefix("a", 0x1f);
        assert!(format!("{ours}1-9").starts_with(&ours));
        // Another data dir under the same node id is not this store.
        assert!(!format!("{}1-9", id_prefix("a", 0x2f)).starts_with(&ours));
        assert!(!format!("{}1-9", id_prefix("ab", 0x1f)).starts_with(&ours));
        assert_eq!(last_number(&format!("{ours}3-17"), &ours), Some(17));
        assert_eq!(last_number(&format!("{}3-17", id_prefix("b", 0x1f)), &ours), None);
        assert_eq!(last_number(&format!("{ours}3"), &ours), None);
    }
}
