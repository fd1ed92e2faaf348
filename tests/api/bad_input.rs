//! Bad input of every kind, over HTTP against the real server: malformed and
//! mistyped bodies, out-of-range values, odd paths and queries, missing
//! identity, unknown routes and methods, oversized bodies, and a fixed-seed
//! fuzz. Every refusal must be a 4xx with the contract's error body, must
//! change nothing, and must leave the server healthy.

use serde_json::{json, Value};

use super::helpers::*;
use super::load::Rng;

// ---- shared fixture -------------------------------------------------------

/// A small world to aim bad requests at: a district, one school under it, five
/// seats in the school (the first assigned to `FIXTURE_LEARNER`), one role.
struct Fixture {
    app: TestApp,
    district: u64,
    school: u64,
    seats: Vec<u64>,
}

const FIXTURE_LEARNER: &str = "learner_fixture";
const FIXTURE_USER: &str = "teacher_fixture";

/// Every API route that takes a JSON body: (method, path template). `{d}`,
/// `{s}`, `{seat}` and `{free}` are filled in by `Fixture::fill`; a valid body
/// for each comes from `Fixture::valid_body`.
const BODY_ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/v1/district"),
    ("POST", "/api/v1/district/{d}/schools"),
    ("PUT", "/api/v1/tenant/{s}"),
    ("POST", "/api/v1/seats/purchase"),
    ("POST", "/api/v1/seats/allocate"),
    ("POST", "/api/v1/seats/reclaim"),
    ("POST", "/api/v1/roles"),
];

impl Fixture {
    async fn new() -> Fixture {
        let app = TestApp::spawn().await;
        let district = app.district("Fixture District").await;
        let school = app.school(district, "Fixture School").await;
        let seats = app.purchase(school, 5).await;
        let r = app.allocate(seats[0], FIXTURE_LEARNER).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = app
            .post(
                "/api/v1/roles",
                json!({"user_id": FIXTURE_USER, "tenant_id": school, "role": "teacher"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        Fixture {
            app,
            district,
            school,
            seats,
        }
    }

    fn assigned(&self) -> u64 {
        self.seats[0]
    }

    fn free(&self) -> u64 {
        self.seats[1]
    }

    /// Replaces the placeholders of a path or body template with fixture ids.
    fn fill(&self, template: &str) -> String {
        template
            .replace("{d}", &self.district.to_string())
            .replace("{s}", &self.school.to_string())
            .replace("{seat}", &self.assigned().to_string())
            .replace("{free}", &self.free().to_string())
    }

    /// A valid body for a route template of `BODY_ROUTES`.
    fn valid_body(&self, path: &str) -> Value {
        match path {
            "/api/v1/district" | "/api/v1/district/{d}/schools" => json!({"name": "Valid Name"}),
            "/api/v1/tenant/{s}" => json!({"name": "Fixture School", "is_active": true}),
            "/api/v1/seats/purchase" => json!({"tenant_id": self.school, "count": 1}),
            "/api/v1/seats/allocate" => json!({"seat_id": self.free(), "learner_id": "learner_new"}),
            "/api/v1/seats/reclaim" => json!({"seat_id": self.assigned(), "reason": "fuzz"}),
            "/api/v1/roles" => json!({"user_id": "user_new", "tenant_id": self.school, "role": "admin"}),
            other => panic!("no valid body for {other}"),
        }
    }

    /// Everything a client can observe about the fixture, in one value.
    async fn snapshot(&self) -> Value {
        let app = &self.app;
        let mut seats = Vec::new();
        for &s in &self.seats {
            seats.push(json!({"seat": app.seat(s).await, "audit": app.audit(s).await}));
        }
        let district = app.get(&format!("/api/v1/district/{}", self.district)).await;
        let school = app.get(&format!("/api/v1/tenant/{}", self.school)).await;
        let roles_d = app.get(&format!("/api/v1/roles?tenantId={}", self.district)).await;
        let roles_s = app.get(&format!("/api/v1/roles?tenantId={}", self.school)).await;
        let user = app.get(&format!("/api/v1/users/{FIXTURE_USER}/tenants")).await;
        for r in [&district, &school, &roles_d, &roles_s, &user] {
            assert_eq!(r.status, 200, "{}", r.body);
        }
        json!({
            "district": district.body,
            "school": school.body,
            "summary_d": app.summary(self.district).await,
            "summary_s": app.summary(self.school).await,
            "roles_d": roles_d.body,
            "roles_s": roles_s.body,
            "user": user.body,
            "seats": seats,
        })
    }

    /// The server is healthy, the fixture is exactly as `before`, and no
    /// tenant or seat was created (ids are handed out in order, so anything
    /// created would sit right after the fixture's last id).
    async fn assert_unchanged(&self, before: &Value) {
        assert!(self.app.healthy().await, "server is not healthy");
        let after = self.snapshot().await;
        assert_eq!(&after, before, "a refused request changed state");
        let last_seat = self.seats.iter().copied().max().unwrap_or(0);
        for id in 1..=3 {
            let t = self.app.get(&format!("/api/v1/tenant/{}", self.school + id)).await;
            assert_eq!(t.status, 404, "tenant {} exists: {}", self.school + id, t.body);
            let s = self.app.get(&format!("/api/v1/seats/{}", last_seat + id)).await;
            assert_eq!(s.status, 404, "seat {} exists: {}", last_seat + id, s.body);
        }
        let summary = self.app.summary(self.school).await;
        assert_eq!(summary["total_seats"], json!(self.seats.len()), "{summary}");
        let (free, reserved, assigned) = self.app.count_seats(&self.seats).await;
        assert_eq!(
            (
                summary["free_seats"].as_u64(),
                summary["reserved_seats"].as_u64(),
                summary["assigned_seats"].as_u64()
            ),
            (Some(free), Some(reserved), Some(assigned)),
            "summary disagrees with the seats: {summary}"
        );
    }
}

// ---- request helpers -------------------------------------------------------

/// Any method, any path, optional identity, optional raw body.
async fn request(app: &TestApp, method: &str, path: &str, user: Option<&str>, body: Option<Vec<u8>>) -> Response {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or_else(|e| panic!("method {method}: {e}"));
    let mut req = app.client.request(method, app.url(path));
    if let Some(user) = user {
        req = req.header("X-User-ID", user);
    }
    if let Some(body) = body {
        if body.is_empty() {
            // reqwest sends no Content-Length for an empty body; a real client would.
            req = req.header("content-length", "0");
        }
        req = req.header("content-type", "application/json").body(body);
    }
    app.send(req).await
}

async fn call(app: &TestApp, method: &str, path: &str, body: &[u8]) -> Response {
    request(app, method, path, Some(ADMIN), Some(body.to_vec())).await
}

/// Asserts a refusal with one of `allowed` statuses and the contract's error body.
#[track_caller]
fn refused(r: &Response, allowed: &[u16], what: &str) {
    assert!(
        allowed.contains(&r.status),
        "{what}: expected one of {allowed:?}, got {}: {}",
        r.status,
        r.body
    );
    let detail = r.detail();
    assert!(!detail.trim().is_empty(), "{what}: empty detail in {}", r.body);
    let code = r.body["error_code"].as_str().unwrap_or_default();
    assert!(
        !code.is_empty()
            && code
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
        "{what}: error_code is not UPPER_SNAKE: {}",
        r.body
    );
}

#[track_caller]
fn client_error(r: &Response, what: &str) {
    assert!(
        (400..500).contains(&r.status),
        "{what}: expected a 4xx, got {}: {}",
        r.status,
        r.body
    );
    refused(r, &[r.status], what);
}

// ---- malformed JSON ----------------------------------------------------------

#[tokio::test]
async fn malformed_json_bodies_are_refused_on_every_body_route() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    // Not JSON at all: 400 or 422.
    let not_json: &[&[u8]] = &[
        b"{bad",
        b"{\"name\": \"trunc",
        b"{\"tenant_id\": 1, \"count\":",
        b"{\"seat_id\": 1,",
        b"{",
        b"hello world",
        b"<xml/>",
        b"",
        b"   \n\t ",
        b"{'name': 'single quotes'}",
        b"{name: \"unquoted key\"}",
        b"{\"name\": \"x\",}",
        b"\xff\xfe\x00garbage",
        b"{\"name\": \"\xff\xfe\"}",
        b"{\"name\": \"\\ud800\"}",
        b"NaN",
        b"{\"count\": NaN}",
    ];
    // JSON, but not an object: 422 (the contract: wrong types are 422).
    // (Arrays that match a body's fields by position: see
    // `json_array_bodies_are_not_taken_as_objects`.)
    let not_object: &[&[u8]] = &[
        b"[]",
        b"[{\"name\": \"x\"}]",
        b"[[]]",
        b"42",
        b"-1.5",
        b"\"a string\"",
        b"null",
        b"true",
    ];
    for (method, template) in BODY_ROUTES {
        let path = f.fill(template);
        for body in not_json {
            // The helper's raw POST where it can (it sends no Content-Length for an empty body).
            let r = if *method == "POST" && !body.is_empty() {
                f.app.post_raw(&path, body.to_vec()).await
            } else {
                call(&f.app, method, &path, body).await
            };
            refused(
                &r,
                &[400, 422],
                &format!("{method} {path} {:?}", String::from_utf8_lossy(body)),
            );
        }
        for body in not_object {
            let r = call(&f.app, method, &path, body).await;
            refused(
                &r,
                &[422],
                &format!("{method} {path} {:?}", String::from_utf8_lossy(body)),
            );
        }
    }
    f.assert_unchanged(&before).await;
}

#[tokio::test]

async fn trailing_bytes_after_the_json_body_are_refused() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    let mut wrong = Vec::new();
    for (method, template) in BODY_ROUTES {
        let path = f.fill(template);
        let valid = f.valid_body(template).to_string();
        for tail in [" trailing", "{\"name\": \"y\"}", "]", ",", "}", " 42", "\u{0}"] {
            let body = format!("{valid}{tail}");
            let r = call(&f.app, method, &path, body.as_bytes()).await;
            if ![400, 422].contains(&r.status) {
                wrong.push(format!("{method} {path} {body:?}: {} {}", r.status, r.body));
            }
        }
    }
    assert!(wrong.is_empty(), "accepted with trailing bytes:\n{}", wrong.join("\n"));
    f.assert_unchanged(&before).await;
}

#[tokio::test]

async fn json_array_bodies_are_not_taken_as_objects() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    let (s, free, seat) = (f.school, f.free(), f.assigned());
    let cases = [
        ("POST", "/api/v1/district".to_string(), json!(["Array District"])),
        ("POST", f.fill("/api/v1/district/{d}/schools"), json!(["Array School"])),
        ("PUT", format!("/api/v1/tenant/{s}"), json!(["Array Rename", false])),
        ("POST", "/api/v1/seats/purchase".to_string(), json!([s, 2])),
        (
            "POST",
            "/api/v1/seats/allocate".to_string(),
            json!([free, "array_learner"]),
        ),
        (
            "POST",
            "/api/v1/seats/reclaim".to_string(),
            json!([seat, "array reason"]),
        ),
        ("POST", "/api/v1/roles".to_string(), json!(["array_user", s, "admin"])),
    ];
    let mut wrong = Vec::new();
    for (method, path, body) in &cases {
        let r = call(&f.app, method, path, body.to_string().as_bytes()).await;
        if r.status != 422 {
            wrong.push(format!("{method} {path} {body}: {} {}", r.status, r.body));
        }
    }
    assert!(wrong.is_empty(), "array bodies accepted:\n{}", wrong.join("\n"));
    f.assert_unchanged(&before).await;
}

