//! What the store keeps, and how it is laid out in sled.
//!
//! Everything lives in one sled tree. A change is not one atomic sled
//! `Batch` (the first batch makes sled serialize every writer): its
//! commit-point key carries the whole change and the keys that follow it are
//! restored from it on start (see `SeatEntry`). Keys start with a one-byte kind, then big-endian
//! ids, so that a prefix scan returns a kind in id order. Values are one format
//! version byte followed by bincode.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use crate::domain::{chain, BlockRecord, Hash, SeatRecord};
use crate::domain::{Alert, AnswerKey, Audit, AuditId, EventId, Id, Role, RoleEvent, SeatId, TenantId, Timestamp};

/// The format version of every record written by this build.
pub const FORMAT: u8 = 1;

pub const TENANT: u8 = b'T';
pub const ROLE: u8 = b'R';
pub const BLOCK: u8 = b'B';
pub const SEAT: u8 = b'S';
pub const AUDIT: u8 = b'A';
pub const LEASE: u8 = b'L';
pub const ROLE_EVENT: u8 = b'E';
/// A tenant's audit trail in order: one small entry per stored audit record
/// and one per purchase block (see `TrailEntry`).
pub const TRAIL: u8 = b'X';
/// A tenant's alert threshold (key `key(THRESHOLD, tenant)`).
pub const THRESHOLD: u8 = b'W';
/// Alerts, keyed by tenant then the audit id of the change that raised them.
pub const ALERT: u8 = b'Y';
/// A tenant's seat counts at the end of a day (`history_key`).
pub const HISTORY: u8 = b'H';
/// A tenant's bulk seat change in progress: the commit point of many seat
/// changes at once, a small value (how many `BULK_PART` keys hold the
/// change), written after those parts and removed with them once every seat
/// key they carry is written; on start, one still there is finished. Keys at
/// the end of the tree, away from the hot seat, audit and trail keys.
pub const BULK: u8 = b'Z';
/// One part of a bulk change (`bulk_part_key(tenant, n)`):
/// `Vec<(SeatId, SeatEntry)>` of about `BULK_PART_BYTES`, so that neither a
/// value nor a leaf of sixteen of them grows past what sled keeps in its log
/// (larger ones go to blob files that sled never fsyncs).
pub const BULK_PART: u8 = b'z';
pub const BULK_PART_BYTES: usize = 4 * 1024;

/// The change feed's outbox (`key(OUTBOX, n)`): an `outbox::OutboxEntry`
/// per committed change not yet on the stream, written before the change's
/// commit point (see `outbox`).
pub const OUTBOX: u8 = b'Q';
/// Where this store is on the stream (`key(FEED, 0)`): a standby's last
/// applied message, a primary's epoch (see `Store::feed_mark`).
pub const FEED: u8 = b'F';

/// A stored answer (`Idempotency-Key`), under `answer_key`: an
/// `AnswerHead`. Written either just before the change it answers, naming
/// a key only that change writes (its `Witness`: without it the answer is
/// not one), or after it, the change's commit point carrying the same head
/// as its tail (restored from there at start); a write that changes
/// nothing stores it alone.
pub const ANSWER: u8 = b'I';
/// A part of an answer body too large to keep inline in its head
/// (`answer_part_key`): `AnswerPart`, each at most `BULK_PART_BYTES`, for
/// the same reason as bulk parts. Written before the commit point.
pub const ANSWER_PART: u8 = b'i';

/// A seat's move to another tenant (`owner_key(seat, audit)`, value the
/// `TenantId` it went to): written after a transfer's seat entry on the
/// source's side (`audit`: that entry's id), never removed. The seat's
/// entries up to that id are its earlier owner's, the later ones the new
/// owner's: how the history pass, `verify` and the answers' witnesses
/// tell whose trail a seat's entry is on (the purchase block names only
/// the buyer).
pub const OWNER: u8 = b'O';

pub fn owner_key(seat: SeatId, audit: AuditId) -> [u8; 17] {
    let mut k = [OWNER; 17];
    k[1..9].copy_from_slice(&seat.get().to_be_bytes());
    k[9..].copy_from_slice(&audit.get().to_be_bytes());
    k
}

