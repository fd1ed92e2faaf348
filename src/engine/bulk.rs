//! Bulk assign and bulk reclaim: one message to the tenant's actor and one
//! change of the store for the whole request, answered row by row in input
//! order. A row that cannot be done never blocks the others; a store that
//! refuses the write fails the whole request with nothing applied.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use serde::Serialize;

use crate::domain::{Caller, Invalid, LearnerId, Reason, Seat, SeatId, TenantId};

use super::actor::{self, RowOutcome, Target};
use super::answers::Keyed;
use super::durable::Durable;
use super::error::Error;
use super::Engine;

/// The most inputs one bulk request takes.
pub const MAX_ROWS: usize = 10_000;

/// What became of one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RowResult {
    Assigned,
    AlreadyAssigned,
    NoFreeSeat,
    Reclaimed,
    AlreadyFree,
    NotFound,
    Invalid,
    Duplicate,
    /// Moved to the other tenant (`POST /seats/transfer`).
    Transferred,
    /// Reserved or assigned: not moved (the detail says which).
    NotAvailable,
    /// Its license term has ended: not moved.
    Expired,
    /// Its term extended (`POST /seats/renew`).
    Renewed,
    /// Not renewed: no term, or one already ending later (the detail says).
    NotRenewed,
}

impl RowResult {
    pub(super) fn name(self) -> &'static str {
        match self {
            RowResult::Assigned => "assigned",
            RowResult::AlreadyAssigned => "already_assigned",
            RowResult::NoFreeSeat => "no_free_seat",
            RowResult::Reclaimed => "reclaimed",
            RowResult::AlreadyFree => "already_free",
            RowResult::NotFound => "not_found",
            RowResult::Invalid => "invalid",
            RowResult::Duplicate => "duplicate",
            RowResult::Transferred => "transferred",
            RowResult::NotAvailable => "not_available",
            RowResult::Expired => "expired",
            RowResult::Renewed => "renewed",
            RowResult::NotRenewed => "not_renewed",
        }
    }
}

/// One input's row of the answer. The input is echoed as given (`learner_id`
/// or `seat_id`; the other is null); `seat` is the seat as it now is.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BulkRow {
    pub learner_id: Option<String>,
    pub seat_id: Option<u64>,
    pub result: RowResult,
    pub seat: Option<Seat>,
    pub detail: Option<String>,
}

/// The answer to a bulk request: a row per input, in input order, and how
/// many rows had each result (every possible result of the operation is
/// listed, zeros included).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BulkReport {
    pub tenant_id: TenantId,
    pub results: Vec<BulkRow>,
    pub totals: BTreeMap<&'static str, u64>,
}

/// An input as the caller sent it, parsed or not.
pub struct Input<T> {
    /// Echoed in its row.
    pub learner_id: Option<String>,
    pub seat_id: Option<u64>,
    pub parsed: Result<T, Invalid>,
}

/// What a bulk reclaim is given: seats, or learners whose seats to reclaim.
pub enum Targets {
    Seats(Vec<Input<SeatId>>),
    Learners(Vec<Input<LearnerId>>),
}

impl Engine {
    /// A seat for each learner (the lowest free seats, in input order).
    pub async fn assign_many(
        &self,
        caller: &Caller,
        tenant: TenantId,
        learners: Vec<Input<LearnerId>>,
        keyed: Option<Keyed<BulkReport>>,
    ) -> Result<Durable<BulkReport>, Error> {
        self.assign_many_because(caller, tenant, learners, None, keyed).await
    }

    /// `assign_many`, with the audit entries' reason given (`None`: the
    /// contract's "Seat allocated to learner").
    pub async fn assign_many_because(
        &self,
        caller: &Caller,
        tenant: TenantId,
        learners: Vec<Input<LearnerId>>,
        reason: Option<Reason>,
        keyed: Option<Keyed<BulkReport>>,
    ) -> Result<Durable<BulkReport>, Error> {
        let actor = self.tenant_writer(caller, tenant).await?;
        let (rows, wanted) = sorted(learners, |l| l.clone());
        let by = caller.user.clone();
        let shape = move |rows: &[(Input<()>, Row)], outcomes: &[RowOutcome]| {
            let kinds = [
                RowResult::Assigned,
                RowResult::AlreadyAssigned,
                RowResult::NoFreeSeat,
                RowResult::Invalid,
                RowResult::Duplicate,
            ];
            report(tenant, rows, outcomes, &kinds, |outcome| match outcome {
                RowOutcome::Changed(seat) => (RowResult::Assigned, Some(seat.clone()), None),
                RowOutcome::Unchanged(seat) => (RowResult::AlreadyAssigned, Some(seat.clone()), None),
                RowOutcome::Duplicate => (RowResult::Duplicate, None, None),
                RowOutcome::Refused(Error::NoFreeSeat) => {
                    (RowResult::NoFreeSeat, None, Some(Error::NoFreeSeat.to_string()))
                }
                RowOutcome::Refused(e) => (RowResult::Invalid, None, Some(e.to_string())),
            })
        };
        let (rows, keyed) = keyed_rows(rows, keyed, shape);
        let msg = actor::AssignMany {
            learners: wanted,
            by,
            reason,
            keyed,
        };
        let outcomes = self.ask(&actor, msg).await?;
        Ok(outcomes.map(|outcomes| shape(&rows, &outcomes)))
    }

