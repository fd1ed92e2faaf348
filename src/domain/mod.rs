//! Domain types: values that are valid by construction. Handlers parse raw
//! request fields into these; the engine and the store only ever see them.

mod ids;
mod seat;
mod tenant;
mod text;
mod time;

pub use ids::{AuditId, Id, RoleId, SeatId, TenantId};
pub use seat::{Audit, Seat, SeatCount, SeatState, SeatSummary};
pub use tenant::{Role, RoleKind, Tenant, TenantKind, TenantPatch};
pub use text::{LearnerId, Reason, TenantName, UserId};
pub use time::Timestamp;
