//! What a scenario run comes to. `ScenarioOutcome` holds only facts that do
//! not depend on the machine's speed, and is what gets snapshotted;
//! `Report` holds the raw figures and the latency budgets' verdicts, which
//! fail the run when missed but never enter a snapshot.

use std::collections::BTreeMap;
use std::time::Duration;

use ingest::{MediaKind, WorkerEvent};
use media_tools::FixtureRecipe;
use serde::Serialize;

use crate::observe::{ProbedSegment, frame_seconds, snapshot_duration};
use crate::scenario::{Expectations, ExpectedOutcome, LatencyBudgets};
use crate::stream_run::StreamObservation;

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
    pub sts: Option<crate::sts::StsFacts>,
}

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

/// Gaps and overlaps between consecutive segments of one kind, and after
/// the last one up to where the last publish ended, judged in the
/// fixture's time: each publisher starts its window at
/// [`media_tools::LEAD_IN_MS`] of a timeline of its own, which a reconnect
/// to the same publisher continues and a new publisher starts again.
fn continuity_of(
    segments: &[&ProbedSegment],
    kind: MediaKind,
    fixture: Option<&FixtureRecipe>,
    phases: &[crate::stream_run::PhaseObservation],
    end_of: fn(&crate::stream_run::PhaseObservation) -> Option<f64>,
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

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioOutcome {
    pub result: RunResult,
    pub streams: Vec<StreamFacts>,
}

/// One latency budget: what was allowed, what was measured (the worst
/// case over the run), and whether it was met.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetCheck {
    pub budget_ms: f64,
    pub measured_ms: Option<f64>,
    pub met: bool,
}

/// Raw figures: timings vary run to run, so they go here, not in snapshots.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub wall_time_s: f64,
    /// Per publish: from the stream becoming available (or the publisher's
    /// start, see `timed_from`) to the ingest reading, and to its first
    /// audio and video.
    pub attach_ms: Vec<f64>,
    pub first_buffer_ms: Vec<f64>,
    pub timed_from: Vec<&'static str>,
    pub write_latency_ms: Vec<f64>,
    pub write_latency_p50_ms: Option<f64>,
    pub write_latency_p99_ms: Option<f64>,
    pub write_latency_max_ms: Option<f64>,
    pub budgets: BTreeMap<&'static str, BudgetCheck>,
    /// What the fixture windows could deliver, per stream.
    pub deliverable_video_frames: Vec<usize>,
    pub deliverable_audio_frames: Vec<usize>,
    pub publisher_failures: Vec<String>,
}

pub use media_tools::percentile;

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

pub fn stream_facts(
    observation: &StreamObservation,
    segments: &[ProbedSegment],
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
        let video = continuity_of(&video, MediaKind::Video, fixture, phases, |p| p.video_end_s);
        let audio = continuity_of(&audio, MediaKind::Audio, fixture, phases, |p| p.audio_end_s);
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
        sts: observation.sts.clone(),
    }
}

/// What the fragments must come to: the expected counts, and always one
/// fragment per audio segment, sent in order, recorded once, dubbed into
/// files ffprobe opens, never more in flight than allowed.
fn sts_unmet<'a>(
    expect: Option<&crate::sts::ExpectedSts>,
    sts: &'a crate::sts::StsFacts,
    audio_segments: usize,
) -> impl Iterator<Item = String> + 'a {
    let mut problems = Vec::new();
    let settled = sts.processed + sts.failed + sts.not_sent;
    if settled != audio_segments {
        problems.push(format!(
            "STS: {audio_segments} audio segments but {settled} fragments settled ({} processed, {} failed, {} not sent)",
            sts.processed, sts.failed, sts.not_sent
        ));
    }
    if let Some(expect) = expect {
        for (what, wanted, got) in [
            ("processed", expect.processed, sts.processed),
            ("failed", expect.failed, sts.failed),
            ("not sent", expect.not_sent, sts.not_sent),
        ] {
            if let Some(wanted) = wanted.filter(|w| *w != got) {
                problems.push(format!("STS: fragments {what}: expected {wanted}, got {got}"));
            }
        }
    }
    if !sts.sent_in_order {
        problems.push("STS: fragments were first sent out of segment order".to_owned());
    }
    if !sts.recorded_twice.is_empty() {
        problems.push(format!(
            "STS: fragments with two final records: {:?}",
            sts.recorded_twice
        ));
    }
    if !sts.dubbed_files_probe {
        problems.push("STS: a processed fragment's dubbed file does not open in ffprobe as audio".to_owned());
    }
    if !sts.in_flight_within_limit {
        problems.push(format!(
            "STS: {} fragments in flight at once, over the STS's max_inflight",
            sts.max_in_flight
        ));
    }
    if !sts.failures.is_empty() && expect.is_none_or(|e| e.failed.is_none() && e.not_sent.is_none()) {
        problems.push(format!("STS: fragments failed: {}", sts.failures.join("; ")));
    }
    problems.into_iter()
}

