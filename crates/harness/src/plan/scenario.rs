//! The scenario file format. Strict: unknown keys are refused with the file,
//! line and column, so a typo never silently changes what a test means.
//! `cargo xtask schema` writes the JSON Schema editors use to complete it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ingest::SourceElement;
use media_tools::Pace;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::HarnessError;

/// One test: a fixture published in some way, an ingest, and what to expect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What the scenario shows, in one sentence.
    pub description: String,
    /// Labels for `--tag`/`--skip-tag` selection (e.g. smoke, realtime, refusal).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Name of a recipe in fixtures/fixtures.yaml; omit to publish nothing.
    #[serde(default)]
    pub fixture: Option<String>,
    #[serde(default)]
    pub publish: PublishPlan,
    #[serde(default)]
    pub ingest: IngestPlan,
    /// Faults played against the stream's connections, at media times of
    /// the fixture (counted from the first frame the ingest is sent).
    #[serde(default)]
    pub faults: Vec<crate::plan::faults::Fault>,
    /// Each stream's audio segments go to an echo STS with these knobs.
    #[serde(default)]
    pub sts: Option<crate::plan::sts::StsPlan>,
    /// Independent streams run at once, each on its own path.
    #[serde(default = "one")]
    pub streams: u32,
    /// Run the live-dubbing service (`ingest serve`) instead of one ingest
    /// per stream, and publish these streams to it.
    #[serde(default)]
    pub service: Option<crate::plan::service::ServicePlan>,
    /// The whole scenario must end within this, e.g. 90s.
    #[serde(with = "humantime_serde", default = "default_timeout")]
    #[schemars(with = "String")]
    pub timeout: Duration,
    pub expect: Expectations,
}

fn one() -> u32 {
    1
}

fn default_timeout() -> Duration {
    Duration::from_secs(120)
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishPlan {
    /// realtime (frames at their timestamps) or fast (20x realtime); either
    /// way after a 3-s lead-in and once the ingest reads the stream.
    #[serde(default)]
    #[schemars(with = "PaceSchema")]
    pub pace: Pace,
    /// Start publishing this long after the ingest started (a late publisher).
    #[serde(with = "humantime_serde", default)]
    #[schemars(with = "Option<String>")]
    pub start_delay: Option<Duration>,
    /// Publish only this much of the fixture, then stop (an early end).
    #[serde(with = "humantime_serde", default)]
    #[schemars(with = "Option<String>")]
    pub stop_after: Option<Duration>,
    /// Stop at this point of the fixture and publish again from there (a
    /// publisher restart: the ingest must reconnect and continue).
    #[serde(with = "humantime_serde", default)]
    #[schemars(with = "Option<String>")]
    pub restart_at: Option<Duration>,
    /// At this point of the fixture a second publisher takes the path over
    /// from the first, which stays connected (MediaMTX's
    /// `overridePublisher`: the server closes the first publisher and its
    /// readers); the second publishes from there. Not with `restart_at`.
    #[serde(with = "humantime_serde", default)]
    #[schemars(with = "Option<String>")]
    pub takeover_at: Option<Duration>,
    /// Publish as production does: the publisher is there first and sends
    /// the fixture from its start, keyframes and all, with no lead-in and no
    /// hold for the ingest, which joins on its own (`ingest.join_after`) and
    /// starts at the first keyframe the server gives it. Not with
    /// `start_delay`, `restart_at`, `takeover_at` or faults.
    #[serde(default)]
    pub live: bool,
}

#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum PaceSchema {
    Realtime,
    Fast,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IngestPlan {
    /// rtmpsrc (default) or rtmp2src; `--source` overrides it for matrix runs.
    #[serde(default)]
    #[schemars(with = "Option<SourceSchema>")]
    pub source: Option<SourceElement>,
    /// Target segment duration (default 6s).
    #[serde(with = "humantime_serde", default)]
    #[schemars(with = "Option<String>")]
    pub segment_duration: Option<Duration>,
    /// Queue and appsink capacity (default 10).
    #[serde(default)]
    pub max_buffers: Option<u32>,
    /// How long the ingest waits for a missing track (default 2s).
    #[serde(with = "humantime_serde", default)]
    #[schemars(with = "Option<String>")]
    pub audio_validation_timeout: Option<Duration>,
    /// How long the ingest waits on a silent server before it leaves it
    /// (default 10s).
    #[serde(with = "humantime_serde", default)]
    #[schemars(with = "Option<String>")]
    pub idle_timeout: Option<Duration>,
    /// With `publish.live`: start the ingest this long after the publisher
    /// (a worker joining a stream that is running); by default it starts
    /// with the publisher and waits for the stream.
    #[serde(with = "humantime_serde", default)]
    #[schemars(with = "Option<String>")]
    pub join_after: Option<Duration>,
    /// Pull this URL instead of the server's path for the stream (to test
    /// URL validation); `{server}` stands for the server's host:port.
    #[serde(default)]
    pub url: Option<String>,
}

#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum SourceSchema {
    Rtmpsrc,
    Rtmp2src,
}

