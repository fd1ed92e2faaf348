//! The store: sled underneath, a narrow interface on top.
//!
//! Every write method returns the group-commit sequence of that write; callers
//! answer only after `durable(seq)` resolves. Everything the engine needs on
//! start comes back from `open` as a `Recovered`. Keep this interface narrow:
//! a replicated log would be a second implementation of these methods.

mod answers;
mod commit;
mod disk;
mod error;
mod export;
mod marks;
mod outbox;
mod owners;
mod pages;
pub mod records;
mod retain;
mod startup;
mod trail;
mod verify;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use crate::domain::{
    Alert, Answer, Audit, AuditPage, AuditQuery, Counts, Id, Role, RoleEvent, SeatId, Tenant, TenantId, Threshold,
    Timestamp, Transition,
};
pub use commit::{Durable, FlushObserver, FlushStats};
use commit::{Flush, GroupCommit};
pub use disk::{Disk, Hooks};
pub use error::StoreError;
pub use export::{export_dir, ExportError};
pub use outbox::{decode_change, encode_change, Change, FeedMark, OutboxEntry, Pending, Role as FeedRole};
use records::{
    decode, encode, encode_block_entry, encode_seat_entry, encode_tailed, key, BlockEntry, BlockEntryRef, BlockRecord,
    DecodeError, Hash, RoleEntry, RoleEntryRef, SeatEntryRef, SeatRecord, TrailEntry, Witness,
};
pub use retain::RetainReport;
pub use verify::{BadEntry, ChainReport};

/// sled's page cache (see `open_db`).
const CACHE_BYTES: u64 = 4 * 1024 * 1024;

/// A group-commit sequence number: wait for it before answering.
pub type Seq = u64;

/// One seat's change within `put_seat_changes`: its new state, the audit
/// entry that made it, the tenant's chain hash after that entry, and the
/// alert it raised (if any).
pub struct SeatWrite<'a> {
    pub seat: SeatId,
    pub record: &'a SeatRecord,
    pub audit: &'a Audit,
    pub hash: Hash,
    pub alert: Option<&'a Alert>,
}

/// The id spaces. Each hands out integers unique for the store's lifetime.
#[derive(Debug, Clone, Copy)]
pub enum IdSpace {
    Tenant = 0,
    Seat = 1,
    Audit = 2,
    Role = 3,
    RoleEvent = 4,
    /// The change feed's outbox entries (`outbox`).
    Outbox = 5,
}

/// How many ids a lease reserves beyond what is asked for. The lease is
/// written before any id in it is used, so after a crash counting resumes past
/// it and no id is ever handed out twice; a restart skips at most this many.
const LEASE_STEP: u64 = 1_000;

#[derive(Debug, Clone, Copy)]
struct Lease {
    next: u64,
    upto: u64,
}

/// Everything read back on start.
#[derive(Debug, Default)]
pub struct Recovered {
    pub tenants: Vec<Tenant>,
    pub roles: Vec<Role>,
    pub blocks: Vec<BlockRecord>,
    /// The license term of the seats of a block with one (by first seat).
    pub terms: HashMap<SeatId, Timestamp>,
    /// Every changed seat's record, its owner among them.
    pub seats: Vec<(SeatId, SeatRecord)>,
    /// Seats a transfer took from one tenant whose arrival in the other
    /// was not written before the process stopped: start writes it.
    pub arriving: Vec<Arriving>,
    /// Where each tenant's audit trail ends (tenants with an empty trail: absent).
    pub heads: HashMap<TenantId, ChainHead>,
    pub thresholds: Vec<Threshold>,
}

/// A seat a transfer moved out of `from` (its record names its new owner)
/// whose arrival entry on the new owner's trail is still to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arriving {
    pub seat: SeatId,
    pub from: TenantId,
    pub to: TenantId,
    /// Who asked for the transfer.
    pub by: crate::domain::UserId,
}

/// How far back start-up reads each tenant's trail to rebuild per-minute stats.
pub const RECENT: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// The end of a tenant's audit trail: the time of its last entry (the actor's
/// clock never goes below it) and the chain hash after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    pub at: Timestamp,
    pub hash: Hash,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("data dir {0} is in use by another tenant-service process (its lock is held)")]
    Locked(PathBuf),
    #[error("tenant {tenant} is not in the store in data dir {path}")]
    NoTenant { tenant: TenantId, path: PathBuf },
    #[error("data dir {0} does not exist or is not a directory")]
    NoDataDir(PathBuf),
    #[error("cannot open the store in data dir {path}: {source}")]
    Open { path: PathBuf, source: sled::Error },
    #[error("cannot read the store in data dir {path}: {source}")]
    Decode { path: PathBuf, source: DecodeError },
}

/// See `Store::watermark`.
#[derive(Clone)]
pub struct Watermark(Arc<GroupCommit>);

impl Watermark {
    pub fn latest(&self) -> Seq {
        self.0.latest()
    }

    /// Whether `seq` is on disk already.
    pub fn covers(&self, seq: Seq) -> bool {
        matches!(self.0.state(), Durable::Upto(upto) if upto >= seq)
    }

    /// As `Store::durable`.
    pub async fn durable(&self, seq: Seq) -> Result<(), StoreError> {
        self.0
            .wait(seq)
            .await
            .map_err(|()| unavailable("the last flush to disk failed"))
    }
}

