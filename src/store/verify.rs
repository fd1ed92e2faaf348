//! Checking a tenant's audit evidence, in two steps; nothing is written.
//!
//! 1. The chain: every trail entry, in key order (which is write order),
//!    each link recomputed from the stored records. The first entry whose
//!    link does not match is named.
//! 2. The records around it: every stored audit record and purchase block of
//!    the tenant's seats is on the chain (or purged by retention), and every
//!    seat's stored state is the state its last entry on the chain left it
//!    in. The service shows records by key, not through the chain: an audit
//!    record under a key no trail entry names appears in the seat's history,
//!    and a seat record shows whatever it holds, so without this step both
//!    would pass for intact.
//!
//! Cost: O(the tenant's trail) for the chain, then one pass over the keys of
//! the tenant's seats and audit records, and a scan of every purchase block
//! (blocks are one per purchase: few beside seats) to find the tenant's.

use std::ops::Bound;

use serde::Serialize;

use crate::domain::{Id, SeatId, SeatState, TenantId, Timestamp};

use crate::domain::Audit;

use super::owners::Owners;
use super::records::{
    self, decode, encode, key, show_key, BlockEntry, BlockRecord, Checkpoint, Hash, SeatEntry, SeatRecord, TrailEntry,
};

/// What a walk found.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ChainReport {
    pub tenant_id: TenantId,
    /// Entries checked and found intact (before the first bad one, if any).
    pub entries: u64,
    /// Entries purged by retention before them (the chain starts from the
    /// checkpoint they left).
    pub purged_entries: u64,
    /// Seat records compared with the last entry of their seat (0 when the
    /// chain itself is broken: the records are checked against an intact
    /// chain only).
    pub seats_checked: u64,
    pub intact: bool,
    /// The first entry (or record) that does not match, when `intact` is false.
    pub first_bad_entry: Option<BadEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct BadEntry {
    pub audit_id: u64,
    pub seat_id: Option<u64>,
    pub created_at: Option<Timestamp>,
    pub reason: String,
    /// The store key of the record found wrong (kind letter / hex, as the
    /// store's errors print keys), when there is one.
    pub record: Option<String>,
}

impl BadEntry {
    fn new(audit_id: u64, seat: Option<SeatId>, at: Option<Timestamp>, record: &[u8], reason: String) -> Self {
        BadEntry {
            audit_id,
            seat_id: seat.map(Id::get),
            created_at: at,
            reason,
            record: (!record.is_empty()).then(|| show_key(record)),
        }
    }
}

/// Checks a tenant's chain, then its records against the chain, for
/// `Store::verify_chain`. `head`, when known (the tenant actor's latest
/// link, read before the walk started), must be one of the links walked: a
/// trail cut short at its end leaves every remaining link intact, and only
/// this shows it. A head also means the service is running: a change newer
/// than the walk may be a write in flight, left for a later walk (`Live`).
pub fn walk(db: &sled::Db, tenant: TenantId, head: Option<Hash>) -> Result<ChainReport, sled::Error> {
    let chain = match walk_chain(db, tenant, head)? {
        Ok(chain) => chain,
        Err(report) => return Ok(report),
    };
    // Read after the walk: a purchase made since is newer than the chain walked.
    let blocks = tenant_blocks(db, tenant)?;
    let owners = Owners::read_lenient(db)?;
    let live = if head.is_some() { Live::Yes } else { Live::No };
    check_records(db, tenant, &chain, &blocks, &owners, live)
}

/// `walk` over a store no service holds, with the tenant's purchase blocks
/// read beforehand (`blocks_by_tenant`, once for every tenant).
pub fn walk_stopped(db: &sled::Db, tenant: TenantId, blocks: &[BlockRecord]) -> Result<ChainReport, sled::Error> {
    match walk_chain(db, tenant, None)? {
        Ok(chain) => check_records(db, tenant, &chain, blocks, &Owners::read_lenient(db)?, Live::No),
        Err(report) => Ok(report),
    }
}

/// Every purchase block, by tenant, in seat order. A block that does not
/// decode is left out: the walk names it if its tenant's chain holds it,
/// and a start refuses it anyway.
pub fn blocks_by_tenant(db: &sled::Db) -> Result<std::collections::HashMap<TenantId, Vec<BlockRecord>>, sled::Error> {
    let mut out: std::collections::HashMap<TenantId, Vec<BlockRecord>> = std::collections::HashMap::new();
    for item in db.scan_prefix([records::BLOCK]) {
        let (k, v) = item?;
        if let Ok(b) = decode::<BlockRecord>(&k, &v) {
            out.entry(b.tenant_id).or_default().push(b);
        }
    }
    Ok(out)
}

