//! The media server a run uses: the embedded RTMP server (default, no Docker
//! needed), MediaMTX in a container (testcontainers), or an external one
//! (MediaMTX started with docker-compose.e2e.yml, nginx-rtmp, ...).
//!
//! What the harness asks of a server beyond RTMP is its word: when a path
//! became available, when a reader started reading it, who publishes and
//! reads it. The embedded server and a container say it in MediaMTX's log
//! lines ([`log`]) and through its Control API ([`api`]); an external
//! server through its API when one is given (`external=rtmp://H:P,api=http://H:P`),
//! otherwise not at all, and the harness then relies on what the ingest
//! itself reports.

pub mod api;
pub mod leftovers;
pub mod log;
pub mod mediamtx;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rtmp_server::{RtmpServer, ServerConfig};
use testcontainers::core::logs::LogFrame;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, ImageExt};

use crate::error::HarnessError;
use api::ApiClient;
use log::{Heard, ServerLog};
use mediamtx::{API_PORT, MediaMtx, RTMP_PORT};

/// How long a MediaMTX container may take to start (image present locally).
const CONTAINER_STARTUP: Duration = Duration::from_secs(60);
/// Polling period for servers known only through their API.
const API_POLL: Duration = Duration::from_millis(25);

/// MediaMTX settings a run may change from the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerSettings {
    /// `overridePublisher: no`: a second publisher is refused.
    pub refuse_second_publisher: bool,
    /// `readTimeout` (`None`: MediaMTX's 10 s).
    pub read_timeout: Option<Duration>,
    /// MediaMTX's stock access rule for the API (loopback only) instead of
    /// the repository's configuration, which opens it to any address; the
    /// API then listens on every interface, as in a container.
    pub stock_api_access: bool,
}