/// The audit id in an `owner_key`.
pub fn owner_key_audit(key: &[u8]) -> Option<u64> {
    key.get(9..17).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes)
}

/// How far answers were purged (`key(ANSWER_PURGE, 0)`: a `Timestamp`):
/// start restores no answer from before it.
pub const ANSWER_PURGE: u8 = b'J';

pub fn answer_key(key: &AnswerKey) -> [u8; 33] {
    let mut k = [ANSWER; 33];
    k[1..].copy_from_slice(&key.0);
    k
}

pub fn answer_part_key(key: &AnswerKey, part: u32) -> [u8; 37] {
    let mut k = [ANSWER_PART; 37];
    k[1..33].copy_from_slice(&key.0);
    k[33..].copy_from_slice(&part.to_be_bytes());
    k
}

/// What an `ANSWER` key holds: the answer without its key (the sled key
/// names it), its body inline or in `parts` `ANSWER_PART` keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerHead {
    pub fingerprint: Hash,
    pub at: Timestamp,
    pub status: u16,
    /// 0: the body is `inline`.
    pub parts: u32,
    pub inline: Vec<u8>,
    /// For an answer written before its change: what only that change
    /// writes. Checked when the answer is read; a crash between the two
    /// leaves an answer whose witness never appears.
    pub witness: Option<Witness>,
}

/// A key written by one change alone (its ids are never handed out again),
/// with what tells whether a retention purge has since removed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Witness {
    /// `audit_key(seat, audit)`, dated `at` (a seat change; a bulk's last).
    Audit {
        seat: SeatId,
        audit: AuditId,
        at: Timestamp,
    },
    /// `key(BLOCK, first_seat)` (a purchase; blocks are never removed).
    Block { first_seat: SeatId },
    /// `role_event_key(tenant, event)`, dated `at` (a grant or deactivation).
    RoleEvent {
        tenant: TenantId,
        event: EventId,
        at: Timestamp,
    },
}

/// One part of a large answer body, with the answer's time (so that a part
/// whose head was never written, a crash in between, can be purged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerPart {
    pub at: Timestamp,
    pub bytes: Vec<u8>,
}

/// The tail a commit point carries when its change was asked for with an
/// `Idempotency-Key`: the answer's key and head, restored at start if the
/// `ANSWER` key written after the change is missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerTail {
    pub key: AnswerKey,
    pub head: AnswerHead,
}

/// `encode`, followed by the answer tail if there is one. Readers that do
/// not look for a tail decode the value as before (bincode leaves trailing
/// bytes unread), so older builds read these records too.
pub fn encode_tailed<T: Serialize>(value: &T, tail: Option<&AnswerTail>) -> Vec<u8> {
    let mut out = encode(value);
    if let Some(tail) = tail {
        if let Err(e) = bincode::serialize_into(&mut out, tail) {
            unreachable!("bincode cannot encode a derived record: {e}");
        }
    }
    out
}

/// `decode`, and the answer tail after the value if there is one.
pub fn decode_tailed<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<(T, Option<AnswerTail>), DecodeError> {
    let corrupt = |e: bincode::Error| DecodeError::Corrupt {
        key: show_key(key),
        reason: e.to_string(),
    };
    // From a reader, which tells where the value ends.
    let mut rest = body(key, bytes)?;
    let value: T = bincode::deserialize_from(&mut rest).map_err(corrupt)?;
    if rest.is_empty() {
        return Ok((value, None));
    }
    Ok((value, Some(bincode::deserialize(rest).map_err(corrupt)?)))
}

pub fn bulk_part_key(tenant: TenantId, part: u64) -> [u8; 17] {
    let mut k = [BULK_PART; 17];
    k[1..9].copy_from_slice(&tenant.get().to_be_bytes());
    k[9..].copy_from_slice(&part.to_be_bytes());
    k
}

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