fn tenant_blocks(db: &sled::Db, tenant: TenantId) -> Result<Vec<BlockRecord>, sled::Error> {
    Ok(blocks_by_tenant(db)?.remove(&tenant).unwrap_or_default())
}

/// Whether the service writes while the records are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Live {
    /// Yes: a change newer than the walked chain may be in flight (its
    /// commit point is written before its audit record and trail key) and
    /// is left for a later walk, if it could be one: dated no later than
    /// the actor's clock can be (see `IN_FLIGHT_SLACK`), and, for an audit
    /// record, with its seat's commit point written already.
    Yes,
    /// No: nothing changes. A change newer than the chain can only be the
    /// tenant's last one, whose trail key a crash kept from being written
    /// (the next start restores it from the commit point): it must extend
    /// the chain by its own link.
    No,
}

/// How far past the later of the wall clock and the chain's last entry a
/// change in flight may be dated. An actor's clock is the wall clock, or
/// one microsecond past its last change when the wall clock went back.
const IN_FLIGHT_SLACK: i64 = 1_000_000;

/// What the chain walk saw, for checking the records against it.
struct Chain {
    checkpoint: Option<Checkpoint>,
    /// Every stored audit record on the chain: (seat, audit id, time),
    /// sorted by seat, then id.
    stored: Vec<(u64, u64, Timestamp)>,
    /// The first seat of every purchase block on the chain, sorted.
    blocks: Vec<u64>,
    /// The position of the last entry walked (the checkpoint's when the
    /// trail is empty; none when nothing was ever written) and the link
    /// after it.
    end: Option<(Timestamp, u64)>,
    hash: Hash,
    entries: u64,
}

impl Chain {
    fn report(&self, tenant: TenantId, seats_checked: u64, bad: Option<BadEntry>) -> ChainReport {
        ChainReport {
            tenant_id: tenant,
            entries: self.entries,
            purged_entries: self.checkpoint.map_or(0, |cp| cp.purged),
            seats_checked,
            intact: bad.is_none(),
            first_bad_entry: bad,
        }
    }

    fn purged(&self, at: Timestamp, id: u64) -> bool {
        self.checkpoint.is_some_and(|cp| cp.covers(at, id))
    }

    /// Whether the trail position (at, id) comes after every entry walked.
    fn newer(&self, at: Timestamp, id: u64) -> bool {
        self.end.is_none_or(|end| (at, id) > end)
    }
}

