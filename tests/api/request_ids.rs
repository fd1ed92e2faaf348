//! Every answer carries its request's id: the caller's `X-Request-ID` when
//! it is sane, else a new uuid; refusals too.

use super::helpers::*;

async fn id_of(app: &TestApp, path: &str, sent: Option<&str>, user: Option<&str>) -> (u16, String) {
    let mut req = app.client.get(app.url(path));
    if let Some(id) = sent {
        req = req.header("X-Request-ID", id);
    }
    if let Some(user) = user {
        req = req.header("X-User-ID", user);
    }
    let r = req.send().await.unwrap_or_else(|e| panic!("{e}"));
    let id = r
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("{path}: no X-Request-ID"))
        .to_owned();
    (r.status().as_u16(), id)
}

fn is_uuid(id: &str) -> bool {
    id.len() == 36 && id.bytes().filter(|b| *b == b'-').count() == 4
}

#[tokio::test]
async fn a_sane_request_id_is_echoed_and_any_other_replaced_by_a_new_uuid() {
    let app = TestApp::spawn().await;
    assert_eq!(
        id_of(&app, "/health", Some("trace-7f3a:01"), None).await,
        (200, "trace-7f3a:01".into())
    );
    // Refusals carry it too: an unknown route, a missing identity, a bad id.
    assert_eq!(id_of(&app, "/nope", Some("r1"), None).await, (404, "r1".into()));
    assert_eq!(
        id_of(&app, "/api/v1/tenant/1", Some("r2"), None).await,
        (401, "r2".into())
    );
    assert_eq!(
        id_of(&app, "/api/v1/tenant/x", Some("r3"), Some(ADMIN)).await,
        (422, "r3".into())
    );
    let long = "a".repeat(129);
    for insane in [
        None,
        Some("has space"),
        Some("semi;colon"),
        Some(long.as_str()),
        Some(""),
    ] {
        let (status, id) = id_of(&app, "/health", insane, None).await;
        assert_eq!(status, 200);
        assert!(is_uuid(&id), "{insane:?} gave {id}");
    }
    let (_, first) = id_of(&app, "/health", None, None).await;
    let (_, second) = id_of(&app, "/health", None, None).await;
    assert_ne!(first, second, "a new id each request");
}
