//! Pages of a pool's seats in id order, continuing after a cursor: what the
//! seat listings, a learner's lookup and the export read. A page costs what
//! it holds, not what the pool holds: the start is found by binary search
//! over the blocks, a state's seats come from its ordered bit set
//! (`Bits::next_from`), and an unfiltered page walks the slots from there.

use crate::domain::{Id, LearnerId, Seat, SeatId, SeatState, Timestamp};

use super::{state_index, SeatPool};

/// Which seats a page holds (every seat when nothing is set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeatFilter {
    pub state: Option<SeatState>,
    /// The one seat (at most) this learner holds here.
    pub learner: Option<LearnerId>,
    /// Seats whose license term ends before this time.
    pub expiring_before: Option<Timestamp>,
}

impl SeatFilter {
    fn term_matches(&self, expires_at: Option<Timestamp>) -> bool {
        self.expiring_before
            .is_none_or(|before| expires_at.is_some_and(|end| end < before))
    }
}

/// Up to `limit` seats in id order, and whether more of them follow.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SeatRun {
    pub seats: Vec<Seat>,
    pub more: bool,
}

impl SeatPool {
    /// The first `limit` seats matching `filter` whose ids are above `after`
    /// (from the first seat with `None`), in id order; `more` says whether
    /// another one follows them. `after` need not be a seat of this pool (a
    /// district's listing continues after a school's seat).
    pub fn page(&self, after: Option<SeatId>, filter: &SeatFilter, limit: usize) -> SeatRun {
        if let Some(learner) = &filter.learner {
            let seat = self.seat_of(learner).filter(|s| {
                after.is_none_or(|a| s.id > a)
                    && filter.state.is_none_or(|st| s.state == st)
                    && filter.term_matches(s.expires_at)
            });
            let more = seat.is_some() && limit == 0;
            return SeatRun {
                seats: seat.into_iter().take(limit).collect(),
                more,
            };
        }
        let from = self.position_after(after);
        // The first block with a seat at or after `from`; a position past
        // the current block moves it on by binary search over the rest.
        let mut block = self.block_from(0, from);
        let mut seats = Vec::with_capacity(limit.min(self.counts.total() as usize));
        if filter.expiring_before.is_some() {
            // Runs of one term each: those that match, walked seat by seat.
            for (k, b) in self.blocks.iter().enumerate().skip(block) {
                if !filter.term_matches(b.expires_at) {
                    continue;
                }
                let skip = from.saturating_sub(b.base) as usize;
                for (i, slot) in b.slots.iter().enumerate().skip(skip) {
                    if filter.state.is_some_and(|st| slot.state() != st) {
                        continue;
                    }
                    if seats.len() == limit {
                        return SeatRun { seats, more: true };
                    }
                    seats.push(self.view(k, i));
                }
            }
            return SeatRun { seats, more: false };
        }
        match filter.state {
            Some(state) => {
                let bits = &self.by_state[state_index(state)];
                let mut next = from;
                while let Some(p) = bits.next_from(next) {
                    if seats.len() == limit {
                        return SeatRun { seats, more: true };
                    }
                    block = self.block_from(block, p);
                    let Some(b) = self.blocks.get(block) else { break };
                    let index = (p - b.base) as usize;
                    if index >= b.slots.len() {
                        break;
                    }
                    seats.push(self.view(block, index));
                    next = p + 1;
                }
            }
            None => {
                for (k, b) in self.blocks.iter().enumerate().skip(block) {
                    let skip = from.saturating_sub(b.base) as usize;
                    for i in skip..b.slots.len() {
                        if seats.len() == limit {
                            return SeatRun { seats, more: true };
                        }
                        seats.push(self.view(k, i));
                    }
                }
            }
        }
        SeatRun { seats, more: false }
    }

    /// The position of the first seat whose id is above `after` (the number
    /// of seats when none is).
    fn position_after(&self, after: Option<SeatId>) -> u64 {
        let Some(after) = after else { return 0 };
        let Some(i) = self.blocks.partition_point(|b| b.first <= after).checked_sub(1) else {
            return 0;
        };
        let block = &self.blocks[i];
        let past = after.get() - block.first.get() + 1;
        block.base + past.min(block.slots.len() as u64)
    }

