//! Reservations: made and given back by request, ended by their deadline.
//!
//! The deadlines are the pool's (in order); the actor keeps one timer, set
//! for the earliest (mini-redis's purge task, in the actor's own context:
//! no task per seat). Every message first ends the reservations already
//! past their deadline (`expire_due`), so nothing reads one as held after
//! it, whether the timer has fired or not; a start ends those that passed
//! while the service was down (`resume`).

use std::time::Duration;

use actix::{AsyncContext, Context, Handler};

use crate::domain::{reasons, SeatState, Timestamp, Transition, UserId};

use super::bulk::Draft;
use super::{Durable, Error, Release, Reserve, TenantActor};

impl TenantActor {
    /// Ends every reservation whose deadline has passed (one write for
    /// all). A write the store refuses leaves them for the next message or
    /// timer; a failed store stops the service anyway.
    pub(super) fn expire_due(&mut self) {
        if self.pool.next_deadline().is_none_or(|d| d > Timestamp::now()) {
            return;
        }
        if let Err(e) = self.expire(false) {
            tracing::error!(tenant = %self.tenant, error = %e, "reservations past their deadline could not be ended");
        }
    }

    /// Ends the reservations due now, each with an audit entry by "system"
    /// dated now. `late`: on start, for deadlines that passed while the
    /// service was down, the reason names the deadline.
    pub(super) fn expire(&mut self, late: bool) -> Result<usize, Error> {
        let at = self.now();
        let mut changes = Vec::new();
        let mut drafts = Vec::new();
        for (seat, deadline) in self.pool.due(at) {
            let change = self.pool.release(seat, at)?;
            let reason = if late {
                format!(
                    "{} (deadline {} passed while the service was down)",
                    reasons::EXPIRED,
                    deadline.rfc3339()
                )
            } else {
                reasons::EXPIRED.to_owned()
            };
            drafts.push(Draft {
                seat,
                previous: (SeatState::Reserved, change.before.learner.clone()),
                record: self.pool.record(&change),
                reason,
            });
            changes.push(change);
        }
        let n = changes.len();
        let after = changes
            .iter()
            .fold(self.pool.counts(), |c, ch| c.moved(ch.before.state(), ch.after.state()));
        let system = UserId::parse(reasons::SYSTEM).map_err(|e| Error::Internal(anyhow::anyhow!("{e}")))?;
        self.write_many(Transition::Expire, drafts, &system, at, after, None)?;
        self.apply_all(Transition::Expire, changes);
        Ok(n)
    }

    /// Sets the timer for the earliest deadline, if it is not set for it.
    pub(super) fn arm(&mut self, ctx: &mut Context<Self>) {
        let next = self.pool.next_deadline();
        if self.timer.as_ref().map(|(at, _)| *at) == next {
            return;
        }
        if let Some((_, handle)) = self.timer.take() {
            ctx.cancel_future(handle);
        }
        if let Some(deadline) = next {
            let micros = deadline.micros().saturating_sub(Timestamp::now().micros()).max(0);
            let wait = Duration::from_micros(micros as u64);
            let handle = ctx.run_later(wait, |actor, ctx| {
                actor.timer = None;
                actor.expire_due();
                actor.arm(ctx);
            });
            self.timer = Some((deadline, handle));
        }
    }
}

/// A free seat (the one named, or the lowest) reserved until `ttl` from now.
impl Handler<Reserve> for TenantActor {
    type Result = Durable<crate::domain::Seat>;
    fn handle(&mut self, msg: Reserve, _: &mut Context<Self>) -> Self::Result {
        let now = self.now();
        let until = msg.ttl.after(now);
        let value = msg
            .seat
            .or_else(|| self.pool.first_free(now))
            .ok_or(Error::NoFreeSeat)
            .and_then(|seat| self.pool.reserve(seat, msg.learner, now, until))
            .and_then(|change| self.commit(Transition::Reserve, change, msg.by, reasons::RESERVED.into(), msg.keyed));
        self.reply(value)
    }
}

impl Handler<Release> for TenantActor {
    type Result = Durable<crate::domain::Seat>;
    fn handle(&mut self, msg: Release, _: &mut Context<Self>) -> Self::Result {
        let now = self.now();
        let value = self
            .pool
            .release(msg.seat, now)
            .and_then(|change| self.commit(Transition::Release, change, msg.by, reasons::RELEASED.into(), msg.keyed));
        self.reply(value)
    }
}
