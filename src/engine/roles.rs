//! User roles per tenant, the role trail, and the caller's own view (`/me`).
//! Roles live in the directory's index: a grant or deactivation holds its
//! write lock for one small store write, never across the flush.

use serde::Serialize;

use crate::domain::{Caller, Role, RoleChange, RoleEvent, RoleId, RoleKind, TenantId, TenantKind, Timestamp, UserId};
use crate::store::IdSpace;

use super::access;
use super::answers::{answer, Keyed};
use super::durable::Durable;
use super::error::{Error, Missing};
use super::{Action, Engine};

/// `GET /me`: who the caller is and what they may do where.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    pub user_id: UserId,
    pub platform_admin: bool,
    pub enforce_roles: bool,
    pub roles: Vec<Role>,
    /// Tenants where the caller holds a role, and the schools of such districts.
    /// A platform admin may act everywhere; their list shows only their own roles.
    pub tenants: Vec<Reach>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Reach {
    pub tenant_id: TenantId,
    pub name: String,
    pub kind: TenantKind,
    /// The strongest role in effect here (held here or in the district).
    pub role: Option<RoleKind>,
    pub actions: Vec<Action>,
}

impl Engine {
    pub async fn assign_role(
        &self,
        caller: &Caller,
        user: UserId,
        tenant: TenantId,
        kind: RoleKind,
        keyed: Option<Keyed<Role>>,
    ) -> Result<Durable<Role>, Error> {
        self.check(caller, Action::ManageRoles, tenant, Missing::Tenant).await?;
        self.writable(tenant).await?;
        self.grant_role(caller, user, tenant, kind, false, keyed)
    }

    /// Grants a role, once the caller may and the tenant is writable;
    /// `roster`: a roster import grants it (and may take it away again).
    pub(super) fn grant_role(
        &self,
        caller: &Caller,
        user: UserId,
        tenant: TenantId,
        kind: RoleKind,
        roster: bool,
        keyed: Option<Keyed<Role>>,
    ) -> Result<Durable<Role>, Error> {
        // The write lock makes check-then-insert atomic (rule 6).
        let mut roles = self.directory.roles_write();
        if let Some(seq) = roles.active_seq(&user, tenant) {
            // A refusal that depends on a grant still in flight waits for it too.
            return Ok(Durable::after(seq, Err(Error::RoleExists)));
        }
        let now = Timestamp::now();
        let role = Role {
            id: self.new_id(IdSpace::Role)?,
            user_id: user,
            tenant_id: tenant,
            role: kind,
            created_at: now,
            is_active: true,
            granted_by: Some(caller.user.clone()),
            deactivated_at: None,
            deactivated_by: None,
            roster,
        };
        let seq = self.store.put_role(
            &role,
            &self.role_event(&role, RoleChange::Granted, caller, now)?,
            answer(keyed, &role).as_ref(),
        )?;
        roles.insert(role.clone(), seq);
        Ok(Durable::after(seq, Ok(role)))
    }

    /// Sets a role inactive, keeping it (and the user may be granted a role
    /// in the tenant again).
    pub async fn deactivate_role(
        &self,
        caller: &Caller,
        id: RoleId,
        keyed: Option<Keyed<Role>>,
    ) -> Result<Durable<Role>, Error> {
        let tenant = self
            .directory
            .roles_read()
            .get(id)
            .map(|(role, _)| role.tenant_id)
            .ok_or(Error::NotFound(Missing::Role))?;
        self.check(caller, Action::ManageRoles, tenant, Missing::Role).await?;
        // No `writable` check: taking access away must work in an inactive
        // tenant too (or an admin there could make her own role unrevocable
        // by deactivating the tenant).
        self.end_role(caller, id, keyed)
    }

