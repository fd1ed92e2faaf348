//! The feed's messages (documented for consumers in docs/FEED.md).
//!
//! One message carries, in commit order, one or more changes of one tenant,
//! on the subject `<prefix>.<district>.<tenant>`. Each change is shown as
//! JSON (the records as the API shows them, the chain link in hex) and
//! carried exactly as the store wrote it (`record`, base64 of the store's
//! record encoding), which is what a standby applies.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::domain::{Hash, Id, SeatId, SeatRecord, TenantId, Timestamp};
use crate::store::records::SeatEntry;
use crate::store::{Change, Pending};

/// The schema every message names; a consumer refuses others.
pub const SCHEMA: &str = "tenant-service/change-feed/1";

/// The subject token of the leadership marker (`<prefix>.epoch`).
pub const EPOCH_TOKEN: &str = "epoch";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    pub schema: String,
    /// The instance that committed these changes (`[replication] node_id`).
    pub origin: String,
    /// The leadership epoch it held (0 without leadership).
    pub epoch: u64,
    pub tenant_id: u64,
    pub district_id: u64,
    /// The origin's outbox numbers of the first and last change here:
    /// increasing, per tenant, in commit order.
    pub first: u64,
    pub last: u64,
    pub changes: Vec<ChangeMsg>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangeMsg {
    /// The origin's outbox number of this change.
    pub n: u64,
    /// `seat`, `seats` (a bulk, possibly in parts), `purchase`, `role`,
    /// `tenant`, `threshold`.
    pub kind: String,
    /// When the change was committed (RFC 3339).
    pub at: String,
    /// The change as JSON (see docs/FEED.md).
    pub detail: Value,
    /// The change exactly as stored (base64), for standbys.
    pub record: String,
}

/// A new primary's first message (`<prefix>.epoch`): every change message
/// after it on the stream that carries a lower epoch is refused.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochMarker {
    pub schema: String,
    pub origin: String,
    pub epoch: u64,
    /// Where the new primary takes writes (what a standby names).
    pub url: String,
}

pub fn hex(hash: &Hash) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// When a change was committed.
pub fn change_time(change: &Change) -> Timestamp {
    match change {
        Change::Seats { writes, .. } => writes
            .last()
            .map_or(Timestamp::from_micros(0), |(_, e)| e.last_audit.created_at),
        Change::Block(b) => b.block.created_at,
        Change::Role { entry, .. } => entry.last_event.created_at,
        Change::Tenant { tenant, .. } => tenant.updated_at,
        Change::Threshold(t) => t.updated_at,
    }
}

fn detail(change: &Change) -> Value {
    match change {
        Change::Seats {
            part,
            parts,
            writes,
            from,
        } => json!({
            "part": part,
            "parts": parts,
            "seats": writes.iter().map(|(seat, e)| json!({
                "seat_id": seat,
                "state": seat_state(&e.seat),
                "audit": e.last_audit,
                "chain_hash": hex(&e.hash),
                "alert": e.alert,
            })).collect::<Vec<_>>(),
            "transfer": transfer(writes, *from),
        }),
        Change::Block(b) => json!({
            "block": b.block,
            "expires_at": b.expires_at,
            "chain_hash": hex(&b.hash),
            "alert": b.alert,
        }),
        Change::Role { entry, .. } => json!({"role": entry.role, "event": entry.last_event}),
        Change::Tenant { tenant, sourced_id } => json!({"tenant": tenant, "sourced_id": sourced_id}),
        Change::Threshold(t) => json!({"threshold": t}),
    }
}

/// A seat's record as JSON, with the fields its stored encoding keeps
/// apart (a reservation's deadline, the seat's license term).
fn seat_state(record: &SeatRecord) -> Value {
    let mut state = json!(record);
    if let Some(fields) = state.as_object_mut() {
        fields.insert("reserved_until".into(), json!(record.reserved_until));
        fields.insert("expires_at".into(), json!(record.expires_at));
    }
    state
}

/// A transfer's two tenants, for either of its sides: the source's change
/// (its seats' records name the tenant they go to) or the arrival (`from`).
fn transfer(writes: &[(SeatId, SeatEntry)], from: Option<TenantId>) -> Value {
    let Some((_, first)) = writes.first() else {
        return Value::Null;
    };
    match from {
        Some(from) => json!({"side": "in", "from_tenant_id": from, "to_tenant_id": first.tenant}),
        None if first.seat.tenant_id != first.tenant => {
            json!({"side": "out", "from_tenant_id": first.tenant, "to_tenant_id": first.seat.tenant_id})
        }
        None => Value::Null,
    }
}

/// The message carrying `entries` (one tenant's, in order).
pub fn envelope(origin: &str, epoch: u64, tenant: TenantId, district: TenantId, entries: &[Pending]) -> Envelope {
    let b64 = base64::engine::general_purpose::STANDARD;
    Envelope {
        schema: SCHEMA.into(),
        origin: origin.into(),
        epoch,
        tenant_id: tenant.get(),
        district_id: district.get(),
        first: entries.first().map_or(0, |p| p.seq),
        last: entries.last().map_or(0, |p| p.seq),
        changes: entries
            .iter()
            .map(|p| ChangeMsg {
                n: p.seq,
                kind: p.entry.change.kind().into(),
                at: change_time(&p.entry.change).rfc3339(),
                detail: detail(&p.entry.change),
                record: b64.encode(&p.change_bytes),
            })
            .collect(),
    }
}

/// A change carried by a message, decoded as the store wrote it.
pub fn decode_change(msg: &ChangeMsg) -> Result<Change, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&msg.record)
        .map_err(|e| format!("change {} is not base64: {e}", msg.n))?;
    crate::store::decode_change(b"feed", &bytes).map_err(|e| format!("change {}: {e}", msg.n))
}
