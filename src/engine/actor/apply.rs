//! A standby's actor applying a change of its tenant from the feed (see
//! `engine::replica`): the store methods and the state updates of
//! `purchase` and `commit`, with the primary's records as they are.
//!
//! What each seat's change was is read from the records, as a start reads
//! it: the audit entry names its kind (`Transition::of`), a record naming
//! another tenant is a seat leaving on a transfer, one naming this tenant
//! for a seat the pool does not hold is an arrival (its purchase is in the
//! store: the feed publishes an arrival after the source's change), and a
//! record's term other than its run's is a renewal.

use std::collections::BTreeMap;

use actix::{Context, Handler};

use crate::domain::{Id, SeatId, SeatState, Timestamp, Transition};
use crate::store::records::{BlockEntry, SeatEntry};
use crate::store::{Change, IdSpace, SeatWrite};

use super::super::error::Error;
use super::super::pool::Moved;
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
                let BlockEntry {
                    block,
                    hash,
                    alert,
                    expires_at,
                } = entry;
                let n = block.count;
                self.store.ids_seen(IdSpace::Seat, block.first_seat.get() + n - 1)?;
                self.store.ids_seen(IdSpace::Audit, block.first_audit.get() + n - 1)?;
                self.clock = self.clock.max(block.created_at);
                self.roll_day(block.created_at)?;
                self.last_write = self.store.put_block(&block, expires_at, hash, alert.as_ref(), None)?;
                self.head = hash;
                self.raised(alert);
                self.day = Some(day_of(block.created_at));
                self.metrics.purchased(n);
                self.stats.record(Transition::Purchase, block.created_at, n);
                self.router.insert(block.first_seat, n, self.tenant);
                self.pool.add_block(block, expires_at);
                self.publish();
                if expires_at.is_some() {
                    self.published.set_terms(self.pool.terms());
                }
            }
            Change::Seats {
                part,
                parts,
                writes,
                from,
            } => {
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
                    from,
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

    fn apply_seats(&mut self, writes: Vec<(SeatId, SeatEntry)>) -> Result<(), Error> {
        let Some((_, last)) = writes.last() else {
            return Ok(());
        };
        let at: Timestamp = last.last_audit.created_at;
        let top = writes.iter().map(|(_, e)| e.last_audit.id.get()).max().unwrap_or(0);
        self.store.ids_seen(IdSpace::Audit, top)?;
        // Arrivals: what the pool needs to hold them, found before anything
        // is written (a missing purchase refuses the change whole).
        let mut arriving = Vec::new();
        for (seat, e) in &writes {
            if e.seat.tenant_id == self.tenant && self.pool.seat(*seat).is_none() {
                let block = self
                    .store
                    .block_of(*seat)?
                    .ok_or_else(|| Error::Internal(anyhow::anyhow!("seat {seat} arrives before its purchase")))?;
                arriving.push(Moved {
                    seat: *seat,
                    block,
                    expires_at: e.seat.expires_at,
                });
            }
        }
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
        let reshaped = !arriving.is_empty();
        for m in &arriving {
            self.router.set(m.seat, self.tenant);
        }
        if reshaped {
            self.pool.take_in(arriving, at);
        }
        let mut leaving = Vec::new();
        let mut renewed: BTreeMap<Timestamp, Vec<SeatId>> = BTreeMap::new();
        let (mut ended, mut began) = (Vec::new(), Vec::new());
        for (seat, e) in writes {
            let kind = Transition::of(&e.last_audit);
            self.stats.record(kind, at, 1);
            self.raised(e.alert);
            if !self.owed.is_empty() {
                // The primary wrote the arrival this instance owed.
                self.owed.retain(|(s, _, _)| *s != seat);
            }
            ended.extend(self.pool.deadline_of(seat));
            if e.seat.tenant_id != self.tenant {
                self.metrics.counted(kind, 1);
                self.router.set(seat, e.seat.tenant_id);
                leaving.push(seat);
                continue;
            }
            let before = self.pool.seat(seat).map_or(SeatState::Free, |s| s.state);
            match kind {
                Transition::TransferIn | Transition::TransferOut => self.metrics.counted(kind, 1),
                _ => self.metrics.moved(kind, before, e.seat.state),
            }
            if let Some(term) = e.seat.expires_at.filter(|t| self.pool.term_of(seat) != Some(*t)) {
                renewed.entry(term).or_default().push(seat);
            }
            if e.seat.state == SeatState::Reserved {
                began.extend(e.seat.reserved_until);
            }
            self.pool.restore(seat, e.seat);
        }
        let reshaped = reshaped || !leaving.is_empty() || !renewed.is_empty();
        if !leaving.is_empty() {
            leaving.sort_unstable();
            self.pool.take_out(&leaving);
        }
        for (term, mut seats) in renewed {
            seats.sort_unstable();
            self.pool.renew(&seats, term);
        }
        self.published.set(self.pool.counts(), self.last_write, &ended, &began);
        if reshaped {
            self.published.set_terms(self.pool.terms());
        }
        Ok(())
    }
}
