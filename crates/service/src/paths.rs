//! Which MediaMTX paths are inputs, and where each one's output goes: the
//! input pattern (default `live/{id}/in`) and the output template (default
//! `live/{id}/out`), each with one `{id}`. A path is an input only if it
//! matches the pattern with a valid stream id; the service's own outputs
//! never do (the pattern and the template must differ).

use ingest::StreamId;

use crate::error::ServiceError;

pub const DEFAULT_INPUT: &str = "live/{id}/in";
pub const DEFAULT_OUTPUT: &str = "live/{id}/out";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathPattern {
    prefix: String,
    suffix: String,
}

/// What a path is to the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Matched {
    Input(StreamId),
    /// It has the input's shape but its id is not one: why.
    BadId(String),
    NotAnInput,
}

impl PathPattern {
    pub(crate) fn parse(text: &str, what: &str) -> Result<Self, ServiceError> {
        let (prefix, suffix) = text.split_once("{id}").ok_or_else(|| {
            ServiceError::Config(format!(
                "{what} '{text}' has no {{id}}; expected e.g. '{DEFAULT_INPUT}'"
            ))
        })?;
        if suffix.contains("{id}") {
            return Err(ServiceError::Config(format!("{what} '{text}' has {{id}} twice")));
        }
        Ok(Self {
            prefix: prefix.to_owned(),
            suffix: suffix.to_owned(),
        })
    }

    /// The path for stream `id`.
    pub(crate) fn path(&self, id: &StreamId) -> String {
        format!("{}{id}{}", self.prefix, self.suffix)
    }

    pub(crate) fn matches(&self, path: &str) -> Matched {
        let Some(id) = path
            .strip_prefix(&self.prefix)
            .and_then(|rest| rest.strip_suffix(&self.suffix))
        else {
            return Matched::NotAnInput;
        };
        if id.is_empty() {
            return Matched::NotAnInput;
        }
        match StreamId::parse(id) {
            Ok(id) => Matched::Input(id),
            Err(e) => Matched::BadId(e.to_string()),
        }
    }

    /// Whether two patterns could name the same path.
    pub(crate) fn overlaps(&self, other: &Self) -> bool {
        self == other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_recognised_and_outputs_are_not() {
        let input = PathPattern::parse(DEFAULT_INPUT, "input").unwrap();
        let output = PathPattern::parse(DEFAULT_OUTPUT, "output").unwrap();
        assert_eq!(
            input.matches("live/cam1/in"),
            Matched::Input(StreamId::parse("cam1").unwrap())
        );
        assert_eq!(input.matches("live/cam1/out"), Matched::NotAnInput);
        assert_eq!(input.matches("live//in"), Matched::NotAnInput);
        assert_eq!(input.matches("other/cam1/in"), Matched::NotAnInput);
        assert!(matches!(input.matches("live/a b/in"), Matched::BadId(reason) if reason.contains("a b")));
        assert_eq!(output.path(&StreamId::parse("cam1").unwrap()), "live/cam1/out");
        assert!(!input.overlaps(&output));
        let message = PathPattern::parse("live/in", "input").unwrap_err().to_string();
        assert!(message.contains("{id}"), "{message}");
    }
}
