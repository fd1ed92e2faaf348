//! The change feed's outbox: every committed change, kept until JetStream
//! has acknowledged it (`replication::feed` publishes and removes them).
//!
//! An entry (`OUTBOX` key, numbered from its own id space so that numbers
//! are never reused) is written by the store method that writes the change,
//! just BEFORE the change's commit point, and names a `Witness`: a key only
//! that change writes. sled recovers a prefix of its log, so after kill -9 a
//! change that survived has its entry; an entry whose change a crash took
//! back (its witness is missing) is removed at start, before anything is
//! published. Tenants and thresholds write no key of their own: their
//! entries carry the record itself, and the latest entry of such a record is
//! the change only if the record still equals it (an earlier one is, if a
//! later one of the same record is: the later was written after the
//! earlier's commit point). An entry exists exactly when its change does.
//!
//! The publisher takes entries only below `ready_below` (every entry
//! numbered lower is finished: its change written, or removed when the
//! write failed) and once they are flushed, so it never publishes a change
//! that could still be taken back. Sync mode's acknowledgment waits for the
//! `replicated` watermark: the highest group-commit sequence whose changes
//! are all on the stream.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sled::Db;

use crate::domain::{Id, SeatId, Tenant, TenantId, Threshold};

use super::answers::witnessed;
use super::records::{
    self, decode, decode_marked, decode_tenant, encode, encode_marked, key, AnswerTail, BlockEntry, DecodeError,
    RoleEntry, SeatEntry, SeatExt, Witness, BULK_PART_BYTES,
};
use super::{unavailable, IdSpace, ScanError, Seq, Store, StoreError};

/// One committed change as the feed carries it: the records the change
/// wrote, exactly (a standby writes the same records through the same
/// store methods). A bulk change too large for one entry is split into
/// `parts`; a standby applies it once it has them all.
///
/// The fields that came with reservations, license terms and transfers
/// (a seat record's `reserved_until` and `expires_at`, a block's
/// `expires_at`, an arrival's `from`) are not in this type's encoding:
/// they follow it as a `ChangeExt` after the records' extension mark
/// (`encode_change`), written only when one is set, so that entries and
/// messages without them are what earlier builds wrote, and read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Change {
    /// Seat changes of one tenant: one (an allocation, a reclaim) or a bulk
    /// (part `part` of `parts`, in order).
    Seats {
        part: u32,
        parts: u32,
        writes: Vec<(SeatId, SeatEntry)>,
        /// The arriving side of a transfer: the tenant the seats came
        /// from (whose change, the transfer's commit point, came first).
        #[serde(skip)]
        from: Option<TenantId>,
    },
    /// A purchase: the block (its seats and audit entries derive from it).
    Block(BlockEntry),
    /// A role's new version and the event that made it; `roster`: granted
    /// by a roster import.
    Role {
        entry: RoleEntry,
        roster: bool,
    },
    /// A tenant created or changed (`sourced_id`: the roster org it is).
    Tenant {
        tenant: Tenant,
        sourced_id: Option<String>,
    },
    Threshold(Threshold),
}

impl Change {
    /// What kind of change this is, as the feed's messages name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Change::Seats { parts: 1, writes, .. } if writes.len() == 1 => "seat",
            Change::Seats { .. } => "seats",
            Change::Block(_) => "purchase",
            Change::Role { .. } => "role",
            Change::Tenant { .. } => "tenant",
            Change::Threshold(_) => "threshold",
        }
    }

    /// The fields this type's encoding leaves out (see `Change`).
    fn ext(&self) -> ChangeExt {
        match self {
            Change::Seats { writes, from, .. } => {
                let seats: Vec<SeatExt> = writes
                    .iter()
                    .map(|(_, e)| SeatExt {
                        reserved_until: e.seat.reserved_until,
                        expires_at: e.seat.expires_at,
                    })
                    .collect();
                let any = seats.iter().any(|e| *e != SeatExt::default());
                ChangeExt {
                    seats: if any { seats } else { Vec::new() },
                    expires_at: None,
                    from: *from,
                }
            }
            Change::Block(b) => ChangeExt {
                expires_at: b.expires_at,
                ..ChangeExt::default()
            },
            _ => ChangeExt::default(),
        }
    }

    /// Puts back what `ext` took out.
    fn with_ext(mut self, ext: ChangeExt) -> Change {
        match &mut self {
            Change::Seats { writes, from, .. } => {
                for ((_, e), x) in writes.iter_mut().zip(ext.seats) {
                    e.seat.reserved_until = x.reserved_until;
                    e.seat.expires_at = x.expires_at;
                }
                *from = ext.from;
            }
            Change::Block(b) => b.expires_at = ext.expires_at,
            _ => {}
        }
        self
    }

    /// The record key an entry without a witness stands for (see the module).
    fn record_key(&self) -> Option<[u8; 9]> {
        match self {
            Change::Tenant { tenant, .. } => Some(key(records::TENANT, tenant.id.get())),
            Change::Threshold(t) => Some(key(records::THRESHOLD, t.tenant_id.get())),
            _ => None,
        }
    }
}

