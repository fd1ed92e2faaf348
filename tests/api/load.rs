//! A load generator that keeps a ledger of what the server acknowledged, and
//! the check that compares a (restarted) server with that ledger.
//!
//! Each client owns the seats it bought and changes them one request at a
//! time, so for every seat the ledger knows the acknowledged state exactly,
//! plus at most one request that was sent but never answered (in flight at a
//! crash): that one may or may not have happened, and the check accepts
//! either. Learners are shared by all clients of a tenant, so rule 1 (one
//! seat per learner per tenant) is contested across clients all the time.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

/// xorshift64*: tiny, deterministic, good enough to pick operations.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// An index into a collection of `n` items.
    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    pub fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// A seed from `var` if set, else from the clock; printed so a run can be replayed.
pub fn seed(var: &str) -> u64 {
    let seed = std::env::var(var).ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    eprintln!("{var}={seed}");
    seed
}

/// A positive integer from the environment, or the default.
pub fn env_u64(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Allocate(String),
    Reclaim,
}

#[derive(Debug)]
pub struct SeatTruth {
    pub tenant: u64,
    /// The acknowledged holder (None: free).
    pub holder: Option<String>,
    /// Audit ids seen at the last check: what follows must start with them.
    pub audit: Vec<u64>,
    /// Audit entries owed by acknowledged changes (purchase included).
    pub entries: u64,
    /// Sent and never answered: may or may not have happened.
    pub pending: Option<Op>,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub sent: u64,
    /// 2xx answers: acknowledged writes.
    pub acked: u64,
    /// Rule refusals (400): acknowledged, nothing changed.
    pub refused: u64,
    /// 503 SERVICE_OVERLOADED / SHUTTING_DOWN: refused before anything was done.
    pub shed: u64,
    /// 503 STORE_UNAVAILABLE: not acknowledged, may have reached the store.
    pub store_unavailable: u64,
    /// No answer at all (connection cut).
    pub unanswered: u64,
}

#[derive(Default)]
pub struct Ledger {
    pub seats: BTreeMap<u64, SeatTruth>,
    /// Seat counts of purchases sent and never answered, per tenant.
    pub pending_purchases: BTreeMap<u64, Vec<u64>>,
    /// Seats known to exist (unanswered purchases that turned out to have
    /// happened) whose ids nobody was told; all free, per tenant.
    pub unnamed_seats: BTreeMap<u64, u64>,
    pub tenants: BTreeSet<u64>,
    pub audit_ids: BTreeSet<u64>,
    pub stats: Stats,
    pub violations: Vec<String>,
}

pub type Shared = Arc<Mutex<Ledger>>;

pub fn lock(ledger: &Shared) -> std::sync::MutexGuard<'_, Ledger> {
    ledger.lock().unwrap_or_else(|e| e.into_inner())
}

/// How the clients behave.
#[derive(Clone)]
pub struct Spec {
    pub clients: usize,
    /// A client stops buying once it owns this many seats.
    pub seats_per_client: usize,
    pub learners_per_tenant: u64,
    /// Set to stop every client after its current request.
    pub stop: Arc<AtomicBool>,
}

