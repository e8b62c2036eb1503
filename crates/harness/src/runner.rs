//! Runs one scenario attempt through the five stages, in order:
//! plan -> world -> observe -> assess -> record.

use std::path::Path;
use std::time::Instant;

use crate::error::HarnessError;
use crate::plan::catalog::FixtureCatalog;
use crate::plan::scenario::ScenarioFile;
use crate::plan::{Plan, RunSettings};
use crate::record::ScenarioResult;
use crate::world::server::MediaServer;

/// Runs attempt `attempt` (1-based) of `file` on `server`: its artifacts
/// go to its own folder under `run_dir`, its outcome is held against its
/// snapshot in `snapshot_dir`.
pub async fn run_scenario(
    file: &ScenarioFile,
    fixtures: &FixtureCatalog,
    server: &MediaServer,
    (run_dir, snapshot_dir): (&Path, &Path),
    settings: &RunSettings,
    attempt: u32,
) -> Result<ScenarioResult, HarnessError> {
    let started = Instant::now();
    let plan = Plan::make(file, fixtures, run_dir, settings, attempt).await?;
    let world = crate::world::run(&plan, server).await?;
    let observed = crate::observe::observe(&plan, world).await;
    let assessment = crate::assess::assess(&plan, &observed);
    crate::record::record(
        &plan,
        &observed,
        assessment,
        run_dir,
        snapshot_dir,
        started.elapsed(),
    )
}

/// Removes a passed scenario's artifacts unless asked to keep them.
pub fn tidy(result: &ScenarioResult, settings: &RunSettings) {
    if result.passed() && !settings.keep_artifacts {
        let _ = std::fs::remove_dir_all(&result.dir);
    }
}
