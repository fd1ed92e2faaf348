//! What a start reads besides the records memory holds: every audit and trail
//! record is decoded (a corrupt or unknown-version one stops the start), the
//! per-minute stats of the last `RECENT` are rebuilt, and the keys a crash
//! kept from following their commit point are written.
//!
//! The audit and trail passes read key ranges nothing else reads at start,
//! so `Store::open_with` runs them on their own threads beside the seat scan:
//! at 1,000,000 changed seats they are most of a start.

use std::collections::{HashMap, HashSet};

use super::records::{self, decode, encode, key, BlockEntry, BlockRecord, Checkpoint, DecodeError, RolePurge};
use super::records::{RoleEntry, SeatEntry, SeatRecord, TrailEntry};
use super::{RecentChanges, ScanError};
use crate::domain::{Audit, Id, SeatId, SeatState, TenantId, Timestamp, Transition};

/// Each tenant's seat transitions since `since`, counted per minute. Passes
/// that run side by side each fill one; `merge` adds them up.
#[derive(Debug)]
pub(super) struct Recent {
    since: Timestamp,
    minutes: HashMap<(TenantId, i64), [u64; 3]>,
}

impl Recent {
    pub fn new(since: Timestamp) -> Self {
        Recent {
            since,
            minutes: HashMap::new(),
        }
    }

    fn add(&mut self, tenant: TenantId, at: Timestamp, kind: Transition, n: u64) {
        if at >= self.since {
            self.minutes.entry((tenant, at.minute())).or_default()[kind as usize] += n;
        }
    }

    pub fn merge(mut self, other: Recent) -> Recent {
        for (k, counts) in other.minutes {
            let mine = self.minutes.entry(k).or_default();
            for (m, c) in mine.iter_mut().zip(counts) {
                *m += c;
            }
        }
        self
    }

    /// The counts as each tenant's changes, oldest first, one per minute and
    /// kind (dated at the minute's start).
    pub fn into_changes(self) -> RecentChanges {
        let mut out = RecentChanges::new();
        for ((tenant, minute), counts) in self.minutes {
            let at = Timestamp::minute_start(minute);
            for kind in [Transition::Purchase, Transition::Allocate, Transition::Reclaim] {
                let n = counts[kind as usize];
                if n > 0 {
                    out.entry(tenant).or_default().push((at, kind, n));
                }
            }
        }
        for changes in out.values_mut() {
            changes.sort_by_key(|(at, kind, _)| (*at, *kind as u8));
        }
        out
    }
}

/// What each tenant's retention purges covered: an entry at or before its
/// checkpoint's trail position was purged (its keys may still be there while
/// a purge runs).
pub(super) struct Purged<'a>(pub &'a HashMap<TenantId, Checkpoint>);

impl Purged<'_> {
    fn covers(&self, tenant: TenantId, at: Timestamp, id: u64) -> bool {
        self.0.get(&tenant).is_some_and(|cp| (at, id) <= (cp.at, cp.audit_id))
    }
}

/// An allocation or a reclaim, as its audit entry records it.
fn kind_of(audit: &Audit) -> Transition {
    if audit.new_state == SeatState::Free {
        Transition::Reclaim
    } else {
        Transition::Allocate
    }
}

fn corrupt(k: &[u8], reason: &str) -> ScanError {
    ScanError::Decode(DecodeError::Corrupt {
        key: records::show_key(k),
        reason: reason.into(),
    })
}

/// The block holding `seat`; `blocks` sorted by first seat, as scanned.
fn block_of(blocks: &[BlockEntry], seat: SeatId) -> Option<&BlockRecord> {
    let after = blocks.partition_point(|b| b.block.first_seat <= seat);
    let b = &blocks.get(after.checked_sub(1)?)?.block;
    b.contains(seat).then_some(b)
}

/// The purchases since `since` that no purge covers.
pub(super) fn purchases(blocks: &[BlockEntry], since: Timestamp, purged: &Purged) -> Recent {
    let mut recent = Recent::new(since);
    for BlockEntry { block: b, .. } in blocks {
        if !purged.covers(b.tenant_id, b.created_at, b.first_audit.get()) {
            recent.add(b.tenant_id, b.created_at, Transition::Purchase, b.count);
        }
    }
    recent
}

/// Decodes every audit record and counts the allocations and reclaims since
/// `since` that no purge covers. Audit keys sort by seat, so the block found
/// for one entry (for its tenant) nearly always holds the next.
pub(super) fn check_audits(
    db: &sled::Db,
    since: Timestamp,
    blocks: &[BlockEntry],
    purged: &Purged,
) -> Result<Recent, ScanError> {
    let mut recent = Recent::new(since);
    let mut last: Option<&BlockRecord> = None;
    for item in db.scan_prefix([records::AUDIT]) {
        let (k, v) = item?;
        let audit: Audit = decode(&k, &v).map_err(ScanError::Decode)?;
        if audit.created_at < since {
            continue;
        }
        let block = match last.filter(|b| b.contains(audit.seat_id)) {
            Some(b) => b,
            None => block_of(blocks, audit.seat_id).ok_or_else(|| corrupt(&k, "names a seat of no block"))?,
        };
        last = Some(block);
        if !purged.covers(block.tenant_id, audit.created_at, audit.id.get()) {
            recent.add(block.tenant_id, audit.created_at, kind_of(&audit), 1);
        }
    }
    Ok(recent)
}

