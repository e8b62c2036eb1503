//! Log lines in MediaMTX's wording (`INF [RTMP] [conn 1.2.3.4:5] opened`),
//! so the same wait conditions and log checks work against both servers.
//! Every line goes to `tracing` and to a broadcast channel for harnesses.

use tokio::sync::broadcast;

/// Tracing target of every line this crate logs.
pub const LOG_TARGET: &str = "rtmp_server";
/// Tracing target of what a hook's command prints: MediaMTX's children
/// write to its stdout as they please, without a date or level.
pub const HOOK_OUTPUT_TARGET: &str = "rtmp_server::hook_output";

#[derive(Debug, Clone, Copy)]
pub(crate) enum Level {
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone)]
pub(crate) struct LogSink {
    lines: broadcast::Sender<String>,
}

impl LogSink {
    pub fn new(capacity: usize) -> Self {
        Self {
            lines: broadcast::channel(capacity.max(1)).0,
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.lines.subscribe()
    }

    /// Subscribers get `INF <message>` (or `WAR`, `ERR`); tracing gets the
    /// message at the same level (the binary adds date and level itself).
    pub fn line(&self, level: Level, message: String) {
        let tag = match level {
            Level::Info => {
                tracing::info!(target: LOG_TARGET, "{message}");
                "INF"
            }
            Level::Warn => {
                tracing::warn!(target: LOG_TARGET, "{message}");
                "WAR"
            }
            Level::Error => {
                tracing::error!(target: LOG_TARGET, "{message}");
                "ERR"
            }
        };
        // No subscriber is fine: nobody is listening.
        let _ = self.lines.send(format!("{tag} {message}"));
    }

    /// A line a hook's command printed, passed on as it is.
    pub fn raw(&self, line: String) {
        tracing::info!(target: HOOK_OUTPUT_TARGET, "{line}");
        let _ = self.lines.send(line);
    }

    pub fn info(&self, message: String) {
        self.line(Level::Info, message);
    }

    pub fn conn(&self, remote: &std::net::SocketAddr, what: impl std::fmt::Display) {
        self.info(format!("[RTMP] [conn {remote}] {what}"));
    }

    pub fn conn_warning(&self, remote: &std::net::SocketAddr, what: impl std::fmt::Display) {
        self.line(Level::Warn, format!("[RTMP] [conn {remote}] {what}"));
    }

    pub fn path(&self, path: &str, what: impl std::fmt::Display) {
        self.info(format!("[path {path}] {what}"));
    }

    pub fn api_error(&self, what: impl std::fmt::Display) {
        self.line(Level::Error, format!("[API] {what}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_get_prefixed_lines() {
        let sink = LogSink::new(8);
        let mut rx = sink.subscribe();
        sink.conn(&"127.0.0.1:5000".parse().unwrap(), "opened");
        sink.api_error("path not found");
        sink.conn_warning(
            &"127.0.0.1:5000".parse().unwrap(),
            "reader is too slow, discarding 3 frames",
        );
        assert_eq!(
            rx.recv().await.unwrap(),
            "INF [RTMP] [conn 127.0.0.1:5000] opened"
        );
        assert_eq!(rx.recv().await.unwrap(), "ERR [API] path not found");
        assert_eq!(
            rx.recv().await.unwrap(),
            "WAR [RTMP] [conn 127.0.0.1:5000] reader is too slow, discarding 3 frames"
        );
    }
}
