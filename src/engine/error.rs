//! What an engine operation can fail with. Each variant's `Display` is the
//! sentence a caller reads (the contract's sentences among them); how a
//! failure becomes a status code is the HTTP layer's business
//! (`http::error`).

use crate::domain::{Invalid, SeatState, TenantId, Timestamp};
use crate::store::StoreError;

/// What was not found, for the contract's "X not found" sentences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    District,
    Tenant,
    Seat,
    Role,
}

impl Missing {
    pub fn noun(self) -> &'static str {
        match self {
            Missing::District => "District",
            Missing::Tenant => "Tenant",
            Missing::Seat => "Seat",
            Missing::Role => "Role",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{} not found", .0.noun())]
    NotFound(Missing),
    #[error("Seat is not available. Current state: {0}")]
    SeatUnavailable(SeatState),
    #[error("Learner already has a seat in this tenant")]
    LearnerHasSeat,
    #[error("Seat is already free")]
    SeatAlreadyFree,
    #[error("No free seat in this tenant")]
    NoFreeSeat,
    /// A transfer of a count of seats larger than the free seats it may move.
    #[error("Not enough free seats: {free} free, {asked} asked for")]
    NotEnoughFreeSeats { free: u64, asked: u64 },
    #[error("Seat's license term has ended")]
    SeatExpired,
    #[error("Seat is not reserved. Current state: {0}")]
    NotReserved(SeatState),
    #[error("Seat has no license term to renew")]
    NoTerm,
    #[error("expires_at must be later than the seat's current term ({})", .0.rfc3339())]
    NotExtended(Timestamp),
    #[error("Seats can only move between the tenants of one district")]
    AcrossDistricts,
    #[error("User already has an active role in this tenant")]
    RoleExists,
    #[error("Role is already inactive")]
    RoleInactive,
    #[error("Tenant is inactive")]
    TenantInactive,
    /// An `Idempotency-Key` whose first request is still being answered.
    #[error("A request with this Idempotency-Key is still in progress; retry once it has been answered")]
    KeyInFlight,
    /// An `Idempotency-Key` already used by this caller for another request.
    #[error("This Idempotency-Key was already used for a different request (method, path or body)")]
    KeyReused,
    /// The caller has a role in the tenant's district, but not this one.
    #[error("This action requires the {0} role in this tenant")]
    Forbidden(&'static str),
    #[error("This action requires a platform admin")]
    PlatformAdminOnly,
    /// A well-formed request whose values break a rule of the contract.
    #[error("{0}")]
    Invalid(String),
    /// The store refused a write or a flush; nothing was acknowledged.
    #[error("Storage is unavailable; the change was not made")]
    StoreUnavailable(#[source] anyhow::Error),
    /// The store stopped in the middle of a change; the restart completes
    /// it or drops it whole.
    #[error("Storage failed during the change; the service restarts, and the change is then either made whole or not at all")]
    StoreStopped(#[source] anyhow::Error),
    /// The change feed did not take the change in time (sync mode), or
    /// this primary may not acknowledge now (its lease or NATS is gone).
    /// The change may stand locally: it is published once NATS is back,
    /// and a retry with the same `Idempotency-Key` gets its answer.
    #[error(
        "Replication is unavailable; the change was not acknowledged (retry later, with the same Idempotency-Key)"
    )]
    ReplicationUnavailable(String),
    /// A standby serves reads only.
    #[error("This instance is a read-only standby; send writes to the primary: {0}")]
    ReadOnlyStandby(String),
    #[error("Service is shutting down")]
    ShuttingDown,
    /// Past saturation (a full tenant mailbox, or every connection slot
    /// taken): refused at once, nothing done; the client retries later.
    #[error("Service is overloaded; retry shortly")]
    Overloaded,
    /// A roster package that breaks the OneRoster binding or the import's
    /// rules: refused whole, nothing changed.
    #[error("The roster package was refused ({} problem{}); nothing was changed", .0.total, if .0.total == 1 { "" } else { "s" })]
    RosterInvalid(crate::roster::Problems),
    #[error("Internal error")]
    Internal(#[source] anyhow::Error),
}

impl Error {
    pub fn invalid(field: &str, rule: &str) -> Self {
        Error::Invalid(Invalid::new(field, rule).into_string())
    }
}

impl From<Invalid> for Error {
    fn from(e: Invalid) -> Self {
        Error::Invalid(e.into_string())
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(e) => Error::StoreUnavailable(e),
            StoreError::Stopped(e) => Error::StoreStopped(e),
            StoreError::Replication(why) => Error::ReplicationUnavailable(why),
            StoreError::Internal(e) => Error::Internal(e),
        }
    }
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot start the actor threads: {0}")]
    Actors(std::io::Error),
    #[error("tenant {0} holds more than {max} seats in the store, more than this build can serve", max = super::MAX_SEATS)]
    TooManySeats(TenantId),
}
