//! A tenant's seat pool: plain data and synchronous rules, no I/O.
//!
//! Operations come in two steps so that memory never runs ahead of disk:
//! `allocate`/`reserve`/`release`/`reclaim` check the rules and return the
//! `SeatChange` they would make without touching the pool; the actor writes
//! the change to the store and only then calls `apply`. `set` is the one
//! place a seat's state changes; `renew`, `take_out` and `take_in` (license
//! terms and transfers, which change which seats the pool holds, not their
//! state) reshape its runs.

use std::collections::{BTreeMap, BTreeSet, HashMap};

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
    /// A reservation's deadline, when the change reserves the seat.
    pub until: Option<Timestamp>,
}

/// A seat leaving one pool for another (a transfer): what the other needs
/// to hold it (the purchase it came from, its license term).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub seat: SeatId,
    pub block: BlockRecord,
    pub expires_at: Option<Timestamp>,
}

/// Seats of one purchase that a pool holds, as a run of consecutive ids
/// with one license term, restored on start (`SeatPool::from_runs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub block: BlockRecord,
    pub first: SeatId,
    pub count: u64,
    pub expires_at: Option<Timestamp>,
}

/// Consecutive seats of one purchase held here, with one license term: a
/// seat is found by binary search over them and an index into `slots` (no
/// per-seat map entry). A purchase is one run until transfers take some of
/// its seats elsewhere or renewals give some a later term.
#[derive(Debug)]
struct Block {
    /// The purchase the seats came from (their `created_at`, and their
    /// purchase audit entries, are derived from it).
    record: BlockRecord,
    /// The run's first seat.
    first: SeatId,
    /// The `Position` of its first seat: the seats of the runs before it.
    base: u64,
    /// The end of its seats' license term (`None`: no end).
    expires_at: Option<Timestamp>,
    slots: Vec<Slot>,
}

impl Block {
    fn contains(&self, seat: SeatId) -> bool {
        seat >= self.first && seat.get() - self.first.get() < self.slots.len() as u64
    }

    fn lapsed(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|end| end <= now)
    }
}

