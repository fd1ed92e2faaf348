//! The seam between the store and the disk. The service passes `Disk`, the
//! real thing; tests and benches pass their own `Hooks` (a disk that fails,
//! stalls, is slow, or skips the fsync) through `Store::open_with`. The
//! product carries no test-only branch: only this seam.

use std::sync::atomic::AtomicBool;

/// What happens around each write and flush. Every method's default is the
/// real disk's behaviour.
pub trait Hooks: Send + Sync + 'static {
    /// Before a write reaches sled: an error refuses the write before sled
    /// or memory has changed.
    fn before_write(&self) -> std::io::Result<()> {
        Ok(())
    }

    /// Makes every write made before the call durable; `real` is the
    /// store's own flush (sled, then an fdatasync of its log).
    fn flush(&self, real: &dyn Fn() -> std::io::Result<()>) -> std::io::Result<()> {
        real()
    }

    /// Before the history pass reads anything (`stop` is set when the
    /// service is stopping).
    fn before_history(&self, _stop: &AtomicBool) {}
}

/// The real disk: no hooks.
pub struct Disk;

impl Hooks for Disk {}