/// A change's fields that its type's encoding leaves out (see `Change`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct ChangeExt {
    /// Seats: each write's record's later fields, in order (empty when
    /// none is set).
    seats: Vec<SeatExt>,
    /// A purchase: its seats' term.
    expires_at: Option<crate::domain::Timestamp>,
    /// Seats: the tenant an arrival came from.
    from: Option<TenantId>,
}

/// A change as the feed's messages carry it (`record`): its encoding, then
/// its `ChangeExt` when it has one.
pub fn encode_change(change: &Change) -> Vec<u8> {
    encode_marked(change, &change.ext())
}

/// `encode_change`'s reverse; bytes an earlier build wrote (no extension)
/// decode as they did.
pub fn decode_change(key: &[u8], bytes: &[u8]) -> Result<Change, DecodeError> {
    let (change, ext, _): (Change, ChangeExt, Option<AnswerTail>) = decode_marked(key, bytes)?;
    Ok(change.with_ext(ext))
}

/// An outbox entry as stored: the entry, then its change's `ChangeExt`
/// when it has one.
fn encode_entry(entry: &OutboxEntry) -> Vec<u8> {
    encode_marked(entry, &entry.change.ext())
}

fn decode_entry(key: &[u8], bytes: &[u8]) -> Result<OutboxEntry, DecodeError> {
    let (mut entry, ext, _): (OutboxEntry, ChangeExt, Option<AnswerTail>) = decode_marked(key, bytes)?;
    entry.change = entry.change.with_ext(ext);
    Ok(entry)
}

/// What an `OUTBOX` key holds (`encode_entry`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub tenant: TenantId,
    /// The leadership epoch the change was committed in (0 without leadership).
    pub epoch: u64,
    /// The key only this change writes (None: a tenant or threshold, see
    /// the module).
    pub witness: Option<Witness>,
    pub change: Change,
}

/// An entry as the publisher reads it.
#[derive(Debug, Clone)]
pub struct Pending {
    /// Its number in the outbox (increasing in commit order, per tenant).
    pub seq: u64,
    pub entry: OutboxEntry,
    /// The change alone, encoded as a record (what a standby decodes).
    pub change_bytes: Vec<u8>,
}

/// How this store takes part in replication (`Store::set_role`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// No feed: nothing is written to the outbox (the default).
    Off,
    /// Changes made here go to the outbox. `sync`: an acknowledgment waits
    /// until they are on the stream.
    Primary { sync: bool },
    /// Changes come from the stream (applied through the same methods),
    /// and none go to the outbox.
    Standby,
}

#[derive(Default)]
struct Book {
    /// Entries being written: number -> the group-commit sequence before
    /// their write began (theirs will be higher).
    in_flight: BTreeMap<u64, Seq>,
    /// Entries written and not yet on the stream: number -> the
    /// group-commit sequence of their change (0: found at start).
    unacked: BTreeMap<u64, Seq>,
}

