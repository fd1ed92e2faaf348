//! Seat purchase, allocation, reclaim, lookups, summary, stats and history.

use serde::Deserialize;
use warp::http::StatusCode;

use super::error::ApiError;
use super::idempotency;
use super::route::{created, ok, Answer, Request, Route};
use crate::domain::{Id, LearnerId, Reason, Seat, SeatCount, SeatId, TenantId, Timestamp};

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = PurchaseRequest)]
pub(super) struct PurchaseBody {
    #[schema(minimum = 1)]
    tenant_id: u64,
    /// How many seats to buy (all or nothing).
    #[schema(minimum = 1, maximum = 100_000)]
    count: u64,
    /// When the seats' license term ends (RFC 3339 with an offset, in the
    /// future); none: no end.
    #[schema(format = DateTime)]
    expires_at: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = AllocateRequest)]
pub(super) struct AllocateBody {
    #[schema(minimum = 1)]
    seat_id: u64,
    /// 1 to 255 characters, not blank, no control characters (trimmed).
    learner_id: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = AssignRequest)]
pub(super) struct AssignBody {
    #[schema(minimum = 1)]
    tenant_id: u64,
    /// 1 to 255 characters, not blank, no control characters (trimmed).
    learner_id: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = ReclaimRequest)]
pub(super) struct ReclaimBody {
    #[schema(minimum = 1)]
    seat_id: u64,
    /// Recorded in the audit trail (default "Seat reclaimed").
    reason: Option<String>,
}

/// The hot two first.
pub fn routes() -> Vec<Route> {
    vec![
        Route::post("/api/v1/seats/allocate", allocate),
        Route::get("/api/v1/seats/summary", summary),
        Route::post("/api/v1/seats/reclaim", reclaim),
        Route::post("/api/v1/seats/assign", assign),
        Route::post("/api/v1/seats/purchase", purchase),
        Route::get("/api/v1/seats/stats", stats),
        Route::get("/api/v1/seats/history", history),
        Route::get("/api/v1/seats/{id}", seat),
        Route::get("/api/v1/seats/{id}/audit", audit),
    ]
}

async fn purchase(mut req: Request) -> Answer {
    let body: PurchaseBody = req.json().await?;
    let tenant = TenantId::from_u64(body.tenant_id)?;
    let count = SeatCount::parse(body.count)?;
    let expires_at = body
        .expires_at
        .map(|raw| Timestamp::parse_rfc3339("expires_at", &raw))
        .transpose()?;
    let keyed = req.keyed(StatusCode::CREATED);
    Ok(req
        .engine
        .purchase(req.caller()?, tenant, count, expires_at, keyed)
        .await?
        .map(created))
}

async fn allocate(mut req: Request) -> Answer {
    let body: AllocateBody = req.json().await?;
    let seat = SeatId::from_u64(body.seat_id)?;
    let learner = LearnerId::parse(&body.learner_id)?;
    let keyed = req.keyed(StatusCode::OK);
    Ok(req.engine.allocate(req.caller()?, seat, learner, keyed).await?.map(ok))
}

/// 201 with the seat assigned now, 200 with the one the learner already held.
async fn assign(mut req: Request) -> Answer {
    let body: AssignBody = req.json().await?;
    let tenant = TenantId::from_u64(body.tenant_id)?;
    let learner = LearnerId::parse(&body.learner_id)?;
    let keyed = req.keyed_by(|(seat, new): &(Seat, bool)| {
        idempotency::json(if *new { StatusCode::CREATED } else { StatusCode::OK }, seat)
    });
    let assigned = req.engine.assign(req.caller()?, tenant, learner, keyed).await?;
    Ok(assigned.map(|(seat, new)| if new { created(seat) } else { ok(seat) }))
}

async fn reclaim(mut req: Request) -> Answer {
    let body: ReclaimBody = req.json().await?;
    let seat = SeatId::from_u64(body.seat_id)?;
    let reason = Reason::parse_reclaim(body.reason)?;
    let keyed = req.keyed(StatusCode::OK);
    Ok(req.engine.reclaim(req.caller()?, seat, reason, keyed).await?.map(ok))
}

async fn summary(req: Request) -> Answer {
    let tenant = Request::query_id::<TenantId>(&req.query()?, "tenantId")?;
    Ok(req.engine.summary(req.caller()?, tenant).await?.map(ok))
}

async fn stats(req: Request) -> Answer {
    let query = req.query()?;
    let tenant = Request::query_id::<TenantId>(&query, "tenantId")?;
    let minutes = window_minutes(query.get("window").map(String::as_str))?;
    Ok(req.engine.seat_stats(req.caller()?, tenant, minutes).await?.map(ok))
}

async fn history(req: Request) -> Answer {
    let query = req.query()?;
    let tenant = Request::query_id::<TenantId>(&query, "tenantId")?;
    let days = match query.get("days") {
        None => 30,
        Some(raw) => raw
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=366).contains(n))
            .ok_or_else(|| ApiError::invalid("days must be an integer from 1 to 366"))?,
    };
    Ok(req.engine.history(req.caller()?, tenant, days).await?.map(ok))
}

/// `15m`, `1h`, `24h`...: 1 minute to 24 hours; default 1 hour.
fn window_minutes(raw: Option<&str>) -> Result<i64, ApiError> {
    let bad = || ApiError::invalid("window must be minutes or hours such as 15m, 1h or 24h (at most 24h)");
    let Some(raw) = raw else { return Ok(60) };
    let raw = raw.trim();
    let (digits, per_unit) = match (raw.strip_suffix('m'), raw.strip_suffix('h')) {
        (Some(d), _) => (d, 1),
        (_, Some(d)) => (d, 60),
        _ => return Err(bad()),
    };
    let minutes = Some(digits)
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse::<i64>().ok())
        .and_then(|n| n.checked_mul(per_unit))
        .ok_or_else(bad)?;
    if (1..=24 * 60).contains(&minutes) {
        Ok(minutes)
    } else {
        Err(bad())
    }
}

async fn seat(req: Request) -> Answer {
    let seat = req.id::<SeatId>(0)?;
    Ok(req.engine.seat(req.caller()?, seat).await?.map(ok))
}

async fn audit(req: Request) -> Answer {
    let seat = req.id::<SeatId>(0)?;
    Ok(req.engine.seat_audit(req.caller()?, seat).await?.map(ok))
}
