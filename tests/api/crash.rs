//! The built binary as a child process, under load from parallel clients
//! (purchase, allocate, reclaim; see `load.rs`):
//! - kill -9 at random moments, round after round, restarting on the same
//!   data dir: every acknowledged write survives exactly, unanswered ones
//!   happened whole or not at all, and every rule and counter holds;
//! - SIGTERM: every request is answered or refused cleanly, exit code 0,
//!   and a restart shows exactly what was acknowledged;
//! - a data dir locked by a running instance is refused with one line.
//!
//! `TENANT_SOAK_ROUNDS` sets the kill -9 rounds (default 6) for longer soak
//! runs; `TENANT_SOAK_SEED` replays a run's kill points and operations.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::load::{self, lock, Rng, Shared, Spec};
use super::process::{Server, BIN};

fn spec() -> Spec {
    Spec {
        clients: 12,
        seats_per_client: 24,
        learners_per_tenant: 40,
        stop: Arc::new(AtomicBool::new(false)),
    }
}

/// What each test here starts from: the seeded random source (kill points,
/// operations), a fresh data dir (removed when the returned guard drops) and
/// the path inside it, a new ledger, the binary started there, and
/// a district of two schools recorded in the ledger.
async fn opening(name: &str) -> (Rng, tempfile::TempDir, std::path::PathBuf, Shared, Server, Vec<u64>) {
    let rng = Rng::new(load::seed("TENANT_SOAK_SEED"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let ledger = Shared::default();
    let server = Server::start(&data);
    let tenants = load::tenants(&ledger, &server.base, &server.client, name, 2).await;
    (rng, dir, data, ledger, server, tenants)
}

/// Starts the clients on `server` in the background.
fn start_load(
    server: &Server,
    tenants: &[u64],
    ledger: &Shared,
    spec: &Spec,
    seed: u64,
) -> tokio::task::JoinHandle<()> {
    let (base, client, tenants, ledger, spec) = (
        server.base.clone(),
        server.client.clone(),
        tenants.to_vec(),
        Arc::clone(ledger),
        spec.clone(),
    );
    tokio::spawn(async move { load::run(&base, &client, &tenants, &ledger, &spec, seed).await })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_no_acknowledged_write() {
    let rounds = load::env_u64("TENANT_SOAK_ROUNDS", 6);
    let (mut rng, _dir, data, ledger, mut server, mut tenants) = opening("Crash").await;
    let started = Instant::now();
    let mut in_flight_total = 0;
    // The flush delay of the server now running (the first starts with none).
    let mut delay = 0;

    for round in 0..rounds {
        let before = lock(&ledger).stats;
        let load = start_load(&server, &tenants, &ledger, &spec(), rng.next());
        // The kill point: a random moment while the clients are busy. (A
        // deliberate random delay, not a wait for something to happen.)
        let kill_at = Duration::from_millis(60 + rng.below(440));
        tokio::time::sleep(kill_at).await;
        server.kill9();
        load.await.unwrap_or_else(|e| panic!("load: {e}"));
        let stats = lock(&ledger).stats;
        // Before a start restores anything, the offline verifier finds every
        // tenant's chain and records intact: a tenant's last change may lack
        // its trail key, and then its link must extend the chain.
        let verified = Command::new(BIN)
            .args(["audit", "verify", "--data-dir"])
            .arg(&data)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            verified.status.success(),
            "audit verify after kill -9 in round {round}: {}{}",
            String::from_utf8_lossy(&verified.stdout),
            String::from_utf8_lossy(&verified.stderr)
        );

        // Every other round runs on a slow disk (each flush 5 to 25 ms
        // longer): writes wait longer between sled and the disk, so a kill
        // catches many of them there.
        let slow = if round % 2 == 0 { 0 } else { 5 + rng.below(20) };
        server = if slow == 0 {
            Server::start(&data)
        } else {
            Server::start_on_disk(&data, &format!("slow:{slow}"))
        };
        let checked = load::check(&ledger, &server.base, &server.client, false).await;
        in_flight_total += stats.unanswered - before.unanswered;
        let disk = delay;
        delay = slow;
        eprintln!(
            "kill -9 round {round} (flush delay {disk} ms): killed at {kill_at:?} after {} acknowledged writes this round \
             ({} sent, {} refused by rules); {} requests in flight at the kill: {} seat changes \
             found applied, {} not, {} seats of unanswered purchases found; {} seats checked, \
             0 acknowledged writes lost",
            stats.acked - before.acked,
            stats.sent - before.sent,
            stats.refused - before.refused,
            stats.unanswered - before.unanswered,
            checked.pending_applied,
            checked.pending_dropped,
            checked.unnamed_found,
            checked.seats,
        );
        // A new tenant each round: its id must be new too.
        tenants.extend(load::tenants(&ledger, &server.base, &server.client, &format!("Round {round}"), 0).await);
    }
    let stats = lock(&ledger).stats;
    eprintln!(
        "kill -9 soak: {rounds} rounds in {:?}; {} requests sent, {} acknowledged writes, {} rule \
         refusals, {in_flight_total} in flight at kills; 0 acknowledged writes lost",
        started.elapsed(),
        stats.sent,
        stats.acked,
        stats.refused
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_answers_or_refuses_every_request_and_exits_zero() {
    let (mut rng, _dir, data, ledger, mut server, tenants) = opening("Term").await;
    let spec = spec();
    let load = start_load(&server, &tenants, &ledger, &spec, rng.next());
    let term_at = Duration::from_millis(100 + rng.below(300));
    tokio::time::sleep(term_at).await;
    let termed = Instant::now();
    server.sigterm();
    let code = server.exit_code(Duration::from_secs(15)).await;
    let stopped_in = termed.elapsed();
    // Clients stop at their first refused connection.
    spec.stop.store(true, Ordering::Relaxed);
    load.await.unwrap_or_else(|e| panic!("load: {e}"));
    assert_eq!(code, Some(0), "stderr: {}", server.stderr());

    // Strict: a request with no answer must not have happened.
    let server = Server::start(&data);
    let checked = load::check(&ledger, &server.base, &server.client, true).await;
    let stats = lock(&ledger).stats;
    eprintln!(
        "SIGTERM at {term_at:?}: exit 0 after {stopped_in:?}; {} sent, {} acknowledged, {} refused \
         by rules, {} shed, {} cut off unanswered and found not applied; {} seats checked",
        stats.sent, stats.acked, stats.refused, stats.shed, stats.unanswered, checked.seats
    );
}

#[test]
fn a_second_process_on_the_same_data_dir_exits_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let _first = Server::start(&data);
    let out = Command::new(env!("CARGO_BIN_EXE_tenant-service"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("RUST_LOG", "error")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("in use by another tenant-service process"), "{stderr}");
    assert!(stderr.contains(&data.display().to_string()), "{stderr}");
}
