//! What a start reads besides the records memory holds: the keys a crash kept
//! from following their commit point are written back, and the history pass
//! (`Store::check_history`) decodes every audit and trail record (a corrupt
//! or unknown-version one stops the service) and rebuilds the per-minute
//! stats of the last `RECENT`.
//!
//! The history pass runs after the service starts answering: it is two
//! sequential scans of one record per changed seat each, most of which is
//! sled paging in nodes.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use super::records::{self, decode, encode, key, BlockEntry, BlockRecord, Checkpoint, RolePurge};
use super::records::{decode_tailed, AnswerTail, RoleEntry, SeatEntry, SeatRecord, TrailEntry};
use super::{corrupt, Arriving, RecentChanges, ScanError};
use crate::domain::{Audit, Id, SeatCount, SeatId, TenantId, Timestamp, Transition};

/// Each tenant's seat transitions since `since`, counted per minute. Passes
/// that run side by side each fill one; `merge` adds them up.
#[derive(Debug)]
pub(super) struct Recent {
    since: Timestamp,
    minutes: HashMap<(TenantId, i64), [u64; Transition::COUNT]>,
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
            for kind in Transition::ALL {
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
        self.0.get(&tenant).is_some_and(|cp| cp.covers(at, id))
    }
}

/// The block holding `seat`; `blocks` sorted by first seat, as scanned.
fn block_of(blocks: &[BlockEntry], seat: SeatId) -> Option<&BlockRecord> {
    let after = blocks.partition_point(|b| b.block.first_seat <= seat);
    let b = &blocks.get(after.checked_sub(1)?)?.block;
    b.contains(seat).then_some(b)
}

/// Every block holds what a purchase can buy: the pools give each of its
/// seats 48 bytes on start, so a count no purchase makes is a corrupt record,
/// not an allocation to attempt.
pub(super) fn check_blocks(blocks: &[BlockEntry]) -> Result<(), ScanError> {
    match blocks.iter().find(|b| !(1..=SeatCount::MAX).contains(&b.block.count)) {
        Some(b) => Err(corrupt(
            &key(records::BLOCK, b.block.first_seat.get()),
            "holds a seat count no purchase makes",
        )),
        None => Ok(()),
    }
}

/// Every seat's record (only the `SeatRecord` that leads its entry: bincode
/// reads the leading fields and leaves the rest), in seat order. Read in two
/// halves of the seat ids on two threads: with many changed seats this is
/// most of the time before the service answers, and nearly all of it is
/// sled paging in nodes, which parallelizes.
///
/// Also returns the seats a transfer was moving when the process stopped
/// (`Arriving`): their record names the new owner, their last change is
/// on the old owner's trail.
pub(super) fn scan_seats(db: &sled::Db, blocks: &[BlockEntry]) -> Result<Heads, ScanError> {
    let first = blocks.first().map_or(0, |b| b.block.first_seat.get());
    let end = blocks.last().map_or(0, |b| b.block.first_seat.get() + b.block.count);
    let mid = key(records::SEAT, first + (end - first) / 2);
    let (low, high) = std::thread::scope(|s| {
        let high = s.spawn(|| heads(db.range(mid..key(records::SEAT + 1, 0))));
        let low = heads(db.range(key(records::SEAT, 0)..mid));
        (low, super::joined(high))
    });
    let (mut seats, mut arriving) = low?;
    let (more, also) = high?;
    seats.extend(more);
    arriving.extend(also);
    Ok((seats, arriving))
}

/// Every changed seat's record, and the seats in transit among them.
type Heads = (Vec<(SeatId, SeatRecord)>, Vec<Arriving>);

fn heads(items: sled::Iter) -> Result<Heads, ScanError> {
    let mut seats = Vec::new();
    let mut arriving = Vec::new();
    for item in items {
        let (k, v) = item?;
        let seat = records::key_id(&k)
            .and_then(SeatId::new)
            .ok_or_else(|| corrupt(&k, "bad key"))?;
        let head = records::decode_seat_head(&k, &v).map_err(ScanError::Decode)?;
        if let Some((from, by)) = head.moving {
            arriving.push(Arriving {
                seat,
                from,
                to: head.record.tenant_id,
                by,
            });
        }
        seats.push((seat, head.record));
    }
    Ok((seats, arriving))
}