impl ServerSettings {
    /// Whether these are MediaMTX's defaults as the suite runs it, which an
    /// external server is assumed to have.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

enum Kind {
    /// Behind a lock only so that a fault can restart it mid-run.
    Embedded(Arc<std::sync::Mutex<RtmpServer>>),
    Container {
        container: Box<ContainerAsync<MediaMtx>>,
        description: String,
    },
    External {
        base: String,
    },
}

pub struct MediaServer {
    kind: Kind,
    /// What started it, for a private twin ([`Self::twin`]).
    settings: ServerSettings,
    image: Option<String>,
    /// `host:port` of the RTMP listener.
    rtmp: String,
    log: Option<Arc<ServerLog>>,
    api: Option<ApiClient>,
}

/// What the server said about something the harness waits for.
#[derive(Debug, Clone)]
pub enum Word {
    /// It happened then (the line or answer that says so).
    Said { at: Instant, evidence: String },
    /// The server can tell, but it did not happen in time.
    Silent,
    /// This server cannot be asked.
    Unknown,
}

impl MediaServer {
    /// The embedded server, with its API on a free loopback port, its log
    /// written to `log_file`.
    pub async fn embedded(log_file: &Path, settings: &ServerSettings) -> Result<Self, HarnessError> {
        let mut config = ServerConfig {
            override_publisher: !settings.refuse_second_publisher,
            ..ServerConfig::with_api()
        };
        if let Some(timeout) = settings.read_timeout {
            config.read_timeout = timeout;
        }
        if settings.stock_api_access {
            config.api_listen = Some(std::net::SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, 0)));
        }
        let server = RtmpServer::start(config).map_err(|e| HarnessError::Server(e.to_string()))?;
        let log = Arc::new(ServerLog::create(log_file)?);
        let mut lines = server.subscribe_log();
        for line in server.startup_log() {
            log.push_line(line);
        }
        let sink = log.clone();
        tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                match lines.recv().await {
                    Ok(line) => sink.push_line(&line),
                    Err(RecvError::Lagged(n)) => {
                        sink.push_line(&format!("... {n} lines lost (log reader fell behind)"))
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        });
        let api = server.api_addr().map(|a| ApiClient::new(&format!("http://{a}")));
        Ok(Self {
            rtmp: server.local_addr().to_string(),
            kind: Kind::Embedded(Arc::new(std::sync::Mutex::new(server))),
            settings: settings.clone(),
            image: None,
            log: Some(log),
            api,
        })
    }

    /// MediaMTX (or an image standing in for it) in a container, its log
    /// written to `log_file`.
    pub async fn container(
        image: Option<&str>,
        log_file: &Path,
        settings: &ServerSettings,
    ) -> Result<Self, HarnessError> {
        docker_available().map_err(HarnessError::Server)?;
        match leftovers::remove_orphans() {
            Ok(removed) => {
                for r in removed {
                    eprintln!(
                        "removed container {} left by run {} (its process {} is gone)",
                        r.container, r.run, r.pid
                    );
                }
            }
            Err(e) => tracing::warn!("could not look for leftover containers: {e}"),
        }
        let mut request = MediaMtx::default();
        if let Some(image) = image {
            request = request.with_image(image);
        }
        if settings.refuse_second_publisher {
            request = request.with_env("MTX_PATHDEFAULTS_OVERRIDEPUBLISHER", "no");
        }
        if let Some(timeout) = settings.read_timeout {
            request = request.with_env("MTX_READTIMEOUT", &format!("{}ms", timeout.as_millis()));
        }
        if settings.stock_api_access {
            request = request.without_config();
        }
        let description = format!(
            "{}:{}",
            testcontainers::Image::name(&request),
            testcontainers::Image::tag(&request)
        );
        let log = Arc::new(ServerLog::create(log_file)?);
        let sink = log.clone();
        let run = log_file
            .parent()
            .and_then(|d| d.file_name())
            .map_or_else(|| "?".to_owned(), |n| n.to_string_lossy().into_owned());
        let container = request
            .with_label(leftovers::PID_LABEL, std::process::id().to_string())
            .with_label(leftovers::RUN_LABEL, run)
            .with_startup_timeout(CONTAINER_STARTUP)
            .with_log_consumer(move |frame: &LogFrame| match frame {
                LogFrame::StdOut(b) | LogFrame::StdErr(b) => sink.push_bytes(b),
            })
            .start()
            .await
            .map_err(|e| HarnessError::Server(format!("starting {description}: {e}")))?;
        let host = container
            .get_host()
            .await
            .map_err(|e| HarnessError::Server(e.to_string()))?;
        let mapped = |e: testcontainers::TestcontainersError| HarnessError::Server(e.to_string());
        let rtmp = format!(
            "{host}:{}",
            container.get_host_port_ipv4(RTMP_PORT).await.map_err(mapped)?
        );
        let api = format!(
            "http://{host}:{}",
            container.get_host_port_ipv4(API_PORT).await.map_err(mapped)?
        );
        Ok(Self {
            kind: Kind::Container {
                container: Box::new(container),
                description,
            },
            settings: settings.clone(),
            image: image.map(str::to_owned),
            rtmp,
            log: Some(log),
            api: Some(ApiClient::new(&api)),
        })
    }

    /// `rtmp://host:port`, optionally `,api=http://host:port`.
    pub fn external(spec: &str) -> Result<Self, HarnessError> {
        let (base, api) = match spec.split_once(",api=") {
            Some((base, api)) => (base, Some(api)),
            None => (spec, None),
        };
        let base = base.trim_end_matches('/');
        let Some(authority) = base.strip_prefix("rtmp://").filter(|a| !a.is_empty()) else {
            return Err(HarnessError::Server(format!(
                "external server '{spec}' must be given as rtmp://HOST:PORT[,api=http://HOST:PORT]"
            )));
        };
        if let Some(api) = api.filter(|a| !a.starts_with("http://")) {
            return Err(HarnessError::Server(format!(
                "the API of external server '{spec}' must be given as http://HOST:PORT, not '{api}'"
            )));
        }
        Ok(Self {
            rtmp: authority.to_owned(),
            kind: Kind::External {
                base: base.to_owned(),
            },
            settings: ServerSettings::default(),
            image: None,
            log: None,
            api: api.map(ApiClient::new),
        })
    }

    pub fn describe(&self) -> String {
        let api = self
            .api
            .as_ref()
            .map(|a| format!(", API {}", a.base()))
            .unwrap_or_default();
        match &self.kind {
            Kind::Embedded(_) => format!("embedded RTMP server on {}{api}", self.rtmp),
            Kind::Container { description, .. } => {
                format!("{description} in a container on {}{api}", self.rtmp)
            }
            Kind::External { base } => format!("external server {base}{api}"),
        }
    }

    /// `host:port` of the RTMP listener.
    pub fn authority(&self) -> &str {
        &self.rtmp
    }

    pub fn url(&self, path: &str) -> String {
        format!("rtmp://{}/{path}", self.rtmp)
    }

    pub fn api(&self) -> Option<&ApiClient> {
        self.api.as_ref()
    }

    pub fn log(&self) -> Option<&ServerLog> {
        self.log.as_deref()
    }

    /// Where the embedded server's API listens (`None` for other servers).
    pub fn embedded_api_addr(&self) -> Option<std::net::SocketAddr> {
        match &self.kind {
            Kind::Embedded(server) => server.lock().expect("embedded server").api_addr(),
            _ => None,
        }
    }

    /// Another server like this one (same kind, image and settings), its
    /// log written to `log_file`: for a scenario that restarts its server
    /// and must not take the others' down with it. An external server has
    /// no twin.
    pub async fn twin(&self, log_file: &Path) -> Result<Self, HarnessError> {
        match &self.kind {
            Kind::Embedded(_) => Self::embedded(log_file, &self.settings).await,
            Kind::Container { .. } => Self::container(self.image.as_deref(), log_file, &self.settings).await,
            Kind::External { base } => Err(HarnessError::Server(format!(
                "external server {base} cannot be restarted by the harness"
            ))),
        }
    }

    /// Restarts the server as its supervisor would: every connection
    /// closed, every path forgotten, then listening again. The embedded
    /// server comes back on the same port; a container may come back on
    /// other host ports (Docker maps ephemeral ports anew), so the RTMP
    /// `host:port` it listens on now is returned.
    pub async fn restart(&self) -> Result<String, HarnessError> {
        match &self.kind {
            Kind::Embedded(server) => {
                let server = server.clone();
                tokio::task::spawn_blocking(move || server.lock().expect("embedded server").restart())
                    .await
                    .map_err(|e| HarnessError::Server(format!("restarting the embedded server: {e}")))?
                    .map_err(|e| HarnessError::Server(format!("restarting the embedded server: {e}")))?;
                Ok(self.rtmp.clone())
            }
            Kind::Container {
                container,
                description,
            } => {
                let failed = |e: testcontainers::TestcontainersError| {
                    HarnessError::Server(format!("restarting the {description} container: {e}"))
                };
                let began = Instant::now();
                container.stop().await.map_err(failed)?;
                container.start().await.map_err(failed)?;
                if let Some(log) = &self.log {
                    follow_after_restart(container, log.clone());
                    // Docker's port proxy accepts connections before the
                    // server listens: the server's own listener line says
                    // it is back.
                    let listening = |line: &str| line.contains("[RTMP] started with listener");
                    if log.wait_for(began, listening, CONTAINER_STARTUP).await.is_none() {
                        return Err(HarnessError::Server(format!(
                            "the restarted {description} container did not say it listens within {CONTAINER_STARTUP:?}"
                        )));
                    }
                }
                let host = container.get_host().await.map_err(failed)?;
                let port = container.get_host_port_ipv4(RTMP_PORT).await.map_err(failed)?;
                Ok(format!("{host}:{port}"))
            }
            Kind::External { base } => Err(HarnessError::Server(format!(
                "external server {base} cannot be restarted by the harness"
            ))),
        }
    }

    /// When `path` became available after `since`.
    pub async fn available(&self, path: &str, since: Instant, timeout: Duration) -> Word {
        if let Some(log) = &self.log {
            return heard(log.wait_for(since, log::available_line(path), timeout).await);
        }
        let Some(api) = &self.api else {
            return Word::Unknown;
        };
        let found = poll(timeout, || async {
            let path = api.path(path).await.ok().flatten()?;
            let at = path.available_time.as_deref().and_then(instant_of)?;
            (at >= since).then(|| {
                (
                    at,
                    format!("availableTime {}", path.available_time.unwrap_or_default()),
                )
            })
        })
        .await;
        found.map_or(Word::Silent, |(at, evidence)| Word::Said { at, evidence })
    }

    /// When a reader started reading `path`, after `since`.
    pub async fn reading(&self, path: &str, since: Instant, timeout: Duration) -> Word {
        if let Some(log) = &self.log {
            return heard(log.wait_for(since, log::reading_line(path), timeout).await);
        }
        let Some(api) = &self.api else {
            return Word::Unknown;
        };
        let found = poll(timeout, || async {
            let path = api.path(path).await.ok().flatten()?;
            (!path.readers.is_empty()).then(|| (Instant::now(), format!("reader {}", path.readers[0].id)))
        })
        .await;
        found.map_or(Word::Silent, |(at, evidence)| Word::Said { at, evidence })
    }

    /// The server's log lines about `needles` since `since`, to say why
    /// something the harness waited for did not happen.
    pub fn explain(&self, since: Instant, needles: &[&str]) -> String {
        match &self.log {
            Some(log) => {
                let lines = log.excerpt(since, needles);
                if lines.is_empty() {
                    "the server logged nothing about it".to_owned()
                } else {
                    format!("the server said: {}", lines.join(" | "))
                }
            }
            None => "the server's log cannot be read".to_owned(),
        }
    }

    /// The publisher and readers of `path` as the server reports them
    /// (MediaMTX's `/v3/paths/get` and `/v3/rtmpconns/list`). `None` where
    /// the server has no API.
    pub async fn path_facts(&self, path: &str) -> Option<serde_json::Value> {
        let api = self.api.as_ref()?;
        let found = api.path(path).await;
        let conns = api.rtmp_conns().await;
        Some(match (found, conns) {
            (Ok(found), Ok(conns)) => {
                let conns: Vec<_> = conns.items.into_iter().filter(|c| c.path == path).collect();
                serde_json::json!({ "path": found, "rtmpconns": conns })
            }
            (Err(e), _) | (_, Err(e)) => serde_json::json!({ "api_unavailable": e.to_string() }),
        })
    }

    /// Stops the server; a container is removed (dropping it would too, but
    /// only while a runtime is still there to run the removal).
    pub async fn shutdown(self) {
        match self.kind {
            Kind::Container {
                container,
                description,
            } => {
                if let Err(e) = container.rm().await {
                    tracing::warn!("could not remove the {description} container: {e}");
                }
            }
            Kind::Embedded(server) => {
                // Dropping the last handle stops it (and joins its thread).
                drop(server);
            }
            Kind::External { .. } => {}
        }
    }
}

