//! MediaMTX (or an image standing in for it) in a container, through
//! testcontainers: started with the run's settings, labelled so that a
//! later run reaps it if this one dies, followed again after a restart.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use testcontainers::core::logs::LogFrame;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, ImageExt};

use super::log::ServerLog;
use super::mediamtx::{API_PORT, MediaMtx, RTMP_PORT};
use super::{HOST_BUSYBOX, Kind, MediaServer, ServerSettings, api::ApiClient, leftovers};
use crate::error::HarnessError;

/// How long a MediaMTX container may take to start (image present locally).
const CONTAINER_STARTUP: Duration = Duration::from_secs(60);
/// Where a container gets it.
const CONTAINER_BUSYBOX: &str = "/busybox";

impl MediaServer {
    /// MediaMTX (or an image standing in for it) in a container, its log
    /// written to `log_file`.
    pub async fn container(
        image: Option<&str>,
        log_file: &Path,
        settings: &ServerSettings,
    ) -> Result<Self, HarnessError> {
        docker_available()?;
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
        if let Some(hooks) = &settings.hooks {
            let (on_ready, on_not_ready) = hooks.with_busybox(CONTAINER_BUSYBOX);
            request = request
                .with_file(Path::new(HOST_BUSYBOX), CONTAINER_BUSYBOX)
                .with_env("MTX_PATHDEFAULTS_RUNONREADY", &on_ready)
                .with_env(
                    "MTX_PATHDEFAULTS_RUNONREADYRESTART",
                    if hooks.run_on_ready_restart { "yes" } else { "no" },
                )
                .with_env("MTX_PATHDEFAULTS_RUNONNOTREADY", &on_not_ready);
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
        let host = ipv4_host(
            container
                .get_host()
                .await
                .map_err(|e| HarnessError::Server(e.to_string()))?,
        );
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
}

/// Restarts a container as its supervisor would; the RTMP `host:port` it
/// listens on now (Docker may map other ports).
pub(super) async fn restart(
    container: &ContainerAsync<MediaMtx>,
    description: &str,
    log: Option<&Arc<ServerLog>>,
) -> Result<String, HarnessError> {
    let failed = |e: testcontainers::TestcontainersError| {
        HarnessError::Server(format!("restarting the {description} container: {e}"))
    };
    let began = Instant::now();
    container.stop().await.map_err(failed)?;
    container.start().await.map_err(failed)?;
    if let Some(log) = log {
        follow_after_restart(container, log.clone());
        // Docker's port proxy accepts connections before the
        // server listens: the server's own listener lines say
        // it is back, the API's after RTMP's.
        for listener in ["[RTMP] started with listener", "[API] started with listener"] {
            let listening = |line: &str| line.contains(listener);
            if log.wait_for(began, listening, CONTAINER_STARTUP).await.is_none() {
                return Err(HarnessError::Server(format!(
                    "the restarted {description} container did not say `{listener}` within {CONTAINER_STARTUP:?}"
                )));
            }
        }
    }
    let host = ipv4_host(container.get_host().await.map_err(failed)?);
    let port = container.get_host_port_ipv4(RTMP_PORT).await.map_err(failed)?;
    Ok(format!("{host}:{port}"))
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

/// Whether a Docker engine answers, with the reason when it does not.
pub(crate) fn docker_available() -> Result<(), HarnessError> {
    let output = std::process::Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .map_err(|e| HarnessError::NoDocker(format!("cannot run `docker` ({e})")))?;
    if output.status.success() {
        return Ok(());
    }
    Err(HarnessError::NoDocker(format!(
        "none answers: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    )))
}

/// The ports are mapped on IPv4 only: `localhost` may resolve to `::1`
/// first, where nothing listens, so it is spelled as the IPv4 loopback.
fn ipv4_host(host: impl std::fmt::Display) -> String {
    match host.to_string().as_str() {
        "localhost" => "127.0.0.1".to_owned(),
        other => other.to_owned(),
    }
}
