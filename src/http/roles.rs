//! User roles per tenant, the role trail, and the caller's own view (`/me`).

use serde::Deserialize;
use warp::http::StatusCode;

use super::listings::optional_paging;
use super::route::{created, ok, Answer, Request, Route};
use crate::domain::{Id, RoleId, RoleKind, TenantId, UserId};
use crate::engine::Listing;

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = RoleGrantRequest)]
pub(super) struct AssignBody {
    /// 1 to 255 printable ASCII characters, no leading or trailing space.
    user_id: String,
    #[schema(minimum = 1)]
    tenant_id: u64,
    #[schema(value_type = RoleKind)]
    role: String,
}

pub fn routes() -> Vec<Route> {
    vec![
        Route::post("/api/v1/roles", assign),
        Route::get("/api/v1/roles", list),
        Route::get("/api/v1/roles/events", events),
        Route::post("/api/v1/roles/{id}/deactivate", deactivate),
        Route::get("/api/v1/users/{id}/tenants", user_tenants),
        Route::get("/api/v1/me", me),
    ]
}

async fn assign(mut req: Request) -> Answer {
    let body: AssignBody = req.json().await?;
    let user = UserId::parse(&body.user_id)?;
    let tenant = TenantId::from_u64(body.tenant_id)?;
    let role = RoleKind::parse(&body.role)?;
    Ok(req
        .engine
        .assign_role(req.caller()?, user, tenant, role, req.keyed(StatusCode::CREATED))
        .await?
        .map(created))
}

/// Without `limit` and `cursor`: the whole list as a JSON array, as it has
/// always been; with either, a page (`{"items", "next_cursor"}`).
async fn list(req: Request) -> Answer {
    let query = req.query()?;
    let tenant = Request::query_id::<TenantId>(&query, "tenantId")?;
    let caller = req.caller()?;
    Ok(match optional_paging(&query, Listing::Roles)? {
        None => req.engine.tenant_roles(caller, tenant).await?.map(ok),
        Some(paging) => req.engine.tenant_roles_page(caller, tenant, paging).await?.map(ok),
    })
}

/// Paged as `list` is.
async fn events(req: Request) -> Answer {
    let query = req.query()?;
    let tenant = Request::query_id::<TenantId>(&query, "tenantId")?;
    let caller = req.caller()?;
    Ok(match optional_paging(&query, Listing::RoleEvents)? {
        None => req.engine.role_events(caller, tenant).await?.map(ok),
        Some(paging) => req.engine.role_events_page(caller, tenant, paging).await?.map(ok),
    })
}

async fn deactivate(req: Request) -> Answer {
    let id = req.id::<RoleId>(0)?;
    let keyed = req.keyed(StatusCode::OK);
    Ok(req.engine.deactivate_role(req.caller()?, id, keyed).await?.map(ok))
}

async fn user_tenants(req: Request) -> Answer {
    let user = UserId::parse(&req.decoded(0)?)?;
    Ok(req.engine.user_roles(req.caller()?, &user).await?.map(ok))
}

async fn me(req: Request) -> Answer {
    Ok(req.engine.me(req.caller()?).await?.map(ok))
}
