//! Error types. Every message says what was wrong and what is expected.

use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

use crate::media::MediaKind;

/// A configuration the ingest cannot run with; detected before connecting.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum ConfigError {
    #[error("invalid RTMP URL '{url}': {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error(
        "invalid stream id {id:?}: {reason}; expected letters, digits, '-', '_' or '.' (the id names a directory)"
    )]
    InvalidStreamId { id: String, reason: String },
    #[error("invalid value for {field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("invalid value for reconnect: {0}")]
    Reconnect(#[from] reconnect::PolicyError),
    #[error("cannot read configuration file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("{}:{line}:{column}: {reason}", path.display())]
    FileSetting {
        path: PathBuf,
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("invalid environment variable {var}: {reason}")]
    Env { var: String, reason: String },
    #[error("invalid setting {key}: {reason}")]
    Setting { key: String, reason: String },
    #[error(
        "the URL's stream id '{url_id}' and stream_id '{stream_id}' disagree; give one of them, or the same id in both"
    )]
    ConflictingStreamId { url_id: String, stream_id: String },
}

/// The stream is not one this ingest can serve. Retrying cannot help, so the
/// runner stops instead of reconnecting.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum StreamError {
    #[error("unsupported {kind} codec: found {found}, but {required} is required")]
    UnsupportedCodec {
        kind: MediaKind,
        found: String,
        required: &'static str,
    },
    #[error(
        "{kind} track required: the stream has no {kind} track after waiting {waited:?}; this ingest needs H.264 video and AAC audio"
    )]
    MissingTrack { kind: MediaKind, waited: Duration },
    #[error(
        "{kind} track announced but no {kind} frame arrived within {waited:?}; the publisher must send a keyframe at least this often (raise keyframe_timeout for a longer GOP)"
    )]
    NoFrames { kind: MediaKind, waited: Duration },
    #[error("{kind} codec changed mid-stream from {from} to {to}; the publisher must restart the stream")]
    CodecChanged {
        kind: MediaKind,
        from: String,
        to: String,
    },
}

/// Everything that can stop an ingest.
#[derive(Debug, Error)]
pub enum IngestError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error(
        "GStreamer element '{element}' is not available: {reason} (run `cargo xtask deps` to install it)"
    )]
    MissingElement { element: String, reason: String },
    #[error("GStreamer could not be initialised: {0}")]
    GstInit(String),
    #[error("pipeline error from {source_element}: {message}")]
    Pipeline {
        source_element: String,
        message: String,
        debug: Option<String>,
    },
    // The OS error is part of the message and not a `source`, so a report
    // that prints the chain does not say it twice.
    #[error("cannot write {path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    #[error("gave up after {attempts} connection attempt{}; last failure: {last}", if *attempts == 1 { "" } else { "s" })]
    RetriesExhausted { attempts: u32, last: String },
    #[error("the worker thread ended without a result (it panicked; see the log)")]
    WorkerLost,
    #[error("cannot start the worker thread: {0}")]
    Spawn(std::io::Error),
    /// Delivery to the STS could not start or its records could not be
    /// kept; an STS that is away is never this (its fragments fail instead).
    #[error("STS delivery: {0}")]
    Sts(String),
    /// The caller's write fence said no: the worker stopped without
    /// writing anything more.
    #[error("stopped: this worker may not write for the stream any more ({reason})")]
    Fenced { reason: String },
}

/// What kind of failure stopped an ingest: stable names (snake_case in
/// events, exit reports and scenario files), so a caller decides on a
/// variant, never on a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    InvalidUrl,
    InvalidStreamId,
    InvalidConfig,
    UnsupportedCodec,
    MissingTrack,
    CodecChanged,
    MissingElement,
    #[serde(rename = "gstreamer_init")]
    GstInit,
    Pipeline,
    Io,
    RetriesExhausted,
    WorkerLost,
    Spawn,
    Sts,
    Fenced,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 15] = [
        Self::InvalidUrl,
        Self::InvalidStreamId,
        Self::InvalidConfig,
        Self::UnsupportedCodec,
        Self::MissingTrack,
        Self::CodecChanged,
        Self::MissingElement,
        Self::GstInit,
        Self::Pipeline,
        Self::Io,
        Self::RetriesExhausted,
        Self::WorkerLost,
        Self::Spawn,
        Self::Sts,
        Self::Fenced,
    ];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidUrl => "invalid_url",
            Self::InvalidStreamId => "invalid_stream_id",
            Self::InvalidConfig => "invalid_config",
            Self::UnsupportedCodec => "unsupported_codec",
            Self::MissingTrack => "missing_track",
            Self::CodecChanged => "codec_changed",
            Self::MissingElement => "missing_element",
            Self::GstInit => "gstreamer_init",
            Self::Pipeline => "pipeline",
            Self::Io => "io",
            Self::RetriesExhausted => "retries_exhausted",
            Self::WorkerLost => "worker_lost",
            Self::Spawn => "spawn",
            Self::Sts => "sts",
            Self::Fenced => "fenced",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl IngestError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Config(ConfigError::InvalidUrl { .. }) => ErrorKind::InvalidUrl,
            Self::Config(ConfigError::InvalidStreamId { .. }) => ErrorKind::InvalidStreamId,
            Self::Config(_) => ErrorKind::InvalidConfig,
            Self::Stream(StreamError::UnsupportedCodec { .. }) => ErrorKind::UnsupportedCodec,
            Self::Stream(StreamError::MissingTrack { .. } | StreamError::NoFrames { .. }) => {
                ErrorKind::MissingTrack
            }
            Self::Stream(StreamError::CodecChanged { .. }) => ErrorKind::CodecChanged,
            Self::MissingElement { .. } => ErrorKind::MissingElement,
            Self::GstInit(_) => ErrorKind::GstInit,
            Self::Pipeline { .. } => ErrorKind::Pipeline,
            Self::Io { .. } => ErrorKind::Io,
            Self::RetriesExhausted { .. } => ErrorKind::RetriesExhausted,
            Self::WorkerLost => ErrorKind::WorkerLost,
            Self::Spawn(_) => ErrorKind::Spawn,
            Self::Sts(_) => ErrorKind::Sts,
            Self::Fenced { .. } => ErrorKind::Fenced,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            error: source,
        }
    }
}

#[cfg(test)]
mod kind_tests {
    use super::ErrorKind;

    #[test]
    fn each_kind_is_its_snake_case_name_both_ways() {
        for kind in ErrorKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<ErrorKind>(&json).unwrap(), kind);
        }
        assert!(serde_json::from_str::<ErrorKind>("\"missing_trak\"").is_err());
    }
}
