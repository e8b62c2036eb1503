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

pub mod backoff;
pub mod config;
pub mod container;
mod dubbing;
pub mod error;
pub mod events;
mod gst_logging;
mod guard;
pub mod manifest;
pub mod media;
pub mod pipeline;
pub mod planted;
pub mod rtmp_url;
pub mod runner;
pub mod segment_writer;
pub mod segmenter;
mod session;
pub mod stream_id;
mod teardown;
pub mod timeline;
pub mod tracks;

use std::sync::OnceLock;

pub use config::{SourceElement, WorkerConfig};
pub use dubbing::{StsAudioFormat, StsSettings};
pub use error::{ConfigError, IngestError, StreamError};
pub use events::WorkerEvent;
pub use manifest::{ConnectionRecord, FragmentRecord, FragmentStatus, ManifestEntry, SegmentRecord};
pub use media::MediaKind;
pub use rtmp_url::RtmpUrl;
pub use runner::{RunSummary, Stopper, WorkerHandle, WorkerRunner};
pub use stream_id::StreamId;

/// Initialises GStreamer once per process.
pub fn gst_init() -> Result<(), IngestError> {
    static INIT: OnceLock<Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| {
        gstreamer::init().map_err(|e| e.to_string())?;
        gst_logging::configure();
        Ok(())
    })
    .clone()
    .map_err(IngestError::GstInit)
}

/// Fails with the name of the first element that is not installed.
pub fn check_elements(names: &[&str]) -> Result<(), IngestError> {
    gst_init()?;
    for name in names {
        if gstreamer::ElementFactory::find(name).is_none() {
            return Err(IngestError::MissingElement {
                element: (*name).to_owned(),
                reason: "no such element factory is registered".into(),
            });
        }
    }
    Ok(())
}
