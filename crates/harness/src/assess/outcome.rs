//! What a scenario run comes to. `ScenarioOutcome` holds only facts that do
//! not depend on the machine's speed, and is what gets snapshotted.

use ingest::{MediaKind, WorkerEvent};
use media_tools::FixtureRecipe;
use serde::Serialize;

use super::continuity::{self, Continuity};
use super::join::JoinFacts;
use crate::observe::segments::{ProbedSegment, frame_seconds, snapshot_duration};
use crate::observe::sts::StsFacts;
use crate::world::StreamObservation;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunResult {
    Completed,
    Failed {
        kind: ingest::ErrorKind,
        message: String,
    },
    TimedOut,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamFacts {
    pub result: RunResult,
    pub video_segments: usize,
    pub audio_segments: usize,
    /// Durations rounded to whole frames of the track; a segment closed by
    /// the end of the stream to a tenth of a second, said so.
    pub video_durations: Vec<String>,
    pub audio_durations: Vec<String>,
    /// Pictures in all video segments, counted by ffprobe.
    pub video_frames: u64,
    /// AAC frames per audio segment, counted by ffprobe, and their sum.
    pub audio_frames: Vec<u64>,
    pub audio_frames_total: u64,
    pub partial_segments: Vec<String>,
    pub last_segment_partial: bool,
    pub every_segment_probes: bool,
    /// Only stated when there are video segments to check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyframe_aligned: Option<bool>,
    /// Only stated when there are segments to pair.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub av_parity: Option<bool>,
    pub connections_with_media: usize,
    /// Stated when the scenario plays faults: where media never arrived.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continuity: Option<Continuity>,
    /// With an `sts:` block: what the fragments came to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sts: Option<StsFacts>,
    /// With a live publish: where the ingest came into the running stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub join: Option<JoinFacts>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioOutcome {
    pub result: RunResult,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub streams: Vec<StreamFacts>,
    /// A service scenario's service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<super::service::ServiceOutcome>,
}

fn result_of(observation: &StreamObservation) -> RunResult {
    if observation.timed_out {
        return RunResult::TimedOut;
    }
    match &observation.result {
        Ok(_) => RunResult::Completed,
        Err(failure) => RunResult::Failed {
            kind: failure.kind,
            message: failure.message.clone(),
        },
    }
}

pub(crate) fn stream_facts(
    observation: &StreamObservation,
    segments: &[ProbedSegment],
    sts: Option<&StsFacts>,
    fixture: Option<&FixtureRecipe>,
    faulty: bool,
) -> StreamFacts {
    let of_kind = |kind| segments.iter().filter(move |s| s.record.kind == kind);
    let video: Vec<&ProbedSegment> = of_kind(MediaKind::Video).collect();
    let audio: Vec<&ProbedSegment> = of_kind(MediaKind::Audio).collect();
    let audio_frame = frame_seconds(MediaKind::Audio, fixture);
    let paired = video.len() == audio.len()
        && video.iter().zip(&audio).all(|(v, a)| {
            v.record.index == a.record.index
                && (v.record.start_s - a.record.start_s).abs() <= audio_frame + 1e-3
        });
    let audio_frames: Vec<u64> = audio.iter().map(|s| s.probed_frames()).collect();
    let continuity = faulty.then(|| {
        let phases = &observation.phases;
        let video = continuity::of_track(&video, MediaKind::Video, fixture, phases, |p| p.video_end_s);
        let audio = continuity::of_track(&audio, MediaKind::Audio, fixture, phases, |p| p.audio_end_s);
        Continuity {
            lost_video_frames: video.lost_frames,
            lost_audio_frames: audio.lost_frames,
            gaps: video.gaps.into_iter().chain(audio.gaps).collect(),
            overlaps: video.overlaps.into_iter().chain(audio.overlaps).collect(),
            gap_seconds: video.gap_seconds.into_iter().chain(audio.gap_seconds).collect(),
            cut_short: video.cut_short.into_iter().chain(audio.cut_short).collect(),
        }
    });
    // A segment a fault cut short lasts until the moment it struck.
    let duration_of = |segment: &&ProbedSegment| match &continuity {
        Some(c) if c.cut_short.contains(&segment.record.file) => "cut short by a fault".to_owned(),
        _ => snapshot_duration(&segment.record, fixture),
    };
    StreamFacts {
        result: result_of(observation),
        video_segments: video.len(),
        audio_segments: audio.len(),
        video_durations: video.iter().map(duration_of).collect(),
        audio_durations: audio.iter().map(duration_of).collect(),
        video_frames: video.iter().map(|s| s.probed_frames()).sum(),
        audio_frames_total: audio_frames.iter().sum(),
        audio_frames,
        partial_segments: segments
            .iter()
            .filter(|s| s.record.partial)
            .map(|s| s.record.file.clone())
            .collect(),
        last_segment_partial: video.last().is_some_and(|s| s.record.partial),
        every_segment_probes: segments.iter().all(ProbedSegment::well_formed),
        keyframe_aligned: (!video.is_empty()).then(|| video.iter().all(|s| s.starts_with_keyframe())),
        av_parity: (!segments.is_empty()).then_some(paired),
        connections_with_media: observation
            .events
            .iter()
            .filter(|(_, e)| matches!(e, WorkerEvent::TracksValidated(_)))
            .count(),
        continuity,
        sts: sts.cloned(),
        join: None,
    }
}

/// The overall result: the first stream that did not complete decides.
pub(crate) fn overall(streams: &[StreamFacts]) -> RunResult {
    streams
        .iter()
        .map(|s| s.result.clone())
        .find(|r| *r != RunResult::Completed)
        .unwrap_or(RunResult::Completed)
}
