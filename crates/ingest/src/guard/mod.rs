//! The source guard: a relay on loopback between the GStreamer RTMP source
//! and the server, one per connection. The source connects to the guard;
//! the guard connects to the server and passes everything through,
//! following the server's chunk stream ([`rtmp_chunks`]) as it goes. It exists
//! because the sources cannot be trusted with what a server sends or does:
//!
//! - **A hostile or broken server** could make librtmp allocate gigabytes
//!   (random bytes read as chunk headers announce 16-MiB messages on
//!   thousands of chunk streams) and crash it. The guard refuses any chunk
//!   size, message size, or amount of unfinished messages above its
//!   [`Limits`] before those bytes reach the source, and says which limit.
//! - **A silent server** leaves librtmp waiting; the guard closes a
//!   connection idle for `idle_timeout` and says so.
//! - **The end of a stream.** When the server closes, both sources can lose
//!   the end of it: rtmp2src can free its very last message before handing
//!   it on (a race in its cleanup, in GStreamer 1.22 and 1.24), and rtmpsrc
//!   drops what it has read of its last 4096-byte block when the connection
//!   closes under it (measured: the last 70 ms of media). The guard adds
//!   data messages of its own after the server's last (`onGuardEnd`, which
//!   every FLV reader ignores), 16 KiB of them, before closing, so only
//!   they can be lost. rtmpsrc also connects again by itself once its
//!   stream ends, and would play a new publisher's stream as if it were
//!   the rest of the old one; the guard lets such a connection meet the
//!   server but ends it where playing would start, so rtmpsrc ends its
//!   stream cleanly and the session, not librtmp, decides to reconnect.
//!   A server that keeps its readers when the publisher leaves (nginx-rtmp)
//!   sends notices instead of closing; librtmp ignores them, so the guard
//!   ends the connection itself: every source then sees the same end of
//!   stream, on every server.
//!
//! What the guard saw comes to the session as [`GuardEvent`]s.

mod closing;

use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Sender;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use closing::closing_messages;
pub(crate) use rtmp_chunks::Limits;
pub(crate) use rtmp_chunks::MediaSeen;
use rtmp_chunks::{ChunkTracker, Notice, Said};

/// The source connects within this of the pipeline starting, or never will.
const ACCEPT_TIMEOUT: Duration = Duration::from_secs(30);
/// After the guard ends a stream, how long the source may take to read what
/// is left before both sides are closed.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// The chunk stream id of the guard's own closing messages.
const CLOSING_CHUNK_STREAM: u8 = 7;
/// Bytes of closing messages: more than rtmpsrc's block, several times.
const CLOSING_BYTES: usize = 16 * 1024;

/// What the guard learned about the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GuardEvent {
    /// The server accepted the play (`NetStream.Play.Start`).
    Playing,
    /// The server refused the play with an error status.
    Refused { code: String, description: String },
    /// The stream ended on the server's side: it closed, or said so with a
    /// notice; the guard has ended the source's connection.
    Ended(String),
    /// The server broke a limit; the guard closed both sides.
    Violation(String),
    /// The server sent nothing for this long; the guard closed both sides.
    Silent(Duration),
    /// The server could not be reached.
    Unreachable(String),
    /// Frames up to these presentation times have been passed to the
    /// source: the reader has them, whatever the server does next.
    Relayed(MediaSeen),
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct GuardSettings {
    pub limits: Limits,
    pub idle_timeout: Duration,
    pub connect_timeout: Duration,
}

pub(crate) struct SourceGuard {
    local: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl SourceGuard {
    /// Listens on a free loopback port for the source and relays it to
    /// `host:port`, reporting on `events`.
    pub fn start(
        host: &str,
        port: u16,
        settings: GuardSettings,
        events: Sender<GuardEvent>,
    ) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel();
        let upstream = (host.to_owned(), port);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name(format!("guard-{port}"))
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::select! {
                        _ = stopped => {}
                        () = relay(listener, upstream, settings, events) => {}
                    }
                });
            })?;
        Ok(Self {
            local,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where the source must connect.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl Drop for SourceGuard {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            // The relay ends at once on stop: dropping it closes both sockets.
            let _ = thread.join();
        }
    }
}

async fn relay(
    listener: std::net::TcpListener,
    (host, port): (String, u16),
    settings: GuardSettings,
    events: Sender<GuardEvent>,
) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        return;
    };
    let Ok(Ok((client, _))) = tokio::time::timeout(ACCEPT_TIMEOUT, listener.accept()).await else {
        return;
    };
    guarded(client, (&host, port), &settings, &events).await;
    // rtmpsrc connects again by itself once its stream ends. Refused, it
    // fails before its last frames are out; played through, it would splice
    // a new publisher's stream into this connection's. So later connections
    // meet the server until it would start playing, then an end of stream.
    while let Ok((client, _)) = listener.accept().await {
        let upstream = (host.clone(), port);
        tokio::spawn(async move { until_play(client, upstream, &settings).await });
    }
}

/// Relays a later connection until the server accepts its play, then closes
/// it: what the source meets on a path nobody publishes to.
async fn until_play(client: TcpStream, (host, port): (String, u16), settings: &GuardSettings) {
    let Ok(Ok(server)) = tokio::time::timeout(
        settings.connect_timeout,
        TcpStream::connect((host.as_str(), port)),
    )
    .await
    else {
        return;
    };
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    let upstream = async {
        let _ = tokio::io::copy(&mut from_client, &mut to_server).await;
    };
    let downstream = async {
        let mut tracker = ChunkTracker::new(settings.limits);
        let mut buf = vec![0u8; 16 * 1024];
        let mut notices = Vec::new();
        loop {
            let n = match tokio::time::timeout(settings.idle_timeout, from_server.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => n,
                _ => return,
            };
            if tracker.feed(&buf[..n], &mut notices).is_err() {
                return;
            }
            let start = notices.drain(..).find_map(|Notice { at, said }| match said {
                Said::Status { code, .. } if code == "NetStream.Play.Start" => Some(at),
                _ => None,
            });
            let end = start.unwrap_or(n);
            if to_client.write_all(&buf[..end]).await.is_err() || start.is_some() {
                return;
            }
        }
    };
    tokio::select! {
        () = upstream => {}
        () = downstream => {}
    }
    let _ = to_client.shutdown().await;
}

