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
