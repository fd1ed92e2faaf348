//! Durable transitions per second through the store's group commit, next to
//! the raw write+fdatasync rate of the same data directory, in one run.
//!
//! `cargo bench --bench store_commit`
//!
//! A transition is what an allocation writes: `put_seat_change` (three plain
//! inserts: the seat's key, the commit point, carrying the audit entry and
//! chain link; then the audit key and the trail key) and then `durable(seq)`,
//! i.e. the writer waits until a flush covers its write. Writers are tokio
//! tasks on a multi-thread runtime, each on its own seats, for a fixed time at
//! 1, 8 and 64 concurrent writers.
//!
//! The floor: the same, but each write is the smallest record the store
//! writes (`put_day`: one 24-byte value under one key), at 64 writers. No
//! design that keeps sled and group commit can make a durable transition
//! cheaper than that; its CPU time per write is the figure that bounds how
//! close a durable allocation can come to `GET /health` (BENCHMARKS.md).
//! CPU time is the whole process's (getrusage) over the run, per write.
//!
//! The raw rate appends a small record to a file in the same directory and
//! calls `sync_data` (fdatasync) after each, single writer: what one fsync per
//! request would allow. It is measured before and after the group-commit runs
//! (after one unmeasured second); the ratio uses the better of the two.
//!
//! Note: sled 0.34 makes its log durable with `sync_file_range`, not
//! fsync/fdatasync (see spacejam/sled#1452), so the store's flush adds an
//! fdatasync of sled's log file: each group commit costs one real fdatasync,
//! like for like with the raw rate.
//!
//! Disk bytes per transition come from /proc/self/io `write_bytes` (page
//! bytes this process dirtied for storage during the run).
//!
//! A last, diagnostic table runs sled alone (no group commit, one thread, one
//! second each, one flush at the end): a two-key `Batch` (what `put_seat_change`
//! wrote before it became two plain inserts) against plain inserts. sled 0.34 seals and
//! writes its log buffer (pwrite + sync_file_range) twice for every batch,
//! whatever the group commit does; a plain insert is written by the next flush.
//!
//! A what-if table then runs the same group-commit scheme over sled directly
//! (64 OS threads, 2 s each) with each kind of write, to show what the
//! store would do if a transition were one insert instead of a batch.
//!
//! Environment: BENCH_SECS (seconds per run, default 3).

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{f0, f1, f2, f3, proc_io, table};
use tenant_service::domain::Counts;
use tenant_service::domain::{
    Audit, AuditId, Id, LearnerId, SeatId, SeatState, Tenant, TenantId, TenantKind, TenantName, Timestamp, UserId,
};
use tenant_service::store::records::{self, SeatRecord};
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

/// What each writer writes per transition.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// What an allocation writes.
    SeatChange,
    /// One small key: the floor.
    Floor,
    /// What an allocation writes, after a retention purge.
    AfterPurge,
}

