//! A tenant's seat pool: plain data and synchronous rules, no I/O.
//!
//! Operations come in two steps so that memory never runs ahead of disk:
//! `allocate`/`reclaim` check the rules and return the `SeatChange` they would
//! make without touching the pool; the actor writes the change to the store and
//! only then calls `apply`. `set` is the one place a seat's state changes.

use std::collections::HashMap;

use crate::domain::{BlockRecord, Counts, Id, LearnerId, Seat, SeatId, SeatRecord, SeatState, TenantId, Timestamp};

use super::error::{Error, Missing};

use super::learners::{LearnerIndex, Position};

/// The most seats one pool holds: the learner index names a seat by its
/// `Position`, 4 bytes (all of US K-12 is about 50 million learners).
pub const MAX_SEATS: u64 = Position::MAX as u64 + 1;

/// A seat's state with the time it was reserved or assigned: the time lives
/// in the state it belongs to, so the two cannot disagree, and one 16-byte
/// field keeps a slot (with its inline learner id) at 48 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    Free,
    Reserved(Timestamp),
    Assigned(Timestamp),
}

impl Hold {
    pub fn state(self) -> SeatState {
        match self {
            Hold::Free => SeatState::Free,
            Hold::Reserved(_) => SeatState::Reserved,
            Hold::Assigned(_) => SeatState::Assigned,
        }
    }
}

/// One seat's mutable state. Identity (id, tenant, created_at) lives in its block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub hold: Hold,
    pub learner: Option<LearnerId>,
    pub updated_at: Timestamp,
}

impl Slot {
    pub fn state(&self) -> SeatState {
        self.hold.state()
    }

    pub fn reserved_at(&self) -> Option<Timestamp> {
        match self.hold {
            Hold::Reserved(at) => Some(at),
            _ => None,
        }
    }

    pub fn assigned_at(&self) -> Option<Timestamp> {
        match self.hold {
            Hold::Assigned(at) => Some(at),
            _ => None,
        }
    }

    fn free(at: Timestamp) -> Self {
        Slot {
            hold: Hold::Free,
            learner: None,
            updated_at: at,
        }
    }
}

/// A checked, not yet applied, change of one seat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatChange {
    pub seat: SeatId,
    pub before: Slot,
    pub after: Slot,
}

/// The seats of one purchase: consecutive ids, so a seat is found by binary
/// search over blocks and an index into `slots` (no per-seat map entry).
#[derive(Debug)]
struct Block {
    record: BlockRecord,
    /// The `Position` of its first seat: the seats of the blocks before it.
    base: u64,
    slots: Vec<Slot>,
}

#[derive(Debug)]
pub struct SeatPool {
    tenant: TenantId,
    /// Sorted by first seat id (ids only grow, so pushing keeps the order).
    blocks: Vec<Block>,
    /// Who holds a non-free seat here: rule 1 (one seat per learner per tenant).
    learners: LearnerIndex,
    /// Kept in step with every `set`, so a summary never scans seats.
    counts: Counts,
}

