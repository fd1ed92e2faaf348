//! User roles per tenant.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;
use warp::filters::BoxedFilter;
use warp::{Filter, Reply};

use super::extract::{caller, decode_segment, json, query, query_id, with_engine};
use super::{created, ok, respond, Answer};
use crate::domain::{Id, RoleKind, TenantId, UserId};
use crate::engine::Engine;

#[derive(Deserialize)]
struct AssignBody {
    user_id: String,
    tenant_id: u64,
    role: String,
}

pub fn routes(engine: Arc<Engine>, limit: u64) -> BoxedFilter<(Box<dyn Reply>,)> {
    let assign = warp::path!("api" / "v1" / "roles")
        .and(warp::post())
        .and(caller())
        .and(json::<AssignBody>(limit))
        .and(with_engine(engine.clone()))
        .then(assign)
        .map(respond);
    let list = warp::path!("api" / "v1" / "roles")
        .and(warp::get())
        .and(caller())
        .and(query())
        .and(with_engine(engine.clone()))
        .then(list)
        .map(respond);
    let user_tenants = warp::path!("api" / "v1" / "users" / String / "tenants")
        .and(warp::get())
        .and(caller())
        .and(with_engine(engine))
        .then(user_tenants)
        .map(respond);
    assign.or(list).unify().or(user_tenants).unify().boxed()
}

async fn assign(_: UserId, body: AssignBody, engine: Arc<Engine>) -> Answer {
    let user = UserId::parse(&body.user_id)?;
    let tenant = TenantId::from_u64(body.tenant_id)?;
    let role = RoleKind::parse(&body.role)?;
    Ok(created(&engine.assign_role(user, tenant, role).await?))
}

async fn list(_: UserId, query: HashMap<String, String>, engine: Arc<Engine>) -> Answer {
    let tenant = query_id::<TenantId>(&query, "tenantId")?;
    Ok(ok(&engine.tenant_roles(tenant).await?))
}

async fn user_tenants(user: String, _: UserId, engine: Arc<Engine>) -> Answer {
    let user = UserId::parse(&decode_segment(&user)?)?;
    Ok(ok(&engine.user_roles(&user).await?))
}
