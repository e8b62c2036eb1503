//! What the world leaves for the observers, per stream: the worker's events
//! with their times, how it ended, each publish's timings and what it could
//! deliver, what went wrong on the publishing side, the server's view and
//! the faults played. Raw: nothing here is judged.

use std::path::PathBuf;
use std::time::Duration;

use ingest::{IngestError, WorkerEvent};

use crate::world::faults::FaultRecord;

/// How the ingest ended, as outcomes compare it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestFailure {
    pub kind: ingest::ErrorKind,
    pub message: String,
}

impl From<&IngestError> for IngestFailure {
    fn from(e: &IngestError) -> Self {
        Self {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

/// One publish: what could be delivered, and how quickly the ingest came.
#[derive(Debug, Clone, Default)]
pub struct PhaseObservation {
    /// Pictures and pairable audio frames the window holds.
    pub video_frames: usize,
    pub audio_frames: usize,
    /// Where the window's last picture and audio frame end, on the
    /// publisher's timeline (seconds).
    pub video_end_s: Option<f64>,
    /// Where its window starts in the fixture: its publisher's first tag
    /// is at [`media_tools::LEAD_IN_MS`] of its own timeline.
    pub from_s: f64,
    pub audio_end_s: Option<f64>,
    /// From availability (or the publisher's start, when the server cannot
    /// tell) to the server's word that the ingest reads the path.
    pub attach_ms: Option<f64>,
    /// From the same instant to the ingest's first audio and video.
    pub first_buffer_ms: Option<f64>,
    /// Which instant the two figures above count from.
    pub timed_from: &'static str,
}

/// Everything seen while a stream ran.
#[derive(Debug, Clone)]
pub struct StreamObservation {
    pub stream_id: String,
    pub segments_dir: PathBuf,
    pub events: Vec<(Duration, WorkerEvent)>,
    pub result: Result<(), IngestFailure>,
    pub timed_out: bool,
    pub phases: Vec<PhaseObservation>,
    /// Problems on the publishing side: a gate that waited in vain (with
    /// the server's reason), a publisher that failed.
    pub publisher_failures: Vec<String>,
    /// What the server said about the path while media flowed (publisher,
    /// readers, byte counts), per publish.
    pub server_facts: Vec<serde_json::Value>,
    /// What the scenario's faults did, and when.
    pub faults: Vec<FaultRecord>,
}

impl StreamObservation {
    pub(crate) fn new(stream_id: &str, segments_dir: PathBuf) -> Self {
        Self {
            stream_id: stream_id.to_owned(),
            segments_dir,
            events: Vec::new(),
            result: Ok(()),
            timed_out: false,
            phases: Vec::new(),
            publisher_failures: Vec::new(),
            server_facts: Vec::new(),
            faults: Vec::new(),
        }
    }
}