/// A tenant's trail entry: tenant, then time, then audit id, so that one
/// tenant's trail is one prefix, a time window is one key range, and ties in
/// time keep id order. The actor never lets its clock run backwards (see
/// `TenantActor::now`), so key order is also the order of writes, which is
/// the order of the hash chain.
pub fn trail_key(tenant: TenantId, at: Timestamp, audit: AuditId) -> [u8; 25] {
    let mut k = [TRAIL; 25];
    k[1..9].copy_from_slice(&tenant.get().to_be_bytes());
    k[9..17].copy_from_slice(&time_bytes(at));
    k[17..].copy_from_slice(&audit.get().to_be_bytes());
    k
}

/// The first key of a tenant's trail at or after `at` (with the lowest id).
pub fn trail_bound(tenant: TenantId, at: Timestamp, audit: u64) -> [u8; 25] {
    let mut k = [TRAIL; 25];
    k[1..9].copy_from_slice(&tenant.get().to_be_bytes());
    k[9..17].copy_from_slice(&time_bytes(at));
    k[17..].copy_from_slice(&audit.to_be_bytes());
    k
}

pub fn trail_prefix(tenant: TenantId) -> [u8; 9] {
    key(TRAIL, tenant.get())
}

/// The time and audit id in a trail key.
pub fn trail_key_parts(key: &[u8]) -> Option<(Timestamp, u64)> {
    let time = u64::from_be_bytes(key.get(9..17)?.try_into().ok()?);
    let id = u64::from_be_bytes(key.get(17..25)?.try_into().ok()?);
    Some((Timestamp::from_micros((time ^ SIGN) as i64), id))
}

const SIGN: u64 = 1 << 63;

/// Signed microseconds as bytes that sort like the numbers (sign bit flipped).
fn time_bytes(at: Timestamp) -> [u8; 8] {
    ((at.micros() as u64) ^ SIGN).to_be_bytes()
}

pub fn alert_key(tenant: TenantId, audit: AuditId) -> [u8; 17] {
    let mut k = [ALERT; 17];
    k[1..9].copy_from_slice(&tenant.get().to_be_bytes());
    k[9..].copy_from_slice(&audit.get().to_be_bytes());
    k
}

/// Where a tenant's purged trail ended (`key(CHECKPOINT, tenant)`).
pub const CHECKPOINT: u8 = b'K';

/// What retention left of a tenant's purged entries: the position of the
/// last one and the chain link after it, so the remaining chain still
/// verifies (it starts from `hash` instead of zeros).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub at: Timestamp,
    pub audit_id: u64,
    pub hash: Hash,
    /// Entries purged so far, all purges together.
    pub purged: u64,
}

impl Checkpoint {
    /// Whether the trail position (at, id) was purged: at or before this
    /// checkpoint (its keys may still be there while a purge runs).
    pub fn covers(&self, at: Timestamp, id: u64) -> bool {
        (at, id) <= (self.at, self.audit_id)
    }
}

/// How far a tenant's role events were purged (`key(ROLE_PURGE, tenant)`).
pub const ROLE_PURGE: u8 = b'P';

/// Every role event of the tenant created before `before` was exported and
/// purged. Written before the events are removed: readers skip what it
/// covers, start-up removes any it covers that a crash kept, and a role's
/// last event is not restored from the role's record when it covers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolePurge {
    pub before: Timestamp,
}

/// A tenant's day snapshot: tenant, then the day (days since 1970-01-01,
/// sign flipped so that keys sort like days).
pub fn history_key(tenant: TenantId, day: i64) -> [u8; 17] {
    let mut k = [HISTORY; 17];
    k[1..9].copy_from_slice(&tenant.get().to_be_bytes());
    k[9..].copy_from_slice(&((day as u64) ^ SIGN).to_be_bytes());
    k
}

/// The day in a `history_key`.
pub fn history_key_day(key: &[u8]) -> Option<i64> {
    let raw = u64::from_be_bytes(key.get(9..17)?.try_into().ok()?);
    Some((raw ^ SIGN) as i64)
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
    bincode::deserialize(body(key, bytes)?).map_err(|e| DecodeError::Corrupt {
        key: show_key(key),
        reason: e.to_string(),
    })
}

