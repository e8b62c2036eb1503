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
}

impl IngestError {
    /// A stable, snake_case name of the error kind, for snapshots and exit reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Config(ConfigError::InvalidUrl { .. }) => "invalid_url",
            Self::Config(ConfigError::InvalidStreamId { .. }) => "invalid_stream_id",
            Self::Config(_) => "invalid_config",
            Self::Stream(StreamError::UnsupportedCodec { .. }) => "unsupported_codec",
            Self::Stream(StreamError::MissingTrack { .. }) => "missing_track",
            Self::Stream(StreamError::CodecChanged { .. }) => "codec_changed",
            Self::MissingElement { .. } => "missing_element",
            Self::GstInit(_) => "gstreamer_init",
            Self::Pipeline { .. } => "pipeline",
            Self::Io { .. } => "io",
            Self::RetriesExhausted { .. } => "retries_exhausted",
            Self::WorkerLost => "worker_lost",
            Self::Spawn(_) => "spawn",
            Self::Sts(_) => "sts",
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            error: source,
        }
    }
}
