//! "Durable before answered", as a type.
//!
//! Every engine operation hands back its outcome wrapped in a `Durable`: the
//! outcome (a value, or a refusal that may rest on a write still in flight)
//! together with the group-commit sequence it depends on. The only way to
//! the outcome is `wait`, which resolves once that sequence is on disk, so
//! an answer cannot go out before the state it reveals would survive a
//! crash. Forgetting the wait does not compile into an answer:
//!
//! ```compile_fail
//! use tenant_service::domain::Seat;
//! use tenant_service::engine::Durable;
//!
//! // The outcome is private: reading it without waiting does not build.
//! fn answer_early(allocated: Durable<Seat>) -> Seat {
//!     allocated.outcome.unwrap()
//! }
//! ```

use super::error::Error;
use crate::store::{Seq, Store};

#[must_use = "nothing is acknowledged until it is durable: `wait` for it"]
pub struct Durable<T> {
    outcome: Result<T, Error>,
    /// The latest write the outcome depends on (0: none).
    seq: Seq,
}

impl<T> Durable<T> {
    /// An outcome that depends on the write numbered `seq` (and every one before it).
    pub(crate) fn after(seq: Seq, outcome: Result<T, Error>) -> Self {
        Durable { outcome, seq }
    }

    /// An outcome that depends on no write at all.
    pub fn ready(value: T) -> Self {
        Durable {
            outcome: Ok(value),
            seq: 0,
        }
    }

    /// Transforms the value; the wait still stands before it.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Durable<U> {
        Durable {
            outcome: self.outcome.map(f),
            seq: self.seq,
        }
    }

    /// Resolves once the write the outcome depends on is on disk, with the
    /// outcome; with `StoreUnavailable` if the store failed first.
    pub async fn wait(self, store: &Store) -> Result<T, Error> {
        store.durable(self.seq).await?;
        self.outcome
    }
}
