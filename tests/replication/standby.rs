//! The warm standby and failover, on a three-server JetStream cluster (R3
//! stream and lease bucket).
//!
//! The lease TTL is 2 s where only the service dies, and longer where a
//! NATS server dies: a killed server's streams are leaderless until an
//! election (seconds), which a TTL must outlast for a primary to keep its
//! lease through it (docs/FEED.md).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use super::harness::{nats_server, one_cluster_at_a_time, read_stream, stream_leader, Nats, Service};
use super::{allocate, replication, seed, SETTLE, STREAM};

const TTL_MS: u64 = 2000;

fn config(urls: &[String], mode: &str, node: &str) -> String {
    config_ttl(urls, mode, node, TTL_MS)
}

/// Every instance is told of all three servers (`urls`); `reach` limits one
/// to some of them (a partition: its only server dies).
fn config_ttl(urls: &[String], mode: &str, node: &str, ttl_ms: u64) -> String {
    replication(
        urls,
        mode,
        &format!(
            "node_id = {node:?}\nleadership = true\nreplicas = 3\nlease_ttl_ms = {ttl_ms}\nsync_timeout_ms = 3000"
        ),
    )
}

fn urls(cluster: &[Nats]) -> Vec<String> {
    cluster.iter().map(Nats::url).collect()
}

/// Waits until `s` takes writes (a district is created); how long it took.
async fn takes_writes(s: &Service, within: Duration) -> Duration {
    let start = Instant::now();
    s.until("takes writes", within, || async {
        s.post("/api/v1/district", json!({"name": "Probe"})).await.0 == 201
    })
    .await;
    start.elapsed()
}

/// Every acknowledged allocation is on `s`, and its counters, seats and
/// chain agree with a per-seat check.
async fn holds(s: &Service, school: u64, first: u64, seats: u64, acked: &HashMap<u64, String>) {
    let mut assigned = 0;
    for seat in first..first + seats {
        let (status, body) = s.get(&format!("/api/v1/seats/{seat}")).await;
        assert_eq!(status, 200, "{body}");
        if body["state"] == json!("assigned") {
            assigned += 1;
        }
        if let Some(learner) = acked.get(&seat) {
            assert_eq!(
                body["learner_id"],
                json!(learner),
                "acknowledged write lost: seat {seat}: {body}"
            );
        }
    }
    let (_, summary) = s.get(&format!("/api/v1/seats/summary?tenantId={school}")).await;
    assert_eq!(summary["assigned_seats"], json!(assigned), "{summary}");
    assert_eq!(summary["total_seats"], json!(seats));
    let (status, verify) = s.get(&format!("/api/v1/audit/verify?tenantId={school}")).await;
    assert_eq!(status, 200, "{verify}");
    assert_eq!(verify["intact"], json!(true), "{verify}");
}

/// `b` shows every seat as `a` does (state and learner), and the same
/// summary, with its chain intact.
async fn same_seats(a: &Service, b: &Service, school: u64, first: u64, seats: u64) {
    for seat in first..first + seats {
        let (_, x) = a.get(&format!("/api/v1/seats/{seat}")).await;
        let (_, y) = b.get(&format!("/api/v1/seats/{seat}")).await;
        assert_eq!(
            (&x["state"], &x["learner_id"]),
            (&y["state"], &y["learner_id"]),
            "seat {seat}: {x} vs {y}"
        );
    }
    let (_, x) = a.get(&format!("/api/v1/seats/summary?tenantId={school}")).await;
    let (_, y) = b.get(&format!("/api/v1/seats/summary?tenantId={school}")).await;
    assert_eq!(x, y);
    let (status, verify) = b.get(&format!("/api/v1/audit/verify?tenantId={school}")).await;
    assert_eq!(status, 200, "{verify}");
    assert_eq!(verify["intact"], json!(true), "{verify}");
}

