//! Seat counts by state: what summaries show, what a day's snapshot stores,
//! what a district's rollup adds up, what the metrics gauge. One type, so
//! the arithmetic is written once.

use std::iter::Sum;
use std::ops::{Add, AddAssign};

use serde::{Deserialize, Serialize};

use super::{SeatState, SeatSummary, TenantId};

/// Seats in each state. Also the stored form of a day snapshot (the history
/// record's layout: three u64 in this order), so the field order is fixed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub free: u64,
    pub reserved: u64,
    pub assigned: u64,
}

impl Counts {
    pub fn total(self) -> u64 {
        self.free + self.reserved + self.assigned
    }

    /// (reserved + assigned) / total × 100, rounded to 2 decimals; 0.0 when empty.
    pub fn utilization(self) -> f64 {
        let total = self.total();
        if total == 0 {
            return 0.0;
        }
        let pct = (self.reserved + self.assigned) as f64 / total as f64 * 100.0;
        (pct * 100.0).round() / 100.0
    }

    /// The counts after one seat moves from `from` to `to`.
    pub fn moved(mut self, from: SeatState, to: SeatState) -> Counts {
        *self.of_mut(from) -= 1;
        *self.of_mut(to) += 1;
        self
    }

    /// The seats in one state.
    pub fn of(self, state: SeatState) -> u64 {
        match state {
            SeatState::Free => self.free,
            SeatState::Reserved => self.reserved,
            SeatState::Assigned => self.assigned,
        }
    }

    pub fn of_mut(&mut self, state: SeatState) -> &mut u64 {
        match state {
            SeatState::Free => &mut self.free,
            SeatState::Reserved => &mut self.reserved,
            SeatState::Assigned => &mut self.assigned,
        }
    }

    /// The contract's summary of a tenant with these counts, `expired` of
    /// its seats past their license term.
    pub fn summary(self, tenant_id: TenantId, tenant_name: String, expired: u64) -> SeatSummary {
        SeatSummary {
            tenant_id,
            tenant_name,
            total_seats: self.total(),
            free_seats: self.free,
            reserved_seats: self.reserved,
            assigned_seats: self.assigned,
            utilization_percentage: self.utilization(),
            expired_seats: expired,
        }
    }
}

impl Add for Counts {
    type Output = Counts;
    fn add(self, other: Counts) -> Counts {
        Counts {
            free: self.free + other.free,
            reserved: self.reserved + other.reserved,
            assigned: self.assigned + other.assigned,
        }
    }
}

impl AddAssign for Counts {
    fn add_assign(&mut self, other: Counts) {
        *self = *self + other;
    }
}

impl Sum for Counts {
    fn sum<I: Iterator<Item = Counts>>(iter: I) -> Counts {
        iter.fold(Counts::default(), Add::add)
    }
}

impl From<&SeatSummary> for Counts {
    fn from(s: &SeatSummary) -> Counts {
        Counts {
            free: s.free_seats,
            reserved: s.reserved_seats,
            assigned: s.assigned_seats,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(free: u64, reserved: u64, assigned: u64) -> Counts {
        Counts {
            free,
            reserved,
            assigned,
        }
    }

    #[test]
    fn utilization_rounds_to_two_decimals() {
        assert_eq!(c(0, 0, 0).utilization(), 0.0);
        assert_eq!(c(3, 0, 2).utilization(), 40.0);
        assert_eq!(c(2, 0, 1).utilization(), 33.33);
        assert_eq!(c(1, 1, 1).utilization(), 66.67);
    }

    #[test]
    fn sums_and_moves() {
        assert_eq!([c(1, 2, 3), c(10, 20, 30)].into_iter().sum::<Counts>(), c(11, 22, 33));
        let moved = c(2, 0, 0).moved(SeatState::Free, SeatState::Assigned);
        assert_eq!(moved, c(1, 0, 1));
        assert_eq!(moved.total(), 2);
        assert_eq!(moved.of(SeatState::Assigned), 1);
    }

    #[test]
    fn the_stored_layout_is_three_u64_in_order() {
        // A day snapshot written by an older build must still decode.
        let bytes = bincode::serialize(&c(1, 2, 3)).unwrap_or_default();
        let expected: Vec<u8> = [1u64, 2, 3].iter().flat_map(|n| n.to_le_bytes()).collect();
        assert_eq!(bytes, expected);
    }
}
