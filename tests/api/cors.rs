//! CORS over HTTP: the configured origins' pages may call (preflights
//! answered, answers readable, request ids exposed); any other origin, and
//! every origin when none is configured, gets no CORS header at all.

use reqwest::{Method, Response};

use super::helpers::TestApp;

const ALLOWED: &str = "https://admin.example.org";

async fn send(app: &TestApp, method: Method, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut req = app.client.request(method, app.url(path));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.send().await.unwrap_or_else(|e| panic!("{e}"))
}

fn header<'a>(res: &'a Response, name: &str) -> Option<&'a str> {
    res.headers().get(name).and_then(|v| v.to_str().ok())
}

fn cors_headers(res: &Response) -> Vec<String> {
    res.headers()
        .keys()
        .map(|k| k.as_str().to_owned())
        .filter(|k| k.starts_with("access-control-"))
        .collect()
}

#[tokio::test]
async fn configured_origins_may_call_and_read_answers() {
    let app = TestApp::spawn_with(|s| s.http.cors_origins = vec![ALLOWED.to_owned()]).await;

    let res = send(&app, Method::GET, "/api/v1/health", &[("origin", ALLOWED)]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "access-control-allow-origin"), Some(ALLOWED));
    let exposed = header(&res, "access-control-expose-headers").unwrap_or_default();
    for name in ["x-request-id", "idempotent-replayed"] {
        assert!(exposed.contains(name), "{exposed}");
    }
    assert_eq!(header(&res, "vary"), Some("origin"));
    assert!(header(&res, "access-control-allow-credentials").is_none());

    // A refusal is readable by the page too (its sentence is what a person needs).
    let res = send(&app, Method::GET, "/api/v1/me", &[("origin", ALLOWED)]).await;
    assert_eq!(res.status(), 401);
    assert_eq!(header(&res, "access-control-allow-origin"), Some(ALLOWED));

    // The preflight for a write with identity and a JSON body.
    let res = send(
        &app,
        Method::OPTIONS,
        "/api/v1/seats/allocate",
        &[
            ("origin", ALLOWED),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "content-type, x-user-id, idempotency-key",
            ),
        ],
    )
    .await;
    assert_eq!(res.status(), 204);
    assert_eq!(header(&res, "access-control-allow-origin"), Some(ALLOWED));
    let methods = header(&res, "access-control-allow-methods").unwrap_or_default();
    assert!(methods.contains("POST") && methods.contains("PUT"), "{methods}");
    let allowed = header(&res, "access-control-allow-headers").unwrap_or_default();
    for name in [
        "content-type",
        "x-user-id",
        "authorization",
        "idempotency-key",
        "x-request-id",
    ] {
        assert!(allowed.contains(name), "{allowed}");
    }
    assert!(header(&res, "access-control-max-age").is_some());
    assert_eq!(header(&res, "vary"), Some("origin"));
    assert!(
        header(&res, "x-request-id").is_some(),
        "the preflight has a request id too"
    );

    // The real request then carries its identity as usual.
    let res = send(
        &app,
        Method::POST,
        "/api/v1/district",
        &[
            ("origin", ALLOWED),
            ("x-user-id", "root"),
            ("content-type", "application/json"),
        ],
    )
    .await;
    assert_eq!(header(&res, "access-control-allow-origin"), Some(ALLOWED));
}

#[tokio::test]
async fn other_origins_get_no_cors_headers() {
    let app = TestApp::spawn_with(|s| s.http.cors_origins = vec![ALLOWED.to_owned()]).await;
    for origin in [
        "https://evil.example.org",
        "http://admin.example.org",
        "https://admin.example.org:8443",
        "null",
    ] {
        let res = send(&app, Method::GET, "/api/v1/health", &[("origin", origin)]).await;
        assert_eq!(res.status(), 200);
        assert!(cors_headers(&res).is_empty(), "{origin}: {:?}", cors_headers(&res));
        // Still marked as varying by origin, so no cache hands it to the allowed one.
        assert_eq!(header(&res, "vary"), Some("origin"));
        let res = send(
            &app,
            Method::OPTIONS,
            "/api/v1/seats/allocate",
            &[("origin", origin), ("access-control-request-method", "POST")],
        )
        .await;
        assert_eq!(
            res.status(),
            405,
            "{origin}: a preflight from elsewhere is no preflight"
        );
        assert!(cors_headers(&res).is_empty(), "{origin}: {:?}", cors_headers(&res));
    }
}

#[tokio::test]
async fn without_configured_origins_there_are_no_cors_headers_at_all() {
    let app = TestApp::spawn().await;
    let res = send(&app, Method::GET, "/api/v1/health", &[("origin", ALLOWED)]).await;
    assert_eq!(res.status(), 200);
    assert!(cors_headers(&res).is_empty(), "{:?}", cors_headers(&res));
    assert!(header(&res, "vary").is_none());
    let res = send(
        &app,
        Method::OPTIONS,
        "/api/v1/health",
        &[("origin", ALLOWED), ("access-control-request-method", "GET")],
    )
    .await;
    assert_eq!(res.status(), 405);
    assert!(cors_headers(&res).is_empty(), "{:?}", cors_headers(&res));
}
