//! The scenario's expectations held against the outcome and the report:
//! every [`Unmet`] one, none when the run meets them.

use ingest::MediaKind;

use super::continuity::Continuity;
use super::join::NOT_RECEIVED_BEFORE_FIRST_PICTURE;
use super::outcome::{RunResult, ScenarioOutcome, StreamFacts};
use super::report::Report;
use super::unmet::{Stated, StsUnmet, Unmet};
use crate::observe::sts::StsFacts;
use crate::plan::scenario::{Expectations, ExpectedOutcome};
use crate::plan::sts::ExpectedSts;

/// Every way `outcome` falls short of `expect` (empty when it meets it).
/// `durations` are every segment's (kind, seconds, whether it is a full one).
pub(crate) fn unmet(
    expect: &Expectations,
    outcome: &ScenarioOutcome,
    report: &Report,
    durations: &[(MediaKind, f64, bool)],
) -> Vec<Unmet> {
    let mut problems = Vec::new();
    match (&expect.outcome, &expect.error, &outcome.result) {
        (ExpectedOutcome::Completed, _, RunResult::Completed) => {}
        (ExpectedOutcome::Failed, Some(e), RunResult::Failed { kind, message })
            if e.kind == *kind && message.contains(e.message.as_str()) => {}
        (wanted, error, got) => problems.push(Unmet::Outcome {
            expected: format!("{wanted:?} {error:?}"),
            got: format!("{got:?}"),
        }),
    }
    for (i, stream) in outcome.streams.iter().enumerate() {
        stated(i, expect, stream, &mut problems);
        if let Some(sts) = &stream.sts {
            problems.extend(
                sts_unmet(expect.sts.as_ref(), sts, stream.audio_segments)
                    .into_iter()
                    .map(|problem| Unmet::Sts { stream: i, problem }),
            );
        }
        if let Some(continuity) = &stream.continuity
            && !continuity.overlaps.is_empty()
        {
            problems.push(Unmet::WrittenTwice {
                stream: i,
                spans: continuity.overlaps.clone(),
            });
        }
        if expect.outcome == ExpectedOutcome::Completed {
            written(i, stream, report, &mut problems);
        }
        if expect.segment_duration.is_some() && !stream.every_segment_probes {
            problems.push(Unmet::MalformedSegment { stream: i });
        }
    }
    if let Some(expected) = &expect.segment_duration {
        let target = expected.target.as_secs_f64();
        let tolerance = expected.tolerance.as_secs_f64();
        for (kind, seconds, _) in durations.iter().filter(|(_, _, full)| *full) {
            if (seconds - target).abs() > tolerance + 1e-9 {
                problems.push(Unmet::SegmentDuration {
                    kind: *kind,
                    seconds: *seconds,
                    target,
                    tolerance,
                });
            }
        }
    }
    for (name, check) in &report.budgets {
        if !check.met {
            problems.push(Unmet::Budget {
                name,
                measured_ms: check.measured_ms,
                budget_ms: check.budget_ms,
            });
        }
    }
    problems
}

