//! What retention's purges left behind: each tenant's checkpoint (where its
//! purged trail ends, and the chain hash there) and role-purge mark. Every
//! reader of the trail consults them; only `retain` writes them.

use crate::domain::{Id, TenantId, Timestamp};

use super::records::{self, decode, key, Checkpoint, RolePurge};
use super::{unavailable, StoreError};

/// Whether a tenant's retention checkpoint covers the trail position (at, id).
pub fn covers(db: &sled::Db, tenant: TenantId, at: Timestamp, id: u64) -> Result<bool, StoreError> {
    Ok(checkpoint(db, tenant)?.is_some_and(|cp| cp.covers(at, id)))
}

/// The trail key of the last entry a tenant's retention purged: readers
/// start after it (keys it covers may outlive a crash until the next start).
pub fn purged_through(db: &sled::Db, tenant: TenantId) -> Result<Option<[u8; 25]>, StoreError> {
    Ok(checkpoint(db, tenant)?.map(|cp| records::trail_bound(tenant, cp.at, cp.audit_id)))
}

/// The checkpoint of a tenant's purged entries, if any were purged.
pub fn checkpoint(db: &sled::Db, tenant: TenantId) -> Result<Option<Checkpoint>, StoreError> {
    let k = key(records::CHECKPOINT, tenant.get());
    match db.get(k).map_err(unavailable)? {
        None => Ok(None),
        Some(v) => decode(&k, &v).map(Some).map_err(|e| StoreError::Internal(e.into())),
    }
}

/// Before when a tenant's role events were purged, if ever.
pub fn role_purge(db: &sled::Db, tenant: TenantId) -> Result<Option<Timestamp>, StoreError> {
    let k = key(records::ROLE_PURGE, tenant.get());
    match db.get(k).map_err(unavailable)? {
        None => Ok(None),
        Some(v) => decode::<RolePurge>(&k, &v)
            .map(|p| Some(p.before))
            .map_err(|e| StoreError::Internal(e.into())),
    }
}
