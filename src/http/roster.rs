//! Roster imports: `POST /api/v1/district/{id}/roster` with a OneRoster 1.2
//! CSV package (a ZIP) as the body, up to `[roster] max_bytes`;
//! `?dry_run=true` answers the plan without changing anything.

use super::error::ApiError;
use super::route::{ok, Answer, Request, Route};
use crate::domain::TenantId;
use crate::roster;

pub fn routes() -> Vec<Route> {
    vec![Route::post("/api/v1/district/{id}/roster", import).max_body_from(|ctx| ctx.roster_max_bytes)]
}

/// What the files of a package may unpack to, in multiples of the package's limit.
const UNPACKED_PER_PACKED: u64 = 8;

async fn import(mut req: Request) -> Answer {
    req.caller()?;
    let district: TenantId = req.id(0)?;
    let dry_run = match req.query()?.get("dry_run").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::invalid("query parameter dry_run must be true or false")),
    };
    let media = req
        .header("content-type")
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
    match media.as_deref() {
        None | Some("application/zip" | "application/x-zip-compressed" | "application/octet-stream") => {}
        Some(_) => return Err(ApiError::UnsupportedMediaType("a ZIP archive (application/zip)")),
    }
    let unpacked = req.body_limit().saturating_mul(UNPACKED_PER_PACKED);
    let bytes = req.bytes().await?;
    // Unzipping and hashing tens of megabytes is no work for a runtime thread.
    let (files, import_id) = tokio::task::spawn_blocking(move || {
        let id = crate::engine::import_id(&bytes);
        roster::read_zip(&bytes, unpacked).map(|files| (files, id))
    })
    .await
    .map_err(|e| ApiError::Engine(crate::engine::Error::Internal(e.into())))?
    .map_err(|e| ApiError::invalid(format!("roster package: {e}")))?;
    let caller = req.caller()?;
    Ok(req
        .engine
        .import_roster(caller, district, files, import_id, dry_run)
        .await?
        .map(ok))
}
