//! What a check works with: the server under test, the material, fresh
//! path names, and waits on the server's word (a log line, an API answer,
//! an RTMP message), each with a deadline and an error that says what did
//! not come.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use media_tools::flv::FlvTag;
use media_tools::{Received, RtmpPlayer, RtmpPublisher};

use super::material::{self, Material};
use super::{CheckFailure, Verdict};
use crate::world::server::MediaServer;
use crate::world::server::api::ApiClient;
use crate::world::server::log::ServerLog;

/// Longest wait for anything the server should do.
pub(super) const WAIT: Duration = Duration::from_secs(20);

pub struct Probe {
    server: MediaServer,
    pub material: Arc<Material>,
    label: String,
    next: AtomicU32,
    started: Instant,
}

/// What a player read until it stopped: the messages, and whether the
/// server closed the connection.
#[derive(Debug, Default)]
pub struct Read {
    pub messages: Vec<Received>,
    pub closed: bool,
}

impl Read {
    pub fn tags(&self) -> impl Iterator<Item = &FlvTag> {
        self.messages.iter().filter_map(|m| match m {
            Received::Tag(t) => Some(t),
            _ => None,
        })
    }

    pub fn frames(&self, kind: u8) -> Vec<&FlvTag> {
        self.tags().filter(|t| t.kind == kind && t.is_frame()).collect()
    }

    /// Whether the server sent the user control event "stream EOF".
    pub fn stream_eof(&self) -> bool {
        self.messages
            .iter()
            .any(|m| matches!(m, Received::Control(event) if event == "stream EOF"))
    }

    pub fn statuses(&self) -> Vec<&str> {
        self.messages
            .iter()
            .filter_map(|m| match m {
                Received::Status { code, .. } => Some(code.as_str()),
                _ => None,
            })
            .collect()
    }
}

impl Probe {
    /// `started`: just before the server was started.
    pub fn new(server: MediaServer, material: Arc<Material>, check: &str, started: Instant) -> Self {
        let label = check.rsplit("::").next().unwrap_or(check).replace('_', "-");
        Self {
            server,
            material,
            label,
            next: AtomicU32::new(0),
            started,
        }
    }

    /// Just before the server was started: every log line is after it.
    pub fn started(&self) -> Instant {
        self.started
    }

    pub fn server(&self) -> &MediaServer {
        &self.server
    }

    pub fn into_server(self) -> MediaServer {
        self.server
    }

    /// A path nobody else uses: `live/<check>-<pid>-<n>/in`.
    pub fn path(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let label: String = self.label.chars().take(24).collect();
        format!("live/{label}-{}-{n}/in", std::process::id())
    }

    pub fn log(&self) -> Result<&ServerLog, CheckFailure> {
        self.server
            .log()
            .ok_or_else(|| "this server's log cannot be read".into())
    }

    pub fn api(&self) -> Result<&ApiClient, CheckFailure> {
        self.server
            .api()
            .ok_or_else(|| "this server has no Control API".into())
    }

    /// The first log line after `since` that `matches`; an error naming
    /// `what` when it does not come.
    pub async fn line(
        &self,
        since: Instant,
        what: &str,
        matches: impl Fn(&str) -> bool,
    ) -> Result<String, CheckFailure> {
        let log = self.log()?;
        match log.wait_for(since, matches, WAIT).await {
            Some(heard) => Ok(heard.line),
            None => Err(format!("the server never logged {what} (waited {WAIT:?})").into()),
        }
    }

    pub async fn publish(&self, path: &str) -> Result<RtmpPublisher, CheckFailure> {
        RtmpPublisher::publish(self.server.authority(), path)
            .await
            .map_err(|e| CheckFailure::from(format!("publishing {path}: {e}")))
    }

    pub async fn play(&self, path: &str) -> Result<RtmpPlayer, CheckFailure> {
        RtmpPlayer::play(self.server.authority(), path)
            .await
            .map_err(|e| CheckFailure::from(format!("playing {path}: {e}")))
    }

    /// Publishes `tags`' configuration and frames before `until_ms` as fast
    /// as the server takes them, and returns once the path is available.
    pub async fn publish_available(
        &self,
        path: &str,
        tags: &[FlvTag],
        until_ms: u32,
    ) -> Result<RtmpPublisher, CheckFailure> {
        let since = Instant::now();
        let mut publisher = self.publish(path).await?;
        send(&mut publisher, &material::config(tags)).await?;
        send(&mut publisher, &material::frames(tags, 0, until_ms)).await?;
        self.available(path, since).await?;
        Ok(publisher)
    }

    /// Waits for the server's word that `path` is available; a server with
    /// neither log nor API is asked by playing the path until it accepts.
    pub async fn available(&self, path: &str, since: Instant) -> Verdict {
        use crate::world::server::Word;
        match self.server.available(path, since, WAIT).await {
            Word::Said { .. } => Ok(()),
            Word::Silent => Err(format!(
                "{path} never became available (waited {WAIT:?}); {}",
                self.server.explain(since, &[path])
            )
            .into()),
            Word::Unknown => self.accepted_play(path).await,
        }
    }

