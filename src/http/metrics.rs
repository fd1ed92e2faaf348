//! `GET /metrics`: Prometheus text exposition. Like `/health` it needs no
//! identity: it reveals counts and timings, never a tenant, seat or user.
//! Keep it off the public gateway (scrape it on the internal network).

use warp::filters::BoxedFilter;
use warp::{Filter, Reply};

use super::Ctx;

pub fn routes(ctx: &Ctx) -> BoxedFilter<(Box<dyn Reply>,)> {
    let engine = ctx.engine.clone();
    warp::path!("metrics")
        .and(warp::get())
        .map(move || {
            Box::new(warp::reply::with_header(
                engine.metrics_text(),
                "content-type",
                "text/plain; version=0.0.4; charset=utf-8",
            )) as Box<dyn Reply>
        })
        .boxed()
}
