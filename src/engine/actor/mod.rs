//! The tenant actor: owns one `SeatPool`, handles one message at a time (so
//! the pool's rules cannot race), and writes each change to the store before
//! applying it in memory. Every reply carries the sequence of the actor's
//! latest write: the caller answers only once that is durable, so no reply
//! (a refusal or a summary included) reveals state a crash could take back.

use std::sync::Arc;

use actix::dev::{MessageResponse, OneshotSender};
use actix::{Actor, Context, Handler, Message, SpawnHandle};

use tokio::sync::OwnedSemaphorePermit;

use crate::domain::{
    chain, Alert, Audit, AuditId, BlockRecord, Counts, Hash, Id, LearnerId, Percent, Reason, Seat, SeatCount, SeatId,
    SeatState, TenantId, Threshold, Timestamp, Transition, UserId,
};
use crate::metrics::Metrics;
use crate::store::{ChainHead, IdSpace, SeatWrite, Seq, Store};

use super::answers::{answer, Keyed};
use super::durable::Durable;
use super::error::{Error, Missing};
use super::pool::{SeatChange, SeatFilter, SeatPool, SeatRun};
use super::published::PublishedCounts;
use super::router::SeatRouter;
use super::stats::{day_of, MinuteCounts, MinuteStats};
pub use bulk::{RowOutcome, Target};
pub use terms::Renewal;
pub use transfer::{MoveRow, Moving, Selection};

mod apply;
mod bulk;
mod expiry;
mod terms;
mod transfer;

impl<A: Actor, M: Message<Result = Durable<T>>, T: 'static> MessageResponse<A, M> for Durable<T> {
    fn handle(self, _: &mut A::Context, tx: Option<OneshotSender<Durable<T>>>) {
        if let Some(tx) = tx {
            // The caller may have gone (client hung up); the change stands either way.
            let _ = tx.send(self);
        }
    }
}

/// What a tenant actor resumes from, besides its pool (`Default`: a new tenant).
#[derive(Default)]
pub struct Restored {
    /// The end of the tenant's audit trail.
    pub head: Option<ChainHead>,
    pub stats: MinuteStats,
    pub threshold: Option<Percent>,
}

pub struct TenantActor {
    tenant: TenantId,
    pool: SeatPool,
    store: Arc<Store>,
    router: Arc<SeatRouter>,
    metrics: Arc<Metrics>,
    /// Sequence of this actor's latest write; every reply waits for it.
    last_write: Seq,
    /// Where summaries read this pool's counters (updated with each change).
    published: Arc<PublishedCounts>,
    /// The tenant's audit hash chain after its latest stored entry.
    head: Hash,
    /// The latest time this actor handed out. Audit times never go below it,
    /// even if the wall clock steps back, so the tenant's trail keys (time,
    /// then id) sort in write order, which is the chain's order.
    clock: Timestamp,
    /// Transitions per minute over the last day (`GET /seats/stats`).
    stats: MinuteStats,
    /// Utilization alert threshold. Kept here so that a crossing is decided
    /// in the same step as the change that crosses it.
    threshold: Option<Percent>,
    /// The day of the latest change (None: never changed). When a change
    /// comes on a later day, the counts as they were are stored as that
    /// day's snapshot first (utilization history).
    day: Option<i64>,
    /// The one timer of this actor: set for the earliest reservation
    /// deadline (`expiry`), with the deadline it was set for. No task per
    /// seat: the deadlines are the pool's, in order.
    timer: Option<(Timestamp, SpawnHandle)>,
    /// A standby: the parts of a bulk change received so far (see `apply`).
    parts: Vec<(SeatId, crate::store::records::SeatEntry)>,
    /// Seats a transfer was moving here when the process stopped, whose
    /// arrival is still to be written (seat, source, who asked): at start,
    /// or, on a standby, once it is the primary, unless the stream brings
    /// the arrival first (see `settle`).
    owed: Vec<(SeatId, TenantId, UserId)>,
}

impl TenantActor {
    pub fn new(
        tenant: TenantId,
        pool: SeatPool,
        store: Arc<Store>,
        router: Arc<SeatRouter>,
        published: Arc<PublishedCounts>,
        metrics: Arc<Metrics>,
        restored: Restored,
    ) -> Self {
        let Restored { head, stats, threshold } = restored;
        let day = head.map(|h| day_of(h.at));
        TenantActor {
            tenant,
            pool,
            store,
            router,
            metrics,
            last_write: 0,
            published,
            head: head.map_or([0; 32], |h| h.hash),
            clock: head.map_or(Timestamp::from_micros(i64::MIN), |h| h.at),
            stats,
            threshold,
            day,
            timer: None,
            parts: Vec::new(),
            owed: Vec::new(),
        }
    }