/// Waits until `b` has caught up with `a` on every seat of the school.
async fn caught_up(a: &Service, b: &Service, school: u64, first: u64, seats: u64) {
    b.until("caught up with the primary", SETTLE, || async {
        for seat in (first..first + seats).step_by(7).chain([first + seats - 1]) {
            let (_, x) = a.get(&format!("/api/v1/seats/{seat}")).await;
            let (_, y) = b.get(&format!("/api/v1/seats/{seat}")).await;
            if x["learner_id"] != y["learner_id"] {
                return false;
            }
        }
        let (_, x) = a.get(&format!("/api/v1/seats/summary?tenantId={school}")).await;
        let (_, y) = b.get(&format!("/api/v1/seats/summary?tenantId={school}")).await;
        x == y
    })
    .await;
    same_seats(a, b, school, first, seats).await;
}

/// A primary `a` and its standby `b` on the cluster, a school of `seats`
/// seats bought on `a` and followed by `b`: (a, b, school, first seat).
async fn pair(urls: &[String], mode: &str, seats: u64) -> (Service, Service, u64, u64) {
    let a = Service::start(&config(urls, mode, "a"));
    takes_writes(&a, SETTLE).await;
    let b = Service::start(&config(urls, mode, "b"));
    let (_, school, first) = seed(&a, seats).await;
    b.until("the standby follows", SETTLE, || async {
        b.get(&format!("/api/v1/seats/summary?tenantId={school}")).await.1["total_seats"] == json!(seats)
    })
    .await;
    (a, b, school, first)
}

/// Allocation load on the primary `a` for 0.8 s (on `seats`: each round
/// its own, so that no round runs out), then kill -9 of it; the standby
/// `b` takes writes within the TTL plus a few seconds: how long it took
/// from the kill.
async fn kill_under_load(
    a: &mut Service,
    b: &Service,
    seats: std::ops::Range<u64>,
    acked: &Arc<Mutex<HashMap<u64, String>>>,
    round: usize,
) -> Duration {
    let free = Arc::new(Mutex::new(seats.rev().collect()));
    let (stop, tasks) = load(a, free, Arc::clone(acked), round);
    tokio::time::sleep(Duration::from_millis(800)).await;
    a.kill9();
    let _ = stop.send(true);
    for t in tasks {
        let _ = t.await;
    }
    takes_writes(b, Duration::from_millis(TTL_MS) + Duration::from_secs(8)).await
}

/// The killed primary `a` restarts, comes back as a standby and catches up
/// with `b` (rebuilt from the feed if its store left the stream's history).
/// `taken_back`: seats whose learner there `a` must never show again (a
/// change of its own the failover took back), from its first answer on.
async fn comes_back_as_standby(
    a: &mut Service,
    b: &Service,
    school: u64,
    first: u64,
    seats: u64,
    taken_back: &[(u64, String)],
) {
    a.restart();
    a.until("the former primary is a standby", SETTLE, || async {
        for (seat, learner) in taken_back {
            let (status, body) = a.get(&format!("/api/v1/seats/{seat}")).await;
            assert!(
                !(status == 200 && body["learner_id"] == json!(learner)),
                "a change the failover took back is shown: {body}"
            );
        }
        allocate(a, first, "nope").await.1["error_code"] == json!("READ_ONLY_STANDBY")
    })
    .await;
    caught_up(b, a, school, first, seats).await;
}

