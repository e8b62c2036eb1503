//! The media server a run uses: the embedded RTMP server (default, no Docker
//! needed), MediaMTX in a container (testcontainers), or an external one
//! (e.g. MediaMTX started with docker-compose.e2e.yml).

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rtmp_server::{RtmpServer, ServerConfig};
use testcontainers::core::logs::LogFrame;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, ImageExt};

use crate::error::HarnessError;
use crate::mediamtx::{API_PORT, MediaMtx, RTMP_PORT};

/// How long a MediaMTX container may take to start (image present locally).
const CONTAINER_STARTUP: Duration = Duration::from_secs(60);

pub enum MediaServer {
    Embedded(RtmpServer),
    Container(Box<ContainerServer>),
    /// Reached at `rtmp://host:port`; nothing about it can be observed but
    /// what RTMP clients see.
    External {
        base: String,
    },
}

impl MediaServer {
    pub fn embedded() -> Result<Self, HarnessError> {
        RtmpServer::start(ServerConfig::default())
            .map(Self::Embedded)
            .map_err(|e| HarnessError::Server(e.to_string()))
    }

    /// `external=rtmp://host:port` style base URL.
    pub fn external(base: &str) -> Result<Self, HarnessError> {
        let base = base.trim_end_matches('/');
        if !base.starts_with("rtmp://") {
            return Err(HarnessError::Server(format!(
                "external server '{base}' must be given as rtmp://HOST:PORT"
            )));
        }
        Ok(Self::External {
            base: base.to_owned(),
        })
    }

    /// MediaMTX (or an image standing in for it) in a container, its log
    /// written to `log_file`.
    pub async fn container(image: Option<&str>, log_file: &Path) -> Result<Self, HarnessError> {
        docker_available().map_err(HarnessError::Server)?;
        let mut request = MediaMtx::default();
        if let Some(image) = image {
            request = request.with_image(image);
        }
        let description = format!(
            "{}:{}",
            testcontainers::Image::name(&request),
            testcontainers::Image::tag(&request)
        );
        let publishes = Arc::new(PublishLog::create(log_file)?);
        let consumer = publishes.clone();
        let container = request
            .with_startup_timeout(CONTAINER_STARTUP)
            .with_log_consumer(move |frame: &LogFrame| consumer.accept(frame))
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
            "{host}:{}",
            container.get_host_port_ipv4(API_PORT).await.map_err(mapped)?
        );
        Ok(Self::Container(Box::new(ContainerServer {
            container,
            description,
            rtmp,
            api,
            publishes,
        })))
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Embedded(server) => format!("embedded RTMP server on {}", server.local_addr()),
            Self::Container(c) => format!("{} in a container on {}", c.description, c.rtmp),
            Self::External { base } => format!("external server {base}"),
        }
    }

    /// `host:port` of the RTMP listener.
    pub fn authority(&self) -> String {
        match self {
            Self::Embedded(server) => server.local_addr().to_string(),
            Self::Container(c) => c.rtmp.clone(),
            Self::External { base } => base.trim_start_matches("rtmp://").to_owned(),
        }
    }

    /// The publisher and readers of `path` as the server reports them:
    /// MediaMTX's /v3/paths/get and /v3/rtmpconns/list, or the same facts
    /// from the embedded server. `None` where the server cannot be asked.
    pub async fn path_facts(&self, path: &str) -> Option<serde_json::Value> {
        match self {
            Self::Embedded(server) => Some(serde_json::json!({
                "path": server.paths().into_iter().find(|p| p.name == path),
                "connections": server.connections().into_iter().filter(|c| c.path == path).collect::<Vec<_>>(),
            })),
            Self::Container(c) => {
                let found = crate::http::get_json(&c.api, &format!("/v3/paths/get/{path}")).await;
                let conns = crate::http::get_json(&c.api, "/v3/rtmpconns/list").await;
                Some(match (found, conns) {
                    (Ok(found), Ok(mut conns)) => {
                        if let Some(items) = conns.get_mut("items").and_then(|i| i.as_array_mut()) {
                            items.retain(|c| c["path"] == path);
                        }
                        serde_json::json!({ "path": found, "rtmpconns": conns })
                    }
                    (Err(e), _) | (_, Err(e)) => serde_json::json!({ "api_unavailable": e }),
                })
            }
            Self::External { .. } => None,
        }
    }

    /// Stops the server; a container is removed (dropping it would too, but
    /// only while a runtime is still there to run the removal).
    pub async fn shutdown(self) {
        match self {
            Self::Container(c) => {
                if let Err(e) = c.container.rm().await {
                    tracing::warn!("could not remove the {} container: {e}", c.description);
                }
            }
            Self::Embedded(server) => server.shutdown(),
            Self::External { .. } => {}
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("rtmp://{}/{path}", self.authority())
    }

    /// Waits until someone publishes on `path` (a publish that began at or
    /// after `since`, for servers known only through their log). Returns
    /// `false` for servers that cannot tell; timings then start at publish.
    pub async fn wait_for_publisher(
        &self,
        path: &str,
        since: Instant,
        timeout: Duration,
    ) -> Result<bool, HarnessError> {
        match self {
            Self::Embedded(server) => server
                .wait_for_publisher(path, timeout)
                .await
                .map(|_| true)
                .map_err(|e| HarnessError::Server(e.to_string())),
            Self::Container(c) => c.publishes.wait(path, since, timeout).await,
            Self::External { .. } => Ok(false),
        }
    }

    /// Writes the server's log lines to `file` until the server stops.
    pub fn record_log(&self, file: &Path) -> Result<(), HarnessError> {
        let Self::Embedded(server) = self else {
            return Ok(());
        };
        let mut out = std::fs::File::create(file).map_err(|source| HarnessError::Io {
            path: file.to_owned(),
            source,
        })?;
        let mut lines = server.subscribe_log();
        tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                match lines.recv().await {
                    Ok(line) => {
                        let _ = writeln!(out, "{line}");
                    }
                    Err(RecvError::Lagged(n)) => {
                        let _ = writeln!(out, "... {n} lines lost (log reader fell behind)");
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        });
        Ok(())
    }
}