    fn publish(&self) {
        self.published.set(self.pool.counts(), self.last_write, &[], &[]);
    }

    /// Applies changes the store has accepted: pool, metrics and the
    /// published counters and deadlines.
    fn apply_all(&mut self, kind: Transition, changes: Vec<SeatChange>) {
        let mut ended = Vec::new();
        let mut began = Vec::new();
        for change in changes {
            ended.extend(self.pool.deadline_of(change.seat));
            if change.after.state() == SeatState::Reserved {
                began.extend(change.until);
            }
            self.metrics.moved(kind, change.before.state(), change.after.state());
            self.pool.apply(change);
        }
        self.published.set(self.pool.counts(), self.last_write, &ended, &began);
    }

    /// The wall clock, never earlier than a time already handed out.
    fn now(&mut self) -> Timestamp {
        self.clock = Timestamp::now().max(self.clock);
        self.clock
    }

    /// Every reply waits for the actor's latest write: a refusal or a read
    /// may rest on it as much as the change it made.
    fn reply<T>(&self, value: Result<T, Error>) -> Durable<T> {
        Durable::after(self.last_write, value)
    }

    fn purchase(
        &mut self,
        count: SeatCount,
        expires_at: Option<Timestamp>,
        by: UserId,
        keyed: Option<Keyed<Vec<Seat>>>,
    ) -> Result<Vec<Seat>, Error> {
        let n = count.get();
        self.pool.room_for(n)?;
        if expires_at.is_some_and(|end| end <= Timestamp::now()) {
            return Err(Error::invalid("expires_at", "must be in the future"));
        }
        let first_seat = self.id::<SeatId>(IdSpace::Seat, n)?;
        let first_audit = self.id::<AuditId>(IdSpace::Audit, n)?;
        let block = BlockRecord {
            tenant_id: self.tenant,
            first_seat,
            count: n,
            first_audit,
            created_at: self.now(),
            changed_by: by,
        };
        self.roll_day(block.created_at)?;
        let head = (0..n).fold(self.head, |h, i| chain(&h, self.tenant, &block.purchase_audit(i)));
        let before = self.pool.counts();
        let after = before
            + Counts {
                free: n,
                ..Counts::default()
            };
        let alert = self.alert(before, after, first_audit, block.created_at);
        let answer = keyed.map(|k| k.answer(&self.pool.new_block_seats(&block, expires_at)));
        self.last_write = self
            .store
            .put_block(&block, expires_at, head, alert.as_ref(), answer.as_ref())?;
        self.head = head;
        self.raised(alert);
        self.day = Some(day_of(block.created_at));
        self.metrics.purchased(n);
        self.stats.record(Transition::Purchase, block.created_at, n);
        self.router.insert(first_seat, n, self.tenant);
        self.pool.add_block(block, expires_at);
        self.publish();
        if expires_at.is_some() {
            self.published.set_terms(self.pool.terms());
        }
        Ok(self.pool.block_seats(first_seat))
    }

