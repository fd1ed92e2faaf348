//! Tenant metadata and roles, read without going through any actor mailbox.
//!
//! Each entry remembers the write sequence that produced it; a reader waits
//! for that sequence before answering (at once when it is already durable),
//! so a tenant or role is never shown before it is on disk.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, PoisonError, RwLock};

use dashmap::DashMap;

use crate::domain::{Counts, Role, RoleId, RoleKind, Tenant, TenantId, TenantKind, UserId};
use crate::store::Seq;

use super::mailbox::Mailbox;
use super::published::{PublishedCounts, Snapshot};

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
    by_id: HashMap<RoleId, (Role, Seq)>,
    /// The active role of a user in a tenant (rule 6: at most one).
    active: HashMap<(UserId, TenantId), RoleId>,
    by_tenant: HashMap<TenantId, Vec<RoleId>>,
    by_user: HashMap<UserId, Vec<RoleId>>,
}

impl Roles {
    /// A role and the write that produced its current version.
    pub fn get(&self, id: RoleId) -> Option<&(Role, Seq)> {
        self.by_id.get(&id)
    }

    /// The write behind the user's active role in the tenant, if they hold one.
    pub fn active_seq(&self, user: &UserId, tenant: TenantId) -> Option<Seq> {
        let id = self.active.get(&(user.clone(), tenant))?;
        self.by_id.get(id).map(|(_, seq)| *seq)
    }

    /// Every role in a tenant, active or not, and the latest write among them.
    pub fn of_tenant(&self, tenant: TenantId) -> (Vec<Role>, Seq) {
        self.collect(self.by_tenant.get(&tenant).into_iter().flatten(), |_| true)
    }

    /// A page of a tenant's roles (active or not) in id order: the first
    /// `limit` with ids above `after`, whether more follow, and the latest
    /// write among them and the next one (which the "more" reveals).
    pub fn page_of_tenant(&self, tenant: TenantId, after: Option<RoleId>, limit: usize) -> (Vec<Role>, bool, Seq) {
        let ids = self.by_tenant.get(&tenant).map_or(&[][..], Vec::as_slice);
        // Ids are pushed in id order: grants take their id under the write
        // lock, and a start inserts the stored roles in key (id) order.
        let from = after.map_or(0, |a| ids.partition_point(|id| *id <= a));
        let rest = &ids[from..];
        let more = rest.len() > limit;
        let (roles, seq) = self.collect(rest.iter().take(limit), |_| true);
        let next = rest.get(limit).and_then(|id| self.by_id.get(id)).map_or(0, |(_, s)| *s);
        (roles, more, seq.max(next))
    }

    /// The active roles held in any of `tenants`, and the latest write among them.
    pub fn active_in(&self, tenants: &[TenantId]) -> (Vec<Role>, Seq) {
        let ids = tenants.iter().filter_map(|t| self.by_tenant.get(t)).flatten();
        self.collect(ids, |r| r.is_active)
    }

