//! Audit retention: entries older than a horizon are exported to a new JSON
//! Lines file (fsynced, with its directory), then purged from the store,
//! leaving each tenant a checkpoint so that what remains of its chain still
//! verifies. Only what the export wrote is purged.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::StoreError;
use crate::domain::{Audit, AuditFilter, AuditQuery, Id, Order, RoleEvent, TenantId, Timestamp, TrailPos};

use super::marks::{checkpoint, role_purge};
use super::records::{self, decode, encode, key, BlockRecord, Checkpoint, RolePurge, TrailEntry};
use super::trail::TrailReader;
use super::{unavailable, Seq, Store};

/// Entries per checkpoint move: the checkpoint is written, then the chunk's
/// keys removed, so a purge cut short (crash, failed write) leaves at most
/// one chunk of covered keys behind, which readers skip and the next start
/// removes.
const PURGE_CHUNK: usize = 10_000;

/// One line of an export: a SeatAudit object (`"kind": "seat_audit"`, with
/// the tenant it belongs to) or a role grant or deactivation
/// (`"kind": "role_event"`, the object `/roles/events` shows).
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExportLine<'a> {
    SeatAudit {
        tenant_id: TenantId,
        #[serde(flatten)]
        audit: &'a Audit,
    },
    RoleEvent(&'a RoleEvent),
}