    /// Writes a checked change with its audit entry (and the answer to
    /// keep, if any), then applies it.
    fn commit(
        &mut self,
        kind: Transition,
        change: SeatChange,
        by: UserId,
        reason: String,
        keyed: Option<Keyed<Seat>>,
    ) -> Result<Seat, Error> {
        let seat = self
            .pool
            .view_after(&change)
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("seat vanished while being changed")))?;
        let audit = Audit {
            id: self.id(IdSpace::Audit, 1)?,
            seat_id: change.seat,
            previous_state: Some(change.before.state()),
            new_state: change.after.state(),
            previous_learner_id: change.before.learner.clone(),
            new_learner_id: change.after.learner.clone(),
            changed_by: by,
            reason,
            created_at: change.after.updated_at,
        };
        let record = self.pool.record(&change);
        self.roll_day(audit.created_at)?;
        let head = chain(&self.head, self.tenant, &audit);
        let before = self.pool.counts();
        let after = before.moved(change.before.state(), change.after.state());
        let alert = self.alert(before, after, audit.id, audit.created_at);
        let answer = answer(keyed, &seat);
        let write = SeatWrite {
            seat: change.seat,
            record: &record,
            audit: &audit,
            hash: head,
            alert: alert.as_ref(),
        };
        self.last_write = self.store.put_transition(self.tenant, &write, answer.as_ref())?;
        self.head = head;
        self.raised(alert);
        self.day = Some(day_of(audit.created_at));
        self.stats.record(kind, audit.created_at, 1);
        self.apply_all(kind, vec![change]);
        Ok(seat)
    }

    /// Keeps the answer to a request that changed nothing (if one is asked
    /// for): its only write.
    fn keep<T: 'static>(&mut self, keyed: Option<Keyed<T>>, value: T) -> Result<T, Error> {
        if let Some(answer) = answer(keyed, &value) {
            self.last_write = self.store.put_answer(&answer)?;
        }
        Ok(value)
    }

    /// Before the first change of a new day: the counts at the end of the
    /// previous day with changes become that day's snapshot.
    fn roll_day(&mut self, at: Timestamp) -> Result<(), Error> {
        if let Some(day) = self.day.filter(|d| *d < day_of(at)) {
            self.last_write = self.store.put_day(self.tenant, day, &self.pool.counts())?;
        }
        Ok(())
    }

    /// The alert a change of counts raises, if it crosses the threshold.
    fn alert(&self, before: Counts, after: Counts, audit_id: AuditId, at: Timestamp) -> Option<Alert> {
        let threshold = self.threshold?;
        let (from, to) = (before.utilization(), after.utilization());
        Alert::crossing(threshold, from, to).map(|direction| Alert {
            tenant_id: self.tenant,
            audit_id,
            direction,
            threshold_percent: threshold,
            utilization_before: from,
            utilization_after: to,
            created_at: at,
        })
    }

    /// Once the alert's write went through: log and count it.
    fn raised(&self, alert: Option<Alert>) {
        if let Some(a) = alert {
            tracing::warn!(
                tenant = %a.tenant_id,
                threshold = a.threshold_percent.get(),
                before = a.utilization_before,
                after = a.utilization_after,
                direction = ?a.direction,
                "seat utilization crossed the alert threshold"
            );
            self.metrics.alert(a.direction);
        }
    }

    fn id<I: Id>(&self, space: IdSpace, n: u64) -> Result<I, Error> {
        let raw = self.store.ids(space, n)?;
        I::new(raw).ok_or_else(|| Error::Internal(anyhow::anyhow!("store handed out id 0")))
    }
}

impl Actor for TenantActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.arm(ctx);
    }
}

impl TenantActor {
    /// Before the actor starts, on start-up: the arrival of seats a
    /// transfer was moving here when the process stopped (`arriving`:
    /// seat, source, who asked), and the end of the reservations whose
    /// deadline passed while it was down, each written now. A write the
    /// store refuses is logged: the seats stay as they are (in the pool the
    /// records named), and the next start tries again. A standby writes
    /// neither: the primary does, and the stream brings them (or this
    /// instance does once it is the primary, `Promoted`).
    pub fn resume(&mut self, arriving: Vec<(SeatId, TenantId, UserId)>) {
        self.owed = arriving;
        if self.store.follows() {
            return;
        }
        self.finish_arrivals();
        if self.pool.next_deadline().is_some_and(|d| d <= Timestamp::now()) {
            match self.expire(true) {
                Ok(n) => {
                    tracing::info!(tenant = %self.tenant, seats = n, "ended reservations whose deadline passed while stopped")
                }
                Err(e) => {
                    tracing::error!(tenant = %self.tenant, error = %e, "could not end reservations past their deadline")
                }
            }
        }
    }

    /// What this actor writes of its own accord before handling anything
    /// (not on a standby: there the stream brings the primary's): the
    /// arrivals it owes, and the end of reservations past their deadline.
    fn settle(&mut self) {
        if self.store.follows() {
            return;
        }
        self.finish_arrivals();
        self.expire_due();
    }

    /// Writes the arrivals owed (`owed`), if the store takes writes now.
    fn finish_arrivals(&mut self) {
        if self.owed.is_empty() || self.store.fenced() {
            return;
        }
        let n = self.owed.len();
        match self.arrived() {
            Ok(()) => tracing::warn!(tenant = %self.tenant, seats = n, "finished a transfer a crash cut short"),
            Err(e) => tracing::error!(tenant = %self.tenant, error = %e, "could not finish a transfer cut short"),
        }
    }
}

/// A message and the mailbox slot it occupies until the actor has handled
/// it (`Mailbox` in `mailbox.rs` sends every message this way).
pub struct Slotted<M> {
    pub msg: M,
    pub slot: OwnedSemaphorePermit,
}

