//! The errors a caller can act on. Everything that goes wrong after
//! [`crate::StsClient::start`] (a lost STS, a failed fragment) is reported
//! as an [`crate::StsEvent`] with its reason instead, because the caller is
//! a segmenter that must not stop for it.

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid STS url {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("invalid {field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("invalid reconnect: {0}")]
    Reconnect(#[from] reconnect::PolicyError),
    #[error("{what} is not supported: {reason}")]
    Unsupported { what: &'static str, reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum StsError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("StsClient::start must be called from within a Tokio runtime")]
    NoRuntime,
}

/// Why a fragment was not taken; the segment stays on disk either way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("queue full: {max_queue} fragments already waiting or in flight")]
    QueueFull { max_queue: usize },
    #[error("sequence number {0} is already waiting or in flight")]
    Duplicate(u64),
    #[error("the STS client has stopped")]
    Stopped,
}
