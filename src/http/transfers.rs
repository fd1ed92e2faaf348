//! Seats moved between the tenants of a district, and license terms renewed.

use serde::Deserialize;
use warp::http::StatusCode;

use super::error::ApiError;
use super::route::{ok, Answer, Request, Route};
use crate::domain::{Id, SeatCount, SeatId, TenantId, Timestamp};
use crate::engine::{Input, RenewTargets, TransferSeats, MAX_ROWS};

/// Exactly one of `count` and `seat_ids`.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = TransferRequest)]
pub(super) struct TransferBody {
    #[schema(minimum = 1)]
    from_tenant_id: u64,
    /// Another tenant of the same district (the district or a school).
    #[schema(minimum = 1)]
    to_tenant_id: u64,
    /// Move this many of the source's lowest free seats (all or none).
    #[schema(minimum = 1, maximum = 100_000)]
    count: Option<u64>,
    /// Move these seats: each free one moves, the others get a row saying why not.
    #[schema(min_items = 1, max_items = 10_000)]
    seat_ids: Option<Vec<u64>>,
}

/// `expires_at`, and exactly one of `seat_ids` and `all_expiring_before`.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = RenewRequest)]
pub(super) struct RenewBody {
    #[schema(minimum = 1)]
    tenant_id: u64,
    /// 1 to 10,000 seats of the tenant.
    #[schema(min_items = 1, max_items = 10_000)]
    seat_ids: Option<Vec<u64>>,
    /// Every seat of the tenant whose term ends before this time (RFC 3339).
    #[schema(format = DateTime)]
    all_expiring_before: Option<String>,
    /// The new end of their term (RFC 3339, in the future, later than the
    /// seat's current one).
    #[schema(format = DateTime)]
    expires_at: String,
}

/// Room for `MAX_ROWS` seat ids, as for the bulk routes.
const BODY_BYTES: u64 = 4 * 1024 * 1024;

pub fn routes() -> Vec<Route> {
    vec![
        Route::post("/api/v1/seats/transfer", transfer).max_body(BODY_BYTES),
        Route::post("/api/v1/seats/renew", renew).max_body(BODY_BYTES),
    ]
}

fn seat_inputs(field: &str, seats: Vec<u64>) -> Result<Vec<Input<SeatId>>, ApiError> {
    if !(1..=MAX_ROWS).contains(&seats.len()) {
        return Err(ApiError::invalid(format!("{field} must hold 1 to {MAX_ROWS} entries")));
    }
    Ok(seats
        .into_iter()
        .map(|raw| Input {
            learner_id: None,
            seat_id: Some(raw),
            parsed: SeatId::from_u64(raw),
        })
        .collect())
}

async fn transfer(mut req: Request) -> Answer {
    let body: TransferBody = req.json().await?;
    let from = TenantId::from_u64(body.from_tenant_id)
        .map_err(|_| ApiError::invalid("from_tenant_id must be a positive integer"))?;
    let to = TenantId::from_u64(body.to_tenant_id)
        .map_err(|_| ApiError::invalid("to_tenant_id must be a positive integer"))?;
    let seats = match (body.count, body.seat_ids) {
        (Some(count), None) => TransferSeats::Count(SeatCount::parse(count)?.get()),
        (None, Some(seats)) => TransferSeats::Seats(seat_inputs("seat_ids", seats)?),
        _ => return Err(ApiError::invalid("exactly one of count and seat_ids is required")),
    };
    let keyed = req.keyed(StatusCode::OK);
    Ok(req
        .engine
        .transfer(req.caller()?, (from, to), seats, keyed)
        .await?
        .map(ok))
}

async fn renew(mut req: Request) -> Answer {
    let body: RenewBody = req.json().await?;
    let tenant = TenantId::from_u64(body.tenant_id)?;
    let until = Timestamp::parse_rfc3339("expires_at", &body.expires_at)?;
    let targets = match (body.seat_ids, body.all_expiring_before) {
        (Some(seats), None) => RenewTargets::Seats(seat_inputs("seat_ids", seats)?),
        (None, Some(before)) => RenewTargets::ExpiringBefore(Timestamp::parse_rfc3339("all_expiring_before", &before)?),
        _ => {
            return Err(ApiError::invalid(
                "exactly one of seat_ids and all_expiring_before is required",
            ))
        }
    };
    let keyed = req.keyed(StatusCode::OK);
    Ok(req
        .engine
        .renew(req.caller()?, tenant, targets, until, keyed)
        .await?
        .map(ok))
}