/// Step 1: the chain. `Err` is the report naming its first bad entry.
fn walk_chain(db: &sled::Db, tenant: TenantId, head: Option<Hash>) -> Result<Result<Chain, ChainReport>, sled::Error> {
    let ck = key(records::CHECKPOINT, tenant.get());
    let checkpoint: Option<Checkpoint> = match db.get(ck)? {
        None => None,
        Some(v) => match decode(&ck, &v) {
            Ok(cp) => Some(cp),
            Err(e) => {
                return Ok(Err(ChainReport {
                    tenant_id: tenant,
                    entries: 0,
                    purged_entries: 0,
                    seats_checked: 0,
                    intact: false,
                    first_bad_entry: Some(BadEntry::new(
                        0,
                        None,
                        None,
                        &ck,
                        format!("retention checkpoint unreadable: {e}"),
                    )),
                }))
            }
        },
    };
    let mut walked = Chain {
        checkpoint,
        stored: Vec::new(),
        blocks: Vec::new(),
        end: checkpoint.map(|cp| (cp.at, cp.audit_id)),
        hash: checkpoint.map_or([0; 32], |cp| cp.hash),
        entries: 0,
    };
    let mut head_seen = head.is_none_or(|h| h == walked.hash);
    let mut last_key: Vec<u8> = Vec::new();
    let mut last_id = 0;
    // Keys the checkpoint covers may remain while a purge runs or after a
    // crash cut one short: the chain goes on from the checkpoint.
    let start = match checkpoint {
        Some(cp) => Bound::Excluded(records::trail_bound(tenant, cp.at, cp.audit_id)),
        None => Bound::Included(records::trail_bound(tenant, Timestamp::from_micros(i64::MIN), 0)),
    };
    let end = Bound::Included(records::trail_bound(tenant, Timestamp::from_micros(i64::MAX), u64::MAX));
    for item in db.range((start, end)) {
        let (k, v) = item?;
        let bad = |audit_id, seat: Option<SeatId>, at, record: &[u8], reason: String| {
            Ok(Err(walked.report(
                tenant,
                0,
                Some(BadEntry::new(audit_id, seat, at, record, reason)),
            )))
        };
        let Some((at, id)) = records::trail_key_parts(&k) else {
            return bad(0, None, None, &k, format!("trail key {} is malformed", show_key(&k)));
        };
        let entry: TrailEntry = match decode(&k, &v) {
            Ok(e) => e,
            Err(e) => return bad(id, None, Some(at), &k, format!("trail entry unreadable: {e}")),
        };
        let link = match entry {
            TrailEntry::Seat { seat, hash } => {
                let Some(audit_id) = crate::domain::AuditId::new(id) else {
                    return bad(id, Some(seat), Some(at), &k, "audit id 0".into());
                };
                let ak = records::audit_key(seat, audit_id);
                let audit: Audit = match db.get(ak)? {
                    None => return bad(id, Some(seat), Some(at), &ak, "audit record missing".into()),
                    Some(v) => match decode(&ak, &v) {
                        Ok(a) => a,
                        Err(e) => return bad(id, Some(seat), Some(at), &ak, format!("audit record unreadable: {e}")),
                    },
                };
                if audit.id != audit_id || audit.seat_id != seat || audit.created_at != at {
                    return bad(
                        id,
                        Some(seat),
                        Some(at),
                        &ak,
                        "audit record does not match its trail entry".into(),
                    );
                }
                let link = records::chain(&walked.hash, tenant, &audit);
                if link != hash {
                    return bad(
                        id,
                        Some(seat),
                        Some(at),
                        &ak,
                        "hash does not match: this entry (or the trail just before it) was altered or removed".into(),
                    );
                }
                walked.stored.push((seat.get(), id, at));
                walked.entries += 1;
                link
            }
            TrailEntry::Block { first_seat, hash } => {
                let bk = key(records::BLOCK, first_seat.get());
                let block: BlockRecord = match db.get(bk)? {
                    None => return bad(id, Some(first_seat), Some(at), &bk, "purchase block missing".into()),
                    Some(v) => match decode(&bk, &v) {
                        Ok(b) => b,
                        Err(e) => {
                            return bad(
                                id,
                                Some(first_seat),
                                Some(at),
                                &bk,
                                format!("purchase block unreadable: {e}"),
                            )
                        }
                    },
                };
                if block.first_audit.get() != id || block.created_at != at || block.tenant_id != tenant {
                    return bad(
                        id,
                        Some(first_seat),
                        Some(at),
                        &bk,
                        "purchase block does not match its trail entry".into(),
                    );
                }
                let link = purchase_link(&walked.hash, tenant, &block);
                if link != hash {
                    // One hash covers the block: its first entry is named.
                    return bad(
                        id,
                        Some(first_seat),
                        Some(at),
                        &bk,
                        format!(
                            "hash does not match: the purchase of {} seats starting here (or the trail just before it) was altered",
                            block.count
                        ),
                    );
                }
                walked.blocks.push(first_seat.get());
                walked.entries += block.count;
                link
            }
        };
        walked.hash = link;
        walked.end = Some((at, id));
        head_seen |= head == Some(link);
        last_id = id;
        last_key = k.to_vec();
    }
    if !head_seen {
        return Ok(Err(walked.report(
            tenant,
            0,
            Some(BadEntry::new(
                last_id,
                None,
                None,
                &last_key,
                "the trail ends before the latest entry this service wrote: entries are missing after this one".into(),
            )),
        )));
    }
    walked.stored.sort_unstable_by_key(|&(seat, id, _)| (seat, id));
    walked.blocks.sort_unstable();
    Ok(Ok(walked))
}

/// The chain link after a purchase block's derived entries, from `prev`.
fn purchase_link(prev: &Hash, tenant: TenantId, block: &BlockRecord) -> Hash {
    (0..block.count).fold(*prev, |h, i| records::chain(&h, tenant, &block.purchase_audit(i)))
}

/// The seat record a change leaves: what `SeatPool::record` writes after
/// the change that `audit` records (a held seat's time is its change's,
/// unless the change kept the state, a move or a renewal: then the time
/// it was taken stays, as `stored` shows it).
fn left_by(audit: &Audit, tenant: TenantId, stored: &SeatRecord) -> SeatRecord {
    let at = audit.created_at;
    let kept = audit.previous_state == Some(audit.new_state);
    let held = |state| (audit.new_state == state).then_some(at);
    SeatRecord {
        tenant_id: tenant,
        state: audit.new_state,
        learner_id: audit.new_learner_id.clone(),
        reserved_at: if kept {
            stored.reserved_at
        } else {
            held(SeatState::Reserved)
        },
        assigned_at: if kept {
            stored.assigned_at
        } else {
            held(SeatState::Assigned)
        },
        updated_at: at,
        reserved_until: None,
        expires_at: None,
    }
}