    /// Frees the seats (or the learners' seats) of one tenant.
    pub async fn reclaim_many(
        &self,
        caller: &Caller,
        tenant: TenantId,
        targets: Targets,
        reason: Reason,
        keyed: Option<Keyed<BulkReport>>,
    ) -> Result<Durable<BulkReport>, Error> {
        let actor = self.tenant_writer(caller, tenant).await?;
        let (rows, targets) = match targets {
            Targets::Seats(seats) => {
                let (rows, wanted) = sorted(seats, |s| *s);
                (rows, wanted.into_iter().map(Target::Seat).collect())
            }
            Targets::Learners(learners) => {
                let (rows, wanted) = sorted(learners, |l| l.clone());
                (rows, wanted.into_iter().map(Target::Learner).collect())
            }
        };
        let by = caller.user.clone();
        let shape = move |rows: &[(Input<()>, Row)], outcomes: &[RowOutcome]| {
            let kinds = [
                RowResult::Reclaimed,
                RowResult::AlreadyFree,
                RowResult::NotFound,
                RowResult::Invalid,
                RowResult::Duplicate,
            ];
            report(tenant, rows, outcomes, &kinds, |outcome| match outcome {
                RowOutcome::Changed(seat) => (RowResult::Reclaimed, Some(seat.clone()), None),
                RowOutcome::Unchanged(seat) => (RowResult::AlreadyFree, Some(seat.clone()), None),
                RowOutcome::Duplicate => (RowResult::Duplicate, None, None),
                RowOutcome::Refused(e @ Error::SeatAlreadyFree) => (RowResult::AlreadyFree, None, Some(e.to_string())),
                RowOutcome::Refused(e @ Error::NotFound(_)) => (RowResult::NotFound, None, Some(e.to_string())),
                RowOutcome::Refused(e) => (RowResult::Invalid, None, Some(e.to_string())),
            })
        };
        let (rows, keyed) = keyed_rows(rows, keyed, shape);
        let msg = actor::ReclaimMany {
            targets,
            reason,
            by,
            keyed,
        };
        let outcomes = self.ask(&actor, msg).await?;
        Ok(outcomes.map(|outcomes| shape(&rows, &outcomes)))
    }
}

/// Each input echoed, and where its answer comes from, in input order.
pub(super) type RowPlan = Vec<(Input<()>, Row)>;

/// Where each input's answer comes from.
pub(super) enum Row {
    /// The `n`th value sent to the actor.
    Sent(usize),
    Invalid(String),
    Duplicate,
}

/// Splits the inputs into what goes to the actor (valid, each once, in
/// input order) and a row plan that puts the answers back in input order.
pub(super) fn sorted<T, K: std::hash::Hash + Eq>(inputs: Vec<Input<T>>, key: impl Fn(&T) -> K) -> (RowPlan, Vec<T>) {
    let mut seen = HashSet::new();
    let mut wanted = Vec::new();
    let rows = inputs
        .into_iter()
        .map(|input| {
            let echo = Input {
                learner_id: input.learner_id,
                seat_id: input.seat_id,
                parsed: Ok(()),
            };
            let row = match input.parsed {
                Err(e) => Row::Invalid(e.to_string()),
                Ok(value) if !seen.insert(key(&value)) => Row::Duplicate,
                Ok(value) => {
                    wanted.push(value);
                    Row::Sent(wanted.len() - 1)
                }
            };
            (echo, row)
        })
        .collect();
    (rows, wanted)
}

/// The row plan, shared with the answer to keep (if one is asked for),
/// which the actor renders from its outcomes before its write.
fn keyed_rows(
    rows: RowPlan,
    keyed: Option<Keyed<BulkReport>>,
    shape: impl Fn(&[(Input<()>, Row)], &[RowOutcome]) -> BulkReport + Send + 'static,
) -> (Arc<RowPlan>, Option<Keyed<Vec<RowOutcome>>>) {
    let rows = Arc::new(rows);
    let keyed = keyed.map(|k| {
        let rows = Arc::clone(&rows);
        k.from(move |outcomes: &Vec<RowOutcome>| shape(&rows, outcomes))
    });
    (rows, keyed)
}

pub(super) fn report(
    tenant: TenantId,
    rows: &[(Input<()>, Row)],
    outcomes: &[RowOutcome],
    kinds: &[RowResult],
    describe: impl Fn(&RowOutcome) -> (RowResult, Option<Seat>, Option<String>),
) -> BulkReport {
    let (results, totals) = rows_in_order(rows, outcomes, kinds, describe);
    BulkReport {
        tenant_id: tenant,
        results,
        totals,
    }
}

/// The rows of a report, in input order, and the totals by result.
pub(super) fn rows_in_order<O>(
    rows: &[(Input<()>, Row)],
    outcomes: &[O],
    kinds: &[RowResult],
    describe: impl Fn(&O) -> (RowResult, Option<Seat>, Option<String>),
) -> (Vec<BulkRow>, BTreeMap<&'static str, u64>) {
    let mut totals: BTreeMap<&'static str, u64> = kinds.iter().map(|k| (k.name(), 0)).collect();
    let results = rows
        .iter()
        .map(|(echo, row)| {
            let (result, seat, detail) = match row {
                Row::Invalid(detail) => (RowResult::Invalid, None, Some(detail.clone())),
                Row::Duplicate => (RowResult::Duplicate, None, Some("Repeats an earlier input".to_owned())),
                Row::Sent(i) => match outcomes.get(*i) {
                    Some(outcome) => describe(outcome),
                    None => (RowResult::Invalid, None, Some("No answer for this input".to_owned())),
                },
            };
            *totals.entry(result.name()).or_default() += 1;
            BulkRow {
                learner_id: echo.learner_id.clone(),
                seat_id: echo.seat_id,
                result,
                seat,
                detail,
            }
        })
        .collect();
    (results, totals)
}
