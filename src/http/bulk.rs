//! Bulk assign and bulk reclaim: up to `MAX_ROWS` inputs, one result row
//! each, in input order.

use serde::Deserialize;
use warp::http::StatusCode;

use super::error::ApiError;
use super::route::{ok, Answer, Request, Route};
use crate::domain::{Id, LearnerId, Reason, SeatId, TenantId};
use crate::engine::{Input, Targets, MAX_ROWS};

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = BulkAssignRequest)]
pub(super) struct AssignBody {
    #[schema(minimum = 1)]
    tenant_id: u64,
    /// 1 to 10,000 learner ids; each gets a row in the answer, in this order.
    #[schema(min_items = 1, max_items = 10_000)]
    learner_ids: Vec<String>,
}

/// Exactly one of `seat_ids` and `learner_ids`.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = BulkReclaimRequest)]
pub(super) struct ReclaimBody {
    #[schema(minimum = 1)]
    tenant_id: u64,
    /// 1 to 10,000 seat ids.
    #[schema(min_items = 1, max_items = 10_000)]
    seat_ids: Option<Vec<u64>>,
    /// 1 to 10,000 learner ids: the seat each holds is reclaimed.
    #[schema(min_items = 1, max_items = 10_000)]
    learner_ids: Option<Vec<String>>,
    /// Recorded in the audit trail (default "Seat reclaimed").
    reason: Option<String>,
}

/// Room for `MAX_ROWS` inputs of the longest learner ids (255 characters,
/// most are far shorter): the configured limit is for single requests.
const BODY_BYTES: u64 = 4 * 1024 * 1024;

pub fn routes() -> Vec<Route> {
    vec![
        Route::post("/api/v1/seats/assign/bulk", assign).max_body(BODY_BYTES),
        Route::post("/api/v1/seats/reclaim/bulk", reclaim).max_body(BODY_BYTES),
    ]
}

async fn assign(mut req: Request) -> Answer {
    let body: AssignBody = req.json().await?;
    let tenant = TenantId::from_u64(body.tenant_id)?;
    counted("learner_ids", body.learner_ids.len())?;
    let learners = body.learner_ids.into_iter().map(learner).collect();
    let keyed = req.keyed(StatusCode::OK);
    Ok(req
        .engine
        .assign_many(req.caller()?, tenant, learners, keyed)
        .await?
        .map(ok))
}

async fn reclaim(mut req: Request) -> Answer {
    let body: ReclaimBody = req.json().await?;
    let tenant = TenantId::from_u64(body.tenant_id)?;
    let targets = match (body.seat_ids, body.learner_ids) {
        (Some(seats), None) => {
            counted("seat_ids", seats.len())?;
            Targets::Seats(
                seats
                    .into_iter()
                    .map(|raw| Input {
                        learner_id: None,
                        seat_id: Some(raw),
                        parsed: SeatId::from_u64(raw),
                    })
                    .collect(),
            )
        }
        (None, Some(learners)) => {
            counted("learner_ids", learners.len())?;
            Targets::Learners(learners.into_iter().map(learner).collect())
        }
        _ => return Err(ApiError::invalid("exactly one of seat_ids and learner_ids is required")),
    };
    let reason = Reason::parse_reclaim(body.reason)?;
    Ok(req
        .engine
        .reclaim_many(req.caller()?, tenant, targets, reason, req.keyed(StatusCode::OK))
        .await?
        .map(ok))
}

fn learner(raw: String) -> Input<LearnerId> {
    Input {
        parsed: LearnerId::parse(&raw),
        learner_id: Some(raw),
        seat_id: None,
    }
}

fn counted(field: &str, n: usize) -> Result<(), ApiError> {
    if (1..=MAX_ROWS).contains(&n) {
        Ok(())
    } else {
        Err(ApiError::invalid(format!("{field} must hold 1 to {MAX_ROWS} entries")))
    }
}
