//! Liveness: no identity needed, nothing read.

use serde_json::json;

use super::route::{ok, Answer, Request, Route};
use crate::engine::Durable;

pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/", root).open(),
        Route::get("/health", health).open(),
        Route::get("/api/v1/health", api_health).open(),
    ]
}

async fn root(_: Request) -> Answer {
    Ok(Durable::ready(ok(
        json!({"service": "tenant-svc", "status": "running", "version": env!("CARGO_PKG_VERSION")}),
    )))
}

async fn health(_: Request) -> Answer {
    Ok(Durable::ready(ok(json!({"status": "healthy"}))))
}

async fn api_health(_: Request) -> Answer {
    Ok(Durable::ready(ok(json!({"message": "Tenant service is healthy"}))))
}
