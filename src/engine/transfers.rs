//! Seats moved between the tenants of one district: the source's actor
//! writes the transfer (its commit point), then the destination's writes
//! the arrival (see `actor::transfer` for why that is atomic across a
//! crash). Answered row by row like the bulk routes.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::domain::{Caller, Id, SeatId, TenantId};

use super::actor::{self, MoveRow, Moving, Selection};
use super::answers::Keyed;
use super::bulk::{rows_in_order, sorted, BulkRow, Input, RowResult};
use super::durable::Durable;
use super::error::{Error, Missing};
use super::{Action, Engine};

/// Which seats to move.
pub enum TransferSeats {
    /// The lowest free seats of the source, this many (all or none).
    Count(u64),
    /// These seats (as given): each moves if it is free, or gets a row
    /// saying why not.
    Seats(Vec<Input<SeatId>>),
}

/// `POST /seats/transfer`: a row per seat (the seats moved, for a count),
/// and how many rows had each result.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TransferReport {
    pub from_tenant_id: TenantId,
    pub to_tenant_id: TenantId,
    pub results: Vec<BulkRow>,
    pub totals: BTreeMap<&'static str, u64>,
}

/// How the answer is made from the source actor's rows (shared with the
/// answer kept for an `Idempotency-Key`, rendered in the actor's step).
type Shape = Arc<dyn Fn(&Moving) -> TransferReport + Send + Sync>;

const KINDS: [RowResult; 6] = [
    RowResult::Transferred,
    RowResult::NotAvailable,
    RowResult::Expired,
    RowResult::NotFound,
    RowResult::Invalid,
    RowResult::Duplicate,
];

fn describe(row: &MoveRow) -> (RowResult, Option<crate::domain::Seat>, Option<String>) {
    match row {
        MoveRow::Moved(_) => (RowResult::Transferred, None, None),
        MoveRow::Duplicate(_) => (RowResult::Duplicate, None, None),
        MoveRow::Refused(_, e @ Error::NotFound(_)) => (RowResult::NotFound, None, Some(e.to_string())),
        MoveRow::Refused(_, e @ Error::SeatUnavailable(_)) => (RowResult::NotAvailable, None, Some(e.to_string())),
        MoveRow::Refused(_, e @ Error::SeatExpired) => (RowResult::Expired, None, Some(e.to_string())),
        MoveRow::Refused(_, e) => (RowResult::Invalid, None, Some(e.to_string())),
    }
}

fn seat_of(row: &MoveRow) -> SeatId {
    match row {
        MoveRow::Moved(s) | MoveRow::Duplicate(s) | MoveRow::Refused(s, _) => *s,
    }
}

impl Engine {
    /// Moves free seats from one tenant to another of the same district
    /// (the district and its schools, or two schools). Admins of both (or
    /// of the district) only.
    pub async fn transfer(
        &self,
        caller: &Caller,
        (from, to): (TenantId, TenantId),
        seats: TransferSeats,
        keyed: Option<Keyed<TransferReport>>,
    ) -> Result<Durable<TransferReport>, Error> {
        if from == to {
            return Err(Error::invalid(
                "to_tenant_id",
                "must be another tenant than from_tenant_id",
            ));
        }
        self.check(caller, Action::Purchase, from, Missing::Tenant).await?;
        self.check(caller, Action::Purchase, to, Missing::Tenant).await?;
        if self.directory.district_of(from) != self.directory.district_of(to) {
            return Err(Error::AcrossDistricts);
        }
        self.writable(from).await?;
        self.writable(to).await?;
        let (source, destination) = (self.actor(from)?, self.actor(to)?);
        let by = caller.user.clone();
        let (selection, shape): (Selection, Shape) = match seats {
            TransferSeats::Count(n) => {
                let shape = move |m: &Moving| {
                    let mut totals: BTreeMap<&'static str, u64> = KINDS.iter().map(|k| (k.name(), 0)).collect();
                    let results = m
                        .rows
                        .iter()
                        .map(|row| {
                            let (result, seat, detail) = describe(row);
                            *totals.entry(result.name()).or_default() += 1;
                            BulkRow {
                                learner_id: None,
                                seat_id: Some(seat_of(row).get()),
                                result,
                                seat,
                                detail,
                            }
                        })
                        .collect();
                    TransferReport {
                        from_tenant_id: from,
                        to_tenant_id: to,
                        results,
                        totals,
                    }
                };
                (Selection::Count(n), Arc::new(shape))
            }
            TransferSeats::Seats(inputs) => {
                let (rows, wanted) = sorted(inputs, |s| *s);
                let shape = move |m: &Moving| {
                    let (results, totals) = rows_in_order(&rows, &m.rows, &KINDS, describe);
                    TransferReport {
                        from_tenant_id: from,
                        to_tenant_id: to,
                        results,
                        totals,
                    }
                };
                (Selection::Seats(wanted), Arc::new(shape))
            }
        };
        let keyed = keyed.map(|k| {
            let shape = Arc::clone(&shape);
            k.from(move |m: &Moving| shape(m))
        });
        let out = actor::TransferOut {
            to,
            selection,
            by: by.clone(),
            keyed,
        };
        // Durable before the arrival is sent: the transfer is decided.
        let mut moving = self.read(&source, out).await?;
        let report = shape(&moving);
        let moved = std::mem::take(&mut moving.moved);
        if moved.is_empty() {
            return Ok(Durable::ready(report));
        }
        let arrival = destination.deliver(actor::TransferIn { from, moved, by }).await?;
        Ok(arrival.map(move |()| report))
    }
}
