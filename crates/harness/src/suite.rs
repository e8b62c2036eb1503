//! The suite as a whole: where scenarios, fixtures and snapshots live, which
//! server to use, and one scenario's full check (run + expectations +
//! snapshot), shared by the `scenarios` test target and the `e2e` front end.

use std::path::{Path, PathBuf};

use ingest::SourceElement;

use crate::error::HarnessError;
use crate::plan::RunSettings;
use crate::plan::catalog::{self, FixtureCatalog};
use crate::plan::scenario::ScenarioFile;
use crate::record::ScenarioResult;
use crate::runner;
use crate::world::server::{MediaServer, ServerSettings};

/// Environment variables the test target reads (the e2e front end sets them
/// from its flags, so `cargo test`/nextest runs can be steered the same way).
pub const ENV_SERVER: &str = "E2E_SERVER";
pub const ENV_SOURCE: &str = "E2E_SOURCE";
pub const ENV_RUN_DIR: &str = "E2E_RUN_DIR";
pub const ENV_KEEP: &str = "E2E_KEEP_ARTIFACTS";
pub const ENV_MEDIAMTX_IMAGE: &str = "E2E_MEDIAMTX_IMAGE";
pub const ENV_RUN_ID: &str = "E2E_RUN_ID";

pub struct Suite {
    pub root: PathBuf,
    pub scenarios: Vec<ScenarioFile>,
    pub fixtures: FixtureCatalog,
}

impl Suite {
    pub fn load() -> Result<Self, HarnessError> {
        let root = catalog::workspace_root();
        let scenarios = catalog::load_scenarios(&root.join("scenarios"))?;
        let fixtures = FixtureCatalog::load(&root.join("fixtures").join(catalog::FIXTURES_FILE))?;
        Ok(Self {
            root,
            scenarios,
            fixtures,
        })
    }

    /// The scenario with this name (its path below scenarios/, no `.yaml`).
    pub fn scenario(&self, name: &str) -> Option<&ScenarioFile> {
        self.scenarios.iter().find(|f| f.name == name)
    }

    /// Every scenario that cannot run on its fixture, with the reason.
    pub fn incompatible(&self) -> Vec<HarnessError> {
        self.scenarios
            .iter()
            .filter_map(|f| crate::plan::check(f, &self.fixtures).err())
            .collect()
    }

    pub fn snapshot_dir(&self) -> PathBuf {
        self.root.join("scenarios").join("snapshots")
    }
}

/// Which server a run uses: `embedded` (default), `mediamtx` (a container),
/// `nginx` (nginx-rtmp started here), or `external=rtmp://host:port`
/// (optionally `,api=http://host:port`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ServerChoice {
    #[default]
    Embedded,
    Mediamtx,
    Nginx,
    External(String),
}

impl std::str::FromStr for ServerChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "" | "embedded" => Ok(Self::Embedded),
            "mediamtx" => Ok(Self::Mediamtx),
            "nginx" => Ok(Self::Nginx),
            other => match other.strip_prefix("external=") {
                Some(url) => Ok(Self::External(url.to_owned())),
                None => Err(format!(
                    "unknown server '{other}'; expected 'embedded', 'mediamtx', 'nginx' or 'external=rtmp://HOST:PORT[,api=http://HOST:PORT]'"
                )),
            },
        }
    }
}

impl ServerChoice {
    /// Why this server cannot be had on this machine, if it cannot: the
    /// scenarios are then skipped with that reason, never passed.
    pub fn unavailable(&self) -> Option<String> {
        match self {
            Self::Mediamtx => crate::world::server::docker_available()
                .err()
                .map(|e| e.to_string()),
            _ => None,
        }
    }

    /// Why this server cannot play `scenario`, if it cannot: the scenario
    /// needs something the server does not do, and is skipped with the
    /// reason, never failed and never passed.
    pub fn cannot_run(&self, scenario: &crate::plan::scenario::Scenario) -> Option<String> {
        use crate::plan::faults::Fault;
        let restarts = scenario
            .faults
            .iter()
            .any(|f| matches!(f, Fault::RestartServer { .. }));
        let kicks = scenario
            .faults
            .iter()
            .any(|f| matches!(f, Fault::KickIngest { .. }));
        let takes_over = scenario.publish.takeover_at.is_some();
        let service = scenario.service.is_some();
        match self {
            Self::Embedded | Self::Mediamtx => None,
            Self::Nginx if service => {
                Some("the service follows MediaMTX's Control API, which nginx-rtmp does not have".to_owned())
            }
            Self::External(spec) if service && !spec.contains(",api=") => Some(
                "the service follows the server's Control API (external=rtmp://H:P,api=http://H:P)"
                    .to_owned(),
            ),
            Self::Nginx if takes_over => {
                Some("nginx-rtmp refuses a second publisher on a busy stream: it has no takeover".to_owned())
            }
            Self::Nginx if kicks => Some("nginx-rtmp has no API to kick a reader".to_owned()),
            Self::Nginx | Self::External(_) if restarts => {
                Some("the harness restarts only a server it started itself (embedded, mediamtx)".to_owned())
            }
            Self::External(spec) if kicks && !spec.contains(",api=") => Some(
                "kicking the ingest needs the server's Control API (external=rtmp://H:P,api=http://H:P)"
                    .to_owned(),
            ),
            Self::Nginx | Self::External(_) => None,
        }
    }