/// One track's part of a [`Continuity`].
#[derive(Debug, Default)]
struct TrackContinuity {
    gaps: Vec<String>,
    overlaps: Vec<String>,
    gap_seconds: Vec<f64>,
    cut_short: Vec<String>,
    lost_frames: f64,
}

/// Each segment's start in the fixture's time. A new publisher's segments
/// come on a new connection with a timeline that starts again: there the
/// next phase begins.
fn fixture_starts(
    segments: &[&ProbedSegment],
    phases: &[crate::stream_run::PhaseObservation],
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

/// The overall result: the first stream that did not complete decides.
pub fn overall(streams: &[StreamFacts]) -> RunResult {
    streams
        .iter()
        .map(|s| s.result.clone())
        .find(|r| *r != RunResult::Completed)
        .unwrap_or(RunResult::Completed)
}

fn check_budget(measured: Option<f64>, budget: Option<Duration>) -> Option<BudgetCheck> {
    let budget_ms = budget?.as_secs_f64() * 1e3;
    Some(BudgetCheck {
        budget_ms,
        measured_ms: measured,
        met: measured.is_some_and(|ms| ms <= budget_ms),
    })
}

/// Checks every budget the scenario sets against the report's worst figures.
pub fn check_budgets(budgets: &LatencyBudgets, report: &Report) -> BTreeMap<&'static str, BudgetCheck> {
    let worst = |figures: &[f64]| figures.iter().copied().reduce(f64::max);
    [
        ("attach", check_budget(worst(&report.attach_ms), budgets.attach)),
        (
            "first_buffer",
            check_budget(worst(&report.first_buffer_ms), budgets.first_buffer),
        ),
        (
            "segment_write_p99",
            check_budget(report.write_latency_p99_ms, budgets.segment_write_p99),
        ),
    ]
    .into_iter()
    .filter_map(|(name, check)| check.map(|c| (name, c)))
    .collect()
}

