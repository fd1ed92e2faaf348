//! The one way a domain value refuses raw input: which field, and the rule
//! it broke. The HTTP layer turns it into a 422; nothing here knows that.

/// A raw value that does not make a valid domain value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(String);

impl Invalid {
    /// `"{field} {rule}"`, e.g. `learner_id must be 1 to 255 characters`.
    pub fn new(field: &str, rule: &str) -> Self {
        Invalid(format!("{field} {rule}"))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}
