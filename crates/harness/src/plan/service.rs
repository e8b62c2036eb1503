//! A scenario's `service:` block: the harness runs the live-dubbing service
//! (`ingest serve`) against the server under test and publishes several
//! streams, each on its own schedule; `expect.service` says what each comes
//! to. The STS (the top-level `sts:` block, or none) answers every fragment
//! with a tone, so the dubbed output is told from the original.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The tone the echo STS answers with in service scenarios; the fixtures
/// speak 440 Hz.
pub(crate) const DUB_TONE_HZ: f64 = 1000.0;
pub(crate) const ORIGINAL_TONE_HZ: f64 = 440.0;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServicePlan {
    /// The streams published, each on its own path and schedule.
    pub streams: Vec<ServiceStream>,
    /// The service's `max_streams` (default 64).
    #[serde(default)]
    pub max_streams: Option<usize>,
    /// How long a stream gone from MediaMTX keeps its worker (default 2s).
    #[serde(with = "humantime_serde", default)]
    #[schemars(with = "Option<String>")]
    pub grace: Option<Duration>,
    /// Target segment duration (default 6s).
    #[serde(with = "humantime_serde", default)]
    #[schemars(with = "Option<String>")]
    pub segment_duration: Option<Duration>,
    /// The output's delay behind the input (default: a segment plus 3 s).
    #[serde(with = "humantime_serde", default)]
    #[schemars(with = "Option<String>")]
    pub output_delay: Option<Duration>,
    /// What fills a span whose dub did not come in time: original (default)
    /// or silence.
    #[serde(default)]
    #[schemars(with = "Option<FallbackSchema>")]
    pub output_fallback: Option<ingest::Fallback>,
    /// Stop the service as SIGTERM does this long after the scenario
    /// started, and start it again once it has stopped.
    #[serde(with = "humantime_serde", default)]
    #[schemars(with = "Option<String>")]
    pub restart_at: Option<Duration>,
    /// Run the service as several `ingest serve` processes sharing the
    /// streams through a real nats-server, with faults on them.
    #[serde(default)]
    pub cluster: Option<crate::plan::cluster::ClusterPlan>,
}

#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum FallbackSchema {
    Original,
    Silence,
}

/// One publisher of a service scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceStream {
    /// Its name in `expect.service` and in the snapshot (letters, digits,
    /// `-`): the stream id ends with it.
    pub name: String,
    /// Where it publishes, with `{id}` for its stream id (default
    /// `live/{id}/in`). Another shape (`live/{id}/out`, `live/{id}/x/in`)
    /// publishes what the service must leave alone or refuse. The harness
    /// gives each scenario an application of its own in place of `live`.
    #[serde(default)]
    pub path: Option<String>,
    /// When its publisher starts, counted from the scenario's start.
    #[serde(with = "humantime_serde", default)]
    #[schemars(with = "Option<String>")]
    pub start: Option<Duration>,
    /// Publish only this much of the fixture, then leave.
    #[serde(with = "humantime_serde", default)]
    #[schemars(with = "Option<String>")]
    pub stop_after: Option<Duration>,
    /// After the publish ended, publish the fixture again after this pause
    /// (a publisher that comes back).
    #[serde(with = "humantime_serde", default)]
    #[schemars(with = "Option<String>")]
    pub again_after: Option<Duration>,
    /// Publish as an encoder does, from the fixture's start, waiting for
    /// no worker (by default an input is staged: held until a worker reads
    /// it, then sent from its first keyframe). A stream the service leaves
    /// alone or refuses is always published so.
    #[serde(default)]
    pub live: bool,
}

impl ServiceStream {
    /// The path this stream publishes on, for stream id `id`, in
    /// application `app` (the `live` of the scenario's paths).
    pub fn path(&self, app: &str, id: &str) -> String {
        in_app(self.path.as_deref().unwrap_or(service::DEFAULT_INPUT), app).replace("{id}", id)
    }

    /// Whether the service should serve it: a path of the input's shape.
    pub fn is_input(&self) -> bool {
        self.path.as_deref().is_none_or(|p| p == service::DEFAULT_INPUT)
    }
}