fn shown(r: &SeatRecord) -> String {
    let learner = r.learner_id.as_ref().map_or("none", |l| l.as_str());
    let held = r.assigned_at.or(r.reserved_at).map(Timestamp::rfc3339);
    format!(
        "{}, learner {learner}, updated {}{}",
        r.state,
        r.updated_at.rfc3339(),
        held.map_or(String::new(), |t| format!(", held since {t}"))
    )
}

/// One seat's keys: its record and its audit records (key, value, id).
struct SeatKeys {
    seat: SeatId,
    record: Option<(sled::IVec, sled::IVec)>,
    audits: Vec<(sled::IVec, sled::IVec, u64)>,
}

/// Step 2: the records of the tenant's seats against its intact chain.
fn check_records(
    db: &sled::Db,
    tenant: TenantId,
    chain: &Chain,
    blocks: &[BlockRecord],
    owners: &Owners,
    live: Live,
) -> Result<ChainReport, sled::Error> {
    let mut checker = Checker {
        db,
        tenant,
        chain,
        owners,
        live,
        newer_seen: false,
        seats_checked: 0,
    };
    let bad = checker.run(blocks)?;
    Ok(chain.report(tenant, checker.seats_checked, bad))
}

struct Checker<'a> {
    db: &'a sled::Db,
    tenant: TenantId,
    chain: &'a Chain,
    /// Seats transfers moved: which of a seat's entries are this tenant's.
    owners: &'a Owners,
    live: Live,
    /// Whether the change newer than the chain that a stopped store may
    /// hold was met (there is at most one: see `Live::No`).
    newer_seen: bool,
    seats_checked: u64,
}

