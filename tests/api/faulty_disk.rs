//! A disk that fails, stalls or slows down on command: the tests' own
//! `store::Hooks`, passed in through `App::open_with` (the product has no
//! fault switch of its own). Healthy until a test arms it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};

use tenant_service::store::Hooks;

/// "No limit": the budget never runs out.
const UNLIMITED: u64 = u64::MAX;

#[derive(Debug)]
pub struct Faults {
    /// How many more writes succeed before every write fails.
    writes: AtomicU64,
    /// How many more flushes succeed before every flush fails.
    flushes: AtomicU64,
    /// Extra milliseconds each flush takes: a slow disk, which widens the
    /// window between a write and its flush that a crash test aims at.
    flush_delay_ms: AtomicU64,
    /// While true, writes wait here: a disk that has stopped answering. Lets
    /// a test fill a tenant's mailbox deterministically (no timing guesses).
    stalled: Mutex<bool>,
    resumed: Condvar,
    /// While true, the history pass waits before it reads anything: a large
    /// store's pass, as long as a test needs it to be.
    history_stalled: AtomicBool,
}

impl Default for Faults {
    fn default() -> Self {
        Self::none()
    }
}

impl Faults {
    /// A healthy disk.
    pub fn none() -> Faults {
        Faults {
            writes: AtomicU64::new(UNLIMITED),
            flushes: AtomicU64::new(UNLIMITED),
            flush_delay_ms: AtomicU64::new(0),
            stalled: Mutex::new(false),
            resumed: Condvar::new(),
            history_stalled: AtomicBool::new(false),
        }
    }

    /// The next `n` writes succeed, every later one fails (0: fail from now on).
    pub fn fail_writes_after(&self, n: u64) {
        self.writes.store(n, Ordering::SeqCst);
    }

    /// The next `n` flushes succeed, every later one fails.
    pub fn fail_flushes_after(&self, n: u64) {
        self.flushes.store(n, Ordering::SeqCst);
    }

    /// Every flush takes `ms` milliseconds longer.
    pub fn slow_flushes(&self, ms: u64) {
        self.flush_delay_ms.store(ms, Ordering::SeqCst);
    }

    /// Writes succeed again (a flush failure is never healed: see `Durable::Failed`).
    pub fn heal_writes(&self) {
        self.writes.store(UNLIMITED, Ordering::SeqCst);
    }

    /// Makes every write wait until `resume` (or succeed at once again).
    pub fn stall_writes(&self, stall: bool) {
        *self.stalled.lock().unwrap_or_else(PoisonError::into_inner) = stall;
        self.resumed.notify_all();
    }

    /// Makes the history pass wait before it starts (until `false`, or
    /// until it is told to stop).
    pub fn stall_history(&self, stall: bool) {
        self.history_stalled.store(stall, Ordering::SeqCst);
    }
}

impl Hooks for Faults {
    /// Returns once the history pass may go on, once `stop` is set, or after
    /// 60 s (so a test whose stop never reaches the pass fails instead of
    /// hanging). Polls: a test-only wait, and `stop` has no condvar.
    fn before_history(&self, stop: &AtomicBool) {
        let limit = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while self.history_stalled.load(Ordering::SeqCst)
            && !stop.load(Ordering::SeqCst)
            && std::time::Instant::now() < limit
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    fn before_write(&self) -> std::io::Result<()> {
        let mut stalled = self.stalled.lock().unwrap_or_else(PoisonError::into_inner);
        while *stalled {
            stalled = self.resumed.wait(stalled).unwrap_or_else(PoisonError::into_inner);
        }
        drop(stalled);
        spend(&self.writes, "injected write failure")
    }

    fn flush(&self, real: &dyn Fn() -> std::io::Result<()>) -> std::io::Result<()> {
        let delay = self.flush_delay_ms.load(Ordering::Relaxed);
        if delay > 0 {
            // On the group-commit thread, which only ever waits for the disk.
            std::thread::sleep(std::time::Duration::from_millis(delay));
        }
        spend(&self.flushes, "injected flush (fsync) failure")?;
        real()
    }
}

/// Takes one from a budget; fails once it is spent.
fn spend(budget: &AtomicU64, what: &str) -> std::io::Result<()> {
    let spent = budget.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| match left {
        UNLIMITED => Some(UNLIMITED),
        0 => None,
        n => Some(n - 1),
    });
    spent.map(drop).map_err(|_| std::io::Error::other(what.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_run_out_and_heal() {
        let f = Faults::none();
        assert!((0..1000).all(|_| f.before_write().is_ok()));
        f.fail_writes_after(2);
        assert!(f.before_write().is_ok());
        assert!(f.before_write().is_ok());
        assert!(f.before_write().is_err());
        assert!(f.before_write().is_err());
        f.heal_writes();
        assert!(f.before_write().is_ok());
        f.fail_flushes_after(0);
        assert!(f.flush(&|| Ok(())).is_err());
    }
}
