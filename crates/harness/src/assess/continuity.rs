//! Where a stream's segments leave holes in its timeline, or cover a span
//! twice, judged in the fixture's time: each publisher starts its window at
//! [`media_tools::LEAD_IN_MS`] of a timeline of its own, which a reconnect
//! to the same publisher continues and a new publisher starts again.

use ingest::MediaKind;
use media_tools::FixtureRecipe;
use serde::Serialize;

use crate::observe::segments::{ProbedSegment, frame_seconds};
use crate::world::PhaseObservation;

/// Where a stream's segments leave holes in its timeline, or cover a span
/// twice, judged on the segments' presentation times (the publisher's
/// timeline, which a reconnect to the same publisher continues).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Continuity {
    /// `N.N s before <file>`, to a tenth of a second (where a connection
    /// broke depends on timing; where the next began is a keyframe), or
    /// `the rest of the stream after <file>` when media stopped for good.
    pub gaps: Vec<String>,
    /// Spans covered twice: a duplicate.
    pub overlaps: Vec<String>,
    /// Each gap's length in seconds, in the order of `gaps` (where a
    /// connection broke depends on timing: not snapshotted).
    pub gap_seconds: Vec<f64>,
    /// Segments a fault cut short: their length is the moment it struck.
    #[serde(skip)]
    pub cut_short: Vec<String>,
    /// Pictures and audio frames the gaps hold (at the track's rate).
    #[serde(skip)]
    pub lost_video_frames: f64,
    #[serde(skip)]
    pub lost_audio_frames: f64,
}

/// One track's part of a [`Continuity`].
#[derive(Debug, Default)]
pub(crate) struct TrackContinuity {
    pub gaps: Vec<String>,
    pub overlaps: Vec<String>,
    pub gap_seconds: Vec<f64>,
    pub cut_short: Vec<String>,
    pub lost_frames: f64,
}

/// Gaps and overlaps between consecutive segments of one kind, and after
/// the last one up to where the last publish ended, judged in the
/// fixture's time: each publisher starts its window at
/// [`media_tools::LEAD_IN_MS`] of a timeline of its own, which a reconnect
/// to the same publisher continues and a new publisher starts again.
pub(crate) fn of_track(
    segments: &[&ProbedSegment],
    kind: MediaKind,
    fixture: Option<&FixtureRecipe>,
    phases: &[PhaseObservation],
    end_of: fn(&PhaseObservation) -> Option<f64>,
) -> TrackContinuity {
    let frame = frame_seconds(kind, fixture);
    let lead_in = f64::from(media_tools::LEAD_IN_MS) / 1e3;
    let starts = fixture_starts(segments, phases, frame, lead_in);
    let mut found = TrackContinuity::default();
    let last_end = phases.last().and_then(|p| Some(end_of(p)? - lead_in + p.from_s));
    if let (Some(last), Some(&start), Some(end)) = (segments.last(), starts.last(), last_end) {
        let tail = end - (start + last.record.duration_s);
        if tail > 1.5 * frame {
            // How much was lost at the end depends on what the sockets held
            // when the fault struck: the size is in `lost`, not the text.
            found
                .gaps
                .push(format!("the rest of the stream after {}", last.record.file));
            found.gap_seconds.push(round_to_frame(tail));
            found.cut_short.push(last.record.file.clone());
            found.lost_frames += tail / frame;
        }
    }
    for (k, pair) in segments.windows(2).enumerate() {
        let (before, after) = (&pair[0].record, &pair[1].record);
        let hole = starts[k + 1] - (starts[k] + before.duration_s);
        if hole > 1.5 * frame {
            found.gaps.push(format!("media lost before {}", after.file));
            found.gap_seconds.push(round_to_frame(hole));
            found.cut_short.push(before.file.clone());
            found.lost_frames += hole / frame;
        } else if hole < -1.5 * frame {
            found
                .overlaps
                .push(format!("{:.1} s at the start of {}", -hole, after.file));
        }
    }
    found
}

fn round_to_frame(seconds: f64) -> f64 {
    (seconds * 1e3).round() / 1e3
}

/// Each segment's start in the fixture's time. A new publisher's segments
/// come on a new connection with a timeline that starts again: there the
/// next phase begins.
fn fixture_starts(
    segments: &[&ProbedSegment],
    phases: &[PhaseObservation],
    frame: f64,
    lead_in: f64,
) -> Vec<f64> {
    let mut phase = 0;
    let mut starts = Vec::with_capacity(segments.len());
    for (k, segment) in segments.iter().enumerate() {
        let pts = segment.record.pts_ns as f64 / 1e9;
        if let Some(before) = k.checked_sub(1).map(|b| &segments[b].record) {
            let went_back = pts < before.pts_ns as f64 / 1e9 - frame;
            if went_back && segment.record.connection != before.connection && phase + 1 < phases.len() {
                phase += 1;
            }
        }
        let from = phases.get(phase).map_or(lead_in, |p| p.from_s);
        starts.push(pts - lead_in + from);
    }
    starts
}
