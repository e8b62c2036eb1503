//! Runs one scenario end to end: plan -> running world (server, publishers,
//! ingest) -> observed facts -> outcome and report -> artifacts.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ingest::{MediaKind, SourceElement};
use media_tools::FixtureRecipe;

use crate::artifacts;
use crate::catalog::FixtureCatalog;
use crate::error::HarnessError;
use crate::observe::{ProbedSegment, probe_segments};
use crate::outcome::{self, Report, RunResult, ScenarioOutcome, percentile};
use crate::scenario::{ExpectedOutcome, ScenarioFile};
use crate::server::MediaServer;
use crate::stream_run::{FixtureMedia, StreamObservation, StreamPlan};

#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Overrides every scenario's source element (matrix runs).
    pub source: Option<SourceElement>,
    pub keep_artifacts: bool,
    /// Part of every stream id, so runs sharing an external server never
    /// collide (default: the process id; fixed when a server must be
    /// configured with the ids in advance, as nginx-rtmp is).
    pub run_id: String,
}

impl Default for RunSettings {
    fn default() -> Self {
        Self {
            source: None,
            keep_artifacts: false,
            run_id: std::process::id().to_string(),
        }
    }
}

/// The stream id of stream `k` of a scenario's `attempt` (1-based): each
/// attempt has its own, so a retry starts numbering afresh.
pub fn stream_id(scenario: &str, k: u32, run_id: &str, attempt: u32) -> String {
    format!("{}-{k}-{run_id}-a{attempt}", safe_id(scenario))
}

#[derive(Debug)]
pub struct ScenarioResult {
    pub name: String,
    pub problems: Vec<String>,
    pub outcome: ScenarioOutcome,
    pub report: Report,
    pub wall_time: Duration,
    pub dir: PathBuf,
}

impl ScenarioResult {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn segments(&self) -> usize {
        self.outcome
            .streams
            .iter()
            .map(|s| s.video_segments + s.audio_segments)
            .sum()
    }
}

/// Checks that a scenario can run on its fixture; an error explains why not.
pub fn check_compatible(file: &ScenarioFile, fixtures: &FixtureCatalog) -> Result<(), HarnessError> {
    let fixture = match &file.scenario.fixture {
        None => None,
        Some(name) => Some(fixtures.get(name).ok_or_else(|| HarnessError::Incompatible {
            path: file.path.clone(),
            message: format!(
                "fixture '{name}' is not in {} (known: {})",
                fixtures.path.display(),
                fixtures.names().join(", ")
            ),
        })?),
    };
    let problems = crate::compat::check(&file.scenario, fixture);
    if problems.is_empty() {
        return Ok(());
    }
    Err(HarnessError::Incompatible {
        path: file.path.clone(),
        message: format!("cannot run on its fixture: {}", problems.join("; ")),
    })
}

pub fn safe_id(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// What the world did during a scenario, per stream, with every segment
/// probed.
pub struct Observed {
    pub dir: PathBuf,
    pub streams: Vec<(StreamObservation, Vec<ProbedSegment>)>,
}

/// Runs the scenario's world and probes what it wrote. Attempt `attempt`
/// (1-based) writes into its own folder with its own stream ids.
pub async fn observe(
    file: &ScenarioFile,
    fixtures: &FixtureCatalog,
    server: &MediaServer,
    run_dir: &Path,
    settings: &RunSettings,
    attempt: u32,
) -> Result<Observed, HarnessError> {
    check_compatible(file, fixtures)?;
    let scenario = &file.scenario;
    let folder = match attempt {
        1 => safe_id(&file.name),
        n => format!("{}.attempt-{n}", safe_id(&file.name)),
    };
    let dir = run_dir.join(folder);
    std::fs::create_dir_all(&dir).map_err(|source| HarnessError::Io {
        path: dir.clone(),
        source,
    })?;
    let media = match recipe_of(file, fixtures) {
        Some(recipe) => Some(load_media(
            recipe,
            &recipe.ensure_built(&fixtures.cache_dir()).await?,
        )?),
        None => None,
    };
    let source = settings.source.or(scenario.ingest.source).unwrap_or_default();
    // A scenario that restarts its server gets one of its own, so that the
    // scenarios running beside it keep theirs; its log is this folder's.
    let restarts_server = scenario
        .faults
        .iter()
        .any(|f| matches!(f, crate::faults::Fault::RestartServer { .. }));
    let private = match restarts_server {
        true => Some(server.twin(&dir.join("server.log")).await?),
        false => None,
    };
    let server = private.as_ref().unwrap_or(server);
    let plans: Vec<StreamPlan<'_>> = (0..scenario.streams)
        .map(|k| StreamPlan {
            scenario,
            fixture: media.as_ref(),
            server,
            stream_id: stream_id(&file.name, k, &settings.run_id, attempt),
            dir: dir.clone(),
            source,
        })
        .collect();
    let observations = futures_util::future::join_all(plans.into_iter().map(StreamPlan::run)).await;
    let ids: Vec<&str> = observations.iter().map(|o| o.stream_id.as_str()).collect();
    match private {
        Some(private) => private.shutdown().await,
        None => artifacts::excerpt_server_log(&run_dir.join("server.log"), &ids, &dir.join("server.log"))?,
    }
    let mut streams = Vec::new();
    for observation in observations {
        let segments = probe_segments(&observation).await;
        artifacts::write_stream(&dir, &observation, &segments)?;
        streams.push((observation, segments));
    }
    Ok(Observed { dir, streams })
}

fn load_media(recipe: &FixtureRecipe, path: &Path) -> Result<FixtureMedia, HarnessError> {
    let bytes = std::fs::read(path).map_err(|source| HarnessError::Io {
        path: path.to_owned(),
        source,
    })?;
    let tags = media_tools::flv::read_tags(&bytes).ok_or_else(|| HarnessError::Incompatible {
        path: path.to_owned(),
        message: "the fixture is not an FLV file".to_owned(),
    })?;
    Ok(FixtureMedia {
        tags,
        audio_frame_ms: recipe.audio_frame_ms(),
        video_frame_s: 1.0 / f64::from(recipe.fps.max(1)),
    })
}

pub fn recipe_of<'a>(file: &ScenarioFile, fixtures: &'a FixtureCatalog) -> Option<&'a FixtureRecipe> {
    file.scenario.fixture.as_deref().and_then(|n| fixtures.get(n))
}

