//! User roles per tenant, the role trail, and the caller's own view (`/me`).

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;
use warp::filters::BoxedFilter;
use warp::{Filter, Reply};

use super::extract::{caller, decode_segment, json, query, query_id, with_engine};
use super::{created, ok, respond, Answer, Ctx};
use crate::domain::{Caller, Id, RoleId, RoleKind, TenantId, UserId};
use crate::engine::Engine;

#[derive(Deserialize)]
struct AssignBody {
    user_id: String,
    tenant_id: u64,
    role: String,
}

pub fn routes(ctx: &Ctx) -> BoxedFilter<(Box<dyn Reply>,)> {
    let assign = warp::path!("api" / "v1" / "roles")
        .and(warp::post())
        .and(caller(ctx.auth.clone()))
        .and(json::<AssignBody>(ctx.body_limit))
        .and(with_engine(ctx.engine.clone()))
        .then(assign)
        .map(respond);
    let list = warp::path!("api" / "v1" / "roles")
        .and(warp::get())
        .and(caller(ctx.auth.clone()))
        .and(query())
        .and(with_engine(ctx.engine.clone()))
        .then(list)
        .map(respond);
    let events = warp::path!("api" / "v1" / "roles" / "events")
        .and(warp::get())
        .and(caller(ctx.auth.clone()))
        .and(query())
        .and(with_engine(ctx.engine.clone()))
        .then(events)
        .map(respond);
    let deactivate = warp::path!("api" / "v1" / "roles" / String / "deactivate")
        .and(warp::post())
        .and(caller(ctx.auth.clone()))
        .and(with_engine(ctx.engine.clone()))
        .then(deactivate)
        .map(respond);
    let user_tenants = warp::path!("api" / "v1" / "users" / String / "tenants")
        .and(warp::get())
        .and(caller(ctx.auth.clone()))
        .and(with_engine(ctx.engine.clone()))
        .then(user_tenants)
        .map(respond);
    let me = warp::path!("api" / "v1" / "me")
        .and(warp::get())
        .and(caller(ctx.auth.clone()))
        .and(with_engine(ctx.engine.clone()))
        .then(me)
        .map(respond);
    assign
        .or(list)
        .unify()
        .or(events)
        .unify()
        .or(deactivate)
        .unify()
        .or(user_tenants)
        .unify()
        .or(me)
        .unify()
        .boxed()
}

async fn assign(caller: Caller, body: AssignBody, engine: Arc<Engine>) -> Answer {
    let user = UserId::parse(&body.user_id)?;
    let tenant = TenantId::from_u64(body.tenant_id)?;
    let role = RoleKind::parse(&body.role)?;
    Ok(created(&engine.assign_role(&caller, user, tenant, role).await?))
}

async fn list(caller: Caller, query: HashMap<String, String>, engine: Arc<Engine>) -> Answer {
    let tenant = query_id::<TenantId>(&query, "tenantId")?;
    Ok(ok(&engine.tenant_roles(&caller, tenant).await?))
}

async fn events(caller: Caller, query: HashMap<String, String>, engine: Arc<Engine>) -> Answer {
    let tenant = query_id::<TenantId>(&query, "tenantId")?;
    Ok(ok(&engine.role_events(&caller, tenant).await?))
}

async fn deactivate(id: String, caller: Caller, engine: Arc<Engine>) -> Answer {
    let id = RoleId::parse_str(&id)?;
    Ok(ok(&engine.deactivate_role(&caller, id).await?))
}

async fn user_tenants(user: String, caller: Caller, engine: Arc<Engine>) -> Answer {
    let user = UserId::parse(&decode_segment(&user)?)?;
    Ok(ok(&engine.user_roles(&caller, &user).await?))
}

async fn me(caller: Caller, engine: Arc<Engine>) -> Answer {
    Ok(ok(&engine.me(&caller).await?))
}
