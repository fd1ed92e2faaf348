//! Utilization alert thresholds, and the alerts raised when utilization
//! crosses one.

use serde::{Deserialize, Serialize};

use super::Invalid;
use super::{AuditId, TenantId, Timestamp, UserId};

/// A threshold in percent of seats in use: more than 0, at most 100.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct Percent(f64);

impl Percent {
    pub fn parse(raw: f64) -> Result<Self, Invalid> {
        if raw.is_finite() && raw > 0.0 && raw <= 100.0 {
            Ok(Self(raw))
        } else {
            Err(Invalid::new(
                "percent",
                "must be a number greater than 0 and at most 100",
            ))
        }
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

/// A tenant's alert threshold (`None`: no alerts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Threshold {
    pub tenant_id: TenantId,
    pub percent: Option<Percent>,
    pub updated_by: UserId,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Utilization rose to or above the threshold.
    Up,
    /// Utilization fell below it.
    Down,
}

/// Utilization crossed a tenant's threshold. Identified by the audit entry of
/// the change that crossed it (a purchase: its first entry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Alert {
    pub tenant_id: TenantId,
    pub audit_id: AuditId,
    pub direction: Direction,
    pub threshold_percent: Percent,
    pub utilization_before: f64,
    pub utilization_after: f64,
    pub created_at: Timestamp,
}

impl Alert {
    /// The alert a change from `before` to `after` percent raises, if any.
    pub fn crossing(threshold: Percent, before: f64, after: f64) -> Option<Direction> {
        let t = threshold.get();
        if before < t && after >= t {
            Some(Direction::Up)
        } else if before >= t && after < t {
            Some(Direction::Down)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crossings_either_way_and_only_across() {
        let t = Percent::parse(80.0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(Alert::crossing(t, 79.99, 80.0), Some(Direction::Up));
        assert_eq!(Alert::crossing(t, 80.0, 79.99), Some(Direction::Down));
        assert_eq!(Alert::crossing(t, 80.0, 90.0), None);
        assert_eq!(Alert::crossing(t, 10.0, 20.0), None);
        assert!(Percent::parse(0.0).is_err());
        assert!(Percent::parse(100.5).is_err());
        assert!(Percent::parse(f64::NAN).is_err());
        assert!(Percent::parse(100.0).is_ok());
    }

    #[test]
    fn percent_is_more_than_0_and_at_most_100() {
        for raw in [0.0, -0.0, -1.0, 100.000_001, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(
                Percent::parse(raw).err().map(|e| e.to_string()).as_deref(),
                Some("percent must be a number greater than 0 and at most 100"),
                "{raw}"
            );
        }
        assert_eq!(Percent::parse(0.01).ok().map(Percent::get), Some(0.01));
        assert_eq!(Percent::parse(50.0).ok().map(Percent::get), Some(50.0));
    }
}
