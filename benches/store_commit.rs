//! Durable transitions per second through the store's group commit, next to
//! the raw write+fdatasync rate of the same data directory, in one run.
//!
//! `cargo bench --bench store_commit`
//!
//! A transition is what an allocation writes: `put_seat_change` (the seat's
//! record and its audit entry in one sled batch) and then `durable(seq)`,
//! i.e. the writer waits until a flush covers its write. Writers are tokio
//! tasks on a multi-thread runtime, each on its own seats, for a fixed time at
//! 1, 8 and 64 concurrent writers.
//!
//! The raw rate appends a small record to a file in the same directory and
//! calls `sync_data` (fdatasync) after each, single writer: what one fsync per
//! request would allow. It is measured before and after the group-commit runs.
//!
//! Environment: BENCH_SECS (seconds per run, default 3).

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{f0, f1, f2, table};
use tenant_service::domain::{Audit, AuditId, Id, LearnerId, SeatId, SeatState, TenantId, Timestamp, UserId};
use tenant_service::store::records::SeatRecord;
use tenant_service::store::{IdSpace, Store};

const WRITERS: [usize; 3] = [1, 8, 64];

fn id<T: Id>(n: u64) -> T {
    T::new(n).unwrap_or_else(|| panic!("id {n} is not positive"))
}

struct Raw {
    ops: u64,
    elapsed: Duration,
    worst: Duration,
}

impl Raw {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
}

/// Appends a 128-byte record and fdatasyncs, back to back, for `duration`.
fn raw_fsync(dir: &Path, name: &str, duration: Duration) -> Raw {
    let path = dir.join(name);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let record = [0x5au8; 128];
    let started = Instant::now();
    let mut ops = 0;
    let mut worst = Duration::ZERO;
    while started.elapsed() < duration {
        let t = Instant::now();
        file.write_all(&record).unwrap_or_else(|e| panic!("write: {e}"));
        file.sync_data().unwrap_or_else(|e| panic!("fdatasync: {e}"));
        worst = worst.max(t.elapsed());
        ops += 1;
    }
    let elapsed = started.elapsed();
    drop(file);
    let _ = std::fs::remove_file(&path);
    Raw { ops, elapsed, worst }
}

struct Commit {
    writers: usize,
    ops: u64,
    elapsed: Duration,
    flushes: u64,
    flush_micros: u64,
    /// Per-transition latency (write + wait for durability), microseconds, sorted.
    latencies: Vec<u32>,
}

impl Commit {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    fn pct_ms(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies.len() as f64 * q).ceil() as usize).clamp(1, self.latencies.len()) - 1;
        f64::from(self.latencies[i]) / 1000.0
    }
}

async fn group_commit(store: Arc<Store>, writers: usize, duration: Duration, next_seat: Arc<AtomicU64>) -> Commit {
    let stop = Arc::new(AtomicBool::new(false));
    let before = store.flush_stats();
    let tenant: TenantId = id(1);
    let by = UserId::parse("bench_admin").unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let store = Arc::clone(&store);
        let stop = Arc::clone(&stop);
        let next_seat = Arc::clone(&next_seat);
        let by = by.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let n = next_seat.fetch_add(1, Ordering::Relaxed);
                let seat: SeatId = id(n);
                let learner = LearnerId::parse(&format!("learner-{n:08}")).unwrap_or_else(|e| panic!("{e}"));
                let t = Instant::now();
                let now = Timestamp::now();
                let record = SeatRecord {
                    tenant_id: tenant,
                    state: SeatState::Assigned,
                    learner_id: Some(learner.clone()),
                    reserved_at: None,
                    assigned_at: Some(now),
                    updated_at: now,
                };
                let audit_id = store.ids(IdSpace::Audit, 1).unwrap_or_else(|e| panic!("ids: {e}"));
                let audit = Audit {
                    id: id::<AuditId>(audit_id),
                    seat_id: seat,
                    previous_state: Some(SeatState::Free),
                    new_state: SeatState::Assigned,
                    previous_learner_id: None,
                    new_learner_id: Some(learner),
                    changed_by: by.clone(),
                    reason: "Seat allocated to learner".into(),
                    created_at: now,
                };
                // What the actor does per transition: one chain link, then
                // the seat, the audit entry and its trail key in one batch.
                let hash = tenant_service::store::records::chain(&[0; 32], tenant, &audit);
                let seq = store
                    .put_seat_change(tenant, seat, &record, &audit, hash)
                    .unwrap_or_else(|e| panic!("put: {e}"));
                store.durable(seq).await.unwrap_or_else(|e| panic!("durable: {e}"));
                latencies.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
            }
            latencies
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap_or_else(|e| panic!("writer: {e}")));
    }
    // Every transition counted was durable when its writer got it back.
    let elapsed = started.elapsed();
    let after = store.flush_stats();
    latencies.sort_unstable();
    Commit {
        writers,
        ops: latencies.len() as u64,
        elapsed,
        flushes: after.flushes - before.flushes,
        flush_micros: after.flush_micros - before.flush_micros,
        latencies,
    }
}

fn main() {
    let secs = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let duration = Duration::from_secs(secs);
    let temp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let dir = temp.path().join("data");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir: {e}"));

    let raw_before = raw_fsync(&dir, "raw-fsync-before.bin", duration);

    let (store, _) = Store::open(&dir).unwrap_or_else(|e| panic!("open: {e}"));
    let rt = common::runtime("writers", 0);
    let next_seat = Arc::new(AtomicU64::new(1));
    let mut runs = Vec::new();
    for writers in WRITERS {
        runs.push(rt.block_on(group_commit(
            Arc::clone(&store),
            writers,
            duration,
            Arc::clone(&next_seat),
        )));
    }
    store.close();
    drop(store);
    drop(rt);

    let raw_after = raw_fsync(&dir, "raw-fsync-after.bin", duration);
    let raw = (raw_before.rate() + raw_after.rate()) / 2.0;

    println!(
        "\nstore_commit: {} cores; data dir {} (temporary); {} s per run",
        common::cores(),
        temp.path().display(),
        secs
    );
    table(
        "Raw write(128 B) + fdatasync, one writer, same directory",
        &["when", "ops", "ops/s", "mean ms", "worst ms"],
        &[&raw_before, &raw_after]
            .iter()
            .zip(["before", "after"])
            .map(|(r, when)| {
                vec![
                    when.to_string(),
                    r.ops.to_string(),
                    f0(r.rate()),
                    f2(r.elapsed.as_secs_f64() * 1000.0 / r.ops.max(1) as f64),
                    f2(r.worst.as_secs_f64() * 1000.0),
                ]
            })
            .collect::<Vec<_>>(),
    );
    table(
        &format!(
            "Group commit: durable transitions/s (put_seat_change + durable); ratio = rate ÷ raw fsync rate ({} ops/s, mean of before and after)",
            f0(raw)
        ),
        &[
            "writers",
            "transitions/s",
            "ratio",
            "flushes/s",
            "writes/flush",
            "mean flush ms",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
        ],
        &runs
            .iter()
            .map(|r| {
                vec![
                    r.writers.to_string(),
                    f0(r.rate()),
                    format!("{}×", f2(r.rate() / raw)),
                    f0(r.flushes as f64 / r.elapsed.as_secs_f64()),
                    f1(r.ops as f64 / r.flushes.max(1) as f64),
                    f2(r.flush_micros as f64 / 1000.0 / r.flushes.max(1) as f64),
                    f2(r.pct_ms(0.50)),
                    f2(r.pct_ms(0.99)),
                    f2(r.pct_ms(0.999)),
                ]
            })
            .collect::<Vec<_>>(),
    );
}
