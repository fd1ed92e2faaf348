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
    Reserve = 3,
    /// A reservation given back (`POST /seats/release`).
    Release = 4,
    /// A reservation whose deadline passed.
    Expire = 5,
    /// Seats moved to another tenant of the district (the source's side).
    TransferOut = 6,
    /// Seats moved in from another tenant of the district.
    TransferIn = 7,
    /// A seat's license term extended.
    Renew = 8,
}

impl Transition {
    pub const COUNT: usize = 9;
    pub const ALL: [Transition; Self::COUNT] = [
        Transition::Purchase,
        Transition::Allocate,
        Transition::Reclaim,
        Transition::Reserve,
        Transition::Release,
        Transition::Expire,
        Transition::TransferOut,
        Transition::TransferIn,
        Transition::Renew,
    ];

    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            Transition::Purchase => "purchase",
            Transition::Allocate => "allocate",
            Transition::Reclaim => "reclaim",
            Transition::Reserve => "reserve",
            Transition::Release => "release",
            Transition::Expire => "expire",
            Transition::TransferOut => "transfer_out",
            Transition::TransferIn => "transfer_in",
            Transition::Renew => "renew",
        }
    }

    /// The kind of change a stored audit entry records (the history pass
    /// counts past changes from these). States tell most apart; the kinds
    /// that leave the state as it was, and a reservation's two endings, by
    /// the sentence this service writes for them (`reasons`).
    pub fn of(audit: &Audit) -> Transition {
        let reason = audit.reason.as_str();
        match (audit.previous_state, audit.new_state) {
            (None, _) => Transition::Purchase,
            (_, SeatState::Reserved) => Transition::Reserve,
            (Some(SeatState::Reserved), SeatState::Free) if reason.starts_with(reasons::EXPIRED) => Transition::Expire,
            (Some(SeatState::Reserved), SeatState::Free) if reason == reasons::RELEASED => Transition::Release,
            (Some(before), after) if before == after && reason.starts_with(reasons::TRANSFERRED_TO) => {
                Transition::TransferOut
            }
            (Some(before), after) if before == after && reason.starts_with(reasons::TRANSFERRED_FROM) => {
                Transition::TransferIn
            }
            (Some(before), after) if before == after && reason.starts_with(reasons::RENEWED) => Transition::Renew,
            (_, SeatState::Assigned) => Transition::Allocate,
            (_, SeatState::Free) => Transition::Reclaim,
        }
    }
}

/// The audit reasons of the changes the service makes by itself or names
/// itself. `Transition::of` reads a past change's kind from them: they are
/// part of the stored format.
pub mod reasons {
    pub const RESERVED: &str = "Seat reserved";
    pub const RELEASED: &str = "Reservation released";
    /// Followed by " (deadline ...)" when applied at start.
    pub const EXPIRED: &str = "Reservation expired";
    /// Followed by " tenant N".
    pub const TRANSFERRED_TO: &str = "Transferred to";
    pub const TRANSFERRED_FROM: &str = "Transferred from";
    /// Followed by " until <time>".
    pub const RENEWED: &str = "License renewed";
    /// Who made the changes nobody asked for (expiries).
    pub const SYSTEM: &str = "system";
}

/// How long a reservation holds: 1 second to 30 days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ttl(u32);

impl Ttl {
    pub const MAX_SECONDS: u64 = 30 * 24 * 60 * 60;

    pub fn parse(seconds: u64) -> Result<Self, Invalid> {
        Some(seconds)
            .filter(|s| (1..=Self::MAX_SECONDS).contains(s))
            .and_then(|s| u32::try_from(s).ok())
            .map(Self)
            .ok_or_else(|| Invalid::new("ttl_seconds", "must be an integer from 1 to 2592000 (30 days)"))
    }

    /// The deadline of a reservation made at `at`.
    pub fn after(self, at: Timestamp) -> Timestamp {
        Timestamp::from_micros(at.micros().saturating_add(i64::from(self.0) * 1_000_000))
    }
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
    /// A reserved seat: when the reservation lapses by itself.
    pub reserved_until: Option<Timestamp>,
    /// A reserved seat named for a learner: who (they hold it for the
    /// one-seat-per-learner rule, and only they may be allocated it).
    pub reserved_for: Option<LearnerId>,
    /// The end of the seat's license term (null: no end). After it the
    /// seat can no longer be allocated, assigned or reserved.
    pub expires_at: Option<Timestamp>,
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
    /// Seats (in any state) whose license term has ended.
    pub expired_seats: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_bounds() {
        assert!(Ttl::parse(0).is_err());
        assert!(Ttl::parse(Ttl::MAX_SECONDS + 1).is_err());
        assert!(Ttl::parse(u64::MAX).is_err());
        let at = Timestamp::from_micros(5);
        assert_eq!(
            Ttl::parse(1).map(|t| t.after(at)).ok(),
            Some(Timestamp::from_micros(1_000_005))
        );
        assert!(Ttl::parse(Ttl::MAX_SECONDS).is_ok());
    }

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
