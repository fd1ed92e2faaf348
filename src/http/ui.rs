//! The district admins' console: a page, a script and a style sheet, built
//! into the binary and served under `/ui/`. They need no identity (they are
//! the same for everyone); the page then speaks only the public API, with
//! the identity the person signs in with, so it can do exactly what that
//! user may do.

use warp::http::header::{
    HeaderValue, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use warp::hyper::Body;
use warp::reply::Response;

use super::error::ApiError;
use super::route::{Answer, Request, Route};
use crate::engine::Durable;

/// Each asset: its name under `/ui/`, its media type, its bytes.
const ASSETS: [(&str, &str, &[u8]); 4] = [
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../ui/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/app.js"),
    ),
    ("app.css", "text/css; charset=utf-8", include_bytes!("../../ui/app.css")),
    ("icon.svg", "image/svg+xml", include_bytes!("../../ui/icon.svg")),
];

/// Only this origin's script and styles, nothing inline, no frames: the page
/// shows names and learner ids that clients chose, and must never run them.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; \
                   connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

pub fn routes() -> Vec<Route> {
    vec![
        // `/ui` and `/ui/` alike (one trailing slash names the same route).
        Route::get("/ui/", index).open(),
        Route::get("/ui/{asset}", asset).open(),
    ]
}

async fn index(_: Request) -> Answer {
    serve("index.html")
}

async fn asset(req: Request) -> Answer {
    serve(req.param(0))
}

fn serve(name: &str) -> Answer {
    let &(_, media_type, bytes) = ASSETS
        .iter()
        .find(|(asset, _, _)| *asset == name)
        .ok_or(ApiError::RouteNotFound)?;
    let mut response = Response::new(Body::from(bytes));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(media_type));
    // The assets change with the binary: always revalidate.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    Ok(Durable::ready(response))
}
