//! An optional component the tests drive (Chromium, nats-server): found at
//! its usual places or where an environment variable says, or else the
//! tests that need it pass without running, and the run says so once.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Once;

/// The first of `places` that is a file (or what `env` names); `None` after
/// printing `missing(path)` once per test binary (`said`).
pub fn find(env: &str, places: &[&str], said: &'static Once, missing: impl FnOnce(&str) -> String) -> Option<PathBuf> {
    let path = match std::env::var_os(env) {
        Some(path) => PathBuf::from(path),
        None => places
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from(places.first().copied().unwrap_or_default())),
    };
    if path.is_file() {
        return Some(path);
    }
    said.call_once(|| {
        // Straight to stderr: libtest captures print! of passing tests.
        let _ = writeln!(std::io::stderr(), "{}", missing(&path.display().to_string()));
    });
    None
}
