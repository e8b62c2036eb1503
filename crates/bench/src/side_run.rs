//! What the single-purpose modes (soak, service, cluster) share around
//! their measurement: the output folder, the machine and date the report
//! names, the fixture, and the files and verdict at the end.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::fixture::Fixture;
use crate::machine::{Machine, utc_now};

/// A prepared run: its folder exists and its fixture is built.
pub(crate) struct SideRun {
    pub(crate) machine: Machine,
    pub(crate) date: String,
    pub(crate) fixture: Fixture,
    out: PathBuf,
}

impl SideRun {
    /// Creates `out` and builds (or reuses from `fixture_cache`) a fixture
    /// of `media_s` seconds.
    pub(crate) async fn prepare(out: &Path, fixture_cache: &Path, media_s: f64) -> Result<Self> {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        let fixture = Fixture::prepare(fixture_cache, &out.join("fixtures"), media_s).await?;
        Ok(Self {
            machine: Machine::detect(),
            date: utc_now(),
            fixture,
            out: out.to_owned(),
        })
    }

    /// Writes `text` as `name` in the run's folder.
    pub(crate) fn write(&self, name: &str, text: &str) -> Result<()> {
        let path = self.out.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    }

    /// Writes the raw figures as `<mode>.json`: when, how and where, and
    /// the outcome under the mode's name.
    pub(crate) fn write_json(&self, mode: &str, command: &str, outcome: &impl Serialize) -> Result<()> {
        let json = serde_json::to_string_pretty(&serde_json::json!({
            "date": self.date, "command": command, "machine": self.machine, mode: outcome,
        }))?;
        self.write(&format!("{mode}.json"), &json)
    }

    /// Prints the report and fails the run when a target was missed.
    pub(crate) fn conclude(&self, markdown: &str, what: &str, failures: Vec<String>) -> Result<()> {
        println!("{markdown}");
        tracing::info!("report: {}", self.out.display());
        if !failures.is_empty() {
            bail!("{what}: {}", failures.join("; "));
        }
        Ok(())
    }
}