/// How many records a pass reads between looks at its stop flag.
const STOP_EVERY: usize = 4096;

/// The purchases since `since` that no purge covers, of those whose audit
/// ids are below `below` (made before this process started).
pub(super) fn purchases(blocks: &[BlockEntry], since: Timestamp, below: u64, purged: &Purged) -> Recent {
    let mut recent = Recent::new(since);
    for BlockEntry { block: b, .. } in blocks {
        if b.first_audit.get() < below && !purged.covers(b.tenant_id, b.created_at, b.first_audit.get()) {
            recent.add(b.tenant_id, b.created_at, Transition::Purchase, b.count);
        }
    }
    recent
}

/// Decodes every audit record and counts the allocations and reclaims since
/// `since` that no purge covers, of those with ids below `below` (later ones
/// the actors count as they happen); returns those counts and the ids of
/// every record below `below` (for `trail_names_audits`). Audit keys sort
/// by seat, so the block found for one entry (for its tenant) nearly always
/// holds the next. Stops early once `stop` is set.
pub(super) fn check_audits(
    db: &sled::Db,
    since: Timestamp,
    below: u64,
    blocks: &[BlockEntry],
    owners: &super::owners::Owners,
    purged: &Purged,
    stop: &AtomicBool,
) -> Result<(Recent, Vec<u64>), ScanError> {
    let mut recent = Recent::new(since);
    let mut ids = Vec::new();
    let mut last: Option<&BlockRecord> = None;
    for (n, item) in db.scan_prefix([records::AUDIT]).enumerate() {
        if n % STOP_EVERY == 0 && stop.load(Ordering::Relaxed) {
            break;
        }
        let (k, v) = item?;
        let audit: Audit = decode(&k, &v).map_err(ScanError::Decode)?;
        if audit.id.get() >= below {
            continue;
        }
        ids.push(audit.id.get());
        if audit.created_at < since {
            continue;
        }
        let block = match last.filter(|b| b.contains(audit.seat_id)) {
            Some(b) => b,
            None => block_of(blocks, audit.seat_id).ok_or_else(|| corrupt(&k, "names a seat of no block"))?,
        };
        last = Some(block);
        // The tenant whose trail holds it: the buyer, or a transfer's.
        let tenant = owners.at(audit.seat_id, audit.id.get(), block.tenant_id);
        if !purged.covers(tenant, audit.created_at, audit.id.get()) {
            recent.add(tenant, audit.created_at, Transition::of(&audit), 1);
        }
    }
    Ok((recent, ids))
}

/// Decodes every trail record and its key; a purchase's entry from before
/// this process started (audit ids below `below`) must name a block in
/// `blocks`, read then: later purchases are not in it. Returns the ids of
/// the seat changes' entries below `below` (for `trail_names_audits`).
/// Stops early once `stop` is set.
pub(super) fn check_trail(
    db: &sled::Db,
    blocks: &[BlockEntry],
    below: u64,
    stop: &AtomicBool,
) -> Result<Vec<u64>, ScanError> {
    let firsts: HashSet<SeatId> = blocks.iter().map(|b| b.block.first_seat).collect();
    let mut seat_changes = Vec::new();
    for (n, item) in db.scan_prefix([records::TRAIL]).enumerate() {
        if n % STOP_EVERY == 0 && stop.load(Ordering::Relaxed) {
            break;
        }
        let (k, v) = item?;
        let entry: TrailEntry = decode(&k, &v).map_err(ScanError::Decode)?;
        let id = match (
            records::trail_key_parts(&k),
            records::key_id(&k).and_then(TenantId::new),
        ) {
            (Some((_, id)), Some(_)) => id,
            _ => return Err(corrupt(&k, "bad key")),
        };
        match entry {
            TrailEntry::Block { first_seat, .. } => {
                if id < below && !firsts.contains(&first_seat) {
                    return Err(corrupt(&k, "names a missing block"));
                }
            }
            TrailEntry::Seat { .. } if id < below => seat_changes.push(id),
            TrailEntry::Seat { .. } => {}
        }
    }
    Ok(seat_changes)
}

