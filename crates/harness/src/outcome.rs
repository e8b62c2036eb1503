//! What a scenario run comes to. `ScenarioOutcome` holds only deterministic
//! facts and is what gets snapshotted; `Report` holds the raw figures.

use std::collections::BTreeMap;
use std::time::Duration;

use ingest::{MediaKind, WorkerEvent};
use media_tools::FixtureRecipe;
use serde::Serialize;

use crate::observe::{ProbedSegment, frame_seconds, snapshot_duration};
use crate::scenario::{Expectations, ExpectedOutcome};
use crate::stream_run::StreamObservation;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunResult {
    Completed,
    Failed { kind: String, message: String },
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
    pub partial_segments: Vec<String>,
    pub last_segment_partial: bool,
    pub every_segment_probes: bool,
    pub keyframe_aligned: bool,
    pub av_parity: bool,
    pub connections_with_media: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Met,
    Missed,
    NotMeasured,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioOutcome {
    pub result: RunResult,
    pub streams: Vec<StreamFacts>,
    pub latency: BTreeMap<&'static str, Verdict>,
}

/// Raw figures: timings vary run to run, so they go here, not in snapshots.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub wall_time_s: f64,
    pub first_buffer_ms: Vec<f64>,
    pub write_latency_ms: Vec<f64>,
    pub write_latency_p50_ms: Option<f64>,
    pub write_latency_p99_ms: Option<f64>,
    pub write_latency_max_ms: Option<f64>,
    pub publisher_failures: Vec<String>,
}

pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn result_of(observation: &StreamObservation) -> RunResult {
    if observation.timed_out {
        return RunResult::TimedOut;
    }
    match &observation.result {
        Ok(_) => RunResult::Completed,
        Err((kind, message)) => RunResult::Failed {
            kind: kind.clone(),
            message: message.clone(),
        },
    }
}

pub fn stream_facts(
    observation: &StreamObservation,
    segments: &[ProbedSegment],
    fixture: Option<&FixtureRecipe>,
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
    StreamFacts {
        result: result_of(observation),
        video_segments: video.len(),
        audio_segments: audio.len(),
        video_durations: video
            .iter()
            .map(|s| snapshot_duration(&s.record, fixture))
            .collect(),
        audio_durations: audio
            .iter()
            .map(|s| snapshot_duration(&s.record, fixture))
            .collect(),
        video_frames: video.iter().map(|s| s.probed_frames()).sum(),
        partial_segments: segments
            .iter()
            .filter(|s| s.record.partial)
            .map(|s| s.record.file.clone())
            .collect(),
        last_segment_partial: video.last().is_some_and(|s| s.record.partial),
        every_segment_probes: segments.iter().all(ProbedSegment::well_formed),
        keyframe_aligned: video.iter().all(|s| s.starts_with_keyframe()),
        av_parity: paired,
        connections_with_media: observation
            .events
            .iter()
            .filter(|(_, e)| matches!(e, WorkerEvent::TracksValidated(_)))
            .count(),
    }
}

/// The overall result: the first stream that did not complete decides.
pub fn overall(streams: &[StreamFacts]) -> RunResult {
    streams
        .iter()
        .map(|s| s.result.clone())
        .find(|r| *r != RunResult::Completed)
        .unwrap_or(RunResult::Completed)
}

pub fn verdict(measured: Option<f64>, budget: Option<Duration>) -> Option<Verdict> {
    let budget = budget?;
    Some(match measured {
        None => Verdict::NotMeasured,
        Some(ms) if ms <= budget.as_secs_f64() * 1e3 => Verdict::Met,
        Some(_) => Verdict::Missed,
    })
}

/// Every way `outcome` falls short of `expect` (empty when it meets it).
pub fn unmet(
    expect: &Expectations,
    outcome: &ScenarioOutcome,
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
            stream.keyframe_aligned.to_string(),
        );
        check(
            "A/V parity",
            expect.av_parity.map(|b| b.to_string()),
            stream.av_parity.to_string(),
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
    for (name, verdict) in &outcome.latency {
        if *verdict != Verdict::Met {
            problems.push(format!("latency budget {name}: {verdict:?}"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_ranks() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&[5.0], 99.0), Some(5.0));
        assert_eq!(percentile(&[], 99.0), None);
    }

    #[test]
    fn budgets_become_verdicts() {
        let budget = Some(Duration::from_millis(300));
        assert_eq!(verdict(Some(12.0), budget), Some(Verdict::Met));
        assert_eq!(verdict(Some(301.0), budget), Some(Verdict::Missed));
        assert_eq!(verdict(None, budget), Some(Verdict::NotMeasured));
        assert_eq!(verdict(Some(1.0), None), None);
    }
}
