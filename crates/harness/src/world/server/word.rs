//! What a server says about what the harness waits for (a path available,
//! a reader reading): its log line when its log can be read, else its
//! API's answer, else nothing ([`Word::Unknown`]).

use std::time::{Duration, Instant, SystemTime};

use super::MediaServer;
use super::log::{self, Heard};

/// Polling period for servers known only through their API.
const API_POLL: Duration = Duration::from_millis(25);

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

#[cfg(test)]
mod tests {
    use super::*;

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