impl SeatPool {
    pub fn new(tenant: TenantId) -> Self {
        SeatPool {
            tenant,
            blocks: Vec::new(),
            learners: LearnerIndex::default(),
            counts: Counts::default(),
        }
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Whether `count` more seats fit in the pool (`MAX_SEATS`); a purchase
    /// that does not fit is refused before anything is written.
    pub fn room_for(&self, count: u64) -> Result<(), Error> {
        if self.counts.total().saturating_add(count) > MAX_SEATS {
            return Err(Error::Invalid(format!(
                "count would take the tenant past {MAX_SEATS} seats, the most one tenant holds"
            )));
        }
        Ok(())
    }

    /// Adds a purchased block: `count` free seats (checked by `room_for`).
    pub fn add_block(&mut self, record: BlockRecord) {
        debug_assert!(self
            .blocks
            .last()
            .is_none_or(|b| b.record.first_seat < record.first_seat));
        let slots = vec![Slot::free(record.created_at); record.count as usize];
        let base = self.counts.total();
        self.counts.free += record.count;
        self.blocks.push(Block { record, base, slots });
    }

    pub fn seat(&self, id: SeatId) -> Option<Seat> {
        let (block, index) = self.locate(id)?;
        let b = &self.blocks[block];
        Some(view(self.tenant, id, &b.record, &b.slots[index]))
    }

    /// The seats of the block starting at `first`, as the contract shows them.
    pub fn block_seats(&self, first: SeatId) -> Vec<Seat> {
        let Some((block, _)) = self.locate(first) else {
            return Vec::new();
        };
        let b = &self.blocks[block];
        b.slots
            .iter()
            .enumerate()
            .map(|(i, slot)| view(self.tenant, first.offset(i as u64), &b.record, slot))
            .collect()
    }

    /// The purchase record a seat came from (its purchase audit entry is derived from it).
    pub fn block_of(&self, id: SeatId) -> Option<&BlockRecord> {
        self.locate(id).map(|(block, _)| &self.blocks[block].record)
    }

    pub fn allocate(&self, seat: SeatId, learner: LearnerId, at: Timestamp) -> Result<SeatChange, Error> {
        let before = self.slot(seat)?;
        if before.state() != SeatState::Free {
            return Err(Error::SeatUnavailable(before.state()));
        }
        if self.learners.get(&learner, |p| learner_at(&self.blocks, p)).is_some() {
            return Err(Error::LearnerHasSeat);
        }
        let after = Slot {
            hold: Hold::Assigned(at),
            learner: Some(learner),
            updated_at: at,
        };
        Ok(SeatChange {
            seat,
            before: before.clone(),
            after,
        })
    }

    pub fn reclaim(&self, seat: SeatId, at: Timestamp) -> Result<SeatChange, Error> {
        let before = self.slot(seat)?;
        if before.state() == SeatState::Free {
            return Err(Error::SeatAlreadyFree);
        }
        Ok(SeatChange {
            seat,
            before: before.clone(),
            after: Slot::free(at),
        })
    }

    /// Makes a change that the store has accepted.
    pub fn apply(&mut self, change: SeatChange) {
        self.set(change.seat, change.after);
    }

    /// Makes room in the learner index for `n` more learners.
    pub fn reserve_learners(&mut self, n: usize) {
        let blocks = &self.blocks;
        self.learners.reserve(n, |p| learner_at(blocks, p));
    }

    /// Restores a seat's stored state on start.
    pub fn restore(&mut self, seat: SeatId, record: SeatRecord) {
        // A held seat's record always has its time; were one missing, the
        // seat's last change is the best estimate of when it was taken.
        let slot = Slot {
            hold: match record.state {
                SeatState::Free => Hold::Free,
                SeatState::Reserved => Hold::Reserved(record.reserved_at.unwrap_or(record.updated_at)),
                SeatState::Assigned => Hold::Assigned(record.assigned_at.unwrap_or(record.updated_at)),
            },
            learner: record.learner_id,
            updated_at: record.updated_at,
        };
        self.set(seat, slot);
    }

    /// What the store keeps of a seat's state after a change.
    pub fn record(&self, slot: &Slot) -> SeatRecord {
        SeatRecord {
            tenant_id: self.tenant,
            state: slot.state(),
            learner_id: slot.learner.clone(),
            reserved_at: slot.reserved_at(),
            assigned_at: slot.assigned_at(),
            updated_at: slot.updated_at,
        }
    }

    pub fn view_after(&self, change: &SeatChange) -> Option<Seat> {
        let (block, _) = self.locate(change.seat)?;
        Some(view(
            self.tenant,
            change.seat,
            &self.blocks[block].record,
            &change.after,
        ))
    }

    /// The one place a seat's state changes: slot, counters and learner index together.
    fn set(&mut self, seat: SeatId, slot: Slot) {
        let Some((block, index)) = self.locate(seat) else {
            return;
        };
        let position = position(&self.blocks[block], index);
        let old = std::mem::replace(&mut self.blocks[block].slots[index], slot);
        let new = &self.blocks[block].slots[index];
        *self.counts.of_mut(old.state()) -= 1;
        *self.counts.of_mut(new.state()) += 1;
        // Slot first, then the index: it finds learners through the slots.
        if let Some(l) = &old.learner {
            self.learners.remove(l, position);
        }
        if let Some(l) = &new.learner {
            let blocks = &self.blocks;
            self.learners.insert(l, position, |p| learner_at(blocks, p));
        }
    }

    /// Checks what `set` keeps in step, by brute force: counters equal a count
    /// of the slots, and the learner index holds exactly the learners of the
    /// non-free seats, each once (rule 1). O(seats): for tests and debugging.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut counted = Counts::default();
        let mut holders: HashMap<&LearnerId, SeatId> = HashMap::new();
        for block in &self.blocks {
            for (i, slot) in block.slots.iter().enumerate() {
                let id = block.record.first_seat.offset(i as u64);
                *counted.of_mut(slot.state()) += 1;
                match (&slot.learner, slot.state()) {
                    (None, SeatState::Free) => {}
                    (Some(l), SeatState::Reserved | SeatState::Assigned) => {
                        if let Some(other) = holders.insert(l, id) {
                            return Err(format!("learner {l:?} holds seats {other} and {id}"));
                        }
                    }
                    (learner, state) => return Err(format!("seat {id} is {state} with learner {learner:?}")),
                }
            }
        }
        if counted != self.counts {
            return Err(format!("counters {:?} but the slots count {counted:?}", self.counts));
        }
        let mut indexed: HashMap<&LearnerId, SeatId> = HashMap::new();
        for p in self.learners.seats() {
            let (block, index) =
                at(&self.blocks, p).ok_or_else(|| format!("position {p} is indexed but is no seat"))?;
            let seat = self.blocks[block].record.first_seat.offset(index as u64);
            let l = learner_at(&self.blocks, p).ok_or_else(|| format!("seat {seat} is indexed but has no learner"))?;
            if self.learners.get(l, |p| learner_at(&self.blocks, p)) != Some(p) {
                return Err(format!("learner {l:?} of seat {seat} is not found through the index"));
            }
            indexed.insert(l, seat);
        }
        if indexed != holders {
            return Err(format!("learner index {indexed:?} but the seats say {holders:?}"));
        }
        Ok(())
    }