/// A record's bincode after its format byte, once that byte is this
/// build's version.
fn body<'a>(key: &[u8], bytes: &'a [u8]) -> Result<&'a [u8], DecodeError> {
    match bytes.split_first() {
        Some((&FORMAT, body)) => Ok(body),
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

/// A record that gained fields after it was first written: `T`, then the
/// extension `E` after it (`encode(&(t, e))`). A record written before the
/// extension existed ends after `T` and decodes with `E::default()`; a build
/// from before the extension reads `T` from a newer record and leaves the
/// rest (bincode takes trailing bytes), so stores move both ways. Anything
/// else that fails to decode as `(T, E)` is corrupt.
pub fn decode_extended<T, E>(key: &[u8], bytes: &[u8]) -> Result<(T, E), DecodeError>
where
    T: Serialize + DeserializeOwned,
    E: DeserializeOwned + Default,
{
    match decode::<(T, E)>(key, bytes) {
        Ok(both) => Ok(both),
        Err(e) => {
            let base: T = decode(key, bytes)?;
            let exact = bincode::serialized_size(&base).is_ok_and(|n| n + 1 == bytes.len() as u64);
            if exact {
                Ok((base, E::default()))
            } else {
                Err(e)
            }
        }
    }
}

/// A tenant as stored: the contract's fields, then (an extension) the
/// roster `sourcedId` of the org it is.
pub fn encode_tenant(tenant: &crate::domain::Tenant) -> Vec<u8> {
    encode(&(tenant, &tenant.sourced_id))
}

pub fn decode_tenant(key: &[u8], bytes: &[u8]) -> Result<crate::domain::Tenant, DecodeError> {
    let (mut tenant, sourced_id): (crate::domain::Tenant, Option<String>) = decode_extended(key, bytes)?;
    tenant.sourced_id = sourced_id;
    Ok(tenant)
}

/// A role entry as stored: the entry, then (an extension) whether a roster
/// import granted the role.
pub fn decode_role(key: &[u8], bytes: &[u8]) -> Result<RoleEntry, DecodeError> {
    let (mut entry, roster): (RoleEntry, bool) = decode_extended(key, bytes)?;
    entry.role.roster = roster;
    Ok(entry)
}

/// Marks the extension after a seat or block entry (`SeatExt`, `BlockExt`):
/// what follows a record's own encoding is either this extension or (in
/// stores written by the builds that kept answers there) an answer tail,
/// whose first bytes are a random key.
const EXT_MARK: [u8; 4] = [0xE5, b'x', b't', 1];

/// A seat entry's extension: the `SeatRecord` fields that came later.
/// Written only when one is set, so a store without reservations or
/// license terms is byte for byte what earlier builds wrote (and read).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatExt {
    pub reserved_until: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
}

/// A purchase block's extension: the license term of its seats.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockExt {
    pub expires_at: Option<Timestamp>,
}

/// `value`'s encoding, then `ext`'s after the mark when `ext` is not the default.
pub(super) fn encode_marked<T: Serialize, E: Serialize + Default + PartialEq>(value: &T, ext: &E) -> Vec<u8> {
    let mut out = encode(value);
    if *ext != E::default() {
        out.extend_from_slice(&EXT_MARK);
        if let Err(e) = bincode::serialize_into(&mut out, ext) {
            unreachable!("bincode cannot encode a derived record: {e}");
        }
    }
    out
}

/// `encode_marked`'s reverse: the value, its extension (default when
/// absent) and an answer tail if one follows.
pub(super) fn decode_marked<T: DeserializeOwned, E: DeserializeOwned + Default>(
    key: &[u8],
    bytes: &[u8],
) -> Result<(T, E, Option<AnswerTail>), DecodeError> {
    let corrupt = |e: bincode::Error| DecodeError::Corrupt {
        key: show_key(key),
        reason: e.to_string(),
    };
    let mut rest = body(key, bytes)?;
    let value: T = bincode::deserialize_from(&mut rest).map_err(corrupt)?;
    let mut ext = E::default();
    if let Some(after) = rest.strip_prefix(&EXT_MARK) {
        rest = after;
        ext = bincode::deserialize_from(&mut rest).map_err(corrupt)?;
    }
    if rest.is_empty() {
        return Ok((value, ext, None));
    }
    Ok((value, ext, Some(bincode::deserialize(rest).map_err(corrupt)?)))
}

