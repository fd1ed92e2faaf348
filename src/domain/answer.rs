//! A write's stored answer, for `Idempotency-Key` replays: the status and
//! body the first request got, under a key scoped to its caller, with a
//! fingerprint of the request it answered (a retry must match it).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Hash, Timestamp};

/// Where a caller's key is stored: SHA-256 over the caller and the key, so
/// one caller's keys never meet another's and any key fits a fixed-size key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AnswerKey(pub Hash);

impl AnswerKey {
    pub fn new(caller: &str, key: &str) -> AnswerKey {
        let mut h = Sha256::new();
        h.update((caller.len() as u64).to_be_bytes());
        h.update(caller.as_bytes());
        h.update(key.as_bytes());
        AnswerKey(h.finalize().into())
    }
}

/// The answer as sent, and what it answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub key: AnswerKey,
    /// SHA-256 over the request's method, path, query and body.
    pub fingerprint: Hash,
    /// When the first request was answered; purged `retention` after.
    pub at: Timestamp,
    pub status: u16,
    pub body: Vec<u8>,
}

/// SHA-256 over a request's method, path, query and body.
pub fn fingerprint(method: &str, path: &str, query: Option<&str>, body: &[u8]) -> Hash {
    let mut h = Sha256::new();
    for part in [method.as_bytes(), path.as_bytes(), query.unwrap_or("").as_bytes()] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.update(body);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_scoped_by_caller_without_ambiguity() {
        assert_ne!(AnswerKey::new("alice", "k1"), AnswerKey::new("bob", "k1"));
        // "ab" + "c" is not "a" + "bc".
        assert_ne!(AnswerKey::new("ab", "c"), AnswerKey::new("a", "bc"));
        assert_eq!(AnswerKey::new("alice", "k1"), AnswerKey::new("alice", "k1"));
    }

    #[test]
    fn fingerprints_tell_requests_apart() {
        let f = |m, p, q, b: &[u8]| fingerprint(m, p, q, b);
        let base = f("POST", "/a", None, b"{}");
        assert_eq!(base, f("POST", "/a", Some(""), b"{}"));
        assert_ne!(base, f("PUT", "/a", None, b"{}"));
        assert_ne!(base, f("POST", "/a", Some("x=1"), b"{}"));
        assert_ne!(base, f("POST", "/a", None, b"{ }"));
        assert_ne!(f("POST", "/ab", None, b""), f("POST", "/a", Some("b"), b""));
    }
}