/// Allocation load on `s` from 16 clients until `stop`: the acknowledged
/// ones (seat -> learner).
fn load(
    s: &Service,
    seats: Arc<Mutex<Vec<u64>>>,
    acked: Arc<Mutex<HashMap<u64, String>>>,
    round: usize,
) -> (tokio::sync::watch::Sender<bool>, Vec<tokio::task::JoinHandle<()>>) {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let tasks = (0..16)
        .map(|c| {
            let (client, base) = (s.client.clone(), s.base.clone());
            let (seats, acked, stopped) = (Arc::clone(&seats), Arc::clone(&acked), stopped.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while !*stopped.borrow() {
                    let Some(seat) = seats.lock().unwrap_or_else(|e| e.into_inner()).pop() else {
                        return;
                    };
                    let learner = format!("r{round}c{c}i{i}");
                    i += 1;
                    let res = client
                        .post(format!("{base}/api/v1/seats/allocate"))
                        .header("X-User-ID", "admin_7")
                        .json(&json!({"seat_id": seat, "learner_id": learner}))
                        .send()
                        .await;
                    match res {
                        Ok(r) if r.status().as_u16() == 200 => {
                            acked.lock().unwrap_or_else(|e| e.into_inner()).insert(seat, learner);
                        }
                        _ => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
            })
        })
        .collect();
    (stop, tasks)
}

/// kill -9 of the primary under allocation load in sync mode, 5 rounds on
/// an R3 cluster: the standby takes over within the lease TTL plus a few
/// seconds, every write the old primary acknowledged is on the new one
/// (counters, seats and chain checked seat by seat), the standby refuses
/// writes naming the primary and answers reads with its lag, and the
/// killed one comes back as a standby and catches up (rebuilt from the
/// feed if it held a change it never acknowledged and the stream refused).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sync_failover_under_load_loses_no_acknowledged_write() {
    let Some(bin) = nats_server() else { return };
    let _one = one_cluster_at_a_time().await;
    let cluster = Nats::cluster(&bin);
    const SEATS: u64 = 2500;
    const ROUND: u64 = SEATS / 5;
    let (mut a, mut b, school, first) = pair(&urls(&cluster), "sync", SEATS).await;
    let acked: Arc<Mutex<HashMap<u64, String>>> = Arc::new(Mutex::new(HashMap::new()));

    // The standby: reads with a lag header, writes refused naming the primary.
    let res = b
        .client
        .get(format!("{}/api/v1/seats/summary?tenantId={school}", b.base))
        .header("X-User-ID", "admin_7")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        res.headers().contains_key("x-replication-lag-ms"),
        "{:?}",
        res.headers()
    );
    let (status, body) = allocate(&b, first, "nope").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error_code"], json!("READ_ONLY_STANDBY"));
    assert!(body["detail"].as_str().unwrap_or("").contains(&a.base), "{body}");

    let mut failovers = Vec::new();
    for round in 0..5 {
        let before = acked.lock().unwrap_or_else(|e| e.into_inner()).len();
        let seats = first + round as u64 * ROUND..first + (round as u64 + 1) * ROUND;
        failovers.push(kill_under_load(&mut a, &b, seats, &acked, round).await);
        let acked_now = acked.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert!(acked_now.len() > before, "round {round}: the load made writes");
        holds(&b, school, first, SEATS, &acked_now).await;
        comes_back_as_standby(&mut a, &b, school, first, SEATS, &[]).await;
        std::mem::swap(&mut a, &mut b);
    }
    let acked_n = acked.lock().unwrap_or_else(|e| e.into_inner()).len();
    let rebuilt = a.set_aside().len() + b.set_aside().len();
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!(
            "sync failover (R3): 5 rounds, {acked_n} acknowledged allocations, none lost; takeover times \
             {failovers:?}; former primaries rebuilt from the feed: {rebuilt}\n"
        )
        .as_bytes(),
    );
    assert!(acked_n > 20, "the load made writes: {acked_n}");
}