    /// The first block, from `start` on, that holds a seat at or after
    /// `position` (`blocks.len()` if none does).
    fn block_from(&self, start: usize, position: u64) -> usize {
        let rest = self.blocks.get(start..).unwrap_or_default();
        match rest.first() {
            Some(b) if position < b.base + b.slots.len() as u64 => start,
            _ => start + rest.partition_point(|b| b.base + b.slots.len() as u64 <= position),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::{AuditId, BlockRecord, Id, TenantId, Timestamp, UserId};

    fn id<T: Id>(n: u64) -> T {
        T::new(n).unwrap_or_else(|| unreachable!())
    }

    fn learner(s: &str) -> LearnerId {
        LearnerId::parse(s).unwrap_or_else(|_| unreachable!())
    }

    /// A pool with blocks at the given (first seat, count), ids ascending
    /// with gaps between blocks (other tenants' seats).
    fn pool(blocks: &[(u64, u64)]) -> SeatPool {
        let mut pool = SeatPool::new(id::<TenantId>(1));
        for &(first, count) in blocks {
            pool.add_block(
                BlockRecord {
                    tenant_id: id(1),
                    first_seat: id(first),
                    count,
                    first_audit: id::<AuditId>(first),
                    created_at: Timestamp::from_micros(1),
                    changed_by: UserId::parse("admin").unwrap_or_else(|_| unreachable!()),
                },
                None,
            );
        }
        pool
    }

    fn assign(pool: &mut SeatPool, seat: u64, who: &str) {
        let change = pool
            .allocate(id(seat), learner(who), Timestamp::from_micros(2))
            .unwrap_or_else(|e| panic!("{e}"));
        pool.apply(change);
    }

    fn ids(run: &SeatRun) -> Vec<u64> {
        run.seats.iter().map(|s| s.id.get()).collect()
    }

    fn all() -> SeatFilter {
        SeatFilter::default()
    }

    fn state(s: SeatState) -> SeatFilter {
        SeatFilter {
            state: Some(s),
            learner: None,
            expiring_before: None,
        }
    }

    #[test]
    fn pages_walk_the_blocks_in_id_order_from_the_cursor() {
        let p = pool(&[(10, 3), (20, 2), (30, 1)]);
        let run = p.page(None, &all(), 4);
        assert_eq!((ids(&run), run.more), (vec![10, 11, 12, 20], true));
        let run = p.page(Some(id(20)), &all(), 4);
        assert_eq!((ids(&run), run.more), (vec![21, 30], false));
        // Exactly the rest: no more.
        let run = p.page(Some(id(11)), &all(), 4);
        assert_eq!((ids(&run), run.more), (vec![12, 20, 21, 30], false));
        // Cursors between blocks, before the first and past the last.
        assert_eq!(ids(&p.page(Some(id(15)), &all(), 10)), vec![20, 21, 30]);
        assert_eq!(ids(&p.page(Some(id(1)), &all(), 2)), vec![10, 11]);
        assert_eq!(p.page(Some(id(30)), &all(), 10), SeatRun::default());
        assert_eq!(p.page(Some(id(99)), &all(), 10), SeatRun::default());
        assert_eq!(SeatPool::new(id(1)).page(None, &all(), 10), SeatRun::default());
    }

    #[test]
    fn a_state_filter_reads_that_state_only() {
        let mut p = pool(&[(10, 3), (20, 2)]);
        assign(&mut p, 11, "a");
        assign(&mut p, 21, "b");
        let run = p.page(None, &state(SeatState::Assigned), 1);
        assert_eq!((ids(&run), run.more), (vec![11], true));
        let run = p.page(Some(id(11)), &state(SeatState::Assigned), 1);
        assert_eq!((ids(&run), run.more), (vec![21], false));
        assert_eq!(ids(&p.page(None, &state(SeatState::Free), 10)), vec![10, 12, 20]);
        assert_eq!(ids(&p.page(Some(id(12)), &state(SeatState::Free), 10)), vec![20]);
        assert_eq!(p.page(None, &state(SeatState::Reserved), 10), SeatRun::default());
        let seat = &p.page(Some(id(20)), &state(SeatState::Assigned), 1).seats[0];
        assert_eq!(
            (seat.state, seat.learner_id.as_ref().map(LearnerId::as_str)),
            (SeatState::Assigned, Some("b"))
        );
    }

    #[test]
    fn a_learner_filter_finds_the_learners_seat_past_the_cursor() {
        let mut p = pool(&[(10, 3)]);
        assign(&mut p, 11, "a");
        let only = |state| SeatFilter {
            state,
            learner: Some(learner("a")),
            expiring_before: None,
        };
        assert_eq!(ids(&p.page(None, &only(None), 100)), vec![11]);
        assert_eq!(ids(&p.page(Some(id(10)), &only(None), 100)), vec![11]);
        assert!(p.page(Some(id(11)), &only(None), 100).seats.is_empty());
        assert!(p.page(None, &only(Some(SeatState::Free)), 100).seats.is_empty());
        assert_eq!(ids(&p.page(None, &only(Some(SeatState::Assigned)), 1)), vec![11]);
        let nobody = SeatFilter {
            state: None,
            learner: Some(learner("z")),
            expiring_before: None,
        };
        assert_eq!(p.page(None, &nobody, 100), SeatRun::default());
    }

    proptest! {
        /// Following the cursor through pages of any size visits exactly the
        /// seats of the filter, in order, each once.
        #[test]
        fn paging_agrees_with_a_scan(
            blocks in proptest::collection::vec((1u64..5, 1u64..150), 1..6),
            taken in proptest::collection::vec(any::<prop::sample::Index>(), 0..60),
            limit in 1usize..40,
            which in 0u8..4,
        ) {
            let mut first = 1;
            let mut layout = Vec::new();
            for (gap, count) in blocks {
                layout.push((first + gap, count));
                first += gap + count;
            }
            let mut p = pool(&layout);
            let every: Vec<u64> = layout.iter().flat_map(|&(f, c)| f..f + c).collect();
            for (n, i) in taken.iter().enumerate() {
                let seat = every[i.index(every.len())];
                if p.seat(id(seat)).is_some_and(|s| s.state == SeatState::Free) {
                    assign(&mut p, seat, &format!("l{n}"));
                }
            }
            let filter = match which {
                0 => all(),
                1 => state(SeatState::Free),
                2 => state(SeatState::Assigned),
                _ => state(SeatState::Reserved),
            };
            let expected: Vec<u64> = every
                .iter()
                .copied()
                .filter(|&s| filter.state.is_none_or(|st| p.seat(id(s)).is_some_and(|seat| seat.state == st)))
                .collect();
            let mut seen = Vec::new();
            let mut after = None;
            loop {
                let run = p.page(after, &filter, limit);
                prop_assert!(run.seats.len() <= limit);
                prop_assert!(!run.more || run.seats.len() == limit);
                seen.extend(ids(&run));
                match (run.more, run.seats.last()) {
                    (true, Some(last)) => after = Some(last.id),
                    _ => break,
                }
            }
            prop_assert_eq!(seen, expected);
        }
    }
}
