//! A fixed-seed fuzz of methods, paths, identities and bodies: never a 5xx,
//! and the seat counters stay exact.

use serde_json::{json, Value};

use super::fixture::*;
use super::{refused, request};
use crate::helpers::*;
use crate::load::Rng;

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
