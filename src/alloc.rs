//! The allocator, and handing start-up memory back to the OS. A leaf: it
//! depends on nothing in the crate.

/// The allocator: jemalloc. sled 0.34 replaces a page's in-memory record on
/// every page-in and page-out, so a start that reads every record (the seat
/// scan, then the history pass) leaves some 500,000 small long-lived records
/// scattered among memory the scans freed. With glibc's malloc that freed
/// memory stayed resident, holes too small to return; jemalloc's size
/// classes keep like with like, and its purge returns the rest (BENCHMARKS.md
/// §4 has the measurements). Declared here, not in `main.rs`, so that the tests and benches that
/// run the app in-process measure the same allocator.
/// (Not with MSVC, where jemalloc does not build: the system allocator there.)
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Hands the memory recovery (and then the history pass) used only while
/// reading the store (every record decoded once, then dropped) back to the OS
/// now. jemalloc would return it by itself only as it decays, and it decays
/// only while the process allocates: a service that has just started may sit
/// idle for a long while.
pub fn release_startup_memory() {
    #[cfg(not(target_env = "msvc"))]
    release_jemalloc_memory();
}

#[cfg(not(target_env = "msvc"))]
#[allow(unsafe_code)]
fn release_jemalloc_memory() {
    // 4096 is MALLCTL_ARENAS_ALL: every arena.
    // SAFETY: the name is a NUL-terminated string, and a purge reads and
    // writes no value (null pointers, length 0), as jemalloc's manual has it.
    let rc = unsafe {
        tikv_jemalloc_sys::mallctl(
            c"arena.4096.purge".as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        )
    };
    if rc != 0 {
        tracing::warn!(rc, "could not hand the start-up memory back to the OS (jemalloc purge)");
    }
}
