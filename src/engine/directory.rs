//! Tenant metadata and roles, read without going through any actor mailbox.
//!
//! Each entry remembers the write sequence that produced it; a reader waits
//! for that sequence before answering (at once when it is already durable),
//! so a tenant or role is never shown before it is on disk.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use dashmap::DashMap;

use crate::domain::{Role, RoleId, Tenant, TenantId, UserId};
use crate::store::Seq;

use super::mailbox::Mailbox;

pub struct TenantEntry {
    pub tenant: Tenant,
    /// The write that produced `tenant`'s current value.
    pub seq: Seq,
    /// A district's schools, in creation order (empty for a school).
    pub children: Vec<TenantId>,
    pub actor: Mailbox,
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

    pub fn actor(&self, id: TenantId) -> Option<Mailbox> {
        self.tenants.get(&id).map(|e| e.actor.clone())
    }
}
