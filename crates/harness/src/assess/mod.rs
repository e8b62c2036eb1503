//! The fourth stage: what the observed facts come to. The deterministic
//! outcome ([`outcome`], with [`continuity`] and [`join`]), the raw figures
//! and budgets ([`report`]), and every expectation left unmet
//! ([`expectations`], as typed [`unmet`] values).

pub(crate) mod cluster;
pub(crate) mod continuity;
mod expectations;
pub(crate) mod join;
pub(crate) mod outcome;
pub(crate) mod output;
pub(crate) mod report;
pub(crate) mod service;
pub(crate) mod unmet;

use ingest::MediaKind;

use crate::observe::Observed;
use crate::plan::Plan;
use crate::plan::scenario::ExpectedOutcome;
use outcome::{RunResult, ScenarioOutcome};
use report::Report;
use unmet::Unmet;

pub(crate) use media_tools::percentile;

/// What a run came to.
#[derive(Debug, Clone)]
pub struct Assessment {
    pub outcome: ScenarioOutcome,
    pub report: Report,
    pub unmet: Vec<Unmet>,
}

/// Turns observations into the deterministic outcome, the raw report and
/// the expectations left unmet.
pub fn assess(plan: &Plan<'_>, observed: &Observed) -> Assessment {
    let scenario = &plan.file.scenario;
    let mut report = Report::default();
    if let (Some(service_plan), Some(service)) = (&scenario.service, &observed.service) {
        let (outcome, mut unmet) = service::assess(
            service_plan,
            scenario.expect.service.as_ref(),
            service,
            scenario.expect.latency.output_delay_spread,
            &mut report,
        );
        unmet.extend(budget_misses(&report));
        let timed_out = service.world.timed_out;
        if timed_out {
            unmet.push(Unmet::TimedOut(scenario.timeout));
        }
        return Assessment {
            outcome: ScenarioOutcome {
                result: if timed_out {
                    RunResult::TimedOut
                } else {
                    RunResult::Completed
                },
                streams: Vec::new(),
                service: Some(outcome),
            },
            report,
            unmet,
        };
    }
    let mut streams = Vec::new();
    let mut durations = Vec::new();
    for stream in &observed.streams {
        let (world, segments) = (&stream.world, &stream.segments);
        for kind in MediaKind::ALL {
            let of_kind: Vec<_> = segments.iter().filter(|s| s.record.kind == kind).collect();
            for (i, s) in of_kind.iter().enumerate() {
                let full = i + 1 < of_kind.len() && !s.record.partial;
                durations.push((kind, s.record.duration_s, full));
            }
        }
        report
            .write_latency_ms
            .extend(segments.iter().map(|s| s.record.write_latency_ms));
        for phase in &world.phases {
            report.attach_ms.extend(phase.attach_ms);
            report.first_buffer_ms.extend(phase.first_buffer_ms);
            report.timed_from.push(phase.timed_from);
        }
        let live = plan.media.as_ref().filter(|_| scenario.publish.live);
        if !world.phases.is_empty() {
            let (video, audio) = join::deliverable(&world.phases, live.map(|media| (media, world)));
            report.deliverable_video_frames.push(video);
            report.deliverable_audio_frames.push(audio);
        }
        report
            .publisher_failures
            .extend(world.publisher_failures.iter().cloned());
        let facts = outcome::stream_facts(
            world,
            segments,
            stream.sts.as_ref(),
            plan.recipe,
            !scenario.faults.is_empty(),
        );
        let joined = live.map(|media| join::join_facts(world, segments, media));
        if let Some(at) = joined.as_ref().and_then(|j| j.first_picture_s) {
            report.joined_at_s.push(at);
        }
        streams.push(outcome::StreamFacts {
            join: joined,
            ..facts
        });
    }
    let mut latencies = report.write_latency_ms.clone();
    latencies.sort_by(f64::total_cmp);
    report.write_latency_p50_ms = percentile(&latencies, 50.0);
    report.write_latency_p99_ms = percentile(&latencies, 99.0);
    report.write_latency_max_ms = latencies.last().copied();
    report.budgets = report::check_budgets(&scenario.expect.latency, &report);
    let outcome = ScenarioOutcome {
        result: outcome::overall(&streams),
        streams,
        service: None,
    };
    let mut unmet = expectations::unmet(&scenario.expect, &outcome, &report, &durations);
    if scenario.expect.outcome == ExpectedOutcome::Completed {
        unmet.extend(report.publisher_failures.iter().cloned().map(Unmet::Publisher));
    }
    if outcome.result == RunResult::TimedOut {
        unmet.push(Unmet::TimedOut(scenario.timeout));
    }
    Assessment {
        outcome,
        report,
        unmet,
    }
}

/// The budgets the report says were missed.
fn budget_misses(report: &Report) -> Vec<Unmet> {
    report
        .budgets
        .iter()
        .filter(|(_, check)| !check.met)
        .map(|(name, check)| Unmet::Budget {
            name,
            measured_ms: check.measured_ms,
            budget_ms: check.budget_ms,
        })
        .collect()
}