struct Commit {
    what: Kind,
    writers: usize,
    cpu: Duration,
    ops: u64,
    elapsed: Duration,
    flushes: u64,
    flush_micros: u64,
    disk_bytes: u64,
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

async fn group_commit(
    store: Arc<Store>,
    what: Kind,
    writers: usize,
    duration: Duration,
    next_seat: Arc<AtomicU64>,
) -> Commit {
    let stop = Arc::new(AtomicBool::new(false));
    let before = store.flush_stats();
    let disk_before = proc_io(std::process::id(), "write_bytes").unwrap_or(0);
    let tenant: TenantId = id(1);
    let by = UserId::parse("bench_admin").unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let cpu_before = common::cpu_time();
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
                if what == Kind::Floor {
                    let t = Instant::now();
                    let day = Counts {
                        free: n,
                        reserved: 0,
                        assigned: 0,
                    };
                    let seq = store
                        .put_day(tenant, n as i64, &day)
                        .unwrap_or_else(|e| panic!("put: {e}"));
                    store.durable(seq).await.unwrap_or_else(|e| panic!("durable: {e}"));
                    latencies.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                    continue;
                }
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
                    reserved_until: None,
                    expires_at: None,
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
    let cpu = common::cpu_time().saturating_sub(cpu_before);
    let after = store.flush_stats();
    let disk_bytes = proc_io(std::process::id(), "write_bytes")
        .unwrap_or(0)
        .saturating_sub(disk_before);
    latencies.sort_unstable();
    Commit {
        what,
        writers,
        cpu,
        ops: latencies.len() as u64,
        elapsed,
        flushes: after.flushes - before.flushes,
        flush_micros: after.flush_micros - before.flush_micros,
        disk_bytes,
        latencies,
    }
}

/// sled alone: ops/s and write syscalls (sled's log pwrites) per op of `f`,
/// one thread, one flush at the very end.
fn sled_alone(dir: &Path, what: &str, f: impl Fn(&sled::Db, u64)) -> Vec<String> {
    let path = dir.join(format!("sled-{what}"));
    let db = sled::Config::new()
        .path(&path)
        .flush_every_ms(None)
        .open()
        .unwrap_or_else(|e| panic!("sled: {e}"));
    let writes_before = proc_io(std::process::id(), "syscw").unwrap_or(0);
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < Duration::from_secs(1) {
        f(&db, n);
        n += 1;
    }
    // One flush at the end waits for the log writes still queued in sled's
    // IO threads, so that all of them are counted.
    db.flush().unwrap_or_else(|e| panic!("flush: {e}"));
    let elapsed = started.elapsed();
    let writes = proc_io(std::process::id(), "syscw")
        .unwrap_or(0)
        .saturating_sub(writes_before);
    drop(db);
    let _ = std::fs::remove_dir_all(&path);
    vec![
        what.to_string(),
        f0(n as f64 / elapsed.as_secs_f64()),
        f3(writes as f64 / n.max(1) as f64),
    ]
}

/// What-if: the same group commit (one flusher thread calling sled's flush
/// whenever writes are pending; each writer waits until a flush that started
/// after its write has finished), over sled directly, with `writers` OS
/// threads writing either a two-key Batch or one insert per transition.
/// Returns (transitions/s, transitions per flush).
fn sled_group_commit(dir: &Path, what: &str, writers: usize, batch: bool, duration: Duration) -> (f64, f64) {
    use std::sync::{Condvar, Mutex};
    let path = dir.join(format!("whatif-{what}"));
    let db = sled::Config::new()
        .path(&path)
        .flush_every_ms(None)
        .open()
        .unwrap_or_else(|e| panic!("sled: {e}"));
    // (written, durable)
    let state = Arc::new((Mutex::new((0u64, 0u64)), Condvar::new(), Condvar::new()));
    let stop = Arc::new(AtomicBool::new(false));
    // The flusher outlives the writers: a writer that wrote just before
    // `stop` still waits for its flush.
    let writers_done = Arc::new(AtomicBool::new(false));
    let flusher = {
        let (db, state, stop) = (db.clone(), Arc::clone(&state), Arc::clone(&writers_done));
        std::thread::spawn(move || {
            let mut flushes = 0u64;
            loop {
                let upto = {
                    let mut g = state.0.lock().unwrap_or_else(|e| e.into_inner());
                    while g.0 == g.1 && !stop.load(Ordering::Relaxed) {
                        g = state
                            .1
                            .wait_timeout(g, Duration::from_millis(5))
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                    }
                    if g.0 == g.1 {
                        break;
                    }
                    g.0
                };
                db.flush().unwrap_or_else(|e| panic!("flush: {e}"));
                flushes += 1;
                state.0.lock().unwrap_or_else(|e| e.into_inner()).1 = upto;
                state.2.notify_all();
            }
            flushes
        })
    };
    let next = Arc::new(AtomicU64::new(1));
    let seat_value = vec![1u8; 60];
    let audit_value = vec![2u8; 120];
    let started = Instant::now();
    let threads: Vec<_> = (0..writers)
        .map(|_| {
            let (db, state, stop, next) = (db.clone(), Arc::clone(&state), Arc::clone(&stop), Arc::clone(&next));
            let (seat_value, audit_value) = (seat_value.clone(), audit_value.clone());
            std::thread::spawn(move || {
                let mut done = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if batch {
                        let mut b = sled::Batch::default();
                        b.insert(&records::key(records::SEAT, n), seat_value.clone());
                        b.insert(&records::key(records::AUDIT, n), audit_value.clone());
                        db.apply_batch(b).unwrap_or_else(|e| panic!("batch: {e}"));
                    } else {
                        let both: Vec<u8> = seat_value.iter().chain(&audit_value).copied().collect();
                        db.insert(records::key(records::AUDIT, n), both)
                            .unwrap_or_else(|e| panic!("insert: {e}"));
                    }
                    let seq = {
                        let mut g = state.0.lock().unwrap_or_else(|e| e.into_inner());
                        g.0 += 1;
                        state.1.notify_one();
                        g.0
                    };
                    let mut g = state.0.lock().unwrap_or_else(|e| e.into_inner());
                    while g.1 < seq {
                        g = state.2.wait(g).unwrap_or_else(|e| e.into_inner());
                    }
                    done += 1;
                }
                done
            })
        })
        .collect();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    let done: u64 = threads
        .into_iter()
        .map(|t| t.join().unwrap_or_else(|_| panic!("writer panicked")))
        .sum();
    let elapsed = started.elapsed();
    writers_done.store(true, Ordering::Relaxed);
    let flushes = flusher.join().unwrap_or_else(|_| panic!("flusher panicked"));
    drop(db);
    let _ = std::fs::remove_dir_all(&path);
    (done as f64 / elapsed.as_secs_f64(), done as f64 / flushes.max(1) as f64)
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

