//! What a service scenario comes to: per stream, whether one worker served
//! it (or the service refused it, and why), what its manifest holds, and
//! what its output carried; the facts every service must hold whatever the
//! scenario states (numbering without a hole, every picture of every
//! output read, audio in its place, the dub where the manifest says dub,
//! one clean stop per run); and the output delay's spread, a budget.

use std::collections::BTreeMap;

use ingest::MediaKind;
use serde::Serialize;

use super::cluster::ClusterStreamFacts;
use super::output::{OutputFacts, output_facts};
use super::report::{BudgetCheck, Report};
use super::unmet::{ServiceUnmet, Unmet};
use crate::observe::service::{ObservedService, ObservedServiceStream};
use crate::plan::service::{ExpectedService, ExpectedServiceStream, ServicePlan};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceOutcome {
    /// Runs of the service, each stopped as SIGTERM stops it.
    pub runs: u32,
    pub stopped_cleanly: bool,
    /// A cluster: the streams' first owners spread over the instances
    /// within one stream of even.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spread_evenly: Option<bool>,
    pub streams: BTreeMap<String, ServiceStreamFacts>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceStreamFacts {
    pub served: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_starts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connections: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video_segments: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio_segments: Option<usize>,
    /// Segment indices run 0, 1, 2, ... per track with no hole or repeat
    /// (in a cluster, a hole only where a takeover says the numbering
    /// goes on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub numbering_continues: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<OutputFacts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterStreamFacts>,
}

fn stream_facts(stream: &ObservedServiceStream, one_run: bool) -> ServiceStreamFacts {
    let segments = stream.segments();
    let served = stream.manifest.is_some();
    // A cluster's new owner numbers on from the index its predecessor
    // had reserved: the segment that owner was writing when it died is a
    // hole, where the takeover record says the numbering goes on.
    let takeovers: Vec<u64> = stream
        .manifest
        .iter()
        .flatten()
        .filter_map(|e| match e {
            ingest::ManifestEntry::Takeover(t) => Some(t.first_segment),
            _ => None,
        })
        .collect();
    let numbering = |kind: MediaKind| {
        let indices: Vec<u64> = segments
            .iter()
            .filter(|s| s.kind == kind)
            .map(|s| s.index)
            .collect();
        let step_ok = |from: Option<u64>, to: u64| {
            from.map_or(0, |f| f + 1) == to || (from.is_none_or(|f| to > f) && takeovers.contains(&to))
        };
        indices
            .iter()
            .enumerate()
            .all(|(i, index)| step_ok(i.checked_sub(1).map(|p| indices[p]), *index))
    };
    ServiceStreamFacts {
        served,
        refused: stream.refused.clone(),
        worker_starts: stream.view.as_ref().map(|v| v.worker_starts),
        connections: served.then(|| stream.connections()),
        video_segments: served.then(|| segments.iter().filter(|s| s.kind == MediaKind::Video).count()),
        audio_segments: served.then(|| segments.iter().filter(|s| s.kind == MediaKind::Audio).count()),
        numbering_continues: served.then(|| numbering(MediaKind::Video) && numbering(MediaKind::Audio)),
        output: output_facts(stream, one_run),
        cluster: None,
    }
}

/// The outcome, the unmet expectations, and the report's service figures.
pub(crate) fn assess(
    plan: &ServicePlan,
    expected: Option<&ExpectedService>,
    observed: &ObservedService,
    budget: Option<std::time::Duration>,
    report: &mut Report,
) -> (ServiceOutcome, Vec<Unmet>) {
    let world = &observed.world;
    let mut unmet: Vec<Unmet> = world.problems.iter().cloned().map(Unmet::Publisher).collect();
    for (run, stop) in world.stops.iter().enumerate() {
        if let Some(failure) = stop {
            unmet.push(Unmet::Service {
                stream: format!("run {}", run + 1),
                problem: ServiceUnmet::Stop(failure.clone()),
            });
        }
    }
    let mut streams = BTreeMap::new();
    for (stream, planned) in observed.streams.iter().zip(&plan.streams) {
        let mut facts = stream_facts(stream, world.service_runs == 1 && world.cluster.is_none());
        if let Some(cluster) = &world.cluster {
            let turns = cluster
                .status
                .iter()
                .find(|s| s["stream"] == stream.world.id.as_str())
                .and_then(|s| s["epoch"].as_u64());
            let found = super::cluster::facts(stream, turns);
            report.takeover_gaps_s.extend(found.gaps_s.iter().copied());
            // Each owner's view is its own, and a killed one's is gone.
            facts.worker_starts = None;
            facts.cluster = Some(found);
        }
        let expect = expected
            .and_then(|e| e.streams.get(&planned.name))
            .cloned()
            .unwrap_or_default();
        unmet.extend(
            stream_unmet(&facts, &expect, planned.is_input())
                .into_iter()
                .map(|problem| Unmet::Service {
                    stream: planned.name.clone(),
                    problem,
                }),
        );
        for read in &stream.reads {
            report.output_pictures.push(read.pictures);
            if let Some(problem) = &read.decode_problem {
                unmet.push(Unmet::Service {
                    stream: planned.name.clone(),
                    problem: ServiceUnmet::Output(format!(
                        "its output's audio could not be decoded: {problem}"
                    )),
                });
            }
        }
        if let Some(output) = &facts.output {
            report.output_spans.dub += output.kinds.dub;
            report.output_spans.original += output.kinds.original;
            report.output_spans.silence += output.kinds.silence;
        }
        report
            .output_delay_ms
            .extend(stream.spans().iter().map(|s| s.delay_ms));
        streams.insert(planned.name.clone(), facts);
    }
    report.attach_ms.extend(world.attach_ms.iter().copied());
    if let Some(cluster) = &world.cluster {
        report.cluster_events.clone_from(&cluster.events);
    }
    // The output runs a constant delay behind its input: how far apart the
    // spans' delays are is a figure for the report, and a budget where the
    // scenario sets one (a loaded machine wakes the output late).
    let spread = report
        .output_delay_ms
        .iter()
        .copied()
        .fold(None, |acc: Option<(f64, f64)>, d| {
            Some(acc.map_or((d, d), |(lo, hi)| (lo.min(d), hi.max(d))))
        })
        .map(|(lo, hi)| hi - lo);
    report.output_delay_spread_ms = spread;
    if let Some(budget) = budget {
        let budget_ms = budget.as_secs_f64() * 1e3;
        report.budgets.insert(
            "output_delay_spread",
            BudgetCheck {
                budget_ms,
                measured_ms: spread,
                met: spread.is_some_and(|s| s <= budget_ms),
            },
        );
    }
    let spread_evenly = plan
        .cluster
        .as_ref()
        .map(|c| super::cluster::spread_evenly(&observed.streams, c.instances()));
    if spread_evenly == Some(false) {
        unmet.push(Unmet::Service {
            stream: "every stream".to_owned(),
            problem: ServiceUnmet::Cluster(
                "the streams' first owners are not spread over the instances within one of even",
            ),
        });
    }
    let outcome = ServiceOutcome {
        runs: world.service_runs,
        stopped_cleanly: world.stops.iter().all(Option::is_none),
        spread_evenly,
        streams,
    };
    (outcome, unmet)
}

/// What a stream fails of its expectations and of what always holds.
fn stream_unmet(
    facts: &ServiceStreamFacts,
    expect: &ExpectedServiceStream,
    input: bool,
) -> Vec<ServiceUnmet> {
    let mut unmet = Vec::new();
    let should_serve = expect.served.unwrap_or(input && expect.refused.is_none());
    if facts.served != should_serve {
        unmet.push(ServiceUnmet::Served {
            expected: should_serve,
            got: facts.served,
        });
    }
    if let Some(words) = &expect.refused {
        match &facts.refused {
            Some(reason) if reason.contains(words.as_str()) => {}
            got => unmet.push(ServiceUnmet::Refused {
                expected: words.clone(),
                got: got.clone(),
            }),
        }
    }
    let mut stated = |what: &'static str, expected: Option<u64>, got: Option<u64>| {
        if let Some(expected) = expected
            && got != Some(expected)
        {
            unmet.push(ServiceUnmet::Stated {
                what,
                expected: expected.to_string(),
                got: got.map_or_else(|| "nothing".to_owned(), |g| g.to_string()),
            });
        }
    };
    stated(
        "video segments",
        expect.video_segments,
        facts.video_segments.map(|n| n as u64),
    );
    stated(
        "audio segments",
        expect.audio_segments,
        facts.audio_segments.map(|n| n as u64),
    );
    stated(
        "connections",
        expect.connections.map(u64::from),
        facts.connections.map(|n| n as u64),
    );
    stated(
        "worker starts",
        expect.worker_starts.map(u64::from),
        facts.worker_starts.map(u64::from),
    );
    if facts.numbering_continues == Some(false) {
        unmet.push(ServiceUnmet::Numbering);
    }
    if let Some(cluster) = &facts.cluster {
        unmet.extend(super::cluster::unmet(cluster, expect.owners));
    }
    if let Some(output) = &facts.output {
        if output.sent_every_segment_picture == Some(false) {
            unmet.push(ServiceUnmet::Output(
                "the output sent fewer (or more) pictures than the worker wrote to its segments".to_owned(),
            ));
        }
        if !output.every_picture {
            unmet.push(ServiceUnmet::Output(
                "a read of the output misses pictures after its first keyframe, or has none".to_owned(),
            ));
        }
        if !output.aligned {
            unmet.push(ServiceUnmet::Output(
                "the output's audio is not where the input had it, within one audio frame".to_owned(),
            ));
        }
        if !output.heard_as_recorded {
            unmet.push(ServiceUnmet::Output(format!(
                "the output's tones do not agree with its manifest: the spans carried {} dub, {} original, {} silence; the reads hold the dub's tone at {:.2} and the original's at {:.2} of their audio",
                output.kinds.dub,
                output.kinds.original,
                output.kinds.silence,
                output.heard.0,
                output.heard.1
            )));
        }
        if let Some(expected) = expect.output
            && output.carries != Some(expected)
        {
            unmet.push(ServiceUnmet::Stated {
                what: "output audio",
                expected: format!("{expected:?}"),
                got: format!("{:?}", output.carries),
            });
        }
    } else if facts.served && input {
        unmet.push(ServiceUnmet::Output("no output was published or read".to_owned()));
    }
    unmet
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_that_should_be_served_and_is_not_says_so() {
        let facts = ServiceStreamFacts {
            served: false,
            refused: Some("the service runs its maximum".to_owned()),
            worker_starts: None,
            connections: None,
            video_segments: None,
            audio_segments: None,
            numbering_continues: None,
            output: None,
            cluster: None,
        };
        let unmet = stream_unmet(&facts, &ExpectedServiceStream::default(), true);
        assert_eq!(
            unmet,
            [ServiceUnmet::Served {
                expected: true,
                got: false
            }]
        );
        let refused = ExpectedServiceStream {
            refused: Some("maximum".to_owned()),
            ..ExpectedServiceStream::default()
        };
        assert!(stream_unmet(&facts, &refused, true).is_empty());
    }
}