/// One request over a plain socket, for what reqwest will not send (no
/// Content-Length, chunked bodies). Returns the status and the JSON body.
async fn raw_http(app: &TestApp, request: String) -> (u16, Value) {
    let addr = app.addr;
    let text = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect: {e}"));
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap_or_else(|e| panic!("timeout: {e}"));
        stream
            .write_all(request.as_bytes())
            .unwrap_or_else(|e| panic!("write: {e}"));
        let mut out = Vec::new();
        stream.read_to_end(&mut out).unwrap_or_else(|e| panic!("read: {e}"));
        String::from_utf8_lossy(&out).into_owned()
    })
    .await
    .unwrap_or_else(|e| panic!("raw request: {e}"));
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {text:?}"));
    assert!(
        !head.to_ascii_lowercase().contains("transfer-encoding: chunked"),
        "chunked reply; this helper reads only Content-Length replies: {head}"
    );
    let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("{status}: body is not JSON ({e}): {body:?}"));
    (status, body)
}

fn raw_post(app: &TestApp, path: &str, extra_headers: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nX-User-ID: {ADMIN}\r\nContent-Type: application/json\r\nConnection: close\r\n{extra_headers}\r\n{body}",
        app.addr
    )
}

#[tokio::test]

async fn post_without_body_or_content_length_is_422() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    let mut wrong = Vec::new();
    for (method, template) in BODY_ROUTES {
        let path = f.fill(template);
        let request = raw_post(&f.app, &path, "", "").replacen("POST", method, 1);
        let (status, body) = raw_http(&f.app, request).await;
        if status != 422 {
            wrong.push(format!("{method} {path} (no body, no Content-Length): {status} {body}"));
        }
    }
    assert!(wrong.is_empty(), "not 422:\n{}", wrong.join("\n"));
    f.assert_unchanged(&before).await;
}

#[tokio::test]
async fn chunked_and_lengthless_bodies_are_never_5xx() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    for (method, template) in BODY_ROUTES {
        let path = f.fill(template);
        // A body with no Content-Length at all, cut short by the closing socket.
        let request = raw_post(&f.app, &path, "", "{\"name\": ").replacen("POST", method, 1);
        let (status, body) = raw_http(&f.app, request).await;
        let r = Response { status, body };
        client_error(&r, &format!("{method} {path} body without Content-Length"));
        // Chunked garbage: refused, whatever the reason.
        let chunked = raw_post(
            &f.app,
            &path,
            "Transfer-Encoding: chunked\r\n",
            "5\r\n{bad}\r\n0\r\n\r\n",
        )
        .replacen("POST", method, 1);
        let (status, body) = raw_http(&f.app, chunked).await;
        let r = Response { status, body };
        client_error(&r, &format!("{method} {path} chunked garbage"));
    }
    // A Content-Length that lies (says more than is sent) must not hang or crash the server.
    let request = raw_post(&f.app, "/api/v1/district", "Content-Length: 20\r\n", "{\"na");
    let addr = f.app.addr;
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut stream = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect: {e}"));
        stream
            .write_all(request.as_bytes())
            .unwrap_or_else(|e| panic!("write: {e}"));
        // Hang up half way through the body.
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    f.assert_unchanged(&before).await;
}

