//! The media server's log, as the harness hears it: every line is written
//! to the run's `server.log` and kept (bounded) with the instant it
//! arrived, and waiters are woken on each new line. This is how the harness
//! learns, without polling, that a path became available or that the
//! ingest reads it, for the embedded server (its log channel) and a
//! container alike (its stdout), since both speak MediaMTX's lines.

use std::collections::VecDeque;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::error::HarnessError;

/// Lines kept for waiters and excerpts; older ones are only in the file.
const KEPT_LINES: usize = 50_000;

pub struct ServerLog {
    file: Mutex<std::fs::File>,
    lines: Mutex<VecDeque<(Instant, String)>>,
    /// Bytes of a line whose end has not arrived yet (container frames).
    partial: Mutex<String>,
    changed: Notify,
    /// Every line pushed since creation (the kept ones are fewer).
    received: std::sync::atomic::AtomicUsize,
}

/// A line the harness waited for, and when it arrived.
#[derive(Debug, Clone)]
pub struct Heard {
    pub at: Instant,
    pub line: String,
}

impl ServerLog {
    pub fn create(path: &Path) -> Result<Self, HarnessError> {
        let file = std::fs::File::create(path).map_err(|source| HarnessError::Io {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self {
            file: Mutex::new(file),
            lines: Mutex::new(VecDeque::new()),
            partial: Mutex::new(String::new()),
            changed: Notify::new(),
            received: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// Takes one whole line.
    pub fn push_line(&self, line: &str) {
        self.received.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _ = writeln!(self.file.lock().expect("log lock"), "{line}");
        let mut lines = self.lines.lock().expect("log lock");
        if lines.len() == KEPT_LINES {
            lines.pop_front();
        }
        lines.push_back((Instant::now(), line.to_owned()));
        drop(lines);
        self.changed.notify_waiters();
    }

    /// How many lines were pushed since the log was created.
    pub fn lines_received(&self) -> usize {
        self.received.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Takes a chunk of output that may hold several lines or part of one.
    pub fn push_bytes(&self, bytes: &[u8]) {
        let mut partial = self.partial.lock().expect("log lock");
        partial.push_str(&String::from_utf8_lossy(bytes));
        while let Some(end) = partial.find('\n') {
            let line: String = partial.drain(..=end).collect();
            self.push_line(line.trim_end());
        }
    }

    /// The first line heard at or after `since` that `matches`, waiting for
    /// it until `timeout`; `None` when it did not come.
    pub async fn wait_for(
        &self,
        since: Instant,
        matches: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Option<Heard> {
        let wait = async {
            loop {
                // Registered before looking, so a line pushed in between wakes us.
                let changed = self.changed.notified();
                if let Some(heard) = self.find(since, &matches) {
                    return heard;
                }
                changed.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.ok()
    }

    fn find(&self, since: Instant, matches: &impl Fn(&str) -> bool) -> Option<Heard> {
        self.lines
            .lock()
            .expect("log lock")
            .iter()
            .find(|(at, line)| *at >= since && matches(line))
            .map(|(at, line)| Heard {
                at: *at,
                line: line.clone(),
            })
    }

    /// Lines heard since `since` that mention one of `needles`: the server's
    /// side of what happened, for an error message.
    pub fn excerpt(&self, since: Instant, needles: &[&str]) -> Vec<String> {
        self.lines
            .lock()
            .expect("log lock")
            .iter()
            .filter(|(at, line)| *at >= since && needles.iter().any(|n| line.contains(n)))
            .map(|(_, line)| line.clone())
            .collect()
    }
}

/// MediaMTX's line when `path` becomes readable.
pub(crate) fn available_line(path: &str) -> impl Fn(&str) -> bool + '_ {
    move |line| line.contains(&format!("[path {path}] stream is available"))
}

/// MediaMTX's line when a reader starts reading `path`.
pub(crate) fn reading_line(path: &str) -> impl Fn(&str) -> bool + '_ {
    move |line| line.contains(&format!("is reading from path '{path}'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiters_hear_lines_split_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let log = std::sync::Arc::new(ServerLog::create(&dir.path().join("server.log")).unwrap());
        let since = Instant::now();
        let waiter = {
            let log = log.clone();
            tokio::spawn(async move {
                log.wait_for(since, available_line("live/a/in"), Duration::from_secs(10))
                    .await
            })
        };
        log.push_bytes(b"INF [path live/b/in] stream is available and online, 1 track (H264)\nINF [path live/a/in] stream is ");
        log.push_bytes(b"available and online, 2 tracks (H264, MPEG-4 Audio)\n");
        let heard = waiter.await.unwrap().expect("the line arrives");
        assert!(heard.line.contains("live/a/in"), "{}", heard.line);
        let written = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
        assert_eq!(written.lines().count(), 2);
        assert_eq!(log.excerpt(since, &["live/b/in"]).len(), 1);
    }

    #[tokio::test]
    async fn lines_before_since_do_not_count() {
        let dir = tempfile::tempdir().unwrap();
        let log = ServerLog::create(&dir.path().join("server.log")).unwrap();
        log.push_line("INF [RTMP] [conn 1.2.3.4:5] is reading from path 'p', 2 tracks (H264, MPEG-4 Audio)");
        let later = Instant::now() + Duration::from_millis(1);
        assert!(
            log.wait_for(later, reading_line("p"), Duration::from_millis(20))
                .await
                .is_none()
        );
    }
}