/// `template` (`live/...`) in application `app`: every service scenario
/// has an application of its own, so that the services of scenarios that
/// share a server never see each other's streams.
pub(crate) fn in_app(template: &str, app: &str) -> String {
    match template.strip_prefix("live/") {
        Some(rest) => format!("{app}/{rest}"),
        None => template.to_owned(),
    }
}

/// What the audio of a stream's output carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutputAudio {
    /// The STS's answers, in every span whose answer came within the
    /// output's delay (the others carry the fallback: how many depends on
    /// the machine's speed, so the report has that split).
    Dub,
    /// The input's own audio (the fallback).
    Original,
    Silence,
    /// Spans of both fallbacks (a service restarted with another one).
    Mixed,
}

/// What one stream must come to; fields left out are not checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectedServiceStream {
    /// Whether a worker served it (default: when its path is an input).
    #[serde(default)]
    pub served: Option<bool>,
    /// A fragment of the reason the service gives for refusing it.
    #[serde(default)]
    pub refused: Option<String>,
    #[serde(default)]
    pub video_segments: Option<u64>,
    #[serde(default)]
    pub audio_segments: Option<u64>,
    /// Input connections its worker read media on.
    #[serde(default)]
    pub connections: Option<u32>,
    /// Workers started for it, over every run of the service.
    #[serde(default)]
    pub worker_starts: Option<u32>,
    /// What its output's audio carried.
    #[serde(default)]
    pub output: Option<OutputAudio>,
    /// In a cluster: how many instances served it, one after the other.
    #[serde(default)]
    pub owners: Option<u32>,
}

/// `expect.service`: per stream name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectedService {
    pub streams: BTreeMap<String, ExpectedServiceStream>,
}

/// What cannot go in a service scenario, or in its `service:` block.
pub(crate) fn problems(scenario: &crate::plan::scenario::Scenario) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(plan) = &scenario.service else {
        if scenario.expect.service.is_some() {
            problems.push("expect.service needs a service: block".to_owned());
        }
        return problems;
    };
    if scenario.streams != 1
        || scenario.publish != Default::default()
        || scenario.ingest != Default::default()
    {
        problems.push(
            "a service scenario gives its streams under service.streams, not streams/publish/ingest"
                .to_owned(),
        );
    }
    if !scenario.faults.is_empty() {
        problems.push("faults are not played in service scenarios".to_owned());
    }
    if scenario.fixture.is_none() {
        problems.push("a service scenario publishes a fixture: name one".to_owned());
    }
    if plan.streams.is_empty() {
        problems.push("service.streams is empty: publish at least one stream".to_owned());
    }
    let mut names = std::collections::BTreeSet::new();
    for stream in &plan.streams {
        if stream.name.is_empty() || !stream.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            problems.push(format!(
                "stream name '{}' must be letters, digits and '-'",
                stream.name
            ));
        }
        if !names.insert(stream.name.as_str()) {
            problems.push(format!("stream name '{}' is given twice", stream.name));
        }
        if stream.path.as_deref().is_some_and(|p| !p.contains("{id}")) {
            problems.push(format!("stream '{}': path needs {{id}}", stream.name));
        }
    }
    if let Some(cluster) = &plan.cluster {
        problems.extend(crate::plan::cluster::problems(cluster, &names));
        if plan.streams.iter().any(|s| !s.live) {
            problems.push(
                "a cluster's streams are published live (live: true), as production publishes: the cluster decides which instance reads them"
                    .to_owned(),
            );
        }
        if plan.restart_at.is_some() {
            problems.push(
                "service.restart_at restarts the one service; a cluster's instances have faults of their own"
                    .to_owned(),
            );
        }
    }
    if let Some(expected) = &scenario.expect.service {
        for name in expected.streams.keys() {
            if !names.contains(name.as_str()) {
                problems.push(format!(
                    "expect.service.streams.{name} names no stream of service.streams"
                ));
            }
        }
    }
    problems
}