#[tokio::test]
async fn chunked_valid_json_is_created_or_refused_with_411() {
    let f = Fixture::new().await;
    let body = "{\"name\": \"Chunked District\"}";
    let chunked = format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
    let request = raw_post(&f.app, "/api/v1/district", "Transfer-Encoding: chunked\r\n", &chunked);
    let (status, body) = raw_http(&f.app, request).await;
    let r = Response { status, body };
    if r.status == 201 {
        assert_eq!(r.body["name"], json!("Chunked District"));
    } else {
        refused(&r, &[411], "chunked POST /api/v1/district");
    }
    assert!(f.app.healthy().await);
}

// ---- wrong types, missing fields -------------------------------------------------

#[tokio::test]
async fn wrong_types_and_missing_fields_are_422() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    let (s, seat, free) = (f.school, f.assigned(), f.free());
    let cases: Vec<(&str, String, Value)> = vec![
        // district / school names
        ("POST", "/api/v1/district".into(), json!({})),
        ("POST", "/api/v1/district".into(), json!({"name": null})),
        ("POST", "/api/v1/district".into(), json!({"name": 42})),
        ("POST", "/api/v1/district".into(), json!({"name": 4.2})),
        ("POST", "/api/v1/district".into(), json!({"name": true})),
        ("POST", "/api/v1/district".into(), json!({"name": ["a"]})),
        ("POST", "/api/v1/district".into(), json!({"name": {"first": "a"}})),
        ("POST", "/api/v1/district".into(), json!({"Name": "wrong case"})),
        ("POST", f.fill("/api/v1/district/{d}/schools"), json!({})),
        ("POST", f.fill("/api/v1/district/{d}/schools"), json!({"name": null})),
        ("POST", f.fill("/api/v1/district/{d}/schools"), json!({"name": 7})),
        // tenant update
        ("PUT", format!("/api/v1/tenant/{s}"), json!({"name": 1})),
        ("PUT", format!("/api/v1/tenant/{s}"), json!({"name": false})),
        ("PUT", format!("/api/v1/tenant/{s}"), json!({"is_active": "yes"})),
        ("PUT", format!("/api/v1/tenant/{s}"), json!({"is_active": 0})),
        ("PUT", format!("/api/v1/tenant/{s}"), json!({"is_active": "false"})),
        (
            "PUT",
            format!("/api/v1/tenant/{s}"),
            json!({"name": "ok", "is_active": []}),
        ),
        // purchase
        ("POST", "/api/v1/seats/purchase".into(), json!({})),
        ("POST", "/api/v1/seats/purchase".into(), json!({"tenant_id": s})),
        ("POST", "/api/v1/seats/purchase".into(), json!({"count": 1})),
        (
            "POST",
            "/api/v1/seats/purchase".into(),
            json!({"tenant_id": s.to_string(), "count": 1}),
        ),
        (
            "POST",
            "/api/v1/seats/purchase".into(),
            json!({"tenant_id": s, "count": "1"}),
        ),
        (
            "POST",
            "/api/v1/seats/purchase".into(),
            json!({"tenant_id": s as f64 + 0.5, "count": 1}),
        ),
        (
            "POST",
            "/api/v1/seats/purchase".into(),
            json!({"tenant_id": true, "count": 1}),
        ),
        (
            "POST",
            "/api/v1/seats/purchase".into(),
            json!({"tenant_id": s, "count": true}),
        ),
        (
            "POST",
            "/api/v1/seats/purchase".into(),
            json!({"tenant_id": null, "count": 1}),
        ),
        (
            "POST",
            "/api/v1/seats/purchase".into(),
            json!({"tenant_id": s, "count": null}),
        ),
        (
            "POST",
            "/api/v1/seats/purchase".into(),
            json!({"tenant_id": [s], "count": 1}),
        ),
        (
            "POST",
            "/api/v1/seats/purchase".into(),
            json!({"tenant_id": {"id": s}, "count": 1}),
        ),
        // allocate
        ("POST", "/api/v1/seats/allocate".into(), json!({})),
        ("POST", "/api/v1/seats/allocate".into(), json!({"seat_id": free})),
        ("POST", "/api/v1/seats/allocate".into(), json!({"learner_id": "l1"})),
        (
            "POST",
            "/api/v1/seats/allocate".into(),
            json!({"seat_id": free.to_string(), "learner_id": "l1"}),
        ),
        (
            "POST",
            "/api/v1/seats/allocate".into(),
            json!({"seat_id": free as f64 + 0.5, "learner_id": "l1"}),
        ),
        (
            "POST",
            "/api/v1/seats/allocate".into(),
            json!({"seat_id": free, "learner_id": 123}),
        ),
        (
            "POST",
            "/api/v1/seats/allocate".into(),
            json!({"seat_id": free, "learner_id": null}),
        ),
        (
            "POST",
            "/api/v1/seats/allocate".into(),
            json!({"seat_id": free, "learner_id": true}),
        ),
        (
            "POST",
            "/api/v1/seats/allocate".into(),
            json!({"seat_id": null, "learner_id": "l1"}),
        ),
        (
            "POST",
            "/api/v1/seats/allocate".into(),
            json!({"seat_id": false, "learner_id": "l1"}),
        ),
        (
            "POST",
            "/api/v1/seats/allocate".into(),
            json!({"seat_id": free, "learner_id": ["l1"]}),
        ),
        // reclaim
        ("POST", "/api/v1/seats/reclaim".into(), json!({})),
        ("POST", "/api/v1/seats/reclaim".into(), json!({"reason": "no seat"})),
        (
            "POST",
            "/api/v1/seats/reclaim".into(),
            json!({"seat_id": seat.to_string()}),
        ),
        (
            "POST",
            "/api/v1/seats/reclaim".into(),
            json!({"seat_id": seat as f64 + 0.5}),
        ),
        ("POST", "/api/v1/seats/reclaim".into(), json!({"seat_id": null})),
        ("POST", "/api/v1/seats/reclaim".into(), json!({"seat_id": true})),
        (
            "POST",
            "/api/v1/seats/reclaim".into(),
            json!({"seat_id": seat, "reason": 5}),
        ),
        (
            "POST",
            "/api/v1/seats/reclaim".into(),
            json!({"seat_id": seat, "reason": false}),
        ),
        (
            "POST",
            "/api/v1/seats/reclaim".into(),
            json!({"seat_id": seat, "reason": ["why"]}),
        ),
        // roles
        ("POST", "/api/v1/roles".into(), json!({})),
        (
            "POST",
            "/api/v1/roles".into(),
            json!({"tenant_id": s, "role": "teacher"}),
        ),
        (
            "POST",
            "/api/v1/roles".into(),
            json!({"user_id": "u1", "role": "teacher"}),
        ),
        ("POST", "/api/v1/roles".into(), json!({"user_id": "u1", "tenant_id": s})),
        (
            "POST",
            "/api/v1/roles".into(),
            json!({"user_id": 17, "tenant_id": s, "role": "teacher"}),
        ),
        (
            "POST",
            "/api/v1/roles".into(),
            json!({"user_id": null, "tenant_id": s, "role": "teacher"}),
        ),
        (
            "POST",
            "/api/v1/roles".into(),
            json!({"user_id": "u1", "tenant_id": s.to_string(), "role": "teacher"}),
        ),
        (
            "POST",
            "/api/v1/roles".into(),
            json!({"user_id": "u1", "tenant_id": null, "role": "teacher"}),
        ),
        (
            "POST",
            "/api/v1/roles".into(),
            json!({"user_id": "u1", "tenant_id": 1.5, "role": "teacher"}),
        ),
    ];
    for (method, path, body) in &cases {
        let r = call(&f.app, method, path, body.to_string().as_bytes()).await;
        refused(&r, &[422], &format!("{method} {path} {body}"));
    }
    f.assert_unchanged(&before).await;
}

