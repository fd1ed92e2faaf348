use super::UserId;

/// An identified caller. `platform_admin` comes from configuration, not from
/// roles stored in any tenant.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: UserId,
    pub platform_admin: bool,
}