/// Decodes every trail record and its key; a purchase's entry must name a
/// block that is there.
pub(super) fn check_trail(db: &sled::Db, blocks: &[BlockEntry]) -> Result<(), ScanError> {
    let firsts: HashSet<SeatId> = blocks.iter().map(|b| b.block.first_seat).collect();
    for item in db.scan_prefix([records::TRAIL]) {
        let (k, v) = item?;
        let entry: TrailEntry = decode(&k, &v).map_err(ScanError::Decode)?;
        if records::trail_key_parts(&k).is_none() || records::key_id(&k).and_then(TenantId::new).is_none() {
            return Err(corrupt(&k, "bad key"));
        }
        if let TrailEntry::Block { first_seat, .. } = entry {
            if !firsts.contains(&first_seat) {
                return Err(corrupt(&k, "names a missing block"));
            }
        }
    }
    Ok(())
}

/// Writes the keys that follow a commit point when a crash came between them
/// (see `Store::put_transition`), except those a retention run has purged
/// since, and counts a restored audit entry in `recent` (the audit pass, run
/// before this, could not see it). Returns how many keys it wrote.
pub(super) fn restore_followers(
    db: &sled::Db,
    seats: &[(SeatId, SeatRecord)],
    blocks: &[BlockEntry],
    roles: &[RoleEntry],
    purged: &Purged,
    role_purges: &HashMap<TenantId, RolePurge>,
    recent: &mut Recent,
) -> Result<usize, ScanError> {
    // Only a tenant's latest seat change can have lost its followers: its
    // actor writes each change's keys one after another, and sled recovers
    // a prefix of its log, so a later commit point present means every key
    // written before it is present too. (Checking every seat cost a sled
    // read per seat at each start: seconds at 1,000,000 allocated seats.)
    // A seat record's `updated_at` is its last audit entry's time, and an
    // actor's clock never repeats a time: the latest change of a tenant is
    // its seat with the greatest `updated_at` (all of them, were two equal).
    let mut latest: HashMap<TenantId, (Timestamp, Vec<SeatId>)> = HashMap::new();
    for (seat, record) in seats {
        let at = record.updated_at;
        let slot = latest.entry(record.tenant_id).or_insert((at, Vec::new()));
        if at > slot.0 {
            *slot = (at, vec![*seat]);
        } else if at == slot.0 {
            slot.1.push(*seat);
        }
    }
    let mut restored = 0;
    let mut restore = |k: Vec<u8>, v: Vec<u8>| -> Result<bool, ScanError> {
        if db.contains_key(&k)? {
            return Ok(false);
        }
        db.insert(k, v)?;
        restored += 1;
        Ok(true)
    };
    for seat in latest.into_values().flat_map(|(_, seats)| seats) {
        let k = key(records::SEAT, seat.get());
        let Some(v) = db.get(k)? else {
            continue;
        };
        // A corrupt entry stops the start, like any unreadable record.
        let entry: SeatEntry = decode(&k, &v).map_err(ScanError::Decode)?;
        let a = &entry.last_audit;
        if purged.covers(entry.tenant, a.created_at, a.id.get()) {
            continue;
        }
        for (k, v) in entry.as_ref().followers(seat) {
            let is_audit = k.first() == Some(&records::AUDIT);
            if restore(k, v)? && is_audit {
                recent.add(entry.tenant, a.created_at, kind_of(a), 1);
            }
        }
    }
    for entry in blocks {
        let b = &entry.block;
        if !purged.covers(b.tenant_id, b.created_at, b.first_audit.get()) {
            for (k, v) in entry.as_ref().followers() {
                restore(k, v)?;
            }
        }
    }
    for entry in roles {
        let e = &entry.last_event;
        if role_purges
            .get(&e.tenant_id)
            .is_none_or(|mark| e.created_at >= mark.before)
        {
            restore(records::role_event_key(e.tenant_id, e.id).to_vec(), encode(e))?;
        }
    }
    Ok(restored)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(n: u64) -> TenantId {
        TenantId::new(n).expect("a valid id")
    }

    #[test]
    fn recent_counts_per_minute_from_passes_merged() {
        let since = Timestamp::minute_start(100);
        let mut a = Recent::new(since);
        a.add(
            tenant(1),
            Timestamp::from_micros(100 * 60_000_000 + 5),
            Transition::Allocate,
            1,
        );
        a.add(
            tenant(1),
            Timestamp::from_micros(101 * 60_000_000 - 1),
            Transition::Allocate,
            1,
        );
        // Before `since`: not counted.
        a.add(
            tenant(1),
            Timestamp::from_micros(100 * 60_000_000 - 1),
            Transition::Allocate,
            1,
        );
        let mut b = Recent::new(since);
        b.add(tenant(1), Timestamp::minute_start(101), Transition::Reclaim, 1);
        b.add(tenant(1), Timestamp::minute_start(100), Transition::Purchase, 7);
        b.add(tenant(2), Timestamp::minute_start(100), Transition::Allocate, 1);
        let changes = a.merge(b).into_changes();
        assert_eq!(
            changes[&tenant(1)],
            vec![
                (Timestamp::minute_start(100), Transition::Purchase, 7),
                (Timestamp::minute_start(100), Transition::Allocate, 2),
                (Timestamp::minute_start(101), Transition::Reclaim, 1),
            ]
        );
        assert_eq!(
            changes[&tenant(2)],
            vec![(Timestamp::minute_start(100), Transition::Allocate, 1)]
        );
    }
}
