//! The fifth stage, written once at the end: per scenario the artifacts a
//! person reads after a failure ([`artifacts`]), `outcome.yaml`,
//! `report.json` and the outcome snapshot ([`snapshot`]); per run the
//! summary table ([`summary`]), JUnit ([`junit`]) and the HTML report
//! ([`html`], drawing each stream's [`timeline`]).

pub(crate) mod artifacts;
pub(crate) mod html;
pub(crate) mod junit;
pub(crate) mod snapshot;
pub(crate) mod summary;
mod svg;
pub(crate) mod timeline;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::assess::Assessment;
use crate::assess::outcome::ScenarioOutcome;
use crate::assess::report::Report;
use crate::assess::unmet::Unmet;
use crate::error::HarnessError;
use crate::observe::Observed;
use crate::plan::Plan;
use crate::plan::faults::Fault;
use timeline::Timeline;

/// One scenario attempt, as recorded.
#[derive(Debug)]
pub struct ScenarioResult {
    pub name: String,
    pub description: String,
    pub unmet: Vec<Unmet>,
    pub outcome: ScenarioOutcome,
    pub report: Report,
    pub wall_time: Duration,
    pub dir: PathBuf,
    /// What happened when, per stream, for the HTML report.
    pub timelines: Vec<Timeline>,
}

impl ScenarioResult {
    pub fn passed(&self) -> bool {
        self.unmet.is_empty()
    }

    pub fn segments(&self) -> usize {
        let service: usize = self
            .outcome
            .service
            .iter()
            .flat_map(|s| s.streams.values())
            .map(|s| s.video_segments.unwrap_or(0) + s.audio_segments.unwrap_or(0))
            .sum();
        service
            + self
                .outcome
                .streams
                .iter()
                .map(|s| s.video_segments + s.audio_segments)
                .sum::<usize>()
    }
}

/// Writes what a scenario attempt left and came to, and checks its outcome
/// against the stored snapshot (a difference is one more unmet
/// expectation). `run_dir` holds the run's whole `server.log`.
pub(crate) fn record(
    plan: &Plan<'_>,
    observed: &Observed,
    assessment: Assessment,
    run_dir: &Path,
    snapshot_dir: &Path,
    wall_time: Duration,
) -> Result<ScenarioResult, HarnessError> {
    for stream in &observed.streams {
        artifacts::write_stream(&plan.dir, &stream.world, &stream.segments)?;
    }
    if let Some(service) = &observed.service {
        artifacts::write_json(plan.dir.join("service-streams.json"), &service.world.view)?;
        artifacts::write_text(plan.dir.join("service-metrics.txt"), &service.world.metrics)?;
    }
    // A scenario that restarted its server had one of its own, whose log
    // is already its own `server.log`.
    let private_server = plan
        .file
        .scenario
        .faults
        .iter()
        .any(|f| matches!(f, Fault::RestartServer { .. }));
    if !private_server {
        let ids: Vec<&str> = plan.stream_ids.iter().map(String::as_str).collect();
        artifacts::excerpt_server_log(&run_dir.join("server.log"), &ids, &plan.dir.join("server.log"))?;
    }
    let Assessment {
        outcome,
        mut report,
        mut unmet,
    } = assessment;
    report.wall_time_s = wall_time.as_secs_f64();
    artifacts::write_yaml(plan.dir.join("outcome.yaml"), &outcome)?;
    artifacts::write_json(plan.dir.join("report.json"), &report)?;
    if let Err(diff) = snapshot::check(plan.file, &outcome, snapshot_dir) {
        unmet.push(Unmet::Snapshot(diff.to_string()));
    }
    let timelines = observed.streams.iter().map(Timeline::of).collect();
    Ok(ScenarioResult {
        name: plan.file.name.clone(),
        description: plan.file.scenario.description.clone(),
        unmet,
        outcome,
        report,
        wall_time,
        dir: plan.dir.clone(),
        timelines,
    })
}
