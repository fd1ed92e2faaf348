//! Unit tests of the pool's rules.

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
    pool.add_block(
        BlockRecord {
            tenant_id: id(1),
            first_seat: id(first),
            count,
            first_audit: id::<AuditId>(1),
            created_at: Timestamp::from_micros(1),
            changed_by: UserId::parse("admin").unwrap_or_else(|_| unreachable!()),
        },
        None,
    );
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
    pool.add_block(
        BlockRecord {
            tenant_id: id(1),
            first_seat: id(100),
            count: 3,
            first_audit: id::<AuditId>(50),
            created_at: at(9),
            changed_by: UserId::parse("a").unwrap_or_else(|_| unreachable!()),
        },
        None,
    );
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
    let record = pool.record(&change);
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

#[test]
fn free_seats_come_lowest_first_across_blocks() {
    let mut pool = SeatPool::new(id(1));
    for (first, count) in [(10, 3), (100, 2)] {
        pool.add_block(
            BlockRecord {
                tenant_id: id(1),
                first_seat: id(first),
                count,
                first_audit: id(first),
                created_at: at(0),
                changed_by: UserId::parse("admin").unwrap_or_else(|_| unreachable!()),
            },
            None,
        );
    }
    let learner = |n: &str| LearnerId::parse(n).unwrap_or_else(|_| unreachable!());
    for seat in [11, 100] {
        let change = pool.allocate(id(seat), learner(&format!("l{seat}")), at(1));
        pool.apply(change.unwrap_or_else(|e| panic!("{e}")));
    }
    let free: Vec<u64> = pool.free_seats(at(1)).map(SeatId::get).collect();
    assert_eq!(free, [10, 12, 101]);
    assert_eq!(pool.first_free(at(1)), Some(id(10)));
    assert_eq!(pool.seat_of(&learner("l100")).map(|s| s.id), Some(id(100)));
    assert_eq!(pool.seat_of(&learner("nobody")), None);
}

#[test]
fn reservations_hold_a_learner_and_end_by_deadline_order() {
    let mut pool = pool_with(1, 4);
    let named = pool
        .reserve(id(2), Some(learner("ann")), at(1), at(50))
        .unwrap_or_else(|e| panic!("{e}"));
    pool.apply(named);
    let anyone = pool
        .reserve(id(3), None, at(2), at(20))
        .unwrap_or_else(|e| panic!("{e}"));
    pool.apply(anyone);
    pool.check_invariants().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pool.counts().reserved, 2);
    let seat = pool.seat(id(2)).unwrap_or_else(|| unreachable!());
    assert_eq!(
        (seat.learner_id, seat.reserved_for, seat.reserved_until),
        (None, Some(learner("ann")), Some(at(50)))
    );
    // She holds it: no second seat, and only she may be allocated it.
    assert!(matches!(
        pool.allocate(id(1), learner("ann"), at(3)),
        Err(Error::LearnerHasSeat)
    ));
    assert!(matches!(
        pool.reserve(id(1), Some(learner("ann")), at(3), at(9)),
        Err(Error::LearnerHasSeat)
    ));
    assert!(matches!(
        pool.allocate(id(2), learner("bob"), at(3)),
        Err(Error::SeatUnavailable(SeatState::Reserved))
    ));
    assert!(pool.allocate(id(3), learner("bob"), at(3)).is_ok(), "unnamed: anyone");
    assert_eq!(pool.next_deadline(), Some(at(20)));
    assert_eq!(pool.due(at(19)), []);
    assert_eq!(pool.due(at(50)), [(id(3), at(20)), (id(2), at(50))]);
    assert_eq!(pool.overdue(at(20)), 1);
    // Allocating her reservation ends its deadline with it.
    let hers = pool
        .allocate(id(2), learner("ann"), at(4))
        .unwrap_or_else(|e| panic!("{e}"));
    pool.apply(hers);
    assert_eq!(pool.due(at(99)), [(id(3), at(20))]);
    let released = pool.release(id(3), at(5)).unwrap_or_else(|e| panic!("{e}"));
    pool.apply(released);
    assert_eq!(pool.next_deadline(), None);
    assert!(matches!(
        pool.release(id(3), at(6)),
        Err(Error::NotReserved(SeatState::Free))
    ));
    pool.check_invariants().unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn terms_lapse_by_run_and_renewals_split_runs_in_place() {
    let mut pool = SeatPool::new(id(1));
    let block = |first: u64, count: u64| BlockRecord {
        tenant_id: id(1),
        first_seat: id(first),
        count,
        first_audit: id::<AuditId>(first),
        created_at: at(0),
        changed_by: UserId::parse("admin").unwrap_or_else(|_| unreachable!()),
    };
    pool.add_block(block(1, 4), Some(at(100)));
    pool.add_block(block(10, 2), None);
    let taken = pool
        .allocate(id(1), learner("kept"), at(1))
        .unwrap_or_else(|e| panic!("{e}"));
    pool.apply(taken);
    assert_eq!(pool.first_free(at(99)), Some(id(2)));
    assert_eq!(pool.first_free(at(100)), Some(id(10)), "the term ended: passed by");
    assert!(matches!(
        pool.allocate(id(2), learner("x"), at(100)),
        Err(Error::SeatExpired)
    ));
    assert!(matches!(
        pool.reserve(id(2), None, at(100), at(200)),
        Err(Error::SeatExpired)
    ));
    assert_eq!(pool.expired(at(100)), 4);
    assert_eq!(pool.expiring_before(at(101)), [id(1), id(2), id(3), id(4)]);
    assert!(matches!(pool.renewable(id(10), at(500)), Err(Error::NoTerm)));
    assert!(matches!(pool.renewable(id(2), at(50)), Err(Error::NotExtended(_))));
    pool.renew(&[id(2), id(4)], at(500));
    pool.check_invariants().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pool.term_of(id(2)), Some(at(500)));
    assert_eq!(pool.term_of(id(3)), Some(at(100)));
    assert_eq!(pool.expired(at(100)), 2);
    assert_eq!(
        pool.free_seats(at(100)).collect::<Vec<_>>(),
        [id(2), id(4), id(10), id(11)]
    );
    assert_eq!(pool.seat_of(&learner("kept")).map(|s| s.id), Some(id(1)));
    // Renewing the rest joins the runs again.
    pool.renew(&[id(1), id(3)], at(500));
    assert_eq!(pool.terms(), [(at(500), 4)]);
}