/// The facts a scenario states about stream `i`.
fn stated(i: usize, expect: &Expectations, stream: &StreamFacts, problems: &mut Vec<Unmet>) {
    let mut check = |what: Stated, wanted: Option<String>, got: String| {
        if let Some(expected) = wanted.filter(|w| *w != got) {
            problems.push(Unmet::Stated {
                stream: i,
                what,
                expected,
                got,
            });
        }
    };
    let state = |b: Option<bool>| b.map_or("not applicable (no segment)".to_owned(), |b| b.to_string());
    let text = |n: Option<u64>| n.map(|n| n.to_string());
    check(
        Stated::VideoSegments,
        text(expect.video_segments),
        stream.video_segments.to_string(),
    );
    check(
        Stated::AudioSegments,
        text(expect.audio_segments),
        stream.audio_segments.to_string(),
    );
    check(
        Stated::KeyframeAligned,
        expect.keyframe_aligned.map(|b| b.to_string()),
        state(stream.keyframe_aligned),
    );
    check(
        Stated::AvParity,
        expect.av_parity.map(|b| b.to_string()),
        state(stream.av_parity),
    );
    check(
        Stated::Connections,
        expect.connections.map(|n| n.to_string()),
        stream.connections_with_media.to_string(),
    );
    check(
        Stated::LastSegmentPartial,
        expect.partial_last.map(|b| b.to_string()),
        stream.last_segment_partial.to_string(),
    );
    if let Some(join) = &stream.join {
        let yes = Some("true".to_owned());
        check(
            Stated::FirstPictureAtKeyframe,
            yes.clone(),
            join.first_picture_is_a_keyframe.to_string(),
        );
        check(
            Stated::SegmentsStartAtFirstPicture,
            yes,
            join.segments_start_there.to_string(),
        );
        check(
            Stated::NotReceived,
            Some(NOT_RECEIVED_BEFORE_FIRST_PICTURE.to_owned()),
            join.not_received.clone(),
        );
    }
}

/// Every frame that could be delivered was written. With faults, what the
/// gaps hold was really lost; anything else missing was dropped inside a
/// segment.
fn written(i: usize, stream: &StreamFacts, report: &Report, problems: &mut Vec<Unmet>) {
    let lost =
        |pick: fn(&Continuity) -> f64| stream.continuity.as_ref().map_or(0, |c| pick(c).round() as usize);
    let slack = stream.continuity.as_ref().map_or(0, |c| c.gaps.len());
    let tracks = [
        (
            MediaKind::Video,
            report.deliverable_video_frames.get(i),
            lost(|c| c.lost_video_frames),
            stream.video_frames,
        ),
        (
            MediaKind::Audio,
            report.deliverable_audio_frames.get(i),
            lost(|c| c.lost_audio_frames),
            stream.audio_frames_total,
        ),
    ];
    for (track, deliverable, lost_in_gaps, got) in tracks {
        let Some(&delivered) = deliverable else {
            continue;
        };
        let expected = delivered.saturating_sub(lost_in_gaps);
        if (got as usize).abs_diff(expected) > slack {
            problems.push(Unmet::Frames {
                stream: i,
                track,
                expected,
                delivered,
                lost_in_gaps,
                got,
            });
        }
    }
}

/// What the fragments must come to: the expected counts, and always one
/// fragment per audio segment, sent in order, recorded once, dubbed into
/// files ffprobe opens, never more in flight than allowed.
fn sts_unmet(expect: Option<&ExpectedSts>, sts: &StsFacts, audio_segments: usize) -> Vec<StsUnmet> {
    let mut problems = Vec::new();
    if sts.processed + sts.failed + sts.not_sent != audio_segments {
        problems.push(StsUnmet::Settled {
            audio_segments,
            processed: sts.processed,
            failed: sts.failed,
            not_sent: sts.not_sent,
        });
    }
    if let Some(expect) = expect {
        for (what, wanted, got) in [
            ("processed", expect.processed, sts.processed),
            ("failed", expect.failed, sts.failed),
            ("not sent", expect.not_sent, sts.not_sent),
        ] {
            if let Some(expected) = wanted.filter(|w| *w != got) {
                problems.push(StsUnmet::Count { what, expected, got });
            }
        }
    }
    if !sts.sent_in_order {
        problems.push(StsUnmet::OutOfOrder);
    }
    if !sts.recorded_twice.is_empty() {
        problems.push(StsUnmet::RecordedTwice(sts.recorded_twice.clone()));
    }
    if !sts.dubbed_files_probe {
        problems.push(StsUnmet::DubbedFilesDoNotProbe);
    }
    if !sts.in_flight_within_limit {
        problems.push(StsUnmet::InFlight(sts.max_in_flight));
    }
    if !sts.failures.is_empty() && expect.is_none_or(|e| e.failed.is_none() && e.not_sent.is_none()) {
        problems.push(StsUnmet::Failures(sts.failures.clone()));
    }
    problems
}