/// A seat entry as stored: `SeatEntryRef`'s encoding, then its record's
/// later fields (`SeatExt`) when any is set.
pub fn encode_seat_entry(entry: &SeatEntryRef<'_>) -> Vec<u8> {
    let ext = SeatExt {
        reserved_until: entry.seat.reserved_until,
        expires_at: entry.seat.expires_at,
    };
    encode_marked(entry, &ext)
}

/// A seat entry with its record's later fields filled in, and the answer
/// tail an earlier build may have left after it.
pub fn decode_seat_entry(key: &[u8], bytes: &[u8]) -> Result<(SeatEntry, Option<AnswerTail>), DecodeError> {
    let (mut entry, ext, tail): (SeatEntry, SeatExt, _) = decode_marked(key, bytes)?;
    entry.seat.reserved_until = ext.reserved_until;
    entry.seat.expires_at = ext.expires_at;
    Ok((entry, tail))
}

/// A block entry as stored: `BlockEntryRef`'s encoding, then the term of
/// its seats when it has one.
pub fn encode_block_entry(entry: &BlockEntryRef<'_>, expires_at: Option<Timestamp>) -> Vec<u8> {
    encode_marked(entry, &BlockExt { expires_at })
}

/// A block entry and the term of its seats.
pub fn decode_block_entry(key: &[u8], bytes: &[u8]) -> Result<(BlockEntry, Option<Timestamp>), DecodeError> {
    let (mut entry, ext, _): (BlockEntry, BlockExt, Option<AnswerTail>) = decode_marked(key, bytes)?;
    entry.expires_at = ext.expires_at;
    Ok((entry, ext.expires_at))
}

/// What a start reads of a seat's entry: its record (later fields
/// included) and, for a seat a transfer is moving (its record names
/// another tenant than the one whose trail holds its last change), where
/// from and on whose request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatHead {
    pub record: SeatRecord,
    pub moving: Option<(TenantId, crate::domain::UserId)>,
}

/// A seat entry's fields, borrowing its texts from the stored bytes: a
/// start reads one per changed seat, and needs none of the audit's texts
/// (but the one who asked, for a seat in transit).
#[derive(Serialize, Deserialize)]
struct EntryView<'a> {
    seat: SeatRecord,
    #[serde(borrow)]
    last_audit: AuditView<'a>,
    tenant: TenantId,
    hash: Hash,
    alert: Option<Alert>,
}

#[derive(Serialize, Deserialize)]
struct AuditView<'a> {
    id: AuditId,
    seat_id: SeatId,
    previous_state: Option<crate::domain::SeatState>,
    new_state: crate::domain::SeatState,
    #[serde(borrow)]
    previous_learner_id: Option<&'a str>,
    #[serde(borrow)]
    new_learner_id: Option<&'a str>,
    changed_by: &'a str,
    reason: &'a str,
    created_at: Timestamp,
}

pub fn decode_seat_head(key: &[u8], bytes: &[u8]) -> Result<SeatHead, DecodeError> {
    let corrupt = |e: bincode::Error| DecodeError::Corrupt {
        key: show_key(key),
        reason: e.to_string(),
    };
    let body = match bytes.split_first() {
        Some((&FORMAT, body)) => body,
        Some((&found, _)) => {
            return Err(DecodeError::UnknownVersion {
                key: show_key(key),
                found,
            })
        }
        None => {
            return Err(DecodeError::Corrupt {
                key: show_key(key),
                reason: "empty value".into(),
            })
        }
    };
    let view: EntryView<'_> = bincode::deserialize(body).map_err(corrupt)?;
    let size = bincode::serialized_size(&view).map_err(corrupt)? as usize;
    let mut record = view.seat;
    if let Some(ext) = body.get(size..).and_then(|rest| rest.strip_prefix(&EXT_MARK)) {
        let ext: SeatExt = bincode::deserialize(ext).map_err(corrupt)?;
        record.reserved_until = ext.reserved_until;
        record.expires_at = ext.expires_at;
    }
    let moving = if view.tenant != record.tenant_id {
        let by = crate::domain::UserId::parse(view.last_audit.changed_by).map_err(|e| DecodeError::Corrupt {
            key: show_key(key),
            reason: e.to_string(),
        })?;
        Some((view.tenant, by))
    } else {
        None
    };
    Ok(SeatHead { record, moving })
}