/// testcontainers follows a container's output from its first start only:
/// after a restart the harness follows it again. Docker replays the whole
/// output, so the lines the log already holds are skipped.
fn follow_after_restart(container: &ContainerAsync<MediaMtx>, log: Arc<ServerLog>) {
    use tokio::io::AsyncBufReadExt;
    let mut lines = container.stdout(true).lines();
    let already = log.lines_received();
    tokio::spawn(async move {
        let mut seen = 0;
        while let Ok(Some(line)) = lines.next_line().await {
            seen += 1;
            if seen > already {
                log.push_line(&line);
            }
        }
    });
}

fn heard(heard: Option<Heard>) -> Word {
    heard.map_or(Word::Silent, |h| Word::Said {
        at: h.at,
        evidence: h.line,
    })
}

/// Asks `probe` every [`API_POLL`] until it answers or `timeout` passes:
/// an API is only known through its answers.
async fn poll<T, F>(timeout: Duration, probe: impl Fn() -> F) -> Option<T>
where
    F: std::future::Future<Output = Option<T>>,
{
    let asking = async {
        let mut ticks = tokio::time::interval(API_POLL);
        loop {
            ticks.tick().await;
            if let Some(found) = probe().await {
                return found;
            }
        }
    };
    tokio::time::timeout(timeout, asking).await.ok()
}

