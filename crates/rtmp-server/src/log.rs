//! Log lines in MediaMTX's wording (`[RTMP] [conn 1.2.3.4:5] opened`), so
//! the same wait conditions and log checks work against both servers.
//! Every line goes to `tracing` and to a broadcast channel for harnesses.

use tokio::sync::broadcast;

/// Tracing target of every line this crate logs.
pub const LOG_TARGET: &str = "rtmp_server";

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

    /// `message` has no level; subscribers get `INF <message>`, tracing
    /// gets the message at INFO (the binary adds date and level itself).
    pub fn info(&self, message: String) {
        tracing::info!(target: LOG_TARGET, "{message}");
        // No subscriber is fine: nobody is listening.
        let _ = self.lines.send(format!("INF {message}"));
    }

    pub fn conn(&self, remote: &std::net::SocketAddr, what: impl std::fmt::Display) {
        self.info(format!("[RTMP] [conn {remote}] {what}"));
    }

    pub fn path(&self, path: &str, what: impl std::fmt::Display) {
        self.info(format!("[path {path}] {what}"));
    }
}

/// `2 tracks (H264, MPEG-4 Audio)`, MediaMTX's track summary.
pub(crate) fn tracks_summary(tracks: &[String]) -> String {
    let plural = if tracks.len() == 1 { "track" } else { "tracks" };
    format!("{} {plural} ({})", tracks.len(), tracks.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarises_tracks() {
        let tracks = vec!["H264".to_owned(), "MPEG-4 Audio".to_owned()];
        assert_eq!(tracks_summary(&tracks), "2 tracks (H264, MPEG-4 Audio)");
        assert_eq!(tracks_summary(&tracks[..1]), "1 track (H264)");
    }

    #[tokio::test]
    async fn subscribers_get_prefixed_lines() {
        let sink = LogSink::new(8);
        let mut rx = sink.subscribe();
        sink.conn(&"127.0.0.1:5000".parse().unwrap(), "opened");
        assert_eq!(
            rx.recv().await.unwrap(),
            "INF [RTMP] [conn 127.0.0.1:5000] opened"
        );
    }
}
