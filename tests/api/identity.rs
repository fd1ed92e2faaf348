//! Who the caller is, exactly: JWT claims that must be present when
//! configured, token headers we do not understand, identities that must not
//! collapse into another user's, and repeated identity headers.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tenant_service::config::AuthMode;

use super::auth::{now, with_token, SECRET};
use super::helpers::*;

const ISSUER: &str = "https://id.test";
const AUDIENCE: &str = "tenant-service";

/// JWT mode, HS256, with an issuer and an audience to check, and `root` a platform admin.
async fn jwt_app() -> TestApp {
    TestApp::spawn_with(|s| {
        s.auth.mode = AuthMode::Jwt;
        s.auth.jwt_secret = Some(SECRET.into());
        s.auth.jwt_issuer = Some(ISSUER.into());
        s.auth.jwt_audience = Some(AUDIENCE.into());
        s.auth.platform_admins = vec!["root".into()];
    })
    .await
}

fn signed(header: &Header, claims: &Value) -> String {
    jsonwebtoken::encode(header, claims, &EncodingKey::from_secret(SECRET.as_bytes()))
        .unwrap_or_else(|e| panic!("encode: {e}"))
}

/// A valid token for `sub`, with `drop` claims left out.
fn token_for(sub: &str, drop: &[&str]) -> String {
    let mut claims = json!({"sub": sub, "exp": now() + 600, "iss": ISSUER, "aud": AUDIENCE});
    if let Some(c) = claims.as_object_mut() {
        for claim in drop {
            c.remove(*claim);
        }
    }
    signed(&Header::new(Algorithm::HS256), &claims)
}

#[tokio::test]
async fn configured_issuer_and_audience_are_required_claims() {
    let app = jwt_app().await;
    let ok = with_token(&app, Some(&token_for("alice", &[])), None).await;
    assert_eq!((ok.status, ok.body["user_id"].clone()), (200, json!("alice")));
    for missing in [&["iss"][..], &["aud"], &["iss", "aud"]] {
        let r = with_token(&app, Some(&token_for("alice", missing)), None).await;
        assert_eq!(r.status, 401, "a token without {missing:?}: {}", r.body);
        assert_eq!(r.body["detail"], "Missing or invalid credentials");
    }
}

#[tokio::test]
async fn a_token_with_a_crit_header_is_refused() {
    let app = jwt_app().await;
    let claims = json!({"sub": "alice", "exp": now() + 600, "iss": ISSUER, "aud": AUDIENCE});
    for crit in [vec!["exp"], vec!["b64"], vec!["http://example.org/ext"], vec![]] {
        let mut header = Header::new(Algorithm::HS256);
        header.crit = Some(crit.iter().map(|c| c.to_string()).collect());
        let r = with_token(&app, Some(&signed(&header, &claims)), None).await;
        assert_eq!(r.status, 401, "crit {crit:?}: {}", r.body);
    }
    let plain = with_token(&app, Some(&signed(&Header::new(Algorithm::HS256), &claims)), None).await;
    assert_eq!(plain.status, 200, "{}", plain.body);
}

/// Subjects that trimming or Unicode folding would have turned into `root`,
/// and ids outside printable ASCII (which X-User-ID cannot carry).
const NOT_ROOT: &[&str] = &[
    " root ",
    "root ",
    " root",
    "root\n",
    "root\t",
    "root\r\n",
    "root\u{0}",
    "root\u{a0}",
    "\u{a0}root",
    "root\u{3000}",
    "root\u{2028}",
    "root\u{200b}",
    "root\u{feff}",
    "ro\u{a0}ot",
    "r\u{f8}\u{f8}t",
    "ｒｏｏｔ",
];

#[tokio::test]
async fn token_subjects_are_taken_exactly_as_sent_or_refused() {
    let app = jwt_app().await;
    let root = with_token(&app, Some(&token_for("root", &[])), None).await;
    assert_eq!((root.status, root.body["user_id"].clone()), (200, json!("root")));
    assert_eq!(root.body["platform_admin"], true);
    for sub in NOT_ROOT {
        let r = with_token(&app, Some(&token_for(sub, &[])), None).await;
        assert_eq!(r.status, 401, "sub {sub:?} was accepted as {}", r.body);
    }
}

#[tokio::test]
async fn roles_are_granted_only_to_ids_that_can_authenticate() {
    let app = TestApp::spawn().await;
    let district = app.district("Ids").await;
    for user in NOT_ROOT.iter().chain(&["", "u".repeat(256).as_str()]) {
        let r = app
            .post(
                "/api/v1/roles",
                json!({"user_id": user, "tenant_id": district, "role": "teacher"}),
            )
            .await;
        assert_eq!(r.status, 422, "a role for {user:?}: {}", r.body);
        assert!(r.detail().contains("user_id"), "{}", r.body);
    }
    let r = app
        .post(
            "/api/v1/roles",
            json!({"user_id": "u".repeat(255), "tenant_id": district, "role": "teacher"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    // Looking a user up follows the same rule: " root" is not root.
    let r = app.get("/api/v1/users/%20root/tenants").await;
    assert_eq!(r.status, 422, "{}", r.body);
    // Nothing listed but the one valid grant.
    let roles = app.get(&format!("/api/v1/roles?tenantId={district}")).await;
    assert_eq!(roles.body.as_array().map(Vec::len), Some(1), "{}", roles.body);
}

#[tokio::test]
async fn repeated_identity_headers_are_refused_not_resolved() {
    let app = TestApp::spawn().await;
    for (first, second) in [(ADMIN, "mallory"), ("mallory", ADMIN), (ADMIN, ADMIN)] {
        let r = app
            .send(
                app.client
                    .get(app.url("/api/v1/me"))
                    .header("X-User-ID", first)
                    .header("X-User-ID", second),
            )
            .await;
        assert_eq!(r.status, 401, "X-User-ID {first:?} and {second:?}: {}", r.body);
    }
    let once = app.get("/api/v1/me").await;
    assert_eq!((once.status, once.body["user_id"].clone()), (200, json!(ADMIN)));

    let app = jwt_app().await;
    let r = app
        .send(
            app.client
                .get(app.url("/api/v1/me"))
                .bearer_auth(token_for("alice", &[]))
                .bearer_auth(token_for("root", &[])),
        )
        .await;
    assert_eq!(r.status, 401, "two bearer tokens: {}", r.body);
}

#[tokio::test]
async fn identity_headers_are_taken_exactly_as_sent_or_refused() {
    let app = TestApp::spawn().await;
    for user in ["root\tx", "ro\tot"] {
        let r = app
            .send(app.client.get(app.url("/api/v1/me")).header("X-User-ID", user))
            .await;
        assert_eq!(r.status, 401, "X-User-ID {user:?}: {}", r.body);
    }
    // A space inside is part of the id (the contract allows it), kept as sent.
    let r = app
        .send(app.client.get(app.url("/api/v1/me")).header("X-User-ID", "ro ot"))
        .await;
    assert_eq!((r.status, r.body["user_id"].clone()), (200, json!("ro ot")));
}

#[test]
fn a_platform_admin_that_could_never_authenticate_refuses_the_start() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for admin in ["root ", "r\u{f8}\u{f8}t", ""] {
        let mut settings = tenant_service::Settings {
            data_dir: dir.path().join("data"),
            ..Default::default()
        };
        settings.auth.platform_admins = vec![admin.into()];
        let err = tenant_service::App::open(&settings)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("platform admin"), "{admin:?}: {err}");
    }
}
