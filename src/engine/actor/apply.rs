//! A standby's actor applying a change of its tenant from the feed (see
//! `engine::replica`): the store methods and the state updates of
//! `purchase` and `commit`, with the primary's records as they are.

use actix::{Context, Handler};

use crate::domain::{Id, SeatState, Timestamp, Transition};
use crate::store::{Change, IdSpace, SeatWrite};

use super::super::error::Error;
use super::super::stats::day_of;
use super::{Apply, Durable, TenantActor};

impl Handler<Apply> for TenantActor {
    type Result = Durable<()>;
    fn handle(&mut self, msg: Apply, _: &mut Context<Self>) -> Self::Result {
        let value = self.apply(msg.change);
        self.reply(value)
    }
}

impl TenantActor {
    fn apply(&mut self, change: Change) -> Result<(), Error> {
        match change {
            Change::Threshold(t) => {
                self.last_write = self.store.put_threshold(&t, None)?;
                self.threshold = t.percent;
            }
            Change::Block(entry) => {
                if self.store.change_there(&Change::Block(entry.clone()))? {
                    return Ok(());
                }
                let block = entry.block;
                let n = block.count;
                self.store.ids_seen(IdSpace::Seat, block.first_seat.get() + n - 1)?;
                self.store.ids_seen(IdSpace::Audit, block.first_audit.get() + n - 1)?;
                self.clock = self.clock.max(block.created_at);
                self.roll_day(block.created_at)?;
                self.last_write = self
                    .store
                    .put_block(&block, None, entry.hash, entry.alert.as_ref(), None)?;
                self.head = entry.hash;
                self.raised(entry.alert);
                self.day = Some(day_of(block.created_at));
                self.metrics.purchased(n);
                self.stats.record(Transition::Purchase, block.created_at, n);
                self.router.insert(block.first_seat, n, self.tenant);
                self.pool.add_block(block, None);
                self.publish();
            }
            Change::Seats { part, parts, writes } => {
                if part == 0 {
                    self.parts.clear();
                }
                self.parts.extend(writes);
                if part + 1 < parts {
                    return Ok(());
                }
                let writes = std::mem::take(&mut self.parts);
                let whole = Change::Seats {
                    part: 0,
                    parts: 1,
                    writes,
                };
                if self.store.change_there(&whole)? {
                    return Ok(());
                }
                let Change::Seats { writes, .. } = whole else {
                    return Ok(());
                };
                self.apply_seats(writes)?;
            }
            Change::Tenant { .. } | Change::Role { .. } => {
                return Err(Error::Internal(anyhow::anyhow!("not a change of a tenant's seats")))
            }
        }
        Ok(())
    }

    fn apply_seats(
        &mut self,
        writes: Vec<(crate::domain::SeatId, crate::store::records::SeatEntry)>,
    ) -> Result<(), Error> {
        let Some((_, last)) = writes.last() else {
            return Ok(());
        };
        let at: Timestamp = last.last_audit.created_at;
        let top = writes.iter().map(|(_, e)| e.last_audit.id.get()).max().unwrap_or(0);
        self.store.ids_seen(IdSpace::Audit, top)?;
        self.clock = self.clock.max(at);
        self.roll_day(at)?;
        let seat_writes: Vec<SeatWrite<'_>> = writes
            .iter()
            .map(|(seat, e)| SeatWrite {
                seat: *seat,
                record: &e.seat,
                audit: &e.last_audit,
                hash: e.hash,
                alert: e.alert.as_ref(),
            })
            .collect();
        self.last_write = match seat_writes.as_slice() {
            [one] => self.store.put_transition(self.tenant, one, None)?,
            many => self.store.put_seat_changes(self.tenant, many, None)?,
        };
        self.head = last.hash;
        self.day = Some(day_of(at));
        for (seat, e) in writes {
            let before = self.pool.seat(seat).map_or(SeatState::Free, |s| s.state);
            let after = e.seat.state;
            let kind = if after == SeatState::Free {
                Transition::Reclaim
            } else {
                Transition::Allocate
            };
            self.metrics.moved(kind, before, after);
            self.stats.record(kind, at, 1);
            self.raised(e.alert);
            self.pool.restore(seat, e.seat);
        }
        self.publish();
        Ok(())
    }
}
