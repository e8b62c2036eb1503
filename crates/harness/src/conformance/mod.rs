//! The media-server conformance suite: each behaviour of MediaMTX 1.20.1
//! that the ingest and the harness depend on is one [`Check`], run against
//! whichever server is given (the embedded one, MediaMTX in a container, an
//! external server), so the embedded stand-in and the real server answer to
//! the same checks. Where a recording of the real server exists
//! (`conformance/mediamtx-1.20.1/`), the check compares with it.
//!
//! A check talks RTMP with the server through `media_tools`' raw clients,
//! which show what a server sends message by message, and reads the
//! server's word (its log, its Control API) where the behaviour is about
//! that word. A check that needs something the server cannot give (a log
//! from an external server, settings it was not started with) is skipped
//! with the reason, never passed.
//!
//! Written by hand because these are the product's ground truth: the
//! embedded server exists to behave as these checks say.

mod api;
mod hooks;
mod material;
mod probe;
mod publishers;
mod readiness;
mod reading;
mod recordings;
mod slow_readers;
mod startup;

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use material::Material;
pub use probe::Probe;

use crate::suite::ServerChoice;
use crate::world::server::ServerSettings;

/// A check that has not finished by then has failed.
const CHECK_DEADLINE: Duration = Duration::from_secs(120);

/// What a check fails with.
pub type Verdict = Result<(), CheckFailure>;

/// Why a check failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckFailure {
    /// The server did otherwise than MediaMTX does: what it did, against
    /// what MediaMTX does (or what did not come within the wait).
    #[error("{0}")]
    Differs(String),
    /// The server could not be started or asked.
    #[error(transparent)]
    Server(#[from] crate::error::HarnessError),
}

impl From<String> for CheckFailure {
    fn from(what: String) -> Self {
        Self::Differs(what)
    }
}

impl From<&str> for CheckFailure {
    fn from(what: &str) -> Self {
        Self::Differs(what.to_owned())
    }
}

type Run = for<'a> fn(&'a Probe) -> Pin<Box<dyn Future<Output = Verdict> + Send + 'a>>;

/// What a check needs beyond RTMP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// The server's log lines (embedded, container).
    Log,
    /// The Control API.
    Api,
    /// A server the suite starts itself, with the check's settings.
    OwnServer,
}

#[derive(Clone, Copy)]
pub struct Check {
    /// `group::behaviour`, e.g. `reading::audio_at_once_video_from_the_next_idr`.
    pub name: &'static str,
    pub needs: &'static [Need],
    pub settings: fn() -> ServerSettings,
    run: Run,
}

impl Check {
    /// Why this check cannot run against `server`, if it cannot: it is
    /// then skipped with that reason.
    pub fn cannot_run_on(&self, server: &ServerChoice) -> Option<String> {
        if *server == ServerChoice::Nginx {
            return Some("nginx-rtmp is not MediaMTX: these checks describe MediaMTX 1.20.1".to_owned());
        }
        let ServerChoice::External(spec) = server else {
            return None;
        };
        self.needs.iter().find_map(|need| match need {
            Need::Log => Some("an external server's log cannot be read".to_owned()),
            Need::OwnServer => Some("it needs a server started with its own settings".to_owned()),
            Need::Api if !spec.contains(",api=") => {
                Some("the external server was given without its API (,api=http://HOST:PORT)".to_owned())
            }
            Need::Api => None,
        })
    }

    /// Starts `server` with this check's settings (its log in
    /// `run_dir/<check>/server.log`), runs the check and stops the server.
    pub async fn run_on(
        &self,
        server: &ServerChoice,
        image: Option<&str>,
        material: Arc<Material>,
        run_dir: &Path,
    ) -> Verdict {
        let dir = run_dir.join(self.name.replace("::", "-"));
        let started = Instant::now();
        let server = server
            .start(&dir, image, &(self.settings)())
            .await
            .map_err(|e| CheckFailure::from(e.to_string()))?;
        let probe = Probe::new(server, material, self.name, started);
        let verdict = match tokio::time::timeout(CHECK_DEADLINE, (self.run)(&probe)).await {
            Ok(verdict) => verdict,
            Err(_) => Err(format!("the check did not finish within {CHECK_DEADLINE:?}").into()),
        };
        probe.into_server().shutdown().await;
        verdict.map_err(|e| {
            CheckFailure::from(format!("{e}\n(server log: {})", dir.join("server.log").display()))
        })
    }
}

/// Declares a check; `$run` is an `async fn(&Probe) -> Verdict`.
macro_rules! check {
    ($group:literal, $run:path, $needs:expr) => {
        check!(
            $group,
            $run,
            $needs,
            crate::world::server::ServerSettings::default
        )
    };
    ($group:literal, $run:path, $needs:expr, $settings:expr) => {
        crate::conformance::Check {
            name: concat!($group, "::", stringify!($run)),
            needs: $needs,
            settings: $settings,
            run: |probe| Box::pin($run(probe)),
        }
    };
}
pub(crate) use check;

/// Every check, in a stable order.
pub fn checks() -> Vec<Check> {
    [
        startup::checks(),
        readiness::checks(),
        reading::checks(),
        slow_readers::checks(),
        publishers::checks(),
        api::checks(),
        hooks::checks(),
    ]
    .into_iter()
    .flatten()
    .collect()
}
