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

pub(crate) mod api;
mod container;
mod embedded;
pub mod leftovers;
pub(crate) mod log;
pub(crate) mod mediamtx;
pub(crate) mod nginx_conf;
pub(crate) mod nginx_rtmp;
mod word;

pub(crate) use container::docker_available;
pub(crate) use word::Word;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rtmp_server::RtmpServer;
use testcontainers::ContainerAsync;

use crate::error::HarnessError;
use api::ApiClient;
use log::ServerLog;
use mediamtx::MediaMtx;

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
    /// Path hooks, given by their deprecated names (`runOnReady`, ...) as a
    /// deployment written for older MediaMTX does.
    pub hooks: Option<HookCommands>,
}

/// Hook command lines; `{busybox}` stands for a static busybox, which the
/// harness puts where the server can run it (in a container: `/busybox`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookCommands {
    pub run_on_ready: String,
    pub run_on_ready_restart: bool,
    pub run_on_not_ready: String,
}

/// The static busybox `cargo xtask deps` installs (Debian's busybox-static).
pub(crate) const HOST_BUSYBOX: &str = "/bin/busybox";
impl HookCommands {
    fn with_busybox(&self, busybox: &str) -> (String, String) {
        (
            self.run_on_ready.replace("{busybox}", busybox),
            self.run_on_not_ready.replace("{busybox}", busybox),
        )
    }
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
    Nginx(nginx_rtmp::NginxRtmp),
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

impl MediaServer {
    /// nginx-rtmp started here, serving `stream_ids` (see [`nginx_rtmp`]).
    pub async fn nginx(dir: &Path, stream_ids: &[String]) -> Result<Self, HarnessError> {
        let nginx = nginx_rtmp::NginxRtmp::start(dir, stream_ids).await?;
        Ok(Self {
            rtmp: nginx.authority(),
            kind: Kind::Nginx(nginx),
            settings: ServerSettings::default(),
            image: None,
            log: None,
            api: None,
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
            Kind::Nginx(_) => format!("nginx-rtmp on {}", self.rtmp),
        }
    }

    /// `host:port` of the RTMP listener.
    pub fn authority(&self) -> &str {
        &self.rtmp
    }

    pub fn url(&self, path: &str) -> String {
        format!("rtmp://{}/{path}", self.rtmp)
    }

    /// Whether the server read its settings from a configuration (a
    /// container does, from `MTX_*`), and so says what it thinks of them.
    pub fn reads_settings(&self) -> bool {
        matches!(self.kind, Kind::Container { .. })
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
            Kind::Nginx(_) => Err(HarnessError::Server(
                "nginx-rtmp is not restarted by the harness".to_owned(),
            )),
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
            } => container::restart(container, description, self.log.as_ref()).await,
            Kind::External { base } => Err(HarnessError::Server(format!(
                "external server {base} cannot be restarted by the harness"
            ))),
            Kind::Nginx(_) => Err(HarnessError::Server(
                "nginx-rtmp is not restarted by the harness".to_owned(),
            )),
        }
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
            Kind::Nginx(nginx) => nginx.stop().await,
        }
    }
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
}
