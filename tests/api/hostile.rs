//! Hostile input at scale: thousands of randomized and mutated requests over
//! raw sockets (so nothing is tidied up by a client library): methods, paths,
//! query strings, headers, framing (Content-Length, chunked) and bodies.
//! Never a 5xx, never a crash; and rejected requests change nothing: the
//! state at the end is exactly what the accepted requests' answers say.
//!
//! `TENANT_FUZZ_REQUESTS` (default 4000) and `TENANT_FUZZ_SEED` scale and
//! replay a run.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::helpers::*;
use super::load::{self, Rng};
use super::raw;

/// What the accepted requests did, learned from their answers only.
#[derive(Default)]
struct Model {
    /// Tenant id → its latest body (name, is_active, ...).
    tenants: BTreeMap<u64, Value>,
    /// Seat id → (tenant, learner or None, audit entries).
    seats: BTreeMap<u64, (u64, Option<String>, usize)>,
    roles: BTreeMap<u64, usize>,
}

impl Model {
    /// Learns from an accepted (2xx) answer.
    fn learn(&mut self, method: &str, path: &str, body: &Value) {
        // The server takes a trailing slash as the same route.
        let route = path.split('?').next().unwrap_or_default().trim_end_matches('/');
        let seat_change = |m: &mut Model, body: &Value| {
            if let Some(id) = body["id"].as_u64() {
                if let Some(seat) = m.seats.get_mut(&id) {
                    seat.1 = body["learner_id"].as_str().map(str::to_owned);
                    seat.2 += 1;
                }
            }
        };
        match method {
            "POST" if route.ends_with("/seats/purchase") => {
                for seat in body.as_array().into_iter().flatten() {
                    if let (Some(id), Some(t)) = (seat["id"].as_u64(), seat["tenant_id"].as_u64()) {
                        self.seats.insert(id, (t, None, 1));
                    }
                }
            }
            "POST" if route.ends_with("/seats/allocate") || route.ends_with("/seats/reclaim") => {
                seat_change(self, body)
            }
            "POST" if route.ends_with("/roles") => {
                *self.roles.entry(body["tenant_id"].as_u64().unwrap_or(0)).or_default() += 1
            }
            "POST" | "PUT" if body["kind"].is_string() => {
                if let Some(id) = body["id"].as_u64() {
                    self.tenants.insert(id, body.clone());
                }
            }
            _ => {}
        }
    }
}

const JUNK: &[&str] = &[
    "0",
    "-1",
    "abc",
    "1.5",
    "99999999999999999999",
    "18446744073709551615",
    "%00",
    "%FF",
    "%ZZ",
    "%2e%2e",
    "..",
    "",
    "🏫",
    "1e3",
    "+1",
    " 1",
    "1%20",
    "%0d%0aX-Injected:%201",
    "\u{0}",
    "a/b",
];
const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "get", "FOO", "G(T", "CONNECT",
];

fn routes(f: &(u64, u64, Vec<u64>)) -> Vec<(&'static str, String, Option<Value>)> {
    let (d, s, seats) = f;
    let (a, b) = (seats[0], seats[1]);
    vec![
        (
            "POST",
            "/api/v1/district".into(),
            Some(json!({"name": "Fuzz District"})),
        ),
        ("GET", format!("/api/v1/district/{d}"), None),
        (
            "POST",
            format!("/api/v1/district/{d}/schools"),
            Some(json!({"name": "Fuzz School"})),
        ),
        ("GET", format!("/api/v1/tenant/{s}"), None),
        (
            "PUT",
            format!("/api/v1/tenant/{s}"),
            Some(json!({"name": "Renamed", "is_active": true})),
        ),
        (
            "POST",
            "/api/v1/seats/purchase".into(),
            Some(json!({"tenant_id": s, "count": 2})),
        ),
        (
            "POST",
            "/api/v1/seats/allocate".into(),
            Some(json!({"seat_id": b, "learner_id": "fuzz_learner"})),
        ),
        (
            "POST",
            "/api/v1/seats/reclaim".into(),
            Some(json!({"seat_id": a, "reason": "fuzz"})),
        ),
        ("GET", format!("/api/v1/seats/summary?tenantId={s}"), None),
        ("GET", format!("/api/v1/seats/{a}"), None),
        ("GET", format!("/api/v1/seats/{a}/audit"), None),
        (
            "POST",
            "/api/v1/roles".into(),
            Some(json!({"user_id": "fuzz_user", "tenant_id": s, "role": "teacher"})),
        ),
        ("GET", format!("/api/v1/roles?tenantId={s}"), None),
        ("GET", "/api/v1/users/fuzz_user/tenants".into(), None),
        ("GET", "/health".into(), None),
    ]
}

fn odd_value(rng: &mut Rng) -> Value {
    match rng.below(12) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(-1),
        3 => json!(0),
        4 => json!(1e300),
        5 => json!(u64::MAX),
        6 => json!(""),
        7 => json!("x".repeat(rng.below(700) as usize)),
        8 => json!([1, {"a": null}]),
        9 => json!({"deep": {"er": [[[]]]}}),
        10 => json!(rng.below(50)),
        _ => json!("\u{202e}\u{0}\u{ffff}"),
    }
}