    fn slot(&self, seat: SeatId) -> Result<&Slot, Error> {
        self.locate(seat)
            .map(|(block, index)| &self.blocks[block].slots[index])
            .ok_or(Error::NotFound(Missing::Seat))
    }

    fn locate(&self, seat: SeatId) -> Option<(usize, usize)> {
        locate(&self.blocks, seat)
    }
}

/// Which block holds `seat`, and where in it.
fn locate(blocks: &[Block], seat: SeatId) -> Option<(usize, usize)> {
    let block = blocks.partition_point(|b| b.record.first_seat <= seat).checked_sub(1)?;
    let record = &blocks[block].record;
    record
        .contains(seat)
        .then(|| (block, (seat.get() - record.first_seat.get()) as usize))
}

/// The `Position` of a block's `index`th seat. Every block is checked by
/// `room_for` before it is added (a purchase, or a block read back on start),
/// so every position is in range and the cast cannot truncate.
fn position(block: &Block, index: usize) -> Position {
    let p = block.base + index as u64;
    debug_assert!(p < MAX_SEATS, "position {p} past MAX_SEATS");
    p as Position
}

/// Which block holds the seat at `position`, and where in it.
fn at(blocks: &[Block], position: Position) -> Option<(usize, usize)> {
    let p = u64::from(position);
    let block = blocks.partition_point(|b| b.base <= p).checked_sub(1)?;
    let index = (p - blocks[block].base) as usize;
    (index < blocks[block].slots.len()).then_some((block, index))
}

/// The learner the slot at `position` holds: what the learner index reads.
fn learner_at(blocks: &[Block], position: Position) -> Option<&LearnerId> {
    let (block, index) = at(blocks, position)?;
    blocks[block].slots[index].learner.as_ref()
}

