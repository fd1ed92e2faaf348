//! Reservations: made and given back by request, ended by their deadline.
//!
//! The deadlines are the pool's (in order); the actor keeps one timer, set
//! for the earliest (mini-redis's purge task, in the actor's own context:
//! no task per seat). Every message first ends the reservations already
//! past their deadline (`expire_due`), so nothing reads one as held after
//! it, whether the timer has fired or not; a start ends those that passed
//! while the service was down (`resume`). A standby ends none and sets no
//! timer: the primary's expiries come with the stream; once promoted, the
//! actor sets it (`Promoted`).

use std::time::Duration;

use actix::{AsyncContext, Context, Handler};

use crate::domain::{reasons, SeatState, Timestamp, Transition, UserId};

use super::bulk::{Draft, Sink};
use super::{Durable, Error, Release, Reserve, TenantActor};

/// How soon an expiry the store refused is tried again.
const RETRY: Duration = Duration::from_millis(500);

impl TenantActor {
    /// Ends every reservation whose deadline has passed (one write for
    /// all); `false` if the store refused: they are left for the next
    /// message or timer (a failed store stops the service anyway).
    pub(super) fn expire_due(&mut self) -> bool {
        if self.store.follows() || self.pool.next_deadline().is_none_or(|d| d > Timestamp::now()) {
            return true;
        }
        match self.expire(false) {
            Ok(_) => true,
            Err(e) => {
                tracing::error!(tenant = %self.tenant, error = %e, "reservations past their deadline could not be ended");
                false
            }
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
        self.write_many(Transition::Expire, drafts, &system, at, after, Sink::Change(None))?;
        self.apply_all(Transition::Expire, changes);
        Ok(n)
    }

    /// Sets the timer for the earliest deadline, if it is not set for it
    /// (none on a standby).
    pub(super) fn arm(&mut self, ctx: &mut Context<Self>) {
        let next = self.pool.next_deadline().filter(|_| !self.store.follows());
        if self.timer.as_ref().map(|(at, _)| *at) == next {
            return;
        }
        if let Some((_, handle)) = self.timer.take() {
            ctx.cancel_future(handle);
        }
        if let Some(deadline) = next {
            let micros = deadline.micros().saturating_sub(Timestamp::now().micros()).max(0);
            self.set_timer(ctx, deadline, Duration::from_micros(micros as u64));
        }
    }

    /// The timer for `deadline`, in `wait`. When the store refuses the
    /// expiry (a fenced primary), it tries again a little later rather
    /// than at once.
    fn set_timer(&mut self, ctx: &mut Context<Self>, deadline: Timestamp, wait: Duration) {
        let handle = ctx.run_later(wait, move |actor, ctx| {
            actor.timer = None;
            if actor.expire_due() {
                actor.arm(ctx);
            } else {
                actor.set_timer(ctx, deadline, RETRY);
            }
        });
        self.timer = Some((deadline, handle));
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
