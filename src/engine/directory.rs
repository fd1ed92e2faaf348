//! Tenant metadata and roles, read without going through any actor mailbox.
//!
//! Each entry remembers the write sequence that produced it; a reader waits
//! for that sequence before answering (at once when it is already durable),
//! so a tenant or role is never shown before it is on disk.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use dashmap::DashMap;

use crate::domain::{Role, RoleId, RoleKind, Tenant, TenantId, TenantKind, UserId};
use crate::store::Seq;

use super::mailbox::Mailbox;
use super::pool::Counts;

/// A tenant's seat counters as its actor last published them, with the write
/// they reflect. Counts and sequence change together under one small lock,
/// so a reader never sees counters from one transition and a sequence from
/// another. A std mutex: held for a copy, never across an await.
pub struct PublishedCounts(Mutex<(Counts, Seq)>);

impl PublishedCounts {
    pub fn new(counts: Counts) -> Self {
        PublishedCounts(Mutex::new((counts, 0)))
    }

    pub fn set(&self, counts: Counts, seq: Seq) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = (counts, seq);
    }

    pub fn get(&self) -> (Counts, Seq) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What every authorization and write check needs to know about a tenant.
#[derive(Debug, Clone, Copy)]
pub struct Scope {
    pub district: TenantId,
    pub writable: bool,
    /// The latest write to the tenant or its district.
    pub seq: Seq,
}

pub struct TenantEntry {
    pub tenant: Tenant,
    /// The write that produced `tenant`'s current value.
    pub seq: Seq,
    /// A district's schools, in creation order (empty for a school).
    pub children: Vec<TenantId>,
    pub actor: Mailbox,
    /// Read by summaries instead of asking the actor.
    pub counts: Arc<PublishedCounts>,
}

#[derive(Default)]
pub struct Roles {
    pub by_id: HashMap<RoleId, (Role, Seq)>,
    /// The active role of a user in a tenant (rule 6: at most one).
    pub active: HashMap<(UserId, TenantId), RoleId>,
    pub by_tenant: HashMap<TenantId, Vec<RoleId>>,
    pub by_user: HashMap<UserId, Vec<RoleId>>,
}

impl Roles {
    /// Replaces a stored role with a newer version of itself (deactivation).
    pub fn update(&mut self, role: Role, seq: Seq) {
        if !role.is_active && self.active.get(&(role.user_id.clone(), role.tenant_id)) == Some(&role.id) {
            self.active.remove(&(role.user_id.clone(), role.tenant_id));
        }
        self.by_id.insert(role.id, (role, seq));
    }

    /// The latest write among a user's roles (grants and deactivations).
    pub fn latest_for(&self, user: &UserId) -> Seq {
        self.by_user
            .get(user)
            .into_iter()
            .flatten()
            .filter_map(|id| self.by_id.get(id))
            .map(|(_, seq)| *seq)
            .max()
            .unwrap_or(0)
    }

    pub fn active_role(&self, user: &UserId, tenant: TenantId) -> Option<RoleKind> {
        let id = self.active.get(&(user.clone(), tenant))?;
        self.by_id.get(id).map(|(role, _)| role.role)
    }

    /// The tenants where the user holds an active role.
    pub fn active_tenants(&self, user: &UserId) -> Vec<TenantId> {
        self.by_user
            .get(user)
            .into_iter()
            .flatten()
            .filter_map(|id| self.by_id.get(id))
            .filter(|(role, _)| role.is_active)
            .map(|(role, _)| role.tenant_id)
            .collect()
    }

    pub fn insert(&mut self, role: Role, seq: Seq) {
        if role.is_active {
            self.active.insert((role.user_id.clone(), role.tenant_id), role.id);
        }
        self.by_tenant.entry(role.tenant_id).or_default().push(role.id);
        self.by_user.entry(role.user_id.clone()).or_default().push(role.id);
        self.by_id.insert(role.id, (role, seq));
    }

    /// The roles listed under `ids`, and the latest write among them.
    pub fn collect<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a RoleId>,
        keep: impl Fn(&Role) -> bool,
    ) -> (Vec<Role>, Seq) {
        let mut seq = 0;
        let roles = ids
            .into_iter()
            .filter_map(|id| self.by_id.get(id))
            .filter(|(role, _)| keep(role))
            .map(|(role, s)| {
                seq = seq.max(*s);
                role.clone()
            })
            .collect();
        (roles, seq)
    }
}

#[derive(Default)]
pub struct Directory {
    /// Sharded map: lookups from many request tasks do not contend.
    pub tenants: DashMap<TenantId, TenantEntry>,
    /// Written rarely (role grants), read on every role listing. A std lock:
    /// never held across an await.
    pub roles: RwLock<Roles>,
}

impl Directory {
    pub fn roles_read(&self) -> std::sync::RwLockReadGuard<'_, Roles> {
        self.roles.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn roles_write(&self) -> std::sync::RwLockWriteGuard<'_, Roles> {
        self.roles.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// A tenant and the write it depends on.
    pub fn tenant(&self, id: TenantId) -> Option<(Tenant, Seq)> {
        self.tenants.get(&id).map(|e| (e.tenant.clone(), e.seq))
    }

    /// The district a tenant belongs to (itself for a district).
    pub fn district_of(&self, id: TenantId) -> Option<TenantId> {
        self.tenants.get(&id).map(|e| match e.tenant.kind {
            TenantKind::District => id,
            TenantKind::School => e.tenant.parent_id.unwrap_or(id),
        })
    }

    /// A tenant's district, whether writes are allowed, and the latest write
    /// to either of them: one read of each entry, on every request.
    pub fn scope(&self, id: TenantId) -> Option<Scope> {
        let (district, active, seq) = {
            let e = self.tenants.get(&id)?;
            let district = match e.tenant.kind {
                TenantKind::District => id,
                TenantKind::School => e.tenant.parent_id.unwrap_or(id),
            };
            (district, e.tenant.is_active, e.seq)
        };
        if district == id {
            return Some(Scope {
                district,
                writable: active,
                seq,
            });
        }
        let (above, above_seq) = self
            .tenants
            .get(&district)
            .map_or((false, 0), |e| (e.tenant.is_active, e.seq));
        Some(Scope {
            district,
            // Writes are refused in an inactive tenant, and in a school of an
            // inactive district.
            writable: active && above,
            seq: seq.max(above_seq),
        })
    }

    pub fn actor(&self, id: TenantId) -> Option<Mailbox> {
        self.tenants.get(&id).map(|e| e.actor.clone())
    }
}