#[tokio::test]
async fn type_errors_name_the_offending_field() {
    let f = Fixture::new().await;
    let cases = [
        ("/api/v1/seats/purchase", json!({"tenant_id": f.school}), "count"),
        (
            "/api/v1/seats/purchase",
            json!({"tenant_id": f.school, "count": "3"}),
            "count",
        ),
        (
            "/api/v1/seats/purchase",
            json!({"tenant_id": "x", "count": 3}),
            "tenant_id",
        ),
        ("/api/v1/seats/allocate", json!({"seat_id": f.free()}), "learner_id"),
        (
            "/api/v1/seats/allocate",
            json!({"seat_id": f.free(), "learner_id": 1}),
            "learner_id",
        ),
        (
            "/api/v1/seats/reclaim",
            json!({"seat_id": f.assigned(), "reason": 1}),
            "reason",
        ),
        (
            "/api/v1/roles",
            json!({"user_id": "u", "tenant_id": f.school, "role": "root"}),
            "role",
        ),
        ("/api/v1/district", json!({"name": 1}), "name"),
    ];
    for (path, body, field) in cases {
        let r = f.app.post(path, body.clone()).await;
        refused(&r, &[422], &format!("POST {path} {body}"));
        assert!(
            r.detail().contains(field),
            "POST {path} {body}: detail does not name {field}: {}",
            r.body
        );
    }
}

// ---- counts and ids in bodies ---------------------------------------------------

#[tokio::test]
async fn out_of_range_counts_create_no_seats() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    let s = f.school;
    let counts = [
        "0",
        "-1",
        "-0",
        "100001",
        "1000000",
        "4294967296",
        "18446744073709551615",
        "18446744073709551616",
        "99999999999999999999999999999",
        "1e30",
        "1e5",
        "2.5",
        "1.0",
        "-9223372036854775808",
        "\"5\"",
        "true",
        "null",
        "[1]",
        "{}",
    ];
    for count in counts {
        let body = format!("{{\"tenant_id\": {s}, \"count\": {count}}}");
        let r = call(&f.app, "POST", "/api/v1/seats/purchase", body.as_bytes()).await;
        refused(&r, &[422], &format!("purchase {body}"));
        let summary = f.app.summary(s).await;
        assert_eq!(summary["total_seats"], json!(5), "after {body}: {summary}");
    }
    let tenant_ids = ["0", "-1", "18446744073709551616", "1.5", "1e3", "\"1\""];
    for t in tenant_ids {
        let body = format!("{{\"tenant_id\": {t}, \"count\": 1}}");
        let r = call(&f.app, "POST", "/api/v1/seats/purchase", body.as_bytes()).await;
        refused(&r, &[422], &format!("purchase {body}"));
    }
    // A well-formed id that names no tenant.
    for t in [999_999u64, u64::MAX] {
        let r = f
            .app
            .post("/api/v1/seats/purchase", json!({"tenant_id": t, "count": 1}))
            .await;
        refused(&r, &[404], &format!("purchase for tenant {t}"));
        assert_eq!(r.detail(), "Tenant not found");
    }
    f.assert_unchanged(&before).await;
}

#[tokio::test]
async fn out_of_range_seat_ids_in_bodies_are_refused() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    for id in ["0", "-1", "18446744073709551616", "1e30", "2.5", "-0.0"] {
        let body = format!("{{\"seat_id\": {id}, \"learner_id\": \"l_new\"}}");
        let r = call(&f.app, "POST", "/api/v1/seats/allocate", body.as_bytes()).await;
        refused(&r, &[422], &format!("allocate {body}"));
        let body = format!("{{\"seat_id\": {id}}}");
        let r = call(&f.app, "POST", "/api/v1/seats/reclaim", body.as_bytes()).await;
        refused(&r, &[422], &format!("reclaim {body}"));
    }
    for id in [999_999u64, u64::MAX] {
        let r = f.app.allocate(id, "l_new").await;
        refused(&r, &[404], &format!("allocate seat {id}"));
        assert_eq!(r.detail(), "Seat not found");
        let r = f.app.reclaim(id, None).await;
        refused(&r, &[404], &format!("reclaim seat {id}"));
        assert_eq!(r.detail(), "Seat not found");
    }
    f.assert_unchanged(&before).await;
}

// ---- ids in paths and queries -------------------------------------------------------

#[tokio::test]
async fn bad_ids_in_paths_are_4xx_with_detail() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    let bad = [
        "0",
        "-1",
        "99999999999999999999",
        "18446744073709551616",
        "18446744073709551615",
        "abc",
        "1.5",
        "1e3",
        "0x10",
        "%20",
        "%00",
        "%FF",
        "1%2F2",
        "%F0%9F%8F%AB",
        "999999",
    ];
    for id in bad {
        for path in [
            format!("/api/v1/seats/{id}"),
            format!("/api/v1/seats/{id}/audit"),
            format!("/api/v1/tenant/{id}"),
            format!("/api/v1/district/{id}"),
        ] {
            let r = f.app.get(&path).await;
            client_error(&r, &format!("GET {path}"));
        }
        let path = format!("/api/v1/tenant/{id}");
        let r = f.app.put(&path, json!({"name": "Renamed"})).await;
        client_error(&r, &format!("PUT {path}"));
        let path = format!("/api/v1/district/{id}/schools");
        let r = f.app.post(&path, json!({"name": "Orphan"})).await;
        client_error(&r, &format!("POST {path}"));
    }
    // The ones the brief names explicitly, with the statuses a client can rely on.
    for (path, status) in [
        ("/api/v1/seats/0", 422),
        ("/api/v1/seats/-1", 422),
        ("/api/v1/seats/99999999999999999999", 422),
        ("/api/v1/tenant/abc", 422),
        ("/api/v1/district/1.5", 422),
        ("/api/v1/seats/999999", 404),
        ("/api/v1/tenant/999999", 404),
        ("/api/v1/district/999999", 404),
    ] {
        let r = f.app.get(path).await;
        refused(&r, &[status], &format!("GET {path}"));
    }
    // A school is not a district, and a seat id is not a tenant.
    let r = f.app.get(&format!("/api/v1/district/{}", f.school)).await;
    refused(&r, &[404], "GET district of a school");
    assert_eq!(r.detail(), "District not found");
    let r = f
        .app
        .post(
            &format!("/api/v1/district/{}/schools", f.school),
            json!({"name": "Grandchild"}),
        )
        .await;
    refused(&r, &[404], "school under a school");
    assert_eq!(r.detail(), "District not found");
    // Odd user ids in the path are just users without roles.
    for user in ["%FF", "%00", "%20", "a%2Fb", "%F0%9F%8F%AB"] {
        let path = format!("/api/v1/users/{user}/tenants");
        let r = f.app.get(&path).await;
        assert!(
            r.status == 200 || (400..500).contains(&r.status),
            "GET {path}: {} {}",
            r.status,
            r.body
        );
        if r.status == 200 {
            assert_eq!(r.body, json!([]), "GET {path}");
        } else {
            client_error(&r, &format!("GET {path}"));
        }
    }
    f.assert_unchanged(&before).await;
}

