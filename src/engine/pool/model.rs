//! Model-based property tests: random sequences of purchases, allocations,
//! reclaims, checks that are never applied, and restarts (rebuilding the pool
//! from what the store would hold), run against a plain map of seat → holder.
//! After every step the pool must agree with the model seat by seat, and its
//! own invariants must hold.

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
    let lowest_free = model.seats.iter().find(|(_, h)| h.is_none()).map(|(&s, _)| s);
    prop_assert_eq!(pool.first_free(Timestamp::from_micros(0)).map(|s| s.get()), lowest_free);
    for (&seat, holder) in &model.seats {
        if let Some(l) = holder {
            let learner = LearnerId::parse(l).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(pool.seat_of(&learner).map(|s| s.id.get()), Some(seat));
        }
    }
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
                    pool.add_block(block, None);
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
                            disk.seats.insert(seat, pool.record(&change));
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
                            disk.seats.insert(seat, pool.record(&change));
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
                        fresh.add_block(block.clone(), None);
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
