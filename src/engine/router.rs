//! Which tenant owns a seat id. Purchases take consecutive ids, so one entry
//! per purchase block (not per seat) answers every lookup by range.

use std::collections::BTreeMap;
use std::sync::{PoisonError, RwLock};

use crate::domain::{Id, SeatId, TenantId};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moved_seat_splits_its_range() {
        let t = |n| TenantId::new(n).unwrap_or_else(|| unreachable!());
        let s = |n| SeatId::new(n).unwrap_or_else(|| unreachable!());
        let router = SeatRouter::default();
        router.insert(s(10), 5, t(1));
        router.set(s(12), t(2));
        router.set(s(10), t(3));
        router.set(s(14), t(2));
        let owners: Vec<Option<TenantId>> = (9..16).map(|n| router.tenant_of(s(n))).collect();
        assert_eq!(
            owners,
            [None, Some(t(3)), Some(t(1)), Some(t(2)), Some(t(1)), Some(t(2)), None]
        );
        // Neighbours of one owner join.
        router.set(s(13), t(2));
        router.set(s(11), t(2));
        assert_eq!(router.blocks.read().map(|b| b.len()).unwrap_or_default(), 2);
        let owners: Vec<Option<TenantId>> = (10..15).map(|n| router.tenant_of(s(n))).collect();
        assert_eq!(owners, [Some(t(3)), Some(t(2)), Some(t(2)), Some(t(2)), Some(t(2))]);
    }
}

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

    /// Makes `tenant` the owner of one seat of a range already entered (a
    /// transfer): the range is split around it.
    pub fn set(&self, seat: SeatId, tenant: TenantId) {
        let mut blocks = self.blocks.write().unwrap_or_else(PoisonError::into_inner);
        let s = seat.get();
        let Some((&first, &(end, owner))) = blocks.range(..=s).next_back() else {
            return;
        };
        if s >= end || owner == tenant {
            return;
        }
        if first < s {
            blocks.insert(first, (s, owner));
        } else {
            blocks.remove(&first);
        }
        if s + 1 < end {
            blocks.insert(s + 1, (end, owner));
        }
        // Joined with neighbours of the same owner: a transfer of thousands
        // of consecutive seats stays one entry.
        let (mut from, mut to) = (s, s + 1);
        if let Some((&p, &(p_end, p_owner))) = blocks.range(..s).next_back() {
            if p_end == s && p_owner == tenant {
                from = p;
            }
        }
        if let Some(&(n_end, n_owner)) = blocks.get(&(s + 1)) {
            if n_owner == tenant {
                blocks.remove(&(s + 1));
                to = n_end;
            }
        }
        blocks.insert(from, (to, tenant));
    }

    pub fn tenant_of(&self, seat: SeatId) -> Option<TenantId> {
        let blocks = self.blocks.read().unwrap_or_else(PoisonError::into_inner);
        let (_, &(end, tenant)) = blocks.range(..=seat.get()).next_back()?;
        (seat.get() < end).then_some(tenant)
    }
}
