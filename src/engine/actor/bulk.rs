//! Bulk seat changes in one tenant's actor: every input planned against the
//! pool as it is, then all the changes written as one change of the store
//! (`Store::put_seat_changes`) and applied together.

use actix::{Context, Handler};

use crate::domain::{
    chain, Audit, AuditId, Counts, LearnerId, Reason, Seat, SeatId, SeatRecord, SeatState, Timestamp, Transition,
    UserId,
};
use crate::store::{IdSpace, SeatWrite};

use super::super::answers::{answer, Keyed};
use super::super::error::{Error, Missing};
use super::super::pool::SeatChange;
use super::super::stats::day_of;
use super::{AssignMany, Durable, ReclaimMany, TenantActor};

impl TenantActor {
    /// Writes many checked changes (all dated `at`) as one change of the
    /// store, one audit entry each, with the answer to keep if one is asked
    /// for, then applies them; each row's outcome, in order.
    fn commit_many(
        &mut self,
        kind: Transition,
        (rows, changes): (Vec<Planned>, Vec<SeatChange>),
        by: &UserId,
        reason: &str,
        at: Timestamp,
        keyed: Option<Keyed<Vec<RowOutcome>>>,
    ) -> Result<Vec<RowOutcome>, Error> {
        let seats = changes.iter().filter_map(|c| self.pool.view_after(c)).collect();
        let outcomes = Planned::resolve(rows, seats);
        if changes.is_empty() {
            return self.keep(keyed, outcomes);
        }
        let answer = answer(keyed, &outcomes);
        let after = changes
            .iter()
            .fold(self.pool.counts(), |c, ch| c.moved(ch.before.state(), ch.after.state()));
        let records: Vec<SeatRecord> = changes.iter().map(|c| self.pool.record(c)).collect();
        let drafts = changes.iter().zip(records).map(|(c, record)| Draft {
            seat: c.seat,
            previous: (c.before.state(), c.before.learner.clone()),
            record,
            reason: reason.to_owned(),
        });
        self.write_many(kind, drafts.collect(), by, at, after, Sink::Change(answer))?;
        self.apply_all(kind, changes);
        Ok(outcomes)
    }

    /// Writes seat changes (all dated `at`) as one change of the store, one
    /// audit entry each (the tenant's chain, an alert if `after` crosses
    /// the threshold, the per-minute stats), as `sink` says. Applying them
    /// to the pool is the caller's, once this returns.
    pub(super) fn write_many(
        &mut self,
        kind: Transition,
        drafts: Vec<Draft>,
        by: &UserId,
        at: Timestamp,
        after: Counts,
        sink: Sink,
    ) -> Result<(), Error> {
        let Some(last) = drafts.len().checked_sub(1) else {
            return Ok(());
        };
        let first_audit: AuditId = self.id(IdSpace::Audit, drafts.len() as u64)?;
        self.roll_day(at)?;
        let before = self.pool.counts();
        let mut head = self.head;
        let mut written = Vec::with_capacity(drafts.len());
        for (i, d) in drafts.iter().enumerate() {
            let audit = Audit {
                id: first_audit.offset(i as u64),
                seat_id: d.seat,
                previous_state: Some(d.previous.0),
                new_state: d.record.state,
                previous_learner_id: d.previous.1.clone(),
                new_learner_id: d.record.learner_id.clone(),
                changed_by: by.clone(),
                reason: d.reason.clone(),
                created_at: at,
            };
            head = chain(&head, self.tenant, &audit);
            written.push((audit, head));
        }
        // One crossing at most: a bulk change moves utilization one way.
        let alert = self.alert(before, after, first_audit.offset(last as u64), at);
        let writes: Vec<SeatWrite<'_>> = drafts
            .iter()
            .zip(&written)
            .enumerate()
            .map(|(i, (d, (audit, hash)))| SeatWrite {
                seat: d.seat,
                record: &d.record,
                audit,
                hash: *hash,
                alert: alert.as_ref().filter(|_| i == last),
            })
            .collect();
        self.last_write = match sink {
            // A transfer's arrival: its commit point was the source's write.
            Sink::Arrival(from) => self.store.put_arrivals(self.tenant, from, &writes)?,
            Sink::Change(answer) => self.store.put_seat_changes(self.tenant, &writes, answer.as_ref())?,
        };
        self.head = head;
        self.raised(alert);
        self.day = Some(day_of(at));
        self.stats.record(kind, at, drafts.len() as u64);
        Ok(())
    }
}

/// How `write_many` writes its changes.
pub(super) enum Sink {
    /// As a change of this tenant's, with the answer to keep if one is.
    Change(Option<crate::domain::Answer>),
    /// As the arriving side of a transfer from this tenant.
    Arrival(crate::domain::TenantId),
}

