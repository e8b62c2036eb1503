//! What `/v1/streams` shows: per stream, its worker's state, what it has
//! written and delivered, its output, its last error; and the paths
//! refused. Updated from the manager (states) and from each worker's events.

use std::collections::BTreeMap;

use ingest::{FragmentStatus, SpanAudio, WorkerEvent};
use serde::{Deserialize, Serialize};

/// One stream, as the service sees it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StreamView {
    pub id: String,
    pub input: String,
    /// The dubbed output's path, when there is one.
    pub output: Option<String>,
    /// `running`, `leaving`, `restarting`, `stopping`, or (in a cluster)
    /// `elsewhere`.
    pub state: String,
    /// In a cluster, the instance serving the stream when it is not this
    /// one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_by: Option<String>,
    pub worker_starts: u32,
    pub restarts: u32,
    /// Input connections that carried media.
    pub connections: u32,
    pub segments: Counts,
    pub fragments: Fragments,
    pub output_spans: Spans,
    /// Whether the output is publishing now.
    pub output_publishing: bool,
    /// Pictures the output has sent, over all its publishes.
    pub output_pictures: u64,
    /// What the worker has received of its input so far.
    pub received: Received,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Counts {
    pub video: u64,
    pub audio: u64,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Fragments {
    pub processed: u64,
    pub failed: u64,
    pub not_sent: u64,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Spans {
    pub dub: u64,
    pub original: u64,
    pub silence: u64,
}

/// The latest media a worker received: its input connection (counted as
/// the manifest counts them) and the highest presentation time per track.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Received {
    pub connection: u32,
    pub video_ms: Option<u64>,
    pub audio_ms: Option<u64>,
}

/// A path refused, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefusedView {
    pub path: String,
    pub reason: String,
}

/// The whole answer of `/v1/streams`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StreamsView {
    pub streams: Vec<StreamView>,
    pub refused: Vec<RefusedView>,
}

#[derive(Default)]
pub(crate) struct Streams {
    pub by_id: BTreeMap<String, StreamView>,
    pub refused: Vec<RefusedView>,
}

impl Streams {
    pub(crate) fn view(&self) -> StreamsView {
        StreamsView {
            streams: self.by_id.values().cloned().collect(),
            refused: self.refused.clone(),
        }
    }
}

impl StreamView {
    /// Takes in what a worker said.
    pub fn apply(&mut self, event: &WorkerEvent) {
        match event {
            WorkerEvent::TracksValidated(_) => self.connections += 1,
            WorkerEvent::SegmentWritten(s) => match s.kind {
                ingest::MediaKind::Video => self.segments.video += 1,
                ingest::MediaKind::Audio => self.segments.audio += 1,
            },
            WorkerEvent::FragmentProcessed(_) => self.fragments.processed += 1,
            WorkerEvent::FragmentFailed(_) => self.fragments.failed += 1,
            WorkerEvent::FragmentNotSent(_) => self.fragments.not_sent += 1,
            WorkerEvent::OutputStarted { .. } => self.output_publishing = true,
            WorkerEvent::OutputEnded {
                failure, pictures, ..
            } => {
                self.output_publishing = false;
                self.output_pictures += pictures;
                if let Some(failure) = failure {
                    self.last_error = Some(format!("output: {failure}"));
                }
            }
            WorkerEvent::OutputSpan(span) => match span.audio {
                SpanAudio::Dub => self.output_spans.dub += 1,
                SpanAudio::Original => self.output_spans.original += 1,
                SpanAudio::Silence => self.output_spans.silence += 1,
            },
            WorkerEvent::Failed { error, .. } => self.last_error = Some(error.clone()),
            _ => {}
        }
        if let Some(record) = event.fragment()
            && record.status == FragmentStatus::Failed
        {
            self.last_error = record.reason.clone().map(|r| format!("STS: {r}"));
        }
    }
}
