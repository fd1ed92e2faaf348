//! Pages of a tenant's role trail (`GET /roles/events` with `limit` or
//! `cursor`): one key range from the cursor, so a page reads what it shows.

use crate::domain::{EventId, Id, RoleEvent, TenantId};

use super::records::{self, decode, key};
use super::{marks, unavailable, Store, StoreError};

impl Store {
    /// A tenant's first `limit` role events with ids above `after`, oldest
    /// first (the order `role_events` lists them in), and whether more follow.
    pub fn role_events_page(
        &self,
        tenant: TenantId,
        after: Option<EventId>,
        limit: usize,
    ) -> Result<(Vec<RoleEvent>, bool), StoreError> {
        // Events a purge covers may be there while it runs.
        let purged = marks::role_purge(&self.db, tenant)?;
        let start = match after {
            Some(a) => match a.get().checked_add(1).and_then(EventId::new) {
                Some(next) => records::role_event_key(tenant, next).to_vec(),
                None => return Ok((Vec::new(), false)),
            },
            None => key(records::ROLE_EVENT, tenant.get()).to_vec(),
        };
        let mut events = Vec::with_capacity(limit.min(1024));
        for item in self.db.range(start..).take_while(|item| {
            item.as_ref()
                .map_or(true, |(k, _)| k.starts_with(&key(records::ROLE_EVENT, tenant.get())))
        }) {
            let (k, v) = item.map_err(unavailable)?;
            let event: RoleEvent = decode(&k, &v).map_err(|e| StoreError::Internal(e.into()))?;
            if purged.is_some_and(|before| event.created_at < before) {
                continue;
            }
            if events.len() == limit {
                return Ok((events, true));
            }
            events.push(event);
        }
        Ok((events, false))
    }
}
