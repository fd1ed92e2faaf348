//! Audit queries: which entries, in which order, from where. Parsed from the
//! query string once; the store's trail reader only ever sees these.

use serde::Serialize;

use super::Invalid;
use super::{Audit, LearnerId, SeatId, TenantId, Timestamp, UserId};

/// Where an entry sits in a tenant's trail: its time, then its id (ids are
/// unique, so no two entries share a position).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TrailPos {
    pub at: Timestamp,
    pub id: u64,
}

impl TrailPos {
    pub fn of(audit: &Audit) -> Self {
        TrailPos {
            at: audit.created_at,
            id: super::Id::get(audit.id),
        }
    }

    /// The opaque `next_cursor` string: `<micros>.<id>`. Clients pass it back
    /// unchanged; its shape is not part of the contract.
    pub fn cursor(self) -> String {
        format!("{}.{}", self.at.micros(), self.id)
    }

    pub fn parse_cursor(raw: &str) -> Result<Self, Invalid> {
        let bad = || Invalid::new("cursor", "is not a cursor this service handed out");
        let (at, id) = raw.split_once('.').ok_or_else(bad)?;
        Ok(TrailPos {
            at: Timestamp::from_micros(at.parse().map_err(|_| bad())?),
            id: id.parse().map_err(|_| bad())?,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Oldest first, like `GET /seats/{id}/audit`.
    #[default]
    Asc,
    Desc,
}

impl Order {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw {
            "asc" => Ok(Order::Asc),
            "desc" => Ok(Order::Desc),
            _ => Err(Invalid::new("order", "must be asc or desc")),
        }
    }
}

/// Entries must match every filter that is set.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// The entry's previous or new learner.
    pub learner: Option<LearnerId>,
    pub changed_by: Option<UserId>,
    /// `created_at >= since`.
    pub since: Option<Timestamp>,
    /// `created_at < until`.
    pub until: Option<Timestamp>,
}

impl AuditFilter {
    pub fn matches(&self, audit: &Audit) -> bool {
        self.learner
            .as_ref()
            .is_none_or(|l| audit.previous_learner_id.as_ref() == Some(l) || audit.new_learner_id.as_ref() == Some(l))
            && self.changed_by.as_ref().is_none_or(|u| audit.changed_by == *u)
            && self.in_window(audit.created_at)
    }

    pub fn in_window(&self, at: Timestamp) -> bool {
        self.since.is_none_or(|s| at >= s) && self.until.is_none_or(|u| at < u)
    }
}

/// The largest page `limit` may ask for, and the default.
pub const MAX_LIMIT: usize = 1_000;
pub const DEFAULT_LIMIT: usize = 100;

/// `GET /api/v1/audit`, parsed.
#[derive(Debug, Clone)]
pub struct AuditQuery {
    /// A district includes its schools.
    pub tenant: Option<TenantId>,
    pub seat: Option<SeatId>,
    pub filter: AuditFilter,
    pub order: Order,
    pub limit: usize,
    /// Continue strictly after this position (in `order`).
    pub after: Option<TrailPos>,
}

impl AuditQuery {
    pub fn parse_limit(raw: Option<&str>) -> Result<usize, Invalid> {
        match raw {
            None => Ok(DEFAULT_LIMIT),
            Some(r) => r
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| Invalid::new("limit", "must be an integer from 1 to 1000")),
        }
    }
}

/// One page of audit entries. `next_cursor` is null when nothing follows;
/// a filtered page may hold fewer than `limit` entries (even none) and still
/// have a cursor: the scan per request is bounded, so keep following it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub items: Vec<Audit>,
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_defaults_to_100_and_takes_1_to_1000() {
        assert_eq!(AuditQuery::parse_limit(None).ok(), Some(DEFAULT_LIMIT));
        assert_eq!(AuditQuery::parse_limit(Some("1")).ok(), Some(1));
        assert_eq!(AuditQuery::parse_limit(Some("1000")).ok(), Some(MAX_LIMIT));
        for raw in ["0", "1001", "ten", "-1", "", "1.5", " 5"] {
            assert_eq!(
                AuditQuery::parse_limit(Some(raw))
                    .err()
                    .map(|e| e.to_string())
                    .as_deref(),
                Some("limit must be an integer from 1 to 1000"),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn cursors_round_trip_and_nothing_else_is_one() {
        let pos = TrailPos {
            at: Timestamp::from_micros(1_788_249_600_123_456),
            id: 42,
        };
        assert_eq!(TrailPos::parse_cursor(&pos.cursor()).ok(), Some(pos));
        for raw in ["garbage", "1.x", "x.1", "", ".", "1", "1.-2", "1.2.3"] {
            assert_eq!(
                TrailPos::parse_cursor(raw).err().map(|e| e.to_string()).as_deref(),
                Some("cursor is not a cursor this service handed out"),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn order_is_asc_or_desc() {
        assert_eq!(Order::parse("asc").ok(), Some(Order::Asc));
        assert_eq!(Order::parse("desc").ok(), Some(Order::Desc));
        for raw in ["up", "ASC", "", "descending"] {
            assert_eq!(
                Order::parse(raw).err().map(|e| e.to_string()).as_deref(),
                Some("order must be asc or desc"),
                "{raw:?}"
            );
        }
    }
}
