//! Stream identifiers: the `<id>` in `live/<id>/in`, which also names the
//! output directory, so it must be a safe single path component.

use std::fmt;

use crate::error::ConfigError;

/// Longest id we accept; keeps directory names sane on every filesystem.
const MAX_LEN: usize = 128;

/// A validated stream id: ASCII letters, digits, `-`, `_` and `.`, not
/// starting with a dot (so `.`, `..` and hidden directories are impossible).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StreamId(String);

impl StreamId {
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: &str| ConfigError::InvalidStreamId {
            id: raw.to_owned(),
            reason: reason.to_owned(),
        };
        if raw.trim().is_empty() {
            return Err(invalid("it is empty"));
        }
        if raw.len() > MAX_LEN {
            return Err(invalid(&format!("it is longer than {MAX_LEN} characters")));
        }
        if raw.starts_with('.') {
            return Err(invalid("it starts with '.'"));
        }
        if let Some(bad) = raw
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return Err(invalid(&format!("it contains {bad:?}")));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for StreamId {
    type Error = ConfigError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<StreamId> for String {
    fn from(value: StreamId) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case("abc")]
    #[case("stream-1")]
    #[case("a_b.c")]
    #[case("0")]
    fn accepts_safe_names(#[case] id: &str) {
        assert_eq!(StreamId::parse(id).unwrap().as_str(), id);
    }

    #[rstest]
    #[case("", "empty")]
    #[case("   ", "empty")]
    #[case("../x", "starts with '.'")]
    #[case("..", "starts with '.'")]
    #[case(".hidden", "starts with '.'")]
    #[case("a/b", "'/'")]
    #[case("a\\b", "'\\\\'")]
    #[case("a b", "' '")]
    #[case("tab\there", "'\\t'")]
    #[case("é", "'é'")]
    fn refuses_unsafe_names(#[case] id: &str, #[case] reason: &str) {
        let message = StreamId::parse(id).unwrap_err().to_string();
        assert!(message.contains(reason), "{message:?} should mention {reason:?}");
        assert!(message.contains("stream id"), "{message:?}");
    }

    #[test]
    fn refuses_overlong_names() {
        let long = "a".repeat(MAX_LEN + 1);
        assert!(StreamId::parse(&long).is_err());
    }
}