#[tokio::test]
async fn bad_tenant_ids_in_queries_are_4xx_with_detail() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    let queries = [
        "?tenantId=abc",
        "",
        "?",
        "?tenantId=",
        "?tenantId",
        "?tenantId=0",
        "?tenantId=-1",
        "?tenantId=1.5",
        "?tenantId=99999999999999999999",
        "?tenantId=%FF",
        "?tenantId=%00",
        "?tenantid=1",
        "?tenant_id=1",
        "?tenantId[]=1",
        "?tenantId=1%202",
        "?%zz=%zz",
        "?tenantId=%",
    ];
    for q in queries {
        for route in ["/api/v1/seats/summary", "/api/v1/roles"] {
            let path = format!("{route}{q}");
            let r = f.app.get(&path).await;
            refused(&r, &[400, 422], &format!("GET {path}"));
        }
    }
    f.assert_unchanged(&before).await;
}

// Regression: the summary route's own refusal must not be replaced by the
// /seats/{id} route's "seat_id must be a positive integer" (fixed in c16b878).
#[tokio::test]
async fn summary_refusals_are_the_summary_routes_own() {
    let f = Fixture::new().await;
    let r = f.app.get("/api/v1/seats/summary?tenantId=999999").await;
    refused(&r, &[404], "summary of an unknown tenant");
    assert_eq!(r.detail(), "Tenant not found");
    for q in ["", "?tenantId=", "?tenantId=abc", "?tenantId=0"] {
        let path = format!("/api/v1/seats/summary{q}");
        let r = f.app.get(&path).await;
        refused(&r, &[422], &format!("GET {path}"));
        assert!(
            r.detail().contains("tenantId"),
            "GET {path}: detail does not name tenantId: {}",
            r.body
        );
    }
}

// ---- names -----------------------------------------------------------------------

#[tokio::test]
async fn invalid_names_are_422_and_create_nothing() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    let names = [
        String::new(),
        " ".into(),
        "     ".into(),
        "\t".into(),
        "\n".into(),
        " \u{3000} ".into(), // ideographic space is whitespace too
        "a".repeat(256),
        "é".repeat(256),
        "🏫".repeat(256),
        "x".repeat(10_000),
        " ".repeat(10_000),
        "bad\u{0}name".into(),
        "line\nbreak".into(),
        "bell\u{7}".into(),
    ];
    for name in &names {
        let what = format!(
            "name {:?} ({} chars)",
            name.chars().take(20).collect::<String>(),
            name.chars().count()
        );
        let r = f.app.post("/api/v1/district", json!({"name": name})).await;
        refused(&r, &[422], &format!("district {what}"));
        let r = f
            .app
            .post(
                &format!("/api/v1/district/{}/schools", f.district),
                json!({"name": name}),
            )
            .await;
        refused(&r, &[422], &format!("school {what}"));
        let r = f
            .app
            .put(&format!("/api/v1/tenant/{}", f.school), json!({"name": name}))
            .await;
        refused(&r, &[422], &format!("rename {what}"));
        let r = f
            .app
            .put(
                &format!("/api/v1/tenant/{}", f.school),
                json!({"name": name, "is_active": false}),
            )
            .await;
        refused(&r, &[422], &format!("rename+deactivate {what}"));
    }
    f.assert_unchanged(&before).await;
}

#[tokio::test]
async fn odd_but_valid_names_are_stored_verbatim() {
    let f = Fixture::new().await;
    let names = [
        "a".to_string(),
        "Ünïcødé Dístrïct".into(),
        "🏫🎒📚 Emoji Academy 👩‍🏫".into(),
        "\"double\" 'single' `back`".into(),
        "back\\slash \\n \\u0000 \\\\".into(),
        "<script>alert('x')</script>".into(),
        "Robert'); DROP TABLE tenants;--".into(),
        "{\"json\": [1, 2]}".into(),
        "  leading and trailing spaces  ".into(),
        "مدرسة الشروق".into(),
        "北京市第一中学".into(),
        "e\u{301}\u{302} combining".into(),
        "zero\u{200b}width".into(),
        "%41%00 percent".into(),
        "a".repeat(255),
        "é".repeat(255),
        "🏫".repeat(255),
        "学".repeat(255),
    ];
    for name in &names {
        let what = format!("{:?}", name.chars().take(30).collect::<String>());
        // As a district.
        let r = f.app.post("/api/v1/district", json!({"name": name})).await;
        assert_eq!(r.status, 201, "district {what}: {}", r.body);
        assert_eq!(r.body["name"].as_str(), Some(name.as_str()), "district {what} in reply");
        let id = r.id();
        let got = f.app.get(&format!("/api/v1/district/{id}")).await;
        assert_eq!(got.status, 200, "{}", got.body);
        assert_eq!(
            got.body["name"].as_str(),
            Some(name.as_str()),
            "district {what} read back"
        );
        let got = f.app.get(&format!("/api/v1/tenant/{id}")).await;
        assert_eq!(
            got.body["name"].as_str(),
            Some(name.as_str()),
            "tenant {what} read back"
        );
        // As a school, listed under its district.
        let r = f
            .app
            .post(&format!("/api/v1/district/{id}/schools"), json!({"name": name}))
            .await;
        assert_eq!(r.status, 201, "school {what}: {}", r.body);
        let school = r.id();
        let got = f.app.get(&format!("/api/v1/district/{id}")).await;
        assert_eq!(
            got.body["children"][0]["name"].as_str(),
            Some(name.as_str()),
            "child {what}"
        );
        assert_eq!(
            f.app.summary(school).await["tenant_name"].as_str(),
            Some(name.as_str()),
            "summary {what}"
        );
        // As a rename.
        let r = f
            .app
            .put(&format!("/api/v1/tenant/{}", f.school), json!({"name": name}))
            .await;
        assert_eq!(r.status, 200, "rename {what}: {}", r.body);
        let got = f.app.get(&format!("/api/v1/tenant/{}", f.school)).await;
        assert_eq!(
            got.body["name"].as_str(),
            Some(name.as_str()),
            "renamed {what} read back"
        );
    }
    assert!(f.app.healthy().await);
}

// ---- learner ids, reasons, roles -----------------------------------------------

