//! A pool's learner index: which seat each learner holds (rule 1: at most one
//! non-free seat per learner per tenant).
//!
//! It stores where each held seat is, nothing else. A learner's id is already
//! in its seat's slot, so the index hashes that id but keeps no copy of it,
//! and a seat is named by its `Position` in the pool (4 bytes), not its id
//! (8). An entry is 4 bytes and a control byte, about half of what seat ids
//! take and a small part of a map from learner id to seat id. Every method is given a
//! lookup from a position to the learner its slot holds; the caller keeps the
//! index in step with the slots (`SeatPool::set`).

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

use crate::domain::LearnerId;

/// A seat's place in its pool: 0 for the first seat of the first block,
/// counting on through the blocks in purchase order (so a pool holds at most
/// 2^32 seats: `pool::MAX_SEATS`).
pub type Position = u32;

#[derive(Debug, Default)]
pub struct LearnerIndex {
    seats: HashTable<Position>,
    /// Randomly seeded per process: learner ids come from clients.
    hasher: DefaultHashBuilder,
}

impl LearnerIndex {
    fn hash(&self, learner: &LearnerId) -> u64 {
        self.hasher.hash_one(learner.as_str())
    }

    /// The seat `learner` holds, if any; `learner_at` reads a seat's slot.
    pub fn get<'a>(
        &self,
        learner: &LearnerId,
        learner_at: impl Fn(Position) -> Option<&'a LearnerId>,
    ) -> Option<Position> {
        self.seats
            .find(self.hash(learner), |&seat| learner_at(seat) == Some(learner))
            .copied()
    }

    /// Enters `seat` as held by `learner`. Every seat already entered must
    /// hold its learner in its slot (`learner_at`): growing rehashes them.
    pub fn insert<'a>(
        &mut self,
        learner: &LearnerId,
        seat: Position,
        learner_at: impl Fn(Position) -> Option<&'a LearnerId>,
    ) {
        let hash = self.hash(learner);
        let hasher = &self.hasher;
        self.seats
            .insert_unique(hash, seat, |&s| rehash(hasher, &learner_at, s));
    }

    /// Makes room for `n` more entries (see `insert` on `learner_at`).
    pub fn reserve<'a>(&mut self, n: usize, learner_at: impl Fn(Position) -> Option<&'a LearnerId>) {
        let hasher = &self.hasher;
        self.seats.reserve(n, |&s| rehash(hasher, &learner_at, s));
    }

    /// Removes `seat`, entered as held by `learner` (the learner its slot held
    /// then: the slot may hold another one by now).
    pub fn remove(&mut self, learner: &LearnerId, seat: Position) {
        if let Ok(entry) = self.seats.find_entry(self.hash(learner), |&s| s == seat) {
            entry.remove();
        }
    }

    /// Every seat entered, in no order.
    pub fn seats(&self) -> impl Iterator<Item = Position> + '_ {
        self.seats.iter().copied()
    }
}

/// An entered seat's hash, for moving it when the table grows.
fn rehash<'a>(
    hasher: &DefaultHashBuilder,
    learner_at: &impl Fn(Position) -> Option<&'a LearnerId>,
    seat: Position,
) -> u64 {
    // An entered seat without a learner would be a broken invariant; hashing
    // it as the empty id keeps the table usable regardless.
    hasher.hash_one(learner_at(seat).map_or("", LearnerId::as_str))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn learner(s: &str) -> LearnerId {
        LearnerId::parse(s).expect("a valid learner id")
    }

    #[test]
    fn finds_moves_and_forgets_learners_through_the_slots() {
        // The "slots": which learner each seat holds.
        let mut slots: HashMap<Position, LearnerId> = HashMap::new();
        let mut index = LearnerIndex::default();
        // Enough entries to grow (and rehash) the table several times.
        for n in 1..=5_000 {
            let l = learner(&format!("learner_{n}"));
            slots.insert(n, l.clone());
            index.insert(&l, n, |s| slots.get(&s));
        }
        for n in 1..=5_000 {
            let l = learner(&format!("learner_{n}"));
            assert_eq!(index.get(&l, |s| slots.get(&s)), Some(n));
        }
        assert_eq!(index.get(&learner("nobody"), |s| slots.get(&s)), None);

        // Seat 7 changes hands: its slot first, then the index.
        let (old, new) = (learner("learner_7"), learner("someone_else"));
        slots.insert(7, new.clone());
        index.remove(&old, 7);
        index.insert(&new, 7, |s| slots.get(&s));
        assert_eq!(index.get(&old, |s| slots.get(&s)), None);
        assert_eq!(index.get(&new, |s| slots.get(&s)), Some(7));
        assert_eq!(index.seats().count(), 5_000);
    }
}