    /// Deactivates a role, once the caller may.
    pub(super) fn end_role(
        &self,
        caller: &Caller,
        id: RoleId,
        keyed: Option<Keyed<Role>>,
    ) -> Result<Durable<Role>, Error> {
        let mut roles = self.directory.roles_write();
        let (current, seq) = roles.get(id).cloned().ok_or(Error::NotFound(Missing::Role))?;
        if !current.is_active {
            return Ok(Durable::after(seq, Err(Error::RoleInactive)));
        }
        let now = Timestamp::now();
        let role = Role {
            is_active: false,
            deactivated_at: Some(now),
            deactivated_by: Some(caller.user.clone()),
            ..current
        };
        let seq = self.store.put_role(
            &role,
            &self.role_event(&role, RoleChange::Deactivated, caller, now)?,
            answer(keyed, &role).as_ref(),
        )?;
        roles.update(role.clone(), seq);
        Ok(Durable::after(seq, Ok(role)))
    }

    fn role_event(&self, role: &Role, change: RoleChange, caller: &Caller, at: Timestamp) -> Result<RoleEvent, Error> {
        Ok(RoleEvent {
            id: self.new_id(IdSpace::RoleEvent)?,
            role_id: role.id,
            user_id: role.user_id.clone(),
            tenant_id: role.tenant_id,
            role: role.role,
            change,
            changed_by: caller.user.clone(),
            created_at: at,
        })
    }

    /// Every role in a tenant, active or not.
    pub async fn tenant_roles(&self, caller: &Caller, tenant: TenantId) -> Result<Durable<Vec<Role>>, Error> {
        self.may_list_roles(caller, tenant).await?;
        let (roles, seq) = self.directory.roles_read().of_tenant(tenant);
        Ok(Durable::after(seq, Ok(roles)))
    }

    /// Whether the caller may list a tenant's roles (whole or in pages).
    pub(super) async fn may_list_roles(&self, caller: &Caller, tenant: TenantId) -> Result<(), Error> {
        // The old service listed an unknown tenant as empty; keep that where
        // no one is being kept out.
        let open = !self.access.enforce || caller.platform_admin;
        if !open || self.directory.contains(tenant) {
            self.check(caller, Action::Read, tenant, Missing::Tenant).await?;
        }
        Ok(())
    }

    /// A tenant's role grants and deactivations, oldest first (admins in scope).
    pub async fn role_events(&self, caller: &Caller, tenant: TenantId) -> Result<Durable<Vec<RoleEvent>>, Error> {
        self.check(caller, Action::ManageRoles, tenant, Missing::Tenant).await?;
        let events = self.store.role_events(tenant)?;
        Ok(self.scanned(events))
    }

    /// A user's active roles: all of them for the user themself, otherwise
    /// only those in tenants the caller administers.
    pub async fn user_roles(&self, caller: &Caller, user: &UserId) -> Result<Durable<Vec<Role>>, Error> {
        let everything = !self.access.enforce || caller.platform_admin || caller.user == *user;
        let (roles, seq) = self.directory.roles_read().active_of_user(user);
        let roles = if everything {
            roles
        } else {
            roles
                .into_iter()
                .filter(|r| {
                    self.access
                        .allows(&self.directory, caller, Action::ManageRoles, r.tenant_id)
                })
                .collect()
        };
        Ok(Durable::after(seq, Ok(roles)))
    }

    /// The caller, their active roles, and what they may do in each tenant in reach.
    pub async fn me(&self, caller: &Caller) -> Result<Durable<Me>, Error> {
        let (roles, seq) = self.directory.roles_read().active_of_user(&caller.user);
        let mut reach: Vec<TenantId> = roles.iter().flat_map(|r| self.directory.family(r.tenant_id)).collect();
        reach.sort_unstable();
        reach.dedup();
        let tenants = reach
            .into_iter()
            .filter_map(|id| {
                let (tenant, _) = self.directory.tenant(id)?;
                let district = self.directory.district_of(id)?;
                Some(Reach {
                    tenant_id: id,
                    name: tenant.name.as_str().to_owned(),
                    kind: tenant.kind,
                    role: access::effective_role(&self.directory, &caller.user, id, district),
                    actions: self.access.actions(&self.directory, caller, id),
                })
            })
            .collect();
        Ok(Durable::after(
            seq,
            Ok(Me {
                user_id: caller.user.clone(),
                platform_admin: caller.platform_admin,
                enforce_roles: self.access.enforce,
                roles,
                tenants,
            }),
        ))
    }
}
