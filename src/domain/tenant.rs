use serde::{Deserialize, Serialize};

use super::{EventId, Invalid, RoleId, TenantId, TenantName, Timestamp, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TenantKind {
    District,
    School,
}

/// A district or school. The hierarchy rule (districts are top level, schools
/// sit directly under a district) is enforced where tenants are created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tenant {
    pub id: TenantId,
    pub name: TenantName,
    pub kind: TenantKind,
    pub parent_id: Option<TenantId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub is_active: bool,
    /// The OneRoster `sourcedId` of the org this tenant is, once a roster
    /// import made or linked it (schools made by hand have none). Not part
    /// of the contract's Tenant object, and stored after it (`store::records`).
    #[serde(skip)]
    pub sourced_id: Option<String>,
}

/// The fields `PUT /tenant/{id}` may change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct TenantPatch {
    pub name: Option<TenantName>,
    pub is_active: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoleKind {
    Admin,
    Manager,
    Teacher,
    Learner,
}

impl RoleKind {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw {
            "admin" => Ok(RoleKind::Admin),
            "manager" => Ok(RoleKind::Manager),
            "teacher" => Ok(RoleKind::Teacher),
            "learner" => Ok(RoleKind::Learner),
            _ => Err(Invalid::new("role", "must be one of admin, manager, teacher, learner")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Role {
    pub id: RoleId,
    pub user_id: UserId,
    pub tenant_id: TenantId,
    pub role: RoleKind,
    pub created_at: Timestamp,
    pub is_active: bool,
    /// Additions to the old contract: who granted it, and who deactivated it when.
    pub granted_by: Option<UserId>,
    pub deactivated_at: Option<Timestamp>,
    pub deactivated_by: Option<UserId>,
    /// Granted by a roster import: the roster may take it away again; a
    /// role granted by hand it never touches. Not part of the contract's
    /// object, and stored after it (`store::records`).
    #[serde(skip)]
    pub roster: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoleChange {
    Granted,
    Deactivated,
}

/// One grant or deactivation, kept on disk for the trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RoleEvent {
    pub id: EventId,
    pub role_id: RoleId,
    pub user_id: UserId,
    pub tenant_id: TenantId,
    pub role: RoleKind,
    pub change: RoleChange,
    pub changed_by: UserId,
    pub created_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_the_four_lowercase_words_exactly() {
        for (raw, kind) in [
            ("admin", RoleKind::Admin),
            ("manager", RoleKind::Manager),
            ("teacher", RoleKind::Teacher),
            ("learner", RoleKind::Learner),
        ] {
            assert_eq!(RoleKind::parse(raw).ok(), Some(kind), "{raw:?}");
        }
        for raw in [
            "superuser",
            "ADMIN",
            "Admin",
            "admin ",
            " admin",
            "",
            "root",
            "learners",
            "teacher\u{0}",
        ] {
            assert_eq!(
                RoleKind::parse(raw).err().map(|e| e.to_string()).as_deref(),
                Some("role must be one of admin, manager, teacher, learner"),
                "{raw:?}"
            );
        }
    }
}