fn view(tenant: TenantId, id: SeatId, block: &BlockRecord, slot: &Slot) -> Seat {
    Seat {
        id,
        tenant_id: tenant,
        state: slot.state(),
        learner_id: slot.learner.clone(),
        reserved_at: slot.reserved_at(),
        assigned_at: slot.assigned_at(),
        created_at: block.created_at,
        updated_at: slot.updated_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AuditId, UserId};

    fn id<T: Id>(n: u64) -> T {
        T::new(n).unwrap_or_else(|| unreachable!())
    }

    fn learner(s: &str) -> LearnerId {
        LearnerId::parse(s).unwrap_or_else(|_| unreachable!())
    }

    fn pool_with(first: u64, count: u64) -> SeatPool {
        let mut pool = SeatPool::new(id(1));
        pool.add_block(BlockRecord {
            tenant_id: id(1),
            first_seat: id(first),
            count,
            first_audit: id::<AuditId>(1),
            created_at: Timestamp::from_micros(1),
            changed_by: UserId::parse("admin").unwrap_or_else(|_| unreachable!()),
        });
        pool
    }

    fn at(n: i64) -> Timestamp {
        Timestamp::from_micros(n)
    }

    #[test]
    fn a_slot_is_48_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 48);
    }

    #[test]
    fn free_to_assigned_to_free() {
        let mut pool = pool_with(10, 5);
        let change = pool
            .allocate(id(12), learner("l1"), at(2))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            pool.counts(),
            Counts {
                free: 5,
                reserved: 0,
                assigned: 0
            },
            "checking changes nothing"
        );
        pool.apply(change);
        assert_eq!(
            pool.counts(),
            Counts {
                free: 4,
                reserved: 0,
                assigned: 1
            }
        );
        let seat = pool.seat(id(12)).unwrap_or_else(|| unreachable!());
        assert_eq!((seat.state, seat.assigned_at), (SeatState::Assigned, Some(at(2))));

        let change = pool.reclaim(id(12), at(3)).unwrap_or_else(|e| panic!("{e}"));
        pool.apply(change);
        let seat = pool.seat(id(12)).unwrap_or_else(|| unreachable!());
        assert_eq!(
            (seat.state, seat.learner_id, seat.assigned_at),
            (SeatState::Free, None, None)
        );
        assert_eq!(
            pool.counts(),
            Counts {
                free: 5,
                reserved: 0,
                assigned: 0
            }
        );
        // The learner may take a seat again once theirs is reclaimed.
        assert!(pool.allocate(id(13), learner("l1"), at(4)).is_ok());
    }

    #[test]
    fn rules_refuse_without_changing_anything() {
        let mut pool = pool_with(1, 3);
        let change = pool
            .allocate(id(1), learner("l1"), at(2))
            .unwrap_or_else(|e| panic!("{e}"));
        pool.apply(change);
        let before = pool.counts();
        assert!(matches!(
            pool.allocate(id(1), learner("l2"), at(3)),
            Err(Error::SeatUnavailable(SeatState::Assigned))
        ));
        assert!(matches!(
            pool.allocate(id(2), learner("l1"), at(3)),
            Err(Error::LearnerHasSeat)
        ));
        assert!(matches!(pool.reclaim(id(2), at(3)), Err(Error::SeatAlreadyFree)));
        assert!(matches!(
            pool.allocate(id(4), learner("l3"), at(3)),
            Err(Error::NotFound(Missing::Seat))
        ));
        assert!(matches!(
            pool.reclaim(id(0xFFFF), at(3)),
            Err(Error::NotFound(Missing::Seat))
        ));
        assert_eq!(pool.counts(), before);
    }

    #[test]
    fn seats_are_found_across_blocks_with_gaps() {
        let mut pool = pool_with(5, 2);
        pool.add_block(BlockRecord {
            tenant_id: id(1),
            first_seat: id(100),
            count: 3,
            first_audit: id::<AuditId>(50),
            created_at: at(9),
            changed_by: UserId::parse("a").unwrap_or_else(|_| unreachable!()),
        });
        for present in [5, 6, 100, 101, 102] {
            assert!(pool.seat(id(present)).is_some(), "{present}");
        }
        for absent in [1, 4, 7, 99, 103] {
            assert!(pool.seat(id(absent)).is_none(), "{absent}");
        }
        assert_eq!(pool.seat(id(101)).map(|s| s.created_at), Some(at(9)));
        assert_eq!(pool.block_seats(id(100)).len(), 3);
        assert_eq!(pool.counts().total(), 5);
    }

    #[test]
    fn a_purchase_past_the_most_seats_a_pool_holds_is_refused() {
        let mut pool = pool_with(1, 4);
        // Four billion slots are not needed to test the bound: it is on the counters.
        pool.counts = Counts {
            free: MAX_SEATS - 6,
            reserved: 2,
            assigned: 2,
        };
        assert!(pool.room_for(2).is_ok());
        assert!(matches!(pool.room_for(3), Err(Error::Invalid(_))));
        assert!(matches!(pool.room_for(u64::MAX), Err(Error::Invalid(_))));
    }

    #[test]
    fn restore_rebuilds_index_and_counters() {
        let pool = pool_with(1, 4);
        let change = pool
            .allocate(id(3), learner("l9"), at(2))
            .unwrap_or_else(|e| panic!("{e}"));
        let record = pool.record(&change.after);
        let mut fresh = pool_with(1, 4);
        fresh.restore(id(3), record);
        assert_eq!(
            fresh.counts(),
            Counts {
                free: 3,
                reserved: 0,
                assigned: 1
            }
        );
        assert!(matches!(
            fresh.allocate(id(1), learner("l9"), at(3)),
            Err(Error::LearnerHasSeat)
        ));
    }
}

