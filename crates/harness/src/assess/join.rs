//! Where a live-joining ingest came into the running stream.

use ingest::{MediaKind, WorkerEvent};
use serde::Serialize;

use crate::observe::segments::ProbedSegment;
use crate::plan::FixtureMedia;
use crate::world::{PhaseObservation, StreamObservation};

/// What holds wherever a live-joining ingest came in: its first picture is
/// a keyframe of the stream, its segments start there, and its manifest
/// says what it could not receive. Which keyframe it was depends on the
/// server and the moment (`first_picture_s`, reported, not snapshotted).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JoinFacts {
    pub first_picture_is_a_keyframe: bool,
    pub segments_start_there: bool,
    /// The manifest's `not_received`, in words.
    pub not_received: String,
    #[serde(skip)]
    pub first_picture_s: Option<f64>,
}

/// What a live scenario's stream must say about where it joined.
pub(crate) const NOT_RECEIVED_BEFORE_FIRST_PICTURE: &str = "from the stream's start to the first picture";

/// Where the ingest came into a live stream, from its first connection's
/// record, its segments and the fixture's keyframes.
pub(crate) fn join_facts(
    observation: &StreamObservation,
    segments: &[ProbedSegment],
    media: &FixtureMedia,
) -> JoinFacts {
    let record = observation.events.iter().find_map(|(_, e)| match e {
        WorkerEvent::TracksValidated(record) => Some(record),
        _ => None,
    });
    let first_picture_s = record.and_then(|r| r.join.video_from_s);
    let near = |a_ms: f64, b_ms: f64| (a_ms - b_ms).abs() <= 2.0;
    let first_picture_is_a_keyframe = first_picture_s.is_some_and(|s| {
        media
            .tags
            .iter()
            .filter(|t| t.is_keyframe())
            .any(|t| near(f64::from(t.pts()), s * 1e3))
    });
    let first_video = segments
        .iter()
        .filter(|s| s.record.kind == MediaKind::Video)
        .min_by_key(|s| s.record.index);
    let segments_start_there = match (first_video, first_picture_s) {
        (Some(segment), Some(s)) => near(segment.record.pts_ns as f64 / 1e6, s * 1e3),
        _ => false,
    };
    let not_received = match (record.and_then(|r| r.join.not_received), first_picture_s) {
        (None, _) => "nothing".to_owned(),
        (Some(span), Some(s)) if span.from_s == 0.0 && near(span.to_s * 1e3, s * 1e3) => {
            NOT_RECEIVED_BEFORE_FIRST_PICTURE.to_owned()
        }
        (Some(span), _) => format!("{:.3}-{:.3} s", span.from_s, span.to_s),
    };
    JoinFacts {
        first_picture_is_a_keyframe,
        segments_start_there,
        not_received,
        first_picture_s,
    }
}

/// A live publish: what the ingest could be given runs from the first
/// picture it received (a keyframe the server chose) to the end, so that
/// is what it must have written: (pictures, pairable audio frames).
pub(crate) fn deliverable_from_first_picture(
    fixture: &FixtureMedia,
    events: &[(std::time::Duration, WorkerEvent)],
) -> Option<(usize, usize)> {
    let from_s = events.iter().find_map(|(_, e)| match e {
        WorkerEvent::TracksValidated(record) => record.join.video_from_s,
        _ => None,
    })?;
    // Presentation times are whole milliseconds; a server may round a
    // picture's down by one.
    let from_ms = from_s * 1e3 - 1.5;
    let frames = |kind| {
        fixture
            .tags
            .iter()
            .filter(move |t| t.kind == kind && t.is_frame())
    };
    let video = frames(media_tools::flv::VIDEO)
        .filter(|t| f64::from(t.pts()) >= from_ms)
        .count();
    let audio = frames(media_tools::flv::AUDIO)
        .filter(|t| f64::from(t.timestamp) + fixture.audio_frame_ms / 2.0 >= from_s * 1e3)
        .count();
    Some((video, audio))
}

/// What a stream's publishes could deliver (pictures, audio frames): what
/// their windows hold, or, live, what follows the first picture.
pub(crate) fn deliverable(
    phases: &[PhaseObservation],
    live: Option<(&FixtureMedia, &StreamObservation)>,
) -> (usize, usize) {
    let windows = (
        phases.iter().map(|p| p.video_frames).sum(),
        phases.iter().map(|p| p.audio_frames).sum(),
    );
    live.and_then(|(fixture, observation)| deliverable_from_first_picture(fixture, &observation.events))
        .unwrap_or(windows)
}
