//! Who the caller is, exactly: JWT claims that must be present when
//! configured, and token headers we do not understand.

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
