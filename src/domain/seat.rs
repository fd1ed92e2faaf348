use serde::{Deserialize, Serialize};

use super::{AuditId, Invalid, LearnerId, SeatId, TenantId, Timestamp, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SeatState {
    Free,
    Reserved,
    Assigned,
}

impl SeatState {
    pub fn as_str(self) -> &'static str {
        match self {
            SeatState::Free => "free",
            SeatState::Reserved => "reserved",
            SeatState::Assigned => "assigned",
        }
    }
}

impl std::fmt::Display for SeatState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Kinds of seat transition (metrics labels, per-minute stats), in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Purchase = 0,
    Allocate = 1,
    Reclaim = 2,
}

/// How many seats one purchase may buy: 1 to 100,000 (district scale).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeatCount(u32);

impl SeatCount {
    pub const MAX: u64 = 100_000;

    pub fn parse(raw: u64) -> Result<Self, Invalid> {
        Some(raw)
            .filter(|n| (1..=Self::MAX).contains(n))
            .and_then(|n| u32::try_from(n).ok())
            .map(Self)
            .ok_or_else(|| Invalid::new("count", "must be an integer from 1 to 100000"))
    }

    pub fn get(self) -> u64 {
        u64::from(self.0)
    }
}

/// A seat as the contract shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Seat {
    pub id: SeatId,
    pub tenant_id: TenantId,
    pub state: SeatState,
    pub learner_id: Option<LearnerId>,
    pub reserved_at: Option<Timestamp>,
    pub assigned_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One seat state change, as the contract shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Audit {
    pub id: AuditId,
    pub seat_id: SeatId,
    pub previous_state: Option<SeatState>,
    pub new_state: SeatState,
    pub previous_learner_id: Option<LearnerId>,
    pub new_learner_id: Option<LearnerId>,
    pub changed_by: UserId,
    pub reason: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SeatSummary {
    pub tenant_id: TenantId,
    pub tenant_name: String,
    pub total_seats: u64,
    pub free_seats: u64,
    pub reserved_seats: u64,
    pub assigned_seats: u64,
    pub utilization_percentage: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_bounds() {
        assert!(SeatCount::parse(0).is_err());
        assert!(SeatCount::parse(100_001).is_err());
        assert!(SeatCount::parse(1_000_000).is_err());
        // Past u32 as well: never truncated into range.
        assert!(SeatCount::parse(4_294_967_296).is_err());
        assert!(SeatCount::parse(4_294_967_297).is_err());
        assert!(SeatCount::parse(u64::MAX).is_err());
        assert_eq!(
            SeatCount::parse(0).err().map(|e| e.to_string()).as_deref(),
            Some("count must be an integer from 1 to 100000")
        );
        assert_eq!(SeatCount::parse(1).ok().map(SeatCount::get), Some(1));
        assert_eq!(SeatCount::parse(100_000).ok().map(SeatCount::get), Some(100_000));
    }
}
