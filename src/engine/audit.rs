//! The audit trail: a seat's entries, pages of a tenant's trail, the hash
//! chain's verification, and retention. The trail lives on disk; reads go
//! to the store, off the async workers where they may be long.

use std::sync::Arc;

use crate::domain::{Audit, AuditPage, AuditQuery, Caller, SeatId, TenantId, Timestamp};
use crate::store::{ChainReport, RetainReport};

use super::actor;
use super::durable::Durable;
use super::error::{Error, Missing};
use super::mailbox::Mailbox;
use super::{Action, Engine};

impl Engine {
    /// A seat's audit entries, oldest first.
    pub async fn seat_audit(&self, caller: &Caller, seat: SeatId) -> Result<Durable<Vec<Audit>>, Error> {
        let (tenant, actor) = self.seat_owner(seat)?;
        self.check(caller, Action::ReadAudit, tenant, Missing::Seat).await?;
        let block = self.read(&actor, actor::GetBlock { seat }).await?;
        let entries = self.store.seat_audit(seat, &block)?;
        Ok(self.scanned(entries))
    }

    /// A page of the audit trail: one seat's, or a tenant's (a district's
    /// includes its schools'), filtered and in time order.
    pub async fn audit(&self, caller: &Caller, query: AuditQuery) -> Result<Durable<AuditPage>, Error> {
        let store = Arc::clone(&self.store);
        let read = match (query.seat, query.tenant) {
            (Some(seat), scope) => {
                let (owner, actor) = self.seat_owner(seat)?;
                self.check(caller, Action::ReadAudit, owner, Missing::Seat).await?;
                if let Some(scope) = scope {
                    self.check(caller, Action::ReadAudit, scope, Missing::Tenant).await?;
                    if scope != owner && self.directory.district_of(owner) != Some(scope) {
                        return Ok(Durable::ready(AuditPage {
                            items: Vec::new(),
                            next_cursor: None,
                        }));
                    }
                }
                let block = self.read(&actor, actor::GetBlock { seat }).await?;
                tokio::task::spawn_blocking(move || store.seat_audit_page(seat, &block, &query)).await
            }
            (None, Some(tenant)) => {
                self.check(caller, Action::ReadAudit, tenant, Missing::Tenant).await?;
                let scope = self.directory.family(tenant);
                // A page steps over up to `SCAN_BUDGET` entries on disk: off
                // the async workers.
                tokio::task::spawn_blocking(move || store.audit_page(&scope, &query)).await
            }
            (None, None) => return Err(Error::Invalid("query parameter tenantId or seatId is required".into())),
        };
        let page = read.map_err(|e| Error::Internal(anyhow::anyhow!("audit read task: {e}")))??;
        Ok(self.scanned(page))
    }

    /// Walks a tenant's audit hash chain (O(its trail), off the async
    /// workers) and names the first entry that does not match.
    pub async fn verify_audit(&self, caller: &Caller, tenant: TenantId) -> Result<Durable<ChainReport>, Error> {
        self.check(caller, Action::ReadAudit, tenant, Missing::Tenant).await?;
        let actor = self.actor(tenant)?;
        // Read before the walk: every entry it covers is already in sled, so
        // it must be one of the links walked (see `store::verify`).
        let head = self.read(&actor, actor::Head {}).await?;
        let store = Arc::clone(&self.store);
        let lock = Arc::clone(&self.retention);
        let report = tokio::task::spawn_blocking(move || {
            let _walking = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            store.verify_chain(tenant, Some(head))
        })
        .await
        .map_err(|e| Error::Internal(anyhow::anyhow!("audit verify task: {e}")))??;
        Ok(self.scanned(report))
    }

    /// Exports, then purges, the audit entries older than `keep_days` days
    /// (see `store::retain`); the report is revealed once the purge is durable.
    pub async fn retain(&self, keep_days: u64, export_dir: std::path::PathBuf) -> Result<Durable<RetainReport>, Error> {
        let keep = i64::try_from(keep_days)
            .unwrap_or(i64::MAX)
            .saturating_mul(86_400_000_000);
        let horizon = Timestamp::from_micros(Timestamp::now().micros().saturating_sub(keep));
        // A barrier: a change whose time was taken before the horizon but
        // not yet written could land behind the export pass and be purged
        // unexported. Each actor handles one message at a time, so once
        // every actor has answered one, every such change is written.
        let actors: Vec<Mailbox> = self.directory.actors();
        for actor in actors {
            self.read(&actor, actor::GetThreshold {}).await?;
        }
        let store = Arc::clone(&self.store);
        let lock = Arc::clone(&self.retention);
        let (report, seq) = tokio::task::spawn_blocking(move || {
            let _purging = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            store.retain(horizon, &export_dir)
        })
        .await
        .map_err(|e| Error::Internal(anyhow::anyhow!("audit retention task: {e}")))??;
        Ok(Durable::after(seq, Ok(report)))
    }
}