/// Model-based property tests: random sequences of purchases, allocations,
/// reclaims, checks that are never applied, and restarts (rebuilding the pool
/// from what the store would hold), run against a plain map of seat → holder.
/// After every step the pool must agree with the model seat by seat, and its
/// own invariants must hold.
#[cfg(test)]
mod model {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::domain::{AuditId, UserId};

    #[derive(Debug, Clone)]
    enum Op {
        /// Buy `count` seats, leaving `gap` unused ids first (ids are leased).
        Buy {
            count: u64,
            gap: u64,
        },
        Allocate {
            seat: u64,
            learner: u8,
        },
        Reclaim {
            seat: u64,
        },
        /// Check an allocation and drop it unapplied (a failed store write).
        AllocateUnapplied {
            seat: u64,
            learner: u8,
        },
        /// Rebuild the pool from its block and seat records (a restart).
        Restart,
    }

    fn op() -> impl Strategy<Value = Op> {
        // Seat picks run a little past the ids in use, so absent seats are tried too.
        prop_oneof![
            1 => (1..6u64, 0..3u64).prop_map(|(count, gap)| Op::Buy { count, gap }),
            6 => (1..40u64, 0..10u8).prop_map(|(seat, learner)| Op::Allocate { seat, learner }),
            4 => (1..40u64).prop_map(|seat| Op::Reclaim { seat }),
            1 => (1..40u64, 0..10u8).prop_map(|(seat, learner)| Op::AllocateUnapplied { seat, learner }),
            1 => Just(Op::Restart),
        ]
    }

    /// The reference: which seats exist and who holds each (None: free).
    #[derive(Default)]
    struct Model {
        seats: BTreeMap<u64, Option<String>>,
        next_id: u64,
    }

    impl Model {
        fn holds(&self, learner: &str) -> bool {
            self.seats.values().any(|h| h.as_deref() == Some(learner))
        }
    }

    fn id<T: Id>(n: u64) -> T {
        T::new(n).unwrap_or_else(|| unreachable!("ids in the model start at 1"))
    }

    fn name(learner: u8) -> String {
        format!("learner-{learner}")
    }

    /// What the store would hold: every block, and each changed seat's latest record.
    #[derive(Default)]
    struct Disk {
        blocks: Vec<BlockRecord>,
        seats: BTreeMap<u64, SeatRecord>,
    }

