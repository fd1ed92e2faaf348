//! Listings, lookups and the seat export: pages of seats, a learner's
//! seats, districts, and the CSV export streamed page by page.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use futures_util::{stream, Stream, StreamExt};
use warp::http::header::{HeaderValue, CONTENT_DISPOSITION, CONTENT_TYPE};
use warp::hyper::body::Bytes;
use warp::hyper::Body;
use warp::reply::Response;

use super::error::ApiError;
use super::route::{ok, Answer, Request, Route};
use crate::domain::{LearnerId, Seat, SeatState, TenantId, Timestamp};
use crate::engine::{Durable, Listing, Paging, SeatFilter};

/// Seats read from the actors per export page: large enough that a page is
/// a good write for the socket, small enough that memory stays flat and an
/// actor is not held up for long by one page.
const EXPORT_PAGE: usize = 10_000;

/// Literal routes: the table takes these before `/api/v1/seats/{id}`.
pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/api/v1/seats", seats),
        Route::get("/api/v1/seats/export", export),
        Route::get("/api/v1/learners/{learner_id}/seats", learner_seats),
        Route::get("/api/v1/districts", districts),
    ]
}

/// `limit` and `cursor` of a listing's query.
pub fn paging(query: &HashMap<String, String>, listing: Listing) -> Result<Paging, ApiError> {
    Ok(Paging::parse(listing, get(query, "limit"), get(query, "cursor"))?)
}

/// As `paging`, or `None` when the query has neither (the answer is then
/// the whole list, as before paging existed).
pub fn optional_paging(query: &HashMap<String, String>, listing: Listing) -> Result<Option<Paging>, ApiError> {
    Ok(Paging::parse_optional(
        listing,
        get(query, "limit"),
        get(query, "cursor"),
    )?)
}

fn get<'a>(query: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    query.get(name).map(String::as_str)
}

async fn seats(req: Request) -> Answer {
    let query = req.query()?;
    let tenant = Request::query_id::<TenantId>(&query, "tenantId")?;
    let filter = SeatFilter {
        state: get(&query, "state").map(state).transpose()?,
        learner: get(&query, "learnerId").map(LearnerId::parse).transpose()?,
        expiring_before: get(&query, "expiring_before")
            .map(|raw| Timestamp::parse_rfc3339("expiring_before", raw))
            .transpose()?,
    };
    let paging = paging(&query, Listing::Seats)?;
    Ok(req.engine.seats(req.caller()?, tenant, filter, paging).await?.map(ok))
}

fn state(raw: &str) -> Result<SeatState, ApiError> {
    match raw {
        "free" => Ok(SeatState::Free),
        "reserved" => Ok(SeatState::Reserved),
        "assigned" => Ok(SeatState::Assigned),
        _ => Err(ApiError::invalid("state must be free, reserved or assigned")),
    }
}

async fn learner_seats(req: Request) -> Answer {
    let learner = LearnerId::parse(&req.decoded(0)?)?;
    Ok(req.engine.learner_seats(req.caller()?, learner).await?.map(ok))
}

async fn districts(req: Request) -> Answer {
    let paging = paging(&req.query()?, Listing::Districts)?;
    Ok(req.engine.districts(req.caller()?, paging).await?.map(ok))
}

/// `text/csv`, a header row and one row per seat, streamed: the engine
/// reads a page of seats when the connection has taken the previous one,
/// and each page is durable before its rows are written. A failure after
/// the first bytes cannot become an error status any more: the response is
/// cut short (no final chunk), so the client sees an incomplete transfer.
async fn export(req: Request) -> Answer {
    let tenant = Request::query_id::<TenantId>(&req.query()?, "tenantId")?;
    let pages = Arc::clone(&req.engine)
        .seat_export(req.caller()?, tenant, EXPORT_PAGE)
        .await?
        .wait(req.engine.store())
        .await?;
    let header = stream::once(async { csv_rows(&[], true) });
    let rows = pages.map(move |page| match page {
        Ok(seats) => csv_rows(&seats, false),
        Err(e) => {
            tracing::error!(tenant = %tenant, error = ?e, "seat export cut short");
            Err(std::io::Error::other(e))
        }
    });
    Ok(Durable::ready(csv_response(tenant, header.chain(rows))))
}

fn csv_response<S>(tenant: TenantId, body: S) -> Response
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
{
    let mut response = Response::new(Body::wrap_stream(body));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    if let Ok(name) = HeaderValue::from_str(&format!("attachment; filename=\"seats-{tenant}.csv\"")) {
        headers.insert(CONTENT_DISPOSITION, name);
    }
    response
}

/// The export's columns.
const CSV_HEADER: [&str; 5] = ["seat_id", "tenant_id", "state", "learner_id", "assigned_at"];

/// Seats as CSV rows (quoted by the csv crate where needed), after the
/// header row when `header`.
fn csv_rows(seats: &[Seat], header: bool) -> Result<Bytes, std::io::Error> {
    let mut out = csv::Writer::from_writer(Vec::with_capacity(seats.len() * 80 + 64));
    if header {
        out.write_record(CSV_HEADER).map_err(std::io::Error::other)?;
    }
    for seat in seats {
        out.write_record([
            seat.id.to_string().as_str(),
            seat.tenant_id.to_string().as_str(),
            seat.state.as_str(),
            &defused(seat.learner_id.as_ref().map_or("", LearnerId::as_str)),
            seat.assigned_at.map(|t| t.rfc3339()).as_deref().unwrap_or(""),
        ])
        .map_err(std::io::Error::other)?;
    }
    let bytes = out.into_inner().map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(Bytes::from(bytes))
}

/// A learner id as an export cell. Spreadsheets run a cell that starts with
/// `=`, `+`, `-` or `@` (or a tab or carriage return) as a formula ("CSV
/// injection"), and learner ids come from clients: such an id gets a
/// leading single quote, which spreadsheets show as text. The JSON listings
/// give every id as it is.
fn defused(learner: &str) -> Cow<'_, str> {
    if learner.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{learner}"))
    } else {
        Cow::Borrowed(learner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_like_learner_ids_are_defused() {
        for (raw, cell) in [
            ("=1+2", "'=1+2"),
            ("+1", "'+1"),
            ("-17", "'-17"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("l-17", "l-17"),
            ("", ""),
            ("'quoted", "'quoted"),
        ] {
            assert_eq!(defused(raw), cell, "{raw:?}");
        }
    }

    #[test]
    fn states_are_the_three_words() {
        assert!(matches!(state("free"), Ok(SeatState::Free)));
        assert!(matches!(state("assigned"), Ok(SeatState::Assigned)));
        for raw in ["", "Free", "taken", " free"] {
            assert!(state(raw).is_err(), "{raw:?}");
        }
    }
}
