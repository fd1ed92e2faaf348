//! Authentication and role-based authorization: the issue's matrix over
//! HTTP, district-wide roles, deactivation, visibility, `/me`, inactive
//! tenants, and every way a JWT can be wrong.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use super::helpers::*;

pub(super) const ROOT: &str = "root";

/// Roles enforced, `root` the platform admin.
pub(super) async fn enforced() -> TestApp {
    TestApp::spawn_with(|s| {
        s.auth.enforce_roles = true;
        s.auth.platform_admins = vec![ROOT.into()];
    })
    .await
}

impl TestApp {
    async fn as_user(&self, user: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> Response {
        let mut req = self.client.request(method, self.url(path)).header("X-User-ID", user);
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await
    }

    async fn grant(&self, by: &str, user: &str, tenant: u64, role: &str) -> Response {
        self.as_user(
            by,
            reqwest::Method::POST,
            "/api/v1/roles",
            Some(json!({"user_id": user, "tenant_id": tenant, "role": role})),
        )
        .await
    }
}

/// Platform admin builds: district D with schools A and B, district O with school P.
struct World {
    d: u64,
    a: u64,
    b: u64,
    p: u64,
}

async fn world(app: &TestApp) -> World {
    async fn post(app: &TestApp, path: &str, body: Value) -> Response {
        app.as_user(ROOT, reqwest::Method::POST, path, Some(body)).await
    }
    let d = post(app, "/api/v1/district", json!({"name": "D"})).await.id();
    let a = post(app, &format!("/api/v1/district/{d}/schools"), json!({"name": "A"}))
        .await
        .id();
    let b = post(app, &format!("/api/v1/district/{d}/schools"), json!({"name": "B"}))
        .await
        .id();
    let o = post(app, "/api/v1/district", json!({"name": "O"})).await.id();
    let p = post(app, &format!("/api/v1/district/{o}/schools"), json!({"name": "P"}))
        .await
        .id();
    for (user, role) in [
        ("adm", "admin"),
        ("mgr", "manager"),
        ("tch", "teacher"),
        ("lrn", "learner"),
    ] {
        assert_eq!(app.grant(ROOT, user, a, role).await.status, 201);
    }
    assert_eq!(app.grant(ROOT, "dadm", d, "admin").await.status, 201);
    World { d, a, b, p }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Allowed,
    Forbidden,
    Hidden,
}
use Expect::*;

fn judge(r: &Response) -> Expect {
    match r.status {
        403 => {
            assert_eq!(r.body["error_code"], "FORBIDDEN", "{}", r.body);
            assert!(
                r.detail().contains("role") || r.detail().contains("admin"),
                "{}",
                r.body
            );
            Forbidden
        }
        404 => Hidden,
        s if s < 500 && s != 401 => Allowed,
        s => panic!("unexpected {s}: {}", r.body),
    }
}

/// What each caller may do with a tenant, by the least role an action needs.
fn expected(caller: &str, least: &str, target: &str) -> Expect {
    let rank = |r: &str| ["learner", "teacher", "manager", "admin"].iter().position(|x| *x == r);
    let held = match caller {
        "root" => return Allowed,
        "adm" => "admin",
        "mgr" => "manager",
        "tch" => "teacher",
        "lrn" => "learner",
        "dadm" => return if target == "P" { Hidden } else { Allowed },
        _ => return Hidden,
    };
    match target {
        "A" if rank(held) >= rank(least) => Allowed,
        "A" | "B" => Forbidden, // a role in the district, but not enough here
        _ => Hidden,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_role_matrix_holds_on_every_route() {
    let app = enforced().await;
    let w = world(&app).await;
    let targets = [("A", w.a), ("B", w.b), ("P", w.p)];
    // Seats to work on in each target tenant, bought by the platform admin.
    let mut seats = std::collections::HashMap::new();
    for (name, t) in targets {
        let r = app
            .as_user(
                ROOT,
                reqwest::Method::POST,
                "/api/v1/seats/purchase",
                Some(json!({"tenant_id": t, "count": 40})),
            )
            .await;
        let ids: Vec<u64> = r
            .body
            .as_array()
            .map(|a| a.iter().filter_map(|s| s["id"].as_u64()).collect())
            .unwrap_or_default();
        assert_eq!(ids.len(), 40);
        seats.insert(name, ids);
    }
    let callers = ["root", "adm", "mgr", "tch", "lrn", "dadm", "nobody"];
    let mut checked = 0;
    for (ci, caller) in callers.iter().enumerate() {
        for (name, t) in targets {
            let seat = seats[name][ci];
            let spare = seats[name][20 + ci];
            let cases: Vec<(&str, reqwest::Method, String, Option<Value>)> = vec![
                ("teacher", reqwest::Method::GET, format!("/api/v1/tenant/{t}"), None),
                (
                    "teacher",
                    reqwest::Method::GET,
                    format!("/api/v1/seats/summary?tenantId={t}"),
                    None,
                ),
                ("teacher", reqwest::Method::GET, format!("/api/v1/seats/{seat}"), None),
                (
                    "teacher",
                    reqwest::Method::GET,
                    format!("/api/v1/roles?tenantId={t}"),
                    None,
                ),
                (
                    "manager",
                    reqwest::Method::GET,
                    format!("/api/v1/seats/{seat}/audit"),
                    None,
                ),
                (
                    "manager",
                    reqwest::Method::POST,
                    "/api/v1/seats/allocate".into(),
                    Some(json!({"seat_id": spare, "learner_id": format!("l-{caller}-{name}")})),
                ),
                (
                    "manager",
                    reqwest::Method::POST,
                    "/api/v1/seats/reclaim".into(),
                    Some(json!({"seat_id": spare})),
                ),
                (
                    "admin",
                    reqwest::Method::POST,
                    "/api/v1/seats/purchase".into(),
                    Some(json!({"tenant_id": t, "count": 1})),
                ),
                (
                    "admin",
                    reqwest::Method::PUT,
                    format!("/api/v1/tenant/{t}"),
                    Some(json!({"name": name})),
                ),
                (
                    "admin",
                    reqwest::Method::POST,
                    "/api/v1/roles".into(),
                    Some(json!({"user_id": format!("new-{caller}"), "tenant_id": t, "role": "teacher"})),
                ),
                (
                    "admin",
                    reqwest::Method::GET,
                    format!("/api/v1/roles/events?tenantId={t}"),
                    None,
                ),
            ];
            for (least, method, path, body) in cases {
                let r = app.as_user(caller, method.clone(), &path, body).await;
                let want = expected(caller, least, name);
                assert_eq!(
                    judge(&r),
                    want,
                    "{caller} {method} {path} on {name}: {} {}",
                    r.status,
                    r.body
                );
                if want == Allowed {
                    assert!(r.status < 400, "{caller} {method} {path}: {} {}", r.status, r.body);
                }
                checked += 1;
            }
        }
    }
    // District-level actions: only district admins and the platform admin.
    for caller in callers {
        let want = match caller {
            "root" | "dadm" => Allowed,
            "nobody" => Hidden,
            _ => Forbidden, // school roles are in the district but do not act on it
        };
        let r = app
            .as_user(
                caller,
                reqwest::Method::POST,
                &format!("/api/v1/district/{}/schools", w.d),
                Some(json!({"name": "N"})),
            )
            .await;
        assert_eq!(judge(&r), want, "{caller} creates a school: {}", r.body);
        let read = app
            .as_user(caller, reqwest::Method::GET, &format!("/api/v1/district/{}", w.d), None)
            .await;
        let want_read = if caller == "tch" || caller == "adm" || caller == "mgr" || caller == "lrn" {
            Forbidden
        } else {
            want
        };
        assert_eq!(judge(&read), want_read, "{caller} reads the district: {}", read.body);
        let r = app
            .as_user(
                caller,
                reqwest::Method::POST,
                "/api/v1/district",
                Some(json!({"name": "New"})),
            )
            .await;
        assert_eq!(
            r.status,
            if caller == "root" { 201 } else { 403 },
            "{caller} creates a district"
        );
        checked += 3;
    }
    assert!(checked > 200);
}

#[tokio::test]
async fn hidden_and_forbidden_answers_do_not_leak() {
    let app = enforced().await;
    let w = world(&app).await;
    // A stranger cannot tell an existing tenant from a missing one.
    let exists = app
        .as_user("nobody", reqwest::Method::GET, &format!("/api/v1/tenant/{}", w.a), None)
        .await;
    let missing = app
        .as_user("nobody", reqwest::Method::GET, "/api/v1/tenant/999999", None)
        .await;
    assert_eq!(
        (exists.status, exists.body.clone()),
        (missing.status, missing.body.clone())
    );
    assert_eq!(exists.detail(), "Tenant not found");
    // A teacher asking for more is told which role it takes.
    let r = app
        .as_user(
            "tch",
            reqwest::Method::POST,
            "/api/v1/seats/purchase",
            Some(json!({"tenant_id": w.a, "count": 1})),
        )
        .await;
    assert_eq!(
        (r.status, r.detail()),
        (403, "This action requires the admin role in this tenant")
    );
}

#[tokio::test]
async fn learners_read_their_own_seat_only() {
    let app = enforced().await;
    let w = world(&app).await;
    let seats = app
        .as_user(
            ROOT,
            reqwest::Method::POST,
            "/api/v1/seats/purchase",
            Some(json!({"tenant_id": w.a, "count": 2})),
        )
        .await;
    let ids: Vec<u64> = seats
        .body
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["id"].as_u64()).collect())
        .unwrap_or_default();
    let r = app
        .as_user(
            "mgr",
            reqwest::Method::POST,
            "/api/v1/seats/allocate",
            Some(json!({"seat_id": ids[0], "learner_id": "lrn"})),
        )
        .await;
    assert_eq!(r.status, 200);
    let own = app
        .as_user("lrn", reqwest::Method::GET, &format!("/api/v1/seats/{}", ids[0]), None)
        .await;
    assert_eq!((own.status, own.body["learner_id"].clone()), (200, json!("lrn")));
    let other = app
        .as_user("lrn", reqwest::Method::GET, &format!("/api/v1/seats/{}", ids[1]), None)
        .await;
    assert_eq!(other.status, 403);
    let mine = app
        .as_user("lrn", reqwest::Method::GET, "/api/v1/users/lrn/tenants", None)
        .await;
    assert_eq!(mine.body.as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn deactivation_keeps_the_role_revokes_access_and_is_recorded() {
    let app = enforced().await;
    let w = world(&app).await;
    let granted = app.grant("adm", "temp", w.a, "manager").await;
    assert_eq!(granted.status, 201);
    assert_eq!(granted.body["granted_by"], "adm");
    let role = granted.id();
    let path = format!("/api/v1/tenant/{}", w.a);
    assert_eq!(app.as_user("temp", reqwest::Method::GET, &path, None).await.status, 200);

    // Only an admin in scope may deactivate.
    let r = app
        .as_user(
            "mgr",
            reqwest::Method::POST,
            &format!("/api/v1/roles/{role}/deactivate"),
            None,
        )
        .await;
    assert_eq!(r.status, 403);
    let r = app
        .as_user(
            "adm",
            reqwest::Method::POST,
            &format!("/api/v1/roles/{role}/deactivate"),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        (r.body["is_active"].clone(), r.body["deactivated_by"].clone()),
        (json!(false), json!("adm"))
    );
    assert!(r.body["deactivated_at"].is_string());
    let again = app
        .as_user(
            "adm",
            reqwest::Method::POST,
            &format!("/api/v1/roles/{role}/deactivate"),
            None,
        )
        .await;
    assert_eq!((again.status, again.detail()), (400, "Role is already inactive"));
    let missing = app
        .as_user("adm", reqwest::Method::POST, "/api/v1/roles/999999/deactivate", None)
        .await;
    assert_eq!((missing.status, missing.detail()), (404, "Role not found"));

    // Access is gone; the role is kept, listed inactive.
    assert_eq!(app.as_user("temp", reqwest::Method::GET, &path, None).await.status, 404);
    let listed = app
        .as_user(
            "adm",
            reqwest::Method::GET,
            &format!("/api/v1/roles?tenantId={}", w.a),
            None,
        )
        .await;
    let kept = listed
        .body
        .as_array()
        .and_then(|a| a.iter().find(|r| r["id"] == json!(role)).cloned());
    assert_eq!(kept.map(|r| r["is_active"].clone()), Some(json!(false)));
    assert_eq!(
        app.as_user("temp", reqwest::Method::GET, "/api/v1/users/temp/tenants", None)
            .await
            .body,
        json!([])
    );

    // It may be granted again, as a new role.
    let regrant = app.grant("adm", "temp", w.a, "teacher").await;
    assert_eq!(regrant.status, 201);
    assert_ne!(regrant.id(), role);

    // The trail: who did what, when.
    let events = app
        .as_user(
            "adm",
            reqwest::Method::GET,
            &format!("/api/v1/roles/events?tenantId={}", w.a),
            None,
        )
        .await;
    let temp: Vec<(Value, Value)> = events
        .body
        .as_array()
        .unwrap_or(&vec![])
        .iter()
        .filter(|e| e["user_id"] == "temp")
        .map(|e| (e["change"].clone(), e["changed_by"].clone()))
        .collect();
    assert_eq!(
        temp,
        vec![
            (json!("granted"), json!("adm")),
            (json!("deactivated"), json!("adm")),
            (json!("granted"), json!("adm"))
        ]
    );

    // Everything survives a restart.
    let app = app.restart().await;
    let after = app
        .as_user(
            "adm",
            reqwest::Method::GET,
            &format!("/api/v1/roles/events?tenantId={}", w.a),
            None,
        )
        .await;
    assert_eq!(after.body, events.body);
    assert_eq!(app.as_user("temp", reqwest::Method::GET, &path, None).await.status, 200);
}

#[tokio::test]
async fn others_see_only_the_roles_they_administer() {
    let app = enforced().await;
    let w = world(&app).await;
    assert_eq!(app.grant(ROOT, "tch", w.p, "teacher").await.status, 201);
    let tenants_of = |r: Response| -> Vec<u64> {
        r.body
            .as_array()
            .unwrap_or(&vec![])
            .iter()
            .filter_map(|r| r["tenant_id"].as_u64())
            .collect()
    };
    let own = app
        .as_user("tch", reqwest::Method::GET, "/api/v1/users/tch/tenants", None)
        .await;
    assert_eq!(tenants_of(own), vec![w.a, w.p]);
    let by_admin = app
        .as_user("adm", reqwest::Method::GET, "/api/v1/users/tch/tenants", None)
        .await;
    assert_eq!(tenants_of(by_admin), vec![w.a]);
    let by_root = app
        .as_user(ROOT, reqwest::Method::GET, "/api/v1/users/tch/tenants", None)
        .await;
    assert_eq!(tenants_of(by_root), vec![w.a, w.p]);
    let by_peer = app
        .as_user("mgr", reqwest::Method::GET, "/api/v1/users/tch/tenants", None)
        .await;
    assert_eq!(by_peer.body, json!([]));
}

#[tokio::test]
async fn me_lists_roles_and_allowed_actions() {
    let app = enforced().await;
    let w = world(&app).await;
    let me = app.as_user("dadm", reqwest::Method::GET, "/api/v1/me", None).await;
    assert_eq!(me.status, 200);
    assert_eq!(
        (me.body["user_id"].clone(), me.body["platform_admin"].clone()),
        (json!("dadm"), json!(false))
    );
    let reach: Vec<u64> = me.body["tenants"]
        .as_array()
        .unwrap_or(&vec![])
        .iter()
        .filter_map(|t| t["tenant_id"].as_u64())
        .collect();
    assert_eq!(reach, vec![w.d, w.a, w.b], "the district and its schools");
    let tch = app.as_user("tch", reqwest::Method::GET, "/api/v1/me", None).await;
    let tenants = tch.body["tenants"].as_array().cloned().unwrap_or_default();
    assert_eq!(tenants.len(), 1);
    assert_eq!(tenants[0]["role"], "teacher");
    assert_eq!(tenants[0]["actions"], json!(["read"]));
    let mgr = app.as_user("mgr", reqwest::Method::GET, "/api/v1/me", None).await;
    assert_eq!(
        mgr.body["tenants"][0]["actions"],
        json!(["read", "read_audit", "allocate"])
    );
    let root = app.as_user(ROOT, reqwest::Method::GET, "/api/v1/me", None).await;
    assert_eq!(root.body["platform_admin"], true);
}

#[tokio::test]
async fn inactive_tenants_read_but_refuse_writes() {
    let app = enforced().await;
    let w = world(&app).await;
    let seats = app
        .as_user(
            ROOT,
            reqwest::Method::POST,
            "/api/v1/seats/purchase",
            Some(json!({"tenant_id": w.a, "count": 2})),
        )
        .await;
    let seat = seats.body[0]["id"].as_u64().unwrap_or_default();
    let off = app
        .as_user(
            "adm",
            reqwest::Method::PUT,
            &format!("/api/v1/tenant/{}", w.a),
            Some(json!({"is_active": false})),
        )
        .await;
    assert_eq!(off.status, 200);
    let writes = [
        app.as_user(
            "adm",
            reqwest::Method::POST,
            "/api/v1/seats/purchase",
            Some(json!({"tenant_id": w.a, "count": 1})),
        )
        .await,
        app.as_user(
            "mgr",
            reqwest::Method::POST,
            "/api/v1/seats/allocate",
            Some(json!({"seat_id": seat, "learner_id": "x"})),
        )
        .await,
        app.grant("adm", "someone", w.a, "teacher").await,
    ];
    for r in &writes {
        assert_eq!((r.status, r.detail()), (409, "Tenant is inactive"));
    }
    assert_eq!(
        app.as_user(
            "tch",
            reqwest::Method::GET,
            &format!("/api/v1/seats/summary?tenantId={}", w.a),
            None
        )
        .await
        .status,
        200
    );
    // A school of an inactive district is inactive too.
    let d_off = app
        .as_user(
            ROOT,
            reqwest::Method::PUT,
            &format!("/api/v1/tenant/{}", w.d),
            Some(json!({"is_active": false})),
        )
        .await;
    assert_eq!(d_off.status, 200);
    let r = app
        .as_user(
            ROOT,
            reqwest::Method::POST,
            "/api/v1/seats/purchase",
            Some(json!({"tenant_id": w.b, "count": 1})),
        )
        .await;
    assert_eq!(r.status, 409);
    // Reactivation is a write that is allowed.
    for t in [w.d, w.a] {
        let on = app
            .as_user(
                ROOT,
                reqwest::Method::PUT,
                &format!("/api/v1/tenant/{t}"),
                Some(json!({"is_active": true})),
            )
            .await;
        assert_eq!(on.status, 200);
    }
    let r = app
        .as_user(
            "mgr",
            reqwest::Method::POST,
            "/api/v1/seats/allocate",
            Some(json!({"seat_id": seat, "learner_id": "x"})),
        )
        .await;
    assert_eq!(r.status, 200);
}

// ---- JWT ------------------------------------------------------------------

pub(super) const SECRET: &str = "test-secret-of-reasonable-length-0123456789";

pub(super) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn hs256(claims: &Value, secret: &str, alg: Algorithm) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret.as_bytes()))
        .unwrap_or_else(|e| panic!("encode: {e}"))
}

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn rs256(claims: &Value, key_file: &str) -> String {
    let pem = std::fs::read(fixture(key_file)).unwrap_or_else(|e| panic!("{e}"));
    let key = EncodingKey::from_rsa_pem(&pem).unwrap_or_else(|e| panic!("{e}"));
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &key).unwrap_or_else(|e| panic!("{e}"))
}

