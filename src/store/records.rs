//! What the store keeps, and how it is laid out in sled.
//!
//! Everything lives in one sled tree so that a transition and its audit record
//! go in one atomic `Batch`. Keys start with a one-byte kind, then big-endian
//! ids, so that a prefix scan returns a kind in id order. Values are one format
//! version byte followed by bincode.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::domain::{
    Audit, AuditId, EventId, Id, LearnerId, Role, RoleEvent, SeatId, SeatState, TenantId, Timestamp, UserId,
};

/// The format version of every record written by this build.
pub const FORMAT: u8 = 1;

pub const TENANT: u8 = b'T';
pub const ROLE: u8 = b'R';
pub const BLOCK: u8 = b'B';
pub const SEAT: u8 = b'S';
pub const AUDIT: u8 = b'A';
pub const LEASE: u8 = b'L';
pub const ROLE_EVENT: u8 = b'E';

pub fn key(kind: u8, id: u64) -> [u8; 9] {
    let mut k = [kind; 9];
    k[1..].copy_from_slice(&id.to_be_bytes());
    k
}

pub fn audit_key(seat: SeatId, audit: AuditId) -> [u8; 17] {
    let mut k = [AUDIT; 17];
    k[1..9].copy_from_slice(&seat.get().to_be_bytes());
    k[9..].copy_from_slice(&audit.get().to_be_bytes());
    k
}

/// Role events are keyed by tenant first, so a tenant's trail is one prefix scan.
pub fn role_event_key(tenant: TenantId, event: EventId) -> [u8; 17] {
    let mut k = [ROLE_EVENT; 17];
    k[1..9].copy_from_slice(&tenant.get().to_be_bytes());
    k[9..].copy_from_slice(&event.get().to_be_bytes());
    k
}

pub fn audit_prefix(seat: SeatId) -> [u8; 9] {
    key(AUDIT, seat.get())
}

/// The id in a `key(kind, id)` key.
pub fn key_id(key: &[u8]) -> Option<u64> {
    key.get(1..9).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes)
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![FORMAT];
    // Serializing plain structs into a Vec cannot fail: bincode only errors on
    // I/O or on types serde cannot describe, and ours are all derived.
    if let Err(e) = bincode::serialize_into(&mut out, value) {
        unreachable!("bincode cannot encode a derived record: {e}");
    }
    out
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("record {key} has format version {found}, this build reads version {FORMAT}")]
    UnknownVersion { key: String, found: u8 },
    #[error("record {key} is corrupted: {reason}")]
    Corrupt { key: String, reason: String },
}

/// Keys are printed as kind letter + hex, e.g. `S/00000000000000a1`.
pub fn show_key(key: &[u8]) -> String {
    match key.split_first() {
        Some((kind, rest)) => {
            let hex: String = rest.iter().map(|b| format!("{b:02x}")).collect();
            format!("{}/{hex}", char::from(*kind))
        }
        None => "<empty>".into(),
    }
}

pub fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, DecodeError> {
    match bytes.split_first() {
        Some((&FORMAT, body)) => bincode::deserialize(body).map_err(|e| DecodeError::Corrupt {
            key: show_key(key),
            reason: e.to_string(),
        }),
        Some((&found, _)) => Err(DecodeError::UnknownVersion {
            key: show_key(key),
            found,
        }),
        None => Err(DecodeError::Corrupt {
            key: show_key(key),
            reason: "empty value".into(),
        }),
    }
}

/// One purchase: `count` seats with consecutive ids from `first_seat`, all free
/// at `created_at`, and their purchase audit entries with consecutive ids from
/// `first_audit`. One record instead of 2 × count keeps a 100,000-seat purchase
/// a single small write; the per-seat entries are derived from it on read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRecord {
    pub tenant_id: TenantId,
    pub first_seat: SeatId,
    pub count: u64,
    pub first_audit: AuditId,
    pub created_at: Timestamp,
    pub changed_by: UserId,
}

impl BlockRecord {
    pub fn contains(&self, seat: SeatId) -> bool {
        (self.first_seat.get()..self.first_seat.get() + self.count).contains(&seat.get())
    }
}

/// What is stored under a seat's key: its state and the audit entry of the
/// change that produced it. This key is a transition's commit point: it is
/// written first, the audit history key after it, and on start any history
/// key a crash kept from being written is restored from here. (One key per
/// commit point instead of a sled `Batch`: the first batch switches sled to a
/// process-wide write lock and a second log write per batch; see BENCHMARKS.md.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatEntry {
    pub seat: SeatRecord,
    pub last_audit: Audit,
}

/// `SeatEntry` by reference, for writing without cloning (same encoding).
#[derive(Serialize)]
pub struct SeatEntryRef<'a> {
    pub seat: &'a SeatRecord,
    pub last_audit: &'a Audit,
}

/// A role and the event that produced its current version (the same
/// commit-point scheme as `SeatEntry`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleEntry {
    pub role: Role,
    pub last_event: RoleEvent,
}

#[derive(Serialize)]
pub struct RoleEntryRef<'a> {
    pub role: &'a Role,
    pub last_event: &'a RoleEvent,
}

/// A seat's state after it first changed; absent means "free since purchase".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatRecord {
    pub tenant_id: TenantId,
    pub state: SeatState,
    pub learner_id: Option<LearnerId>,
    pub reserved_at: Option<Timestamp>,
    pub assigned_at: Option<Timestamp>,
    pub updated_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_versions_are_checked() {
        let rec = SeatRecord {
            tenant_id: TenantId::new(3).unwrap_or_else(|| unreachable!()),
            state: SeatState::Assigned,
            learner_id: LearnerId::parse("l-1").ok(),
            reserved_at: None,
            assigned_at: Some(Timestamp::from_micros(5)),
            updated_at: Timestamp::from_micros(5),
        };
        let bytes = encode(&rec);
        assert_eq!(bytes[0], FORMAT);
        assert_eq!(decode::<SeatRecord>(b"S1", &bytes).ok(), Some(rec));
        let mut future = bytes.clone();
        future[0] = 9;
        assert!(matches!(
            decode::<SeatRecord>(b"S1", &future),
            Err(DecodeError::UnknownVersion { found: 9, .. })
        ));
        assert!(matches!(
            decode::<SeatRecord>(b"S1", &bytes[..3]),
            Err(DecodeError::Corrupt { .. })
        ));
    }

    #[test]
    fn keys_sort_by_id() {
        assert!(key(SEAT, 2) < key(SEAT, 256));
        assert_eq!(key_id(&key(SEAT, 77)), Some(77));
    }
}
