//! The audit trail: paged queries over a tenant's (or a district's) trail,
//! and the verification of its hash chain.

use std::collections::HashMap;

use super::error::ApiError;
use super::route::{ok, Answer, Request, Route};
use crate::domain::{AuditFilter, AuditQuery, Id, LearnerId, Order, SeatId, TenantId, Timestamp, TrailPos, UserId};

pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/api/v1/audit", audit),
        Route::get("/api/v1/audit/verify", verify),
    ]
}

async fn verify(req: Request) -> Answer {
    let tenant = Request::query_id::<TenantId>(&req.query()?, "tenantId")?;
    Ok(req.engine.verify_audit(req.caller()?, tenant).await?.map(ok))
}

async fn audit(req: Request) -> Answer {
    let query = parse(&req.query()?)?;
    Ok(req.engine.audit(req.caller()?, query).await?.map(ok))
}

fn parse(q: &HashMap<String, String>) -> Result<AuditQuery, ApiError> {
    let get = |name: &str| q.get(name).map(String::as_str);
    let id = |name: &str| -> Result<Option<u64>, ApiError> {
        get(name)
            .map(|raw| {
                raw.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| ApiError::invalid(format!("query parameter {name} must be a positive integer")))
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
