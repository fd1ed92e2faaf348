use serde::{Deserialize, Serialize};

use super::Invalid;

/// A positive integer id. The contract promises positive JSON integers, so zero
/// is never a valid id; `parse` is the only way to get one from a request.
macro_rules! id_type {
    ($name:ident, $field:literal) => {
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
        )]
        #[serde(transparent)]
        #[schema(description = "A positive integer id.")]
        pub struct $name(u64);

        impl Id for $name {
            const FIELD: &'static str = $field;
            fn new(raw: u64) -> Option<Self> {
                (raw > 0).then_some(Self(raw))
            }
            fn get(self) -> u64 {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

pub trait Id: Sized + Copy {
    /// The request field this id arrives in, for error sentences.
    const FIELD: &'static str;
    fn new(raw: u64) -> Option<Self>;
    fn get(self) -> u64;

    /// Parses an id from a path segment or query value.
    fn parse_str(raw: &str) -> Result<Self, Invalid> {
        // Digits only: `u64::from_str` would also take "+1".
        Some(raw)
            .filter(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|r| r.parse::<u64>().ok())
            .and_then(Self::new)
            .ok_or_else(|| Invalid::new(Self::FIELD, "must be a positive integer"))
    }

    /// Accepts an id that arrived as a JSON integer.
    fn from_u64(raw: u64) -> Result<Self, Invalid> {
        Self::new(raw).ok_or_else(|| Invalid::new(Self::FIELD, "must be a positive integer"))
    }
}

id_type!(TenantId, "tenant_id");
id_type!(SeatId, "seat_id");
id_type!(AuditId, "audit_id");
id_type!(RoleId, "role_id");
id_type!(EventId, "event_id");

impl SeatId {
    /// Above every seat id (a bound for ranges keyed by seat).
    pub const MAX: SeatId = SeatId(u64::MAX);

    /// The seat `offset` places after this one in a contiguous purchase block.
    pub fn offset(self, offset: u64) -> SeatId {
        SeatId(self.0 + offset)
    }
}

impl AuditId {
    pub fn offset(self, offset: u64) -> AuditId {
        AuditId(self.0 + offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_in_paths_and_queries_are_plain_positive_decimals() {
        // Segments arrive percent-encoded (`%20`), so those are refused as they are.
        for raw in [
            "0",
            "00",
            "-1",
            "+1",
            "",
            " 1",
            "1 ",
            "abc",
            "1.5",
            "1e3",
            "0x10",
            "%20",
            "%00",
            "%FF",
            "1%2F2",
            "%F0%9F%8F%AB",
            "🏫",
            "99999999999999999999",
            "18446744073709551616",
        ] {
            assert_eq!(
                TenantId::parse_str(raw).err().map(|e| e.to_string()).as_deref(),
                Some("tenant_id must be a positive integer"),
                "{raw:?}"
            );
            assert!(SeatId::parse_str(raw).is_err(), "{raw:?}");
        }
        for (raw, id) in [
            ("1", 1),
            ("007", 7),
            ("999999", 999_999),
            ("18446744073709551615", u64::MAX),
        ] {
            assert_eq!(TenantId::parse_str(raw).ok().map(Id::get), Some(id), "{raw:?}");
        }
    }

    #[test]
    fn each_id_names_its_own_field() {
        assert_eq!(
            SeatId::parse_str("abc").err().map(|e| e.to_string()).as_deref(),
            Some("seat_id must be a positive integer")
        );
        assert_eq!(
            RoleId::parse_str("0").err().map(|e| e.to_string()).as_deref(),
            Some("role_id must be a positive integer")
        );
    }

    #[test]
    fn ids_in_json_are_positive() {
        assert_eq!(
            SeatId::from_u64(0).err().map(|e| e.to_string()).as_deref(),
            Some("seat_id must be a positive integer")
        );
        assert_eq!(
            TenantId::from_u64(0).err().map(|e| e.to_string()).as_deref(),
            Some("tenant_id must be a positive integer")
        );
        assert_eq!(TenantId::from_u64(1).ok().map(Id::get), Some(1));
        assert_eq!(SeatId::from_u64(u64::MAX).ok().map(Id::get), Some(u64::MAX));
    }
}