fn unsigned(claims: &Value) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(claims.to_string())
    )
}

pub(super) async fn with_token(app: &TestApp, token: Option<&str>, user_header: Option<&str>) -> Response {
    let mut req = app.client.get(app.url("/api/v1/me"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(u) = user_header {
        req = req.header("X-User-ID", u);
    }
    let res = req.send().await.unwrap_or_else(|e| panic!("{e}"));
    if res.status() == 401 {
        let challenge = res
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer"),
            "401 without a Bearer challenge: {challenge:?}"
        );
    }
    let status = res.status().as_u16();
    Response {
        status,
        body: res.json().await.unwrap_or_default(),
    }
}

#[tokio::test]
async fn hs256_tokens_are_checked_every_way() {
    let app = TestApp::spawn_with(|s| {
        s.auth.mode = tenant_service::config::AuthMode::Jwt;
        s.auth.jwt_secret = Some(SECRET.into());
        s.auth.jwt_issuer = Some("https://id.test".into());
        s.auth.jwt_audience = Some("tenant-service".into());
        s.auth.platform_admins = vec!["alice".into()];
    })
    .await;
    let good = json!({"sub": "alice", "exp": now() + 600, "iss": "https://id.test", "aud": "tenant-service"});
    let with = |patch: Value| {
        let mut c = good.clone();
        if let (Some(c), Some(p)) = (c.as_object_mut(), patch.as_object()) {
            for (k, v) in p {
                c.insert(k.clone(), v.clone());
            }
        }
        c
    };
    let ok = with_token(&app, Some(&hs256(&good, SECRET, Algorithm::HS256)), None).await;
    assert_eq!((ok.status, ok.body["user_id"].clone()), (200, json!("alice")));
    assert_eq!(ok.body["platform_admin"], true);

    let refused = [
        ("missing", None),
        (
            "expired",
            Some(hs256(&with(json!({"exp": now() - 3600})), SECRET, Algorithm::HS256)),
        ),
        (
            "not yet valid",
            Some(hs256(&with(json!({"nbf": now() + 3600})), SECRET, Algorithm::HS256)),
        ),
        (
            "wrong signature",
            Some(hs256(
                &good,
                "another-secret-entirely-0123456789abcdef",
                Algorithm::HS256,
            )),
        ),
        ("alg none", Some(unsigned(&good))),
        ("wrong algorithm", Some(hs256(&good, SECRET, Algorithm::HS384))),
        (
            "RS256 when HS256 is configured",
            Some(rs256(&good, "jwt_rs256_private.pem")),
        ),
        (
            "wrong audience",
            Some(hs256(&with(json!({"aud": "someone-else"})), SECRET, Algorithm::HS256)),
        ),
        (
            "wrong issuer",
            Some(hs256(
                &with(json!({"iss": "https://evil.test"})),
                SECRET,
                Algorithm::HS256,
            )),
        ),
        (
            "no exp",
            Some(hs256(
                &json!({"sub": "alice", "iss": "https://id.test", "aud": "tenant-service"}),
                SECRET,
                Algorithm::HS256,
            )),
        ),
        ("garbage", Some("not.a.token".to_owned())),
    ];
    for (case, token) in refused {
        let r = with_token(&app, token.as_deref(), Some("alice")).await;
        assert_eq!(r.status, 401, "{case}: {}", r.body);
        assert_eq!(
            r.body["detail"], "Missing or invalid credentials",
            "{case}: the body says nothing of why"
        );
    }
    // X-User-ID alone is ignored in jwt mode.
    assert_eq!(with_token(&app, None, Some("alice")).await.status, 401);
}

#[tokio::test]
async fn rs256_tokens_verify_against_the_public_key_file() {
    let app = TestApp::spawn_with(|s| {
        s.auth.mode = tenant_service::config::AuthMode::Jwt;
        s.auth.jwt_public_key_file = Some(fixture("jwt_rs256_public.pem"));
    })
    .await;
    let claims = json!({"sub": "bob", "exp": now() + 600});
    let ok = with_token(&app, Some(&rs256(&claims, "jwt_rs256_private.pem")), None).await;
    assert_eq!((ok.status, ok.body["user_id"].clone()), (200, json!("bob")));
    let other_key = with_token(&app, Some(&rs256(&claims, "jwt_other_private.pem")), None).await;
    assert_eq!(other_key.status, 401);
    let hs = with_token(&app, Some(&hs256(&claims, SECRET, Algorithm::HS256)), None).await;
    assert_eq!(hs.status, 401, "an HS256 token (key confusion) is refused");
    assert_eq!(with_token(&app, Some(&unsigned(&claims)), None).await.status, 401);
}

#[test]
fn jwt_mode_without_a_key_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut settings = tenant_service::Settings {
        data_dir: dir.path().join("data"),
        ..Default::default()
    };
    settings.auth.mode = tenant_service::config::AuthMode::Jwt;
    let err = tenant_service::App::open(&settings)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("TENANT_JWT_SECRET"), "{err}");
}