#[test]
fn seats_move_out_and_in_with_their_purchase_and_term() {
    let mut a = pool_with(1, 6);
    let mut b = SeatPool::new(id(2));
    let taken = a
        .allocate(id(5), learner("stay"), at(1))
        .unwrap_or_else(|e| panic!("{e}"));
    a.apply(taken);
    let held = a
        .reserve(id(6), Some(learner("held")), at(1), at(9))
        .unwrap_or_else(|e| panic!("{e}"));
    a.apply(held);
    assert!(matches!(
        a.movable(id(5), at(2)),
        Err(Error::SeatUnavailable(SeatState::Assigned))
    ));
    assert!(matches!(
        a.movable(id(6), at(2)),
        Err(Error::SeatUnavailable(SeatState::Reserved))
    ));
    let moving = [id(2), id(4)];
    let moved: Vec<Moved> = moving.iter().filter_map(|s| a.moved(*s)).collect();
    a.take_out(&moving);
    b.take_in(moved, at(3));
    for pool in [&a, &b] {
        pool.check_invariants().unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(a.counts().total(), 4);
    assert_eq!(b.counts().free, 2);
    assert!(a.seat(id(2)).is_none() && a.seat(id(4)).is_none());
    let there = b.seat(id(4)).unwrap_or_else(|| unreachable!());
    assert_eq!(
        (there.tenant_id, there.created_at, there.updated_at),
        (id(2), at(1), at(3))
    );
    assert_eq!(
        b.block_of(id(4)).map(|r| r.first_seat),
        Some(id(1)),
        "its purchase goes with it"
    );
    // What stayed is found as before (positions moved under it).
    assert_eq!(a.seat_of(&learner("stay")).map(|s| s.id), Some(id(5)));
    assert_eq!(a.seat_of(&learner("held")).map(|s| s.id), Some(id(6)));
    assert_eq!(a.deadline_of(id(6)), Some(at(9)));
    assert_eq!(a.free_seats(at(4)).collect::<Vec<_>>(), [id(1), id(3)]);
    // And back: runs of one purchase join again.
    let back: Vec<Moved> = [id(2), id(4)].iter().filter_map(|s| b.moved(*s)).collect();
    b.take_out(&[id(2), id(4)]);
    a.take_in(back, at(5));
    a.check_invariants().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a.page(None, &SeatFilter::default(), 10).seats.len(), 6);
    assert_eq!(b.counts().total(), 0);
}