pub(super) struct Outbox {
    /// Whether changes write entries (`Role::Primary`).
    on: AtomicBool,
    /// Whether changes come from the stream (`Role::Standby`): nothing is
    /// written here but what the stream carries (see `Store::follows`).
    standby: AtomicBool,
    /// The epoch stamped on new entries (`Store::set_epoch`).
    epoch: AtomicU64,
    /// Whether acknowledgments wait for the stream (`Role::Primary { sync: true }`).
    sync: AtomicBool,
    /// Why nothing may be acknowledged now (a primary whose lease or NATS
    /// is gone), if so.
    fence: Mutex<Option<String>>,
    fenced: AtomicBool,
    /// A primary under a lease: past this (nanoseconds after `born`) it
    /// acknowledges nothing (`u64::MAX`: no lease).
    lease_until: AtomicU64,
    born: std::time::Instant,
    /// The bookkeeping of entries in flight and unpublished. A std mutex:
    /// held for map updates only, never across an await.
    book: Mutex<Book>,
    /// Wakes the publisher when an entry is finished.
    wake: tokio::sync::Notify,
    /// Entries not yet published.
    depth: AtomicU64,
    /// The highest group-commit sequence all of whose changes are on the stream.
    replicated: tokio::sync::watch::Sender<Seq>,
    /// How long sync mode waits for the stream before answering 503.
    sync_timeout: Mutex<Duration>,
}

