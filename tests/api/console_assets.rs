//! The console's files under `/ui/`, as served (no browser needed; the
//! console itself is tested in a real browser in tests/console).

use super::helpers::*;

struct Asset {
    status: u16,
    content_type: String,
    csp: String,
    body: String,
}

async fn fetch(app: &TestApp, method: reqwest::Method, path: &str) -> Asset {
    // No identity: the files are the same for everyone.
    let r = app
        .client
        .request(method, app.url(path))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (content_type, csp) = (header("content-type"), header("content-security-policy"));
    let status = r.status().as_u16();
    let body = r.text().await.unwrap_or_else(|e| panic!("{path}: {e}"));
    Asset {
        status,
        content_type,
        csp,
        body,
    }
}

#[tokio::test]
async fn the_console_is_served_without_identity_from_the_binary() {
    let app = TestApp::spawn_with(|s| s.auth.enforce_roles = true).await;
    for path in ["/ui/", "/ui"] {
        let page = fetch(&app, reqwest::Method::GET, path).await;
        assert_eq!(page.status, 200, "{path}");
        assert_eq!(page.content_type, "text/html; charset=utf-8", "{path}");
        assert!(page.body.contains("<script src=\"/ui/app.js\""), "{}", page.body);
        // Nothing inline runs, nothing comes from elsewhere.
        assert!(page.csp.contains("script-src 'self'"), "{}", page.csp);
        assert!(page.csp.contains("default-src 'none'"), "{}", page.csp);
    }
    for (path, media_type) in [
        ("/ui/app.js", "text/javascript; charset=utf-8"),
        ("/ui/app.css", "text/css; charset=utf-8"),
        ("/ui/icon.svg", "image/svg+xml"),
        ("/ui/index.html", "text/html; charset=utf-8"),
    ] {
        let asset = fetch(&app, reqwest::Method::GET, path).await;
        assert_eq!((asset.status, asset.content_type.as_str()), (200, media_type), "{path}");
        assert!(!asset.body.is_empty(), "{path}");
        // No CDN: the only absolute URL any file holds is the SVG namespace.
        let outside = asset.body.replace("http://www.w3.org/2000/svg", "").contains("http");
        assert!(!outside, "{path} names another server");
        let head = fetch(&app, reqwest::Method::HEAD, path).await;
        assert_eq!((head.status, head.body.as_str()), (200, ""), "HEAD {path}");
    }
}

#[tokio::test]
async fn an_unknown_console_file_is_the_contracts_404() {
    let app = TestApp::spawn().await;
    for path in ["/ui/nope.js", "/ui/app.js/x", "/ui/..%2fCargo.toml", "/ui/APP.JS"] {
        let r = app.send(app.client.get(app.url(path))).await;
        assert_eq!(r.status, 404, "{path}: {}", r.body);
        assert_eq!(r.body["error_code"], "NOT_FOUND", "{path}");
    }
    let r = app.send(app.client.post(app.url("/ui/app.js"))).await;
    assert_eq!(r.status, 405, "{}", r.body);
}
