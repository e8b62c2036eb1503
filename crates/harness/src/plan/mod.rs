//! The first stage: a scenario file, checked and made ready to run. The
//! format ([`scenario`], with its [`faults`] and [`sts`] blocks), the fixture
//! catalog ([`catalog`]), whether a scenario can run on its fixture at all
//! ([`compat`], checked once, when the plan is made), and which scenarios a
//! run selects ([`selection`]).

pub(crate) mod catalog;
pub(crate) mod cluster;
pub(crate) mod compat;
pub(crate) mod faults;
pub(crate) mod scenario;
pub(crate) mod selection;
pub(crate) mod service;
pub(crate) mod sts;

use std::path::{Path, PathBuf};

use ingest::SourceElement;
use media_tools::FixtureRecipe;
use media_tools::flv::FlvTag;

use crate::error::HarnessError;
use catalog::FixtureCatalog;
use scenario::ScenarioFile;

/// Settings of a run that every scenario's plan takes.
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

/// A fixture's media, read once per scenario.
#[derive(Debug, Clone)]
pub struct FixtureMedia {
    pub tags: Vec<FlvTag>,
    /// Length of one audio frame in ms (1024 samples).
    pub audio_frame_ms: f64,
    /// Length of one picture in seconds.
    pub video_frame_s: f64,
}

/// A scenario ready to run: checked against its fixture, the fixture built
/// and read, its folder made, its streams named.
pub struct Plan<'a> {
    pub file: &'a ScenarioFile,
    pub recipe: Option<&'a FixtureRecipe>,
    pub media: Option<FixtureMedia>,
    pub source: SourceElement,
    pub stream_ids: Vec<String>,
    /// `target/e2e/<run>/<scenario>[.attempt-N]/`.
    pub dir: PathBuf,
}

impl<'a> Plan<'a> {
    /// Plans attempt `attempt` (1-based) of `file`: its own folder and
    /// stream ids, so a retry starts afresh.
    pub async fn make(
        file: &'a ScenarioFile,
        fixtures: &'a FixtureCatalog,
        run_dir: &Path,
        settings: &RunSettings,
        attempt: u32,
    ) -> Result<Self, HarnessError> {
        let recipe = check(file, fixtures)?;
        let folder = match attempt {
            1 => safe_id(&file.name),
            n => format!("{}.attempt-{n}", safe_id(&file.name)),
        };
        let dir = run_dir.join(folder);
        std::fs::create_dir_all(&dir).map_err(|source| HarnessError::Io {
            path: dir.clone(),
            source,
        })?;
        let media = match recipe {
            Some(recipe) => Some(load_media(
                recipe,
                &recipe.ensure_built(&fixtures.cache_dir()).await?,
            )?),
            None => None,
        };
        Ok(Self {
            file,
            recipe,
            media,
            source: settings
                .source
                .or(file.scenario.ingest.source)
                .unwrap_or_default(),
            stream_ids: (0..stream_count(&file.scenario))
                .map(|k| stream_id(&file.name, k, &settings.run_id, attempt))
                .collect(),
            dir,
        })
    }
}

impl Plan<'_> {
    /// The application a service scenario's paths live in (`live` in
    /// production): its own, so that services sharing a server never see
    /// each other's streams.
    pub fn service_app(&self) -> String {
        let first = self.stream_ids.first().map_or("", String::as_str);
        // The stream ids end with `-<k>-<run>-a<attempt>`: the app keeps
        // the scenario's name, run and attempt.
        format!("live-{}", first.replacen("-0-", "-", 1))
    }
}

/// Whether `file` can run on its fixture (its recipe, if it has one); an
/// error explains why not.
pub(crate) fn check<'a>(
    file: &ScenarioFile,
    fixtures: &'a FixtureCatalog,
) -> Result<Option<&'a FixtureRecipe>, HarnessError> {
    let recipe = match &file.scenario.fixture {
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
    let problems = compat::check(&file.scenario, recipe);
    if problems.is_empty() {
        return Ok(recipe);
    }
    Err(HarnessError::Incompatible {
        path: file.path.clone(),
        message: format!("cannot run on its fixture: {}", problems.join("; ")),
    })
}

/// Streams a scenario publishes: its service's, or `streams`.
fn stream_count(scenario: &scenario::Scenario) -> u32 {
    match &scenario.service {
        Some(service) => service.streams.len() as u32,
        None => scenario.streams,
    }
}

/// The stream id of stream `k` of a scenario's `attempt` (1-based).
pub fn stream_id(scenario: &str, k: u32, run_id: &str, attempt: u32) -> String {
    format!("{}-{k}-{run_id}-a{attempt}", safe_id(scenario))
}

fn safe_id(name: &str) -> String {
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

fn load_media(recipe: &FixtureRecipe, path: &Path) -> Result<FixtureMedia, HarnessError> {
    let bytes = std::fs::read(path).map_err(|source| HarnessError::Io {
        path: path.to_owned(),
        source,
    })?;
    let tags = media_tools::flv::read_tags(&bytes).ok_or_else(|| HarnessError::NotFlv {
        path: path.to_owned(),
    })?;
    Ok(FixtureMedia {
        tags,
        audio_frame_ms: recipe.audio_frame_ms(),
        video_frame_s: 1.0 / f64::from(recipe.fps.max(1)),
    })
}
