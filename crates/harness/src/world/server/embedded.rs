//! The embedded server (`rtmp-server`), in this process: MediaMTX's
//! behaviour and API on free loopback ports, its log lines copied to the
//! run's log as a container's are.

use std::path::Path;
use std::sync::Arc;

use rtmp_server::{RtmpServer, ServerConfig};

use super::log::ServerLog;
use super::{HOST_BUSYBOX, Kind, MediaServer, ServerSettings, api::ApiClient};
use crate::error::HarnessError;

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
        if let Some(hooks) = &settings.hooks {
            let (on_ready, on_not_ready) = hooks.with_busybox(HOST_BUSYBOX);
            config.hooks = rtmp_server::PathHooks {
                run_on_available: on_ready,
                run_on_available_restart: hooks.run_on_ready_restart,
                run_on_unavailable: on_not_ready,
                ..rtmp_server::PathHooks::default()
            };
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
}