impl<M: Message> Message for Slotted<M>
where
    M::Result: 'static,
{
    type Result = M::Result;
}

macro_rules! message {
    ($name:ident { $($field:ident : $ty:ty),* } -> $out:ty) => {
        pub struct $name { $(pub $field: $ty),* }
        impl Message for $name {
            type Result = Durable<$out>;
        }
        // Handled like the bare message; the mailbox slot is freed after.
        impl Handler<Slotted<$name>> for TenantActor {
            type Result = Durable<$out>;
            fn handle(&mut self, slotted: Slotted<$name>, ctx: &mut Context<Self>) -> Self::Result {
                let Slotted { msg, slot } = slotted;
                // Reservations past their deadline end before anything
                // reads or changes the pool, timer or not.
                self.settle();
                let reply = <Self as Handler<$name>>::handle(self, msg, ctx);
                self.arm(ctx);
                drop(slot);
                reply
            }
        }
    };
}

message!(Purchase { count: SeatCount, expires_at: Option<Timestamp>, by: UserId, keyed: Option<Keyed<Vec<Seat>>> } -> Vec<Seat>);
message!(Reserve { seat: Option<SeatId>, learner: Option<LearnerId>, ttl: crate::domain::Ttl, by: UserId, keyed: Option<Keyed<Seat>> } -> Seat);
message!(Release { seat: SeatId, by: UserId, keyed: Option<Keyed<Seat>> } -> Seat);
message!(Renew { renewal: Renewal, by: UserId, keyed: Option<Keyed<Vec<(SeatId, RowOutcome)>>> } -> Vec<(SeatId, RowOutcome)>);
message!(TransferOut { to: TenantId, selection: Selection, by: UserId, keyed: Option<Keyed<Moving>> } -> Moving);
message!(TransferIn { from: TenantId, moved: Vec<super::pool::Moved>, by: UserId } -> ());
message!(Allocate { seat: SeatId, learner: LearnerId, by: UserId, keyed: Option<Keyed<Seat>> } -> Seat);
message!(Reclaim { seat: SeatId, reason: Reason, by: UserId, keyed: Option<Keyed<Seat>> } -> Seat);
message!(Assign { learner: LearnerId, by: UserId, keyed: Option<Keyed<(Seat, bool)>> } -> (Seat, bool));
message!(AssignMany { learners: Vec<LearnerId>, by: UserId, reason: Option<Reason>, keyed: Option<Keyed<Vec<RowOutcome>>> } -> Vec<RowOutcome>);
message!(ReclaimMany { targets: Vec<Target>, reason: Reason, by: UserId, keyed: Option<Keyed<Vec<RowOutcome>>> } -> Vec<RowOutcome>);
message!(GetSeat { seat: SeatId } -> Seat);
message!(GetBlock { seat: SeatId } -> BlockRecord);
message!(Head {} -> Hash);
message!(SetThreshold { threshold: Threshold, keyed: Option<Keyed<Threshold>> } -> Threshold);
message!(GetThreshold {} -> Option<Percent>);
message!(Today {} -> (Option<i64>, Counts));
message!(Stats { from: i64, to: i64 } -> Vec<(i64, MinuteCounts)>);
message!(ListSeats { after: Option<SeatId>, filter: SeatFilter, limit: usize } -> SeatRun);
message!(Apply { change: crate::store::Change } -> ());
message!(Promoted {} -> ());

/// This instance became the primary: what it owes is written and the
/// reservation timer set (both by the mailbox's wrapper, as before every
/// message), now that the store takes its own changes.
impl Handler<Promoted> for TenantActor {
    type Result = Durable<()>;
    fn handle(&mut self, _: Promoted, _: &mut Context<Self>) -> Self::Result {
        self.reply(Ok(()))
    }
}

impl Handler<Purchase> for TenantActor {
    type Result = Durable<Vec<Seat>>;
    fn handle(&mut self, msg: Purchase, _: &mut Context<Self>) -> Self::Result {
        let value = self.purchase(msg.count, msg.expires_at, msg.by, msg.keyed);
        self.reply(value)
    }
}

impl Handler<Allocate> for TenantActor {
    type Result = Durable<Seat>;
    fn handle(&mut self, msg: Allocate, _: &mut Context<Self>) -> Self::Result {
        let now = self.now();
        let value = self.pool.allocate(msg.seat, msg.learner, now).and_then(|change| {
            let reason = "Seat allocated to learner".into();
            self.commit(Transition::Allocate, change, msg.by, reason, msg.keyed)
        });
        self.reply(value)
    }
}