pub struct Store {
    db: sled::Db,
    /// Around every write here and every flush by the group-commit thread:
    /// `Disk` in the service, a test's or bench's own disk otherwise.
    hooks: Arc<dyn Hooks>,
    commit: Arc<GroupCommit>,
    /// The group-commit thread, joined by `close`.
    flusher: Mutex<Option<JoinHandle<()>>>,
    /// One lease per id space. A std mutex: held for an increment, and for one
    /// small sled insert when a lease runs out; never across an await.
    leases: [Mutex<Lease>; 6],
    /// Audit ids below this were handed out before this process opened the
    /// store: the entries `check_history` counts (the actors count the rest).
    audit_ids_at_open: u64,
    /// The data dir, named by `check_history`'s errors.
    dir: PathBuf,
    /// The change feed's outbox (off unless replication is configured).
    outbox: outbox::Outbox,
}

impl Store {
    pub fn open(dir: &Path) -> Result<(Arc<Store>, Recovered), OpenError> {
        Self::open_with(dir, Arc::new(Disk))
    }

    /// `open`, with `hooks` around every write and flush (see `Hooks`).
    pub fn open_with(dir: &Path, hooks: Arc<dyn Hooks>) -> Result<(Arc<Store>, Recovered), OpenError> {
        let opening = std::time::Instant::now();
        let db = open_db(dir)?;
        // Most of a slow start after a long run: sled 0.34 writes a snapshot
        // of its page table only when it opens, and replays its log since.
        tracing::info!(
            sled_millis = opening.elapsed().as_millis() as u64,
            "opened sled (its log replayed since its last snapshot)"
        );
        let read_err = |source| OpenError::Decode {
            path: dir.to_path_buf(),
            source,
        };
        let open_err = |source| OpenError::Open {
            path: dir.to_path_buf(),
            source,
        };

        let mut leases = [Lease { next: 1, upto: 1 }; 6];
        for item in db.scan_prefix([records::LEASE]) {
            let (k, v) = item.map_err(open_err)?;
            let upto: u64 = decode(&k, &v).map_err(read_err)?;
            if let Some(lease) = records::key_id(&k).and_then(|i| leases.get_mut(i as usize)) {
                // Ids below `upto` may have been handed out before a crash.
                *lease = Lease { next: upto, upto };
            }
        }
        let finished = retain::finish_purges(&db).map_err(open_err)?;
        if finished > 0 {
            tracing::warn!(keys = finished, "finished a retention purge a crash cut short");
        }
        // Retention's marks: what each tenant's purges covered (decoding them
        // all here is also their start-up check).
        let checkpoints: HashMap<TenantId, records::Checkpoint> =
            scan_by_tenant(&db, records::CHECKPOINT).map_err(|e| e.into_open(dir))?;
        let role_purges: HashMap<TenantId, records::RolePurge> =
            scan_by_tenant(&db, records::ROLE_PURGE).map_err(|e| e.into_open(dir))?;
        let purged = startup::Purged(&checkpoints);
        let (blocks, terms): (Vec<BlockEntry>, HashMap<SeatId, Timestamp>) = {
            let read: Vec<(BlockEntry, Option<Timestamp>)> =
                scan_with(&db, records::BLOCK, records::decode_block_entry).map_err(|e| e.into_open(dir))?;
            let terms = read
                .iter()
                .filter_map(|(e, term)| Some((e.block.first_seat, (*term)?)))
                .collect();
            (read.into_iter().map(|(e, _)| e).collect(), terms)
        };
        startup::check_blocks(&blocks).map_err(|e| e.into_open(dir))?;
        let roles: Vec<RoleEntry> =
            scan_with(&db, records::ROLE, records::decode_role).map_err(|e| e.into_open(dir))?;
        let (finished_bulk, mut answer_tails) = startup::finish_bulk(&db).map_err(|e| e.into_open(dir))?;
        if finished_bulk > 0 {
            tracing::warn!(seats = finished_bulk, "finished a bulk seat change a crash cut short");
        }
        // Decoding every entry's last audit too would slow every start by
        // the number of changed seats: only the seat record is read.
        let (seats, arriving) = startup::scan_seats(&db, &blocks).map_err(|e| e.into_open(dir))?;
        let (restored, seat_tails) =
            startup::restore_followers(&db, &seats, &arriving, &blocks, &roles, &purged, &role_purges)
                .map_err(|e| e.into_open(dir))?;
        answer_tails.extend(seat_tails);
        let answers = answers::restore(&db, answer_tails).map_err(|e| e.into_open(dir))?;
        // Last: an outbox entry's witness may be a follower restored above.
        let (orphans, outboxed) = outbox::check(&db).map_err(|e| e.into_open(dir))?;
        if orphans > 0 {
            tracing::warn!(
                orphans,
                "removed change-feed outbox entries of changes a crash took back"
            );
        }
        if restored + finished_bulk + answers + orphans > 0 {
            sled::Tree::flush(&db).map_err(open_err)?;
            tracing::warn!(
                restored,
                answers,
                "restored trail entries and stored answers of the last changes before a crash"
            );
        }
        let tenants: Vec<Tenant> =
            scan_with(&db, records::TENANT, records::decode_tenant).map_err(|e| e.into_open(dir))?;
        let heads = tenants
            .iter()
            .filter_map(|t| chain_head(&db, t.id).transpose().map(|h| h.map(|h| (t.id, h))))
            .collect::<Result<_, ScanError>>()
            .map_err(|e| e.into_open(dir))?;
        let recovered = Recovered {
            thresholds: scan(&db, records::THRESHOLD).map_err(|e| e.into_open(dir))?,
            tenants,
            roles: roles.into_iter().map(|e| e.role).collect(),
            blocks: blocks.into_iter().map(|e| e.block).collect(),
            terms,
            seats,
            arriving,
            heads,
        };
        // The other kinds not needed in memory are few: checked here, for
        // the same reason as audit and trail records (`check_history`): a
        // corrupt record must stop the service.
        check::<Alert>(&db, records::ALERT).map_err(|e| e.into_open(dir))?;
        check::<Counts>(&db, records::HISTORY).map_err(|e| e.into_open(dir))?;

        // sled's flush ends in sync_file_range, which neither flushes the
        // disk's write cache nor the file's metadata (sled issue #1452); an
        // fdatasync of its log file after each flush makes the batch survive
        // a power cut, not only a process crash.
        let log = std::fs::File::open(dir.join("db")).map_err(|e| OpenError::Open {
            path: dir.to_path_buf(),
            source: sled::Error::Io(e),
        })?;
        let disk = SledLog {
            db: db.clone(),
            log,
            hooks: Arc::clone(&hooks),
        };
        let (commit, flusher) = GroupCommit::start(Arc::new(disk));
        let store = Store {
            db,
            hooks,
            commit,
            flusher: Mutex::new(Some(flusher)),
            audit_ids_at_open: leases[IdSpace::Audit as usize].next,
            leases: leases.map(Mutex::new),
            dir: dir.to_path_buf(),
            outbox: outbox::Outbox::new(outboxed.len() as u64, outboxed.into_iter()),
        };
        Ok((Arc::new(store), recovered))
    }