#[tokio::test]
async fn bad_learner_ids_are_422_and_the_seat_stays_free() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    let free = f.free();
    let learners = [
        String::new(),
        " ".into(),
        "\t \n".into(),
        "x".repeat(256),
        "é".repeat(256),
        "x".repeat(10_000),
        "bad\u{0}learner".into(),
    ];
    for learner in &learners {
        let r = f.app.allocate(free, learner).await;
        refused(
            &r,
            &[422],
            &format!("learner {:?}", learner.chars().take(20).collect::<String>()),
        );
        let seat = f.app.seat(free).await;
        assert_eq!(
            (seat["state"].as_str(), &seat["learner_id"]),
            (Some("free"), &Value::Null),
            "{seat}"
        );
    }
    // The fixture's learner already holds a seat in this tenant.
    let r = f.app.allocate(free, FIXTURE_LEARNER).await;
    refused(&r, &[400], "second seat for one learner");
    assert_eq!(r.detail(), "Learner already has a seat in this tenant");
    // The seat that is assigned cannot be allocated again.
    let r = f.app.allocate(f.assigned(), "someone_else").await;
    refused(&r, &[400], "allocate an assigned seat");
    assert_eq!(r.detail(), "Seat is not available. Current state: assigned");
    f.assert_unchanged(&before).await;

    // The longest learner id the contract allows still works.
    let long = "é".repeat(255);
    let r = f.app.allocate(free, &long).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["learner_id"].as_str(), Some(long.as_str()));
}

#[tokio::test]
async fn reclaim_reason_over_500_chars_is_422_and_the_seat_stays_assigned() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    let seat = f.assigned();
    for reason in ["r".repeat(501), "é".repeat(501), "🏫".repeat(501), "r".repeat(10_000)] {
        let r = f.app.reclaim(seat, Some(&reason)).await;
        refused(&r, &[422], &format!("reason of {} chars", reason.chars().count()));
        let got = f.app.seat(seat).await;
        assert_eq!(got["state"].as_str(), Some("assigned"), "{got}");
        assert_eq!(got["learner_id"].as_str(), Some(FIXTURE_LEARNER), "{got}");
    }
    // Reclaiming a free seat is refused with the contract's sentence.
    let r = f.app.reclaim(f.free(), None).await;
    refused(&r, &[400], "reclaim a free seat");
    assert_eq!(r.detail(), "Seat is already free");
    f.assert_unchanged(&before).await;

    // Exactly 500 (multi-byte) characters are accepted and recorded verbatim.
    let reason = "é".repeat(500);
    let r = f.app.reclaim(seat, Some(&reason)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["state"].as_str(), Some("free"));
    let audit = f.app.audit(seat).await;
    assert_eq!(audit.last().and_then(|a| a["reason"].as_str()), Some(reason.as_str()));
}

#[tokio::test]
async fn bad_roles_are_refused() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    let s = f.school;
    for role in [
        "superuser",
        "ADMIN",
        "Admin",
        "admin ",
        " admin",
        "",
        "root",
        "learners",
        "teacher\u{0}",
    ] {
        let r = f
            .app
            .post(
                "/api/v1/roles",
                json!({"user_id": "u_new", "tenant_id": s, "role": role}),
            )
            .await;
        refused(&r, &[422], &format!("role {role:?}"));
    }
    for user in [
        String::new(),
        "   ".into(),
        "u".repeat(256),
        "u".repeat(10_000),
        "bad\u{0}user".into(),
    ] {
        let r = f
            .app
            .post(
                "/api/v1/roles",
                json!({"user_id": user, "tenant_id": s, "role": "admin"}),
            )
            .await;
        refused(&r, &[422], &format!("user_id of {} chars", user.chars().count()));
    }
    for t in ["0", "-1", "18446744073709551616", "2.5"] {
        let body = format!("{{\"user_id\": \"u_new\", \"tenant_id\": {t}, \"role\": \"admin\"}}");
        let r = call(&f.app, "POST", "/api/v1/roles", body.as_bytes()).await;
        refused(&r, &[422], &format!("roles {body}"));
    }
    for t in [999_999u64, u64::MAX] {
        let r = f
            .app
            .post(
                "/api/v1/roles",
                json!({"user_id": "u_new", "tenant_id": t, "role": "admin"}),
            )
            .await;
        refused(&r, &[404], &format!("role for tenant {t}"));
        assert_eq!(r.detail(), "Tenant not found");
    }
    // One active role per user per tenant.
    let r = f
        .app
        .post(
            "/api/v1/roles",
            json!({"user_id": FIXTURE_USER, "tenant_id": s, "role": "admin"}),
        )
        .await;
    refused(&r, &[400], "second role");
    assert_eq!(r.detail(), "User already has an active role in this tenant");
    f.assert_unchanged(&before).await;
}

#[tokio::test]

async fn role_of_the_wrong_json_type_is_422() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    let mut wrong = Vec::new();
    for role in [
        Value::Null,
        json!(1),
        json!(true),
        json!(["teacher"]),
        json!({"teacher": null}),
        json!(2.5),
    ] {
        let body = json!({"user_id": "u_new", "tenant_id": f.school, "role": role});
        let r = f.app.post("/api/v1/roles", body.clone()).await;
        if r.status != 422 {
            wrong.push(format!("POST /api/v1/roles {body}: {} {}", r.status, r.body));
        } else {
            refused(&r, &[422], &format!("role {role}"));
        }
    }
    assert!(wrong.is_empty(), "not 422:\n{}", wrong.join("\n"));
    f.assert_unchanged(&before).await;
}

// ---- identity ---------------------------------------------------------------------

/// Every /api/v1 route but health: (method, path template, body).
fn identified_routes(f: &Fixture) -> Vec<(&'static str, String, Option<Value>)> {
    let mut routes: Vec<(&'static str, String, Option<Value>)> = vec![
        ("GET", f.fill("/api/v1/district/{d}"), None),
        ("GET", f.fill("/api/v1/tenant/{s}"), None),
        ("GET", f.fill("/api/v1/seats/summary?tenantId={s}"), None),
        ("GET", f.fill("/api/v1/seats/{seat}"), None),
        ("GET", f.fill("/api/v1/seats/{seat}/audit"), None),
        ("GET", f.fill("/api/v1/roles?tenantId={s}"), None),
        ("GET", format!("/api/v1/users/{FIXTURE_USER}/tenants"), None),
        // Bad ids and bad queries: identity is checked first, whatever else is wrong.
        ("GET", "/api/v1/seats/abc".into(), None),
        ("GET", "/api/v1/seats/summary".into(), None),
        ("GET", "/api/v1/district/0".into(), None),
    ];
    for (method, template) in BODY_ROUTES {
        routes.push((method, f.fill(template), Some(f.valid_body(template))));
    }
    // A bad body is not looked at before the identity.
    routes.push(("POST", "/api/v1/district".into(), Some(json!({"name": ""}))));
    routes.push(("POST", "/api/v1/seats/purchase".into(), Some(json!([1]))));
    routes
}

#[tokio::test]
async fn missing_or_blank_identity_is_401_on_every_api_route() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    for (method, path, body) in identified_routes(&f) {
        let body = body.map(|b| b.to_string().into_bytes());
        for user in [None, Some(""), Some("   "), Some("\t")] {
            let r = request(&f.app, method, &path, user, body.clone()).await;
            refused(&r, &[401], &format!("{method} {path} with X-User-ID {user:?}"));
        }
    }
    f.assert_unchanged(&before).await;
}

#[tokio::test]
async fn health_routes_need_no_identity() {
    let app = TestApp::spawn().await;
    for (path, expected) in [
        ("/", None),
        ("/health", Some(json!({"status": "healthy"}))),
        ("/api/v1/health", Some(json!({"message": "Tenant service is healthy"}))),
    ] {
        for user in [None, Some(""), Some(ADMIN)] {
            let r = request(&app, "GET", path, user, None).await;
            assert_eq!(r.status, 200, "GET {path} with {user:?}: {}", r.body);
            if let Some(expected) = &expected {
                assert_eq!(&r.body, expected, "GET {path}");
            } else {
                assert_eq!(r.body["service"], json!("tenant-svc"));
                assert_eq!(r.body["status"], json!("running"));
            }
        }
    }
}

