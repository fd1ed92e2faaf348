//! Issue 15's states on the feed and the warm standby: a purchase with a
//! license term, reservations (given back, and ended by their deadline on
//! the primary), a transfer between two schools and a renewal reach the
//! standby, which then answers every read as the primary does; after kill
//! -9 of the primary the standby, now primary, ends a pending reservation
//! at its deadline, refuses an expired seat and holds the moved seats on
//! their new tenant; the old primary comes back as a standby writing
//! nothing of its own, and matches again.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::harness::{nats_server, Nats, Service};
use super::{allocate, replication, SETTLE};

const TTL_MS: u64 = 2000;

fn config(urls: &[String], node: &str) -> String {
    replication(
        urls,
        "sync",
        &format!(
            "node_id = {node:?}\nleadership = true\nreplicas = 1\nlease_ttl_ms = {TTL_MS}\nsync_timeout_ms = 3000"
        ),
    )
}

fn in_seconds(s: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(s)).to_rfc3339()
}

fn micros(rfc3339: &Value) -> i64 {
    let raw = rfc3339.as_str().unwrap_or_else(|| panic!("not a time: {rfc3339}"));
    chrono::DateTime::parse_from_rfc3339(raw)
        .unwrap_or_else(|e| panic!("{raw}: {e}"))
        .timestamp_micros()
}

async fn takes_writes(s: &Service, within: Duration) {
    s.until("takes writes", within, || async {
        s.post("/api/v1/district", json!({"name": "Probe"})).await.0 == 201
    })
    .await;
}

fn ids(body: &Value) -> Vec<u64> {
    body.as_array()
        .unwrap_or_else(|| panic!("not a list: {body}"))
        .iter()
        .filter_map(|s| s["id"].as_u64())
        .collect()
}

async fn ok(s: &Service, path: &str, body: Value, status: u16) -> Value {
    let (got, answer) = s.post(path, body).await;
    assert_eq!(got, status, "{path}: {answer}");
    answer
}

/// What the test compares between instances.
struct Scope {
    district: u64,
    schools: [u64; 2],
    seats: std::ops::Range<u64>,
    learners: Vec<&'static str>,
    /// The `expiring_before` listings' time (query-encoded).
    horizon: String,
}

/// Every read the test compares, as one value: each seat, both schools'
/// listings, summaries, stats and trails, the district's summary, the
/// learners' seats, and the chain checks.
async fn reads(s: &Service, scope: &Scope) -> Value {
    let mut out = serde_json::Map::new();
    let mut get = |path: String, answer: (u16, Value)| {
        out.insert(path, json!([answer.0, answer.1]));
    };
    for seat in scope.seats.clone() {
        let path = format!("/api/v1/seats/{seat}");
        get(path.clone(), s.get(&path).await);
        let path = format!("/api/v1/seats/{seat}/audit");
        get(path.clone(), s.get(&path).await);
    }
    for school in scope.schools {
        for path in [
            format!("/api/v1/seats?tenantId={school}&limit=1000"),
            format!("/api/v1/seats?tenantId={school}&state=reserved"),
            format!("/api/v1/seats?tenantId={school}&expiring_before={}", scope.horizon),
            format!("/api/v1/seats/summary?tenantId={school}"),
            format!("/api/v1/audit?tenantId={school}&limit=1000"),
            format!("/api/v1/audit/verify?tenantId={school}"),
        ] {
            get(path.clone(), s.get(&path).await);
        }
        // Less what depends on the moment of the read.
        let path = format!("/api/v1/seats/stats?tenantId={school}");
        let (status, mut stats) = s.get(&path).await;
        if let Some(fields) = stats.as_object_mut() {
            fields.remove("until");
            fields.remove("per_minute");
        }
        get(path, (status, stats));
    }
    let path = format!("/api/v1/district/{}/summary", scope.district);
    get(path.clone(), s.get(&path).await);
    for learner in &scope.learners {
        let path = format!("/api/v1/learners/{learner}/seats");
        get(path.clone(), s.get(&path).await);
    }
    Value::Object(out)
}

