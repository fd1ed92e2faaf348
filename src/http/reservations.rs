//! Reservations: a seat held for a while (for a learner, or for anyone),
//! given back, or ended by its deadline.

use serde::Deserialize;
use warp::http::StatusCode;

use super::route::{created, ok, Answer, Request, Route};
use crate::domain::{Id, LearnerId, SeatId, TenantId, Ttl};

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = ReserveRequest)]
pub(super) struct ReserveBody {
    #[schema(minimum = 1)]
    tenant_id: u64,
    /// Who the seat is held for (they then hold it for the one-seat rule,
    /// and only they may be allocated it); none: anyone.
    learner_id: Option<String>,
    /// The seat to reserve (a free seat of the tenant); none: the lowest
    /// free seat.
    #[schema(minimum = 1)]
    seat_id: Option<u64>,
    /// How long the reservation holds: 1 second to 30 days.
    #[schema(minimum = 1, maximum = 2_592_000)]
    ttl_seconds: u64,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = ReleaseRequest)]
pub(super) struct ReleaseBody {
    #[schema(minimum = 1)]
    seat_id: u64,
}

pub fn routes() -> Vec<Route> {
    vec![
        Route::post("/api/v1/seats/reserve", reserve),
        Route::post("/api/v1/seats/release", release),
    ]
}

async fn reserve(mut req: Request) -> Answer {
    let body: ReserveBody = req.json().await?;
    let tenant = TenantId::from_u64(body.tenant_id)?;
    let learner = body.learner_id.as_deref().map(LearnerId::parse).transpose()?;
    let seat = body.seat_id.map(SeatId::from_u64).transpose()?;
    let ttl = Ttl::parse(body.ttl_seconds)?;
    let keyed = req.keyed(StatusCode::CREATED);
    Ok(req
        .engine
        .reserve(req.caller()?, tenant, seat, learner, ttl, keyed)
        .await?
        .map(created))
}

async fn release(mut req: Request) -> Answer {
    let body: ReleaseBody = req.json().await?;
    let seat = SeatId::from_u64(body.seat_id)?;
    let keyed = req.keyed(StatusCode::OK);
    Ok(req.engine.release(req.caller()?, seat, keyed).await?.map(ok))
}
