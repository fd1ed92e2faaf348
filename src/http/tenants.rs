//! Districts, schools and tenant metadata.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use warp::filters::BoxedFilter;
use warp::{Filter, Reply};

use std::collections::HashMap;

use super::extract::{caller, json, query, query_id, with_engine};
use super::{created, ok, respond, Answer, Ctx};
use crate::domain::{Caller, Id, Percent, Tenant, TenantId, TenantName, TenantPatch};
use crate::engine::Engine;

#[derive(Deserialize)]
struct NameBody {
    name: String,
}

#[derive(Deserialize)]
struct UpdateBody {
    name: Option<String>,
    is_active: Option<bool>,
}

/// `percent` absent or null clears the threshold.
#[derive(Deserialize)]
struct ThresholdBody {
    percent: Option<f64>,
}

#[derive(Serialize)]
struct DistrictView {
    #[serde(flatten)]
    district: Tenant,
    children: Vec<Tenant>,
}

pub fn routes(ctx: &Ctx) -> BoxedFilter<(Box<dyn Reply>,)> {
    let create_district = warp::path!("api" / "v1" / "district")
        .and(warp::post())
        .and(caller(ctx.auth.clone()))
        .and(json::<NameBody>(ctx.body_limit))
        .and(with_engine(ctx.engine.clone()))
        .then(create_district)
        .map(respond);
    let get_district = warp::path!("api" / "v1" / "district" / String)
        .and(warp::get())
        .and(caller(ctx.auth.clone()))
        .and(with_engine(ctx.engine.clone()))
        .then(get_district)
        .map(respond);
    let district_summary = warp::path!("api" / "v1" / "district" / String / "summary")
        .and(warp::get())
        .and(caller(ctx.auth.clone()))
        .and(with_engine(ctx.engine.clone()))
        .then(district_summary)
        .map(respond);
    let create_school = warp::path!("api" / "v1" / "district" / String / "schools")
        .and(warp::post())
        .and(caller(ctx.auth.clone()))
        .and(json::<NameBody>(ctx.body_limit))
        .and(with_engine(ctx.engine.clone()))
        .then(create_school)
        .map(respond);
    let get_tenant = warp::path!("api" / "v1" / "tenant" / String)
        .and(warp::get())
        .and(caller(ctx.auth.clone()))
        .and(with_engine(ctx.engine.clone()))
        .then(get_tenant)
        .map(respond);
    let update_tenant = warp::path!("api" / "v1" / "tenant" / String)
        .and(warp::put())
        .and(caller(ctx.auth.clone()))
        .and(json::<UpdateBody>(ctx.body_limit))
        .and(with_engine(ctx.engine.clone()))
        .then(update_tenant)
        .map(respond);
    let set_threshold = warp::path!("api" / "v1" / "tenant" / String / "alert-threshold")
        .and(warp::put())
        .and(caller(ctx.auth.clone()))
        .and(json::<ThresholdBody>(ctx.body_limit))
        .and(with_engine(ctx.engine.clone()))
        .then(set_threshold)
        .map(respond);
    let alerts = warp::path!("api" / "v1" / "alerts")
        .and(warp::get())
        .and(caller(ctx.auth.clone()))
        .and(query())
        .and(with_engine(ctx.engine.clone()))
        .then(alerts)
        .map(respond);
    create_district
        .or(set_threshold)
        .unify()
        .or(alerts)
        .unify()
        .or(get_district)
        .unify()
        .or(district_summary)
        .unify()
        .or(create_school)
        .unify()
        .or(get_tenant)
        .unify()
        .or(update_tenant)
        .unify()
        .boxed()
}

async fn create_district(caller: Caller, body: NameBody, engine: Arc<Engine>) -> Answer {
    let name = TenantName::parse(body.name)?;
    Ok(created(&engine.create_district(&caller, name).await?))
}

async fn get_district(id: String, caller: Caller, engine: Arc<Engine>) -> Answer {
    let id = TenantId::parse_str(&id)?;
    let (district, children) = engine.district(&caller, id).await?;
    Ok(ok(&DistrictView { district, children }))
}

async fn district_summary(id: String, caller: Caller, engine: Arc<Engine>) -> Answer {
    let id = TenantId::parse_str(&id)?;
    Ok(ok(&engine.district_summary(&caller, id).await?))
}

async fn create_school(id: String, caller: Caller, body: NameBody, engine: Arc<Engine>) -> Answer {
    let id = TenantId::parse_str(&id)?;
    let name = TenantName::parse(body.name)?;
    Ok(created(&engine.create_school(&caller, id, name).await?))
}

async fn get_tenant(id: String, caller: Caller, engine: Arc<Engine>) -> Answer {
    let id = TenantId::parse_str(&id)?;
    Ok(ok(&engine.tenant(&caller, id).await?))
}

async fn update_tenant(id: String, caller: Caller, body: UpdateBody, engine: Arc<Engine>) -> Answer {
    let id = TenantId::parse_str(&id)?;
    let patch = TenantPatch {
        name: body.name.map(TenantName::parse).transpose()?,
        is_active: body.is_active,
    };
    Ok(ok(&engine.update_tenant(&caller, id, patch).await?))
}

async fn set_threshold(id: String, caller: Caller, body: ThresholdBody, engine: Arc<Engine>) -> Answer {
    let id = TenantId::parse_str(&id)?;
    let percent = body.percent.map(Percent::parse).transpose()?;
    Ok(ok(&engine.set_threshold(&caller, id, percent).await?))
}

async fn alerts(caller: Caller, query: HashMap<String, String>, engine: Arc<Engine>) -> Answer {
    let tenant = query_id::<TenantId>(&query, "tenantId")?;
    Ok(ok(&engine.alerts(&caller, tenant).await?))
}
