//! The API document against the service itself: real answers to real
//! requests (successes and refusals, most routes) are checked against the
//! schema the document gives for that route and status, and may hold no
//! field the schema does not name. `GET /openapi.json` and `/docs` are
//! served without identity, and the docs page loads nothing from elsewhere.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{json, Value};

use super::helpers::{TestApp, ADMIN};

/// The service with roles enforced and `ADMIN` its platform admin, and the
/// document it serves.
struct Checked {
    app: TestApp,
    doc: Value,
    /// Route template, method and status of every answer checked.
    seen: BTreeSet<(String, String, u16)>,
}

impl Checked {
    async fn start() -> Checked {
        let app = TestApp::spawn_with(|s| {
            s.auth.enforce_roles = true;
            s.auth.platform_admins = vec![ADMIN.to_owned()];
        })
        .await;
        let res = app
            .client
            .get(app.url("/openapi.json"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(res.status(), 200, "the document needs no identity");
        let doc: Value = res.json().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(doc["openapi"], "3.1.0");
        Checked {
            app,
            doc,
            seen: BTreeSet::new(),
        }
    }

    /// Sends a request as `caller` to `path` (route `template`), checks the
    /// answer against the document, and returns its status and body.
    async fn call(
        &mut self,
        method: Method,
        template: &str,
        path: &str,
        caller: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.app.client.request(method.clone(), self.app.url(path));
        if let Some(user) = caller {
            req = req.header("X-User-ID", user);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        self.check(method, template, path, req).await
    }

    /// Sends `req` (to `path`, route `template`) and checks the answer
    /// against the document; its status and body.
    async fn check(
        &mut self,
        method: Method,
        template: &str,
        path: &str,
        req: reqwest::RequestBuilder,
    ) -> (u16, Value) {
        let res = req.send().await.unwrap_or_else(|e| panic!("{e}"));
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = res.text().await.unwrap_or_else(|e| panic!("{e}"));
        let op = &self.doc["paths"][template][method.as_str().to_ascii_lowercase()];
        assert!(op.is_object(), "{method} {template} is not in the document");
        let answer = &op["responses"][status.to_string()];
        assert!(
            answer.is_object(),
            "{method} {path}: status {status} is not documented for {template}: {text}"
        );
        let (documented_type, media) = answer["content"]
            .as_object()
            .and_then(|c| c.iter().next())
            .unwrap_or_else(|| panic!("{method} {template} {status}: no content documented"));
        let essence = |t: &str| t.split(';').next().unwrap_or_default().trim().to_owned();
        assert_eq!(
            essence(&content_type),
            essence(documented_type),
            "{method} {path} {status}"
        );
        let body = if documented_type == "application/json" {
            let body: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"));
            self.conforms(&media["schema"], &body, &format!("{method} {path} {status}"));
            body
        } else {
            Value::String(text)
        };
        self.seen
            .insert((template.to_owned(), method.as_str().to_owned(), status));
        (status, body)
    }

    async fn get(&mut self, template: &str, path: &str, caller: &str) -> (u16, Value) {
        self.call(Method::GET, template, path, Some(caller), None).await
    }

    async fn post(&mut self, template: &str, path: &str, caller: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, template, path, Some(caller), Some(body)).await
    }

    async fn put(&mut self, template: &str, path: &str, caller: &str, body: Value) -> (u16, Value) {
        self.call(Method::PUT, template, path, Some(caller), Some(body)).await
    }

    /// `value` is valid against `schema` (a JSON Schema 2020-12 validator,
    /// references resolved in the document) and holds no undocumented field.
    fn conforms(&self, schema: &Value, value: &Value, what: &str) {
        let mut root = schema.clone();
        if let Some(obj) = root.as_object_mut() {
            obj.insert("components".into(), self.doc["components"].clone());
        }
        let validator = jsonschema::draft202012::new(&root).unwrap_or_else(|e| panic!("{what}: schema: {e}"));
        let errors: Vec<String> = validator.iter_errors(value).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{what}: {errors:?} in {value}");
        let mut extra = Vec::new();
        undocumented(&self.doc, schema, value, "", &mut extra);
        assert!(
            extra.is_empty(),
            "{what}: fields the document does not name: {extra:?} in {value}"
        );
    }
}

/// Follows `$ref`s into the document.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(target) => resolve(doc, doc.pointer(target.trim_start_matches('#')).unwrap_or(&Value::Null)),
        None => schema,
    }
}