impl Checker<'_> {
    fn run(&mut self, blocks: &[BlockRecord]) -> Result<Option<BadEntry>, sled::Error> {
        let bought = |seat: u64| {
            let after = blocks.partition_point(|b| b.first_seat.get() <= seat);
            after
                .checked_sub(1)
                .is_some_and(|i| seat - blocks[i].first_seat.get() < blocks[i].count)
        };
        // The seats to check: those of the tenant's blocks (whether it
        // still holds them or not), then those transfers brought it.
        let received: Vec<u64> = self
            .owners
            .received(self.tenant)
            .into_iter()
            .map(|s| s.get())
            .filter(|s| !bought(*s))
            .collect();
        let ranges = blocks
            .iter()
            .map(|b| (Some(b), b.first_seat.get(), b.first_seat.get().saturating_add(b.count)))
            .chain(received.iter().map(|&s| (None, s, s + 1)));
        // Entries on the chain whose seat is one of those.
        let mut placed = 0;
        for (block, lo, hi) in ranges {
            if let Some(bad) = block.map(|b| self.block(b)).transpose()?.flatten() {
                return Ok(Some(bad));
            }
            let is_bought = block.is_some();
            let stored = &self.chain.stored;
            let walked = &stored[stored.partition_point(|e| e.0 < lo)..stored.partition_point(|e| e.0 < hi)];
            placed += walked.len();
            let mut records = self.db.range(key(records::SEAT, lo)..key(records::SEAT, hi));
            let mut audits = self.db.range(audit_bound(lo)..audit_bound(hi));
            let (mut record, mut audit) = (records.next().transpose()?, audits.next().transpose()?);
            let mut w = 0;
            loop {
                // The next seat with a record, an audit record or an entry on the chain.
                let seat = [
                    record.as_ref().and_then(|(k, _)| records::key_id(k)),
                    audit.as_ref().and_then(|(k, _)| records::key_id(k)),
                    walked.get(w).map(|e| e.0),
                ]
                .into_iter()
                .flatten()
                .min();
                let Some(seat) = seat.and_then(SeatId::new) else { break };
                let mut keys = SeatKeys {
                    seat,
                    record: None,
                    audits: Vec::new(),
                };
                if record.as_ref().and_then(|(k, _)| records::key_id(k)) == Some(seat.get()) {
                    keys.record = record.take();
                    record = records.next().transpose()?;
                }
                while let Some((k, v)) = audit.take_if(|(k, _)| records::key_id(k) == Some(seat.get())) {
                    let id = k
                        .get(9..17)
                        .and_then(|b| b.try_into().ok())
                        .map_or(0, u64::from_be_bytes);
                    keys.audits.push((k, v, id));
                    audit = audits.next().transpose()?;
                }
                let from = w;
                while walked.get(w).is_some_and(|e| e.0 == seat.get()) {
                    w += 1;
                }
                if let Some(bad) = self.seat(&keys, &walked[from..w], is_bought)? {
                    return Ok(Some(bad));
                }
            }
        }
        if placed < self.chain.stored.len() {
            // An entry for a seat the tenant neither bought nor received
            // is not this chain's.
            let theirs = |seat: u64| bought(seat) || received.binary_search(&seat).is_ok();
            if let Some(&(seat, id, at)) = self.chain.stored.iter().find(|e| !theirs(e.0)) {
                let seat = SeatId::new(seat);
                let ak = seat
                    .zip(crate::domain::AuditId::new(id))
                    .map(|(s, a)| records::audit_key(s, a).to_vec())
                    .unwrap_or_default();
                return Ok(Some(BadEntry::new(
                    id,
                    seat,
                    Some(at),
                    &ak,
                    "this entry on the tenant's chain is for a seat the tenant did not buy".into(),
                )));
            }
        }
        Ok(None)
    }

    /// A purchase block is on the chain, purged, or (see `Live`) newer.
    fn block(&mut self, block: &BlockRecord) -> Result<Option<BadEntry>, sled::Error> {
        let (first, at, id) = (block.first_seat, block.created_at, block.first_audit.get());
        if self.chain.blocks.binary_search(&first.get()).is_ok() || self.chain.purged(at, id) {
            return Ok(None);
        }
        let bk = key(records::BLOCK, first.get());
        if self.in_flight(at, id) {
            return Ok(None);
        }
        if self.live == Live::No && self.chain.newer(at, id) && !self.newer_seen {
            let entry = match self.db.get(bk)? {
                Some(v) => decode::<BlockEntry>(&bk, &v).ok(),
                None => None,
            };
            if entry.is_some_and(|e| e.hash == purchase_link(&self.chain.hash, self.tenant, block)) {
                self.newer_seen = true;
                return Ok(None);
            }
        }
        Ok(Some(BadEntry::new(
            id,
            Some(first),
            Some(at),
            &bk,
            format!(
                "the purchase of {} seats starting here is not on the tenant's chain (no trail entry links it)",
                block.count
            ),
        )))
    }

    /// One seat: its record is what its last entry on the chain left, and
    /// each of its audit records is on the chain. `walked`: its entries on
    /// the chain, in id order.
    fn seat(
        &mut self,
        keys: &SeatKeys,
        walked: &[(u64, u64, Timestamp)],
        bought: bool,
    ) -> Result<Option<BadEntry>, sled::Error> {
        let seat = keys.seat;
        let (owners, tenant) = (self.owners, self.tenant);
        let moves = owners.moves(seat);
        // Whether the seat's entry `id` is on this tenant's trail.
        let ours = |id: u64| {
            moves
                .iter()
                .take_while(|m| m.out < id)
                .last()
                .map_or(bought, |m| m.to == tenant)
        };
        let last = walked.iter().map(|&(_, id, at)| (at, id)).max();
        let on_chain = |id: u64| walked.binary_search_by_key(&id, |e| e.1).is_ok();
        // The change newer than the chain this seat's record carries, when
        // allowed (see `Live`): its audit record may be there already.
        let mut newer: Option<&Audit> = None;
        // Whether the seat's record was compared with its last entry.
        let mut checked = keys.record.is_some();
        let entry: SeatEntry;
        match &keys.record {
            None => {
                if let Some((at, id)) = last {
                    let sk = key(records::SEAT, seat.get());
                    // (A seat record is written with every change, moves included.)
                    return Ok(Some(BadEntry::new(
                        id,
                        Some(seat),
                        Some(at),
                        &sk,
                        "the seat record is missing: the seat shows as free since its purchase, but its audit entries on the chain say it changed after that".into(),
                    )));
                }
            }
            Some((k, v)) => {
                entry = match decode(k, v) {
                    Ok(e) => e,
                    Err(e) => {
                        let (at, id) = last.unzip();
                        return Ok(Some(BadEntry::new(
                            id.unwrap_or(0),
                            Some(seat),
                            at,
                            k,
                            format!("seat record unreadable: {e}"),
                        )));
                    }
                };
                let a = &entry.last_audit;
                let (at, id) = (a.created_at, a.id.get());
                let bad = |reason: String| Ok(Some(BadEntry::new(id, Some(seat), Some(at), k, reason)));
                if entry.tenant != self.tenant && ours(id) {
                    return bad(format!(
                        "the seat record is not this seat's: it names tenant {} (and {}) as its last change's, but that change is tenant {}'s",
                        entry.seat.tenant_id, entry.tenant, self.tenant
                    ));
                }
                if entry.tenant != self.tenant {
                    // The seat's last change is another tenant's (it moved
                    // on): its record is checked with that tenant's chain.
                    return self.audits_of(keys, &on_chain, &ours, None);
                }
                // Its owner after the change: this tenant, or the one a
                // move (this change) took it to.
                let owner = moves.iter().find(|m| m.out == id).map_or(self.tenant, |m| m.to);
                if entry.seat.tenant_id != owner || a.seat_id != seat {
                    return bad(format!(
                        "the seat record is not this seat's: it names tenant {} (and {}) and its last audit entry is seat {}'s, but seat {seat} is tenant {}'s",
                        entry.seat.tenant_id, entry.tenant, a.seat_id, owner
                    ));
                }
                let left = left_by(a, owner, &entry.seat);
                if entry.seat != left {
                    return bad(format!(
                        "the seat record shows {} but its last audit entry {id} left the seat {}",
                        shown(&entry.seat),
                        shown(&left)
                    ));
                }
                if on_chain(id) {
                    if let Some((later_at, later)) = last.filter(|&(_, l)| l != id) {
                        return Ok(Some(BadEntry::new(
                            later,
                            Some(seat),
                            Some(later_at),
                            k,
                            format!("the seat record shows the state after audit entry {id}, but this later entry on the chain changed it"),
                        )));
                    }
                    // The copy the record carries (what a start restores
                    // from) is the chained one.
                    let chained = keys.audits.iter().find(|e| e.2 == id).map(|e| &e.1);
                    if chained.is_none_or(|v| v.as_ref() != encode(a).as_slice()) {
                        return bad(
                            "the seat record's copy of its last audit entry differs from the one on the chain".into(),
                        );
                    }
                } else if self.chain.purged(at, id) {
                    if let Some((later_at, later)) = last {
                        return Ok(Some(BadEntry::new(
                            later,
                            Some(seat),
                            Some(later_at),
                            k,
                            format!("the seat record shows the state after the purged audit entry {id}, but this later entry on the chain changed it"),
                        )));
                    }
                } else if self.in_flight(at, id) {
                    // Its audit record and trail key may not be written yet.
                    checked = false;
                } else if self.live == Live::No
                    && self.chain.newer(at, id)
                    && !self.newer_seen
                    && entry.hash == records::chain(&self.chain.hash, self.tenant, a)
                {
                    self.newer_seen = true;
                    newer = Some(a);
                } else {
                    return bad(format!(
                        "the seat record's last audit entry {id} is not on the tenant's chain"
                    ));
                }
            }
        }
        if let Some(bad) = self.audits_of(keys, &on_chain, &ours, newer)? {
            return Ok(Some(bad));
        }
        self.seats_checked += u64::from(checked);
        Ok(None)
    }

    /// Each of a seat's audit records that is this tenant's is on its chain
    /// (or purged, or the newer change allowed, or in flight).
    fn audits_of(
        &self,
        keys: &SeatKeys,
        on_chain: &dyn Fn(u64) -> bool,
        ours: &dyn Fn(u64) -> bool,
        newer: Option<&Audit>,
    ) -> Result<Option<BadEntry>, sled::Error> {
        let seat = keys.seat;
        for (k, v, id) in &keys.audits {
            if on_chain(*id) || !ours(*id) {
                continue;
            }
            // The newer change's own record, written before its trail key.
            if newer.is_some_and(|a| a.id.get() == *id && v.as_ref() == encode(a).as_slice()) {
                continue;
            }
            let audit: Audit = match decode(k, v) {
                Ok(a) => a,
                Err(e) => {
                    return Ok(Some(BadEntry::new(
                        *id,
                        Some(seat),
                        None,
                        k,
                        format!("audit record unreadable (and not on the tenant's chain): {e}"),
                    )))
                }
            };
            let (at, pos_id) = (audit.created_at, *id);
            // Purged, its key not yet removed: no reader shows it.
            if self.chain.purged(at, pos_id) {
                continue;
            }
            if self.in_flight(at, pos_id) && self.committed(seat, at, pos_id)? {
                continue;
            }
            return Ok(Some(BadEntry::new(
                *id,
                Some(seat),
                Some(at),
                k,
                "this audit record is not on the tenant's chain (no trail entry links it), yet the seat's history shows it".into(),
            )));
        }
        Ok(None)
    }

    /// Whether a change newer than the walk may be one the running service
    /// is writing (see `Live::Yes`).
    fn in_flight(&self, at: Timestamp, id: u64) -> bool {
        if self.live == Live::No || !self.chain.newer(at, id) {
            return false;
        }
        let now = Timestamp::now();
        let latest = self.chain.end.map_or(now, |(end, _)| end.max(now));
        at.micros() <= latest.micros().saturating_add(IN_FLIGHT_SLACK)
    }

    /// Whether the seat's commit point, read now, is the change at trail
    /// position (at, id) or a later one: it is written before the change's
    /// audit record, so an audit record in flight always has one.
    fn committed(&self, seat: SeatId, at: Timestamp, id: u64) -> Result<bool, sled::Error> {
        let k = key(records::SEAT, seat.get());
        Ok(self
            .db
            .get(k)?
            .and_then(|v| decode::<SeatEntry>(&k, &v).ok())
            .is_some_and(|e| (e.last_audit.created_at, e.last_audit.id.get()) >= (at, id)))
    }
}

