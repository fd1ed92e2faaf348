//! A standby applies the feed's changes through the same code that made
//! them: the same store methods write the same records (so the audit chain,
//! the counters and every seat match the primary's), and the same actor
//! state (pool, chain head, clock, stats, alerts, day snapshots) moves.
//! The primary's decisions are taken as they are: nothing is re-decided.

use crate::domain::{Id, TenantId};
use crate::store::{Change, IdSpace};

use super::actor::{Apply, Promoted};
use super::error::Error;
use super::Engine;

impl Engine {
    /// Applies one change of the feed. A change already here (a restart
    /// reads the stream again from its mark) is skipped.
    pub async fn apply_change(&self, tenant: TenantId, change: Change) -> Result<(), Error> {
        match change {
            Change::Tenant { mut tenant, sourced_id } => {
                tenant.sourced_id = sourced_id;
                self.store.ids_seen(IdSpace::Tenant, tenant.id.get())?;
                let seq = self.store.put_tenant(&tenant, None)?;
                let known = self
                    .directory
                    .update_tenant(tenant.id, |_| Ok::<_, Error>(Some((tenant.clone(), seq))));
                if known.is_none() {
                    self.register_new_tenant(&tenant, seq);
                }
                self.store.durable(seq).await?;
            }
            Change::Role { entry, roster } => {
                if self.store.role_event_there(&entry.last_event)? {
                    return Ok(());
                }
                let mut role = entry.role;
                role.roster = roster;
                self.store.ids_seen(IdSpace::Role, role.id.get())?;
                self.store.ids_seen(IdSpace::RoleEvent, entry.last_event.id.get())?;
                let seq = {
                    let mut roles = self.directory.roles_write();
                    let seq = self.store.put_role(&role, &entry.last_event, None)?;
                    if roles.get(role.id).is_some() {
                        roles.update(role, seq);
                    } else {
                        roles.insert(role, seq);
                    }
                    seq
                };
                self.store.durable(seq).await?;
            }
            change @ (Change::Block(_) | Change::Seats { .. } | Change::Threshold(_)) => {
                let actor = self.actor(tenant)?;
                // Not refused for load: the stream's order waits for it.
                actor.deliver(Apply { change }).await?.wait(&self.store).await?;
            }
        }
        Ok(())
    }

    /// This instance has become the primary (its store takes writes):
    /// every tenant actor writes what it owes of its own accord and sets
    /// its reservation timer, which a standby leaves to the primary (see
    /// `actor::expiry`). Called again after a pause (fenced, then not), it
    /// does the same: nothing twice.
    pub fn promoted(&self) {
        for actor in self.directory.actors() {
            tokio::spawn(async move {
                if let Err(e) = actor.deliver(Promoted {}).await {
                    tracing::warn!(error = %e, "a tenant actor did not take its promotion");
                }
            });
        }
    }
}
