//! RTMP ingest for the live-dubbing pipeline.
//!
//! Pulls `rtmp://<mediamtx>:1935/live/<id>/in`, refuses streams it cannot
//! serve (not H.264 + AAC, a missing track), and cuts the stream, codec
//! copy, into keyframe-aligned MPEG-TS segments per track, written
//! atomically with a JSON-lines manifest and latency figures. When the stream
//! is missing or drops, it reconnects with backoff and continues numbering.
//!
//! Data flows one way:
//! [`pipeline`] (GStreamer threads) -> [`session`] (validation, timelines)
//! -> [`segmenter`] (pure cutting logic) -> [`segment_writer`] (files,
//! [`manifest`]) -> [`events`] for the owner, all driven by [`runner`].
//! With an `sts` section in the configuration, the audio segments announced
//! on the events path are also delivered to the STS (`dubbing`, on the
//! `sts` crate), whose answers are recorded in the manifest.

mod config;
mod container;
mod dubbing;
mod error;
mod events;
mod fence;
mod gst_logging;
mod gst_runtime;
mod guard;
mod join_gate;
mod manifest;
mod media;
mod output;
mod pipeline;
#[cfg(feature = "planted-faults")]
pub mod planted;
#[cfg(not(feature = "planted-faults"))]
mod planted;
mod rtmp_url;
mod runner;
mod segment_writer;
mod segmenter;
mod session;
mod stream_id;
mod streaming_thread;
mod teardown;
mod timeline;
mod tracks;

pub use config::{DEFAULT_RECONNECT, DEFAULT_UNREACHABLE, MAX_ATTACH_DELAY, SourceElement, WorkerConfig};
pub use dubbing::{StsAudioFormat, StsSettings};
pub use error::{ConfigError, ErrorKind, IngestError, StreamError};
pub use events::WorkerEvent;
pub use fence::WriteFence;
pub use gst_runtime::{check_elements, gst_init};
pub use manifest::{
    ConnectionRecord, FragmentRecord, FragmentStatus, JoinRecord, MANIFEST_FILE, Manifest, ManifestEntry,
    OutputRecord, SegmentRecord, Span, TakeoverRecord,
};
pub use media::MediaKind;
pub use output::{DEFAULT_STS_BUDGET, Fallback, OutputSettings, SpanAudio};
pub use pipeline::REQUIRED_ELEMENTS;
pub use rtmp_url::RtmpUrl;
pub use runner::{RunSummary, Stopper, WorkerHandle, WorkerRunner};
pub use segmenter::SegmentEnd;
pub use session::Reception;
pub use stream_id::StreamId;

/// MediaMTX's application for inputs: streams are `live/<id>/in`.
pub const DEFAULT_APP_PATH: &str = "live";