/// One seat change to write: the seat, what it was (state and learner), the
/// record it leaves and the reason its audit entry gives.
pub(super) struct Draft {
    pub seat: SeatId,
    pub previous: (SeatState, Option<LearnerId>),
    pub record: SeatRecord,
    pub reason: String,
}

/// What a bulk change did with one input.
#[derive(Debug)]
pub enum RowOutcome {
    /// The seat, changed by this request.
    Changed(Seat),
    /// Nothing to do: the seat as it already is (the learner's seat).
    Unchanged(Seat),
    /// The same seat as an earlier input of the request.
    Duplicate,
    Refused(Error),
}

/// A seat to reclaim: by id, or the one a learner holds.
pub enum Target {
    Seat(SeatId),
    Learner(LearnerId),
}

/// Plans every change against the pool as it is (the learners are distinct,
/// each taking the next free seat), then writes them as one change: all of
/// them or, if the store refuses, none.
impl Handler<AssignMany> for TenantActor {
    type Result = Durable<Vec<RowOutcome>>;
    fn handle(&mut self, msg: AssignMany, _: &mut Context<Self>) -> Self::Result {
        let at = self.now();
        let mut rows = Vec::with_capacity(msg.learners.len());
        let mut changes = Vec::new();
        let mut free = self.pool.free_seats(at);
        for learner in msg.learners {
            let held = self.pool.seat_of(&learner);
            if let Some(held) = held.clone().filter(|s| s.state == SeatState::Assigned) {
                rows.push(Planned::Done(RowOutcome::Unchanged(held)));
                continue;
            }
            // The seat reserved for them, else the next free one.
            let planned = held
                .map(|s| s.id)
                .or_else(|| free.next())
                .ok_or(Error::NoFreeSeat)
                .and_then(|seat| self.pool.allocate(seat, learner, at));
            rows.push(match planned {
                Ok(change) => {
                    changes.push(change);
                    Planned::Change
                }
                Err(e) => Planned::Done(RowOutcome::Refused(e)),
            });
        }
        drop(free);
        // The contract's sentence, unless the caller names why (a roster import).
        let reason = msg.reason.as_ref().map_or("Seat allocated to learner", Reason::as_str);
        let value = self.commit_many(Transition::Allocate, (rows, changes), &msg.by, reason, at, msg.keyed);
        self.reply(value)
    }
}

impl Handler<ReclaimMany> for TenantActor {
    type Result = Durable<Vec<RowOutcome>>;
    fn handle(&mut self, msg: ReclaimMany, _: &mut Context<Self>) -> Self::Result {
        let at = self.now();
        let mut rows = Vec::with_capacity(msg.targets.len());
        let mut changes = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for target in msg.targets {
            let seat = match target {
                Target::Seat(seat) => Some(seat).filter(|s| self.pool.block_of(*s).is_some()),
                Target::Learner(learner) => self.pool.seat_of(&learner).map(|s| s.id),
            };
            let row = match seat {
                None => Planned::Done(RowOutcome::Refused(Error::NotFound(Missing::Seat))),
                Some(seat) if !seen.insert(seat) => Planned::Done(RowOutcome::Duplicate),
                Some(seat) => match self.pool.reclaim(seat, at) {
                    Ok(change) => {
                        changes.push(change);
                        Planned::Change
                    }
                    Err(Error::SeatAlreadyFree) => match self.pool.seat(seat) {
                        Some(free) => Planned::Done(RowOutcome::Unchanged(free)),
                        None => Planned::Done(RowOutcome::Refused(Error::NotFound(Missing::Seat))),
                    },
                    Err(e) => Planned::Done(RowOutcome::Refused(e)),
                },
            };
            rows.push(row);
        }
        let reason = msg.reason.as_str();
        let value = self.commit_many(Transition::Reclaim, (rows, changes), &msg.by, reason, at, msg.keyed);
        self.reply(value)
    }
}

/// A bulk input before the write: decided already, or one of the changes.
pub(super) enum Planned {
    Done(RowOutcome),
    Change,
}

impl Planned {
    /// Each planned change gets its seat as written, in order.
    pub(super) fn resolve(rows: Vec<Planned>, seats: Vec<Seat>) -> Vec<RowOutcome> {
        let mut seats = seats.into_iter();
        rows.into_iter()
            .map(|row| match row {
                Planned::Done(outcome) => outcome,
                Planned::Change => seats
                    .next()
                    .map_or(RowOutcome::Refused(Error::NotFound(Missing::Seat)), RowOutcome::Changed),
            })
            .collect()
    }
}