    /// Starts the server, its log going to `run_dir/server.log`.
    pub async fn start(
        &self,
        run_dir: &Path,
        image: Option<&str>,
        settings: &ServerSettings,
    ) -> Result<MediaServer, HarnessError> {
        self.start_for(run_dir, image, settings, &[]).await
    }

    /// [`Self::start`] for a run with these stream ids (nginx-rtmp must be
    /// told them in advance).
    pub async fn start_for(
        &self,
        run_dir: &Path,
        image: Option<&str>,
        settings: &ServerSettings,
        stream_ids: &[String],
    ) -> Result<MediaServer, HarnessError> {
        std::fs::create_dir_all(run_dir).map_err(|source| HarnessError::Io {
            path: run_dir.to_owned(),
            source,
        })?;
        let log = run_dir.join("server.log");
        match self {
            Self::Embedded => MediaServer::embedded(&log, settings).await,
            Self::Mediamtx => MediaServer::container(image, &log, settings).await,
            Self::Nginx => MediaServer::nginx(run_dir, stream_ids).await,
            Self::External(url) => MediaServer::external(url),
        }
    }
}

/// Settings from the environment, for the test target.
pub fn settings_from_env() -> Result<(ServerChoice, RunSettings, PathBuf), HarnessError> {
    // The image for `mediamtx` is read by the caller from ENV_MEDIAMTX_IMAGE.
    let server = std::env::var(ENV_SERVER)
        .unwrap_or_default()
        .parse()
        .map_err(|reason| HarnessError::Setting {
            var: ENV_SERVER,
            reason,
        })?;
    let source = match std::env::var(ENV_SOURCE) {
        Ok(s) if !s.is_empty() => Some(s.parse::<SourceElement>().map_err(|e| HarnessError::Setting {
            var: ENV_SOURCE,
            reason: e.to_string(),
        })?),
        _ => None,
    };
    let run_dir = std::env::var_os(ENV_RUN_DIR)
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::record::artifacts::run_dir(&catalog::workspace_root()));
    let mut settings = RunSettings {
        source,
        keep_artifacts: std::env::var_os(ENV_KEEP).is_some(),
        ..RunSettings::default()
    };
    if let Ok(run_id) = std::env::var(ENV_RUN_ID)
        && !run_id.is_empty()
    {
        settings.run_id = run_id;
    }
    Ok((server, settings, run_dir))
}

/// A scenario attempt that did not pass.
#[derive(Debug)]
pub struct ScenarioFailure {
    /// What it did, when it ran at all (`None`: it could not be run).
    pub result: Option<ScenarioResult>,
    /// For people: what was wrong, and where the artifacts are.
    pub message: String,
}

/// Runs one attempt (1-based) of a scenario and checks expectations and
/// snapshot.
pub async fn check_scenario(
    suite: &Suite,
    file: &ScenarioFile,
    server: &MediaServer,
    run_dir: &Path,
    settings: &RunSettings,
    attempt: u32,
) -> Result<ScenarioResult, ScenarioFailure> {
    let result = runner::run_scenario(
        file,
        &suite.fixtures,
        server,
        (run_dir, &suite.snapshot_dir()),
        settings,
        attempt,
    )
    .await
    .map_err(|e| ScenarioFailure {
        result: None,
        message: e.to_string(),
    })?;
    runner::tidy(&result, settings);
    if result.passed() {
        return Ok(result);
    }
    let unmet: Vec<String> = result.unmet.iter().map(ToString::to_string).collect();
    let message = format!(
        "{}\n  - {}\n  artifacts: {}",
        file.name,
        unmet.join("\n  - "),
        result.dir.display()
    );
    Err(ScenarioFailure {
        result: Some(result),
        message,
    })
}
