//! Districts, schools, tenant metadata and utilization alerts.

use serde::{Deserialize, Serialize};
use warp::http::StatusCode;

use super::route::{created, ok, Answer, Request, Route};
use crate::domain::{Percent, Tenant, TenantId, TenantName, TenantPatch};

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = NameRequest)]
pub(super) struct NameBody {
    /// 1 to 255 characters, not blank, no control characters.
    name: String,
}

/// Fields left out (or null) stay as they are.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = TenantUpdateRequest)]
pub(super) struct UpdateBody {
    name: Option<String>,
    /// `false` deactivates the tenant (writes to it are refused), `true` reactivates it.
    is_active: Option<bool>,
}

/// `percent` is required; `null` clears the threshold.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = ThresholdRequest)]
pub(super) struct ThresholdBody {
    // Required although nullable: `{}` is a mistake, not a request to clear.
    #[serde(deserialize_with = "Option::deserialize")]
    /// More than 0 and at most 100; null clears the threshold.
    #[schema(required, exclusive_minimum = 0, maximum = 100)]
    percent: Option<f64>,
}

/// A district and its schools.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct DistrictView {
    #[serde(flatten)]
    district: Tenant,
    children: Vec<Tenant>,
}

pub fn routes() -> Vec<Route> {
    vec![
        Route::post("/api/v1/district", create_district),
        Route::put("/api/v1/tenant/{id}/alert-threshold", set_threshold),
        Route::get("/api/v1/alerts", alerts),
        Route::get("/api/v1/district/{id}", get_district),
        Route::get("/api/v1/district/{id}/summary", district_summary),
        Route::post("/api/v1/district/{id}/schools", create_school),
        Route::get("/api/v1/tenant/{id}", get_tenant),
        Route::put("/api/v1/tenant/{id}", update_tenant),
    ]
}

async fn create_district(mut req: Request) -> Answer {
    let body: NameBody = req.json().await?;
    let name = TenantName::parse(body.name)?;
    let keyed = req.keyed(StatusCode::CREATED);
    Ok(req
        .engine
        .create_district(req.caller()?, name, keyed)
        .await?
        .map(created))
}

async fn get_district(req: Request) -> Answer {
    let id = req.id::<TenantId>(0)?;
    let found = req.engine.district(req.caller()?, id).await?;
    Ok(found.map(|(district, children)| ok(DistrictView { district, children })))
}

async fn district_summary(req: Request) -> Answer {
    let id = req.id::<TenantId>(0)?;
    Ok(req.engine.district_summary(req.caller()?, id).await?.map(ok))
}

async fn create_school(mut req: Request) -> Answer {
    let body: NameBody = req.json().await?;
    let id = req.id::<TenantId>(0)?;
    let name = TenantName::parse(body.name)?;
    let keyed = req.keyed(StatusCode::CREATED);
    Ok(req
        .engine
        .create_school(req.caller()?, id, name, keyed)
        .await?
        .map(created))
}

async fn get_tenant(req: Request) -> Answer {
    let id = req.id::<TenantId>(0)?;
    Ok(req.engine.tenant(req.caller()?, id).await?.map(ok))
}

async fn update_tenant(mut req: Request) -> Answer {
    let body: UpdateBody = req.json().await?;
    let id = req.id::<TenantId>(0)?;
    let patch = TenantPatch {
        name: body.name.map(TenantName::parse).transpose()?,
        is_active: body.is_active,
    };
    let keyed = req.keyed(StatusCode::OK);
    Ok(req.engine.update_tenant(req.caller()?, id, patch, keyed).await?.map(ok))
}

async fn set_threshold(mut req: Request) -> Answer {
    let body: ThresholdBody = req.json().await?;
    let id = req.id::<TenantId>(0)?;
    let percent = body.percent.map(Percent::parse).transpose()?;
    let keyed = req.keyed(StatusCode::OK);
    Ok(req
        .engine
        .set_threshold(req.caller()?, id, percent, keyed)
        .await?
        .map(ok))
}

async fn alerts(req: Request) -> Answer {
    let tenant = Request::query_id::<TenantId>(&req.query()?, "tenantId")?;
    Ok(req.engine.alerts(req.caller()?, tenant).await?.map(ok))
}
