//! The media server a run uses: the embedded RTMP server (default, no Docker
//! needed) or an external one (e.g. MediaMTX started with
//! docker-compose.e2e.yml).

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use rtmp_server::{RtmpServer, ServerConfig};

use crate::error::HarnessError;

pub enum MediaServer {
    Embedded(RtmpServer),
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

    pub fn describe(&self) -> String {
        match self {
            Self::Embedded(server) => format!("embedded RTMP server on {}", server.local_addr()),
            Self::External { base } => format!("external server {base}"),
        }
    }

    /// `host:port` of the RTMP listener.
    pub fn authority(&self) -> String {
        match self {
            Self::Embedded(server) => server.local_addr().to_string(),
            Self::External { base } => base.trim_start_matches("rtmp://").to_owned(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("rtmp://{}/{path}", self.authority())
    }

    /// Waits until someone publishes on `path`. Only the embedded server can
    /// tell; for others this returns at once and timings start at publish.
    pub async fn wait_for_publisher(&self, path: &str, timeout: Duration) -> Result<bool, HarnessError> {
        match self {
            Self::Embedded(server) => server
                .wait_for_publisher(path, timeout)
                .await
                .map(|_| true)
                .map_err(|e| HarnessError::Server(e.to_string())),
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
