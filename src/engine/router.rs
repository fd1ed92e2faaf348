//! Which tenant owns a seat id. Purchases take consecutive ids, so one entry
//! per purchase block (not per seat) answers every lookup by range.

use std::collections::BTreeMap;
use std::sync::{PoisonError, RwLock};

use crate::domain::{Id, SeatId, TenantId};

#[derive(Default)]
pub struct SeatRouter {
    /// first seat id → (one past the last seat id, owner). A std `RwLock`:
    /// held only for a map lookup or insert, never across an await.
    blocks: RwLock<BTreeMap<u64, (u64, TenantId)>>,
}

impl SeatRouter {
    pub fn insert(&self, first: SeatId, count: u64, tenant: TenantId) {
        let mut blocks = self.blocks.write().unwrap_or_else(PoisonError::into_inner);
        blocks.insert(first.get(), (first.get() + count, tenant));
    }

    pub fn tenant_of(&self, seat: SeatId) -> Option<TenantId> {
        let blocks = self.blocks.read().unwrap_or_else(PoisonError::into_inner);
        let (_, &(end, tenant)) = blocks.range(..=seat.get()).next_back()?;
        (seat.get() < end).then_some(tenant)
    }
}