/// The learner's seat if they hold one (`false`: nothing written), else
/// the seat reserved for them or the lowest free seat, assigned to them
/// (`true`): the choice and the write are one step of this actor, so
/// concurrent assigns never share a seat.
impl Handler<Assign> for TenantActor {
    type Result = Durable<(Seat, bool)>;
    fn handle(&mut self, msg: Assign, _: &mut Context<Self>) -> Self::Result {
        let held = self.pool.seat_of(&msg.learner);
        if let Some(held) = held.clone().filter(|s| s.state == SeatState::Assigned) {
            let kept = self.keep(msg.keyed, (held, false));
            return self.reply(kept);
        }
        let now = self.now();
        let keyed = msg.keyed.map(|k| k.from(|seat: &Seat| (seat.clone(), true)));
        // The learner's own reservation first, else the lowest free seat.
        let value = held
            .map(|s| s.id)
            .or_else(|| self.pool.first_free(now))
            .ok_or(Error::NoFreeSeat)
            .and_then(|seat| self.pool.allocate(seat, msg.learner, now))
            .and_then(|change| {
                let reason = "Seat allocated to learner".into();
                self.commit(Transition::Allocate, change, msg.by, reason, keyed)
            })
            .map(|seat| (seat, true));
        self.reply(value)
    }
}

impl Handler<Reclaim> for TenantActor {
    type Result = Durable<Seat>;
    fn handle(&mut self, msg: Reclaim, _: &mut Context<Self>) -> Self::Result {
        let now = self.now();
        let value = self
            .pool
            .reclaim(msg.seat, now)
            .and_then(|change| self.commit(Transition::Reclaim, change, msg.by, msg.reason.into_string(), msg.keyed));
        self.reply(value)
    }
}

impl Handler<GetSeat> for TenantActor {
    type Result = Durable<Seat>;
    fn handle(&mut self, msg: GetSeat, _: &mut Context<Self>) -> Self::Result {
        let seat = self.pool.seat(msg.seat).ok_or(Error::NotFound(Missing::Seat));
        self.reply(seat)
    }
}

impl Handler<GetBlock> for TenantActor {
    type Result = Durable<BlockRecord>;
    fn handle(&mut self, msg: GetBlock, _: &mut Context<Self>) -> Self::Result {
        let block = self
            .pool
            .block_of(msg.seat)
            .cloned()
            .ok_or(Error::NotFound(Missing::Seat));
        self.reply(block)
    }
}

impl Handler<Head> for TenantActor {
    type Result = Durable<Hash>;
    fn handle(&mut self, _: Head, _: &mut Context<Self>) -> Self::Result {
        self.reply(Ok(self.head))
    }
}

impl Handler<Stats> for TenantActor {
    type Result = Durable<Vec<(i64, MinuteCounts)>>;
    fn handle(&mut self, msg: Stats, _: &mut Context<Self>) -> Self::Result {
        self.reply(Ok(self.stats.between(msg.from, msg.to)))
    }
}

impl Handler<SetThreshold> for TenantActor {
    type Result = Durable<Threshold>;
    fn handle(&mut self, msg: SetThreshold, _: &mut Context<Self>) -> Self::Result {
        let answer = answer(msg.keyed, &msg.threshold);
        let value = self
            .store
            .put_threshold(&msg.threshold, answer.as_ref())
            .map_err(Error::from)
            .map(|seq| {
                self.last_write = seq;
                self.threshold = msg.threshold.percent;
                msg.threshold
            });
        self.reply(value)
    }
}

impl Handler<GetThreshold> for TenantActor {
    type Result = Durable<Option<Percent>>;
    fn handle(&mut self, _: GetThreshold, _: &mut Context<Self>) -> Self::Result {
        self.reply(Ok(self.threshold))
    }
}

impl Handler<Today> for TenantActor {
    type Result = Durable<(Option<i64>, Counts)>;
    fn handle(&mut self, _: Today, _: &mut Context<Self>) -> Self::Result {
        self.reply(Ok((self.day, self.pool.counts())))
    }
}

impl Handler<ListSeats> for TenantActor {
    type Result = Durable<SeatRun>;
    fn handle(&mut self, msg: ListSeats, _: &mut Context<Self>) -> Self::Result {
        self.reply(Ok(self.pool.page(msg.after, &msg.filter, msg.limit)))
    }
}