/// The later fields of a bulk part's seat records, in the part's order
/// (empty when none is set: the part is then what earlier builds wrote).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartExt {
    pub seats: Vec<SeatExt>,
}

/// A bulk part (`BULK_PART`): its seat entries, then their records' later
/// fields if any is set.
pub fn encode_bulk_part(part: &[(SeatId, SeatEntryRef<'_>)]) -> Vec<u8> {
    let exts: Vec<SeatExt> = part
        .iter()
        .map(|(_, e)| SeatExt {
            reserved_until: e.seat.reserved_until,
            expires_at: e.seat.expires_at,
        })
        .collect();
    let ext = if exts.iter().all(|e| *e == SeatExt::default()) {
        PartExt::default()
    } else {
        PartExt { seats: exts }
    };
    encode_marked(&part, &ext)
}

pub fn decode_bulk_part(key: &[u8], bytes: &[u8]) -> Result<Vec<(SeatId, SeatEntry)>, DecodeError> {
    let (mut entries, ext, _): (Vec<(SeatId, SeatEntry)>, PartExt, Option<AnswerTail>) = decode_marked(key, bytes)?;
    for ((_, entry), ext) in entries.iter_mut().zip(ext.seats) {
        entry.seat.reserved_until = ext.reserved_until;
        entry.seat.expires_at = ext.expires_at;
    }
    Ok(entries)
}

/// One entry of a tenant's trail (key `trail_key`). Written right after the
/// commit-point record it points at, and restored from it on start if a
/// crash came between (see `SeatEntry`). It holds no copy of the audit entry (that stays
/// under its `A` key, where a seat's history is read), only where to find it
/// and the chain hash after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrailEntry {
    /// A stored audit record, under `audit_key(seat, id)` (id from the trail key).
    Seat { seat: SeatId, hash: Hash },
    /// A purchase: its derived entries (ids `first_audit..first_audit + count`
    /// of the block under `key(BLOCK, first_seat)`) in id order. No other
    /// audit id falls inside that range (a purchase leases it whole), so in
    /// key order a block's entries are never interleaved with others.
    /// `hash` is the chain hash after its last entry.
    Block { first_seat: SeatId, hash: Hash },
}

impl TrailEntry {
    pub fn hash(&self) -> &Hash {
        match self {
            TrailEntry::Seat { hash, .. } | TrailEntry::Block { hash, .. } => hash,
        }
    }
}

/// What is stored under a seat's key: its state and everything the change
/// that produced it wrote (audit entry, tenant-trail link, alert). This key
/// is a transition's commit point: written first, the other keys after it,
/// and on start any of them a crash kept from being written is restored from
/// here. (One key per commit point instead of a sled `Batch`: the first batch
/// switches sled to a process-wide write lock and a second log write per
/// batch; see BENCHMARKS.md.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeatEntry {
    pub seat: SeatRecord,
    pub last_audit: Audit,
    pub tenant: TenantId,
    /// The tenant's chain hash after `last_audit`.
    pub hash: Hash,
    pub alert: Option<Alert>,
}

impl SeatEntry {
    pub fn as_ref(&self) -> SeatEntryRef<'_> {
        SeatEntryRef {
            seat: &self.seat,
            last_audit: &self.last_audit,
            tenant: self.tenant,
            hash: self.hash,
            alert: self.alert.as_ref(),
        }
    }
}

/// `SeatEntry` by reference, for writing without cloning (same encoding).
#[derive(Serialize)]
pub struct SeatEntryRef<'a> {
    pub seat: &'a SeatRecord,
    pub last_audit: &'a Audit,
    pub tenant: TenantId,
    pub hash: Hash,
    pub alert: Option<&'a Alert>,
}

