//! Domain types: values that are valid by construction. Handlers parse raw
//! request fields into these; the engine and the store only ever see them.
//! Nothing here knows about HTTP or sled.

mod alert;
mod answer;
mod audit;
mod block;
mod caller;
mod counts;
mod ids;
mod invalid;
mod seat;
mod tenant;
mod text;
mod time;

pub use alert::{Alert, Direction, Percent, Threshold};
pub use answer::{fingerprint, Answer, AnswerKey};
pub use audit::{AuditFilter, AuditPage, AuditQuery, Order, TrailPos};
pub use block::{chain, BlockRecord, Hash, SeatRecord};
pub use caller::Caller;
pub use counts::Counts;
pub use ids::{AuditId, EventId, Id, RoleId, SeatId, TenantId};
pub use invalid::Invalid;
pub use seat::{reasons, Audit, Seat, SeatCount, SeatState, SeatSummary, Transition, Ttl};
pub use tenant::{Role, RoleChange, RoleEvent, RoleKind, Tenant, TenantKind, TenantPatch};
pub use text::{LearnerId, Reason, TenantName, UserId};
pub use time::Timestamp;
