//! Seats moved between two tenants of a district, in two steps, one actor
//! each, and one commit point: the source's write.
//!
//! 1. `TransferOut` (the source): picks the seats, writes one change of the
//!    store with an entry per seat on its trail ("Transferred to tenant N")
//!    whose seat records already name the destination as owner (with the
//!    answer to keep, witnessed by that write), then lets them go.
//! 2. `TransferIn` (the destination): writes its entry per seat
//!    ("Transferred from tenant M") and takes them in.
//!
//! Once the first write stands the transfer is decided: a seat whose record
//! names one owner while its last entry is on another's trail is in
//! transit, and a start writes its arrival (`resume`), so after a crash
//! between the two steps each seat belongs to exactly one tenant. A failed
//! second write stops the store for the same reason.

use std::collections::HashSet;

use actix::{Context, Handler};

use crate::domain::{reasons, SeatId, SeatRecord, SeatState, TenantId, Timestamp, Transition, UserId};

use super::super::answers::answer;
use super::super::pool::Moved;
use super::bulk::{Draft, Sink};
use super::{Durable, Error, TenantActor, TransferIn, TransferOut};

/// Which seats a transfer moves.
pub enum Selection {
    /// The lowest free seats that may still be taken, this many.
    Count(u64),
    /// These seats, as given (each is checked; repeats are reported).
    Seats(Vec<SeatId>),
}

/// What became of one seat of a transfer.
#[derive(Debug)]
pub enum MoveRow {
    Moved(SeatId),
    Duplicate(SeatId),
    Refused(SeatId, Error),
}

/// The source's side of a transfer: a row per seat, and what the
/// destination needs to take the moved seats in.
#[derive(Debug)]
pub struct Moving {
    pub rows: Vec<MoveRow>,
    pub moved: Vec<Moved>,
}

impl Handler<TransferOut> for TenantActor {
    type Result = Durable<Moving>;
    fn handle(&mut self, msg: TransferOut, _: &mut Context<Self>) -> Self::Result {
        let value = self.transfer_out(msg);
        self.reply(value)
    }
}

impl Handler<TransferIn> for TenantActor {
    type Result = Durable<()>;
    fn handle(&mut self, msg: TransferIn, _: &mut Context<Self>) -> Self::Result {
        let at = self.now();
        let value = self.arrive(msg.from, msg.moved, &msg.by, at);
        self.reply(value)
    }
}

impl TenantActor {
    fn transfer_out(&mut self, msg: TransferOut) -> Result<Moving, Error> {
        let at = self.now();
        let mut rows = Vec::new();
        let mut chosen = Vec::new();
        match msg.selection {
            Selection::Count(n) => {
                chosen = self.pool.free_seats(at).take(n as usize).collect();
                if (chosen.len() as u64) < n {
                    let free = self.pool.free_seats(at).count() as u64;
                    return Err(Error::NotEnoughFreeSeats { free, asked: n });
                }
                rows.extend(chosen.iter().map(|s| MoveRow::Moved(*s)));
            }
            Selection::Seats(seats) => {
                let mut seen = HashSet::new();
                for seat in seats {
                    if !seen.insert(seat) {
                        rows.push(MoveRow::Duplicate(seat));
                        continue;
                    }
                    match self.pool.movable(seat, at) {
                        Ok(()) => {
                            chosen.push(seat);
                            rows.push(MoveRow::Moved(seat));
                        }
                        Err(e) => rows.push(MoveRow::Refused(seat, e)),
                    }
                }
                chosen.sort_unstable();
            }
        }
        let moved: Vec<Moved> = chosen.iter().filter_map(|s| self.pool.moved(*s)).collect();
        let value = Moving { rows, moved };
        if chosen.is_empty() {
            return self.keep(msg.keyed, value);
        }
        let answer = answer(msg.keyed, &value);
        let reason = format!("{} tenant {}", reasons::TRANSFERRED_TO, msg.to);
        let mut drafts = Vec::with_capacity(chosen.len());
        for seat in &chosen {
            let change = self.pool.touch(*seat, at)?;
            let mut record = self.pool.record(&change);
            // The new owner: what makes the seat the destination's from
            // this write on (and in transit until its arrival is written).
            record.tenant_id = msg.to;
            drafts.push(Draft {
                seat: *seat,
                previous: (SeatState::Free, None),
                record,
                reason: reason.clone(),
            });
        }
        let n = chosen.len() as u64;
        let mut after = self.pool.counts();
        after.free -= n;
        self.write_many(
            Transition::TransferOut,
            drafts,
            &msg.by,
            at,
            after,
            Sink::Change(answer),
        )?;
        self.pool.take_out(&chosen);
        for seat in &chosen {
            self.router.set(*seat, msg.to);
        }
        self.metrics.counted(Transition::TransferOut, n);
        self.publish();
        self.published.set_terms(self.pool.terms());
        Ok(value)
    }

