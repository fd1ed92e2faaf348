//! The API document and its interactive page, both open (no identity):
//! `GET /openapi.json`, and `GET /docs`, Swagger UI reading it. Swagger
//! UI's files are compiled into the binary (`utoipa-swagger-ui`, vendored:
//! nothing is fetched when building or serving), so the page works with no
//! network at all.

use std::sync::{Arc, LazyLock};

use warp::http::header::{HeaderValue, CONTENT_TYPE};
use warp::hyper::Body;
use warp::reply::Response;

use super::error::ApiError;
use super::openapi;
use super::route::{Answer, Request, Route};
use crate::engine::Durable;

pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/openapi.json", document).open(),
        Route::get("/docs", page).open(),
        Route::get("/docs/{file}", asset).open(),
    ]
}

async fn document(_: Request) -> Answer {
    Ok(Durable::ready(bytes(openapi::json().as_bytes(), "application/json")))
}

/// Swagger UI's own page points to its files relatively (`./name`,
/// `name`), which from `/docs` (no trailing slash) would be `/name`: here
/// each is `/docs/name`.
static PAGE: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let page = file("index.html").map(|f| f.bytes.into_owned()).unwrap_or_default();
    let mut page =
        String::from_utf8_lossy(&page).replace("<title>Swagger UI</title>", "<title>Tenant Service API</title>");
    for attr in ["src=\"", "href=\""] {
        let mut out = String::with_capacity(page.len());
        let mut rest = page.as_str();
        while let Some(at) = rest.find(attr) {
            let (before, after) = rest.split_at(at + attr.len());
            out.push_str(before);
            if !after.starts_with('/') && !after.starts_with("http") {
                out.push_str("/docs/");
            }
            rest = after.strip_prefix("./").unwrap_or(after);
        }
        out.push_str(rest);
        page = out;
    }
    page.into_bytes()
});

async fn page(_: Request) -> Answer {
    Ok(Durable::ready(bytes(PAGE.as_slice(), "text/html; charset=utf-8")))
}

async fn asset(req: Request) -> Answer {
    let found = file(req.param(0)).ok_or(ApiError::RouteNotFound)?;
    Ok(Durable::ready(bytes(found.bytes, &found.content_type)))
}

/// One of Swagger UI's files; its start-up script reads `/openapi.json`.
fn file(name: &str) -> Option<utoipa_swagger_ui::SwaggerFile<'static>> {
    static CONFIG: LazyLock<Arc<utoipa_swagger_ui::Config<'static>>> =
        LazyLock::new(|| Arc::new(utoipa_swagger_ui::Config::new(["/openapi.json"])));
    utoipa_swagger_ui::serve(name, Arc::clone(&CONFIG)).ok().flatten()
}

fn bytes(body: impl Into<Body>, content_type: &str) -> Response {
    let mut response = Response::new(body.into());
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    response
}