    /// The history pass: decodes every audit and trail record (a corrupt or
    /// unknown-version one is an `OpenError`, as at start) and returns each
    /// tenant's seat transitions since `since` made before this process
    /// opened the store. Runs while the service answers: these records are
    /// most of a large store and memory needs none of them. Gives up, with
    /// `None`, once `stop` is set.
    pub fn check_history(&self, since: Timestamp, stop: &AtomicBool) -> Result<Option<RecentChanges>, OpenError> {
        self.hooks.before_history(stop);
        let (db, dir) = (&self.db, self.dir.as_path());
        let checkpoints: HashMap<TenantId, records::Checkpoint> =
            scan_by_tenant(db, records::CHECKPOINT).map_err(|e| e.into_open(dir))?;
        let purged = startup::Purged(&checkpoints);
        let blocks: Vec<BlockEntry> = scan(db, records::BLOCK).map_err(|e| e.into_open(dir))?;
        let below = self.audit_ids_at_open;
        let owners = owners::Owners::read(db).map_err(|e| e.into_open(dir))?;
        // Two key ranges, two threads (and the two cores the service runs on).
        let (audits, trail) = std::thread::scope(|s| {
            let trail = s.spawn(|| startup::check_trail(db, &blocks, below, stop));
            let audits = startup::check_audits(db, since, below, &blocks, &owners, &purged, stop);
            (audits, joined(trail))
        });
        let (recent, audit_ids) = audits.map_err(|e| e.into_open(dir))?;
        let seat_changes = trail.map_err(|e| e.into_open(dir))?;
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(None);
        }
        startup::trail_names_audits(db, audit_ids, seat_changes).map_err(|e| e.into_open(dir))?;
        Ok(Some(
            recent
                .merge(startup::purchases(&blocks, since, below, &purged))
                .into_changes(),
        ))
    }

    /// Reserves `n` consecutive ids and returns the first.
    pub fn ids(&self, space: IdSpace, n: u64) -> Result<u64, StoreError> {
        let mut lease = self.leases[space as usize]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if lease.next + n > lease.upto {
            let upto = lease.next + n + LEASE_STEP;
            self.writable()?;
            self.db
                .insert(key(records::LEASE, space as u64), encode(&upto))
                .map_err(unavailable)?;
            lease.upto = upto;
        }
        let first = lease.next;
        lease.next += n;
        Ok(first)
    }

    /// The next id `ids` would hand out in a space.
    fn peek_id(&self, space: IdSpace) -> u64 {
        self.leases[space as usize]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .next
    }

    /// A tenant's new version (its key is the commit point; the roster
    /// `sourcedId` after the contract's fields, see `records::encode_tenant`),
    /// with the answer to the request that made it, if one is kept (see
    /// `answers`).
    pub fn put_tenant(&self, tenant: &Tenant, answer: Option<&Answer>) -> Result<Seq, StoreError> {
        let stored = (tenant, &tenant.sourced_id);
        let change = || Change::Tenant {
            tenant: tenant.clone(),
            sourced_id: tenant.sourced_id.clone(),
        };
        self.put_answered(
            key(records::TENANT, tenant.id.get()),
            &stored,
            answer,
            (tenant.id, change),
        )
    }

    /// A role's new version and the event that made it: the role key (which
    /// carries the event) is the commit point, the event's trail key follows.
    pub fn put_role(&self, role: &Role, event: &RoleEvent, answer: Option<&Answer>) -> Result<Seq, StoreError> {
        self.writable()?;
        let entry = RoleEntryRef {
            role,
            last_event: event,
        };
        let witness = Witness::RoleEvent {
            tenant: event.tenant_id,
            event: event.id,
            at: event.created_at,
        };
        self.answer_before(answer, witness)?;
        let outboxed = self.outbox_before(event.tenant_id, Some(witness), || {
            vec![Change::Role {
                entry: RoleEntry {
                    role: role.clone(),
                    last_event: event.clone(),
                },
                roster: role.roster,
            }]
        })?;
        let written = self
            .db
            .insert(key(records::ROLE, role.id.get()), entry.encode())
            .and_then(|_| {
                self.db
                    .insert(records::role_event_key(event.tenant_id, event.id), encode(event))
            })
            .map_err(unavailable);
        self.finished(outboxed, written)
    }

    /// Ends a change's write: its group-commit sequence once written, and
    /// its outbox entries handed to the publisher (or removed if it failed).
    fn finished<T>(
        &self,
        outboxed: Option<outbox::Planned>,
        written: Result<T, StoreError>,
    ) -> Result<Seq, StoreError> {
        match written {
            Ok(_) => {
                let seq = self.commit.wrote();
                self.finish_outbox(outboxed, Some(seq));
                Ok(seq)
            }
            Err(e) => {
                self.finish_outbox(outboxed, None);
                Err(e)
            }
        }
    }

    /// A tenant's role grants and deactivations, oldest first.
    pub fn role_events(&self, tenant: TenantId) -> Result<Vec<RoleEvent>, StoreError> {
        // Events a purge covers may be there while it runs.
        let purged = marks::role_purge(&self.db, tenant)?;
        let mut events: Vec<RoleEvent> = self.tenant_records(records::ROLE_EVENT, tenant)?;
        events.retain(|e| purged.is_none_or(|before| e.created_at >= before));
        Ok(events)
    }

    /// Every record of a kind keyed by tenant first, in key order.
    fn tenant_records<T: serde::de::DeserializeOwned>(&self, kind: u8, tenant: TenantId) -> Result<Vec<T>, StoreError> {
        self.db
            .scan_prefix(key(kind, tenant.get()))
            .map(|item| {
                let (k, v) = item.map_err(unavailable)?;
                decode(&k, &v).map_err(|e| StoreError::Internal(e.into()))
            })
            .collect()
    }

    /// A purchase block and its tenant-trail entry (`hash`: the chain after
    /// the block's last derived audit entry); the block key is the commit
    /// point and carries the trail link and alert (see `BlockEntry`).
    pub fn put_block(
        &self,
        block: &BlockRecord,
        expires_at: Option<Timestamp>,
        hash: Hash,
        alert: Option<&Alert>,
        answer: Option<&Answer>,
    ) -> Result<Seq, StoreError> {
        self.writable()?;
        // The block's key is the commit point (as in `put_transition`).
        let entry = BlockEntryRef { block, hash, alert };
        let witness = Witness::Block {
            first_seat: block.first_seat,
        };
        self.answer_before(answer, witness)?;
        let outboxed = self.outbox_before(block.tenant_id, Some(witness), || {
            vec![Change::Block(BlockEntry {
                block: block.clone(),
                hash,
                alert: alert.cloned(),
                expires_at,
            })]
        })?;
        let written = (|| {
            self.db.insert(
                key(records::BLOCK, block.first_seat.get()),
                encode_block_entry(&entry, expires_at),
            )?;
            for (k, v) in entry.followers() {
                self.db.insert(k, v)?;
            }
            Ok::<_, sled::Error>(())
        })()
        .map_err(unavailable);
        self.finished(outboxed, written)
    }

    /// A seat's new state, its audit entry and the tenant-trail entry that
    /// points at it (with the chain `hash` after it).
    pub fn put_seat_change(
        &self,
        tenant: TenantId,
        seat: SeatId,
        record: &SeatRecord,
        audit: &Audit,
        hash: Hash,
    ) -> Result<Seq, StoreError> {
        let write = SeatWrite {
            seat,
            record,
            audit,
            hash,
            alert: None,
        };
        self.put_transition(tenant, &write, None)
    }

    /// `put_seat_change`, with the alert the change raised (if any): an alert
    /// exists exactly when its change does.
    ///
    /// The seat's key is the commit point: it carries everything the change
    /// writes and is written first; the audit, trail and alert keys follow,
    /// and on start any a crash kept from being written is restored from it
    /// (sled recovers its log in order, so they never survive without it).
    /// One key per commit point instead of a sled `Batch`: the first batch
    /// switches sled to a process-wide write lock and a second log write per
    /// batch for good (see BENCHMARKS.md).
    pub fn put_transition(
        &self,
        tenant: TenantId,
        write: &SeatWrite<'_>,
        answer: Option<&Answer>,
    ) -> Result<Seq, StoreError> {
        self.writable()?;
        let seat = write.seat;
        let entry = SeatEntryRef {
            seat: write.record,
            last_audit: write.audit,
            tenant,
            hash: write.hash,
            alert: write.alert,
        };
        let witness = Witness::Audit {
            seat,
            audit: write.audit.id,
            at: write.audit.created_at,
        };
        self.answer_before(answer, witness)?;
        let outboxed = self.outbox_before(tenant, Some(witness), || {
            outbox::seat_parts(vec![(seat, owned(&entry))], None)
        })?;
        let written = (|| {
            self.db
                .insert(key(records::SEAT, seat.get()), encode_seat_entry(&entry))?;
            for (k, v) in entry.followers(seat) {
                self.db.insert(k, v)?;
            }
            Ok::<_, sled::Error>(())
        })()
        .map_err(unavailable);
        self.finished(outboxed, written)
    }

    /// Many seat changes of one tenant as one change: the change in parts
    /// (`BULK_PART` keys, each small), then the commit point (the tenant's
    /// `BULK` key, naming how many parts), then each seat's key and its
    /// followers, then the commit point and its parts are removed. A crash
    /// leaves all of the changes or none: on start a commit point still there
    /// is finished, and parts without one are dropped (`startup::finish_bulk`).
    /// A write that fails after the commit point stops the store
    /// (fail-stop): whether the change stands is settled by the restart.
    pub fn put_seat_changes(
        &self,
        tenant: TenantId,
        changes: &[SeatWrite<'_>],
        answer: Option<&Answer>,
    ) -> Result<Seq, StoreError> {
        self.put_seat_writes(tenant, changes, answer, None)
    }

    /// `put_seat_changes`; `from`: the arriving side of a transfer from
    /// that tenant (the feed says so, see `put_arrivals`).
    fn put_seat_writes(
        &self,
        tenant: TenantId,
        changes: &[SeatWrite<'_>],
        answer: Option<&Answer>,
        from: Option<TenantId>,
    ) -> Result<Seq, StoreError> {
        self.writable()?;
        let entries: Vec<(SeatId, SeatEntryRef<'_>)> = changes
            .iter()
            .map(|c| {
                let entry = SeatEntryRef {
                    seat: c.record,
                    last_audit: c.audit,
                    tenant,
                    hash: c.hash,
                    alert: c.alert,
                };
                (c.seat, entry)
            })
            .collect();
        // Each seat's value, encoded once: it sizes the parts and is what
        // its seat key gets.
        let values: Vec<Vec<u8>> = entries.iter().map(|(_, entry)| encode_seat_entry(entry)).collect();
        let mut parts: Vec<&[(SeatId, SeatEntryRef<'_>)]> = Vec::new();
        let (mut start, mut bytes) = (0, 0);
        for (i, value) in values.iter().enumerate() {
            bytes += value.len();
            if bytes >= records::BULK_PART_BYTES || i + 1 == entries.len() {
                parts.push(&entries[start..=i]);
                (start, bytes) = (i + 1, 0);
            }
        }
        for (n, part) in parts.iter().enumerate() {
            self.db
                .insert(
                    records::bulk_part_key(tenant, n as u64),
                    records::encode_bulk_part(part),
                )
                .map_err(unavailable)?;
        }
        // All of the bulk or none of it: its last change witnesses the
        // answer and the outbox entries.
        let mut outboxed = None;
        if let Some(last) = changes.last() {
            let witness = Witness::Audit {
                seat: last.seat,
                audit: last.audit.id,
                at: last.audit.created_at,
            };
            self.answer_before(answer, witness)?;
            outboxed = self.outbox_before(tenant, Some(witness), || {
                outbox::seat_parts(
                    entries.iter().map(|(seat, entry)| (*seat, owned(entry))).collect(),
                    from,
                )
            })?;
        }
        let bulk = key(records::BULK, tenant.get());
        if let Err(e) = self.db.insert(bulk, encode(&(parts.len() as u64))) {
            self.finish_outbox(outboxed, None);
            return Err(unavailable(e));
        }
        let followers = || -> sled::Result<()> {
            for ((seat, entry), value) in entries.iter().zip(&values) {
                self.db.insert(key(records::SEAT, seat.get()), value.as_slice())?;
                for (k, v) in entry.followers(*seat) {
                    self.db.insert(k, v)?;
                }
            }
            self.db.remove(bulk)?;
            for n in 0..parts.len() {
                self.db.remove(records::bulk_part_key(tenant, n as u64))?;
            }
            Ok(())
        };
        if let Err(e) = followers() {
            tracing::error!(error = %e, %tenant, "a bulk seat change failed after its commit point; the store stops");
            self.commit.fail();
            // The change stands if the restart finishes it: so do its
            // outbox entries (start checks them against it).
            self.finish_outbox(outboxed, Some(self.commit.latest()));
            return Err(StoreError::Stopped(e.into()));
        }
        self.finished(outboxed, Ok(()))
    }

    /// The arriving side of a transfer: the seats' entries on the tenant
    /// they moved to (`put_seat_changes`, no answer: the transfer's was
    /// written with its commit point, the source's write, whose seat records
    /// already name this tenant). A start finishes what a crash cut short
    /// (`Recovered::arriving`); a write refused here would leave seats in
    /// transit in a running service, so it stops the store instead, and
    /// the restart finishes it. `from`: the tenant they came from (the
    /// feed names it, and publishes the arrival after the source's change).
    pub fn put_arrivals(&self, tenant: TenantId, from: TenantId, changes: &[SeatWrite<'_>]) -> Result<Seq, StoreError> {
        self.put_seat_writes(tenant, changes, None, Some(from)).map_err(|e| {
            tracing::error!(error = %e, %tenant, "the arriving side of a transfer failed; the store stops");
            self.commit.fail();
            StoreError::Stopped(anyhow::anyhow!("{e}"))
        })
    }

    /// A tenant's counts at the end of `day` (written once, when the first
    /// change of a later day comes).
    pub fn put_day(&self, tenant: TenantId, day: i64, snapshot: &Counts) -> Result<Seq, StoreError> {
        self.writable()?;
        self.db
            .insert(records::history_key(tenant, day), encode(snapshot))
            .map_err(unavailable)?;
        Ok(self.commit.wrote())
    }

    /// A tenant's day snapshots for days `from..=to`, oldest first, preceded
    /// by the latest one before `from` (what those first days carry forward).
    pub fn days(&self, tenant: TenantId, from: i64, to: i64) -> Result<Vec<(i64, Counts)>, StoreError> {
        let read = |item: sled::Result<(sled::IVec, sled::IVec)>| -> Result<(i64, Counts), StoreError> {
            let (k, v) = item.map_err(unavailable)?;
            let day =
                records::history_key_day(&k).ok_or_else(|| StoreError::Internal(anyhow::anyhow!("bad history key")))?;
            Ok((day, decode(&k, &v).map_err(|e| StoreError::Internal(e.into()))?))
        };
        let start = records::history_key(tenant, from);
        let mut out = Vec::new();
        if let Some(item) = self.db.range(records::history_key(tenant, i64::MIN)..start).next_back() {
            out.push(read(item)?);
        }
        for item in self.db.range(start..=records::history_key(tenant, to)) {
            out.push(read(item)?);
        }
        Ok(out)
    }

    pub fn put_threshold(&self, threshold: &Threshold, answer: Option<&Answer>) -> Result<Seq, StoreError> {
        let change = || Change::Threshold(threshold.clone());
        self.put_answered(
            key(records::THRESHOLD, threshold.tenant_id.get()),
            threshold,
            answer,
            (threshold.tenant_id, change),
        )
    }

    /// A tenant's alerts, oldest first (they are few: one per crossing).
    pub fn alerts(&self, tenant: TenantId) -> Result<Vec<Alert>, StoreError> {
        self.tenant_records(records::ALERT, tenant)
    }

    /// A seat's audit entries, oldest first: the purchase entry derived from
    /// its block, then the stored entries (their keys sort by audit id).
    pub fn seat_audit(&self, seat: SeatId, block: &BlockRecord) -> Result<Vec<Audit>, StoreError> {
        let offset = seat.get() - block.first_seat.get();
        // Each entry is on its owner's trail then (see `owners`), and
        // purged when that trail's checkpoint covers it (its keys may still
        // be there while a purge runs, or after a crash cut one short).
        let moves = owners::Owners::of_seat(&self.db, seat).map_err(ScanError::into_store)?;
        let mut checkpoints: HashMap<TenantId, Option<records::Checkpoint>> = HashMap::new();
        let mut purged = |at: Timestamp, id: u64| -> Result<bool, StoreError> {
            let tenant = owners::owner_at(&moves, id, block.tenant_id);
            let cp = match checkpoints.get(&tenant) {
                Some(cp) => *cp,
                None => *checkpoints
                    .entry(tenant)
                    .or_insert(marks::checkpoint(&self.db, tenant)?),
            };
            Ok(cp.is_some_and(|cp| cp.covers(at, id)))
        };
        let mut out = Vec::new();
        if !purged(block.created_at, block.first_audit.get())? {
            out.push(block.purchase_audit(offset));
        }
        for item in self.db.scan_prefix(records::audit_prefix(seat)) {
            let (k, v) = item.map_err(unavailable)?;
            let audit: Audit = decode(&k, &v).map_err(|e| StoreError::Internal(e.into()))?;
            if !purged(audit.created_at, audit.id.get())? {
                out.push(audit);
            }
        }
        Ok(out)
    }

    /// A page of audit entries from the trails of `tenants` (a district and
    /// its schools, or one tenant), merged in time order.
    pub fn audit_page(&self, tenants: &[TenantId], query: &AuditQuery) -> Result<AuditPage, StoreError> {
        trail::page(&self.db, tenants, query, trail::SCAN_BUDGET)
    }

    /// A page of one seat's audit entries.
    pub fn seat_audit_page(
        &self,
        seat: SeatId,
        block: &BlockRecord,
        query: &AuditQuery,
    ) -> Result<AuditPage, StoreError> {
        Ok(trail::seat_page(self.seat_audit(seat, block)?, query))
    }

    /// Walks a tenant's audit hash chain (O(its trail)), then checks its seat
    /// and audit records against it (O(its seats and records), see
    /// `verify`); `head` is the link the tenant's actor holds, which must be
    /// on the chain (given by a running service: changes newer than the
    /// walk are then left alone, as writes in flight).
    pub fn verify_chain(&self, tenant: TenantId, head: Option<Hash>) -> Result<ChainReport, StoreError> {
        verify::walk(&self.db, tenant, head).map_err(unavailable)
    }

    /// Resolves when the write numbered `seq` (and all before it) is on disk.
    /// With the change feed in sync mode, also once it is on the stream
    /// (see `outbox`): what a failover could take back is not revealed.
    pub async fn durable(&self, seq: Seq) -> Result<(), StoreError> {
        self.commit
            .wait(seq)
            .await
            .map_err(|()| unavailable("the last flush to disk failed"))?;
        self.acknowledged(seq).await
    }

    /// `durable`, on this disk alone (the publisher waits for this before
    /// it takes an outbox entry).
    pub async fn flushed(&self, seq: Seq) -> Result<(), StoreError> {
        self.commit
            .wait(seq)
            .await
            .map_err(|()| unavailable("the last flush to disk failed"))
    }

    /// The group commit's watermark alone, for a waiter that must not keep
    /// the store (and sled's lock on the data dir) open.
    pub fn watermark(&self) -> Watermark {
        Watermark(Arc::clone(&self.commit))
    }

    /// The sequence of the latest write. Waiting for it before answering a
    /// read that went straight to sled covers whatever that read saw.
    pub fn latest(&self) -> Seq {
        self.commit.latest()
    }

    /// Resolves if a flush fails: the process must stop (see `Durable::Failed`).
    pub async fn failed(&self) {
        self.commit.failed().await
    }

    pub fn flush_stats(&self) -> FlushStats {
        self.commit.stats()
    }

    /// Calls `observer` after every good flush (for the metrics).
    pub fn on_flush(&self, observer: FlushObserver) {
        self.commit.observe(observer);
    }

    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    /// Flushes what is pending and stops the group-commit thread.
    pub fn close(&self) {
        self.commit.stop();
        let handle = self.flusher.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }

    /// Checked before every write: after a failed flush nothing more is
    /// accepted (fail-stop), and a refused write stops here, before sled or
    /// memory has changed.
    fn writable(&self) -> Result<(), StoreError> {
        if self.commit.has_failed() {
            return Err(unavailable("the store stopped after a failed flush"));
        }
        self.fence_check()?;
        self.hooks.before_write().map_err(unavailable)
    }

    /// One record that is its own commit point, with its answer (if kept).
    /// `change`: the tenant and the feed's copy of the change (its outbox
    /// entry has no witness: see `outbox`).
    fn put_answered<T: serde::Serialize>(
        &self,
        key: [u8; 9],
        value: &T,
        answer: Option<&Answer>,
        (tenant, change): (TenantId, impl FnOnce() -> Change),
    ) -> Result<Seq, StoreError> {
        self.writable()?;
        let planned = answer.map(|a| answers::Planned::new(a, None));
        self.answer_parts(planned.as_ref())?;
        let outboxed = self.outbox_before(tenant, None, || vec![change()])?;
        let written = self
            .db
            .insert(key, encode_tailed(value, planned.as_ref().map(|p| &p.tail)))
            .map_err(unavailable);
        if written.is_ok() {
            // The answer's key after the commit point: a failure here leaves
            // the change standing (start restores the key from the tail).
            if let Err(e) = self.answer_index(planned.as_ref()) {
                self.finish_outbox(outboxed, Some(self.commit.wrote()));
                return Err(e);
            }
        }
        self.finished(outboxed, written)
    }
}

/// What the group-commit thread flushes: sled, then its log file to the
/// platter, through the hooks.
struct SledLog {
    db: sled::Db,
    log: std::fs::File,
    hooks: Arc<dyn Hooks>,
}

impl Flush for SledLog {
    fn flush(&self) -> std::io::Result<()> {
        self.hooks.flush(&|| {
            Flush::flush(&self.db)?;
            self.log.sync_data()
        })
    }
}

/// A seat entry as the feed carries it.
fn owned(entry: &SeatEntryRef<'_>) -> records::SeatEntry {
    records::SeatEntry {
        seat: entry.seat.clone(),
        last_audit: entry.last_audit.clone(),
        tenant: entry.tenant,
        hash: entry.hash,
        alert: entry.alert.cloned(),
    }
}

/// A scoped thread's result; its panic, if it panicked, goes on here.
fn joined<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

fn unavailable<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Unavailable(anyhow::anyhow!("{e}"))
}

enum ScanError {
    Sled(sled::Error),
    Decode(DecodeError),
}

impl From<sled::Error> for ScanError {
    fn from(e: sled::Error) -> Self {
        ScanError::Sled(e)
    }
}

impl ScanError {
    fn into_store(self) -> StoreError {
        match self {
            ScanError::Sled(e) => unavailable(e),
            ScanError::Decode(e) => StoreError::Internal(e.into()),
        }
    }

    fn into_open(self, dir: &Path) -> OpenError {
        match self {
            ScanError::Sled(source) => OpenError::Open {
                path: dir.to_path_buf(),
                source,
            },
            ScanError::Decode(source) => OpenError::Decode {
                path: dir.to_path_buf(),
                source,
            },
        }
    }
}

/// `tenant-service audit verify`: walks the chains of one tenant or of all,
/// and checks each tenant's seat and audit records against its chain
/// (`verify`), straight from a data dir that no running service holds
/// (sled's lock says so if one does). Reads only; no recovery, so it also
/// runs on a store whose records would stop a start.
pub fn verify_dir(dir: &Path, tenant: Option<TenantId>) -> Result<Vec<ChainReport>, OpenError> {
    if !dir.is_dir() {
        return Err(OpenError::NoDataDir(dir.to_path_buf()));
    }
    let db = open_db(dir)?;
    let open_err = |source| OpenError::Open {
        path: dir.to_path_buf(),
        source,
    };
    let tenants: Vec<TenantId> = match tenant {
        Some(t) if !db.contains_key(key(records::TENANT, t.get())).map_err(open_err)? => {
            return Err(OpenError::NoTenant {
                tenant: t,
                path: dir.to_path_buf(),
            })
        }
        Some(t) => vec![t],
        None => db
            .scan_prefix([records::TENANT])
            .keys()
            .map(|k| k.map(|k| records::key_id(&k).and_then(TenantId::new)))
            .filter_map(Result::transpose)
            .collect::<Result<_, _>>()
            .map_err(open_err)?,
    };
    // Read once for every tenant: each tenant's records are checked against
    // its own blocks (`verify::walk_stopped`).
    let blocks = verify::blocks_by_tenant(&db).map_err(open_err)?;
    tenants
        .into_iter()
        .map(|t| {
            let theirs = blocks.get(&t).map_or(&[][..], Vec::as_slice);
            verify::walk_stopped(&db, t, theirs).map_err(open_err)
        })
        .collect()
}

fn open_db(dir: &Path) -> Result<sled::Db, OpenError> {
    sled::Config::new()
        .path(dir)
        // The group-commit thread flushes whenever writes are pending;
        // sled's own timer would only add fsyncs.
        .flush_every_ms(None)
        // Memory holds every seat already (the pools); sled's page cache
        // only serves audit reads and start-up scans. Its 1 GiB default
        // would keep the whole start-up scan resident.
        .cache_capacity(CACHE_BYTES)
        .open()
        .map_err(|source| match &source {
            sled::Error::Io(e) if e.to_string().contains("could not acquire lock") => {
                OpenError::Locked(dir.to_path_buf())
            }
            _ => OpenError::Open {
                path: dir.to_path_buf(),
                source,
            },
        })
}

/// Each tenant's seat transitions of a recent window: when, what, how many seats.
pub type RecentChanges = HashMap<TenantId, Vec<(Timestamp, Transition, u64)>>;

/// A tenant's last trail entry: one reverse seek.
fn chain_head(db: &sled::Db, tenant: TenantId) -> Result<Option<ChainHead>, ScanError> {
    let Some(item) = db.scan_prefix(records::trail_prefix(tenant)).next_back() else {
        // Everything purged: the chain goes on from the checkpoint.
        let k = key(records::CHECKPOINT, tenant.get());
        return match db.get(k).map_err(ScanError::Sled)? {
            None => Ok(None),
            Some(v) => {
                let cp: records::Checkpoint = decode(&k, &v).map_err(ScanError::Decode)?;
                Ok(Some(ChainHead {
                    at: cp.at,
                    hash: cp.hash,
                }))
            }
        };
    };
    let (k, v) = item.map_err(ScanError::Sled)?;
    let entry: TrailEntry = decode(&k, &v).map_err(ScanError::Decode)?;
    let (at, _) = records::trail_key_parts(&k).ok_or_else(|| corrupt(&k, "bad key"))?;
    Ok(Some(ChainHead {
        at,
        hash: *entry.hash(),
    }))
}

fn scan<T: serde::de::DeserializeOwned>(db: &sled::Db, kind: u8) -> Result<Vec<T>, ScanError> {
    db.scan_prefix([kind])
        .map(|item| {
            let (k, v) = item.map_err(ScanError::Sled)?;
            decode(&k, &v).map_err(ScanError::Decode)
        })
        .collect()
}

/// `scan`, for a kind with its own decoding (`records::decode_tenant`, ...).
fn scan_with<T>(
    db: &sled::Db,
    kind: u8,
    decode: fn(&[u8], &[u8]) -> Result<T, DecodeError>,
) -> Result<Vec<T>, ScanError> {
    db.scan_prefix([kind])
        .map(|item| {
            let (k, v) = item.map_err(ScanError::Sled)?;
            decode(&k, &v).map_err(ScanError::Decode)
        })
        .collect()
}

/// Decodes every record of a kind and keeps none (one at a time in memory).
fn check<T: serde::de::DeserializeOwned>(db: &sled::Db, kind: u8) -> Result<(), ScanError> {
    for item in db.scan_prefix([kind]) {
        let (k, v) = item.map_err(ScanError::Sled)?;
        decode::<T>(&k, &v).map_err(ScanError::Decode)?;
    }
    Ok(())
}

/// Every record of a kind keyed by tenant alone (`key(kind, tenant)`).
fn scan_by_tenant<T: serde::de::DeserializeOwned>(db: &sled::Db, kind: u8) -> Result<HashMap<TenantId, T>, ScanError> {
    Ok(scan_keyed(db, kind)?.into_iter().collect())
}

/// Every record of a kind keyed by one id (`key(kind, id)`), with its id.
fn scan_keyed<I: Id, T: serde::de::DeserializeOwned>(db: &sled::Db, kind: u8) -> Result<Vec<(I, T)>, ScanError> {
    keyed(db.scan_prefix([kind]))
}

/// The records of `items` (keyed `key(kind, id)`), each with its id.
fn keyed<I: Id, T: serde::de::DeserializeOwned>(items: sled::Iter) -> Result<Vec<(I, T)>, ScanError> {
    items
        .map(|item| {
            let (k, v) = item?;
            let id = records::key_id(&k)
                .and_then(I::new)
                .ok_or_else(|| corrupt(&k, "bad key"))?;
            Ok((id, decode(&k, &v).map_err(ScanError::Decode)?))
        })
        .collect()
}

/// A record that decodes but does not make sense where it is.
fn corrupt(k: &[u8], reason: &str) -> ScanError {
    ScanError::Decode(DecodeError::Corrupt {
        key: records::show_key(k),
        reason: reason.into(),
    })
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
    }
}
