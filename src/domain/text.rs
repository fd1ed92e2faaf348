use std::sync::Arc;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use crate::error::Error;

fn has_control(raw: &str) -> bool {
    raw.chars().any(char::is_control)
}

/// A tenant's display name: 1 to 255 characters, not blank, no control
/// characters. Stored verbatim (no trimming): names are shown to people and
/// the old service kept them exactly as given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantName(String);

impl TenantName {
    pub fn parse(raw: String) -> Result<Self, Error> {
        let chars = raw.chars().count();
        if raw.trim().is_empty() || chars > 255 {
            return Err(Error::invalid("name", "must be 1 to 255 characters and not blank"));
        }
        if has_control(&raw) {
            return Err(Error::invalid("name", "must not contain control characters"));
        }
        Ok(Self(raw))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Parses an identifier that is compared for equality: trimmed, so that
/// "learner_1 " and "learner_1" are the same learner, 1 to 255 characters.
fn identifier<'a>(field: &'static str, raw: &'a str) -> Result<&'a str, Error> {
    let trimmed = raw.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 255 {
        return Err(Error::invalid(field, "must be 1 to 255 characters and not blank"));
    }
    if has_control(trimmed) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(trimmed)
}

/// A learner's id as given by the platform. Held inline when it is at most
/// 24 bytes (`learner_123`, `l-000042`; a UUID is not): a seat's slot then
/// holds it without a heap allocation of its own. At 1,000,000 allocated
/// seats those allocations were 48 MB, and more in the fragmentation they
/// left among the start-up scan's freed memory.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LearnerId(CompactString);

impl LearnerId {
    pub fn parse(raw: &str) -> Result<Self, Error> {
        identifier("learner_id", raw).map(|id| Self(CompactString::new(id)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A user id: the caller from `X-User-ID` or a token's `sub`, or the
/// subject of a role. Taken exactly as sent or refused, never normalized:
/// 1 to 255 printable ASCII characters, spaces allowed only inside, no
/// control characters. Trimming " root " or dropping a U+00A0 would make it
/// another user's identity, `root`. ASCII only because `X-User-ID` cannot
/// carry anything else: a role can only be granted to an id that can
/// authenticate, in either auth mode.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(Arc<str>);

impl UserId {
    pub fn parse(raw: &str) -> Result<Self, Error> {
        if raw.is_empty() || raw.len() > 255 {
            return Err(Error::invalid("user_id", "must be 1 to 255 characters"));
        }
        let printable = raw.bytes().all(|b| b == b' ' || b.is_ascii_graphic());
        if !printable || raw.starts_with(' ') || raw.ends_with(' ') {
            return Err(Error::invalid(
                "user_id",
                "must be printable ASCII, without control characters or leading or trailing spaces",
            ));
        }
        Ok(Self(Arc::from(raw)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a seat was reclaimed: at most 500 characters. A blank reason means the
/// caller gave none, and the contract's default sentence is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

impl Reason {
    pub const RECLAIM_DEFAULT: &'static str = "Seat reclaimed";

    pub fn parse_reclaim(raw: Option<String>) -> Result<Self, Error> {
        match raw {
            Some(r) if r.chars().count() > 500 => Err(Error::invalid("reason", "must be at most 500 characters")),
            Some(r) if !r.trim().is_empty() => Ok(Self(r)),
            _ => Ok(Self(Self::RECLAIM_DEFAULT.to_owned())),
        }
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_verbatim_and_bounded() {
        let odd = "  Ünïcødé \"quoted\" 'district' 🏫 ".to_owned();
        assert_eq!(TenantName::parse(odd.clone()).ok().map(|n| n.0), Some(odd));
        assert!(TenantName::parse(String::new()).is_err());
        assert!(TenantName::parse("   ".into()).is_err());
        assert!(TenantName::parse("a".repeat(256)).is_err());
        assert!(TenantName::parse("é".repeat(255)).is_ok());
        assert!(TenantName::parse("bad\0name".into()).is_err());
    }

    #[test]
    fn learner_ids_are_trimmed_identifiers() {
        assert_eq!(
            LearnerId::parse(" l1 ").ok().map(|l| l.as_str().to_owned()),
            Some("l1".into())
        );
        assert!(LearnerId::parse("").is_err());
        assert!(LearnerId::parse(&"x".repeat(10_000)).is_err());
    }

    #[test]
    fn user_ids_are_exact_or_refused() {
        let parsed = |raw: &str| UserId::parse(raw).ok().map(|u| u.as_str().to_owned());
        assert_eq!(parsed("root"), Some("root".into()));
        assert_eq!(parsed("a.b-c_d@e:f/1"), Some("a.b-c_d@e:f/1".into()));
        assert_eq!(parsed("user with space"), Some("user with space".into()));
        assert_eq!(parsed(&"u".repeat(255)), Some("u".repeat(255)));
        for bad in [
            "",
            " ",
            " root",
            "root ",
            "root\t",
            "ro\tot",
            "root\n",
            "root\u{0}",
            "root\u{7f}",
            "root\u{a0}",
            "root\u{3000}",
            "root\u{200b}",
            "jos\u{e9}",
            &"u".repeat(256),
        ] {
            assert_eq!(parsed(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn reclaim_reason_defaults_and_limits() {
        assert_eq!(
            Reason::parse_reclaim(None).ok().map(Reason::into_string),
            Some("Seat reclaimed".into())
        );
        assert_eq!(
            Reason::parse_reclaim(Some(" ".into())).ok().map(Reason::into_string),
            Some("Seat reclaimed".into())
        );
        assert!(Reason::parse_reclaim(Some("r".repeat(501))).is_err());
        assert!(Reason::parse_reclaim(Some("r".repeat(500))).is_ok());
    }
}