/// The same in async mode, 3 rounds: a failover can lose what the old
/// primary acknowledged but had not yet published (measured, each round).
/// The restarted old primary publishes it (the feed gets it, after the new
/// primary's epoch marker, in its commit order, refused by every reader),
/// and, having left the stream's history, rebuilds its store from the feed
/// and comes back a standby equal to the new primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn async_failover_window_is_measured_and_the_old_primary_publishes_it() {
    let Some(bin) = nats_server() else { return };
    let _one = one_cluster_at_a_time().await;
    let cluster = Nats::cluster(&bin);
    const SEATS: u64 = 2400;
    const ROUND: u64 = SEATS / 3;
    let (mut a, mut b, school, first) = pair(&urls(&cluster), "async", SEATS).await;
    let mut windows = Vec::new();
    let (mut a_node, mut b_node) = ("a", "b");
    for round in 0..3 {
        let acked: Arc<Mutex<HashMap<u64, String>>> = Arc::new(Mutex::new(HashMap::new()));
        let seats = first + round as u64 * ROUND..first + (round as u64 + 1) * ROUND;
        kill_under_load(&mut a, &b, seats, &acked, round).await;
        let acked = acked.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert!(!acked.is_empty(), "round {round}: the load made writes");
        let mut lost = Vec::new();
        for (seat, learner) in &acked {
            if b.get(&format!("/api/v1/seats/{seat}")).await.1["learner_id"] != json!(learner) {
                lost.push(*seat);
            }
        }
        // The new primary takes writes on what the old one lost: the two
        // histories now differ on those seats.
        for seat in &lost {
            assert_eq!(allocate(&b, *seat, &format!("new{seat}")).await.0, 200);
        }
        windows.push((lost.len(), acked.len()));
        let aside = a.set_aside().len();
        let taken_back: Vec<(u64, String)> = lost.iter().map(|s| (*s, acked[s].clone())).collect();
        comes_back_as_standby(&mut a, &b, school, first, SEATS, &taken_back).await;
        if !lost.is_empty() {
            assert!(a.set_aside().len() > aside, "a store holding lost writes was rebuilt");
        }
        // The feed got every write the old primary acknowledged, each once,
        // in its commit order per tenant.
        let messages = read_stream(&cluster[0].url(), STREAM).await;
        // The old primary's messages of this round: its latest epoch's (a
        // rebuilt store numbers its changes from 1 again).
        let theirs = |m: &serde_json::Value| m["origin"] == json!(a_node) && m["tenant_id"] == json!(school);
        let epoch = messages
            .iter()
            .filter(|(_, m)| theirs(m))
            .filter_map(|(_, m)| m["epoch"].as_u64())
            .max();
        let mut on_feed: HashMap<u64, String> = HashMap::new();
        let mut ns = Vec::new();
        for (_, m) in messages
            .iter()
            .filter(|(_, m)| theirs(m) && m["epoch"].as_u64() == epoch)
        {
            for c in m["changes"].as_array().cloned().unwrap_or_default() {
                ns.push((m["epoch"].as_u64().unwrap_or(0), c["n"].as_u64().unwrap_or(0)));
                for seat in c["detail"]["seats"].as_array().cloned().unwrap_or_default() {
                    if let (Some(id), Some(l)) = (seat["seat_id"].as_u64(), seat["state"]["learner_id"].as_str()) {
                        on_feed.insert(id, l.to_owned());
                    }
                }
            }
        }
        for (seat, learner) in &acked {
            assert_eq!(
                on_feed.get(seat),
                Some(learner),
                "acknowledged write of seat {seat} on the feed"
            );
        }
        let mut sorted = ns.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(ns, sorted, "each change once, in commit order");
        std::mem::swap(&mut a, &mut b);
        std::mem::swap(&mut a_node, &mut b_node);
    }
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!(
            "async failover (R3): acknowledged by the old primary but not on the new one, per round \
             (lost, acknowledged): {windows:?}\n"
        )
        .as_bytes(),
    );
}

