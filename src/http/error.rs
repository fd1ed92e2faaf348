//! The one place a failure becomes a response: its status code, its
//! `error_code`, its `WWW-Authenticate` and `Retry-After`, and the
//! contract's `{"detail", "error_code"}` body.

use serde_json::json;
use warp::http::StatusCode;
use warp::Reply;

use crate::domain::Invalid;
use crate::engine::{Error, Missing};

/// What a request can fail with: the engine's refusals, and what only HTTP
/// can get wrong.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Engine(#[from] Error),
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
    #[error("Idempotency-Key must be one header of 1 to 255 printable ASCII characters")]
    BadIdempotencyKey,
    /// A body of a type the route does not take (415).
    #[error("Request body must be {0}")]
    UnsupportedMediaType(&'static str),
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        ApiError::Engine(e.into())
    }
}

impl ApiError {
    /// A 422 with its own sentence.
    pub fn invalid(sentence: impl Into<String>) -> Self {
        ApiError::Engine(Error::Invalid(sentence.into()))
    }

    pub fn status(&self) -> StatusCode {
        let engine = match self {
            ApiError::Engine(e) => e,
            ApiError::MalformedJson(_) => return StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated | ApiError::InvalidCredentials => return StatusCode::UNAUTHORIZED,
            ApiError::RouteNotFound => return StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => return StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge(_) => return StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::LengthRequired => return StatusCode::LENGTH_REQUIRED,
            ApiError::BadIdempotencyKey => return StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType(_) => return StatusCode::UNSUPPORTED_MEDIA_TYPE,
        };
        match engine {
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::SeatUnavailable(_)
            | Error::LearnerHasSeat
            | Error::SeatAlreadyFree
            | Error::RoleExists
            | Error::RoleInactive => StatusCode::BAD_REQUEST,
            Error::TenantInactive
            | Error::NoFreeSeat
            | Error::KeyInFlight
            | Error::NotEnoughFreeSeats { .. }
            | Error::SeatExpired
            | Error::NotReserved(_)
            | Error::NoTerm
            | Error::NotExtended(_) => StatusCode::CONFLICT,
            Error::AcrossDistricts => StatusCode::UNPROCESSABLE_ENTITY,
            Error::KeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Forbidden(_) | Error::PlatformAdminOnly => StatusCode::FORBIDDEN,
            Error::Invalid(_) | Error::RosterInvalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::StoreUnavailable(_)
            | Error::StoreStopped(_)
            | Error::ShuttingDown
            | Error::Overloaded
            | Error::ReplicationUnavailable(_)
            | Error::ReadOnlyStandby(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        let engine = match self {
            ApiError::Engine(e) => e,
            ApiError::MalformedJson(_) => return "MALFORMED_JSON",
            ApiError::Unauthenticated | ApiError::InvalidCredentials => return "UNAUTHORIZED",
            ApiError::RouteNotFound => return "NOT_FOUND",
            ApiError::MethodNotAllowed => return "METHOD_NOT_ALLOWED",
            ApiError::PayloadTooLarge(_) => return "PAYLOAD_TOO_LARGE",
            ApiError::LengthRequired => return "LENGTH_REQUIRED",
            ApiError::BadIdempotencyKey => return "INVALID_IDEMPOTENCY_KEY",
            ApiError::UnsupportedMediaType(_) => return "UNSUPPORTED_MEDIA_TYPE",
        };
        match engine {
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
            Error::NoFreeSeat => "NO_FREE_SEAT",
            Error::NotEnoughFreeSeats { .. } => "NOT_ENOUGH_FREE_SEATS",
            Error::SeatExpired => "SEAT_EXPIRED",
            Error::NotReserved(_) => "SEAT_NOT_RESERVED",
            Error::NoTerm => "SEAT_HAS_NO_TERM",
            Error::NotExtended(_) => "TERM_NOT_EXTENDED",
            Error::AcrossDistricts => "TRANSFER_ACROSS_DISTRICTS",
            Error::KeyInFlight => "IDEMPOTENCY_KEY_IN_FLIGHT",
            Error::KeyReused => "IDEMPOTENCY_KEY_REUSED",
            Error::RoleExists => "ROLE_ALREADY_EXISTS",
            Error::Invalid(_) => "VALIDATION_ERROR",
            Error::RosterInvalid(_) => "ROSTER_INVALID",
            Error::StoreUnavailable(_) | Error::StoreStopped(_) => "STORE_UNAVAILABLE",
            Error::ShuttingDown => "SHUTTING_DOWN",
            Error::ReplicationUnavailable(_) => "REPLICATION_UNAVAILABLE",
            Error::ReadOnlyStandby(_) => "READ_ONLY_STANDBY",
            Error::Overloaded => "SERVICE_OVERLOADED",
            Error::Internal(_) => "INTERNAL_ERROR",
        }
    }

    /// The `WWW-Authenticate` challenge that goes with a 401.
    pub fn challenge(&self) -> Option<&'static str> {
        match self {
            ApiError::Unauthenticated => Some("X-User-ID realm=\"tenant-service\""),
            ApiError::InvalidCredentials => Some("Bearer realm=\"tenant-service\", error=\"invalid_token\""),
            _ => None,
        }
    }

    /// Seconds a client should wait before retrying (`Retry-After`), for
    /// refusals that say nothing about the request itself.
    pub fn retry_after(&self) -> Option<u32> {
        match self {
            ApiError::Engine(Error::Overloaded | Error::ReplicationUnavailable(_) | Error::ReadOnlyStandby(_)) => {
                Some(1)
            }
            _ => None,
        }
    }
}

/// One refusal of each kind, for the API document (`http::openapi`), which
/// lists every `error_code` with its status and sentence from these.
pub fn every_kind() -> Vec<ApiError> {
    use crate::domain::SeatState;
    let gone = || anyhow::anyhow!("example");
    let all = vec![
        ApiError::MalformedJson("expected a JSON object".into()),
        ApiError::Unauthenticated,
        ApiError::InvalidCredentials,
        ApiError::RouteNotFound,
        ApiError::MethodNotAllowed,
        ApiError::PayloadTooLarge(65_536),
        ApiError::LengthRequired,
        ApiError::BadIdempotencyKey,
        ApiError::UnsupportedMediaType("application/zip"),
        Error::RosterInvalid(crate::roster::Problems::default()).into(),
        Error::KeyReused.into(),
        Error::KeyInFlight.into(),
        Error::NotFound(Missing::District).into(),
        Error::NotFound(Missing::Tenant).into(),
        Error::NotFound(Missing::Seat).into(),
        Error::NotFound(Missing::Role).into(),
        Error::SeatUnavailable(SeatState::Assigned).into(),
        Error::LearnerHasSeat.into(),
        Error::SeatAlreadyFree.into(),
        Error::NoFreeSeat.into(),
        Error::NotEnoughFreeSeats { free: 3, asked: 10 }.into(),
        Error::SeatExpired.into(),
        Error::NotReserved(SeatState::Free).into(),
        Error::NoTerm.into(),
        Error::NotExtended(crate::domain::Timestamp::from_micros(1_788_249_600_000_000)).into(),
        Error::AcrossDistricts.into(),
        Error::RoleExists.into(),
        Error::RoleInactive.into(),
        Error::TenantInactive.into(),
        Error::Forbidden("admin").into(),
        Error::PlatformAdminOnly.into(),
        ApiError::invalid("count must be an integer from 1 to 100000"),
        Error::StoreUnavailable(gone()).into(),
        Error::StoreStopped(gone()).into(),
        Error::ShuttingDown.into(),
        Error::Overloaded.into(),
        Error::ReplicationUnavailable("example".into()).into(),
        Error::ReadOnlyStandby("http://10.0.0.7:8001".into()).into(),
        Error::Internal(gone()).into(),
    ];
    // A new kind of refusal must join the list above: this match, with no
    // catch-all, stops compiling until it names the new variant.
    for kind in &all {
        match kind {
            ApiError::MalformedJson(_)
            | ApiError::Unauthenticated
            | ApiError::InvalidCredentials
            | ApiError::RouteNotFound
            | ApiError::MethodNotAllowed
            | ApiError::PayloadTooLarge(_)
            | ApiError::LengthRequired
            | ApiError::BadIdempotencyKey
            | ApiError::UnsupportedMediaType(_)
            | ApiError::Engine(
                Error::KeyReused
                | Error::RosterInvalid(_)
                | Error::KeyInFlight
                | Error::NotFound(Missing::District | Missing::Tenant | Missing::Seat | Missing::Role)
                | Error::SeatUnavailable(_)
                | Error::LearnerHasSeat
                | Error::SeatAlreadyFree
                | Error::NoFreeSeat
                | Error::NotEnoughFreeSeats { .. }
                | Error::SeatExpired
                | Error::NotReserved(_)
                | Error::NoTerm
                | Error::NotExtended(_)
                | Error::AcrossDistricts
                | Error::RoleExists
                | Error::RoleInactive
                | Error::TenantInactive
                | Error::Forbidden(_)
                | Error::PlatformAdminOnly
                | Error::Invalid(_)
                | Error::StoreUnavailable(_)
                | Error::StoreStopped(_)
                | Error::ShuttingDown
                | Error::Overloaded
                | Error::ReplicationUnavailable(_)
                | Error::ReadOnlyStandby(_)
                | Error::Internal(_),
            ) => {}
        }
    }
    all
}

/// The response for a failure.
pub fn reply(err: &ApiError) -> warp::reply::Response {
    let status = err.status();
    // Shedding load is the plan working, and one line per shed request would
    // turn an overload into a logging storm.
    if matches!(err, ApiError::Engine(Error::Overloaded)) {
        tracing::debug!("request shed: overloaded");
    } else if status.is_server_error() {
        tracing::error!(error = ?err, "request failed");
    }
    let mut body = json!({"detail": err.to_string(), "error_code": err.code()});
    // A refused roster package lists its problems (`file:line: column: message`).
    if let ApiError::Engine(Error::RosterInvalid(problems)) = err {
        body["errors"] = json!(problems.lines());
        body["error_count"] = json!(problems.total);
    }
    let body = warp::reply::json(&body);
    let mut response = warp::reply::with_status(body, status).into_response();
    if let Some(challenge) = err.challenge() {
        response.headers_mut().insert(
            warp::http::header::WWW_AUTHENTICATE,
            warp::http::HeaderValue::from_static(challenge),
        );
    }
    if let Some(secs) = err.retry_after() {
        response
            .headers_mut()
            .insert(warp::http::header::RETRY_AFTER, secs.into());
    }
    response
}