    /// Writes the arrival of seats moved here from `from`, then takes them in.
    fn arrive(&mut self, from: TenantId, moved: Vec<Moved>, by: &UserId, at: Timestamp) -> Result<(), Error> {
        if moved.is_empty() {
            return Ok(());
        }
        let reason = format!("{} tenant {from}", reasons::TRANSFERRED_FROM);
        let drafts = moved
            .iter()
            .map(|m| Draft {
                seat: m.seat,
                previous: (SeatState::Free, None),
                record: SeatRecord {
                    tenant_id: self.tenant,
                    state: SeatState::Free,
                    learner_id: None,
                    reserved_at: None,
                    assigned_at: None,
                    updated_at: at,
                    reserved_until: None,
                    expires_at: m.expires_at,
                },
                reason: reason.clone(),
            })
            .collect();
        let n = moved.len() as u64;
        let mut after = self.pool.counts();
        after.free += n;
        self.write_many(Transition::TransferIn, drafts, by, at, after, Sink::Arrival(from))?;
        self.pool.take_in(moved, at);
        self.metrics.counted(Transition::TransferIn, n);
        self.publish();
        self.published.set_terms(self.pool.terms());
        Ok(())
    }

    /// The arrival of seats a transfer moved here (the pool holds them
    /// already: their records name this tenant) whose entries on this
    /// trail a crash kept from being written (`owed`), dated now; each
    /// group's seats leave `owed` once written.
    pub(super) fn arrived(&mut self) -> Result<(), Error> {
        let at = self.now();
        let mut by_source: std::collections::BTreeMap<(TenantId, String), Vec<SeatId>> = Default::default();
        for (seat, from, by) in &self.owed {
            by_source
                .entry((*from, by.as_str().to_owned()))
                .or_default()
                .push(*seat);
        }
        for ((from, by), seats) in by_source {
            let by = UserId::parse(&by).map_err(|e| Error::Internal(anyhow::anyhow!("{e}")))?;
            let reason = format!("{} tenant {from}", reasons::TRANSFERRED_FROM);
            let mut changes = Vec::with_capacity(seats.len());
            let mut drafts = Vec::with_capacity(seats.len());
            for seat in &seats {
                let change = self.pool.touch(*seat, at)?;
                drafts.push(Draft {
                    seat: *seat,
                    previous: (change.before.state(), change.before.learner.clone()),
                    record: self.pool.record(&change),
                    reason: reason.clone(),
                });
                changes.push(change);
            }
            let counts = self.pool.counts();
            self.write_many(Transition::TransferIn, drafts, &by, at, counts, Sink::Arrival(from))?;
            self.apply_all(Transition::TransferIn, changes);
            let written: HashSet<SeatId> = seats.into_iter().collect();
            self.owed.retain(|(seat, _, _)| !written.contains(seat));
        }
        Ok(())
    }
}
