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
use bits::Bits;
pub use page::{SeatFilter, SeatRun};

mod bits;
mod page;

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
    /// The positions of the seats in each state (by `state_index`), in
    /// order: the lowest free seat, or a state's seats from a cursor, in a
    /// few word reads. Kept in step with every `set`.
    by_state: [Bits; 3],
}

fn state_index(state: SeatState) -> usize {
    match state {
        SeatState::Free => 0,
        SeatState::Reserved => 1,
        SeatState::Assigned => 2,
    }
}

impl SeatPool {
    pub fn new(tenant: TenantId) -> Self {
        SeatPool {
            tenant,
            blocks: Vec::new(),
            learners: LearnerIndex::default(),
            counts: Counts::default(),
            by_state: Default::default(),
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
        for bits in &mut self.by_state {
            bits.grow(base + record.count);
        }
        self.by_state[state_index(SeatState::Free)].insert_range(base, record.count);
        self.blocks.push(Block { record, base, slots });
    }

    pub fn seat(&self, id: SeatId) -> Option<Seat> {
        let (block, index) = self.locate(id)?;
        let b = &self.blocks[block];
        Some(view(self.tenant, id, &b.record, &b.slots[index]))
    }

    /// The seats a block will have once added (all free), as the contract
    /// shows them: a purchase's answer, rendered before its write.
    pub fn new_block_seats(&self, record: &BlockRecord) -> Vec<Seat> {
        let slot = Slot::free(record.created_at);
        (0..record.count)
            .map(|i| view(self.tenant, record.first_seat.offset(i), record, &slot))
            .collect()
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

    /// The lowest free seat, if any.
    pub fn first_free(&self) -> Option<SeatId> {
        let p = self.by_state[state_index(SeatState::Free)].next_from(0)?;
        let (block, index) = at(&self.blocks, Position::try_from(p).ok()?)?;
        Some(self.blocks[block].record.first_seat.offset(index as u64))
    }

    /// The free seats, lowest id first (each step a few word reads).
    pub fn free_seats(&self) -> impl Iterator<Item = SeatId> + '_ {
        let free = &self.by_state[state_index(SeatState::Free)];
        std::iter::successors(free.next_from(0), move |p| free.next_from(p + 1)).filter_map(move |p| {
            let (block, index) = at(&self.blocks, Position::try_from(p).ok()?)?;
            Some(self.blocks[block].record.first_seat.offset(index as u64))
        })
    }

    /// The seat a learner holds here (reserved or assigned), if any.
    pub fn seat_of(&self, learner: &LearnerId) -> Option<Seat> {
        let p = self.learners.get(learner, |p| learner_at(&self.blocks, p))?;
        let (block, index) = at(&self.blocks, p)?;
        let b = &self.blocks[block];
        let id = b.record.first_seat.offset(index as u64);
        Some(view(self.tenant, id, &b.record, &b.slots[index]))
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
        if old.state() != new.state() {
            self.by_state[state_index(old.state())].remove(u64::from(position));
            self.by_state[state_index(new.state())].insert(u64::from(position));
        }
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
                let p = block.base + i as u64;
                for (k, bits) in self.by_state.iter().enumerate() {
                    if bits.contains(p) != (k == state_index(slot.state())) {
                        return Err(format!("seat {id} is {} but the state sets disagree", slot.state()));
                    }
                }
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
mod tests;

#[cfg(test)]
mod model;
