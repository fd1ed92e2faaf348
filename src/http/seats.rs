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

async fn seat(id: String, caller: Caller, engine: Arc<Engine>) -> Answer {
    let seat = SeatId::parse_str(&id)?;
    Ok(ok(&engine.seat(&caller, seat).await?))
}

async fn audit(id: String, caller: Caller, engine: Arc<Engine>) -> Answer {
    let seat = SeatId::parse_str(&id)?;
    Ok(ok(&engine.seat_audit(&caller, seat).await?))
}