pub struct ContainerServer {
    container: ContainerAsync<MediaMtx>,
    description: String,
    rtmp: String,
    api: String,
    publishes: Arc<PublishLog>,
}

/// The container's log: written to a file, and watched for MediaMTX's
/// "is publishing to path '...'" lines, which is how we learn that a
/// publisher is on a path without polling.
struct PublishLog {
    file: Mutex<std::fs::File>,
    seen: Mutex<HashMap<String, Instant>>,
    changed: tokio::sync::Notify,
}

const PUBLISHING: &str = "is publishing to path '";

impl PublishLog {
    fn create(path: &Path) -> Result<Self, HarnessError> {
        let file = std::fs::File::create(path).map_err(|source| HarnessError::Io {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self {
            file: Mutex::new(file),
            seen: Mutex::new(HashMap::new()),
            changed: tokio::sync::Notify::new(),
        })
    }

    fn accept(&self, frame: &LogFrame) {
        let bytes = match frame {
            LogFrame::StdOut(b) | LogFrame::StdErr(b) => b,
        };
        let _ = self.file.lock().expect("log lock").write_all(bytes);
        for line in String::from_utf8_lossy(bytes).lines() {
            if let Some(path) = publishing_path(line) {
                self.seen
                    .lock()
                    .expect("log lock")
                    .insert(path.to_owned(), Instant::now());
                self.changed.notify_waiters();
            }
        }
    }

    async fn wait(&self, path: &str, since: Instant, timeout: Duration) -> Result<bool, HarnessError> {
        let waiting = async {
            loop {
                let changed = self.changed.notified();
                if self
                    .seen
                    .lock()
                    .expect("log lock")
                    .get(path)
                    .is_some_and(|at| *at >= since)
                {
                    return;
                }
                changed.await;
            }
        };
        tokio::time::timeout(timeout, waiting)
            .await
            .map(|_| true)
            .map_err(|_| HarnessError::Server(format!("nobody published on '{path}' within {timeout:?}")))
    }
}

/// The path of a MediaMTX "is publishing to path 'P'" log line.
fn publishing_path(line: &str) -> Option<&str> {
    let rest = &line[line.find(PUBLISHING)? + PUBLISHING.len()..];
    rest.split('\'').next()
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
    fn finds_the_path_in_mediamtx_publish_lines() {
        let line = "2026/11/26 12:00:00 INF [RTMP] [conn 172.17.0.1:5000] is publishing to path 'live/a/in', 2 tracks (H264, MPEG-4 Audio)";
        assert_eq!(publishing_path(line), Some("live/a/in"));
        assert_eq!(
            publishing_path("INF [RTMP] [conn x] is reading from path 'live/a/in'"),
            None
        );
    }
}