#[tokio::test]

async fn non_ascii_identity_header_is_401() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    let mut wrong = Vec::new();
    for (method, path, body) in identified_routes(&f) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let value = reqwest::header::HeaderValue::from_bytes(b"caf\xe9").unwrap_or_else(|e| panic!("{e}"));
        let mut req = f
            .app
            .client
            .request(method.clone(), f.app.url(&path))
            .header("X-User-ID", value);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let r = f.app.send(req).await;
        if r.status != 401 {
            wrong.push(format!("{method} {path}: {} {}", r.status, r.body));
        } else {
            refused(&r, &[401], &format!("{method} {path} with a non-ASCII X-User-ID"));
        }
    }
    f.assert_unchanged(&before).await;
    assert!(
        wrong.is_empty(),
        "not 401 with a non-ASCII X-User-ID:\n{}",
        wrong.join("\n")
    );
}

// ---- routes and methods -------------------------------------------------------

#[tokio::test]
async fn unknown_routes_are_404_with_error_body() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    let paths = [
        "/nope",
        "/api",
        "/api/v1",
        "/api/v2/health",
        "/api/v1/districts",
        "/api/v1/district/1/schools/2",
        "/api/v1/tenants/1",
        "/api/v1/seats/1/audit/2",
        "/api/v1/seats/1/2/3",
        "/api/v1/users",
        "/api/v1/users/u1",
        "/api/v1/roles/1",
        "/API/V1/HEALTH",
        "/healthz",
        "/%FF",
        "/api/v1/%00",
    ];
    for path in paths {
        for user in [Some(ADMIN), None] {
            let r = request(&f.app, "GET", path, user, None).await;
            refused(&r, &[404], &format!("GET {path} ({user:?})"));
        }
        let r = call(&f.app, "POST", path, b"{}").await;
        refused(&r, &[404], &format!("POST {path}"));
    }
    f.assert_unchanged(&before).await;
}

#[tokio::test]
async fn wrong_methods_are_405_where_the_route_exists() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    let cases = [
        ("DELETE", f.fill("/api/v1/district/{d}")),
        ("PUT", f.fill("/api/v1/district/{d}")),
        ("PATCH", f.fill("/api/v1/district/{d}")),
        ("GET", "/api/v1/district".to_string()),
        ("PUT", "/api/v1/district".to_string()),
        ("DELETE", "/api/v1/district".to_string()),
        ("GET", f.fill("/api/v1/district/{d}/schools")),
        ("DELETE", f.fill("/api/v1/tenant/{s}")),
        ("POST", f.fill("/api/v1/tenant/{s}")),
        ("PATCH", f.fill("/api/v1/tenant/{s}")),
        ("DELETE", f.fill("/api/v1/seats/{seat}")),
        ("PUT", f.fill("/api/v1/seats/{seat}")),
        ("POST", f.fill("/api/v1/seats/{seat}/audit")),
        ("DELETE", "/api/v1/roles".to_string()),
        ("PUT", "/api/v1/roles".to_string()),
        ("POST", format!("/api/v1/users/{FIXTURE_USER}/tenants")),
        ("POST", "/api/v1/health".to_string()),
        ("DELETE", "/health".to_string()),
        ("POST", "/".to_string()),
        ("OPTIONS", "/api/v1/roles".to_string()),
    ];
    for (method, path) in &cases {
        let r = call(&f.app, method, path, b"{}").await;
        refused(&r, &[405], &format!("{method} {path}"));
    }
    // GET on the POST-only seat routes matches /seats/{id} (the word is not an
    // id): any refusal will do.
    for word in ["purchase", "allocate", "reclaim"] {
        for method in ["GET", "PUT", "DELETE"] {
            let path = format!("/api/v1/seats/{word}");
            let r = call(&f.app, method, &path, b"{}").await;
            client_error(&r, &format!("{method} {path}"));
        }
    }
    f.assert_unchanged(&before).await;
}

// ---- body size ----------------------------------------------------------------------

const BIG: usize = 1024 * 1024;

/// About 1 MB of valid JSON for a route.
fn big_body(f: &Fixture, template: &str) -> Vec<u8> {
    let mut body = f.valid_body(template);
    if let Some(obj) = body.as_object_mut() {
        obj.insert("padding".into(), json!("p".repeat(BIG)));
    }
    body.to_string().into_bytes()
}

#[tokio::test]
async fn oversized_body_is_413_on_post_district() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    let huge_name = json!({"name": "n".repeat(BIG)}).to_string().into_bytes();
    let r = call(&f.app, "POST", "/api/v1/district", &huge_name).await;
    refused(&r, &[413], "POST /api/v1/district with a 1 MB name");
    let r = call(&f.app, "POST", "/api/v1/district", &big_body(&f, "/api/v1/district")).await;
    refused(&r, &[413], "POST /api/v1/district with 1 MB of padding");
    let path = f.fill("/api/v1/district/{d}/schools");
    let r = call(&f.app, "POST", &path, &big_body(&f, "/api/v1/district/{d}/schools")).await;
    refused(&r, &[413], &format!("POST {path} with 1 MB"));
    // Just over the limit, and not JSON at all: the size is refused first.
    let r = call(&f.app, "POST", "/api/v1/district", &vec![b'{'; 65_537]).await;
    refused(&r, &[413], "POST /api/v1/district with 65537 bytes");
    // Just under the limit is read (and refused for what it says, not its size).
    let mut under = b"{\"name\": \"".to_vec();
    under.resize(65_000, b'a');
    under.extend_from_slice(b"\"}");
    let r = call(&f.app, "POST", "/api/v1/district", &under).await;
    refused(&r, &[422], "POST /api/v1/district with a 65 kB name");
    f.assert_unchanged(&before).await;
}

#[tokio::test]

async fn oversized_body_is_413_on_every_body_route() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    let mut wrong = Vec::new();
    for (method, template) in BODY_ROUTES {
        let path = f.fill(template);
        let r = call(&f.app, method, &path, &big_body(&f, template)).await;
        if r.status != 413 {
            wrong.push(format!("{method} {path}: {} {}", r.status, r.body));
        } else {
            refused(&r, &[413], &format!("{method} {path} with 1 MB"));
        }
    }
    f.assert_unchanged(&before).await;
    assert!(wrong.is_empty(), "not 413 for a 1 MB body:\n{}", wrong.join("\n"));
}

// ---- fuzz -------------------------------------------------------------------------

/// Values of every JSON type, odd ones included, for swapping into fields.
fn odd_value(rng: &mut Rng) -> Value {
    match rng.index(16) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(false),
        3 => json!(0),
        4 => json!(-1),
        5 => json!(2.5),
        6 => json!(1e30),
        7 => json!(u64::MAX),
        8 => json!(""),
        9 => json!("   "),
        10 => json!("x".repeat(rng.index(600))),
        11 => json!([1, "two", null]),
        12 => json!({"nested": {"deeper": [1]}}),
        13 => json!(rng.index(20) + 1),
        14 => json!("admin"),
        _ => json!((rng.index(1000) as f64) / 7.0),
    }
}

