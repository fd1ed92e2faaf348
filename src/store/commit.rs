//! Group commit: many writers, one fsync per batch.
//!
//! A writer applies its change to sled (in memory, in sled's log buffers), then
//! calls `wrote()` for a sequence number and waits until `durable` reaches it.
//! One flusher thread loops: take the highest sequence written so far, call
//! `flush` (which fsyncs every write made before it started), publish that
//! sequence as durable. Everything queued while a flush runs rides the next one,
//! so the disk is asked once per batch, not once per request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;

/// `GroupCommit::upto` after a failed flush.
const FAILED: u64 = u64::MAX;
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// How far the log is known to be on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durable {
    /// Every write with a sequence number up to this one survives a crash.
    Upto(u64),
    /// A flush failed. Nothing after the last good flush may be acknowledged,
    /// and retrying an fsync after it failed is unsound (the kernel may have
    /// dropped the dirty pages), so the store stops for good.
    Failed,
}

/// Something that can make every write made before the call durable.
pub trait Flush: Send + Sync + 'static {
    fn flush(&self) -> std::io::Result<()>;
}

impl Flush for sled::Db {
    fn flush(&self) -> std::io::Result<()> {
        sled::Tree::flush(self).map(drop).map_err(std::io::Error::other)
    }
}

#[derive(Default)]
struct Pending {
    /// Highest sequence number handed to a writer. Guarded by the mutex so the
    /// flusher can sleep on the condvar without missing a wake-up.
    written: u64,
    stopping: bool,
    /// The flusher is waiting on the condvar: only then does a write need to
    /// wake it (a notify is a futex syscall, and while a flush runs, the
    /// flusher looks at `written` again before it sleeps).
    idle: bool,
}

pub struct GroupCommit {
    pending: Mutex<Pending>,
    wake: Condvar,
    durable: watch::Sender<Durable>,
    /// The same watermark as `durable` (`u64::MAX` once failed), for the fast
    /// path of every request: a plain load, where the watch channel's borrow
    /// is a lock that every core would bounce between them.
    upto: AtomicU64,
    /// Batch statistics for the bench suite and logs: flushes done, writes covered.
    stats: Mutex<FlushStats>,
    /// Told of every good flush (writes covered, time taken): the metrics.
    /// Set once, after start; the flusher thread calls it outside any lock.
    observer: OnceLock<FlushObserver>,
}

pub type FlushObserver = Box<dyn Fn(u64, Duration) + Send + Sync>;

#[derive(Debug, Clone, Copy, Default)]
pub struct FlushStats {
    pub flushes: u64,
    pub writes: u64,
    pub flush_micros: u64,
}

impl GroupCommit {
    /// Starts the flusher thread; it stops (after a last flush) on `stop`.
    pub fn start(target: Arc<dyn Flush>) -> (Arc<Self>, JoinHandle<()>) {
        let (durable, _) = watch::channel(Durable::Upto(0));
        let commit = Arc::new(Self {
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            durable,
            upto: AtomicU64::new(0),
            stats: Mutex::new(FlushStats::default()),
            observer: OnceLock::new(),
        });
        let flusher = Arc::clone(&commit);
        let handle = std::thread::Builder::new()
            .name("group-commit".into())
            .spawn(move || flusher.run(target.as_ref()))
            .unwrap_or_else(|e| panic!("cannot start the group-commit thread: {e}"));
        (commit, handle)
    }

    /// Called after a write reached sled; returns the sequence to wait for.
    pub fn wrote(&self) -> u64 {
        let mut p = self.lock();
        p.written += 1;
        if p.idle {
            self.wake.notify_one();
        }
        p.written
    }

    /// The sequence of the latest write; waiting for it covers every write so far.
    pub fn latest(&self) -> u64 {
        self.lock().written
    }

    pub fn state(&self) -> Durable {
        *self.durable.borrow()
    }

    pub fn has_failed(&self) -> bool {
        self.upto.load(Ordering::Acquire) == FAILED
    }

    /// Resolves when `seq` is on disk (at once if it already is), or with
    /// `Err` if the store failed before it got there.
    pub async fn wait(&self, seq: u64) -> Result<(), ()> {
        let upto = self.upto.load(Ordering::Acquire);
        if upto >= seq && upto != FAILED {
            return Ok(());
        }
        match self.state() {
            Durable::Upto(done) if done >= seq => return Ok(()),
            Durable::Failed => return Err(()),
            Durable::Upto(_) => {}
        }
        let mut rx = self.durable.subscribe();
        let reached = rx
            .wait_for(|d| matches!(d, Durable::Failed) || matches!(d, Durable::Upto(n) if *n >= seq))
            .await
            .map(|d| *d);
        match reached {
            Ok(Durable::Upto(_)) => Ok(()),
            _ => Err(()),
        }
    }