    // One unmeasured second first: right after other benches deleted their
    // data dirs, ext4 (mounted with online discard here) may still be busy.
    let _ = raw_fsync(&dir, "raw-fsync-warmup.bin", Duration::from_secs(1));
    let raw_before = raw_fsync(&dir, "raw-fsync-before.bin", duration);

    let (store, _) = Store::open(&dir).unwrap_or_else(|e| panic!("open: {e}"));
    let rt = common::runtime("writers", 0);
    let next_seat = Arc::new(AtomicU64::new(1));
    let mut runs = Vec::new();
    let plan = WRITERS
        .iter()
        .map(|&w| (Kind::SeatChange, w))
        .chain([(Kind::Floor, 64)]);
    // The transitions need their tenant for retention to find them.
    let now = Timestamp::now();
    store
        .put_tenant(
            &Tenant {
                id: id(1),
                name: TenantName::parse("Bench School".into()).unwrap_or_else(|e| panic!("{e}")),
                kind: TenantKind::School,
                parent_id: None,
                created_at: now,
                updated_at: now,
                is_active: true,
                sourced_id: None,
            },
            None,
        )
        .unwrap_or_else(|e| panic!("tenant: {e}"));
    for (what, writers) in plan {
        runs.push(rt.block_on(group_commit(
            Arc::clone(&store),
            what,
            writers,
            duration,
            Arc::clone(&next_seat),
        )));
    }
    // Retention purges every transition written so far (export first), then
    // the same 64 writers run again: purging must not slow later writes.
    let exports = temp.path().join("exports");
    let purge_started = Instant::now();
    let (purge, seq) = store
        .retain(Timestamp::now(), &exports)
        .unwrap_or_else(|e| panic!("retain: {e}"));
    rt.block_on(store.durable(seq))
        .unwrap_or_else(|e| panic!("durable: {e}"));
    let purge_took = purge_started.elapsed();
    let mut after_purge = rt.block_on(group_commit(
        Arc::clone(&store),
        Kind::SeatChange,
        64,
        duration,
        Arc::clone(&next_seat),
    ));
    after_purge.what = Kind::AfterPurge;
    runs.push(after_purge);
    store.close();
    drop(store);
    drop(rt);

    let raw_after = raw_fsync(&dir, "raw-fsync-after.bin", duration);