/// The first audit key of `seat` (the end of the previous seat's).
fn audit_bound(seat: u64) -> [u8; 17] {
    let mut k = [records::AUDIT; 17];
    k[1..9].copy_from_slice(&seat.to_be_bytes());
    k[9..].copy_from_slice(&[0; 8]);
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AuditId, LearnerId, UserId};
    use crate::store::records::SeatEntryRef;
    use crate::store::Store;

    fn id<T: Id>(n: u64) -> T {
        T::new(n).unwrap_or_else(|| unreachable!())
    }

    /// A tenant's chain as its actor writes it: `head` is its latest link.
    struct Tenant {
        id: TenantId,
        head: Hash,
    }

    impl Tenant {
        fn purchase(&mut self, store: &Store, first_seat: u64, count: u64, first_audit: u64, at: i64) {
            let block = BlockRecord {
                tenant_id: self.id,
                first_seat: id(first_seat),
                count,
                first_audit: id(first_audit),
                created_at: Timestamp::from_micros(at),
                changed_by: UserId::parse("u").unwrap_or_else(|_| unreachable!()),
            };
            self.head = purchase_link(&self.head, self.id, &block);
            store
                .put_block(&block, None, self.head, None, None)
                .unwrap_or_else(|e| panic!("{e}"));
        }

        /// Allocates `seat` (free) to `learner`; with `whole` false only the
        /// commit point is written, as if a crash (or the write still in
        /// flight) kept its audit record and trail key from following it.
        fn allocate(&mut self, store: &Store, seat: u64, audit: u64, at: i64, learner: &str, whole: bool) {
            let audit = Audit {
                id: id::<AuditId>(audit),
                seat_id: id(seat),
                previous_state: Some(SeatState::Free),
                new_state: SeatState::Assigned,
                previous_learner_id: None,
                new_learner_id: LearnerId::parse(learner).ok(),
                changed_by: UserId::parse("u").unwrap_or_else(|_| unreachable!()),
                reason: "r".into(),
                created_at: Timestamp::from_micros(at),
            };
            let nothing = left_by(
                &audit,
                self.id,
                &SeatRecord {
                    tenant_id: self.id,
                    state: SeatState::Free,
                    learner_id: None,
                    reserved_at: None,
                    assigned_at: None,
                    updated_at: Timestamp::from_micros(at),
                    reserved_until: None,
                    expires_at: None,
                },
            );
            let record = nothing;
            self.head = records::chain(&self.head, self.id, &audit);
            if whole {
                store
                    .put_seat_change(self.id, id(seat), &record, &audit, self.head)
                    .unwrap_or_else(|e| panic!("{e}"));
            } else {
                let entry = SeatEntryRef {
                    seat: &record,
                    last_audit: &audit,
                    tenant: self.id,
                    hash: self.head,
                    alert: None,
                };
                store
                    .db
                    .insert(key(records::SEAT, seat), encode(&entry))
                    .unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }

    fn opened() -> (tempfile::TempDir, std::sync::Arc<Store>) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (store, _) = Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        (dir, store)
    }

    #[test]
    fn a_head_that_is_not_on_the_chain_means_entries_are_missing_at_its_end() {
        let (_dir, store) = opened();
        let mut t = Tenant {
            id: id(1),
            head: [0; 32],
        };
        t.purchase(&store, 7, 3, 1, 1);
        let mut heads = vec![t.head];
        for n in 0..3u64 {
            t.allocate(&store, 7 + n, 4 + n, 2 + n as i64, &format!("l{n}"), true);
            heads.push(t.head);
        }
        let walked = |h| walk(&store.db, t.id, h).unwrap_or_else(|e| panic!("{e}"));
        assert!(walked(None).intact);
        assert!(walked(Some(heads[1])).intact, "an older head is on the chain");
        let whole = walked(Some(t.head));
        assert_eq!((whole.entries, whole.seats_checked, whole.intact), (6, 3, true));
        let cut = walked(Some([9; 32]));
        assert!(!cut.intact);
        assert_eq!(cut.first_bad_entry.map(|b| b.audit_id), Some(6));
    }

    #[test]
    fn a_stopped_store_may_hold_one_change_newer_than_its_chain_if_it_extends_the_chain() {
        let (_dir, store) = opened();
        let mut t = Tenant {
            id: id(1),
            head: [0; 32],
        };
        t.purchase(&store, 10, 3, 1, 1);
        t.allocate(&store, 10, 4, 2, "a", true);
        // The last change before a crash: its commit point only (the next
        // start restores its audit record and trail key from it).
        t.allocate(&store, 11, 5, 3, "b", false);
        let report = walk(&store.db, t.id, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (report.entries, report.seats_checked, report.intact),
            (4, 2, true),
            "{report:?}"
        );
        // Its audit record may have followed it already.
        let (k, v) = store
            .db
            .get(key(records::SEAT, 11))
            .ok()
            .flatten()
            .and_then(|v| decode::<SeatEntry>(b"S", &v).ok())
            .map(|e| (records::audit_key(id(11), e.last_audit.id), encode(&e.last_audit)))
            .unwrap_or_else(|| panic!("no seat 11"));
        store.db.insert(k, v).unwrap_or_else(|e| panic!("{e}"));
        assert!(walk(&store.db, t.id, None).unwrap_or_else(|e| panic!("{e}")).intact);

        // A second one cannot be: only a tenant's last change can lose its
        // trail key, and its link would not follow the chain walked.
        t.allocate(&store, 12, 6, 4, "c", false);
        let report = walk(&store.db, t.id, None).unwrap_or_else(|e| panic!("{e}"));
        assert!(!report.intact);
        let bad = report.first_bad_entry.unwrap_or_else(|| unreachable!());
        assert_eq!((bad.audit_id, bad.seat_id), (6, Some(12)));
        assert!(bad.reason.contains("not on the tenant's chain"), "{}", bad.reason);
        assert_eq!(bad.record, Some(show_key(&key(records::SEAT, 12))));

        // A running service's walk leaves changes newer than it alone: they
        // are its writes in flight.
        let live = walk(&store.db, t.id, Some(t.head)).unwrap_or_else(|e| panic!("{e}"));
        assert!(!live.intact, "the head the actor holds is not on the walked chain");
        let before = store
            .db
            .scan_prefix(records::trail_prefix(t.id))
            .next_back()
            .and_then(Result::ok)
            .and_then(|(k, v)| decode::<TrailEntry>(&k, &v).ok())
            .map(|e| *e.hash())
            .unwrap_or_else(|| unreachable!());
        let live = walk(&store.db, t.id, Some(before)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (live.entries, live.seats_checked, live.intact),
            (4, 1, true),
            "{live:?}"
        );
    }

    #[test]
    fn a_newer_change_whose_link_does_not_follow_the_chain_is_named() {
        let (_dir, store) = opened();
        let mut t = Tenant {
            id: id(1),
            head: [0; 32],
        };
        t.purchase(&store, 10, 2, 1, 1);
        t.head = [7; 32]; // not the chain's link
        t.allocate(&store, 10, 3, 2, "a", false);
        let report = walk(&store.db, t.id, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            report.first_bad_entry.map(|b| (b.audit_id, b.seat_id)),
            Some((3, Some(10)))
        );
        // A purchase block no trail entry links, likewise (one older than
        // the chain's end: no crash leaves that).
        let mut u = Tenant {
            id: id(2),
            head: [0; 32],
        };
        u.purchase(&store, 20, 2, 10, 5);
        let forged = BlockRecord {
            tenant_id: u.id,
            first_seat: id(30),
            count: 2,
            first_audit: id(20),
            created_at: Timestamp::from_micros(3),
            changed_by: UserId::parse("u").unwrap_or_else(|_| unreachable!()),
        };
        store
            .put_block(&forged, None, [0; 32], None, None)
            .unwrap_or_else(|e| panic!("{e}"));
        store
            .db
            .remove(records::trail_key(u.id, forged.created_at, forged.first_audit))
            .unwrap_or_else(|e| panic!("{e}"));
        let report = walk(&store.db, u.id, None).unwrap_or_else(|e| panic!("{e}"));
        let bad = report.first_bad_entry.unwrap_or_else(|| unreachable!());
        assert_eq!((bad.audit_id, bad.seat_id), (20, Some(30)));
        assert!(bad.reason.contains("purchase of 2 seats"), "{}", bad.reason);
    }
}