    async fn accepted_play(&self, path: &str) -> Verdict {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            let mut player = self.play(path).await?;
            // Each attempt waits on the server's answer, never on a clock.
            if let Ok(Some(Received::Status { code, .. })) = player.next_within(WAIT).await
                && code == "NetStream.Play.Start"
            {
                return Ok(());
            }
        }
        Err(format!("{path} was never accepted for playing (tried for {WAIT:?})").into())
    }

    /// Publishes `tags` up to `join_ms`, lets a reader join once the server
    /// has taken them, then sends the rest while the reader reads until
    /// `done`. The publisher stays connected.
    pub async fn join_late(
        &self,
        path: &str,
        tags: &[FlvTag],
        join_ms: u32,
        done: impl FnMut(&Read) -> bool,
    ) -> Result<(RtmpPublisher, RtmpPlayer, Read), CheckFailure> {
        let mut publisher = self.publish_available(path, tags, join_ms).await?;
        let before = [material::config(tags), material::frames(tags, 0, join_ms)].concat();
        self.taken(path, payload(&before)).await?;
        let since = Instant::now();
        let mut player = self.play(path).await?;
        let mut read = self.reading(path, since, &mut player).await?;
        let rest = material::frames(tags, join_ms, u32::MAX);
        let (sent, got) = tokio::join!(
            send(&mut publisher, &rest),
            read_into(&mut player, &mut read, done)
        );
        got?;
        sent?;
        Ok((publisher, player, read))
    }

    /// Waits until the server has read at least `payload` bytes from the
    /// publisher of `path` (its connection's `inboundBytes`, which counts
    /// chunk headers too, so a few frames may still be in flight). Without
    /// an API there is no telling; callers allow for frames in flight.
    pub async fn taken(&self, path: &str, payload: usize) -> Verdict {
        let Ok(api) = self.api() else { return Ok(()) };
        let deadline = Instant::now() + WAIT;
        let mut ticks = tokio::time::interval(Duration::from_millis(20));
        while Instant::now() < deadline {
            ticks.tick().await;
            let conns = api
                .rtmp_conns()
                .await
                .map_err(|e| CheckFailure::from(e.to_string()))?;
            let inbound = conns
                .items
                .iter()
                // During the analysis MediaMTX shows the publisher as idle, with
                // no path yet.
                .filter(|c| c.state != rtmp_server::ConnState::Read && (c.path.is_empty() || c.path == path))
                .map(|c| c.inbound_bytes)
                .max()
                .unwrap_or(0);
            if inbound >= payload as u64 {
                return Ok(());
            }
        }
        Err(format!("the server did not read the {payload} bytes sent within {WAIT:?}").into())
    }

    /// Waits for the server's word that a reader reads `path`; where the
    /// server cannot say, for the reader's first tag.
    pub async fn reading(
        &self,
        path: &str,
        since: Instant,
        player: &mut RtmpPlayer,
    ) -> Result<Read, CheckFailure> {
        use crate::world::server::Word;
        match self.server.reading(path, since, WAIT).await {
            Word::Said { .. } => Ok(Read::default()),
            Word::Silent => Err(format!(
                "the server never said a reader reads {path}; {}",
                self.server.explain(since, &[path])
            )
            .into()),
            Word::Unknown => read_until(player, |r| r.tags().next().is_some()).await,
        }
    }
}

/// The bytes of media in `tags`.
pub(super) fn payload(tags: &[FlvTag]) -> usize {
    tags.iter().map(|t| t.body.len()).sum()
}

/// Sends tags, naming the failure.
pub(super) async fn send(publisher: &mut RtmpPublisher, tags: &[FlvTag]) -> Verdict {
    publisher
        .send_all(tags)
        .await
        .map_err(|e| CheckFailure::from(format!("sending media: {e}")))
}

/// Reads until `done` says so or the server closes the connection, for at
/// most [`WAIT`].
pub(super) async fn read_until(
    player: &mut RtmpPlayer,
    done: impl FnMut(&Read) -> bool,
) -> Result<Read, CheckFailure> {
    let mut read = Read::default();
    read_into(player, &mut read, done).await?;
    Ok(read)
}

/// [`read_until`], adding to what was read before.
pub(super) async fn read_into(
    player: &mut RtmpPlayer,
    read: &mut Read,
    mut done: impl FnMut(&Read) -> bool,
) -> Verdict {
    let deadline = Instant::now() + WAIT;
    while !done(read) {
        let left = deadline.saturating_duration_since(Instant::now());
        match player.next_within(left).await {
            Ok(Some(message)) => read.messages.push(message),
            Ok(None) => {
                read.closed = true;
                return Ok(());
            }
            Err(e) => return Err(format!("{e} (after {} messages)", read.messages.len()).into()),
        }
    }
    Ok(())
}

/// Reads what reached the player until the server closed the connection
/// or reset it: a reset is how a close ends a reader that still sends
/// (its acknowledgements hit a socket already closed), and it discards
/// whatever the player had not read yet, so the read holds at most what
/// arrived.
pub(super) async fn read_what_arrived(player: &mut RtmpPlayer, read: &mut Read) -> Verdict {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match player.next_within(left).await {
            Ok(Some(message)) => read.messages.push(message),
            Ok(None) => break,
            Err(e) if e.is_closed_by_server() => break,
            Err(e) => return Err(format!("{e} (after {} messages)", read.messages.len()).into()),
        }
    }
    read.closed = true;
    Ok(())
}

/// Reads until the server closes the connection.
pub(super) async fn read_to_close(player: &mut RtmpPlayer) -> Result<Read, CheckFailure> {
    read_until(player, |_| false).await
}

/// `Err(message)` unless `condition`.
pub(super) fn ensure(condition: bool, message: impl FnOnce() -> String) -> Verdict {
    if condition {
        Ok(())
    } else {
        Err(CheckFailure::Differs(message()))
    }
}