fn body_bytes(rng: &mut Rng, valid: Option<&Value>) -> Vec<u8> {
    let mut value = valid.cloned().unwrap_or_else(|| json!({}));
    if let Some(obj) = value.as_object_mut() {
        let keys: Vec<String> = obj.keys().cloned().collect();
        for _ in 0..rng.below(3) {
            match rng.below(4) {
                0 if !keys.is_empty() => {
                    obj.insert(rng.pick(&keys).clone(), odd_value(rng));
                }
                1 if !keys.is_empty() => {
                    obj.remove(rng.pick(&keys));
                }
                2 => {
                    obj.insert(format!("k{}", rng.below(9)), odd_value(rng));
                }
                _ => {}
            }
        }
    }
    let mut bytes = match rng.below(10) {
        0 => (0..rng.below(300)).map(|_| rng.next() as u8).collect(),
        1 => vec![b'{'; 1 + rng.below(5000) as usize],
        2 => format!("{{\"name\": \"{}\"}}", "n".repeat(70_000)).into_bytes(),
        _ => value.to_string().into_bytes(),
    };
    for _ in 0..rng.below(3) {
        if bytes.is_empty() {
            break;
        }
        let at = rng.below(bytes.len() as u64) as usize;
        match rng.below(3) {
            0 => bytes[at] ^= 1 << rng.below(8),
            1 => bytes.truncate(at),
            _ => bytes.insert(at, b"\"{}[],:\\"[rng.below(8) as usize]),
        }
    }
    bytes
}

fn mutate_path(rng: &mut Rng, path: &str) -> String {
    let (route, query) = path.split_once('?').map_or((path, None), |(p, q)| (p, Some(q)));
    let mut segments: Vec<String> = route.split('/').map(str::to_owned).collect();
    match rng.below(6) {
        0 => {
            let i = 1 + rng.below(segments.len() as u64 - 1) as usize;
            segments[i] = (*rng.pick(JUNK)).to_owned();
        }
        1 => segments.push((*rng.pick(JUNK)).to_owned()),
        2 => segments.insert(1, "x".repeat(rng.below(9000) as usize)),
        _ => {}
    }
    let mut out = segments.join("/");
    let query = match rng.below(5) {
        0 => Some(format!("tenantId={}", rng.pick(JUNK))),
        1 => Some(format!(
            "tenantId=1&tenantId={}&x={}",
            rng.pick(JUNK),
            "q".repeat(rng.below(3000) as usize)
        )),
        2 => Some("%%%&&==".to_owned()),
        _ => query.map(str::to_owned),
    };
    if let Some(q) = query {
        out.push('?');
        out.push_str(&q);
    }
    out
}

/// Builds one raw request (head + body bytes).
fn request(rng: &mut Rng, method: &str, path: &str, body: Option<Vec<u8>>) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n");
    match rng.below(12) {
        0 => {}
        1 => head.push_str("X-User-ID: \r\n"),
        2 => head.push_str(&format!("X-User-ID: {}\r\n", "u".repeat(300))),
        3 => head.push_str("X-User-ID: a\r\nX-User-ID: b\r\n"),
        _ => head.push_str(&format!("X-User-ID: {ADMIN}\r\n")),
    }
    match rng.below(8) {
        0 => head.push_str("Content-Type: text/plain\r\n"),
        1 => head.push_str("Content-Type: application/json; charset=utf-16\r\n"),
        2 => {}
        _ => head.push_str("Content-Type: application/json\r\n"),
    }
    // Mostly well-formed heads, so most requests reach the routes.
    if rng.chance(3) {
        match rng.below(6) {
            0 => head.push_str(&format!("X-Junk: {}\r\n", "j".repeat(rng.below(20_000) as usize))),
            1 => head.push_str("Bad Header Name: x\r\n"),
            2 => head.push_str("Expect: 100-continue\r\n"),
            3 => head.push_str("Accept: */*\r\n"),
            4 => head.push_str("X-Ctl: a\x01b\r\n"),
            _ => head.push_str("Content-Encoding: gzip\r\n"),
        }
    }
    let mut out = Vec::new();
    let body = body.unwrap_or_default();
    match rng.below(10) {
        // A chunked body, sometimes with broken framing.
        0 => {
            head.push_str("Transfer-Encoding: chunked\r\n\r\n");
            out.extend_from_slice(head.as_bytes());
            if rng.chance(2) {
                out.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
            } else {
                out.extend_from_slice(b"zz\r\n");
            }
            out.extend_from_slice(&body);
            out.extend_from_slice(b"\r\n0\r\n\r\n");
        }
        // A Content-Length that lies (too short or too long).
        1 => {
            let claimed = if rng.chance(2) { body.len() / 2 } else { body.len() + 10 };
            head.push_str(&format!("Content-Length: {claimed}\r\n\r\n"));
            out.extend_from_slice(head.as_bytes());
            out.extend_from_slice(&body);
        }
        2 => {
            head.push_str(&format!("Content-Length: {}\r\nContent-Length: 3\r\n\r\n", body.len()));
            out.extend_from_slice(head.as_bytes());
            out.extend_from_slice(&body);
        }
        _ => {
            head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
            out.extend_from_slice(head.as_bytes());
            out.extend_from_slice(&body);
        }
    }
    out
}