/// Turns observations into the deterministic outcome, the raw report and
/// the list of unmet expectations.
pub fn assess(
    file: &ScenarioFile,
    recipe: Option<&FixtureRecipe>,
    observed: &Observed,
) -> (ScenarioOutcome, Report, Vec<String>) {
    let scenario = &file.scenario;
    let mut report = Report::default();
    let mut streams = Vec::new();
    let mut durations = Vec::new();
    for (observation, segments) in &observed.streams {
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
        for phase in &observation.phases {
            report.attach_ms.extend(phase.attach_ms);
            report.first_buffer_ms.extend(phase.first_buffer_ms);
            report.timed_from.push(phase.timed_from);
        }
        if !observation.phases.is_empty() {
            report
                .deliverable_video_frames
                .push(observation.phases.iter().map(|p| p.video_frames).sum());
            report
                .deliverable_audio_frames
                .push(observation.phases.iter().map(|p| p.audio_frames).sum());
        }
        report
            .publisher_failures
            .extend(observation.publisher_failures.iter().cloned());
        streams.push(outcome::stream_facts(
            observation,
            segments,
            recipe,
            !scenario.faults.is_empty(),
        ));
    }
    let mut latencies = report.write_latency_ms.clone();
    latencies.sort_by(f64::total_cmp);
    report.write_latency_p50_ms = percentile(&latencies, 50.0);
    report.write_latency_p99_ms = percentile(&latencies, 99.0);
    report.write_latency_max_ms = latencies.last().copied();
    report.budgets = outcome::check_budgets(&scenario.expect.latency, &report);
    let outcome = ScenarioOutcome {
        result: outcome::overall(&streams),
        streams,
    };
    let mut problems = outcome::unmet(&scenario.expect, &outcome, &report, &durations);
    if scenario.expect.outcome == ExpectedOutcome::Completed {
        problems.extend(
            report
                .publisher_failures
                .iter()
                .map(|f| format!("publisher: {f}")),
        );
    }
    if outcome.result == RunResult::TimedOut {
        problems.push(format!("timed out after {:?}", scenario.timeout));
    }
    (outcome, report, problems)
}

pub async fn run_scenario(
    file: &ScenarioFile,
    fixtures: &FixtureCatalog,
    server: &MediaServer,
    run_dir: &Path,
    settings: &RunSettings,
    attempt: u32,
) -> Result<ScenarioResult, HarnessError> {
    let started = Instant::now();
    let observed = observe(file, fixtures, server, run_dir, settings, attempt).await?;
    let (outcome, mut report, problems) = assess(file, recipe_of(file, fixtures), &observed);
    report.wall_time_s = started.elapsed().as_secs_f64();
    artifacts::write_yaml(observed.dir.join("outcome.yaml"), &outcome)?;
    artifacts::write_json(observed.dir.join("report.json"), &report)?;
    Ok(ScenarioResult {
        name: file.name.clone(),
        problems,
        outcome,
        report,
        wall_time: started.elapsed(),
        dir: observed.dir,
    })
}

/// Removes a passed scenario's artifacts unless asked to keep them.
pub fn tidy(result: &ScenarioResult, settings: &RunSettings) {
    if result.passed() && !settings.keep_artifacts {
        let _ = std::fs::remove_dir_all(&result.dir);
    }
}
