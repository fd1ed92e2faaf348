//! License terms: renewing seats (one audit entry each, one change of the
//! store for the request), answered row by row like the bulk routes.

use std::collections::BTreeMap;

use crate::domain::{Caller, Id, Seat, SeatId, TenantId, Timestamp};

use super::actor::{self, Renewal, RowOutcome};
use super::answers::Keyed;
use super::bulk::{rows_in_order, sorted, BulkReport, BulkRow, Input, RowResult};
use super::durable::Durable;
use super::error::{Error, Missing};
use super::{Action, Engine};

/// Which seats to renew.
pub enum RenewTargets {
    /// These seats (as given).
    Seats(Vec<Input<SeatId>>),
    /// Every seat of the tenant whose term ends before this time.
    ExpiringBefore(Timestamp),
}

const KINDS: [RowResult; 5] = [
    RowResult::Renewed,
    RowResult::NotRenewed,
    RowResult::NotFound,
    RowResult::Invalid,
    RowResult::Duplicate,
];

fn describe((_, outcome): &(SeatId, RowOutcome)) -> (RowResult, Option<Seat>, Option<String>) {
    match outcome {
        RowOutcome::Changed(seat) => (RowResult::Renewed, Some(seat.clone()), None),
        RowOutcome::Refused(e @ Error::NotFound(_)) => (RowResult::NotFound, None, Some(e.to_string())),
        RowOutcome::Refused(e @ (Error::NoTerm | Error::NotExtended(_))) => {
            (RowResult::NotRenewed, None, Some(e.to_string()))
        }
        RowOutcome::Refused(e) => (RowResult::Invalid, None, Some(e.to_string())),
        RowOutcome::Unchanged(seat) => (RowResult::NotRenewed, Some(seat.clone()), None),
        RowOutcome::Duplicate => (RowResult::Duplicate, None, None),
    }
}

impl Engine {
    /// Extends the license term of a tenant's seats to `until` (in the
    /// future). Admins only: a term is part of what was bought.
    pub async fn renew(
        &self,
        caller: &Caller,
        tenant: TenantId,
        targets: RenewTargets,
        until: Timestamp,
        keyed: Option<Keyed<BulkReport>>,
    ) -> Result<Durable<BulkReport>, Error> {
        self.check(caller, Action::Purchase, tenant, Missing::Tenant).await?;
        self.writable(tenant).await?;
        if until <= Timestamp::now() {
            return Err(Error::invalid("expires_at", "must be in the future"));
        }
        let actor = self.actor(tenant)?;
        let by = caller.user.clone();
        match targets {
            RenewTargets::Seats(inputs) => {
                let (rows, wanted) = sorted(inputs, |s| *s);
                let rows = std::sync::Arc::new(rows);
                let shape = {
                    let rows = std::sync::Arc::clone(&rows);
                    move |outcomes: &Vec<(SeatId, RowOutcome)>| {
                        let (results, totals) = rows_in_order(&rows, outcomes, &KINDS, describe);
                        BulkReport {
                            tenant_id: tenant,
                            results,
                            totals,
                        }
                    }
                };
                let keyed = keyed.map(|k| k.from(shape.clone()));
                let renewal = Renewal::Seats(wanted, until);
                let outcomes = self.ask(&actor, actor::Renew { renewal, by, keyed }).await?;
                Ok(outcomes.map(|o| shape(&o)))
            }
            RenewTargets::ExpiringBefore(before) => {
                let shape = move |outcomes: &Vec<(SeatId, RowOutcome)>| every_row(tenant, outcomes);
                let keyed = keyed.map(|k| k.from(shape));
                let renewal = Renewal::ExpiringBefore(before, until);
                let outcomes = self.ask(&actor, actor::Renew { renewal, by, keyed }).await?;
                Ok(outcomes.map(|o| shape(&o)))
            }
        }
    }
}

/// A row per seat the actor chose, in id order.
fn every_row(tenant: TenantId, outcomes: &[(SeatId, RowOutcome)]) -> BulkReport {
    let mut totals: BTreeMap<&'static str, u64> = KINDS.iter().map(|k| (k.name(), 0)).collect();
    let results = outcomes
        .iter()
        .map(|o| {
            let (result, seat, detail) = describe(o);
            *totals.entry(result.name()).or_default() += 1;
            BulkRow {
                learner_id: None,
                seat_id: Some(o.0.get()),
                result,
                seat,
                detail,
            }
        })
        .collect();
    BulkReport {
        tenant_id: tenant,
        results,
        totals,
    }
}