/// What one tenant's export wrote.
pub struct Exported {
    pub lines: u64,
    /// The position of the last trail entry stepped over.
    pub last: Option<TrailPos>,
    /// The keys of the role events written.
    pub role_events: Vec<sled::IVec>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct RetainReport {
    pub exported: u64,
    pub purged: u64,
    /// The export file, when anything was old enough.
    pub file: Option<PathBuf>,
}

/// Removes the keys a purge cut short left behind (see `Store::retain`):
/// trail and audit keys a checkpoint covers, role events a role-purge mark
/// covers. Returns how many keys it removed.
pub fn finish_purges(db: &sled::Db) -> Result<usize, sled::Error> {
    let mut removed = 0;
    for item in db.scan_prefix([records::CHECKPOINT]) {
        let (k, v) = item?;
        let Some(tenant) = records::key_id(&k).and_then(TenantId::new) else {
            continue;
        };
        // Unreadable checkpoints fail the start in `check`, before this.
        let Ok(cp) = decode::<Checkpoint>(&k, &v) else { continue };
        removed += remove_covered(db, tenant, &cp)?;
    }
    for item in db.scan_prefix([records::ROLE_PURGE]) {
        let (k, v) = item?;
        let Some(tenant) = records::key_id(&k) else { continue };
        let Ok(mark) = decode::<RolePurge>(&k, &v) else {
            continue;
        };
        for event in db.scan_prefix(key(records::ROLE_EVENT, tenant)) {
            let (ek, ev) = event?;
            if decode::<RoleEvent>(&ek, &ev).is_ok_and(|e| e.created_at < mark.before) {
                db.remove(&ek)?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// Removes every trail key a tenant's checkpoint covers, and the seat audit
/// records those name: what a purge cut short left (none otherwise).
fn remove_covered(db: &sled::Db, tenant: TenantId, cp: &Checkpoint) -> Result<usize, sled::Error> {
    let start = records::trail_bound(tenant, Timestamp::from_micros(i64::MIN), 0);
    let end = records::trail_bound(tenant, cp.at, cp.audit_id);
    let left: Vec<(sled::IVec, sled::IVec)> = db.range(start..=end).collect::<Result<_, _>>()?;
    let mut removed = 0;
    for (tk, tv) in left {
        // The audit record first, as in `Store::retain`.
        let id = records::trail_key_parts(&tk).and_then(|(_, id)| crate::domain::AuditId::new(id));
        if let (Ok(TrailEntry::Seat { seat, .. }), Some(id)) = (decode::<TrailEntry>(&tk, &tv), id) {
            if db.remove(records::audit_key(seat, id))?.is_some() {
                removed += 1;
            }
        }
        db.remove(&tk)?;
        removed += 1;
    }
    Ok(removed)
}

fn internal(e: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(anyhow::anyhow!("{e}"))
}

impl Store {
    /// Exports, then purges, every tenant's entries created before
    /// `horizon`. Returns what it did and the last write to wait for.
    pub fn retain(&self, horizon: Timestamp, export_dir: &Path) -> Result<(RetainReport, Seq), StoreError> {
        let mut tenants = Vec::new();
        for k in self.db.scan_prefix([records::TENANT]).keys() {
            tenants.extend(records::key_id(&k.map_err(unavailable)?).and_then(TenantId::new));
        }
        let query = AuditQuery {
            tenant: None,
            seat: None,
            filter: AuditFilter {
                until: Some(horizon),
                ..AuditFilter::default()
            },
            order: Order::Asc,
            limit: usize::MAX,
            after: None,
        };
        // 1. Export, remembering how far each tenant's export went. The
        // file is made only when something is old enough.
        let mut report = RetainReport::default();
        let old_enough = tenants
            .iter()
            .try_fold(false, |found, &t| -> Result<bool, StoreError> {
                Ok(found
                    || TrailReader::new(&self.db, t, &query)?.next_step()?.is_some()
                    || !old_role_events(&self.db, t, horizon)?.is_empty())
            })?;
        if !old_enough {
            return Ok((report, 0));
        }
        std::fs::create_dir_all(export_dir).map_err(internal)?;
        let path = export_dir.join(format!(
            "audit-before-{}-{}.jsonl",
            horizon.micros(),
            Timestamp::now().micros()
        ));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| internal(format!("cannot create {}: {e}", path.display())))?;
        let mut writer = std::io::BufWriter::new(file);
        let mut reached: Vec<(TenantId, TrailPos)> = Vec::new();
        let mut role_events: Vec<(TenantId, Vec<sled::IVec>)> = Vec::new();
        for &tenant in &tenants {
            let exported = export_tenant(&self.db, tenant, &query, &mut writer)?;
            report.exported += exported.lines;
            reached.extend(exported.last.map(|pos| (tenant, pos)));
            if !exported.role_events.is_empty() {
                role_events.push((tenant, exported.role_events));
            }
        }
        // The export is on disk (file and its name) before anything is purged.
        let file = writer.into_inner().map_err(|e| internal(e.into_error()))?;
        file.sync_all().map_err(internal)?;
        std::fs::File::open(export_dir)
            .and_then(|d| d.sync_all())
            .map_err(internal)?;
        report.file = Some(path);

        // 2. Purge up to where each export reached, chunk by chunk.
        let mut seq = 0;
        for (tenant, upto) in reached {
            let existing = checkpoint(&self.db, tenant)?;
            // Keys an earlier purge covered but could not remove (a failed
            // write) go first, uncounted: the checkpoint counted them.
            if let Some(cp) = &existing {
                self.writable()?;
                remove_covered(&self.db, tenant, cp).map_err(unavailable)?;
            }
            let mut cp = existing.unwrap_or(Checkpoint {
                at: Timestamp::from_micros(i64::MIN),
                audit_id: 0,
                hash: [0; 32],
                purged: 0,
            });
            let before = cp.purged;
            let start = records::trail_bound(tenant, Timestamp::from_micros(i64::MIN), 0);
            let end = records::trail_bound(tenant, upto.at, upto.id);
            loop {
                // Keys to remove, in order: each audit record before its trail
                // key, so that a crash between them leaves the trail key,
                // through which the next start finds and removes both (a
                // reader that meets it finds the checkpoint covering it).
                let mut doomed: Vec<sled::IVec> = Vec::new();
                let mut n = 0usize;
                for item in self.db.range(start..=end).take(PURGE_CHUNK) {
                    let (k, v) = item.map_err(unavailable)?;
                    let (at, id) = records::trail_key_parts(&k).ok_or_else(|| internal("bad trail key"))?;
                    let entry: TrailEntry = decode(&k, &v).map_err(internal)?;
                    match &entry {
                        TrailEntry::Seat { seat, .. } => {
                            let audit = crate::domain::AuditId::new(id).ok_or_else(|| internal("audit id 0"))?;
                            doomed.push(records::audit_key(*seat, audit).as_slice().into());
                            cp.purged += 1;
                        }
                        TrailEntry::Block { first_seat, .. } => {
                            // The block stays: it is the seats' identity.
                            let bk = key(records::BLOCK, first_seat.get());
                            let v = self
                                .db
                                .get(bk)
                                .map_err(unavailable)?
                                .ok_or_else(|| internal("block missing"))?;
                            let block: BlockRecord = decode(&bk, &v).map_err(internal)?;
                            cp.purged += block.count;
                        }
                    }
                    doomed.push(k.clone());
                    cp.at = at;
                    cp.audit_id = id;
                    cp.hash = *entry.hash();
                    n += 1;
                }
                if n == 0 {
                    break;
                }
                // The checkpoint is the commit point, written first: from then
                // on every reader skips what it covers, and a start after a
                // crash removes whatever it covers that is still there
                // (`finish_purges`). Plain writes, never a sled `Batch`: the
                // first batch would put every later write in the process
                // behind sled's global lock (see BENCHMARKS.md).
                self.writable()?;
                self.db
                    .insert(key(records::CHECKPOINT, tenant.get()), encode(&cp))
                    .map_err(unavailable)?;
                self.writable()?;
                for k in doomed {
                    self.db.remove(k).map_err(unavailable)?;
                }
                seq = self.commit.wrote();
            }
            report.purged += cp.purged - before;
        }
        // Role events are not chained: the exported ones go, after the
        // tenant's role-purge mark (the commit point, as the checkpoint is
        // for the trail): every event before the horizon was exported.
        for (tenant, keys) in role_events {
            let before = role_purge(&self.db, tenant)?.map_or(horizon, |b| b.max(horizon));
            self.writable()?;
            self.db
                .insert(key(records::ROLE_PURGE, tenant.get()), encode(&RolePurge { before }))
                .map_err(unavailable)?;
            for k in &keys {
                self.db.remove(k).map_err(unavailable)?;
            }
            seq = self.commit.wrote();
            report.purged += keys.len() as u64;
        }
        Ok((report, seq))
    }
}

/// A tenant's role events created before `horizon` (they are few: grants
/// and deactivations), with their keys; none an earlier purge covered.
fn old_role_events(
    db: &sled::Db,
    tenant: TenantId,
    horizon: Timestamp,
) -> Result<Vec<(sled::IVec, RoleEvent)>, StoreError> {
    let purged = role_purge(db, tenant)?;
    let mut out = Vec::new();
    for item in db.scan_prefix(key(records::ROLE_EVENT, tenant.get())) {
        let (k, v) = item.map_err(unavailable)?;
        let event: RoleEvent = decode(&k, &v).map_err(internal)?;
        if event.created_at < horizon && purged.is_none_or(|before| event.created_at >= before) {
            out.push((k, event));
        }
    }
    Ok(out)
}

/// Writes a tenant's audit entries that `query` selects, in trail order,
/// then its role events created before the query's `until` (all of them
/// without one), as export lines.
pub fn export_tenant<W: Write>(
    db: &sled::Db,
    tenant: TenantId,
    query: &AuditQuery,
    out: &mut W,
) -> Result<Exported, StoreError> {
    let mut line = |l: ExportLine| -> Result<(), StoreError> {
        serde_json::to_writer(&mut *out, &l).map_err(internal)?;
        out.write_all(b"\n").map_err(internal)
    };
    let mut reader = TrailReader::new(db, tenant, query)?;
    let (mut lines, mut last) = (0, None);
    while let Some(step) = reader.next_step()? {
        last = Some(step.pos);
        let Some(audit) = step.audit else { continue };
        line(ExportLine::SeatAudit {
            tenant_id: tenant,
            audit: &audit,
        })?;
        lines += 1;
    }
    let horizon = query.filter.until.unwrap_or(Timestamp::from_micros(i64::MAX));
    let mut role_events = Vec::new();
    for (k, event) in old_role_events(db, tenant, horizon)? {
        line(ExportLine::RoleEvent(&event))?;
        lines += 1;
        role_events.push(k);
    }
    Ok(Exported {
        lines,
        last,
        role_events,
    })
}
