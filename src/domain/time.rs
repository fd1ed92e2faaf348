use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize, Serializer};

use super::Invalid;

/// Microseconds since the Unix epoch, UTC. Stored as an integer; rendered on
/// the wire as RFC 3339 with an offset, as the contract requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn now() -> Self {
        Self(Utc::now().timestamp_micros())
    }

    pub fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    pub fn micros(self) -> i64 {
        self.0
    }

    /// Minutes since the Unix epoch (floored, also before 1970).
    pub fn minute(self) -> i64 {
        self.0.div_euclid(60_000_000)
    }

    /// The first instant of `minute` (as counted by `minute`).
    pub fn minute_start(minute: i64) -> Self {
        Self(minute.saturating_mul(60_000_000))
    }

    /// An RFC 3339 time with an offset (`2026-09-01T08:00:00Z`, `...+02:00`).
    pub fn parse_rfc3339(field: &str, raw: &str) -> Result<Self, Invalid> {
        DateTime::parse_from_rfc3339(raw.trim())
            .map(|t| Self(t.timestamp_micros()))
            .map_err(|_| Invalid::new(field, "must be an RFC 3339 time with an offset"))
    }

    pub fn rfc3339(self) -> String {
        DateTime::<Utc>::from_timestamp_micros(self.0)
            .unwrap_or_default()
            .to_rfc3339_opts(SecondsFormat::Micros, true)
    }
}

/// Records store the integer; JSON carries the RFC 3339 string. Bincode is not
/// human readable, which is how the two are told apart.
impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.rfc3339())
        } else {
            s.serialize_i64(self.0)
        }
    }
}

/// In JSON: RFC 3339 in UTC with microseconds (`2026-09-01T08:00:00.123456Z`).
impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some("RFC 3339 in UTC, with microseconds"))
            .examples(["2026-09-01T08:00:00.123456Z"])
            .into()
    }
}

impl utoipa::ToSchema for Timestamp {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_rfc3339_with_offset_and_micros() {
        assert_eq!(
            Timestamp::from_micros(1_788_249_600_123_456).rfc3339(),
            "2026-09-01T08:00:00.123456Z"
        );
    }

    #[test]
    fn parses_rfc3339_with_an_offset_only() {
        let at = Timestamp::parse_rfc3339("since", "2026-09-01T08:00:00Z").ok();
        assert_eq!(at, Some(Timestamp::from_micros(1_788_249_600_000_000)));
        assert_eq!(
            Timestamp::parse_rfc3339("since", " 2026-09-01T10:00:00.5+02:00 ").ok(),
            Some(Timestamp::from_micros(1_788_249_600_500_000))
        );
        for raw in ["yesterday", "2026-01-01", "2026-09-01T08:00:00", "", "1788249600"] {
            assert_eq!(
                Timestamp::parse_rfc3339("until", raw)
                    .err()
                    .map(|e| e.to_string())
                    .as_deref(),
                Some("until must be an RFC 3339 time with an offset"),
                "{raw:?}"
            );
        }
    }
}