/// Waits until `standby` answers every read as `primary` does.
async fn same_reads(primary: &Service, standby: &Service, scope: &Scope, what: &str) {
    let deadline = Instant::now() + SETTLE;
    loop {
        let (p, s) = (reads(primary, scope).await, reads(standby, scope).await);
        if p == s {
            for school in scope.schools {
                let verify = &p[&format!("/api/v1/audit/verify?tenantId={school}")];
                assert_eq!(verify[0], json!(200), "{verify}");
                assert_eq!(verify[1]["intact"], json!(true), "{verify}");
            }
            return;
        }
        if Instant::now() > deadline {
            let diff: Vec<String> = p
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, v)| s.get(k.as_str()) != Some(*v))
                .map(|(k, v)| format!("{k}:\n  primary {v}\n  standby {}", s[k.as_str()]))
                .collect();
            panic!("{what}: the standby's reads differ:\n{}", diff.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reservations_terms_transfers_and_renewals_reach_the_standby_and_outlive_the_primary() {
    let Some(bin) = nats_server() else { return };
    let nats = Nats::single(&bin);
    let urls = vec![nats.url()];
    let mut a = Service::start(&config(&urls, "a"));
    takes_writes(&a, SETTLE).await;
    let b = Service::start(&config(&urls, "b"));

    let district = ok(&a, "/api/v1/district", json!({"name": "Springfield"}), 201).await["id"]
        .as_u64()
        .unwrap_or(0);
    let school = |name: &'static str| {
        let a = &a;
        async move {
            ok(
                a,
                &format!("/api/v1/district/{district}/schools"),
                json!({"name": name}),
                201,
            )
            .await["id"]
                .as_u64()
                .unwrap_or(0)
        }
    };
    let (s1, s2) = (school("North").await, school("South").await);
    // Seats with no term, a long term, and one that ends in a few seconds.
    let open = ids(&ok(&a, "/api/v1/seats/purchase", json!({"tenant_id": s1, "count": 6}), 201).await);
    let term = in_seconds(600);
    let termed = ids(&ok(
        &a,
        "/api/v1/seats/purchase",
        json!({"tenant_id": s1, "count": 4, "expires_at": term}),
        201,
    )
    .await);
    let short = ids(&ok(
        &a,
        "/api/v1/seats/purchase",
        json!({"tenant_id": s1, "count": 2, "expires_at": in_seconds(3)}),
        201,
    )
    .await);
    let scope = Scope {
        district,
        schools: [s1, s2],
        seats: open[0]..short[1] + 1,
        learners: vec!["l-alloc", "l-given-back", "l-pending", "l-moved"],
        horizon: in_seconds(86_400).replace('+', "%2B"),
    };

    // A reservation given back, one ended by its deadline on the primary.
    let given_back = ok(
        &a,
        "/api/v1/seats/reserve",
        json!({"tenant_id": s1, "seat_id": open[0], "learner_id": "l-given-back", "ttl_seconds": 60}),
        201,
    )
    .await;
    assert_eq!(given_back["state"], json!("reserved"));
    ok(&a, "/api/v1/seats/release", json!({"seat_id": open[0]}), 200).await;
    ok(
        &a,
        "/api/v1/seats/reserve",
        json!({"tenant_id": s1, "seat_id": open[1], "ttl_seconds": 1}),
        201,
    )
    .await;
    assert_eq!(allocate(&a, open[2], "l-alloc").await.0, 200);
    // Two open seats and one termed seat move to the other school.
    let moved = [open[3], open[4], termed[0]];
    let report = ok(
        &a,
        "/api/v1/seats/transfer",
        json!({"from_tenant_id": s1, "to_tenant_id": s2, "seat_ids": moved}),
        200,
    )
    .await;
    assert_eq!(report["totals"]["transferred"], json!(3), "{report}");
    // Two termed seats renewed (one of them moved: renewed on its new tenant).
    let later = in_seconds(1200);
    let renewed = ok(
        &a,
        "/api/v1/seats/renew",
        json!({"tenant_id": s1, "seat_ids": [termed[1], termed[2]], "expires_at": later}),
        200,
    )
    .await;
    assert_eq!(renewed["totals"]["renewed"], json!(2), "{renewed}");
    ok(
        &a,
        "/api/v1/seats/renew",
        json!({"tenant_id": s2, "seat_ids": [termed[0]], "expires_at": later}),
        200,
    )
    .await;
    // The short reservation ended on the primary, by the system.
    a.until("the 1 s reservation ends", Duration::from_secs(10), || async {
        a.get(&format!("/api/v1/seats/{}", open[1])).await.1["state"] == json!("free")
    })
    .await;
    let (_, audit) = a.get(&format!("/api/v1/seats/{}/audit", open[1])).await;
    let last = audit.as_array().and_then(|i| i.last()).cloned().unwrap_or(Value::Null);
    assert!(
        last["reason"].as_str().unwrap_or("").starts_with("Reservation expired") && last["changed_by"] == "system",
        "{audit}"
    );
    // The short term has ended by now (3 s).
    a.until("the short term ends", Duration::from_secs(10), || async {
        a.get(&format!("/api/v1/seats/summary?tenantId={s1}")).await.1["expired_seats"] == json!(2)
    })
    .await;
    same_reads(&a, &b, &scope, "after reservations, terms, a transfer and renewals").await;
    // Spot checks of what the standby shows (beyond equality).
    let (_, seat) = b.get(&format!("/api/v1/seats/{}", termed[0])).await;
    assert_eq!(seat["tenant_id"], json!(s2), "{seat}");
    assert_eq!(micros(&seat["expires_at"]), micros(&json!(later)), "{seat}");

    // A reservation pending across the failover.
    let pending = ok(
        &a,
        "/api/v1/seats/reserve",
        json!({"tenant_id": s2, "seat_id": open[3], "learner_id": "l-pending", "ttl_seconds": 12}),
        201,
    )
    .await;
    let deadline = micros(&pending["reserved_until"]);
    same_reads(&a, &b, &scope, "with a reservation pending").await;
    let (_, seat) = b.get(&format!("/api/v1/seats/{}", open[3])).await;
    assert_eq!(micros(&seat["reserved_until"]), deadline, "{seat}");

    a.kill9();
    takes_writes(&b, Duration::from_millis(TTL_MS) + Duration::from_secs(8)).await;
    // The new primary ends it at its deadline (its timer, set on promotion).
    b.until("the pending reservation ends", Duration::from_secs(20), || async {
        b.get(&format!("/api/v1/seats/{}", open[3])).await.1["state"] == json!("free")
    })
    .await;
    let (_, audit) = b.get(&format!("/api/v1/seats/{}/audit", open[3])).await;
    let last = audit.as_array().and_then(|i| i.last()).cloned().unwrap_or(Value::Null);
    assert_eq!(last["reason"], json!("Reservation expired"), "{audit}");
    assert_eq!(last["changed_by"], json!("system"), "{audit}");
    assert!(
        micros(&last["created_at"]) >= deadline,
        "ended before its deadline: {audit}"
    );
    // An expired seat is refused; a renewed one is not.
    let (status, body) = allocate(&b, short[0], "l-late").await;
    assert_eq!((status, &body["error_code"]), (409, &json!("SEAT_EXPIRED")), "{body}");
    assert_eq!(allocate(&b, termed[1], "l-renewed").await.0, 200);
    // The moved seats are the new school's.
    let (status, seat) = allocate(&b, open[4], "l-moved").await;
    assert_eq!((status, &seat["tenant_id"]), (200, &json!(s2)), "{seat}");
    let (_, summary) = b.get(&format!("/api/v1/seats/summary?tenantId={s2}")).await;
    assert_eq!(
        (&summary["total_seats"], &summary["assigned_seats"]),
        (&json!(3), &json!(1)),
        "{summary}"
    );
    let (_, summary) = b.get(&format!("/api/v1/seats/summary?tenantId={s1}")).await;
    assert_eq!(summary["total_seats"], json!(9), "{summary}");
    let back = ok(
        &b,
        "/api/v1/seats/transfer",
        json!({"from_tenant_id": s2, "to_tenant_id": s1, "seat_ids": [open[3]]}),
        200,
    )
    .await;
    assert_eq!(back["totals"]["transferred"], json!(1), "{back}");

    // The old primary comes back as a standby: it writes nothing of its
    // own (the reservation that ended while it was down is the new
    // primary's) and answers as the new primary does.
    a.restart();
    a.until("the former primary is a standby", SETTLE, || async {
        allocate(&a, open[5], "nope").await.1["error_code"] == json!("READ_ONLY_STANDBY")
    })
    .await;
    let mut scope = scope;
    scope.learners.push("l-renewed");
    same_reads(&b, &a, &scope, "the former primary, caught up").await;
}