    /// A user's active roles, and the latest write among them.
    pub fn active_of_user(&self, user: &UserId) -> (Vec<Role>, Seq) {
        self.collect(self.by_user.get(user).into_iter().flatten(), |r| r.is_active)
    }

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
    fn collect<'a>(&self, ids: impl IntoIterator<Item = &'a RoleId>, keep: impl Fn(&Role) -> bool) -> (Vec<Role>, Seq) {
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

/// Every tenant and every role, and the only code that touches their maps.
#[derive(Default)]
pub struct Directory {
    /// Sharded map: lookups from many request tasks do not contend.
    tenants: DashMap<TenantId, TenantEntry>,
    /// Every district's id, in order: the district listing's pages. A std
    /// lock, held for an insert or one page's range, never across an await.
    districts: RwLock<BTreeSet<TenantId>>,
    /// Written rarely (role grants), read on every role listing. A std lock:
    /// never held across an await.
    roles: RwLock<Roles>,
}

impl Directory {
    /// Enters a tenant (and lists a school under its district).
    pub fn register(&self, entry: TenantEntry) {
        let (id, parent) = (entry.tenant.id, entry.tenant.parent_id);
        let district = entry.tenant.kind == TenantKind::District;
        self.tenants.insert(id, entry);
        // After the entry: a district listing never meets an id it cannot show.
        if district {
            self.districts
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(id);
        }
        if let Some(mut district) = parent.and_then(|p| self.tenants.get_mut(&p)) {
            district.children.push(id);
        }
    }

    /// The roles read back on start.
    pub fn restore_roles(&self, roles: Vec<Role>) {
        let mut index = self.roles_write();
        for role in roles {
            index.insert(role, 0);
        }
    }

    pub fn contains(&self, id: TenantId) -> bool {
        self.tenants.contains_key(&id)
    }

    /// A district, its schools in creation order, and the write behind the
    /// district's current value; `None` for a school or an unknown id.
    pub fn district(&self, id: TenantId) -> Option<(Tenant, Vec<TenantId>, Seq)> {
        let entry = self.tenants.get(&id)?;
        (entry.tenant.kind == TenantKind::District).then(|| (entry.tenant.clone(), entry.children.clone(), entry.seq))
    }

    /// A tenant and its schools (a school: itself alone), e.g. the scope of
    /// a district's audit trail, stats and alerts.
    pub fn family(&self, id: TenantId) -> Vec<TenantId> {
        let mut family = vec![id];
        if let Some(entry) = self.tenants.get(&id) {
            family.extend(entry.children.iter().copied());
        }
        family
    }

    /// A tenant, its counters as its actor last published them, and the
    /// latest write either depends on.
    pub fn counts(&self, id: TenantId) -> Option<(Tenant, Counts, Seq)> {
        let entry = self.tenants.get(&id)?;
        let (counts, written) = entry.counts.get();
        Some((entry.tenant.clone(), counts, written.max(entry.seq)))
    }

    /// A tenant and its counters as they stand at `now` (see
    /// `PublishedCounts::at`), with the latest write they depend on.
    pub fn snapshot(&self, id: TenantId, now: crate::domain::Timestamp) -> Option<(Tenant, Snapshot)> {
        let entry = self.tenants.get(&id)?;
        let mut snapshot = entry.counts.at(now);
        snapshot.seq = snapshot.seq.max(entry.seq);
        Some((entry.tenant.clone(), snapshot))
    }

    /// Changes a tenant under its entry's shard lock, so that memory and disk
    /// see concurrent updates of one tenant in the same order. `change` gets
    /// the current value and returns the new one with the write that stored
    /// it (`None`: nothing to change). `None` if the tenant is unknown.
    pub fn update_tenant<E>(
        &self,
        id: TenantId,
        change: impl FnOnce(&Tenant) -> Result<Option<(Tenant, Seq)>, E>,
    ) -> Option<Result<(Tenant, Seq), E>> {
        let mut entry = self.tenants.get_mut(&id)?;
        Some(change(&entry.tenant).map(|changed| {
            if let Some((tenant, seq)) = changed {
                entry.tenant = tenant;
                entry.seq = seq;
            }
            (entry.tenant.clone(), entry.seq)
        }))
    }

    /// The first `n` district ids above `after`, in order.
    pub fn districts_after(&self, after: Option<TenantId>, n: usize) -> Vec<TenantId> {
        let districts = self.districts.read().unwrap_or_else(PoisonError::into_inner);
        let from = after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        districts
            .range((from, std::ops::Bound::Unbounded))
            .take(n)
            .copied()
            .collect()
    }

    /// Every tenant's id (in no particular order).
    pub fn tenant_ids(&self) -> Vec<TenantId> {
        self.tenants.iter().map(|e| *e.key()).collect()
    }

    /// Every tenant's actor.
    pub fn actors(&self) -> Vec<Mailbox> {
        self.tenants.iter().map(|e| e.actor.clone()).collect()
    }

    /// Messages waiting for (or being handled by) all actors.
    pub fn mailbox_depth(&self) -> usize {
        self.tenants.iter().map(|e| e.actor.depth()).sum()
    }

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
