use std::sync::Arc;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use super::Invalid;

/// Control characters (NUL, newline, ESC, ...) and the bidirectional
/// embedding, override and isolate marks, which make text read differently
/// from what it holds (e.g. an audit reason that hides what follows it).
fn has_control(raw: &str) -> bool {
    raw.chars()
        .any(|c| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
}

/// A tenant's display name: 1 to 255 characters, not blank, no control
/// characters. Stored verbatim (no trimming): names are shown to people and
/// the old service kept them exactly as given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct TenantName(String);

impl TenantName {
    pub fn parse(raw: String) -> Result<Self, Invalid> {
        let chars = raw.chars().count();
        if raw.trim().is_empty() || chars > 255 {
            return Err(Invalid::new("name", "must be 1 to 255 characters and not blank"));
        }
        if has_control(&raw) {
            return Err(Invalid::new("name", "must not contain control characters"));
        }
        Ok(Self(raw))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Parses an identifier that is compared for equality: trimmed, so that
/// "learner_1 " and "learner_1" are the same learner, 1 to 255 characters.
fn identifier<'a>(field: &'static str, raw: &'a str) -> Result<&'a str, Invalid> {
    let trimmed = raw.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 255 {
        return Err(Invalid::new(field, "must be 1 to 255 characters and not blank"));
    }
    if has_control(trimmed) {
        return Err(Invalid::new(field, "must not contain control characters"));
    }
    Ok(trimmed)
}

/// A learner's id as given by the platform. Held inline when it is at most
/// 24 bytes (`learner_123`, `l-000042`; a UUID is not): a seat's slot then
/// holds it without a heap allocation of its own: those allocations, and
/// the fragmentation they left among the start-up scan's freed memory, were
/// a large part of a full pool's memory.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = String)]
pub struct LearnerId(CompactString);

impl LearnerId {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
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
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = String)]
pub struct UserId(Arc<str>);

impl UserId {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        if raw.is_empty() || raw.len() > 255 {
            return Err(Invalid::new("user_id", "must be 1 to 255 characters"));
        }
        let printable = raw.bytes().all(|b| b == b' ' || b.is_ascii_graphic());
        if !printable || raw.starts_with(' ') || raw.ends_with(' ') {
            return Err(Invalid::new(
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

/// Why a seat was reclaimed: at most 500 characters, no control characters
/// (it is shown in the audit trail as given). A blank reason means the
/// caller gave none, and the contract's default sentence is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

impl Reason {
    pub const RECLAIM_DEFAULT: &'static str = "Seat reclaimed";

    pub fn parse_reclaim(raw: Option<String>) -> Result<Self, Invalid> {
        match raw {
            Some(r) if r.chars().count() > 500 => Err(Invalid::new("reason", "must be at most 500 characters")),
            Some(r) if has_control(&r) => Err(Invalid::new("reason", "must not contain control characters")),
            Some(r) if !r.trim().is_empty() => Ok(Self(r)),
            _ => Ok(Self(Self::RECLAIM_DEFAULT.to_owned())),
        }
    }

    pub fn into_string(self) -> String {
        self.0
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_refuse_control_and_bidi_override_characters() {
        for bad in [
            "a\u{0}b",
            "line\nbreak",
            "esc\u{1b}[31m",
            "right\u{202e}left",
            "iso\u{2066}late",
        ] {
            let err = Reason::parse_reclaim(Some(bad.to_owned())).err();
            assert!(
                err.is_some_and(|e| e.to_string().contains("control characters")),
                "{bad:?}"
            );
        }
        assert_eq!(
            Reason::parse_reclaim(Some("Moved to Shelbyville 🏫".into())).map(Reason::into_string),
            Ok("Moved to Shelbyville 🏫".to_owned())
        );
        assert!(TenantName::parse("evil\u{202e}txt.exe".into()).is_err());
        assert!(LearnerId::parse("l\u{2067}1").is_err());
    }

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

    /// The message a refused value gets, whatever the error type.
    fn refusal<T, E: std::fmt::Display>(parsed: Result<T, E>) -> Option<String> {
        parsed.err().map(|e| e.to_string())
    }

    const BLANK_NAME: &str = "name must be 1 to 255 characters and not blank";
    const CONTROL_NAME: &str = "name must not contain control characters";

    #[test]
    fn names_blank_too_long_or_with_control_characters_are_refused() {
        for (name, says) in [
            (String::new(), BLANK_NAME),
            (" ".into(), BLANK_NAME),
            ("     ".into(), BLANK_NAME),
            ("\t".into(), BLANK_NAME),
            ("\n".into(), BLANK_NAME),
            // Ideographic space is whitespace too.
            (" \u{3000} ".into(), BLANK_NAME),
            ("a".repeat(256), BLANK_NAME),
            ("é".repeat(256), BLANK_NAME),
            ("🏫".repeat(256), BLANK_NAME),
            ("x".repeat(10_000), BLANK_NAME),
            (" ".repeat(10_000), BLANK_NAME),
            ("bad\u{0}name".into(), CONTROL_NAME),
            ("line\nbreak".into(), CONTROL_NAME),
            ("bell\u{7}".into(), CONTROL_NAME),
        ] {
            let shown = name.chars().take(20).collect::<String>();
            assert_eq!(refusal(TenantName::parse(name)).as_deref(), Some(says), "{shown:?}");
        }
    }

    #[test]
    fn odd_but_valid_names_are_kept_verbatim() {
        for name in [
            "a".to_string(),
            "Ünïcødé Dístrïct".into(),
            "🏫🎒📚 Emoji Academy 👩‍🏫".into(),
            "\"double\" 'single' `back`".into(),
            "back\\slash \\n \\u0000 \\\\".into(),
            "<script>alert('x')</script>".into(),
            "Robert'); DROP TABLE tenants;--".into(),
            "{\"json\": [1, 2]}".into(),
            "  leading and trailing spaces  ".into(),
            "مدرسة الشروق".into(),
            "北京市第一中学".into(),
            "e\u{301}\u{302} combining".into(),
            "zero\u{200b}width".into(),
            "%41%00 percent".into(),
            // 255 characters, however many bytes each.
            "a".repeat(255),
            "é".repeat(255),
            "🏫".repeat(255),
            "学".repeat(255),
        ] {
            let parsed = TenantName::parse(name.clone());
            assert_eq!(parsed.ok().map(|n| n.as_str().to_owned()), Some(name));
        }
    }

    #[test]
    fn learner_ids_blank_too_long_or_with_control_characters_are_refused() {
        const BLANK: &str = "learner_id must be 1 to 255 characters and not blank";
        const CONTROL: &str = "learner_id must not contain control characters";
        for (learner, says) in [
            (String::new(), BLANK),
            (" ".into(), BLANK),
            ("\t \n".into(), BLANK),
            ("x".repeat(256), BLANK),
            ("é".repeat(256), BLANK),
            ("x".repeat(10_000), BLANK),
            ("bad\u{0}learner".into(), CONTROL),
        ] {
            let shown = learner.chars().take(20).collect::<String>();
            assert_eq!(refusal(LearnerId::parse(&learner)).as_deref(), Some(says), "{shown:?}");
        }
        // The longest the contract allows, in characters.
        let long = "é".repeat(255);
        assert_eq!(LearnerId::parse(&long).ok().map(|l| l.as_str().to_owned()), Some(long));
    }

    #[test]
    fn user_ids_are_taken_exactly_as_sent_or_refused() {
        const LENGTH: &str = "user_id must be 1 to 255 characters";
        const PRINTABLE: &str =
            "user_id must be printable ASCII, without control characters or leading or trailing spaces";
        for (user, says) in [
            (String::new(), LENGTH),
            ("u".repeat(256), LENGTH),
            ("u".repeat(10_000), LENGTH),
            ("   ".into(), PRINTABLE),
            (" teacher_1 ".into(), PRINTABLE),
            ("root\n".into(), PRINTABLE),
            ("bad\u{0}user".into(), PRINTABLE),
            ("r\u{f6}\u{f6}t".into(), PRINTABLE),
            ("root\u{a0}".into(), PRINTABLE),
        ] {
            assert_eq!(refusal(UserId::parse(&user)).as_deref(), Some(says), "{user:?}");
        }
        assert_eq!(
            UserId::parse("user with space").ok().map(|u| u.as_str().to_owned()),
            Some("user with space".into())
        );
        assert!(UserId::parse(&"u".repeat(255)).is_ok());
    }

    #[test]
    fn reclaim_reasons_over_500_characters_are_refused() {
        for reason in ["r".repeat(501), "é".repeat(501), "🏫".repeat(501), "r".repeat(10_000)] {
            let chars = reason.chars().count();
            assert_eq!(
                refusal(Reason::parse_reclaim(Some(reason))).as_deref(),
                Some("reason must be at most 500 characters"),
                "{chars} chars"
            );
        }
        // Exactly 500 multi-byte characters are kept verbatim.
        let reason = "é".repeat(500);
        assert_eq!(
            Reason::parse_reclaim(Some(reason.clone()))
                .ok()
                .map(Reason::into_string),
            Some(reason)
        );
    }
}