    // Record-sized values: a seat record and an audit entry.
    let seat_value = vec![1u8; 60];
    let audit_value = vec![2u8; 120];
    let both: Vec<u8> = seat_value.iter().chain(&audit_value).copied().collect();
    let sled_rows = vec![
        sled_alone(&dir, "Batch of 2 keys (the former put_seat_change)", |db, n| {
            let mut batch = sled::Batch::default();
            batch.insert(&records::key(records::SEAT, n + 1), seat_value.clone());
            batch.insert(&records::key(records::AUDIT, n + 1), audit_value.clone());
            db.apply_batch(batch).unwrap_or_else(|e| panic!("batch: {e}"));
        }),
        sled_alone(&dir, "2 inserts (as put_seat_change)", |db, n| {
            db.insert(records::key(records::SEAT, n + 1), seat_value.clone())
                .unwrap_or_else(|e| panic!("insert: {e}"));
            db.insert(records::key(records::AUDIT, n + 1), audit_value.clone())
                .unwrap_or_else(|e| panic!("insert: {e}"));
        }),
        sled_alone(&dir, "1 insert of both values", |db, n| {
            db.insert(records::key(records::AUDIT, n + 1), both.clone())
                .unwrap_or_else(|e| panic!("insert: {e}"));
        }),
    ];
    let what_if: Vec<Vec<String>> = [("Batch of 2 keys", true), ("1 insert", false)]
        .into_iter()
        .map(|(what, batch)| {
            let (rate, per_flush) = sled_group_commit(&dir, what, 64, batch, Duration::from_secs(2));
            vec![what.to_string(), "64".into(), f0(rate), f1(per_flush)]
        })
        .collect();
    // The disk's demonstrated rate: the better of the two measurements.
    let raw = raw_before.rate().max(raw_after.rate());

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
            "Group commit: durable transitions/s (a write + durable); CPU = the whole process, per transition; ratio = rate ÷ raw fsync rate ({} ops/s, the better of before and after)",
            f0(raw)
        ),
        &[
            "write",
            "writers",
            "transitions/s",
            "ratio",
            "flushes/s",
            "writes/flush",
            "mean flush ms",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "disk B/transition",
            "CPU µs/transition",
            "cores busy",
        ],
        &runs
            .iter()
            .map(|r| {
                vec![
                    match r.what {
                        Kind::SeatChange => "put_seat_change (3 keys)".to_string(),
                        Kind::Floor => "floor: put_day (1 key)".to_string(),
                        Kind::AfterPurge => "put_seat_change, after a retention purge".to_string(),
                    },
                    r.writers.to_string(),
                    f0(r.rate()),
                    format!("{}×", f2(r.rate() / raw)),
                    f0(r.flushes as f64 / r.elapsed.as_secs_f64()),
                    f1(r.ops as f64 / r.flushes.max(1) as f64),
                    f2(r.flush_micros as f64 / 1000.0 / r.flushes.max(1) as f64),
                    f2(r.pct_ms(0.50)),
                    f2(r.pct_ms(0.99)),
                    f2(r.pct_ms(0.999)),
                    f0(r.disk_bytes as f64 / r.ops.max(1) as f64),
                    f1(r.cpu.as_secs_f64() * 1e6 / r.ops.max(1) as f64),
                    f2(r.cpu.as_secs_f64() / r.elapsed.as_secs_f64()),
                ]
            })
            .collect::<Vec<_>>(),
    );
    println!(
        "retention purge before the last row: {} entries exported and purged in {:.2} s",
        purge.purged,
        purge_took.as_secs_f64()
    );
    table(
        "Diagnostic: sled alone, one thread, 1 s each and one flush at the end (log writes = write syscalls from /proc/self/io)",
        &["write", "ops/s", "log writes/op"],
        &sled_rows,
    );
    table(
        "What-if: the same group commit over sled directly, 64 writer threads, 2 s each",
        &[
            "write per transition",
            "writers",
            "durable transitions/s",
            "transitions/flush",
        ],
        &what_if,
    );
}
