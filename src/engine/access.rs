//! Who may do what, decided from the in-memory directory only (never through
//! a tenant actor's mailbox, so authorization costs a few hash lookups).
//!
//! A role held in a district applies to all its schools; only active roles
//! count. A caller with no role anywhere in the tenant's district is told the
//! tenant does not exist (no enumeration); one with a role there that is not
//! enough gets 403 naming the role required.

use serde::Serialize;

use super::error::{Error, Missing};
use crate::domain::{Caller, RoleKind, TenantId, UserId};
use crate::store::Seq;

use super::directory::{Directory, Roles, Scope};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Read,
    ReadAudit,
    Allocate,
    Purchase,
    ManageTenant,
    ManageRoles,
}

impl Action {
    pub const ALL: [Action; 6] = [
        Action::Read,
        Action::ReadAudit,
        Action::Allocate,
        Action::Purchase,
        Action::ManageTenant,
        Action::ManageRoles,
    ];

    /// The least role that may perform the action (the matrix).
    fn least(self) -> RoleKind {
        match self {
            Action::Read => RoleKind::Teacher,
            Action::ReadAudit | Action::Allocate => RoleKind::Manager,
            Action::Purchase | Action::ManageTenant | Action::ManageRoles => RoleKind::Admin,
        }
    }
}

fn rank(role: RoleKind) -> u8 {
    match role {
        RoleKind::Learner => 0,
        RoleKind::Teacher => 1,
        RoleKind::Manager => 2,
        RoleKind::Admin => 3,
    }
}

fn name(role: RoleKind) -> &'static str {
    match role {
        RoleKind::Admin => "admin",
        RoleKind::Manager => "manager",
        RoleKind::Teacher => "teacher",
        RoleKind::Learner => "learner",
    }
}

/// The authorization policy. `enforce: false` is the old service's behaviour:
/// every identified caller may do everything.
pub struct Access {
    pub enforce: bool,
}

impl Access {
    /// Allows `action` on `tenant`, or says why not. `hidden` is what a caller
    /// with no role in the district is told is missing.
    ///
    /// The verdict comes with the sequence of the latest write it depended on
    /// (the tenant, its district, the caller's roles): the caller must wait
    /// for it, so a grant or deactivation still in flight is never acted on.
    pub fn check(
        &self,
        directory: &Directory,
        caller: &Caller,
        action: Action,
        tenant: TenantId,
        hidden: Missing,
    ) -> (Result<(), Error>, Seq) {
        let Some(Scope {
            district,
            seq: tenant_seq,
            ..
        }) = directory.scope(tenant)
        else {
            return (Err(Error::NotFound(hidden)), 0);
        };
        if !self.enforce || caller.platform_admin {
            return (Ok(()), tenant_seq);
        }
        // One read of the role index for the whole decision (every request
        // takes it, on every core).
        let roles = directory.roles_read();
        let seq = tenant_seq.max(roles.latest_for(&caller.user));
        let verdict = match role_in(&roles, &caller.user, tenant, district) {
            Some(role) if rank(role) >= rank(action.least()) => Ok(()),
            Some(_) => Err(Error::Forbidden(name(action.least()))),
            None if roles
                .active_tenants(&caller.user)
                .into_iter()
                .any(|t| directory.district_of(t) == Some(district)) =>
            {
                Err(Error::Forbidden(name(action.least())))
            }
            None => Err(Error::NotFound(hidden)),
        };
        (verdict, seq)
    }

    pub fn create_district(&self, caller: &Caller) -> Result<(), Error> {
        if self.enforce && !caller.platform_admin {
            return Err(Error::PlatformAdminOnly);
        }
        Ok(())
    }

    pub fn allows(&self, directory: &Directory, caller: &Caller, action: Action, tenant: TenantId) -> bool {
        self.check(directory, caller, action, tenant, Missing::Tenant).0.is_ok()
    }

    /// The actions a caller may perform on a tenant (for `GET /me`).
    pub fn actions(&self, directory: &Directory, caller: &Caller, tenant: TenantId) -> Vec<Action> {
        Action::ALL
            .into_iter()
            .filter(|a| self.allows(directory, caller, *a, tenant))
            .collect()
    }
}

/// The strongest active role the user holds in the tenant or in its district.
pub fn effective_role(directory: &Directory, user: &UserId, tenant: TenantId, district: TenantId) -> Option<RoleKind> {
    role_in(&directory.roles_read(), user, tenant, district)
}

fn role_in(roles: &Roles, user: &UserId, tenant: TenantId, district: TenantId) -> Option<RoleKind> {
    let held = |t: TenantId| roles.active_role(user, t);
    let here = held(tenant);
    let above = if district != tenant { held(district) } else { None };
    match (here, above) {
        (Some(a), Some(b)) => Some(if rank(a) >= rank(b) { a } else { b }),
        (a, b) => a.or(b),
    }
}