/// Relays the first connection, watching the server's side.
async fn guarded(
    client: TcpStream,
    (host, port): (&str, u16),
    settings: &GuardSettings,
    events: &Sender<GuardEvent>,
) {
    let server = match tokio::time::timeout(settings.connect_timeout, TcpStream::connect((host, port))).await
    {
        Ok(Ok(server)) => server,
        Ok(Err(e)) => {
            let _ = events.send(GuardEvent::Unreachable(format!(
                "cannot connect to {host}:{port}: {e}"
            )));
            return;
        }
        Err(_) => {
            let _ = events.send(GuardEvent::Unreachable(format!(
                "{host}:{port} did not accept a connection within {:?}",
                settings.connect_timeout
            )));
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    let upstream = async {
        let _ = tokio::io::copy(&mut from_client, &mut to_server).await;
    };
    tokio::select! {
        // The source hung up: nothing more to relay.
        () = upstream => {}
        ending = downstream(&mut from_server, &mut to_client, settings, events) => {
            if let Some(event) = ending {
                let orderly = matches!(event, GuardEvent::Ended(_));
                let _ = events.send(event);
                if orderly {
                    close_towards_source(to_client, &mut from_client).await;
                }
            }
        }
    }
}

/// Relays the server's bytes to the source until the stream ends; the
/// event that ended it (`None` when the source went away).
async fn downstream(
    from_server: &mut OwnedReadHalf,
    to_client: &mut OwnedWriteHalf,
    settings: &GuardSettings,
    events: &Sender<GuardEvent>,
) -> Option<GuardEvent> {
    let mut tracker = ChunkTracker::new(settings.limits);
    let mut buf = vec![0u8; 64 * 1024];
    let mut notices = Vec::new();
    let mut relayed = MediaSeen::default();
    loop {
        let n = match tokio::time::timeout(settings.idle_timeout, from_server.read(&mut buf)).await {
            Err(_) => return Some(GuardEvent::Silent(settings.idle_timeout)),
            Ok(Ok(0)) => return finish(&tracker, to_client, "the server closed the connection").await,
            Ok(Err(e)) => {
                let reason = format!("the connection to the server failed: {e}");
                return finish(&tracker, to_client, &reason).await;
            }
            Ok(Ok(n)) => n,
        };
        if let Err(violation) = tracker.feed(&buf[..n], &mut notices) {
            return Some(GuardEvent::Violation(violation.to_string()));
        }
        let mut ended: Option<(usize, String)> = None;
        for Notice { at, said } in notices.drain(..) {
            match said {
                Said::Status { code, .. } if code == "NetStream.Play.Start" => {
                    let _ = events.send(GuardEvent::Playing);
                }
                Said::Status {
                    level,
                    code,
                    description,
                } if level == "error" => {
                    let _ = events.send(GuardEvent::Refused { code, description });
                }
                Said::Status { code, .. }
                    if matches!(
                        code.as_str(),
                        "NetStream.Play.UnpublishNotify" | "NetStream.Play.Stop" | "NetStream.Play.Complete"
                    ) =>
                {
                    ended.get_or_insert((at, format!("the server said {code}")));
                }
                Said::StreamEof => {
                    ended.get_or_insert_with(|| (at, "the server sent stream EOF".to_owned()));
                }
                Said::Status { .. } => {}
            }
        }
        if tracker.media_seen != relayed {
            relayed = tracker.media_seen;
            let _ = events.send(GuardEvent::Relayed(relayed));
        }
        if let Some((at, reason)) = ended {
            // What came before the notice is passed on, the notice is not:
            // rtmp2src would stop on it as it stops on a close, and could
            // lose the last message. Our closing message and the close take
            // its place.
            if to_client.write_all(&buf[..at]).await.is_err() {
                return None;
            }
            return finish(&tracker, to_client, &reason).await;
        }
        if to_client.write_all(&buf[..n]).await.is_err() {
            return None;
        }
    }
}

/// Adds the closing message when the server stopped at a message boundary.
async fn finish(tracker: &ChunkTracker, to_client: &mut OwnedWriteHalf, reason: &str) -> Option<GuardEvent> {
    if tracker.at_boundary()
        && let Some(stream_id) = tracker.media_stream_id
    {
        let padding = closing_messages(
            CLOSING_CHUNK_STREAM,
            stream_id,
            tracker.last_media_timestamp,
            tracker.chunk_size(),
            CLOSING_BYTES,
        );
        if to_client.write_all(&padding).await.is_err() {
            return None;
        }
    }
    Some(GuardEvent::Ended(reason.to_owned()))
}

/// Ends the source's connection in order: our side shut down, then what it
/// still sends read until it closes, so no reset destroys data it has not
/// read yet (bounded in time).
async fn close_towards_source(mut to_client: OwnedWriteHalf, from_client: &mut OwnedReadHalf) {
    let _ = to_client.shutdown().await;
    let drain = async {
        let mut buf = [0u8; 4096];
        while from_client.read(&mut buf).await.is_ok_and(|n| n > 0) {}
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, drain).await;
}
