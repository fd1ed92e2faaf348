//! The one error type. Every failure a request can meet is a variant here;
//! `status`, `code` and the `Display` sentence are the only place where a
//! failure becomes a status code and a `detail` (see `http::reply_error`).

use warp::http::StatusCode;

use crate::domain::SeatState;

/// What was not found, for the contract's "X not found" sentences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    District,
    Tenant,
    Seat,
    Role,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{} not found", match .0 { Missing::District => "District", Missing::Tenant => "Tenant", Missing::Seat => "Seat", Missing::Role => "Role" })]
    NotFound(Missing),
    #[error("Seat is not available. Current state: {0}")]
    SeatUnavailable(SeatState),
    #[error("Learner already has a seat in this tenant")]
    LearnerHasSeat,
    #[error("Seat is already free")]
    SeatAlreadyFree,
    #[error("User already has an active role in this tenant")]
    RoleExists,
    #[error("Role is already inactive")]
    RoleInactive,
    #[error("Tenant is inactive")]
    TenantInactive,
    /// The caller has a role in the tenant's district, but not this one.
    #[error("This action requires the {0} role in this tenant")]
    Forbidden(&'static str),
    #[error("This action requires a platform admin")]
    PlatformAdminOnly,
    /// A well-formed request whose values break a rule of the contract (422).
    #[error("{0}")]
    Invalid(String),
    /// A body that is not JSON at all (400).
    #[error("Request body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("Missing or empty X-User-ID header")]
    Unauthenticated,
    /// JWT mode. Deliberately vague: why a token failed is only logged.
    #[error("Missing or invalid credentials")]
    InvalidCredentials,
    #[error("Not found")]
    RouteNotFound,
    #[error("Method not allowed")]
    MethodNotAllowed,
    #[error("Request body is too large (at most {0} bytes)")]
    PayloadTooLarge(u64),
    #[error("Request body needs a Content-Length header")]
    LengthRequired,
    /// The store refused a write or a flush; nothing was acknowledged.
    #[error("Storage is unavailable; the change was not made")]
    StoreUnavailable(#[source] anyhow::Error),
    #[error("Service is shutting down")]
    ShuttingDown,
    /// Past saturation (a full tenant mailbox, or every connection slot
    /// taken): refused at once, nothing done; the client retries later.
    #[error("Service is overloaded; retry shortly")]
    Overloaded,
    #[error("Internal error")]
    Internal(#[source] anyhow::Error),
}

impl Error {
    pub fn invalid(field: &str, rule: &str) -> Self {
        Error::Invalid(format!("{field} {rule}"))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::NotFound(_) | Error::RouteNotFound => StatusCode::NOT_FOUND,
            Error::SeatUnavailable(_)
            | Error::LearnerHasSeat
            | Error::SeatAlreadyFree
            | Error::RoleExists
            | Error::RoleInactive
            | Error::MalformedJson(_) => StatusCode::BAD_REQUEST,
            Error::TenantInactive => StatusCode::CONFLICT,
            Error::Forbidden(_) | Error::PlatformAdminOnly => StatusCode::FORBIDDEN,
            Error::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Unauthenticated | Error::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::LengthRequired => StatusCode::LENGTH_REQUIRED,
            Error::StoreUnavailable(_) | Error::ShuttingDown | Error::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `WWW-Authenticate` challenge that goes with a 401.
    pub fn challenge(&self) -> Option<&'static str> {
        match self {
            Error::Unauthenticated => Some("X-User-ID realm=\"tenant-service\""),
            Error::InvalidCredentials => Some("Bearer realm=\"tenant-service\", error=\"invalid_token\""),
            _ => None,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Error::NotFound(Missing::District) => "DISTRICT_NOT_FOUND",
            Error::NotFound(Missing::Tenant) => "TENANT_NOT_FOUND",
            Error::NotFound(Missing::Seat) => "SEAT_NOT_FOUND",
            Error::NotFound(Missing::Role) => "ROLE_NOT_FOUND",
            Error::RoleInactive => "ROLE_INACTIVE",
            Error::TenantInactive => "TENANT_INACTIVE",
            Error::Forbidden(_) | Error::PlatformAdminOnly => "FORBIDDEN",
            Error::SeatUnavailable(_) => "SEAT_NOT_AVAILABLE",
            Error::LearnerHasSeat => "LEARNER_ALREADY_HAS_SEAT",
            Error::SeatAlreadyFree => "SEAT_ALREADY_FREE",
            Error::RoleExists => "ROLE_ALREADY_EXISTS",
            Error::Invalid(_) => "VALIDATION_ERROR",
            Error::MalformedJson(_) => "MALFORMED_JSON",
            Error::Unauthenticated | Error::InvalidCredentials => "UNAUTHORIZED",
            Error::RouteNotFound => "NOT_FOUND",
            Error::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Error::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            Error::LengthRequired => "LENGTH_REQUIRED",
            Error::StoreUnavailable(_) => "STORE_UNAVAILABLE",
            Error::ShuttingDown => "SHUTTING_DOWN",
            Error::Overloaded => "SERVICE_OVERLOADED",
            Error::Internal(_) => "INTERNAL_ERROR",
        }
    }
}

impl Error {
    /// Seconds a client should wait before retrying (`Retry-After`), for
    /// refusals that say nothing about the request itself.
    pub fn retry_after(&self) -> Option<u32> {
        match self {
            Error::Overloaded => Some(1),
            _ => None,
        }
    }
}

impl warp::reject::Reject for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;
