//! Stream identifiers: the `<id>` in `live/<id>/in`, which also names the
//! output directory, so it must be a safe single path component.

use std::fmt;

use crate::error::ConfigError;

/// Longest id we accept; keeps directory names sane on every filesystem.
const MAX_LEN: usize = 128;

/// A validated stream id: ASCII letters, digits, `-`, `_` and `.`, not
/// starting with a dot (so `.`, `..` and hidden directories are impossible).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
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

    /// The stream's input path on MediaMTX, `{app_path}/{id}/in` (the
    /// only place it is spelt out; `app_path` without its slashes).
    pub fn input_path(&self, app_path: &str) -> String {
        format!("{}/{}/in", app_path.trim_matches('/'), self.0)
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

    #[test]
    fn the_input_path_is_app_id_in() {
        let id = StreamId::parse("cam-1").unwrap();
        assert_eq!(id.input_path("live"), "live/cam-1/in");
        assert_eq!(id.input_path("/a/b/"), "a/b/cam-1/in");
    }

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
        let longest = "a".repeat(MAX_LEN);
        assert_eq!(StreamId::parse(&longest).unwrap().as_str(), longest);
        let long = "a".repeat(MAX_LEN + 1);
        let message = StreamId::parse(&long).unwrap_err().to_string();
        assert!(message.contains("longer than 128 characters"), "{message}");
    }

    #[test]
    fn prints_and_converts_as_the_bare_id() {
        let id = StreamId::parse("cam-1").unwrap();
        assert_eq!(id.to_string(), "cam-1");
        assert_eq!(String::from(id.clone()), "cam-1");
        assert_eq!(StreamId::try_from("cam-1".to_owned()).unwrap(), id);
        assert!(StreamId::try_from("../cam".to_owned()).is_err());
    }

    #[test]
    fn serialises_as_a_string_and_checks_what_it_reads() {
        let id = StreamId::parse("cam-1").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"cam-1\"");
        assert_eq!(serde_json::from_str::<StreamId>("\"cam-1\"").unwrap(), id);
        let error = serde_json::from_str::<StreamId>("\"../etc\"").unwrap_err();
        assert!(error.to_string().contains("starts with '.'"), "{error}");
    }
}