impl SeatEntryRef<'_> {
    /// The keys written after the commit point, with their values.
    pub fn followers(&self, seat: SeatId) -> Vec<(Vec<u8>, Vec<u8>)> {
        let audit = self.last_audit;
        let mut out = vec![
            (audit_key(seat, audit.id).to_vec(), encode(audit)),
            (
                trail_key(self.tenant, audit.created_at, audit.id).to_vec(),
                encode(&TrailEntry::Seat { seat, hash: self.hash }),
            ),
        ];
        if let Some(alert) = self.alert {
            out.push((alert_key(alert.tenant_id, alert.audit_id).to_vec(), encode(alert)));
        }
        // A transfer's entry on the source's side: the seat's owner changes.
        if self.seat.tenant_id != self.tenant {
            out.push((owner_key(seat, audit.id).to_vec(), encode(&self.seat.tenant_id)));
        }
        out
    }
}

/// What is stored under a block's key: the `BlockRecord` followed by the
/// purchase's trail link and alert (the block's commit point, as for seats).
/// Readers that need only the block decode a `BlockRecord` from the same
/// bytes: bincode reads the leading fields and leaves the rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockEntry {
    pub block: BlockRecord,
    pub hash: Hash,
    pub alert: Option<Alert>,
    /// The term of the block's seats. Not in this encoding (its layout is
    /// fixed): stored after it as a `BlockExt` (`encode_block_entry`), and
    /// carried by the feed in its change's extension (`outbox`).
    #[serde(skip)]
    pub expires_at: Option<Timestamp>,
}

impl BlockEntry {
    pub fn as_ref(&self) -> BlockEntryRef<'_> {
        BlockEntryRef {
            block: &self.block,
            hash: self.hash,
            alert: self.alert.as_ref(),
        }
    }
}

#[derive(Serialize)]
pub struct BlockEntryRef<'a> {
    pub block: &'a BlockRecord,
    pub hash: Hash,
    pub alert: Option<&'a Alert>,
}

impl BlockEntryRef<'_> {
    /// The keys written after the commit point, with their values.
    pub fn followers(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let b = self.block;
        let mut out = vec![(
            trail_key(b.tenant_id, b.created_at, b.first_audit).to_vec(),
            encode(&TrailEntry::Block {
                first_seat: b.first_seat,
                hash: self.hash,
            }),
        )];
        if let Some(alert) = self.alert {
            out.push((alert_key(alert.tenant_id, alert.audit_id).to_vec(), encode(alert)));
        }
        out
    }
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

