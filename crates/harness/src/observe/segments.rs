//! Turns what a stream run left behind (events, segment files) into facts,
//! checking every segment with ffprobe.

use std::path::PathBuf;

use ingest::{MediaKind, SegmentRecord, WorkerEvent};
use media_tools::{FixtureRecipe, ProbeReport, probe};

use crate::world::StreamObservation;

#[derive(Debug, Clone, serde::Serialize)]
pub struct ProbedSegment {
    pub record: SegmentRecord,
    pub path: PathBuf,
    pub probe: Result<ProbeReport, ProbeFailure>,
}

/// Why ffprobe could not read a segment (its error, in words: a probe
/// report is kept and serialised with the artifacts).
#[derive(Debug, Clone, PartialEq, serde::Serialize, thiserror::Error)]
#[error("{0}")]
pub struct ProbeFailure(String);

impl ProbedSegment {
    /// The file opens as MPEG-TS holding the codec its kind requires.
    pub fn well_formed(&self) -> bool {
        let (kind, codec) = match self.record.kind {
            MediaKind::Video => ("video", "h264"),
            MediaKind::Audio => ("audio", "aac"),
        };
        self.probe.as_ref().is_ok_and(|p| {
            p.format_name == "mpegts"
                && p.streams.len() == 1
                && p.stream(kind).is_some_and(|s| s.codec_name == codec)
        })
    }

    pub fn starts_with_keyframe(&self) -> bool {
        self.probe
            .as_ref()
            .is_ok_and(|p| p.first_video_frame_is_key == Some(true))
    }

    pub fn probed_frames(&self) -> u64 {
        self.probe
            .as_ref()
            .ok()
            .and_then(|p| p.streams.first())
            .and_then(|s| s.frames)
            .unwrap_or(0)
    }
}

pub(crate) fn written_segments(observation: &StreamObservation) -> Vec<SegmentRecord> {
    observation
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            WorkerEvent::SegmentWritten(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

/// ffprobe of every segment the stream wrote, run concurrently (each one
/// decodes its file to count frames).
pub async fn probe_segments(observation: &StreamObservation) -> Vec<ProbedSegment> {
    let probes = written_segments(observation)
        .into_iter()
        .map(|record| async move {
            let path = observation.segments_dir.join(&record.file);
            let report = probe(&path).await.map_err(|e| ProbeFailure(e.to_string()));
            ProbedSegment {
                record,
                path,
                probe: report,
            }
        });
    futures_util::future::join_all(probes).await
}

/// Rounds a duration to whole frames of its track, as text with 3 decimals,
/// so timestamp jitter below a frame never changes a snapshot.
pub(crate) fn rounded_duration(seconds: f64, kind: MediaKind, fixture: Option<&FixtureRecipe>) -> String {
    let frame = frame_seconds(kind, fixture);
    let frames = (seconds / frame).round();
    format!("{:.3}", frames * frame)
}

/// The duration of a segment as a snapshot states it. A segment closed by
/// the end of the stream holds whatever arrived before the end, and whether
/// the very last frame makes it varies between runs (a reader can see the
/// publisher's departure just before the final audio frame), so its length is
/// stated to a tenth of a second; cut segments are exact to the frame.
pub(crate) fn snapshot_duration(record: &ingest::SegmentRecord, fixture: Option<&FixtureRecipe>) -> String {
    match record.end {
        ingest::SegmentEnd::Cut => rounded_duration(record.duration_s, record.kind, fixture),
        ingest::SegmentEnd::EndOfStream => format!("{:.1} at end of stream", record.duration_s),
    }
}

pub(crate) fn frame_seconds(kind: MediaKind, fixture: Option<&FixtureRecipe>) -> f64 {
    match kind {
        MediaKind::Video => 1.0 / f64::from(fixture.map_or(30, |f| f.fps)),
        MediaKind::Audio => 1024.0 / f64::from(fixture.map_or(48_000, |f| f.sample_rate)),
    }
}