/// The properties an object schema names, through `allOf` and `$ref`.
fn properties<'a>(doc: &'a Value, schema: &'a Value, out: &mut Vec<(&'a str, &'a Value)>) {
    for (name, s) in schema["properties"].as_object().into_iter().flatten() {
        out.push((name, s));
    }
    for part in schema["allOf"].as_array().into_iter().flatten() {
        properties(doc, part, out);
    }
    if schema["$ref"].is_string() {
        properties(doc, resolve(doc, schema), out);
    }
}

/// Collects the paths of fields in `value` that `schema` does not name.
fn undocumented(doc: &Value, schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
    let own = schema;
    let schema = resolve(doc, schema);
    if let Some(branches) = schema["oneOf"].as_array() {
        let kind = |s: &Value| resolve(doc, s)["type"].clone();
        for branch in branches {
            let fits = match value {
                Value::Null => kind(branch) == "null",
                Value::Array(_) => kind(branch) == "array",
                Value::Object(_) => kind(branch) == "object" || resolve(doc, branch)["allOf"].is_array(),
                _ => kind(branch) != "null",
            };
            if fits {
                undocumented(doc, branch, value, at, out);
            }
        }
        return;
    }
    match value {
        Value::Object(fields) if !schema["additionalProperties"].is_object() => {
            let mut named = Vec::new();
            properties(doc, own, &mut named);
            for (key, field) in fields {
                match named.iter().find(|(n, _)| n == key) {
                    Some((_, s)) => undocumented(doc, s, field, &format!("{at}.{key}"), out),
                    None => out.push(format!("{at}.{key}")),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                undocumented(doc, &schema["items"], item, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn real_answers_match_the_documents_schemas() {
    let mut t = Checked::start().await;
    let a = ADMIN;
    for (template, path) in [("/", "/"), ("/health", "/health"), ("/api/v1/health", "/api/v1/health")] {
        assert_eq!(t.call(Method::GET, template, path, None, None).await.0, 200);
    }
    let (_, metrics) = t.call(Method::GET, "/metrics", "/metrics", None, None).await;
    assert!(metrics.as_str().is_some_and(|m| m.contains("# TYPE")));

    // Districts, schools, roles.
    let (status, district) = t
        .post("/api/v1/district", "/api/v1/district", a, json!({"name": "North"}))
        .await;
    assert_eq!(status, 201);
    let d = district["id"].as_u64().unwrap_or_default();
    let (status, _) = t
        .post("/api/v1/district", "/api/v1/district", "eve", json!({"name": "Eve's"}))
        .await;
    assert_eq!(status, 403);
    let schools = format!("/api/v1/district/{d}/schools");
    let (status, school) = t
        .post("/api/v1/district/{id}/schools", &schools, a, json!({"name": "Elm"}))
        .await;
    assert_eq!(status, 201);
    let s = school["id"].as_u64().unwrap_or_default();
    let (_, other) = t
        .post("/api/v1/district/{id}/schools", &schools, a, json!({"name": "Oak"}))
        .await;
    let s2 = other["id"].as_u64().unwrap_or_default();
    let grant = |user: &str, tenant: u64, role: &str| json!({"user_id": user, "tenant_id": tenant, "role": role});
    assert_eq!(
        t.post("/api/v1/roles", "/api/v1/roles", a, grant("dana", d, "admin"))
            .await
            .0,
        201
    );
    assert_eq!(
        t.post("/api/v1/roles", "/api/v1/roles", a, grant("dana", d, "admin"))
            .await
            .0,
        400
    );
    let (status, sam) = t
        .post("/api/v1/roles", "/api/v1/roles", a, grant("sam", s, "manager"))
        .await;
    assert_eq!(status, 201);
    let sam_role = sam["id"].as_u64().unwrap_or_default();
    assert_eq!(
        t.post("/api/v1/roles", "/api/v1/roles", a, grant("sam", s, "boss"))
            .await
            .0,
        422
    );

    // Seats.
    let purchase = "/api/v1/seats/purchase";
    let (status, seats) = t.post(purchase, purchase, a, json!({"tenant_id": s, "count": 3})).await;
    assert_eq!(status, 201);
    let seat = seats[0]["id"].as_u64().unwrap_or_default();
    assert_eq!(
        t.post(purchase, purchase, a, json!({"tenant_id": s, "count": 0}))
            .await
            .0,
        422
    );
    assert_eq!(
        t.post(purchase, purchase, "sam", json!({"tenant_id": s, "count": 1}))
            .await
            .0,
        403
    );
    assert_eq!(
        t.post(purchase, purchase, "eve", json!({"tenant_id": s, "count": 1}))
            .await
            .0,
        404
    );
    let allocate = "/api/v1/seats/allocate";
    let (status, _) = t
        .post(allocate, allocate, "sam", json!({"seat_id": seat, "learner_id": "l1"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        t.post(allocate, allocate, a, json!({"seat_id": seat, "learner_id": "l9"}))
            .await
            .0,
        400
    );
    assert_eq!(
        t.post(allocate, allocate, a, json!({"seat_id": 999, "learner_id": "l9"}))
            .await
            .0,
        404
    );
    // A roster package (a ZIP body) for a district, run dry: its report.
    let roster = "/api/v1/district/{id}/roster";
    let package = super::oneroster::Roster::bulk("org-d", "District")
        .school("org-s1", "School One")
        .student("stu-1", "org-s1")
        .zip();
    let roster_path = format!("/api/v1/district/{d}/roster?dry_run=true");
    let req = t
        .app
        .client
        .post(t.app.url(&roster_path))
        .header("X-User-ID", ADMIN)
        .header("content-type", "application/zip")
        .body(package);
    let (status, report) = t.check(Method::POST, roster, &roster_path, req).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["dry_run"], true);
    let malformed = t.app.post_raw(allocate, "{\"seat_id\": ").await;
    assert_eq!(malformed.status, 400);
    let assign = "/api/v1/seats/assign";
    assert_eq!(
        t.post(assign, assign, a, json!({"tenant_id": s, "learner_id": "l2"}))
            .await
            .0,
        201
    );
    assert_eq!(
        t.post(assign, assign, a, json!({"tenant_id": s, "learner_id": "l2"}))
            .await
            .0,
        200
    );
    let reclaim = "/api/v1/seats/reclaim";
    assert_eq!(t.post(reclaim, reclaim, a, json!({"seat_id": seat})).await.0, 200);
    assert_eq!(t.post(reclaim, reclaim, a, json!({"seat_id": seat})).await.0, 400);
    let bulk = "/api/v1/seats/assign/bulk";
    let (status, report) = t
        .post(
            bulk,
            bulk,
            a,
            json!({"tenant_id": s, "learner_ids": ["l3", "l3", " ", "l4", "l5"]}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(report["totals"]["no_free_seat"].as_u64() > Some(0), "{report}");
    let bulk = "/api/v1/seats/reclaim/bulk";
    let body = json!({"tenant_id": s, "learner_ids": ["l3", "nobody"], "reason": "moved"});
    assert_eq!(t.post(bulk, bulk, a, body).await.0, 200);
    let body = json!({"tenant_id": s, "seat_ids": [seat], "learner_ids": ["l3"]});
    assert_eq!(t.post(bulk, bulk, a, body).await.0, 422);
    let full = json!({"tenant_id": s2, "learner_id": "l6"});
    assert_eq!(t.post(assign, assign, a, full).await.0, 409);

    // Reservations, transfers, terms.
    let term = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let (status, termed) = t
        .post(
            purchase,
            purchase,
            a,
            json!({"tenant_id": d, "count": 3, "expires_at": term}),
        )
        .await;
    assert_eq!(status, 201);
    let termed_seat = termed[0]["id"].as_u64().unwrap_or_default();
    let reserve = "/api/v1/seats/reserve";
    let (status, held) = t
        .post(
            reserve,
            reserve,
            a,
            json!({"tenant_id": d, "learner_id": "r1", "ttl_seconds": 60}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(
        t.post(reserve, reserve, a, json!({"tenant_id": d, "ttl_seconds": 0}))
            .await
            .0,
        422
    );
    let release = "/api/v1/seats/release";
    let held = held["id"].as_u64().unwrap_or_default();
    assert_eq!(t.post(release, release, a, json!({"seat_id": held})).await.0, 200);
    assert_eq!(t.post(release, release, a, json!({"seat_id": held})).await.0, 409);
    let transfer = "/api/v1/seats/transfer";
    let (status, moved) = t
        .post(
            transfer,
            transfer,
            a,
            json!({"from_tenant_id": d, "to_tenant_id": s2, "seat_ids": [termed_seat, 999]}),
        )
        .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(
        t.post(
            transfer,
            transfer,
            a,
            json!({"from_tenant_id": d, "to_tenant_id": s2, "count": 99})
        )
        .await
        .0,
        409
    );
    assert_eq!(
        t.post(
            transfer,
            transfer,
            "sam",
            json!({"from_tenant_id": s, "to_tenant_id": s2, "count": 1})
        )
        .await
        .0,
        403
    );
    let renew = "/api/v1/seats/renew";
    let later = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let (status, _) = t
        .post(
            renew,
            renew,
            a,
            json!({"tenant_id": s2, "seat_ids": [termed_seat], "expires_at": later}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        t.post(renew, renew, a, json!({"tenant_id": d, "expires_at": later}))
            .await
            .0,
        422
    );

    // Reads.
    for (template, path, caller) in [
        (
            "/api/v1/seats/summary",
            format!("/api/v1/seats/summary?tenantId={s}"),
            a,
        ),
        (
            "/api/v1/seats/stats",
            format!("/api/v1/seats/stats?tenantId={d}&window=15m"),
            a,
        ),
        (
            "/api/v1/seats/history",
            format!("/api/v1/seats/history?tenantId={s}&days=2"),
            a,
        ),
        ("/api/v1/seats/{id}", format!("/api/v1/seats/{seat}"), a),
        ("/api/v1/seats/{id}/audit", format!("/api/v1/seats/{seat}/audit"), a),
        ("/api/v1/seats", format!("/api/v1/seats?tenantId={d}&limit=2"), a),
        (
            "/api/v1/seats",
            format!("/api/v1/seats?tenantId={s}&state=assigned"),
            "sam",
        ),
        (
            "/api/v1/learners/{learner_id}/seats",
            "/api/v1/learners/l2/seats".into(),
            a,
        ),
        ("/api/v1/districts", "/api/v1/districts?limit=1".into(), "dana"),
        ("/api/v1/district/{id}", format!("/api/v1/district/{d}"), a),
        (
            "/api/v1/district/{id}/summary",
            format!("/api/v1/district/{d}/summary"),
            a,
        ),
        ("/api/v1/tenant/{id}", format!("/api/v1/tenant/{s}"), "sam"),
        ("/api/v1/roles", format!("/api/v1/roles?tenantId={s}"), a),
        ("/api/v1/roles", format!("/api/v1/roles?tenantId={s}&limit=1"), a),
        ("/api/v1/roles/events", format!("/api/v1/roles/events?tenantId={d}"), a),
        (
            "/api/v1/roles/events",
            format!("/api/v1/roles/events?tenantId={d}&limit=1"),
            a,
        ),
        ("/api/v1/users/{id}/tenants", "/api/v1/users/sam/tenants".into(), "sam"),
        ("/api/v1/me", "/api/v1/me".into(), "sam"),
        ("/api/v1/me", "/api/v1/me".into(), a),
        (
            "/api/v1/audit",
            format!("/api/v1/audit?tenantId={s}&limit=3&order=desc"),
            a,
        ),
        ("/api/v1/audit/verify", format!("/api/v1/audit/verify?tenantId={s}"), a),
    ] {
        assert_eq!(t.get(template, &path, caller).await.0, 200, "{path}");
    }
    let (status, csv) = t
        .get("/api/v1/seats/export", &format!("/api/v1/seats/export?tenantId={s}"), a)
        .await;
    assert_eq!(status, 200);
    assert!(csv.as_str().is_some_and(|c| c.starts_with("seat_id,")), "{csv}");
    for (template, path, caller, refused) in [
        (
            "/api/v1/seats/summary",
            "/api/v1/seats/summary?tenantId=abc".to_owned(),
            a,
            422,
        ),
        (
            "/api/v1/seats/summary",
            "/api/v1/seats/summary?tenantId=999".into(),
            a,
            404,
        ),
        (
            "/api/v1/seats/stats",
            format!("/api/v1/seats/stats?tenantId={s}&window=2d"),
            a,
            422,
        ),
        ("/api/v1/tenant/{id}", format!("/api/v1/tenant/{s}"), "eve", 404),
        ("/api/v1/district/{id}", "/api/v1/district/999".into(), a, 404),
        (
            "/api/v1/seats/{id}/audit",
            format!("/api/v1/seats/{seat}/audit"),
            "eve",
            404,
        ),
        (
            "/api/v1/roles/events",
            format!("/api/v1/roles/events?tenantId={s}"),
            "sam",
            403,
        ),
        (
            "/api/v1/audit",
            "/api/v1/audit?cursor=garbage&tenantId=1".into(),
            a,
            422,
        ),
        (
            "/api/v1/seats",
            format!("/api/v1/seats?tenantId={s}&state=taken"),
            a,
            422,
        ),
    ] {
        assert_eq!(t.get(template, &path, caller).await.0, refused, "{path}");
    }
    assert_eq!(t.call(Method::GET, "/api/v1/me", "/api/v1/me", None, None).await.0, 401);

    // Tenant updates, thresholds, alerts, deactivation.
    let tenant = format!("/api/v1/tenant/{s}");
    let threshold = format!("/api/v1/tenant/{s}/alert-threshold");
    let (status, _) = t
        .put(
            "/api/v1/tenant/{id}/alert-threshold",
            &threshold,
            a,
            json!({"percent": 90}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        t.put(
            "/api/v1/tenant/{id}/alert-threshold",
            &threshold,
            a,
            json!({"percent": 0})
        )
        .await
        .0,
        422
    );
    assert_eq!(
        t.post(assign, assign, a, json!({"tenant_id": s, "learner_id": "l7"}))
            .await
            .0,
        201
    );
    let (_, alerts) = t
        .get("/api/v1/alerts", &format!("/api/v1/alerts?tenantId={s}"), a)
        .await;
    assert!(alerts["alerts"].as_array().is_some_and(|l| !l.is_empty()), "{alerts}");
    assert_eq!(
        t.put("/api/v1/tenant/{id}", &tenant, a, json!({"is_active": false}))
            .await
            .0,
        200
    );
    assert_eq!(
        t.post(assign, assign, a, json!({"tenant_id": s, "learner_id": "l8"}))
            .await
            .0,
        409
    );
    assert_eq!(
        t.put("/api/v1/tenant/{id}", &tenant, "sam", json!({"is_active": true}))
            .await
            .0,
        403
    );
    assert_eq!(
        t.put(
            "/api/v1/tenant/{id}",
            &tenant,
            a,
            json!({"name": "Elm", "is_active": true})
        )
        .await
        .0,
        200
    );
    let deactivate = format!("/api/v1/roles/{sam_role}/deactivate");
    assert_eq!(
        t.post("/api/v1/roles/{id}/deactivate", &deactivate, a, json!({}))
            .await
            .0,
        200
    );
    assert_eq!(
        t.post("/api/v1/roles/{id}/deactivate", &deactivate, a, json!({}))
            .await
            .0,
        400
    );
    assert_eq!(
        t.post(
            "/api/v1/roles/{id}/deactivate",
            "/api/v1/roles/999/deactivate",
            a,
            json!({})
        )
        .await
        .0,
        404
    );
    let big = json!({"name": "x".repeat(70 * 1024)});
    assert_eq!(t.post("/api/v1/district", "/api/v1/district", a, big).await.0, 413);

    // Refusals outside any route still have the documented error shape.
    for (method, path, status) in [(Method::DELETE, "/api/v1/seats/1", 405), (Method::GET, "/nowhere", 404)] {
        let res = t
            .app
            .client
            .request(method, t.app.url(path))
            .header("X-User-ID", a)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(res.status().as_u16(), status);
        let body: Value = res.json().await.unwrap_or_else(|e| panic!("{e}"));
        t.conforms(&json!({"$ref": "#/components/schemas/Error"}), &body, path);
    }

    // Every JSON route of the document answered at least once, and refusals
    // of every kind a request can cause were among the answers.
    let answered: BTreeSet<(&str, &str)> = t.seen.iter().map(|(p, m, _)| (p.as_str(), m.as_str())).collect();
    for (path, item) in t.doc["paths"].as_object().into_iter().flatten() {
        for method in item
            .as_object()
            .into_iter()
            .flatten()
            .map(|(m, _)| m.to_ascii_uppercase())
        {
            assert!(
                answered.contains(&(path.as_str(), method.as_str())),
                "{method} {path} never checked"
            );
        }
    }
    let statuses: BTreeSet<u16> = t.seen.iter().map(|(_, _, s)| *s).collect();
    for status in [200, 201, 400, 401, 403, 404, 409, 413, 422] {
        assert!(statuses.contains(&status), "no {status} checked");
    }
}

/// The docs page and its files come from the binary and name nothing
/// outside it; like the document, they need no identity.
#[tokio::test]
async fn the_docs_page_is_served_whole_from_the_binary() {
    let app = TestApp::spawn_with(|s| s.auth.enforce_roles = true).await;
    let page = app
        .client
        .get(app.url("/docs"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(page.status(), 200);
    assert!(page
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html")));
    let html = page.text().await.unwrap_or_else(|e| panic!("{e}"));
    let mut files = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for piece in html.split(attr).skip(1) {
            let target = piece.split('"').next().unwrap_or_default();
            assert!(target.starts_with("/docs/"), "{target} is not served from here");
            files.push(target.to_owned());
        }
    }
    assert!(files.iter().any(|f| f.ends_with("swagger-ui-bundle.js")), "{files:?}");
    for file in &files {
        let res = app
            .client
            .get(app.url(file))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(res.status(), 200, "{file}");
        let body = res.text().await.unwrap_or_else(|e| panic!("{e}"));
        assert!(!body.is_empty(), "{file}");
        if file.ends_with("swagger-initializer.js") {
            assert!(body.contains("\"/openapi.json\""), "{body}");
        }
    }
    let missing = app
        .client
        .get(app.url("/docs/nothing.js"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(missing.status(), 404);
}
