//! License terms: a seat's term extended (renewed), one audit entry each.
//! A term that has ended needs no write: from then on the seat cannot be
//! taken (the pool compares with the clock), and summaries count it.

use actix::{Context, Handler};

use crate::domain::{reasons, SeatId, Timestamp, Transition};

use super::bulk::{Planned, RowOutcome};
use super::{Durable, Renew, TenantActor};

/// Which seats a renewal extends.
pub enum Renewal {
    /// These seats (each once, in input order), to the term ending `until`.
    Seats(Vec<SeatId>, Timestamp),
    /// Every seat whose term ends before `before`, to the term ending `until`.
    ExpiringBefore(Timestamp, Timestamp),
}

impl Handler<Renew> for TenantActor {
    type Result = Durable<Vec<(SeatId, RowOutcome)>>;
    fn handle(&mut self, msg: Renew, _: &mut Context<Self>) -> Self::Result {
        let at = self.now();
        let (seats, until) = match msg.renewal {
            Renewal::Seats(seats, until) => (seats, until),
            Renewal::ExpiringBefore(before, until) => (self.pool.expiring_before(before), until),
        };
        let mut rows = Vec::with_capacity(seats.len());
        let mut changes = Vec::new();
        for &seat in &seats {
            match self
                .pool
                .renewable(seat, until)
                .and_then(|()| self.pool.touch(seat, at))
            {
                Ok(change) => {
                    changes.push(change);
                    rows.push(Planned::Change);
                }
                Err(e) => rows.push(Planned::Done(RowOutcome::Refused(e))),
            }
        }
        let reason = format!("{} until {}", reasons::RENEWED, until.rfc3339());
        let value = self.renew((&seats, rows), changes, until, (&msg.by, &reason), at, msg.keyed);
        self.reply(value)
    }
}

impl TenantActor {
    /// Writes the renewals planned (`rows`, one per seat of `seats`), then
    /// gives the seats their new term; each seat's outcome, in order.
    fn renew(
        &mut self,
        (asked, rows): (&[SeatId], Vec<Planned>),
        changes: Vec<super::SeatChange>,
        until: Timestamp,
        (by, reason): (&crate::domain::UserId, &str),
        at: Timestamp,
        keyed: Option<super::Keyed<Vec<(SeatId, RowOutcome)>>>,
    ) -> Result<Vec<(SeatId, RowOutcome)>, super::Error> {
        // The records and views carry the new term.
        let mut seats: Vec<SeatId> = changes.iter().map(|c| c.seat).collect();
        seats.sort_unstable();
        let mut drafts = Vec::with_capacity(changes.len());
        let mut views = Vec::with_capacity(changes.len());
        for change in &changes {
            let mut record = self.pool.record(change);
            record.expires_at = Some(until);
            let mut view = self.pool.view_after(change);
            if let Some(v) = &mut view {
                v.expires_at = Some(until);
            }
            views.extend(view);
            drafts.push(super::bulk::Draft {
                seat: change.seat,
                previous: (change.before.state(), change.before.learner.clone()),
                record,
                reason: reason.to_owned(),
            });
        }
        let outcomes: Vec<(SeatId, RowOutcome)> = asked.iter().copied().zip(Planned::resolve(rows, views)).collect();
        if changes.is_empty() {
            return self.keep(keyed, outcomes);
        }
        let answer = super::answer(keyed, &outcomes);
        let counts = self.pool.counts();
        self.write_many(
            Transition::Renew,
            drafts,
            by,
            at,
            counts,
            super::bulk::Sink::Change(answer),
        )?;
        self.apply_all(Transition::Renew, changes);
        self.pool.renew(&seats, until);
        self.published.set_terms(self.pool.terms());
        Ok(outcomes)
    }
}