/// The local instant of an RFC 3339 wall-clock time (same machine clock).
fn instant_of(rfc3339: &str) -> Option<Instant> {
    let at = humantime::parse_rfc3339_weak(rfc3339.trim_end_matches('Z')).ok()?;
    let age = SystemTime::now().duration_since(at).unwrap_or_default();
    Instant::now().checked_sub(age)
}

/// Whether a Docker engine answers, with the reason when it does not.
pub fn docker_available() -> Result<(), String> {
    let output = std::process::Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .map_err(|e| format!("no Docker engine: cannot run `docker` ({e})"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "no Docker engine answers: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_servers_are_given_as_urls() {
        let plain = MediaServer::external("rtmp://127.0.0.1:1935/").unwrap();
        assert_eq!(plain.authority(), "127.0.0.1:1935");
        assert!(plain.api().is_none());
        let with_api = MediaServer::external("rtmp://127.0.0.1:1935,api=http://127.0.0.1:9997").unwrap();
        assert_eq!(with_api.api().unwrap().base(), "http://127.0.0.1:9997");
        for bad in ["127.0.0.1:1935", "rtmp://", "rtmp://h:1,api=h:2"] {
            let Err(e) = MediaServer::external(bad) else {
                panic!("{bad} must be refused");
            };
            assert!(e.to_string().contains("must be given as"), "{e}");
        }
    }

    #[test]
    fn wall_clock_times_become_instants() {
        let now = rtmp_server_time(SystemTime::now() - Duration::from_millis(200));
        let at = instant_of(&now).unwrap();
        let age = Instant::now() - at;
        assert!(
            age >= Duration::from_millis(200) && age < Duration::from_secs(5),
            "{age:?}"
        );
    }

    fn rtmp_server_time(at: SystemTime) -> String {
        humantime::format_rfc3339_nanos(at).to_string()
    }
}