#[tokio::test]
async fn thousands_of_hostile_requests_never_5xx_and_rejected_ones_change_nothing() {
    let total = load::env_u64("TENANT_FUZZ_REQUESTS", 4000);
    let mut rng = Rng::new(load::seed("TENANT_FUZZ_SEED"));
    let app = TestApp::spawn().await;
    let district = app.district("Hostile District").await;
    let school = app.school(district, "Hostile School").await;
    let seats = app.purchase(school, 4).await;
    assert_eq!(app.allocate(seats[0], "held").await.status, 200);
    let mut model = Model::default();
    for t in [district, school] {
        model
            .tenants
            .insert(t, app.get(&format!("/api/v1/tenant/{t}")).await.body);
    }
    for (i, s) in seats.iter().enumerate() {
        model.seats.insert(
            *s,
            (school, (i == 0).then(|| "held".to_owned()), 1 + usize::from(i == 0)),
        );
    }
    let fixture = (district, school, seats.clone());
    let targets = routes(&fixture);
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    let mut unanswered = 0;
    let mut plain_refusals = 0;

    for i in 0..total {
        let (method, path, valid) = rng.pick(&targets).clone();
        let method = if rng.chance(5) { *rng.pick(METHODS) } else { method };
        let path = if rng.chance(2) {
            mutate_path(&mut rng, &path)
        } else {
            path
        };
        let body = (valid.is_some() || rng.chance(6)).then(|| body_bytes(&mut rng, valid.as_ref()));
        let bytes = request(&mut rng, method, &path, body);
        let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
        let Some(raw::Reply { status, body, .. }) = raw::send(app.addr, &bytes, raw::After::HalfClose).await else {
            unanswered += 1;
            continue;
        };
        *statuses.entry(status).or_default() += 1;
        assert!(
            status < 500,
            "#{i}: {status} for {shown:?}: {}",
            String::from_utf8_lossy(&body)
        );
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        if status >= 400 {
            match &json {
                Some(v) => assert!(
                    v["error_code"].is_string() && v["detail"].is_string(),
                    "#{i}: {status} without the error body for {shown:?}: {v}"
                ),
                // hyper's own answer to a request it cannot parse as HTTP.
                None => {
                    assert!(
                        [400, 413, 414, 431].contains(&status) || body.is_empty(),
                        "#{i}: {status} {shown:?}"
                    );
                    plain_refusals += 1;
                }
            }
        } else if let Some(v) = &json {
            model.learn(method, &path, v);
        }
        if i % 250 == 249 {
            assert!(app.healthy().await, "unhealthy after request #{i}");
        }
    }
    assert!(app.healthy().await);

    // Everything observable is what the accepted answers said it would be.
    for (id, body) in &model.tenants {
        let now = app.get(&format!("/api/v1/tenant/{id}")).await;
        assert_eq!(&now.body, body, "tenant {id} changed behind the answers' back");
    }
    let mut per_tenant: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for (id, (tenant, learner, entries)) in &model.seats {
        let seat = app.seat(*id).await;
        assert_eq!(seat["learner_id"].as_str(), learner.as_deref(), "seat {id}: {seat}");
        assert_eq!(app.audit(*id).await.len(), *entries, "seat {id}: audit entries");
        let t = per_tenant.entry(*tenant).or_default();
        t.0 += 1;
        t.1 += u64::from(learner.is_some());
    }
    for (tenant, (total_seats, assigned)) in &per_tenant {
        let summary = app.summary(*tenant).await;
        assert_eq!(
            (summary["total_seats"].as_u64(), summary["assigned_seats"].as_u64()),
            (Some(*total_seats), Some(*assigned)),
            "tenant {tenant}: {summary}"
        );
    }
    for tenant in model.tenants.keys() {
        let roles = app.get(&format!("/api/v1/roles?tenantId={tenant}")).await;
        let listed = roles.body.as_array().map_or(0, Vec::len);
        assert_eq!(
            listed,
            model.roles.get(tenant).copied().unwrap_or(0),
            "tenant {tenant}: roles"
        );
    }
    let next_tenant = model.tenants.keys().max().copied().unwrap_or(0) + 1;
    let next_seat = model.seats.keys().max().copied().unwrap_or(0) + 1;
    assert_eq!(app.get(&format!("/api/v1/tenant/{next_tenant}")).await.status, 404);
    assert_eq!(app.get(&format!("/api/v1/seats/{next_seat}")).await.status, 404);
    let accepted: u64 = statuses.iter().filter(|(s, _)| **s < 300).map(|(_, n)| n).sum();
    let tenants: BTreeSet<u64> = model.tenants.keys().copied().collect();
    eprintln!(
        "hostile: {total} requests; statuses {statuses:?}; {accepted} accepted, {plain_refusals} refused by \
         the HTTP parser, {unanswered} closed without an answer; {} tenants, {} seats checked against the answers",
        tenants.len(),
        model.seats.len()
    );
}
