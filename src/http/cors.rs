//! CORS for the configured origins (`[http] cors_origins`): a page served
//! from one of them may call the API from a browser. With none configured
//! (the default) no answer carries a CORS header. A request from an origin
//! not on the list gets no CORS header either, so its browser withholds the
//! answer from the page.
//!
//! Identity travels in headers (`X-User-ID`, `Authorization`), never in
//! cookies, so credentials are not allowed: a page must send the headers
//! itself, which the preflight allows.

use warp::http::header::{
    HeaderMap, HeaderValue, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use warp::http::{Method, StatusCode};
use warp::reply::Response;

/// The request headers a page may send.
const ALLOW_HEADERS: &str = "content-type, x-user-id, authorization, x-request-id, idempotency-key";
/// The methods the API answers (HEAD wherever GET is).
const ALLOW_METHODS: &str = "GET, HEAD, POST, PUT";
/// The answer headers a page may read besides the always-readable ones.
const EXPOSE_HEADERS: &str = "x-request-id, idempotent-replayed, retry-after, www-authenticate";
/// How long a browser may keep a preflight's answer, in seconds.
const MAX_AGE: &str = "600";

#[derive(Debug, Clone, Default)]
pub struct Cors {
    origins: Vec<HeaderValue>,
}

impl Cors {
    /// From checked origins (`config::check_origin`); any that could not be
    /// a header value is left out.
    pub fn new(origins: &[String]) -> Cors {
        Cors {
            origins: origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect(),
        }
    }

    /// The request's `Origin`, when it is one of the configured ones.
    pub fn allowed(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let origin = headers.get(ORIGIN)?;
        self.origins.iter().find(|o| *o == origin).cloned()
    }

    /// The answer to a preflight (`OPTIONS` with
    /// `Access-Control-Request-Method`) from an allowed origin: 204 and what
    /// may be sent. Anything else is an ordinary request.
    pub fn preflight(&self, method: &Method, origin: Option<&HeaderValue>, headers: &HeaderMap) -> Option<Response> {
        let origin = origin?;
        if method != Method::OPTIONS || !headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD) {
            return None;
        }
        let mut response = Response::new(warp::hyper::Body::empty());
        *response.status_mut() = StatusCode::NO_CONTENT;
        let h = response.headers_mut();
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        h.insert(ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOW_METHODS));
        h.insert(ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOW_HEADERS));
        h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE));
        Some(response)
    }

    /// Marks an answer: for an allowed origin, that its page may read it
    /// (and which headers). Whenever origins are configured, the answer
    /// varies with `Origin`, so a cache must not hand one origin's answer to
    /// another.
    pub fn decorate(&self, origin: Option<HeaderValue>, response: &mut Response) {
        if self.origins.is_empty() {
            return;
        }
        let h = response.headers_mut();
        h.append(VARY, HeaderValue::from_static("origin"));
        if let Some(origin) = origin {
            h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            if !h.contains_key(ACCESS_CONTROL_ALLOW_METHODS) {
                h.insert(ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSE_HEADERS));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    warp::http::header::HeaderName::from_static(k),
                    HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn only_listed_origins_byte_for_byte() {
        let cors = Cors::new(&["https://admin.example.org".into()]);
        let allowed = |origin: &'static str| cors.allowed(&headers(&[("origin", origin)])).is_some();
        assert!(allowed("https://admin.example.org"));
        for other in [
            "https://admin.example.org:443",
            "http://admin.example.org",
            "https://admin.example.org.evil.test",
            "https://evil.test",
            "null",
        ] {
            assert!(!allowed(other), "{other}");
        }
        assert!(cors.allowed(&HeaderMap::new()).is_none());
    }

    #[test]
    fn a_preflight_needs_options_and_a_requested_method() {
        let cors = Cors::new(&["https://a.test".into()]);
        let h = headers(&[("origin", "https://a.test"), ("access-control-request-method", "POST")]);
        let origin = cors.allowed(&h);
        assert!(cors.preflight(&Method::OPTIONS, origin.as_ref(), &h).is_some());
        assert!(cors.preflight(&Method::GET, origin.as_ref(), &h).is_none());
        let plain = headers(&[("origin", "https://a.test")]);
        assert!(cors.preflight(&Method::OPTIONS, origin.as_ref(), &plain).is_none());
        assert!(cors.preflight(&Method::OPTIONS, None, &h).is_none());
    }

    #[test]
    fn nothing_is_added_without_configured_origins() {
        let mut response = Response::new(warp::hyper::Body::empty());
        Cors::default().decorate(None, &mut response);
        assert!(response.headers().is_empty());
    }
}
