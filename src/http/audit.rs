//! The audit trail: paged queries over a tenant's (or a district's) trail.

use std::collections::HashMap;
use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::{Filter, Reply};

use super::extract::{caller, query, query_id, with_engine};
use super::{ok, respond, Answer, Ctx};
use crate::domain::{
    AuditFilter, AuditQuery, Caller, Id, LearnerId, Order, SeatId, TenantId, Timestamp, TrailPos, UserId,
};
use crate::engine::Engine;
use crate::error::Error;

pub fn routes(ctx: &Ctx) -> BoxedFilter<(Box<dyn Reply>,)> {
    let page = warp::path!("api" / "v1" / "audit")
        .and(warp::get())
        .and(caller(ctx.auth.clone()))
        .and(query())
        .and(with_engine(ctx.engine.clone()))
        .then(audit)
        .map(respond);
    let verify = warp::path!("api" / "v1" / "audit" / "verify")
        .and(warp::get())
        .and(caller(ctx.auth.clone()))
        .and(query())
        .and(with_engine(ctx.engine.clone()))
        .then(verify)
        .map(respond);
    page.or(verify).unify().boxed()
}

async fn verify(caller: Caller, query: HashMap<String, String>, engine: Arc<Engine>) -> Answer {
    let tenant = query_id::<TenantId>(&query, "tenantId")?;
    Ok(ok(&engine.verify_audit(&caller, tenant).await?))
}

async fn audit(caller: Caller, query: HashMap<String, String>, engine: Arc<Engine>) -> Answer {
    Ok(ok(&engine.audit(&caller, parse(&query)?).await?))
}

fn parse(q: &HashMap<String, String>) -> Result<AuditQuery, Error> {
    let get = |name: &str| q.get(name).map(String::as_str);
    let id = |name: &str| -> Result<Option<u64>, Error> {
        get(name)
            .map(|raw| {
                raw.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| Error::Invalid(format!("query parameter {name} must be a positive integer")))
            })
            .transpose()
    };
    let time = |name: &str| get(name).map(|raw| Timestamp::parse_rfc3339(name, raw)).transpose();
    Ok(AuditQuery {
        tenant: id("tenantId")?.and_then(TenantId::new),
        seat: id("seatId")?.and_then(SeatId::new),
        filter: AuditFilter {
            learner: get("learnerId").map(LearnerId::parse).transpose()?,
            changed_by: get("changedBy").map(UserId::parse).transpose()?,
            since: time("since")?,
            until: time("until")?,
        },
        order: get("order").map(Order::parse).transpose()?.unwrap_or_default(),
        limit: AuditQuery::parse_limit(get("limit"))?,
        after: get("cursor").map(TrailPos::parse_cursor).transpose()?,
    })
}
