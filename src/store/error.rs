//! What a store operation can fail with. The engine decides what a caller
//! is told; the store only says whether the disk refused or a record made
//! no sense.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store refused a write or a flush (or stopped after a failed
    /// flush); nothing was acknowledged.
    #[error("{0}")]
    Unavailable(anyhow::Error),
    /// A write failed after its commit point: the store has stopped, and
    /// whether the change stands is settled when it restarts.
    #[error("{0}")]
    Stopped(anyhow::Error),
    /// The change feed could not take the change in time (sync mode), or
    /// this primary may not acknowledge now (its lease or NATS is gone).
    #[error("{0}")]
    Replication(String),
    /// A record that does not decode, or a read that could not be made.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}
