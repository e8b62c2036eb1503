//! The per-stream manifest: one JSON object per line, appended as segments,
//! connections and STS answers happen, so a reader can tail it.
//!
//! Two handles append to the file: the segment writer's (segments and
//! connections, on the worker thread) and the STS recorder's (fragments, on
//! the runtime). Both open it with `O_APPEND` and write each line with one
//! `write`, so lines never interleave, and a fragment's records always come
//! after its segment's, which is written before the segment is submitted.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::IngestError;
use crate::media::MediaKind;
use crate::segmenter::SegmentEnd;

pub const MANIFEST_FILE: &str = "manifest.jsonl";

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SegmentRecord {
    pub index: u64,
    pub kind: MediaKind,
    /// File name inside the stream directory.
    pub file: String,
    /// Seconds from the connection's first keyframe.
    pub start_s: f64,
    /// Presentation time of the segment's first frame on the stream's own
    /// timeline (the publisher's, as the server passes it on): across
    /// reconnects to the same publisher, a gap between one segment's end
    /// and the next one's start is media that never arrived.
    #[serde(default)]
    pub pts_ns: u64,
    pub duration_s: f64,
    pub bytes: u64,
    pub frames: u64,
    pub partial: bool,
    pub end: SegmentEnd,
    pub starts_with_keyframe: bool,
    /// 1 for the first connection that carried media, counting reconnects
    /// that did.
    pub connection: u32,
    /// From the arrival of the buffer that closed the segment to the
    /// completed rename that made it visible.
    pub write_latency_ms: f64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ConnectionRecord {
    pub connection: u32,
    pub video_codec: String,
    pub audio_codec: String,
    /// From starting to connect to the first video/audio buffer.
    pub first_video_ms: f64,
    pub first_audio_ms: f64,
    #[serde(flatten)]
    pub join: JoinRecord,
}

/// Where a connection came into the stream. A server sends a reader audio
/// at once and video from its next keyframe (MediaMTX has no GOP cache), so
/// a worker that joins a running stream starts at that keyframe, and what
/// came before it is stated here rather than found missing.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct JoinRecord {
    /// The stream's time (its own timeline, seconds) of the first audio
    /// frame this connection received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_from_s: Option<f64>,
    /// ... and of its first picture, where its first segments start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_from_s: Option<f64>,
    /// What this connection could not receive: from where the previous
    /// connection's media ended (the stream's start, for the first) to its
    /// first picture. Absent when nothing was missed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_received: Option<Span>,
    /// Audio frames received before the first picture that no picture
    /// could pair with, and so were not kept.
    #[serde(default)]
    pub audio_dropped_before_picture: u64,
}

/// A span of the stream's timeline, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Span {
    pub from_s: f64,
    pub to_s: f64,
}

/// Where an audio segment's delivery to the STS stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FragmentStatus {
    Sent,
    Acked,
    Processed,
    Failed,
    /// Refused at submission (queue full); the segment stays on disk.
    NotSent,
}

impl FragmentStatus {
    /// Whether this is the fragment's last word: each fragment gets exactly
    /// one record with a final status.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Processed | Self::Failed | Self::NotSent)
    }
}

/// One step of an audio segment's delivery to the STS; `index` is the
/// segment's (and the fragment's `sequence_number`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FragmentRecord {
    pub index: u64,
    /// Stable across resends; none when the fragment was never taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fragment_id: Option<String>,
    pub status: FragmentStatus,
    /// `sent`: which send this was (resends after a reconnect count up);
    /// `processed`/`failed`: how many sends it took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// Why it `failed` or was `not_sent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `processed`: from the segment being written (and submitted in the
    /// same moment) to the dubbed file being in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round_trip_ms: Option<f64>,
    /// `processed`: what the STS reports it spent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_time_ms: Option<f64>,
    /// `processed`: the dubbed audio's file name inside the stream directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dubbed_file: Option<String>,
}

impl FragmentRecord {
    pub fn new(index: u64, status: FragmentStatus) -> Self {
        Self {
            index,
            fragment_id: None,
            status,
            attempts: None,
            reason: None,
            round_trip_ms: None,
            processing_time_ms: None,
            dubbed_file: None,
        }
    }
}

/// What the dubbed output carried for one audio span (segment `index`):
/// its dub, or a fallback and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OutputRecord {
    pub index: u64,
    pub audio: crate::output::SpanAudio,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How long after its input arrived the span's first frame left for
    /// the output (the configured delay, plus the release's own lateness).
    pub delay_ms: f64,
}

/// The stream was taken over from another instance of a cluster: who
/// served it before, and where this one's numbering goes on. What could
/// not be received in between is in the next connection's join record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TakeoverRecord {
    pub from: String,
    pub by: String,
    /// The lease's epoch: one more at each change of owner.
    pub epoch: u64,
    pub first_segment: u64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum ManifestEntry {
    Segment(SegmentRecord),
    Connection(ConnectionRecord),
    Fragment(FragmentRecord),
    Output(OutputRecord),
    Takeover(TakeoverRecord),
}

pub struct Manifest {
    path: PathBuf,
    file: File,
    fence: Option<crate::fence::WriteFence>,
}

impl Manifest {
    pub fn open(stream_dir: &Path) -> Result<Self, IngestError> {
        let path = stream_dir.join(MANIFEST_FILE);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| IngestError::io(&path, e))?;
        Ok(Self {
            path,
            file,
            fence: None,
        })
    }

    /// Every later line is written only if `fence` allows it.
    pub(crate) fn fenced(mut self, fence: Option<crate::fence::WriteFence>) -> Self {
        self.set_fence(fence);
        self
    }

    pub(crate) fn set_fence(&mut self, fence: Option<crate::fence::WriteFence>) {
        self.fence = fence;
    }

    pub fn append(&mut self, entry: &ManifestEntry) -> Result<(), IngestError> {
        crate::fence::check(self.fence.as_ref())?;
        let mut line = serde_json::to_vec(entry).expect("manifest entries always serialise");
        line.push(b'\n');
        // One write per line keeps lines whole for a concurrent reader.
        self.file
            .write_all(&line)
            .map_err(|e| IngestError::io(&self.path, e))
    }

    /// Reads every entry of a manifest file.
    pub fn read(path: &Path) -> Result<Vec<ManifestEntry>, IngestError> {
        let text = std::fs::read_to_string(path).map_err(|e| IngestError::io(path, e))?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).map_err(|e| {
                    IngestError::io(path, std::io::Error::new(std::io::ErrorKind::InvalidData, e))
                })
            })
            .collect()
    }
}