/// A primary cut off from NATS (its only server killed; the other two keep
/// the cluster's quorum) stops acknowledging writes before the standby
/// takes over; what it acknowledged after the cut (async mode: the window a
/// failover loses) reaches the feed once it reconnects, and having left the
/// stream's history, it rebuilds from the feed (in the same process) and
/// follows the new primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partitioned_primary_stops_acknowledging_before_the_standby_takes_over() {
    let Some(bin) = nats_server() else { return };
    let _one = one_cluster_at_a_time().await;
    let mut cluster = Nats::cluster(&bin);
    let urls = urls(&cluster);
    const TTL: u64 = 4000;
    const SEATS: u64 = 400;
    let a = Service::start(&config_ttl(&urls[..1], "async", "a", TTL));
    takes_writes(&a, SETTLE).await;
    let b = Service::start(&config_ttl(&urls[1..], "async", "b", TTL));
    let (_, school, first) = seed(&a, SEATS).await;
    b.until("the standby follows", SETTLE, || async {
        b.get(&format!("/api/v1/seats/summary?tenantId={school}")).await.1["total_seats"] == json!(SEATS)
    })
    .await;
    cluster[0].kill();
    let cut = Instant::now();
    // The standby, probed all along: when it first takes a write.
    let probe = {
        let (client, base) = (b.client.clone(), b.base.clone());
        tokio::spawn(async move {
            loop {
                let res = client
                    .post(format!("{base}/api/v1/district"))
                    .header("X-User-ID", "admin_7")
                    .json(&json!({"name": "Probe"}))
                    .send()
                    .await;
                if res.is_ok_and(|r| r.status().as_u16() == 201) {
                    return Instant::now();
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    // The cut primary, tried all along too (until the standby took over and
    // a second more): every write it acknowledges, and when.
    let mut acks = Vec::new();
    let mut refused_at = None;
    let mut seat = first;
    let took_over = loop {
        let (status, body) = allocate(&a, seat, &format!("p{seat}")).await;
        let at = Instant::now();
        match status {
            200 => {
                acks.push((seat, at));
                seat += 1;
            }
            _ => {
                assert_eq!(status, 503, "{body}");
                refused_at.get_or_insert(at);
            }
        }
        if probe.is_finished() && refused_at.is_some_and(|r| r.elapsed() > Duration::from_secs(1)) {
            break probe.await.unwrap_or_else(|e| panic!("probe: {e}"));
        }
        assert!(
            cut.elapsed() < Duration::from_millis(TTL) + Duration::from_secs(30),
            "the standby never took over"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let refused_at = refused_at.unwrap_or_else(|| panic!("the cut primary never refused"));
    let after_cut = acks.len();
    if let Some((_, last)) = acks.last() {
        assert!(*last < refused_at, "an acknowledgment after the first refusal");
        assert!(
            *last < took_over,
            "both acknowledged: the cut primary at {last:?}, the standby at {took_over:?}"
        );
    }
    assert!(
        refused_at < took_over,
        "the cut primary stopped only after the standby took over"
    );
    let mut lost = 0;
    for s in &(first..seat).collect::<Vec<_>>() {
        if b.get(&format!("/api/v1/seats/{s}")).await.1["learner_id"] != json!(format!("p{s}")) {
            lost += 1;
            // The new primary gives that seat to someone else.
            assert_eq!(allocate(&b, *s, &format!("b{s}")).await.0, 200);
        }
    }
    // The cut ends: the old primary finds the lease gone, publishes what it
    // acknowledged (refused by the epoch rule), rebuilds and follows.
    cluster[0].start();
    if lost > 0 {
        a.until("the old primary rebuilt", Duration::from_secs(60), || async {
            !a.set_aside().is_empty()
        })
        .await;
    }
    a.until("the old primary is a standby", SETTLE, || async {
        allocate(&a, first + SEATS - 1, "x").await.1["error_code"] == json!("READ_ONLY_STANDBY")
    })
    .await;
    caught_up(&b, &a, school, first, SEATS).await;
    // Every write it acknowledged after the cut is on the feed (after the
    // new primary's marker, refused by every reader).
    let messages = read_stream(&urls[1], STREAM).await;
    let on_feed: HashMap<u64, String> = messages
        .iter()
        .filter(|(_, m)| m["origin"] == json!("a") && m["tenant_id"] == json!(school))
        .flat_map(|(_, m)| m["changes"].as_array().cloned().unwrap_or_default())
        .flat_map(|c| c["detail"]["seats"].as_array().cloned().unwrap_or_default())
        .filter_map(|seat| {
            Some((
                seat["seat_id"].as_u64()?,
                seat["state"]["learner_id"].as_str()?.to_owned(),
            ))
        })
        .collect();
    for (seat, _) in &acks {
        assert_eq!(
            on_feed.get(seat),
            Some(&format!("p{seat}")),
            "acknowledged write of seat {seat} on the feed"
        );
    }
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!(
            "partition: refused {:?} after the cut, standby took writes {:?} after it; {after_cut} acknowledged \
             after the cut, {lost} of them not on the standby (async window); the old primary rebuilt: {}\n",
            refused_at - cut,
            took_over - cut,
            !a.set_aside().is_empty()
        )
        .as_bytes(),
    );
}

/// One NATS server of three killed (the one leading the stream): nothing
/// stops, in sync mode, async mode, and for a primary with a standby. All
/// three down: the feed alone in async mode keeps serving locally; sync
/// mode and the primary with a standby answer 503. All recover when NATS
/// returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_servers_down_one_then_all() {
    let Some(bin) = nats_server() else { return };
    let _one = one_cluster_at_a_time().await;
    let mut cluster = Nats::cluster(&bin);
    let urls = urls(&cluster);
    let feed_only = |mode: &str, node: &str| {
        replication(
            &urls,
            mode,
            &format!("node_id = {node:?}\nreplicas = 3\nsync_timeout_ms = 12000"),
        )
    };
    let sync = Service::start(&feed_only("sync", "s"));
    let asyn = Service::start(&feed_only("async", "y"));
    // With the default lease TTL (20 s): longer than an election.
    let lead_cfg = |node: &str| {
        replication(
            &urls,
            "async",
            &format!("node_id = {node:?}\nleadership = true\nreplicas = 3\nsync_timeout_ms = 12000"),
        )
    };
    let lead = Service::start(&lead_cfg("l"));
    takes_writes(&sync, SETTLE).await;
    takes_writes(&lead, Duration::from_secs(40)).await;
    let follower = Service::start(&lead_cfg("f"));
    let (_, _, s_first) = seed(&sync, 200).await;
    let (_, _, a_first) = seed(&asyn, 200).await;
    let (_, _, l_first) = seed(&lead, 200).await;
    let leader = stream_leader(&urls[0], STREAM)
        .await
        .unwrap_or_else(|| panic!("the stream has no leader"));
    // The cluster's servers are n0, n1, n2.
    let down: usize = leader
        .strip_prefix('n')
        .and_then(|i| i.parse().ok())
        .unwrap_or_else(|| panic!("leader {leader}"));
    cluster[down].kill();
    let killed = Instant::now();
    let mut i = 0;
    let mut slowest = Duration::ZERO;
    while killed.elapsed() < Duration::from_secs(12) {
        for (s, first, who) in [
            (&sync, s_first, "sync"),
            (&asyn, a_first, "async"),
            (&lead, l_first, "primary"),
        ] {
            let started = Instant::now();
            let (status, body) = allocate(s, first + i, &format!("{who}{i}")).await;
            assert_eq!(status, 200, "{who}, one NATS server of three down: {body}");
            slowest = slowest.max(started.elapsed());
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let one_down = i;
    for (n, node) in cluster.iter_mut().enumerate() {
        if n != down {
            node.kill();
        }
    }
    for (s, first, who) in [(&sync, s_first, "sync"), (&lead, l_first, "primary")] {
        s.until(&format!("{who} refuses"), Duration::from_secs(40), || async {
            let (status, body) = allocate(s, first + 150, "refused").await;
            if status == 503 {
                assert_eq!(body["error_code"], json!("REPLICATION_UNAVAILABLE"), "{body}");
            }
            status == 503
        })
        .await;
    }
    for k in 0..5 {
        let (status, body) = allocate(&asyn, a_first + 100 + k, &format!("alone{k}")).await;
        assert_eq!(status, 200, "async serves locally: {body}");
    }
    assert!(
        asyn.metric("tenant_feed_outbox_depth").await >= 5.0,
        "the outbox holds them"
    );
    for n in cluster.iter_mut() {
        n.start();
    }
    sync.until("sync recovers", Duration::from_secs(60), || async {
        allocate(&sync, s_first + 160, "back").await.0 == 200
    })
    .await;
    asyn.until("the async outbox drains", Duration::from_secs(60), || async {
        asyn.metric("tenant_feed_outbox_depth").await == 0.0
    })
    .await;
    // The pair: whichever holds the lease now takes writes.
    lead.until("a primary takes writes again", Duration::from_secs(90), || async {
        for s in [&lead, &follower] {
            if allocate(s, l_first + 160, "back").await.0 == 200 {
                return true;
            }
        }
        false
    })
    .await;
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!(
            "NATS down: with the stream's leader ({leader}) killed, {one_down} rounds of writes over 12 s all \
             acknowledged, slowest {slowest:?}\n"
        )
        .as_bytes(),
    );
}