/// Fragments that break JSON in interesting ways.
const PIECES: &[&[u8]] = &[
    b"\\u0000",
    b"\"",
    b"{",
    b"}",
    b"[",
    b",",
    b":",
    b"\xf0\x9f",
    b"-",
    b"e9",
];

/// A mutated JSON body: structural changes first, then byte damage.
fn mutate_body(rng: &mut Rng, valid: &Value) -> Vec<u8> {
    let mut value = valid.clone();
    if let Some(obj) = value.as_object_mut() {
        let keys: Vec<String> = obj.keys().cloned().collect();
        match rng.index(6) {
            0 if !keys.is_empty() => {
                let key = rng.pick(&keys).clone();
                obj.insert(key, odd_value(rng));
            }
            1 if !keys.is_empty() => {
                let key = rng.pick(&keys).clone();
                obj.remove(&key);
            }
            2 => {
                obj.insert("unexpected".into(), odd_value(rng));
            }
            3 => value = odd_value(rng),
            _ => {}
        }
    }
    let mut bytes = value.to_string().into_bytes();
    let damage = match rng.index(4) {
        0 => 0,
        1 => 1,
        2 => 2,
        _ => 1 + rng.index(8),
    };
    for _ in 0..damage {
        if bytes.is_empty() {
            bytes.push(b'{');
        }
        let at = rng.index(bytes.len());
        match rng.index(7) {
            0 => {
                bytes.remove(at);
            }
            1 => {
                let b = bytes[at];
                bytes.insert(at, b);
            }
            2 => bytes[at] ^= 1 << rng.index(8),
            3 => bytes.insert(at, (rng.next() & 0xff) as u8),
            4 => bytes.truncate(at),
            5 => {
                let piece = *rng.pick(PIECES);
                for (i, b) in piece.iter().enumerate() {
                    bytes.insert(at + i, *b);
                }
            }
            _ => {
                // Duplicate a key by appending a second copy of the object's text.
                let text = valid.to_string();
                if let Some(inner) = text.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                    if !inner.is_empty() {
                        let dup = format!("{{{inner},{inner}}}");
                        bytes = dup.into_bytes();
                    }
                }
            }
        }
    }
    bytes
}

/// A path with its id segments possibly replaced by junk.
fn mutate_path(rng: &mut Rng, path: &str) -> String {
    let junk = [
        "0",
        "-1",
        "abc",
        "1.5",
        "99999999999999999999",
        "18446744073709551615",
        "%00",
        "%FF",
        "%20",
        "",
        "🏫",
        "..",
        "1e3",
        "+1",
    ];
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (path.to_string(), None),
    };
    let mut segments: Vec<String> = path.split('/').map(str::to_string).collect();
    match rng.index(5) {
        0 => {
            let numeric: Vec<usize> = (0..segments.len())
                .filter(|&i| segments[i].chars().all(|c| c.is_ascii_digit()) && !segments[i].is_empty())
                .collect();
            if !numeric.is_empty() {
                let i = *rng.pick(&numeric);
                segments[i] = rng.pick(&junk).to_string();
            }
        }
        1 => segments.push(rng.pick(&junk).to_string()),
        2 if segments.len() > 2 => {
            segments.pop();
        }
        _ => {}
    }
    let mut out = segments.join("/");
    if out.is_empty() {
        out.push('/');
    }
    if let Some(q) = query {
        out.push('?');
        out.push_str(&match rng.index(4) {
            0 => format!("tenantId={}", rng.pick(&junk)),
            1 => String::new(),
            _ => q,
        });
    }
    out
}

#[tokio::test]
async fn fuzzed_requests_never_5xx_and_counters_stay_exact() {
    let f = Fixture::new().await;
    let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
    let body_routes: Vec<(&str, &str)> = BODY_ROUTES.to_vec();
    let get_routes = [
        "/api/v1/district/{d}",
        "/api/v1/tenant/{s}",
        "/api/v1/seats/summary?tenantId={s}",
        "/api/v1/seats/{seat}",
        "/api/v1/seats/{free}/audit",
        "/api/v1/roles?tenantId={s}",
        "/api/v1/users/{s}/tenants",
        "/api/v1/health",
        "/health",
        "/",
    ];
    let methods = ["GET", "POST", "PUT", "DELETE", "PATCH"];
    // Seats per tenant, learned from every purchase that went through.
    let mut seats: std::collections::BTreeMap<u64, Vec<u64>> = std::collections::BTreeMap::new();
    seats.insert(f.school, f.seats.clone());
    seats.insert(f.district, Vec::new());
    let mut statuses: std::collections::BTreeMap<u16, usize> = std::collections::BTreeMap::new();

    for i in 0..500 {
        let (mut method, path, body) = if rng.chance(3) {
            (*rng.pick(&methods), f.fill(rng.pick::<&str>(&get_routes)), None)
        } else {
            let (method, template) = *rng.pick(&body_routes);
            let valid = f.valid_body(template);
            (method, f.fill(template), Some(mutate_body(&mut rng, &valid)))
        };
        let path = if rng.chance(2) {
            mutate_path(&mut rng, &path)
        } else {
            path
        };
        if rng.chance(10) {
            method = *rng.pick(&methods);
        }
        let user = match rng.index(20) {
            0 => None,
            1 => Some(""),
            _ => Some(ADMIN),
        };
        let shown = body
            .as_ref()
            .map(|b| String::from_utf8_lossy(b).chars().take(200).collect::<String>());
        let r = request(&f.app, method, &path, user, body).await;
        *statuses.entry(r.status).or_default() += 1;
        assert!(
            r.status < 500,
            "#{i} {method} {path} {shown:?} (user {user:?}): {} {}",
            r.status,
            r.body
        );
        if r.status >= 400 {
            refused(&r, &[r.status], &format!("#{i} {method} {path} {shown:?}"));
        }
        if r.status == 201 && r.body.is_array() {
            // A purchase went through (whatever the path looked like).
            for seat in r.body.as_array().into_iter().flatten() {
                let (Some(id), Some(tenant)) = (seat["id"].as_u64(), seat["tenant_id"].as_u64()) else {
                    panic!("#{i}: odd seat {seat}");
                };
                seats.entry(tenant).or_default().push(id);
            }
        }
        if i % 100 == 99 {
            assert!(f.app.healthy().await, "unhealthy after request #{i}");
        }
    }
    assert!(f.app.healthy().await, "unhealthy after the fuzz");
    eprintln!("fuzz statuses: {statuses:?}");

    // Counters equal a count of the seats, for every tenant that has seats.
    let mut last_seat = 0;
    for (tenant, ids) in &seats {
        let summary = f.app.summary(*tenant).await;
        let (free, reserved, assigned) = f.app.count_seats(ids).await;
        assert_eq!(
            summary["total_seats"].as_u64(),
            Some(ids.len() as u64),
            "tenant {tenant}: {summary}"
        );
        assert_eq!(
            (
                summary["free_seats"].as_u64(),
                summary["reserved_seats"].as_u64(),
                summary["assigned_seats"].as_u64()
            ),
            (Some(free), Some(reserved), Some(assigned)),
            "tenant {tenant}: {summary}"
        );
        last_seat = last_seat.max(ids.iter().copied().max().unwrap_or(0));
    }
    // No seat exists that a purchase reply did not report.
    let r = f.app.get(&format!("/api/v1/seats/{}", last_seat + 1)).await;
    assert_eq!(r.status, 404, "{}", r.body);
}
