//! `GET /metrics`: Prometheus text exposition. Like `/health` it needs no
//! identity: it reveals counts and timings, never a tenant, seat or user.
//! Keep it off the public gateway (scrape it on the internal network).

use warp::Reply;

use super::route::{Answer, Request, Route};
use crate::engine::Durable;

pub fn routes() -> Vec<Route> {
    vec![Route::get("/metrics", exposition).open()]
}

async fn exposition(req: Request) -> Answer {
    let text = req.engine.metrics_text();
    Ok(Durable::ready(
        warp::reply::with_header(text, "content-type", "text/plain; version=0.0.4; charset=utf-8").into_response(),
    ))
}
