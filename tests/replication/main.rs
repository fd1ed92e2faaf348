//! The change feed on NATS JetStream, the warm standby and failover, against
//! real `nats-server` processes (one, or three as a JetStream cluster) and
//! the service as child processes, all on 127.0.0.1.
//!
//! Without nats-server (`apt-get install -y nats-server`) these tests pass
//! without doing anything and say so in one line; `TENANT_TEST_NATS_SERVER`
//! names another binary.

mod feed;
mod harness;
mod lifecycle;
#[path = "../support/optional.rs"]
mod optional;
mod standby;

use std::time::Duration;

use serde_json::{json, Value};

use harness::Service;

pub const STREAM: &str = "TENANT_CHANGES";

/// The `[replication]` body for one instance.
pub fn replication(urls: &[String], mode: &str, extra: &str) -> String {
    let urls = urls.iter().map(|u| format!("{u:?}")).collect::<Vec<_>>().join(", ");
    format!("nats_urls = [{urls}]\nmode = {mode:?}\n{extra}\n")
}

/// A district with one school holding `seats` seats: (district, school, first seat).
pub async fn seed(s: &Service, seats: u64) -> (u64, u64, u64) {
    let (status, d) = s.post("/api/v1/district", json!({"name": "Springfield"})).await;
    assert_eq!(status, 201, "{d}");
    let district = d["id"].as_u64().unwrap_or(0);
    let (status, sc) = s
        .post(
            &format!("/api/v1/district/{district}/schools"),
            json!({"name": "Elementary"}),
        )
        .await;
    assert_eq!(status, 201, "{sc}");
    let school = sc["id"].as_u64().unwrap_or(0);
    let (status, bought) = s
        .post("/api/v1/seats/purchase", json!({"tenant_id": school, "count": seats}))
        .await;
    assert_eq!(status, 201, "{bought}");
    let first = bought[0]["id"].as_u64().unwrap_or(0);
    (district, school, first)
}

pub async fn allocate(s: &Service, seat: u64, learner: &str) -> (u16, Value) {
    s.post(
        "/api/v1/seats/allocate",
        json!({"seat_id": seat, "learner_id": learner}),
    )
    .await
}

pub const SETTLE: Duration = Duration::from_secs(20);