#[derive(Debug)]
pub struct SeatPool {
    tenant: TenantId,
    /// Sorted by first seat id, positions following the same order.
    blocks: Vec<Block>,
    /// Who holds a non-free seat here: rule 1 (one seat per learner per tenant).
    learners: LearnerIndex,
    /// Kept in step with every `set`, so a summary never scans seats.
    counts: Counts,
    /// The positions of the seats in each state (by `state_index`), in
    /// order: the lowest free seat, or a state's seats from a cursor, in a
    /// few word reads. Kept in step with every `set`.
    by_state: [Bits; 3],
    /// Each reserved seat's deadline (kept in step with every `set`).
    until: HashMap<SeatId, Timestamp>,
    /// The same, in deadline order: what the actor's timer waits for.
    due: BTreeSet<(Timestamp, SeatId)>,
    /// How many seats end their license term at each time.
    terms: BTreeMap<Timestamp, u64>,
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
            until: HashMap::new(),
            due: BTreeSet::new(),
            terms: BTreeMap::new(),
        }
    }

    /// A pool of the given runs (sorted by first seat), all free: what a
    /// start builds before restoring each changed seat's state.
    pub fn from_runs(tenant: TenantId, runs: Vec<Run>) -> Self {
        let mut pool = SeatPool::new(tenant);
        pool.blocks = runs
            .into_iter()
            .map(|run| Block {
                slots: vec![Slot::free(run.block.created_at); run.count as usize],
                record: run.block,
                first: run.first,
                base: 0,
                expires_at: run.expires_at,
            })
            .collect();
        pool.reindex();
        pool
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

    /// Adds a purchased block: `count` free seats (checked by `room_for`),
    /// ending their term at `expires_at` if it is set. Its ids are above
    /// every seat here (ids only grow), so it goes last.
    pub fn add_block(&mut self, record: BlockRecord, expires_at: Option<Timestamp>) {
        debug_assert!(self.blocks.last().is_none_or(|b| b.first < record.first_seat));
        let slots = vec![Slot::free(record.created_at); record.count as usize];
        let base = self.counts.total();
        self.counts.free += record.count;
        for bits in &mut self.by_state {
            bits.grow(base + record.count);
        }
        self.by_state[state_index(SeatState::Free)].insert_range(base, record.count);
        if let Some(end) = expires_at {
            *self.terms.entry(end).or_default() += record.count;
        }
        self.blocks.push(Block {
            first: record.first_seat,
            record,
            base,
            expires_at,
            slots,
        });
    }

    pub fn seat(&self, id: SeatId) -> Option<Seat> {
        let (block, index) = self.locate(id)?;
        Some(self.view(block, index))
    }

    /// The seats a block will have once added (all free), as the contract
    /// shows them: a purchase's answer, rendered before its write.
    pub fn new_block_seats(&self, record: &BlockRecord, expires_at: Option<Timestamp>) -> Vec<Seat> {
        let slot = Slot::free(record.created_at);
        (0..record.count)
            .map(|i| {
                view(
                    self.tenant,
                    record.first_seat.offset(i),
                    record,
                    &slot,
                    None,
                    expires_at,
                )
            })
            .collect()
    }

    /// The seats of the run starting at `first`, as the contract shows them.
    pub fn block_seats(&self, first: SeatId) -> Vec<Seat> {
        let Some((block, _)) = self.locate(first) else {
            return Vec::new();
        };
        (0..self.blocks[block].slots.len())
            .map(|i| self.view(block, i))
            .collect()
    }

    /// The purchase record a seat came from (its purchase audit entry is derived from it).
    pub fn block_of(&self, id: SeatId) -> Option<&BlockRecord> {
        self.locate(id).map(|(block, _)| &self.blocks[block].record)
    }

    /// The lowest free seat that may be taken at `now` (its term not ended), if any.
    pub fn first_free(&self, now: Timestamp) -> Option<SeatId> {
        self.free_seats(now).next()
    }

    /// The free seats that may be taken at `now`, lowest id first (each
    /// step a few word reads; a run whose term has ended is skipped whole).
    pub fn free_seats(&self, now: Timestamp) -> impl Iterator<Item = SeatId> + '_ {
        let free = &self.by_state[state_index(SeatState::Free)];
        let mut from = 0;
        std::iter::from_fn(move || loop {
            let p = free.next_from(from)?;
            let (block, index) = at(&self.blocks, Position::try_from(p).ok()?)?;
            let b = &self.blocks[block];
            if b.lapsed(now) {
                from = b.base + b.slots.len() as u64;
                continue;
            }
            from = p + 1;
            return Some(b.first.offset(index as u64));
        })
    }

    /// The seat a learner holds here (reserved or assigned), if any.
    pub fn seat_of(&self, learner: &LearnerId) -> Option<Seat> {
        let p = self.learners.get(learner, |p| learner_at(&self.blocks, p))?;
        let (block, index) = at(&self.blocks, p)?;
        Some(self.view(block, index))
    }

    /// Allocates a free seat, or a reserved one to the learner it is
    /// reserved for (an unnamed reservation to anyone).
    pub fn allocate(&self, seat: SeatId, learner: LearnerId, at: Timestamp) -> Result<SeatChange, Error> {
        let (block, index) = self.locate(seat).ok_or(Error::NotFound(Missing::Seat))?;
        let b = &self.blocks[block];
        let before = &b.slots[index];
        match (before.state(), &before.learner) {
            (SeatState::Free, _) | (SeatState::Reserved, None) => {}
            (SeatState::Reserved, Some(named)) if *named == learner => {}
            (state, _) => return Err(Error::SeatUnavailable(state)),
        }
        if b.lapsed(at) {
            return Err(Error::SeatExpired);
        }
        let here = position(b, index);
        if self
            .learners
            .get(&learner, |p| learner_at(&self.blocks, p))
            .is_some_and(|p| p != here)
        {
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
            until: None,
        })
    }

    /// Reserves a free seat until `until`, for `learner` if one is named
    /// (who then holds it for rule 1).
    pub fn reserve(
        &self,
        seat: SeatId,
        learner: Option<LearnerId>,
        at: Timestamp,
        until: Timestamp,
    ) -> Result<SeatChange, Error> {
        let (block, index) = self.locate(seat).ok_or(Error::NotFound(Missing::Seat))?;
        let b = &self.blocks[block];
        let before = &b.slots[index];
        if before.state() != SeatState::Free {
            return Err(Error::SeatUnavailable(before.state()));
        }
        if b.lapsed(at) {
            return Err(Error::SeatExpired);
        }
        if let Some(l) = &learner {
            if self.learners.get(l, |p| learner_at(&self.blocks, p)).is_some() {
                return Err(Error::LearnerHasSeat);
            }
        }
        Ok(SeatChange {
            seat,
            before: before.clone(),
            after: Slot {
                hold: Hold::Reserved(at),
                learner,
                updated_at: at,
            },
            until: Some(until),
        })
    }

    /// Gives a reservation back.
    pub fn release(&self, seat: SeatId, at: Timestamp) -> Result<SeatChange, Error> {
        let before = self.slot(seat)?;
        if before.state() != SeatState::Reserved {
            return Err(Error::NotReserved(before.state()));
        }
        Ok(SeatChange {
            seat,
            before: before.clone(),
            after: Slot::free(at),
            until: None,
        })
    }

    /// The reservations whose deadline is at or before `now`, earliest first.
    pub fn due(&self, now: Timestamp) -> Vec<(SeatId, Timestamp)> {
        self.due
            .range(..=(now, SeatId::MAX))
            .map(|&(deadline, seat)| (seat, deadline))
            .collect()
    }

    /// A reserved seat's deadline.
    pub fn deadline_of(&self, seat: SeatId) -> Option<Timestamp> {
        self.until.get(&seat).copied()
    }

    /// The earliest reservation deadline, if any seat is reserved with one.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.due.first().map(|(deadline, _)| *deadline)
    }

    /// How many reservations there are whose deadline is at or before `now`.
    pub fn overdue(&self, now: Timestamp) -> u64 {
        self.due.range(..=(now, SeatId::MAX)).count() as u64
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
            until: None,
        })
    }

    /// The same seat, its state kept, changed at `at` (a renewal or a move:
    /// the change its audit entry records).
    pub fn touch(&self, seat: SeatId, at: Timestamp) -> Result<SeatChange, Error> {
        let before = self.slot(seat)?;
        let after = Slot {
            updated_at: at,
            ..before.clone()
        };
        Ok(SeatChange {
            seat,
            before: before.clone(),
            after,
            until: self.until.get(&seat).copied(),
        })
    }

    /// Whether a seat's term may be extended to `until`: it has one, and
    /// `until` is later.
    pub fn renewable(&self, seat: SeatId, until: Timestamp) -> Result<(), Error> {
        let (block, _) = self.locate(seat).ok_or(Error::NotFound(Missing::Seat))?;
        match self.blocks[block].expires_at {
            None => Err(Error::NoTerm),
            Some(end) if until <= end => Err(Error::NotExtended(end)),
            Some(_) => Ok(()),
        }
    }

    /// The seats whose term ends before `before`, lowest id first.
    pub fn expiring_before(&self, before: Timestamp) -> Vec<SeatId> {
        self.blocks
            .iter()
            .filter(|b| b.expires_at.is_some_and(|end| end < before))
            .flat_map(|b| (0..b.slots.len() as u64).map(|i| b.first.offset(i)))
            .collect()
    }

    /// Gives `seats` (sorted, each here) the term ending `until`: their
    /// runs split where the term changes (positions stay as they are).
    pub fn renew(&mut self, seats: &[SeatId], until: Timestamp) {
        let mut renewed = seats.iter().copied().peekable();
        let mut blocks = Vec::with_capacity(self.blocks.len());
        for b in std::mem::take(&mut self.blocks) {
            while renewed.next_if(|s| *s < b.first).is_some() {}
            let mut marked = Vec::new();
            while let Some(s) = renewed.next_if(|s| b.contains(*s)) {
                marked.push((s.get() - b.first.get()) as usize);
            }
            if marked.is_empty() {
                blocks.push(b);
                continue;
            }
            for (mut piece, renew) in carve(b, &marked) {
                if renew {
                    let n = piece.slots.len() as u64;
                    if let Some(old) = piece.expires_at {
                        if let Some(count) = self.terms.get_mut(&old) {
                            *count -= n;
                            if *count == 0 {
                                self.terms.remove(&old);
                            }
                        }
                    }
                    *self.terms.entry(until).or_default() += n;
                    piece.expires_at = Some(until);
                }
                blocks.push(piece);
            }
        }
        self.blocks = merge(blocks);
    }

    /// Whether a seat may be moved to another tenant at `now`: free, and
    /// its term not ended.
    pub fn movable(&self, seat: SeatId, now: Timestamp) -> Result<(), Error> {
        let (block, index) = self.locate(seat).ok_or(Error::NotFound(Missing::Seat))?;
        let b = &self.blocks[block];
        match b.slots[index].state() {
            SeatState::Free if b.lapsed(now) => Err(Error::SeatExpired),
            SeatState::Free => Ok(()),
            state => Err(Error::SeatUnavailable(state)),
        }
    }

    /// What another pool needs to take `seat` in.
    pub fn moved(&self, seat: SeatId) -> Option<Moved> {
        let (block, _) = self.locate(seat)?;
        let b = &self.blocks[block];
        Some(Moved {
            seat,
            block: b.record.clone(),
            expires_at: b.expires_at,
        })
    }

    /// Removes `seats` (sorted, free, written as moved to another tenant).
    pub fn take_out(&mut self, seats: &[SeatId]) {
        let mut gone = seats.iter().copied().peekable();
        let mut blocks = Vec::with_capacity(self.blocks.len());
        for b in std::mem::take(&mut self.blocks) {
            while gone.next_if(|s| *s < b.first).is_some() {}
            let mut marked = Vec::new();
            while let Some(s) = gone.next_if(|s| b.contains(*s)) {
                marked.push((s.get() - b.first.get()) as usize);
            }
            if marked.is_empty() {
                blocks.push(b);
                continue;
            }
            blocks.extend(
                carve(b, &marked)
                    .into_iter()
                    .filter(|(_, out)| !out)
                    .map(|(piece, _)| piece),
            );
        }
        self.blocks = blocks;
        self.reindex();
    }

    /// Takes in seats moved here from another tenant, free since `at`.
    pub fn take_in(&mut self, moved: Vec<Moved>, at: Timestamp) {
        let mut blocks = std::mem::take(&mut self.blocks);
        for m in moved {
            blocks.push(Block {
                record: m.block,
                first: m.seat,
                base: 0,
                expires_at: m.expires_at,
                slots: vec![Slot::free(at)],
            });
        }
        blocks.sort_by_key(|b| b.first);
        self.blocks = merge(blocks);
        self.reindex();
    }

    /// How many seats here have a term that ended at or before `now`.
    pub fn expired(&self, now: Timestamp) -> u64 {
        self.terms.range(..=now).map(|(_, n)| n).sum()
    }

    /// The seats' term ends, and how many seats end at each (what summaries
    /// count expired seats from).
    pub fn terms(&self) -> Vec<(Timestamp, u64)> {
        self.terms.iter().map(|(t, n)| (*t, *n)).collect()
    }

    /// The reservation deadlines, and how many seats each (what summaries
    /// read reservations past their deadline from).
    pub fn deadlines(&self) -> Vec<Timestamp> {
        self.due.iter().map(|(t, _)| *t).collect()
    }

    /// Makes a change that the store has accepted.
    pub fn apply(&mut self, change: SeatChange) {
        self.set(change.seat, change.after, change.until);
    }

    /// Makes room in the learner index for `n` more learners.
    pub fn reserve_learners(&mut self, n: usize) {
        let blocks = &self.blocks;
        self.learners.reserve(n, |p| learner_at(blocks, p));
    }

    /// Restores a seat's stored state on start (its term, when the record
    /// names one other than its run's, is the caller's to `renew`).
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
        self.set(seat, slot, record.reserved_until);
    }

    /// A seat's license term as this pool holds it.
    pub fn term_of(&self, seat: SeatId) -> Option<Timestamp> {
        self.locate(seat).and_then(|(block, _)| self.blocks[block].expires_at)
    }

    /// What the store keeps of a seat's state after a change.
    pub fn record(&self, change: &SeatChange) -> SeatRecord {
        let slot = &change.after;
        SeatRecord {
            tenant_id: self.tenant,
            state: slot.state(),
            learner_id: slot.learner.clone(),
            reserved_at: slot.reserved_at(),
            assigned_at: slot.assigned_at(),
            updated_at: slot.updated_at,
            reserved_until: change.until.filter(|_| slot.state() == SeatState::Reserved),
            expires_at: self.term_of(change.seat),
        }
    }

    pub fn view_after(&self, change: &SeatChange) -> Option<Seat> {
        let (block, _) = self.locate(change.seat)?;
        let b = &self.blocks[block];
        Some(view(
            self.tenant,
            change.seat,
            &b.record,
            &change.after,
            change.until.filter(|_| change.after.state() == SeatState::Reserved),
            b.expires_at,
        ))
    }

    /// The one place a seat's state changes: slot, counters, learner index
    /// and reservation deadlines together.
    fn set(&mut self, seat: SeatId, slot: Slot, until: Option<Timestamp>) {
        let Some((block, index)) = self.locate(seat) else {
            return;
        };
        let position = position(&self.blocks[block], index);
        let reserved = slot.state() == SeatState::Reserved;
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
        if let Some(deadline) = self.until.remove(&seat) {
            self.due.remove(&(deadline, seat));
        }
        if let Some(deadline) = until.filter(|_| reserved) {
            self.until.insert(seat, deadline);
            self.due.insert((deadline, seat));
        }
    }

    /// Rebuilds what follows from the runs (positions, counters, state
    /// sets, learner index, term counts) after runs were added or removed
    /// in the middle: O(seats), for transfers, which move thousands at once.
    fn reindex(&mut self) {
        let mut base = 0;
        for b in &mut self.blocks {
            b.base = base;
            base += b.slots.len() as u64;
        }
        self.counts = Counts::default();
        self.by_state = Default::default();
        self.terms.clear();
        for bits in &mut self.by_state {
            bits.grow(base);
        }
        let mut held = 0;
        for b in &self.blocks {
            if let Some(end) = b.expires_at {
                *self.terms.entry(end).or_default() += b.slots.len() as u64;
            }
            for (i, slot) in b.slots.iter().enumerate() {
                *self.counts.of_mut(slot.state()) += 1;
                self.by_state[state_index(slot.state())].insert(b.base + i as u64);
                held += usize::from(slot.learner.is_some());
            }
        }
        self.learners = LearnerIndex::default();
        let blocks = &self.blocks;
        self.learners.reserve(held, |p| learner_at(blocks, p));
        for b in blocks {
            for (i, slot) in b.slots.iter().enumerate() {
                if let Some(l) = &slot.learner {
                    self.learners.insert(l, position(b, i), |p| learner_at(blocks, p));
                }
            }
        }
    }

    /// Checks what `set` keeps in step, by brute force: counters equal a count
    /// of the slots, the state sets agree with the slots, the learner index
    /// holds exactly the learners of the non-free seats, each once (rule 1),
    /// and only reserved seats have deadlines. O(seats): for tests and debugging.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut counted = Counts::default();
        let mut holders: HashMap<&LearnerId, SeatId> = HashMap::new();
        let mut next_base = 0;
        let mut last: Option<SeatId> = None;
        for block in &self.blocks {
            if block.base != next_base {
                return Err(format!(
                    "run at {} has base {} not {next_base}",
                    block.first, block.base
                ));
            }
            if last.is_some_and(|l| l >= block.first) {
                return Err(format!("run at {} is out of order", block.first));
            }
            next_base += block.slots.len() as u64;
            last = Some(block.first.offset(block.slots.len() as u64 - 1));
            for (i, slot) in block.slots.iter().enumerate() {
                let id = block.first.offset(i as u64);
                *counted.of_mut(slot.state()) += 1;
                let p = block.base + i as u64;
                for (k, bits) in self.by_state.iter().enumerate() {
                    if bits.contains(p) != (k == state_index(slot.state())) {
                        return Err(format!("seat {id} is {} but the state sets disagree", slot.state()));
                    }
                }
                match (&slot.learner, slot.state()) {
                    (None, SeatState::Free | SeatState::Reserved) => {}
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
        for (seat, deadline) in &self.until {
            if self.seat(*seat).map(|s| s.state) != Some(SeatState::Reserved) {
                return Err(format!("seat {seat} has a deadline but is not reserved"));
            }
            if !self.due.contains(&(*deadline, *seat)) {
                return Err(format!("seat {seat}'s deadline is not in deadline order"));
            }
        }
        if self.due.len() != self.until.len() {
            return Err("deadlines in order and by seat differ".into());
        }
        let mut indexed: HashMap<&LearnerId, SeatId> = HashMap::new();
        for p in self.learners.seats() {
            let (block, index) =
                at(&self.blocks, p).ok_or_else(|| format!("position {p} is indexed but is no seat"))?;
            let seat = self.blocks[block].first.offset(index as u64);
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

    fn view(&self, block: usize, index: usize) -> Seat {
        let b = &self.blocks[block];
        let id = b.first.offset(index as u64);
        view(
            self.tenant,
            id,
            &b.record,
            &b.slots[index],
            self.until.get(&id).copied(),
            b.expires_at,
        )
    }
}

/// `b` cut into its stretches of marked seats (`marked`: offsets, sorted,
/// each once) and of the others, in order, each with whether it is marked.
/// Every slot is moved once: O(the run), however many seats are marked.
fn carve(b: Block, marked: &[usize]) -> Vec<(Block, bool)> {
    let Block {
        record,
        first,
        base,
        expires_at,
        slots,
    } = b;
    let len = slots.len();
    // The stretches: (start, end, marked), covering 0..len.
    let mut stretches: Vec<(usize, usize, bool)> = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while i < marked.len() {
        let start = marked[i];
        let mut end = start + 1;
        i += 1;
        while i < marked.len() && marked[i] == end {
            end += 1;
            i += 1;
        }
        if at < start {
            stretches.push((at, start, false));
        }
        stretches.push((start, end.min(len), true));
        at = end;
    }
    if at < len {
        stretches.push((at, len, false));
    }
    let mut slots = slots.into_iter();
    stretches
        .into_iter()
        .map(|(start, end, mark)| {
            let piece = Block {
                record: record.clone(),
                first: first.offset(start as u64),
                base: base + start as u64,
                expires_at,
                slots: slots.by_ref().take(end - start).collect(),
            };
            (piece, mark)
        })
        .collect()
}

/// Joins neighbouring runs of one purchase with consecutive ids and one
/// term (runs sorted by first seat; bases are left to the caller).
fn merge(blocks: Vec<Block>) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::with_capacity(blocks.len());
    for b in blocks {
        if let Some(last) = out.last_mut() {
            let joins = last.record.first_seat == b.record.first_seat
                && last.expires_at == b.expires_at
                && last.first.offset(last.slots.len() as u64) == b.first;
            if joins {
                last.slots.extend(b.slots);
                continue;
            }
        }
        out.push(b);
    }
    out
}

/// Which run holds `seat`, and where in it.
fn locate(blocks: &[Block], seat: SeatId) -> Option<(usize, usize)> {
    let block = blocks.partition_point(|b| b.first <= seat).checked_sub(1)?;
    let b = &blocks[block];
    b.contains(seat).then(|| (block, (seat.get() - b.first.get()) as usize))
}

/// The `Position` of a run's `index`th seat. Every block is checked by
/// `room_for` before it is added (a purchase, or a block read back on start),
/// so every position is in range and the cast cannot truncate.
fn position(block: &Block, index: usize) -> Position {
    let p = block.base + index as u64;
    debug_assert!(p < MAX_SEATS, "position {p} past MAX_SEATS");
    p as Position
}

/// Which run holds the seat at `position`, and where in it.
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

fn view(
    tenant: TenantId,
    id: SeatId,
    block: &BlockRecord,
    slot: &Slot,
    until: Option<Timestamp>,
    expires_at: Option<Timestamp>,
) -> Seat {
    let reserved = slot.state() == SeatState::Reserved;
    Seat {
        id,
        tenant_id: tenant,
        state: slot.state(),
        // A reservation's learner is who it is for, not who holds the seat.
        learner_id: slot.learner.clone().filter(|_| !reserved),
        reserved_at: slot.reserved_at(),
        assigned_at: slot.assigned_at(),
        created_at: block.created_at,
        updated_at: slot.updated_at,
        reserved_until: until.filter(|_| reserved),
        reserved_for: slot.learner.clone().filter(|_| reserved),
        expires_at,
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod model;