/// Every seat change's trail entry (`seat_changes`, from `check_trail`)
/// names an audit record that is there (`audits`, from `check_audits`):
/// audit records are keyed by seat and trail entries by time, so the two
/// passes collect ids and they are joined here, sorted, instead of one sled
/// read per entry. Only on a miss is the trail read again, for its key.
pub(super) fn trail_names_audits(db: &sled::Db, mut audits: Vec<u64>, seat_changes: Vec<u64>) -> Result<(), ScanError> {
    audits.sort_unstable();
    let Some(missing) = seat_changes.into_iter().find(|id| audits.binary_search(id).is_err()) else {
        return Ok(());
    };
    for item in db.scan_prefix([records::TRAIL]) {
        let (k, _) = item?;
        if records::trail_key_parts(&k).is_some_and(|(_, id)| id == missing) {
            return Err(corrupt(&k, "names a missing audit record"));
        }
    }
    // Not there any more (removed since the pass read it): nothing to report.
    Ok(())
}

/// Writes the keys that follow a commit point when a crash came between them
/// (see `Store::put_transition`), except those a retention run has purged
/// since. Returns how many keys it wrote.
/// Finishes the bulk seat changes a crash cut short (`Store::put_seat_changes`):
/// every seat key the parts of a tenant's `BULK` commit point carry is
/// written unless a newer change of that seat is already there, then the
/// commit point and its parts go. Parts with no commit point (a crash before
/// it) were never a change: they are dropped. The followers of the seat keys
/// (audit, trail, alert keys) are the latest changes of the tenant, which
/// `restore_followers` then completes. Returns the seat keys written.
pub(super) fn finish_bulk(db: &sled::Db) -> Result<(usize, Vec<AnswerTail>), ScanError> {
    let mut written = 0;
    let mut tails = Vec::new();
    for item in db.scan_prefix([records::BULK]) {
        let (bulk_key, v) = item?;
        let (parts, tail): (u64, _) = decode_tailed(&bulk_key, &v).map_err(ScanError::Decode)?;
        tails.extend(tail);
        let tenant = records::key_id(&bulk_key)
            .and_then(TenantId::new)
            .ok_or_else(|| corrupt(&bulk_key, "bad key"))?;
        for n in 0..parts {
            let part_key = records::bulk_part_key(tenant, n);
            let Some(part) = db.get(part_key)? else {
                return Err(corrupt(&bulk_key, &format!("part {n} of {parts} is missing")));
            };
            let entries = records::decode_bulk_part(&part_key, &part).map_err(ScanError::Decode)?;
            for (seat, entry) in entries {
                let k = key(records::SEAT, seat.get());
                let newer = match db.get(k)? {
                    Some(stored) => {
                        let stored: SeatEntry = decode(&k, &stored).map_err(ScanError::Decode)?;
                        stored.last_audit.id >= entry.last_audit.id
                    }
                    None => false,
                };
                if !newer {
                    db.insert(k, records::encode_seat_entry(&entry.as_ref()))?;
                    written += 1;
                }
            }
        }
        db.remove(&bulk_key)?;
    }
    // What is left are parts no commit point names.
    for item in db.scan_prefix([records::BULK_PART]) {
        let (part_key, _) = item?;
        db.remove(&part_key)?;
    }
    Ok((written, tails))
}