/// How the ingest must end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExpectedOutcome {
    /// The stream was ingested to its end.
    Completed,
    /// The ingest refused or failed with the `error` given next to it.
    Failed,
}

/// [`ingest::ErrorKind`]'s names for editors, made from the kinds
/// themselves (the ingest carries no schema dependency).
pub(crate) fn error_kind_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let names: Vec<&str> = ingest::ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
    schemars::json_schema!({ "type": "string", "enum": names })
}

/// The error a failing scenario must end with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectedError {
    /// The ingest's error kind; a name it does not have is refused when
    /// the file is read.
    #[schemars(schema_with = "error_kind_schema")]
    pub kind: ingest::ErrorKind,
    /// A fragment the error message must contain.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    pub outcome: ExpectedOutcome,
    /// Required with `outcome: failed`.
    #[serde(default)]
    pub error: Option<ExpectedError>,
    #[serde(default)]
    pub video_segments: Option<u64>,
    #[serde(default)]
    pub audio_segments: Option<u64>,
    /// Every segment but the last lasts this long, within the tolerance.
    #[serde(default)]
    pub segment_duration: Option<DurationExpectation>,
    /// Every video segment starts with a keyframe (checked with ffprobe).
    #[serde(default)]
    pub keyframe_aligned: Option<bool>,
    /// As many audio as video segments, pairwise covering the same span.
    #[serde(default)]
    pub av_parity: Option<bool>,
    /// Whether the last segment is partial (the stream ended mid-segment).
    #[serde(default)]
    pub partial_last: Option<bool>,
    /// Connections the ingest made that delivered media.
    #[serde(default)]
    pub connections: Option<u32>,
    #[serde(default)]
    pub latency: LatencyBudgets,
    /// What the fragments come to (with an `sts:` block). Whatever is
    /// given here, every fragment must be sent in order, recorded once,
    /// dubbed into a file ffprobe opens, and never more in flight than
    /// the STS allowed.
    #[serde(default)]
    pub sts: Option<crate::plan::sts::ExpectedSts>,
    /// With a `service:` block: what each stream comes to.
    #[serde(default)]
    pub service: Option<crate::plan::service::ExpectedService>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DurationExpectation {
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub target: Duration,
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub tolerance: Duration,
}

/// Timing budgets, checked on every run and reported pass/fail (a missed
/// budget fails the run with the figure); never part of a snapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LatencyBudgets {
    /// From the stream becoming available to the ingest reading it.
    #[serde(with = "humantime_serde", default)]
    #[schemars(with = "Option<String>")]
    pub attach: Option<Duration>,
    /// From the stream becoming available to the ingest's first audio and video.
    #[serde(with = "humantime_serde", default)]
    #[schemars(with = "Option<String>")]
    pub first_buffer: Option<Duration>,
    /// 99th percentile of segment write latency.
    #[serde(with = "humantime_serde", default)]
    #[schemars(with = "Option<String>")]
    pub segment_write_p99: Option<Duration>,
    /// Service scenarios: how far apart the output spans' delays behind
    /// their input may be (a constant delay: one frame, 33ms at 30 fps).
    #[serde(with = "humantime_serde", default)]
    #[schemars(with = "Option<String>")]
    pub output_delay_spread: Option<Duration>,
}

/// A scenario with where it came from.
#[derive(Debug, Clone)]
pub struct ScenarioFile {
    /// Path relative to the scenarios folder, without `.yaml`: the test name.
    pub name: String,
    pub path: PathBuf,
    pub scenario: Scenario,
}

impl Scenario {
    /// Parses YAML, reporting file, line and column on any error.
    pub fn parse(text: &str, path: &Path) -> Result<Self, HarnessError> {
        let scenario: Self = serde_yaml::from_str(text).map_err(|e| HarnessError::yaml(path, &e))?;
        // serde has no position for a rule across two keys; point at the
        // `outcome:` line, where the author decides which one applies.
        let (line, column) = text
            .lines()
            .enumerate()
            .find_map(|(i, l)| l.find("outcome:").map(|c| (i + 1, c + 1)))
            .unwrap_or((1, 1));
        let invalid = |message: &str| HarnessError::Scenario {
            path: path.to_owned(),
            line,
            column,
            message: message.to_owned(),
        };
        match (scenario.expect.outcome, &scenario.expect.error) {
            (ExpectedOutcome::Failed, None) => Err(invalid(
                "expect.outcome is 'failed' but expect.error is missing; give {kind, message}",
            )),
            (ExpectedOutcome::Completed, Some(_)) => Err(invalid(
                "expect.error is given but expect.outcome is 'completed'; use outcome: failed",
            )),
            _ => Ok(scenario),
        }
    }
}

/// The JSON Schema of scenario files, as committed in scenarios/.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Scenario);
    serde_json::to_string_pretty(&schema).expect("schemas serialise") + "\n"
}

#[cfg(test)]
mod tests;
