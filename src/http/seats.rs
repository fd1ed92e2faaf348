//! Seat purchase, allocation, reclaim, lookups, summary and audit.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;
use warp::filters::BoxedFilter;
use warp::{Filter, Reply};

use super::extract::{caller, json, query, query_id, with_engine};
use super::{created, ok, respond, Answer};
use crate::domain::{Id, LearnerId, Reason, SeatCount, SeatId, TenantId, UserId};
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

pub fn routes(engine: Arc<Engine>, limit: u64) -> BoxedFilter<(Box<dyn Reply>,)> {
    let purchase = warp::path!("api" / "v1" / "seats" / "purchase")
        .and(warp::post())
        .and(caller())
        .and(json::<PurchaseBody>(limit))
        .and(with_engine(engine.clone()))
        .then(purchase)
        .map(respond);
    let allocate = warp::path!("api" / "v1" / "seats" / "allocate")
        .and(warp::post())
        .and(caller())
        .and(json::<AllocateBody>(limit))
        .and(with_engine(engine.clone()))
        .then(allocate)
        .map(respond);
    let reclaim = warp::path!("api" / "v1" / "seats" / "reclaim")
        .and(warp::post())
        .and(caller())
        .and(json::<ReclaimBody>(limit))
        .and(with_engine(engine.clone()))
        .then(reclaim)
        .map(respond);
    let summary = warp::path!("api" / "v1" / "seats" / "summary")
        .and(warp::get())
        .and(caller())
        .and(query())
        .and(with_engine(engine.clone()))
        .then(summary)
        .map(respond);
    let seat = warp::path!("api" / "v1" / "seats" / String)
        .and(warp::get())
        .and(caller())
        .and(with_engine(engine.clone()))
        .then(seat)
        .map(respond);
    let audit = warp::path!("api" / "v1" / "seats" / String / "audit")
        .and(warp::get())
        .and(caller())
        .and(with_engine(engine))
        .then(audit)
        .map(respond);
    purchase
        .or(allocate)
        .unify()
        .or(reclaim)
        .unify()
        .or(summary)
        .unify()
        .or(seat)
        .unify()
        .or(audit)
        .unify()
        .boxed()
}

async fn purchase(by: UserId, body: PurchaseBody, engine: Arc<Engine>) -> Answer {
    let tenant = TenantId::from_u64(body.tenant_id)?;
    let count = SeatCount::parse(body.count)?;
    Ok(created(&engine.purchase(tenant, count, by).await?))
}

async fn allocate(by: UserId, body: AllocateBody, engine: Arc<Engine>) -> Answer {
    let seat = SeatId::from_u64(body.seat_id)?;
    let learner = LearnerId::parse(&body.learner_id)?;
    Ok(ok(&engine.allocate(seat, learner, by).await?))
}

async fn reclaim(by: UserId, body: ReclaimBody, engine: Arc<Engine>) -> Answer {
    let seat = SeatId::from_u64(body.seat_id)?;
    let reason = Reason::parse_reclaim(body.reason)?;
    Ok(ok(&engine.reclaim(seat, reason, by).await?))
}

async fn summary(_: UserId, query: HashMap<String, String>, engine: Arc<Engine>) -> Answer {
    let tenant = query_id::<TenantId>(&query, "tenantId")?;
    Ok(ok(&engine.summary(tenant).await?))
}

async fn seat(id: String, _: UserId, engine: Arc<Engine>) -> Answer {
    let seat = SeatId::parse_str(&id)?;
    Ok(ok(&engine.seat(seat).await?))
}

async fn audit(id: String, _: UserId, engine: Arc<Engine>) -> Answer {
    let seat = SeatId::parse_str(&id)?;
    Ok(ok(&engine.seat_audit(seat).await?))
}