    /// Resolves once the store has failed; the process should then stop.
    pub async fn failed(&self) {
        let mut rx = self.durable.subscribe();
        let _ = rx.wait_for(|d| *d == Durable::Failed).await;
    }

    pub fn stats(&self) -> FlushStats {
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers the one flush observer; later calls are ignored.
    pub fn observe(&self, observer: FlushObserver) {
        let _ = self.observer.set(observer);
    }

    /// Fail-stop from outside the flusher: a write the store could not
    /// complete after its commit point. Nothing more is acknowledged, and
    /// the service stops (`failed`); a restart finishes the write.
    pub fn fail(&self) {
        self.upto.store(FAILED, Ordering::Release);
        self.durable.send_replace(Durable::Failed);
        self.stop();
    }

    /// Asks the flusher to make everything written durable and exit.
    pub fn stop(&self) {
        self.lock().stopping = true;
        self.wake.notify_one();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        // A panic elsewhere cannot leave `Pending` half-updated (two plain
        // fields written in one statement each), so a poisoned lock is usable.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn run(&self, target: &dyn Flush) {
        let mut flushed = 0u64;
        loop {
            let (upto, stopping) = {
                let mut p = self.lock();
                while p.written == flushed && !p.stopping {
                    p.idle = true;
                    p = self.wake.wait(p).unwrap_or_else(PoisonError::into_inner);
                    p.idle = false;
                }
                (p.written, p.stopping)
            };
            if upto > flushed {
                let started = Instant::now();
                if let Err(e) = target.flush() {
                    tracing::error!(error = %e, "flush failed; the store stops accepting writes");
                    self.upto.store(FAILED, Ordering::Release);
                    self.durable.send_replace(Durable::Failed);
                    return;
                }
                let took = started.elapsed();
                let micros = took.as_micros() as u64;
                {
                    let mut s = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
                    s.flushes += 1;
                    s.writes += upto - flushed;
                    s.flush_micros += micros;
                }
                let batch = upto - flushed;
                flushed = upto;
                // `fetch_max`: a store failed meanwhile (`fail`) stays failed.
                self.upto.fetch_max(upto, Ordering::AcqRel);
                let published = self.durable.send_if_modified(|d| match d {
                    Durable::Failed => false,
                    Durable::Upto(_) => {
                        *d = Durable::Upto(upto);
                        true
                    }
                });
                if !published {
                    return;
                }
                if let Some(observe) = self.observer.get() {
                    observe(batch, took);
                }
            }
            if stopping && self.lock().written == flushed {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    struct Counting(AtomicU64);
    impl Flush for Counting {
        fn flush(&self) -> std::io::Result<()> {
            self.0.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(2));
            Ok(())
        }
    }

    struct Broken;
    impl Flush for Broken {
        fn flush(&self) -> std::io::Result<()> {
            Err(std::io::Error::other("disk gone"))
        }
    }

    #[tokio::test]
    async fn one_flush_serves_many_writers() {
        let target = Arc::new(Counting(AtomicU64::new(0)));
        let (commit, handle) = GroupCommit::start(target.clone());
        let seqs: Vec<u64> = (0..100).map(|_| commit.wrote()).collect();
        for s in &seqs {
            assert!(commit.wait(*s).await.is_ok());
        }
        let flushes = target.0.load(Ordering::SeqCst);
        assert!((1..100).contains(&flushes), "100 writes took {flushes} flushes");
        commit.stop();
        handle.join().ok();
    }

    #[tokio::test]
    async fn a_failed_flush_fails_every_waiter_and_stays_failed() {
        let (commit, handle) = GroupCommit::start(Arc::new(Broken));
        let seq = commit.wrote();
        assert!(commit.wait(seq).await.is_err());
        assert!(commit.has_failed());
        assert!(commit.wait(commit.wrote()).await.is_err());
        handle.join().ok();
    }

    #[tokio::test]
    async fn nothing_pending_answers_at_once() {
        let (commit, handle) = GroupCommit::start(Arc::new(Counting(AtomicU64::new(0))));
        assert!(commit.wait(0).await.is_ok());
        commit.stop();
        handle.join().ok();
    }
}