/// Every way `outcome` falls short of `expect` (empty when it meets it).
pub fn unmet(
    expect: &Expectations,
    outcome: &ScenarioOutcome,
    report: &Report,
    durations: &[(MediaKind, f64, bool)],
) -> Vec<String> {
    let mut problems = Vec::new();
    match (&expect.outcome, &expect.error, &outcome.result) {
        (ExpectedOutcome::Completed, _, RunResult::Completed) => {}
        (ExpectedOutcome::Failed, Some(e), RunResult::Failed { kind, message })
            if e.kind == *kind && message.contains(e.message.as_str()) => {}
        (wanted, error, got) => problems.push(format!("outcome: expected {wanted:?} {error:?}, got {got:?}")),
    }
    for (i, stream) in outcome.streams.iter().enumerate() {
        let mut check = |what: &str, wanted: Option<String>, got: String| {
            if let Some(wanted) = wanted.filter(|w| *w != got) {
                problems.push(format!("stream {i}: {what}: expected {wanted}, got {got}"));
            }
        };
        let state = |b: Option<bool>| b.map_or("not applicable (no segment)".to_owned(), |b| b.to_string());
        check(
            "video segments",
            expect.video_segments.map(|n| n.to_string()),
            stream.video_segments.to_string(),
        );
        check(
            "audio segments",
            expect.audio_segments.map(|n| n.to_string()),
            stream.audio_segments.to_string(),
        );
        check(
            "keyframe aligned",
            expect.keyframe_aligned.map(|b| b.to_string()),
            state(stream.keyframe_aligned),
        );
        check(
            "A/V parity",
            expect.av_parity.map(|b| b.to_string()),
            state(stream.av_parity),
        );
        check(
            "connections",
            expect.connections.map(|n| n.to_string()),
            stream.connections_with_media.to_string(),
        );
        check(
            "last segment partial",
            expect.partial_last.map(|b| b.to_string()),
            stream.last_segment_partial.to_string(),
        );
        if let Some(sts) = &stream.sts {
            problems.extend(
                sts_unmet(expect.sts.as_ref(), sts, stream.audio_segments)
                    .map(|p| format!("stream {i}: {p}")),
            );
        }
        if let Some(continuity) = &stream.continuity
            && !continuity.overlaps.is_empty()
        {
            problems.push(format!(
                "stream {i}: spans written twice: {}",
                continuity.overlaps.join(", ")
            ));
        }
        if expect.outcome == ExpectedOutcome::Completed {
            // With faults, what the gaps hold was really lost; anything else
            // missing was dropped inside a segment.
            let lost = |pick: fn(&Continuity) -> f64| {
                stream.continuity.as_ref().map_or(0, |c| pick(c).round() as usize)
            };
            let slack = stream.continuity.as_ref().map_or(0, |c| c.gaps.len());
            let mut written = |what: &str, deliverable: usize, lost: usize, got: u64| {
                let wanted = deliverable.saturating_sub(lost);
                if (got as usize).abs_diff(wanted) > slack {
                    let held = if lost > 0 {
                        format!(" less {lost} in gaps")
                    } else {
                        String::new()
                    };
                    problems.push(format!(
                        "stream {i}: {what}: expected {wanted} ({deliverable} delivered{held}), got {got}"
                    ));
                }
            };
            if let Some(&deliverable) = report.deliverable_video_frames.get(i) {
                written(
                    "pictures written (all the fixture windows hold)",
                    deliverable,
                    lost(|c| c.lost_video_frames),
                    stream.video_frames,
                );
            }
            if let Some(&deliverable) = report.deliverable_audio_frames.get(i) {
                written(
                    "audio frames written (all that pair with pictures)",
                    deliverable,
                    lost(|c| c.lost_audio_frames),
                    stream.audio_frames_total,
                );
            }
        }
        if expect.segment_duration.is_some() && !stream.every_segment_probes {
            problems.push(format!(
                "stream {i}: a segment does not probe as MPEG-TS with H.264/AAC"
            ));
        }
    }
    if let Some(expected) = &expect.segment_duration {
        let target = expected.target.as_secs_f64();
        let tolerance = expected.tolerance.as_secs_f64();
        for (kind, seconds, _) in durations.iter().filter(|(_, _, full)| *full) {
            if (seconds - target).abs() > tolerance + 1e-9 {
                problems.push(format!(
                    "{kind} segment of {seconds:.3}s is not {target}s ± {tolerance}s"
                ));
            }
        }
    }
    for (name, check) in &report.budgets {
        if !check.met {
            let measured = check
                .measured_ms
                .map_or("not measured".to_owned(), |ms| format!("{ms:.0} ms"));
            problems.push(format!(
                "latency budget {name} missed: {measured}, budget {:.0} ms",
                check.budget_ms
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_are_checked_on_the_worst_figure() {
        let budgets = LatencyBudgets {
            attach: Some(Duration::from_millis(500)),
            first_buffer: Some(Duration::from_secs(2)),
            segment_write_p99: Some(Duration::from_millis(300)),
        };
        let report = Report {
            attach_ms: vec![120.0, 640.0],
            first_buffer_ms: vec![300.0],
            ..Report::default()
        };
        let checks = check_budgets(&budgets, &report);
        assert!(!checks["attach"].met);
        assert_eq!(checks["attach"].measured_ms, Some(640.0));
        assert!(checks["first_buffer"].met);
        assert!(!checks["segment_write_p99"].met, "not measured is not met");
        assert!(check_budgets(&LatencyBudgets::default(), &report).is_empty());
    }
}