pub(super) fn restore_followers(
    db: &sled::Db,
    seats: &[(SeatId, SeatRecord)],
    arriving: &[Arriving],
    blocks: &[BlockEntry],
    roles: &[RoleEntry],
    purged: &Purged,
    role_purges: &HashMap<TenantId, RolePurge>,
) -> Result<(usize, Vec<AnswerTail>), ScanError> {
    // Only a tenant's latest seat change can have lost its followers: its
    // actor writes each change's keys one after another, and sled recovers
    // a prefix of its log, so a later commit point present means every key
    // written before it is present too. (Checking every seat would cost a
    // sled read per seat at each start.)
    // A seat record's `updated_at` is its last audit entry's time, and an
    // actor's clock never repeats a time: the latest change of a tenant is
    // its seat with the greatest `updated_at` (all of them, were two equal).
    // A seat in transit: its last change is on the trail of the tenant it
    // left, which is the one it counts for here.
    let left: HashMap<SeatId, TenantId> = arriving.iter().map(|a| (a.seat, a.from)).collect();
    let mut latest: HashMap<TenantId, (Timestamp, Vec<SeatId>)> = HashMap::new();
    for (seat, record) in seats {
        let at = record.updated_at;
        let tenant = left.get(seat).copied().unwrap_or(record.tenant_id);
        let slot = latest.entry(tenant).or_insert((at, Vec::new()));
        if at > slot.0 {
            *slot = (at, vec![*seat]);
        } else if at == slot.0 {
            slot.1.push(*seat);
        }
    }
    let mut restored = 0;
    let mut tails = Vec::new();
    let mut restore = |k: Vec<u8>, v: Vec<u8>| -> Result<(), ScanError> {
        if !db.contains_key(&k)? {
            db.insert(k, v)?;
            restored += 1;
        }
        Ok(())
    };
    for seat in latest.into_values().flat_map(|(_, seats)| seats) {
        let k = key(records::SEAT, seat.get());
        let Some(v) = db.get(k)? else {
            continue;
        };
        // A corrupt entry stops the start, like any unreadable record.
        let (entry, tail) = records::decode_seat_entry(&k, &v).map_err(ScanError::Decode)?;
        tails.extend(tail);
        let a = &entry.last_audit;
        if purged.covers(entry.tenant, a.created_at, a.id.get()) {
            continue;
        }
        for (k, v) in entry.as_ref().followers(seat) {
            restore(k, v)?;
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
    Ok((restored, tails))
}

#[cfg(test)]
mod tests {
    use super::super::records::{DecodeError, SeatEntryRef};
    use super::super::{IdSpace, Store};
    use super::*;
    use crate::domain::{LearnerId, SeatState, UserId};

    fn tenant(n: u64) -> TenantId {
        TenantId::new(n).expect("a valid id")
    }

    /// Opens the store again once the last instance let go of it (sled
    /// releases its lock from its own threads after the drop).
    fn reopen(dir: &std::path::Path) -> std::sync::Arc<Store> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match Store::open(dir) {
                Ok((store, _)) => return store,
                Err(super::super::OpenError::Locked(_)) if std::time::Instant::now() < deadline => {
                    std::thread::yield_now()
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    /// A purchase of 3 seats and an allocation of one, with ids from the
    /// store's leases (as actors take them).
    fn purchase_and_allocate(store: &Store, t: TenantId, at: Timestamp) {
        let id = |space, n| store.ids(space, n).expect("ids");
        let (first_seat, first_audit) = (id(IdSpace::Seat, 3), id(IdSpace::Audit, 3));
        let block = BlockRecord {
            tenant_id: t,
            first_seat: SeatId::new(first_seat).expect("seat id"),
            count: 3,
            first_audit: Id::new(first_audit).expect("audit id"),
            created_at: at,
            changed_by: UserId::parse("admin").expect("user"),
        };
        store.put_block(&block, None, [0; 32], None, None).expect("put_block");
        let seat = block.first_seat;
        let learner = LearnerId::parse("l1").expect("learner");
        let audit = Audit {
            id: Id::new(id(IdSpace::Audit, 1)).expect("audit id"),
            seat_id: seat,
            previous_state: Some(SeatState::Free),
            new_state: SeatState::Assigned,
            previous_learner_id: None,
            new_learner_id: Some(learner.clone()),
            changed_by: UserId::parse("admin").expect("user"),
            reason: "Seat allocated to learner".into(),
            created_at: at,
        };
        let record = SeatRecord {
            tenant_id: t,
            state: SeatState::Assigned,
            learner_id: Some(learner),
            reserved_at: None,
            assigned_at: Some(at),
            updated_at: at,
            reserved_until: None,
            expires_at: None,
        };
        store
            .put_seat_change(t, seat, &record, &audit, [0; 32])
            .expect("put_seat_change");
    }

    #[test]
    fn a_bulk_change_cut_short_by_a_crash_is_finished_at_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (t, at) = (tenant(1), Timestamp::now());
        let changed: Vec<SeatId>;
        {
            let (store, _) = Store::open(dir.path()).expect("open");
            purchase_and_allocate(&store, t, at);
            // Seats 2 and 3 of the block, assigned in one bulk change.
            let first = store.ids(IdSpace::Audit, 2).expect("ids");
            changed = (1..3).map(|i| SeatId::new(1 + i).expect("seat")).collect();
            let audits: Vec<Audit> = changed
                .iter()
                .enumerate()
                .map(|(i, seat)| Audit {
                    id: Id::new(first + i as u64).expect("audit id"),
                    seat_id: *seat,
                    previous_state: Some(SeatState::Free),
                    new_state: SeatState::Assigned,
                    previous_learner_id: None,
                    new_learner_id: Some(LearnerId::parse(&format!("b{i}")).expect("learner")),
                    changed_by: UserId::parse("admin").expect("user"),
                    reason: "Seat allocated to learner".into(),
                    created_at: at,
                })
                .collect();
            let records: Vec<SeatRecord> = audits
                .iter()
                .map(|a| SeatRecord {
                    tenant_id: t,
                    state: SeatState::Assigned,
                    learner_id: a.new_learner_id.clone(),
                    reserved_at: None,
                    assigned_at: Some(at),
                    updated_at: at,
                    reserved_until: None,
                    expires_at: None,
                })
                .collect();
            let writes: Vec<super::super::SeatWrite<'_>> = changed
                .iter()
                .zip(&records)
                .zip(&audits)
                .map(|((seat, record), audit)| super::super::SeatWrite {
                    seat: *seat,
                    record,
                    audit,
                    hash: [7; 32],
                    alert: None,
                })
                .collect();
            store.put_seat_changes(t, &writes, None).expect("put_seat_changes");
            // What a crash right after the commit point leaves: the commit
            // point, and none of the keys that follow it.
            let entries: Vec<(SeatId, SeatEntryRef<'_>)> = writes
                .iter()
                .map(|w| {
                    let entry = SeatEntryRef {
                        seat: w.record,
                        last_audit: w.audit,
                        tenant: t,
                        hash: w.hash,
                        alert: None,
                    };
                    (w.seat, entry)
                })
                .collect();
            store
                .db
                .insert(records::bulk_part_key(t, 0), encode(&entries))
                .expect("part");
            store
                .db
                .insert(key(records::BULK, t.get()), encode(&1u64))
                .expect("bulk");
            // And the part of a later bulk that crashed before its commit point.
            let orphan = &entries[..1];
            store
                .db
                .insert(records::bulk_part_key(tenant(9), 0), encode(&orphan))
                .expect("orphan part");
            for (seat, audit) in changed.iter().zip(&audits) {
                store.db.remove(key(records::SEAT, seat.get())).expect("remove");
                store.db.remove(records::audit_key(*seat, audit.id)).expect("remove");
                store.db.remove(records::trail_key(t, at, audit.id)).expect("remove");
            }
            store.close();
        }
        let (store, recovered) = loop {
            match Store::open(dir.path()) {
                Err(super::super::OpenError::Locked(_)) => std::thread::yield_now(),
                other => break other.expect("open"),
            }
        };
        let held: Vec<(SeatId, Option<&str>)> = recovered
            .seats
            .iter()
            .map(|(seat, r)| (*seat, r.learner_id.as_ref().map(LearnerId::as_str)))
            .collect();
        assert_eq!(held[1..], [(changed[0], Some("b0")), (changed[1], Some("b1"))]);
        assert!(
            store.db.get(key(records::BULK, t.get())).expect("read").is_none(),
            "finished and removed"
        );
        assert_eq!(
            store.db.scan_prefix([records::BULK_PART]).count(),
            0,
            "its part and the orphan removed"
        );
        for seat in &changed {
            assert_eq!(
                store.db.scan_prefix(records::audit_prefix(*seat)).count(),
                1,
                "audit key restored"
            );
        }
        assert_eq!(
            store.db.scan_prefix(records::trail_prefix(t)).count(),
            4,
            "block, seat 1, seats 2 and 3"
        );
    }

    #[test]
    fn the_history_pass_counts_only_what_came_before_the_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (t, now) = (tenant(1), Timestamp::now());
        let since = Timestamp::from_micros(now.micros() - 60_000_000);
        let stop = AtomicBool::new(false);
        {
            let (store, _) = Store::open(dir.path()).expect("open");
            purchase_and_allocate(&store, t, now);
            // Written after this open: the actors count these, not the pass.
            assert_eq!(
                store.check_history(since, &stop).expect("check"),
                Some(RecentChanges::new())
            );
            store.close();
        }
        let store = reopen(dir.path());
        let at = Timestamp::minute_start(now.minute());
        assert_eq!(
            store.check_history(since, &stop).expect("check").map(|c| c[&t].clone()),
            Some(vec![(at, Transition::Purchase, 3), (at, Transition::Allocate, 1)])
        );
        // A pass told to stop gives up rather than publish partial counts.
        stop.store(true, Ordering::Relaxed);
        assert_eq!(store.check_history(since, &stop).expect("check"), None);
    }

    #[test]
    fn a_block_of_more_seats_than_a_purchase_buys_refuses_the_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let (store, _) = Store::open(dir.path()).expect("open");
            purchase_and_allocate(&store, tenant(1), Timestamp::now());
            let block = BlockRecord {
                tenant_id: tenant(1),
                first_seat: SeatId::new(1_000).expect("seat id"),
                // Restored as is, this would be 4.8 TB of seat slots.
                count: 100_000_000_000,
                first_audit: Id::new(1_000).expect("audit id"),
                created_at: Timestamp::now(),
                changed_by: UserId::parse("admin").expect("user"),
            };
            store.put_block(&block, None, [0; 32], None, None).expect("put_block");
            store.close();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let err = loop {
            match Store::open(dir.path()) {
                Err(super::super::OpenError::Locked(_)) if std::time::Instant::now() < deadline => {
                    std::thread::yield_now()
                }
                Err(e) => break e,
                Ok(_) => panic!("a block of 100,000,000,000 seats was accepted"),
            }
        };
        assert!(
            err.to_string().contains("holds a seat count no purchase makes"),
            "{err}"
        );
    }

    #[test]
    fn a_seat_change_whose_audit_record_is_missing_fails_the_history_pass() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let (store, _) = Store::open(dir.path()).expect("open");
            purchase_and_allocate(&store, tenant(1), Timestamp::now());
            store.close();
        }
        let store = reopen(dir.path());
        let stop = AtomicBool::new(false);
        let since = Timestamp::from_micros(0);
        assert!(store.check_history(since, &stop).is_ok(), "an intact store passes");
        let (audit_key, _) = store
            .db
            .scan_prefix([records::AUDIT])
            .next()
            .expect("an audit record")
            .expect("readable");
        store.db.remove(&audit_key).expect("remove");
        let err = store
            .check_history(since, &stop)
            .expect_err("a trail entry names a missing audit record");
        assert!(err.to_string().contains("names a missing audit record"), "{err}");
    }

    #[test]
    fn a_purchase_made_while_the_trail_is_checked_is_not_taken_for_a_missing_block() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, _) = Store::open(dir.path()).expect("open");
        let below = store.ids(IdSpace::Audit, 1).expect("ids");
        purchase_and_allocate(&store, tenant(1), Timestamp::now());
        let stop = AtomicBool::new(false);
        // The pass read the blocks before this purchase: its trail entry
        // names a block the pass does not know, and is newer than the open.
        assert!(check_trail(&store.db, &[], below, &stop).is_ok());
        // The same entry from before the open would be a broken store.
        let err = check_trail(&store.db, &[], u64::MAX, &stop).expect_err("a missing block");
        assert!(
            matches!(err, ScanError::Decode(DecodeError::Corrupt { ref reason, .. }) if reason == "names a missing block")
        );
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
