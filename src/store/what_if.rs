//! What-if experiments for the bench suite: how fast would allocation be if
//! the store cost less? They answer BEFORE the write is durable, so they
//! exist only in a build with the `what-if` feature (off by default; the
//! service's own build and `cargo test` never have it) and only when
//! `TS_WHAT_IF` names one. BENCHMARKS.md, "Where the time goes", has the
//! commands and what they showed.

/// Which part of a durable write an experiment leaves out.
// Without the feature only `Off` is ever built: the experiments' variants stay
// so that the store's code reads the same in both builds.
#[cfg_attr(not(feature = "what-if"), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhatIf {
    /// The real store: every answer waits for its flush.
    Off,
    /// `TS_WHAT_IF=no-flush`: writes go to sled as usual, but nothing waits
    /// for a flush and the group-commit thread flushes nothing.
    NoFlush,
    /// `TS_WHAT_IF=no-seat-writes`: `no-flush`, and a seat change is not
    /// written to sled at all (memory only). What is left is the request.
    NoSeatWrites,
}

impl WhatIf {
    /// `Off` unless the build has the `what-if` feature and `TS_WHAT_IF`
    /// names an experiment. Any other value there stops the bench at once:
    /// a mistyped experiment would otherwise be measured as one.
    pub fn from_env() -> Self {
        match requested().as_deref() {
            None => WhatIf::Off,
            Some("no-flush") => WhatIf::NoFlush,
            Some("no-seat-writes") => WhatIf::NoSeatWrites,
            Some(other) => panic!("TS_WHAT_IF={other}: the experiments are `no-flush` and `no-seat-writes`"),
        }
    }

    /// Answers go out without waiting for a flush.
    pub fn skips_flush(self) -> bool {
        self != WhatIf::Off
    }

    pub fn skips_seat_writes(self) -> bool {
        self == WhatIf::NoSeatWrites
    }
}

/// The experiment `TS_WHAT_IF` asks for, in a build that has them; `None`
/// in every other build, whatever the environment says.
pub fn requested() -> Option<String> {
    if cfg!(feature = "what-if") {
        std::env::var("TS_WHAT_IF").ok().filter(|v| !v.is_empty())
    } else {
        None
    }
}