impl Outbox {
    pub(super) fn new(depth: u64, found: impl Iterator<Item = u64>) -> Outbox {
        let unacked = found.map(|n| (n, 0)).collect();
        Outbox {
            on: AtomicBool::new(false),
            standby: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            sync: AtomicBool::new(false),
            fence: Mutex::new(None),
            fenced: AtomicBool::new(false),
            lease_until: AtomicU64::new(u64::MAX),
            born: std::time::Instant::now(),
            book: Mutex::new(Book {
                in_flight: BTreeMap::new(),
                unacked,
            }),
            wake: tokio::sync::Notify::new(),
            depth: AtomicU64::new(depth),
            replicated: tokio::sync::watch::channel(0).0,
            sync_timeout: Mutex::new(Duration::from_secs(5)),
        }
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The outbox entries of one change, numbered, while it is written.
pub(super) struct Planned {
    first: u64,
    count: u64,
}

impl Store {
    /// Sets how this store takes part in replication.
    pub fn set_role(&self, role: Role, sync_timeout: Duration) {
        let standby = role == Role::Standby;
        let (on, sync) = match role {
            Role::Off | Role::Standby => (false, false),
            Role::Primary { sync } => (true, sync),
        };
        *self.outbox.sync_timeout.lock().unwrap_or_else(PoisonError::into_inner) = sync_timeout;
        self.outbox.sync.store(sync, Ordering::Release);
        self.outbox.on.store(on, Ordering::Release);
        self.outbox.standby.store(standby, Ordering::Release);
    }

    /// Whether this store follows the stream (a standby): then it makes no
    /// change of its own (a reservation's expiry, an arrival a crash cut
    /// short): the primary makes them, and they come with the stream.
    pub fn follows(&self) -> bool {
        self.outbox.standby.load(Ordering::Acquire)
    }

    /// A primary under a lease: from `until` on, no write is taken and
    /// none is acknowledged (`None`: no lease to keep).
    pub fn set_lease_until(&self, until: Option<std::time::Instant>) {
        let nanos = until.map_or(u64::MAX, |t| {
            u64::try_from(t.saturating_duration_since(self.outbox.born).as_nanos()).unwrap_or(u64::MAX - 1)
        });
        self.outbox.lease_until.store(nanos, Ordering::Release);
    }

    fn lease_run_out(&self) -> bool {
        let until = self.outbox.lease_until.load(Ordering::Acquire);
        until != u64::MAX && self.outbox.born.elapsed().as_nanos() >= u128::from(until)
    }

    /// Whether a write made here may be acknowledged now: without the feed
    /// always; on a primary while it is neither fenced nor past its lease;
    /// never once this instance is a standby (a change it made as primary
    /// and answers only now may be one the stream refused after a newer
    /// primary's marker).
    pub fn may_acknowledge(&self) -> Result<(), StoreError> {
        if self.follows() {
            return Err(StoreError::Replication("this instance is no longer the primary".into()));
        }
        self.fence_check()
    }

    /// The purchase block that holds `seat` (blocks are never removed).
    pub fn block_of(&self, seat: SeatId) -> Result<Option<crate::domain::BlockRecord>, StoreError> {
        let found = self
            .db
            .get_lt(key(records::BLOCK, seat.get() + 1))
            .map_err(unavailable)?;
        let Some((k, v)) = found.filter(|(k, _)| k.first() == Some(&records::BLOCK)) else {
            return Ok(None);
        };
        let block: crate::domain::BlockRecord = decode(&k, &v).map_err(|e| StoreError::Internal(e.into()))?;
        Ok(Some(block).filter(|b| b.first_seat.get() + b.count > seat.get()))
    }

    /// The leadership epoch stamped on the changes committed from now on.
    pub fn set_epoch(&self, epoch: u64) {
        self.outbox.epoch.store(epoch, Ordering::Release);
    }

    /// Stops (`Some(why)`) or resumes (`None`) acknowledging: a primary
    /// that lost its lease or its NATS connection answers
    /// `StoreError::Replication` instead of revealing a change.
    pub fn set_fence(&self, why: Option<String>) {
        let mut fence = self.outbox.fence.lock().unwrap_or_else(PoisonError::into_inner);
        self.outbox.fenced.store(why.is_some(), Ordering::Release);
        *fence = why;
    }

    /// Whether writes are refused now (a fenced primary, see `set_fence`).
    pub fn fenced(&self) -> bool {
        self.fence_check().is_err()
    }

    /// Refused before a write when the service may not acknowledge it.
    pub(super) fn fence_check(&self) -> Result<(), StoreError> {
        if !self.outbox.on.load(Ordering::Acquire) {
            return Ok(());
        }
        if self.lease_run_out() {
            return Err(StoreError::Replication("this primary's lease is running out".into()));
        }
        if !self.outbox.fenced.load(Ordering::Acquire) {
            return Ok(());
        }
        let why = self.outbox.fence.lock().unwrap_or_else(PoisonError::into_inner).clone();
        match why {
            Some(why) => Err(StoreError::Replication(why)),
            None => Ok(()),
        }
    }

    /// After the local flush: in sync mode, waits until the write numbered
    /// `seq` is on the stream; a fenced primary acknowledges nothing new.
    pub(super) async fn acknowledged(&self, seq: Seq) -> Result<(), StoreError> {
        let outbox = &self.outbox;
        if !outbox.on.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut replicated = outbox.replicated.subscribe();
        if *replicated.borrow() < seq {
            // Nothing of the feed's may be in the way (a write with no
            // entry, or a read): the watermark moves on at once.
            self.advance_replicated(&outbox.book());
        }
        if *replicated.borrow_and_update() >= seq {
            return Ok(());
        }
        self.fence_check()?;
        if !outbox.sync.load(Ordering::Acquire) {
            return Ok(());
        }
        let timeout = *outbox.sync_timeout.lock().unwrap_or_else(PoisonError::into_inner);
        let waited = tokio::time::timeout(timeout, replicated.wait_for(|r| *r >= seq))
            .await
            .is_ok_and(|r| r.is_ok());
        match waited {
            true => self.fence_check(),
            false => Err(StoreError::Replication(
                "the change feed (NATS JetStream) did not acknowledge the change in time".into(),
            )),
        }
    }

    /// Writes the outbox entries of a change (when the feed is on), before
    /// its commit point. `finish_outbox` must follow, whatever happens.
    pub(super) fn outbox_before(
        &self,
        tenant: TenantId,
        witness: Option<Witness>,
        changes: impl FnOnce() -> Vec<Change>,
    ) -> Result<Option<Planned>, StoreError> {
        if !self.outbox.on.load(Ordering::Acquire) {
            return Ok(None);
        }
        let changes = changes();
        let count = changes.len() as u64;
        let first = {
            let mut book = self.outbox.book();
            let first = self.ids(IdSpace::Outbox, count)?;
            let before = self.commit.latest();
            for n in first..first + count {
                book.in_flight.insert(n, before);
            }
            first
        };
        let planned = Planned { first, count };
        for (n, change) in changes.into_iter().enumerate() {
            let entry = OutboxEntry {
                tenant,
                epoch: self.outbox.epoch.load(Ordering::Acquire),
                witness,
                change,
            };
            if let Err(e) = self
                .db
                .insert(key(records::OUTBOX, first + n as u64), encode_entry(&entry))
            {
                self.finish_outbox(Some(planned), None);
                return Err(unavailable(e));
            }
        }
        Ok(Some(planned))
    }

    /// After a change's write: `Some(seq)` if it was written (its entries
    /// now wait for the publisher), `None` if it failed (its entries are
    /// removed; if even that fails the store stops, and start removes them).
    pub(super) fn finish_outbox(&self, planned: Option<Planned>, written: Option<Seq>) {
        let Some(Planned { first, count }) = planned else {
            return;
        };
        if written.is_none() {
            let removed = (first..first + count).try_for_each(|n| self.db.remove(key(records::OUTBOX, n)).map(drop));
            if let Err(e) = removed {
                tracing::error!(error = %e, "an outbox entry of a failed change could not be removed; the store stops");
                self.commit.fail();
            }
        }
        {
            let mut book = self.outbox.book();
            for n in first..first + count {
                book.in_flight.remove(&n);
                if let Some(seq) = written {
                    book.unacked.insert(n, seq);
                }
            }
            if written.is_some() {
                self.outbox.depth.fetch_add(count, Ordering::Relaxed);
            }
        }
        self.outbox.wake.notify_one();
    }

    /// Every outbox entry numbered below this is finished (written, or
    /// removed after a failed write).
    pub fn outbox_ready_below(&self) -> u64 {
        let book = self.outbox.book();
        match book.in_flight.keys().next() {
            Some(n) => *n,
            // Not "everything": a change that begins after this call takes
            // the next number, under this lock, and must not be read (nor
            // published) before it is finished.
            None => self.peek_id(IdSpace::Outbox),
        }
    }

    /// Resolves when an entry may have been finished since the last call.
    pub async fn outbox_changed(&self) {
        self.outbox.wake.notified().await
    }

    /// Entries not yet published.
    pub fn outbox_depth(&self) -> u64 {
        self.outbox.depth.load(Ordering::Relaxed)
    }

    /// Up to `max` finished entries numbered `from..below`, in order (the
    /// caller waits for their flush first: see `outbox_ready_below`).
    pub fn outbox_read(&self, from: u64, below: u64, max: usize) -> Result<Vec<Pending>, StoreError> {
        let mut out = Vec::new();
        for item in self
            .db
            .range(key(records::OUTBOX, from)..key(records::OUTBOX, below))
            .take(max)
        {
            let (k, v) = item.map_err(unavailable)?;
            let seq = records::key_id(&k).ok_or_else(|| StoreError::Internal(anyhow::anyhow!("bad outbox key")))?;
            let entry = decode_entry(&k, &v).map_err(|e| StoreError::Internal(e.into()))?;
            let change_bytes = encode_change(&entry.change);
            out.push(Pending {
                seq,
                entry,
                change_bytes,
            });
        }
        Ok(out)
    }

    /// Entries JetStream has acknowledged: removed, and the replicated
    /// watermark moved past the changes that are now all on the stream.
    pub fn outbox_published(&self, seqs: &[u64]) -> Result<(), StoreError> {
        for n in seqs {
            self.db.remove(key(records::OUTBOX, *n)).map_err(unavailable)?;
        }
        // Flushed with the next batch: a crash before that publishes these
        // again, and the stream drops them (see `replication::feed`).
        self.commit.wrote();
        let mut book = self.outbox.book();
        for n in seqs {
            if book.unacked.remove(n).is_some() {
                self.outbox.depth.fetch_sub(1, Ordering::Relaxed);
            }
        }
        self.advance_replicated(&book);
        Ok(())
    }

    /// Recomputes the replicated watermark (the book is held).
    fn advance_replicated(&self, book: &Book) {
        let unacked = book.unacked.values().min().copied();
        let in_flight = book.in_flight.values().min().map(|before| before + 1);
        let upto = match unacked.into_iter().chain(in_flight).min() {
            Some(lowest) => lowest.saturating_sub(1),
            None => self.commit.latest(),
        };
        self.outbox.replicated.send_if_modified(|r| {
            let moved = upto > *r;
            *r = (*r).max(upto);
            moved
        });
    }

    /// Moves the replicated watermark when nothing waits for the stream
    /// (the publisher calls this when the outbox is empty).
    pub fn outbox_idle(&self) {
        let book = self.outbox.book();
        self.advance_replicated(&book);
    }

    /// Whether a role event is already stored (a standby reading the
    /// stream again skips it).
    pub fn role_event_there(&self, event: &crate::domain::RoleEvent) -> Result<bool, StoreError> {
        self.db
            .contains_key(records::role_event_key(event.tenant_id, event.id))
            .map_err(unavailable)
    }

    /// Whether a seat or purchase change is already stored.
    pub fn change_there(&self, change: &Change) -> Result<bool, StoreError> {
        let witness = match change {
            Change::Block(b) => Witness::Block {
                first_seat: b.block.first_seat,
            },
            Change::Seats { writes, .. } => match writes.last() {
                Some((seat, e)) => Witness::Audit {
                    seat: *seat,
                    audit: e.last_audit.id,
                    at: e.last_audit.created_at,
                },
                None => return Ok(true),
            },
            _ => return Ok(false),
        };
        witnessed(&self.db, witness)
    }

    /// The id spaces at least up to `upto` (a standby, after applying a
    /// change numbered by its primary, never hands that number out again).
    pub fn ids_seen(&self, space: IdSpace, upto: u64) -> Result<(), StoreError> {
        let next = self.peek_id(space);
        if upto >= next {
            self.ids(space, upto + 1 - next)?;
        }
        Ok(())
    }
}

/// At start, once followers are restored: removes the entries whose change
/// a crash took back. Returns how many were removed and the numbers left.
pub(super) fn check(db: &Db) -> Result<(usize, Vec<u64>), ScanError> {
    let mut kept = Vec::new();
    let mut removed = 0;
    // Records a later entry confirmed (see the module).
    let mut confirmed: HashSet<[u8; 9]> = HashSet::new();
    for item in db.scan_prefix([records::OUTBOX]).rev() {
        let (k, v) = item?;
        let entry = decode_entry(&k, &v).map_err(ScanError::Decode)?;
        let seq = records::key_id(&k).ok_or_else(|| super::corrupt(&k, "bad key"))?;
        let stands = match (entry.witness, entry.change.record_key()) {
            (Some(w), _) => witnessed(db, w).map_err(|e| ScanError::Sled(sled::Error::Unsupported(e.to_string())))?,
            (None, Some(rk)) if confirmed.contains(&rk) => true,
            (None, Some(rk)) => {
                let stands = record_is(db, &rk, &entry.change)?;
                if stands {
                    confirmed.insert(rk);
                }
                stands
            }
            (None, None) => false,
        };
        if stands {
            kept.push(seq);
        } else {
            db.remove(&k)?;
            removed += 1;
        }
    }
    kept.reverse();
    Ok((removed, kept))
}

/// Whether the stored record under `rk` is the one `change` wrote.
fn record_is(db: &Db, rk: &[u8; 9], change: &Change) -> Result<bool, ScanError> {
    let Some(v) = db.get(rk)? else { return Ok(false) };
    Ok(match change {
        Change::Tenant { tenant, sourced_id } => {
            let stored = decode_tenant(rk, &v).map_err(ScanError::Decode)?;
            stored == *tenant && stored.sourced_id == *sourced_id
        }
        Change::Threshold(t) => decode::<Threshold>(rk, &v).map_err(ScanError::Decode)? == *t,
        _ => false,
    })
}

/// The seat changes of one write, in entries of about `BULK_PART_BYTES`
/// (`from`: the tenant an arrival came from).
pub(super) fn seat_parts(writes: Vec<(SeatId, SeatEntry)>, from: Option<TenantId>) -> Vec<Change> {
    let mut parts: Vec<Vec<(SeatId, SeatEntry)>> = vec![Vec::new()];
    let mut bytes = 0;
    for w in writes {
        let size = bincode::serialized_size(&w).unwrap_or(0) as usize;
        if bytes + size > BULK_PART_BYTES && parts.last().is_some_and(|p| !p.is_empty()) {
            parts.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        if let Some(last) = parts.last_mut() {
            last.push(w);
        }
    }
    let n = parts.len() as u32;
    parts
        .into_iter()
        .enumerate()
        .map(|(i, writes)| Change::Seats {
            part: i as u32,
            parts: n,
            writes,
            from,
        })
        .collect()
}

/// Where this store stands on the stream (`key(FEED, 0)`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedMark {
    /// Names this data dir on the feed (with the node id): a new data dir
    /// numbers its outbox from 1 again, and must not be taken for this one.
    pub store_id: u64,
    /// The stream sequence of the last message applied here (a standby).
    pub applied: u64,
    /// The highest leadership epoch in force that this store has seen.
    pub epoch: u64,
    /// Whether this store was the primary of `epoch`.
    pub primary: bool,
}

impl Store {
    /// This store's feed mark (made, with a new store id, on first use).
    pub fn feed_mark(&self) -> Result<FeedMark, StoreError> {
        let k = key(records::FEED, 0);
        if let Some(v) = self.db.get(k).map_err(unavailable)? {
            return decode(&k, &v).map_err(|e| StoreError::Internal(e.into()));
        }
        let mark = FeedMark {
            store_id: uuid::Uuid::new_v4().as_u64_pair().0,
            ..FeedMark::default()
        };
        self.set_feed_mark(&mark)?;
        Ok(mark)
    }

    /// Writes the feed mark (durable with the next flush).
    pub fn set_feed_mark(&self, mark: &FeedMark) -> Result<Seq, StoreError> {
        self.db
            .insert(key(records::FEED, 0), encode(mark))
            .map_err(unavailable)?;
        Ok(self.commit.wrote())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Alert, Audit, BlockRecord, Hash, SeatRecord, SeatState, Timestamp, UserId};

    fn id<I: Id>(n: u64) -> I {
        I::new(n).unwrap_or_else(|| unreachable!())
    }

    fn entry(tenant: u64, owner: u64, reserved_until: Option<i64>, expires_at: Option<i64>) -> SeatEntry {
        let at = Timestamp::from_micros(1_000);
        SeatEntry {
            seat: SeatRecord {
                tenant_id: id(owner),
                state: if reserved_until.is_some() {
                    SeatState::Reserved
                } else {
                    SeatState::Free
                },
                learner_id: None,
                reserved_at: reserved_until.map(|_| at),
                assigned_at: None,
                updated_at: at,
                reserved_until: reserved_until.map(Timestamp::from_micros),
                expires_at: expires_at.map(Timestamp::from_micros),
            },
            last_audit: Audit {
                id: id(9),
                seat_id: id(7),
                previous_state: Some(SeatState::Free),
                new_state: SeatState::Free,
                previous_learner_id: None,
                new_learner_id: None,
                changed_by: UserId::parse("dana").unwrap_or_else(|e| panic!("{e}")),
                reason: "Seat reserved".into(),
                created_at: at,
            },
            tenant: id(tenant),
            hash: [3; 32],
            alert: None,
        }
    }

    fn block(expires_at: Option<i64>) -> BlockEntry {
        BlockEntry {
            block: BlockRecord {
                tenant_id: id(2),
                first_seat: id(7),
                count: 5,
                first_audit: id(4),
                created_at: Timestamp::from_micros(500),
                changed_by: UserId::parse("dana").unwrap_or_else(|e| panic!("{e}")),
            },
            hash: [5; 32],
            alert: None,
            expires_at: expires_at.map(Timestamp::from_micros),
        }
    }

    /// `Change`'s first two variants as the builds before `ChangeExt` had
    /// them (no skipped fields): what their outbox entries and messages hold.
    #[derive(Serialize)]
    enum Before {
        Seats {
            part: u32,
            parts: u32,
            writes: Vec<(SeatId, SeatEntry)>,
        },
        Block(BeforeBlock),
    }

    #[derive(Serialize)]
    struct BeforeBlock {
        block: BlockRecord,
        hash: Hash,
        alert: Option<Alert>,
    }

    #[derive(Serialize)]
    struct BeforeEntry {
        tenant: TenantId,
        epoch: u64,
        witness: Option<Witness>,
        change: Before,
    }

    fn before(change: &Change) -> Before {
        match change {
            Change::Seats {
                part, parts, writes, ..
            } => Before::Seats {
                part: *part,
                parts: *parts,
                writes: writes.clone(),
            },
            Change::Block(b) => Before::Block(BeforeBlock {
                block: b.block.clone(),
                hash: b.hash,
                alert: b.alert.clone(),
            }),
            _ => unreachable!(),
        }
    }

    /// Without reservations, terms or transfers a change and its outbox
    /// entry are byte for byte what earlier builds wrote; what earlier
    /// builds wrote decodes; with them, every field comes back; and an
    /// earlier build reads a new message's change as it knew it.
    #[test]
    fn changes_keep_their_old_bytes_and_carry_the_lifecycle_fields_after_the_mark() {
        let plain = [
            Change::Seats {
                part: 0,
                parts: 1,
                writes: vec![(id(7), entry(2, 2, None, None)), (id(8), entry(2, 2, None, None))],
                from: None,
            },
            Change::Block(block(None)),
        ];
        for change in &plain {
            let old = encode(&before(change));
            assert_eq!(encode_change(change), old, "a change without new fields");
            assert_eq!(decode_change(b"feed", &old).ok().as_ref(), Some(change));
            let entry = OutboxEntry {
                tenant: id(2),
                epoch: 3,
                witness: None,
                change: change.clone(),
            };
            let old_entry = encode(&BeforeEntry {
                tenant: id(2),
                epoch: 3,
                witness: None,
                change: before(change),
            });
            assert_eq!(encode_entry(&entry), old_entry, "an outbox entry without new fields");
            assert_eq!(decode_entry(b"Q1", &old_entry).ok(), Some(entry));
        }

        let lifecycle = [
            // A reservation with its deadline, a renewed term.
            Change::Seats {
                part: 0,
                parts: 2,
                writes: vec![
                    (id(7), entry(2, 2, Some(9_000), None)),
                    (id(8), entry(2, 2, None, Some(50_000))),
                ],
                from: None,
            },
            // An arrival from tenant 4 (its seat keeps its term).
            Change::Seats {
                part: 0,
                parts: 1,
                writes: vec![(id(7), entry(2, 2, None, Some(50_000)))],
                from: Some(id(4)),
            },
            // The source's side: the record names the destination.
            Change::Seats {
                part: 0,
                parts: 1,
                writes: vec![(id(7), entry(2, 6, None, None))],
                from: None,
            },
            Change::Block(block(Some(77_000))),
        ];
        for change in &lifecycle {
            let bytes = encode_change(change);
            assert_eq!(decode_change(b"feed", &bytes).ok().as_ref(), Some(change));
            let entry = OutboxEntry {
                tenant: id(2),
                epoch: 1,
                witness: Some(Witness::Block { first_seat: id(7) }),
                change: change.clone(),
            };
            assert_eq!(decode_entry(b"Q1", &encode_entry(&entry)).ok(), Some(entry));
            // An earlier build: the change without the new fields.
            let seen_by_old: Change = decode(b"feed", &bytes).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(encode(&seen_by_old), encode(&before(change)));
        }
        // Cut short: corrupt, not an old change.
        let bytes = encode_change(&lifecycle[0]);
        assert!(decode_change(b"feed", &bytes[..bytes.len() - 3]).is_err());
    }

    /// The publisher reads up to `outbox_ready_below`, then waits for the
    /// flush: an entry of a change begun after that call is not read, even
    /// when nothing was in flight at the call (it was: `u64::MAX`, and an
    /// entry published before its change was finished was never removed
    /// from the book again: the feed stalled under load).
    #[test]
    fn a_change_begun_after_the_bound_is_not_read() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (store, _) = Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        store.set_role(Role::Primary { sync: false }, std::time::Duration::from_secs(1));
        let below = store.outbox_ready_below();
        let planned = store
            .outbox_before(id(2), None, || vec![Change::Block(block(None))])
            .unwrap_or_else(|e| panic!("{e}"));
        let read = store.outbox_read(0, below, 100).unwrap_or_else(|e| panic!("{e}"));
        assert!(read.is_empty(), "an entry in flight was read: {read:?}");
        store.finish_outbox(planned, Some(store.latest()));
        let below = store.outbox_ready_below();
        let read = store.outbox_read(0, below, 100).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read.len(), 1, "once finished it is read");
        store.close();
    }
}