/// Runs `spec.clients` clients against `base` until each meets `stop`, a
/// connection failure or a failed store; returns when all have stopped.
pub async fn run(base: &str, client: &reqwest::Client, tenants: &[u64], ledger: &Shared, spec: &Spec, seed: u64) {
    let tasks: Vec<_> = (0..spec.clients)
        .map(|c| {
            let base = base.to_owned();
            let client = client.clone();
            let tenant = tenants[c % tenants.len()];
            let ledger = Arc::clone(ledger);
            let spec = spec.clone();
            let rng = Rng::new(seed ^ (c as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            tokio::spawn(async move { client_loop(&base, &client, tenant, &ledger, &spec, rng, c).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap_or_else(|e| panic!("client task: {e}"));
    }
}

enum Sent {
    Answer(u16, Value),
    /// The connection failed before an answer: the request may have happened.
    Unanswered,
}

async fn send(client: &reqwest::Client, url: String, body: Value) -> Sent {
    let res = client
        .post(url)
        .header("X-User-ID", "load_client")
        .json(&body)
        .send()
        .await;
    match res {
        Ok(r) => {
            let status = r.status().as_u16();
            match r.json::<Value>().await {
                Ok(v) => Sent::Answer(status, v),
                Err(_) => Sent::Unanswered,
            }
        }
        Err(_) => Sent::Unanswered,
    }
}

async fn client_loop(
    base: &str,
    client: &reqwest::Client,
    tenant: u64,
    ledger: &Shared,
    spec: &Spec,
    mut rng: Rng,
    c: usize,
) {
    let mut own: Vec<u64> = Vec::new();
    while !spec.stop.load(Ordering::Relaxed) {
        let buy = own.len() < spec.seats_per_client && (own.is_empty() || rng.chance(8));
        if buy {
            let count = 1 + rng.below(6);
            lock(ledger).pending_purchases.entry(tenant).or_default().push(count);
            lock(ledger).stats.sent += 1;
            let sent = send(
                client,
                format!("{base}/api/v1/seats/purchase"),
                json!({"tenant_id": tenant, "count": count}),
            )
            .await;
            let mut l = lock(ledger);
            match sent {
                Sent::Answer(201, seats) => {
                    remove_one(l.pending_purchases.entry(tenant).or_default(), count);
                    l.stats.acked += 1;
                    for seat in seats.as_array().into_iter().flatten() {
                        let Some(id) = seat["id"].as_u64() else {
                            l.violations
                                .push(format!("client {c}: purchase answered an odd seat {seat}"));
                            continue;
                        };
                        let fresh = SeatTruth {
                            tenant,
                            holder: None,
                            audit: Vec::new(),
                            entries: 1,
                            pending: None,
                        };
                        if l.seats.insert(id, fresh).is_some() {
                            l.violations.push(format!("seat id {id} was handed out twice"));
                        }
                        own.push(id);
                    }
                }
                Sent::Answer(status, body) => {
                    if !settle_refusal(&mut l, status, &body, c, "purchase") {
                        return;
                    }
                    remove_one(l.pending_purchases.entry(tenant).or_default(), count);
                }
                Sent::Unanswered => {
                    l.stats.unanswered += 1;
                    return;
                }
            }
            continue;
        }

        let seat = *rng.pick(&own);
        let op = {
            let mut l = lock(ledger);
            let op = match l.seats.get(&seat).map(|s| s.holder.is_some()) {
                Some(false) => Op::Allocate(format!("t{tenant}-l{}", rng.below(spec.learners_per_tenant))),
                _ => Op::Reclaim,
            };
            if let Some(s) = l.seats.get_mut(&seat) {
                s.pending = Some(op.clone());
            }
            l.stats.sent += 1;
            op
        };
        let sent = match &op {
            Op::Allocate(learner) => {
                send(
                    client,
                    format!("{base}/api/v1/seats/allocate"),
                    json!({"seat_id": seat, "learner_id": learner}),
                )
                .await
            }
            Op::Reclaim => send(client, format!("{base}/api/v1/seats/reclaim"), json!({"seat_id": seat})).await,
        };
        let mut l = lock(ledger);
        match sent {
            Sent::Answer(200, body) => {
                l.stats.acked += 1;
                let holder = match &op {
                    Op::Allocate(learner) => Some(learner.clone()),
                    Op::Reclaim => None,
                };
                if body["learner_id"].as_str().map(str::to_owned) != holder {
                    l.violations.push(format!("seat {seat}: {op:?} answered {body}"));
                }
                if let Some(s) = l.seats.get_mut(&seat) {
                    s.holder = holder;
                    s.entries += 1;
                    s.pending = None;
                }
            }
            Sent::Answer(400, body) if body["error_code"] == "LEARNER_ALREADY_HAS_SEAT" => {
                l.stats.refused += 1;
                if let Some(s) = l.seats.get_mut(&seat) {
                    s.pending = None;
                }
            }
            Sent::Answer(status, body) => {
                if !settle_refusal(&mut l, status, &body, c, "seat change") {
                    return;
                }
                if let Some(s) = l.seats.get_mut(&seat) {
                    s.pending = None;
                }
            }
            Sent::Unanswered => {
                l.stats.unanswered += 1;
                return;
            }
        }
    }
}

/// A non-success answer. True when nothing happened and the client may go
/// on; false when the client must stop (the request may have happened).
fn settle_refusal(l: &mut Ledger, status: u16, body: &Value, c: usize, what: &str) -> bool {
    match (status, body["error_code"].as_str()) {
        (503, Some("SERVICE_OVERLOADED" | "SHUTTING_DOWN")) => {
            l.stats.shed += 1;
            true
        }
        (503, Some("STORE_UNAVAILABLE")) => {
            l.stats.store_unavailable += 1;
            false
        }
        _ => {
            // The client owns the seat, so "not available" or "already free"
            // means the server disagrees with what it acknowledged.
            l.violations
                .push(format!("client {c}: {what} answered {status} {body}"));
            false
        }
    }
}

fn remove_one(list: &mut Vec<u64>, value: u64) {
    if let Some(i) = list.iter().position(|v| *v == value) {
        list.swap_remove(i);
    }
}

/// What a check found.
#[derive(Debug, Default, Clone, Copy)]
pub struct Checked {
    pub seats: u64,
    /// Unanswered seat changes found applied / not applied.
    pub pending_applied: u64,
    pub pending_dropped: u64,
    /// Seats from unanswered purchases found to exist.
    pub unnamed_found: u64,
}

/// Compares the server with the ledger: every acknowledged write is there as
/// acknowledged; an unanswered one happened whole or not at all (`strict`:
/// not at all); counters equal a count of the seats; audit entries equal the
/// transitions, chain without gaps, and only grow; `/audit/verify` finds each
/// tenant's hash chain and records intact; no learner holds two seats
/// in a tenant; no seat, audit or tenant id is used twice. Panics on the first
/// difference; afterwards the ledger holds what the server showed.
pub async fn check(ledger: &Shared, base: &str, client: &reqwest::Client, strict: bool) -> Checked {
    let get = |path: String| {
        let client = client.clone();
        let url = format!("{base}{path}");
        async move {
            let res = client
                .get(&url)
                .header("X-User-ID", "checker")
                .send()
                .await
                .unwrap_or_else(|e| panic!("GET {url}: {e}"));
            let status = res.status().as_u16();
            (
                status,
                res.json::<Value>().await.unwrap_or_else(|e| panic!("GET {url}: {e}")),
            )
        }
    };
    // Worked on outside the lock (no guard across the requests below) and
    // put back at the end; the clients have all stopped by now.
    let mut l = std::mem::take(&mut *lock(ledger));
    assert!(l.violations.is_empty(), "clients saw: {:#?}", l.violations);
    let mut out = Checked::default();
    let ids: Vec<u64> = l.seats.keys().copied().collect();
    let mut per_tenant: BTreeMap<u64, (u64, u64, BTreeSet<String>)> = BTreeMap::new();
    for seat in ids {
        let (status, body) = get(format!("/api/v1/seats/{seat}")).await;
        assert_eq!(status, 200, "acknowledged seat {seat} is gone: {body}");
        let (_, audit) = get(format!("/api/v1/seats/{seat}/audit")).await;
        let audit = audit.as_array().cloned().unwrap_or_default();
        let observed = body["learner_id"].as_str().map(str::to_owned);
        let Ledger { seats, audit_ids, .. } = &mut l;
        let truth = seats.get_mut(&seat).unwrap_or_else(|| unreachable!());
        assert_eq!(body["tenant_id"], json!(truth.tenant), "seat {seat} changed tenant");
        let state = body["state"].as_str().unwrap_or_default();
        assert_eq!(
            state,
            if observed.is_some() { "assigned" } else { "free" },
            "seat {seat}: {body}"
        );
        let after_pending = match &truth.pending {
            Some(Op::Allocate(learner)) if truth.holder.is_none() => Some(Some(learner.clone())),
            Some(Op::Reclaim) if truth.holder.is_some() => Some(None),
            _ => None,
        };
        let applied = if observed == truth.holder {
            false
        } else if !strict && after_pending.as_ref() == Some(&observed) {
            true
        } else {
            panic!(
                "seat {seat} holds {observed:?}; acknowledged {:?}, unanswered {:?} (strict: {strict})",
                truth.holder, truth.pending
            );
        };
        if truth.pending.is_some() {
            if applied {
                out.pending_applied += 1;
            } else {
                out.pending_dropped += 1;
            }
        }
        // Audit entries are the transitions: one per acknowledged change, plus
        // the unanswered one if it happened; a chain from the purchase on.
        let owed = truth.entries + u64::from(applied);
        assert_eq!(
            audit.len() as u64,
            owed,
            "seat {seat}: {} audit entries, {owed} transitions: {audit:#?}",
            audit.len()
        );
        let first = &audit[0];
        assert_eq!(
            (first["previous_state"].clone(), first["new_state"].clone()),
            (Value::Null, json!("free")),
            "seat {seat}: first audit entry is not the purchase"
        );
        for pair in audit.windows(2) {
            assert_eq!(
                pair[0]["new_state"], pair[1]["previous_state"],
                "seat {seat}: audit gap"
            );
            assert_eq!(
                pair[0]["new_learner_id"], pair[1]["previous_learner_id"],
                "seat {seat}: audit learner gap"
            );
        }
        let last = &audit[audit.len() - 1];
        assert_eq!(
            last["new_state"], body["state"],
            "seat {seat}: audit disagrees with the seat"
        );
        assert_eq!(
            last["new_learner_id"], body["learner_id"],
            "seat {seat}: audit disagrees"
        );
        let now: Vec<u64> = audit.iter().filter_map(|a| a["id"].as_u64()).collect();
        assert!(
            now.starts_with(&truth.audit),
            "seat {seat}: audit entries changed: were {:?}, now {now:?}",
            truth.audit
        );
        for id in &now[truth.audit.len()..] {
            assert!(audit_ids.insert(*id), "audit id {id} used twice");
        }
        truth.audit = now;
        truth.entries = owed;
        truth.holder = observed.clone();
        truth.pending = None;
        out.seats += 1;

        let t = per_tenant.entry(truth.tenant).or_default();
        t.0 += 1;
        if let Some(learner) = observed {
            t.1 += 1;
            assert!(
                t.2.insert(learner.clone()),
                "learner {learner} holds two seats in tenant {}",
                truth.tenant
            );
        }
    }
    // Tenants with only unanswered purchases still need their counters checked.
    let tenants: BTreeSet<u64> = per_tenant
        .keys()
        .chain(l.pending_purchases.keys())
        .chain(l.unnamed_seats.keys())
        .copied()
        .collect();
    for tenant in tenants {
        let (known, assigned, _) = per_tenant.get(&tenant).cloned().unwrap_or_default();
        let (status, summary) = get(format!("/api/v1/seats/summary?tenantId={tenant}")).await;
        assert_eq!(status, 200, "{summary}");
        let total = summary["total_seats"].as_u64().unwrap_or_default();
        let unnamed_before = l.unnamed_seats.get(&tenant).copied().unwrap_or(0);
        let pending = l.pending_purchases.remove(&tenant).unwrap_or_default();
        let extra = total
            .checked_sub(known + unnamed_before)
            .unwrap_or_else(|| panic!("tenant {tenant}: {total} seats, fewer than the {known} acknowledged"));
        assert!(
            (!strict || extra == 0) && subset_sums(&pending).contains(&extra),
            "tenant {tenant}: {extra} seats beyond the acknowledged ones; unanswered purchases {pending:?}"
        );
        let (status, verified) = get(format!("/api/v1/audit/verify?tenantId={tenant}")).await;
        assert_eq!(
            (status, &verified["intact"]),
            (200, &json!(true)),
            "tenant {tenant}: audit verify: {verified}"
        );
        out.unnamed_found += extra;
        let unnamed = unnamed_before + extra;
        l.unnamed_seats.insert(tenant, unnamed);
        assert_eq!(
            (
                summary["assigned_seats"].as_u64(),
                summary["reserved_seats"].as_u64(),
                summary["free_seats"].as_u64()
            ),
            (Some(assigned), Some(0), Some(known - assigned + unnamed)),
            "tenant {tenant}: counters differ from the seats: {summary}"
        );
    }
    *lock(ledger) = l;
    out
}

fn subset_sums(counts: &[u64]) -> BTreeSet<u64> {
    let mut sums = BTreeSet::from([0]);
    for c in counts {
        let more: Vec<u64> = sums.iter().map(|s| s + c).collect();
        sums.extend(more);
    }
    sums
}

/// Creates a district and `schools` schools; records the tenant ids (a reused
/// id fails the test). Returns the schools, or the district when none.
pub async fn tenants(ledger: &Shared, base: &str, client: &reqwest::Client, name: &str, schools: usize) -> Vec<u64> {
    let post = |path: String, body: Value| {
        let client = client.clone();
        let url = format!("{base}{path}");
        async move {
            let res = client
                .post(&url)
                .header("X-User-ID", "load_admin")
                .json(&body)
                .send()
                .await
                .unwrap_or_else(|e| panic!("POST {url}: {e}"));
            assert_eq!(res.status().as_u16(), 201, "POST {url}");
            let v: Value = res.json().await.unwrap_or_else(|e| panic!("POST {url}: {e}"));
            v["id"].as_u64().unwrap_or_else(|| panic!("no id: {v}"))
        }
    };
    let district = post("/api/v1/district".into(), json!({"name": name})).await;
    let mut ids = vec![district];
    for s in 0..schools {
        ids.push(
            post(
                format!("/api/v1/district/{district}/schools"),
                json!({"name": format!("{name} school {s}")}),
            )
            .await,
        );
    }
    let mut l = lock(ledger);
    for id in &ids {
        assert!(l.tenants.insert(*id), "tenant id {id} used twice");
    }
    if schools == 0 {
        ids
    } else {
        ids.split_off(1)
    }
}
