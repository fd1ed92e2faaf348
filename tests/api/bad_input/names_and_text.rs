//! Names, learner ids, user ids, reasons and roles. Their rules are
//! unit-tested beside the types (`domain::text`, `domain::tenant`); here one
//! case per route and field proves the 422, and that a refusal changes nothing.

use serde_json::{json, Value};

use super::fixture::*;
use super::{call, refused};

#[tokio::test]
async fn invalid_names_are_422_and_create_nothing() {
    let f = Fixture::new().await;
    let before = f.snapshot().await;
    // One name per rule of `TenantName` (blank, too long, a control
    // character); the rules themselves are unit-tested in `domain::text`.
    let names = [" ".to_string(), "é".repeat(256), "bad\u{0}name".into()];
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
    // Names that test the way through JSON, the store and back; which names
    // `TenantName` takes (down to one character, up to 255) is unit-tested.
    let names = [
        "Ünïcødé Dístrïct".to_string(),
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
        "🏫".repeat(255),
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
    // One learner id per rule of `LearnerId` (unit-tested in `domain::text`).
    let learners = ["\t \n".to_string(), "é".repeat(256), "bad\u{0}learner".into()];
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
    // `Reason`'s limit is unit-tested in `domain::text`.
    let r = f.app.reclaim(seat, Some(&"é".repeat(501))).await;
    refused(&r, &[422], "reason of 501 chars");
    let got = f.app.seat(seat).await;
    assert_eq!(got["state"].as_str(), Some("assigned"), "{got}");
    assert_eq!(got["learner_id"].as_str(), Some(FIXTURE_LEARNER), "{got}");
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
    // `RoleKind::parse` and `UserId::parse` are unit-tested (`domain::tenant`,
    // `domain::text`); here one role, and one user id per rule.
    let r = f
        .app
        .post(
            "/api/v1/roles",
            json!({"user_id": "u_new", "tenant_id": s, "role": "ADMIN"}),
        )
        .await;
    refused(&r, &[422], "role \"ADMIN\"");
    for user in ["   ".to_string(), "u".repeat(256), "bad\u{0}user".into()] {
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