    fn agree(pool: &SeatPool, model: &Model) -> Result<(), TestCaseError> {
        pool.check_invariants().map_err(TestCaseError::fail)?;
        let mut counts = Counts::default();
        for (&seat, holder) in &model.seats {
            let view = pool.seat(id(seat));
            let view = view.ok_or_else(|| TestCaseError::fail(format!("seat {seat} missing")))?;
            let expected = if holder.is_some() {
                SeatState::Assigned
            } else {
                SeatState::Free
            };
            prop_assert_eq!(view.state, expected, "seat {}", seat);
            prop_assert_eq!(view.learner_id.as_ref().map(|l| l.as_str()), holder.as_deref());
            prop_assert_eq!(view.assigned_at.is_some(), holder.is_some());
            prop_assert!(view.reserved_at.is_none());
            *counts.of_mut(expected) += 1;
        }
        prop_assert_eq!(pool.counts(), counts);
        for absent in (1..model.next_id + 3).filter(|s| !model.seats.contains_key(s)) {
            prop_assert!(pool.seat(id(absent)).is_none(), "seat {} should not exist", absent);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn the_pool_behaves_like_the_model(ops in proptest::collection::vec(op(), 1..80)) {
            let tenant = id::<TenantId>(1);
            let mut pool = SeatPool::new(tenant);
            let mut model = Model { next_id: 1, ..Model::default() };
            let mut disk = Disk::default();
            let mut clock = 0i64;
            for op in ops {
                clock += 1;
                let at = Timestamp::from_micros(clock);
                match op {
                    Op::Buy { count, gap } => {
                        let first = model.next_id + gap;
                        let block = BlockRecord {
                            tenant_id: tenant,
                            first_seat: id(first),
                            count,
                            first_audit: id::<AuditId>(first),
                            created_at: at,
                            changed_by: UserId::parse("admin").map_err(|e| TestCaseError::fail(e.to_string()))?,
                        };
                        disk.blocks.push(block.clone());
                        pool.add_block(block);
                        for s in first..first + count {
                            model.seats.insert(s, None);
                        }
                        model.next_id = first + count;
                    }
                    Op::Allocate { seat, learner } => {
                        let l = LearnerId::parse(&name(learner)).map_err(|e| TestCaseError::fail(e.to_string()))?;
                        let got = pool.allocate(id(seat), l, at);
                        match (model.seats.get(&seat), got) {
                            (None, Err(Error::NotFound(Missing::Seat))) => {}
                            (Some(Some(_)), Err(Error::SeatUnavailable(SeatState::Assigned))) => {}
                            (Some(None), Err(Error::LearnerHasSeat)) => prop_assert!(model.holds(&name(learner))),
                            (Some(None), Ok(change)) => {
                                prop_assert!(!model.holds(&name(learner)), "learner {} got a second seat", learner);
                                disk.seats.insert(seat, pool.record(&change.after));
                                pool.apply(change);
                                model.seats.insert(seat, Some(name(learner)));
                            }
                            (expected, got) => {
                                return Err(TestCaseError::fail(format!("allocate {seat}: model {expected:?}, pool {got:?}")));
                            }
                        }
                    }
                    Op::Reclaim { seat } => {
                        match (model.seats.get(&seat), pool.reclaim(id(seat), at)) {
                            (None, Err(Error::NotFound(Missing::Seat))) => {}
                            (Some(None), Err(Error::SeatAlreadyFree)) => {}
                            (Some(Some(_)), Ok(change)) => {
                                disk.seats.insert(seat, pool.record(&change.after));
                                pool.apply(change);
                                model.seats.insert(seat, None);
                            }
                            (expected, got) => {
                                return Err(TestCaseError::fail(format!("reclaim {seat}: model {expected:?}, pool {got:?}")));
                            }
                        }
                    }
                    Op::AllocateUnapplied { seat, learner } => {
                        let l = LearnerId::parse(&name(learner)).map_err(|e| TestCaseError::fail(e.to_string()))?;
                        // Checked, then dropped: the store refused the write.
                        let _ = pool.allocate(id(seat), l, at);
                    }
                    Op::Restart => {
                        let mut fresh = SeatPool::new(tenant);
                        for block in &disk.blocks {
                            fresh.add_block(block.clone());
                        }
                        for (&seat, record) in &disk.seats {
                            fresh.restore(id(seat), record.clone());
                        }
                        for &seat in model.seats.keys() {
                            prop_assert_eq!(fresh.seat(id(seat)), pool.seat(id(seat)), "seat {} after restart", seat);
                        }
                        pool = fresh;
                    }
                }
                agree(&pool, &model)?;
            }
        }
    }
}
