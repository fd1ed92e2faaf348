//! Seat purchase, allocation, reclaim, lookups, summary and audit.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;
use warp::filters::BoxedFilter;
use warp::{Filter, Reply};

use super::extract::{caller, json, query, query_id, with_engine};
use super::{created, ok, respond, Answer, Ctx};
use crate::domain::{Caller, Id, LearnerId, Reason, SeatCount, SeatId, TenantId};
use crate::engine::Engine;
use crate::error::Error;

#[derive(Deserialize)]
struct PurchaseBody {
    tenant_id: u64,
    count: u64,
}

#[derive(Deserialize)]
struct AllocateBody {
    seat_id: u64,
    learner_id: String,
}

#[derive(Deserialize)]
struct ReclaimBody {
    seat_id: u64,
    reason: Option<String>,
}

pub fn routes(ctx: &Ctx) -> BoxedFilter<(Box<dyn Reply>,)> {
    let purchase = warp::path!("api" / "v1" / "seats" / "purchase")
        .and(warp::post())
        .and(caller(ctx.auth.clone()))
        .and(json::<PurchaseBody>(ctx.body_limit))
        .and(with_engine(ctx.engine.clone()))
        .then(purchase)
        .map(respond);
    let allocate = warp::path!("api" / "v1" / "seats" / "allocate")
        .and(warp::post())
        .and(caller(ctx.auth.clone()))
        .and(json::<AllocateBody>(ctx.body_limit))
        .and(with_engine(ctx.engine.clone()))
        .then(allocate)
        .map(respond);
    let reclaim = warp::path!("api" / "v1" / "seats" / "reclaim")
        .and(warp::post())
        .and(caller(ctx.auth.clone()))
        .and(json::<ReclaimBody>(ctx.body_limit))
        .and(with_engine(ctx.engine.clone()))
        .then(reclaim)
        .map(respond);
    let summary = warp::path!("api" / "v1" / "seats" / "summary")
        .and(warp::get())
        .and(caller(ctx.auth.clone()))
        .and(query())
        .and(with_engine(ctx.engine.clone()))
        .then(summary)
        .map(respond);
    let stats = warp::path!("api" / "v1" / "seats" / "stats")
        .and(warp::get())
        .and(caller(ctx.auth.clone()))
        .and(query())
        .and(with_engine(ctx.engine.clone()))
        .then(stats)
        .map(respond);
    let history = warp::path!("api" / "v1" / "seats" / "history")
        .and(warp::get())
        .and(caller(ctx.auth.clone()))
        .and(query())
        .and(with_engine(ctx.engine.clone()))
        .then(history)
        .map(respond);
    let seat = warp::path!("api" / "v1" / "seats" / String)
        .and(warp::get())
        .and(caller(ctx.auth.clone()))
        .and(with_engine(ctx.engine.clone()))
        .then(seat)
        .map(respond);
    let audit = warp::path!("api" / "v1" / "seats" / String / "audit")
        .and(warp::get())
        .and(caller(ctx.auth.clone()))
        .and(with_engine(ctx.engine.clone()))
        .then(audit)
        .map(respond);
    // The hot two first (summary must stay ahead of `seats/{id}`).
    allocate
        .or(summary)
        .unify()
        .or(reclaim)
        .unify()
        .or(purchase)
        .unify()
        .or(stats)
        .unify()
        .or(history)
        .unify()
        .or(seat)
        .unify()
        .or(audit)
        .unify()
        .boxed()
}

async fn purchase(caller: Caller, body: PurchaseBody, engine: Arc<Engine>) -> Answer {
    let tenant = TenantId::from_u64(body.tenant_id)?;
    let count = SeatCount::parse(body.count)?;
    Ok(created(&engine.purchase(&caller, tenant, count).await?))
}

async fn allocate(caller: Caller, body: AllocateBody, engine: Arc<Engine>) -> Answer {
    let seat = SeatId::from_u64(body.seat_id)?;
    let learner = LearnerId::parse(&body.learner_id)?;
    Ok(ok(&engine.allocate(&caller, seat, learner).await?))
}

async fn reclaim(caller: Caller, body: ReclaimBody, engine: Arc<Engine>) -> Answer {
    let seat = SeatId::from_u64(body.seat_id)?;
    let reason = Reason::parse_reclaim(body.reason)?;
    Ok(ok(&engine.reclaim(&caller, seat, reason).await?))
}

async fn summary(caller: Caller, query: HashMap<String, String>, engine: Arc<Engine>) -> Answer {
    let tenant = query_id::<TenantId>(&query, "tenantId")?;
    Ok(ok(&engine.summary(&caller, tenant).await?))
}

async fn stats(caller: Caller, query: HashMap<String, String>, engine: Arc<Engine>) -> Answer {
    let tenant = query_id::<TenantId>(&query, "tenantId")?;
    let minutes = window_minutes(query.get("window").map(String::as_str))?;
    Ok(ok(&engine.seat_stats(&caller, tenant, minutes).await?))
}

async fn history(caller: Caller, query: HashMap<String, String>, engine: Arc<Engine>) -> Answer {
    let tenant = query_id::<TenantId>(&query, "tenantId")?;
    let days = match query.get("days") {
        None => 30,
        Some(raw) => raw
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=366).contains(n))
            .ok_or_else(|| Error::invalid("days", "must be an integer from 1 to 366"))?,
    };
    Ok(ok(&engine.history(&caller, tenant, days).await?))
}

/// `15m`, `1h`, `24h`...: 1 minute to 24 hours; default 1 hour.
fn window_minutes(raw: Option<&str>) -> Result<i64, Error> {
    let bad = || {
        Error::invalid(
            "window",
            "must be minutes or hours such as 15m, 1h or 24h (at most 24h)",
        )
    };
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

async fn seat(id: String, caller: Caller, engine: Arc<Engine>) -> Answer {
    let seat = SeatId::parse_str(&id)?;
    Ok(ok(&engine.seat(&caller, seat).await?))
}

async fn audit(id: String, caller: Caller, engine: Arc<Engine>) -> Answer {
    let seat = SeatId::parse_str(&id)?;
    Ok(ok(&engine.seat_audit(&caller, seat).await?))
}