impl RoleEntryRef<'_> {
    /// The entry, then the roster mark (see `decode_role`).
    pub fn encode(&self) -> Vec<u8> {
        encode(&(self, self.role.roster))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of record has a first byte of its own: two kinds sharing
    /// one would read each other's records (a prefix scan of one is a scan
    /// of both).
    #[test]
    fn record_kinds_are_distinct() {
        let kinds = [
            TENANT,
            ROLE,
            BLOCK,
            SEAT,
            AUDIT,
            LEASE,
            ROLE_EVENT,
            TRAIL,
            THRESHOLD,
            ALERT,
            HISTORY,
            BULK,
            BULK_PART,
            OUTBOX,
            FEED,
            ANSWER,
            ANSWER_PART,
            ANSWER_PURGE,
            OWNER,
            CHECKPOINT,
            ROLE_PURGE,
        ];
        let distinct: std::collections::HashSet<u8> = kinds.iter().copied().collect();
        assert_eq!(distinct.len(), kinds.len(), "two record kinds share a byte");
    }
    use crate::domain::{LearnerId, SeatState};

    #[test]
    fn records_round_trip_and_versions_are_checked() {
        let rec = SeatRecord {
            tenant_id: TenantId::new(3).unwrap_or_else(|| unreachable!()),
            state: SeatState::Assigned,
            learner_id: LearnerId::parse("l-1").ok(),
            reserved_at: None,
            assigned_at: Some(Timestamp::from_micros(5)),
            updated_at: Timestamp::from_micros(5),
            reserved_until: None,
            expires_at: None,
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
    fn trail_keys_sort_by_tenant_then_time_then_id() {
        let t = |n| TenantId::new(n).unwrap_or_else(|| unreachable!());
        let a = |n| AuditId::new(n).unwrap_or_else(|| unreachable!());
        let at = Timestamp::from_micros;
        assert!(trail_key(t(1), at(5), a(9)) < trail_key(t(1), at(6), a(1)));
        assert!(trail_key(t(1), at(5), a(1)) < trail_key(t(1), at(5), a(2)));
        assert!(trail_key(t(1), at(-5), a(1)) < trail_key(t(1), at(0), a(1)));
        assert!(trail_key(t(1), at(i64::MAX), a(u64::MAX)) < trail_key(t(2), at(i64::MIN), a(1)));
        assert_eq!(trail_key_parts(&trail_key(t(3), at(-7), a(11))), Some((at(-7), 11)));
        assert!(trail_key(t(1), at(5), a(1)).starts_with(&trail_prefix(t(1))));
    }

    #[test]
    fn tenants_and_roles_from_before_the_roster_marks_still_decode_and_old_builds_read_new_ones() {
        use crate::domain::{
            EventId, Role, RoleChange, RoleEvent, RoleId, RoleKind, Tenant, TenantKind, TenantName, UserId,
        };
        let at = Timestamp::from_micros(7);
        let t = |n| TenantId::new(n).unwrap_or_else(|| unreachable!());
        let mut tenant = Tenant {
            id: t(4),
            name: TenantName::parse("North".into()).unwrap_or_else(|e| panic!("{e}")),
            kind: TenantKind::School,
            parent_id: Some(t(1)),
            created_at: at,
            updated_at: at,
            is_active: true,
            sourced_id: None,
        };
        // Written by an earlier build: the Tenant alone.
        let old = encode(&tenant);
        assert_eq!(decode_tenant(b"T4", &old).ok(), Some(tenant.clone()));
        tenant.sourced_id = Some("org-17".into());
        let new = encode_tenant(&tenant);
        assert_eq!(decode_tenant(b"T4", &new).ok(), Some(tenant.clone()));
        // An earlier build reads the new record's Tenant and ignores the mark.
        let seen_by_old: Tenant = decode(b"T4", &new).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(seen_by_old.name, tenant.name);
        // A record cut short is corrupt, not an old one.
        assert!(decode_tenant(b"T4", &new[..new.len() - 2]).is_err());

        let user = UserId::parse("dana").unwrap_or_else(|e| panic!("{e}"));
        let mut role = Role {
            id: RoleId::new(3).unwrap_or_else(|| unreachable!()),
            user_id: user.clone(),
            tenant_id: t(4),
            role: RoleKind::Teacher,
            created_at: at,
            is_active: true,
            granted_by: Some(user.clone()),
            deactivated_at: None,
            deactivated_by: None,
            roster: false,
        };
        let event = RoleEvent {
            id: EventId::new(5).unwrap_or_else(|| unreachable!()),
            role_id: role.id,
            user_id: user.clone(),
            tenant_id: t(4),
            role: RoleKind::Teacher,
            change: RoleChange::Granted,
            changed_by: user,
            created_at: at,
        };
        let old = encode(&RoleEntryRef {
            role: &role,
            last_event: &event,
        });
        assert_eq!(decode_role(b"R3", &old).map(|e| e.role).ok(), Some(role.clone()));
        role.roster = true;
        let new = RoleEntryRef {
            role: &role,
            last_event: &event,
        }
        .encode();
        let back = decode_role(b"R3", &new).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((back.role, back.last_event), (role, event));
        assert!(
            decode::<RoleEntry>(b"R3", &new).is_ok(),
            "an earlier build reads the entry"
        );
    }

    #[test]
    fn keys_sort_by_id() {
        assert!(key(SEAT, 2) < key(SEAT, 256));
        assert_eq!(key_id(&key(SEAT, 77)), Some(77));
    }
}
