//! One TCP connection: drives the sans-IO [`Session`] with socket I/O and
//! plays the role the client asked for (publisher or reader) against the
//! registry. Whatever happens, the connection ends with one `closed: ...`
//! log line and its registry entry removed; nothing it does can block or
//! break another connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;

use crate::config::ServerConfig;
use crate::log::{LogSink, tracks_summary};
use crate::media::Frame;
use crate::registry::{ConnHandle, ConnId, Registry, SharedPath, lock};
use crate::session::{Session, SessionEvent};

/// Bytes read per socket read; also bounds what the parser buffers at once.
const READ_BUFFER: usize = 64 * 1024;
/// Frames serialized into one socket write when a reader's queue has a backlog.
const WRITE_BATCH_BYTES: usize = 256 * 1024;
/// After we end a connection, how long (and how much) we keep reading what
/// the client still sends. Closing with unread input makes the kernel send
/// a reset, and clients that reply to our last message (librtmp answers
/// `UnpublishNotify` with `deleteStream`) would then die of SIGPIPE or
/// report "broken pipe" instead of a clean end.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 1 << 20;

pub(crate) struct Shared {
    pub config: ServerConfig,
    pub registry: Registry,
    pub log: LogSink,
}

enum Role {
    Idle,
    Publishing {
        path: String,
        relay: SharedPath,
    },
    Reading {
        path: String,
        stream_id: u32,
        frames: mpsc::Receiver<Frame>,
    },
}

/// Removes the connection from the registry even if its task panics or is
/// dropped at runtime shutdown.
struct Registration<'a> {
    shared: &'a Shared,
    id: ConnId,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        if let Some(path) = self.shared.registry.close(self.id) {
            self.shared.log.path(&path, "stream is offline");
        }
    }
}

pub(crate) async fn serve(stream: TcpStream, remote: SocketAddr, shared: Arc<Shared>) {
    let handle = shared.registry.open(remote);
    let registration = Registration {
        shared: &shared,
        id: handle.id,
    };
    shared.log.conn(&remote, "opened");
    // Latency matters more than packet count for live media.
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let end = Connection::new(&shared, handle, remote)
        .run(&mut reader, &mut writer)
        .await;
    drop(registration);
    shared.log.conn(&remote, format_args!("closed: {}", end.reason));
    if !end.peer_gone {
        linger(&mut reader, &mut writer).await;
    }
}

/// Why a connection ended, and whether the peer's side is already closed.
struct End {
    reason: String,
    peer_gone: bool,
}

impl End {
    fn ours(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            peer_gone: false,
        }
    }

    fn peer(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            peer_gone: true,
        }
    }
}

/// Half-closes, then discards input until the client hangs up (bounded).
async fn linger(reader: &mut OwnedReadHalf, writer: &mut OwnedWriteHalf) {
    let drain = async {
        let _ = writer.shutdown().await;
        let mut buf = [0u8; 4096];
        let mut total = 0;
        while total < LINGER_BYTES {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}

struct Connection<'a> {
    shared: &'a Shared,
    handle: ConnHandle,
    remote: SocketAddr,
    session: Session,
    role: Role,
    out: Vec<u8>,
}

impl<'a> Connection<'a> {
    fn new(shared: &'a Shared, handle: ConnHandle, remote: SocketAddr) -> Self {
        let config = &shared.config;
        Self {
            shared,
            handle,
            remote,
            session: Session::new(config.max_chunk_size, config.outbound_chunk_size),
            role: Role::Idle,
            out: Vec::new(),
        }
    }

    /// Runs until the connection ends; the reason is in MediaMTX style.
    async fn run(mut self, reader: &mut OwnedReadHalf, writer: &mut OwnedWriteHalf) -> End {
        let mut buf = vec![0u8; READ_BUFFER];
        let mut events = Vec::new();
        let kick = self.handle.kick.clone();
        loop {
            // Readers legitimately stay silent for long periods (they only
            // send acknowledgements), so only they are exempt from the
            // idle timeout; their writes are bounded by `write_timeout`.
            let read_deadline = match self.role {
                Role::Reading { .. } => Duration::MAX,
                _ => self.shared.config.read_timeout,
            };
            let frames = match &mut self.role {
                Role::Reading { frames, .. } => Some(frames),
                _ => None,
            };
            tokio::select! {
                biased;
                _ = kick.notified() => return End::ours("terminated"),
                read = tokio::time::timeout(read_deadline, reader.read(&mut buf)) => {
                    let n = match read {
                        Err(_) => return End::ours("read timeout"),
                        Ok(Err(e)) => return End::peer(e.to_string()),
                        Ok(Ok(0)) => return End::peer("EOF"),
                        Ok(Ok(n)) => n,
                    };
                    self.handle.stats.inbound.fetch_add(n as u64, Ordering::Relaxed);
                    if let Err(e) = self.session.handle_input(&buf[..n], &mut self.out, &mut events) {
                        return End::ours(e.to_string());
                    }
                    for event in events.drain(..) {
                        if let Err(reason) = self.handle_event(event) {
                            // Flush the refusal so the client learns why.
                            let _ = self.flush(writer).await;
                            return End::ours(reason);
                        }
                    }
                    if let Err(reason) = self.flush(writer).await {
                        return End::ours(reason);
                    }
                }
                frame = recv(frames) => {
                    if let Err(reason) = self.forward(frame, writer).await {
                        return End::ours(reason);
                    }
                }
            }
        }
    }

    fn handle_event(&mut self, event: SessionEvent) -> Result<(), String> {
        match event {
            SessionEvent::PublishRequested { stream_id, path } => self.start_publishing(stream_id, path),
            SessionEvent::PlayRequested { stream_id, path } => self.start_reading(stream_id, path),
            SessionEvent::Media(frame) => {
                if let Role::Publishing { path, relay } = &self.role {
                    let mut relay = lock(relay);
                    if relay.publish(frame) {
                        let tracks = tracks_summary(&relay.tracks());
                        drop(relay);
                        let log = &self.shared.log;
                        log.conn(
                            &self.remote,
                            format_args!("is publishing to path '{path}', {tracks}"),
                        );
                        log.path(path, format_args!("stream is available and online, {tracks}"));
                    }
                }
                Ok(())
            }
            SessionEvent::StreamClosed => {
                // The client may still send `deleteStream` and close politely;
                // the connection stays open (and idle) until it does.
                match std::mem::replace(&mut self.role, Role::Idle) {
                    Role::Publishing { path, .. } => {
                        if self.shared.registry.unpublish(self.handle.id, &path) {
                            self.shared.log.path(&path, "stream is offline");
                        }
                    }
                    Role::Reading { path, .. } => self.shared.registry.stop_reading(self.handle.id, &path),
                    Role::Idle => {}
                }
                Ok(())
            }
        }
    }

    fn start_publishing(&mut self, stream_id: u32, path: String) -> Result<(), String> {
        if !matches!(self.role, Role::Idle) {
            return Err("a connection can publish or read only one stream".to_owned());
        }
        let Some(relay) = self.shared.registry.publish(self.handle.id, &path) else {
            let reason = format!("someone is already publishing to path '{path}'");
            self.session
                .reject(stream_id, "NetStream.Publish.BadName", &reason, &mut self.out)
                .map_err(|e| e.to_string())?;
            return Err(reason);
        };
        self.session
            .accept_publish(stream_id, &path, &mut self.out)
            .map_err(|e| e.to_string())?;
        self.role = Role::Publishing { path, relay };
        Ok(())
    }

    fn start_reading(&mut self, stream_id: u32, path: String) -> Result<(), String> {
        if !matches!(self.role, Role::Idle) {
            return Err("a connection can publish or read only one stream".to_owned());
        }
        let Some((frames, tracks)) = self.shared.registry.play(self.handle.id, &path) else {
            let reason = format!("no stream is available on path '{path}'");
            self.session
                .reject(stream_id, "NetStream.Play.StreamNotFound", &reason, &mut self.out)
                .map_err(|e| e.to_string())?;
            return Err(reason);
        };
        self.session
            .accept_play(stream_id, &path, &mut self.out)
            .map_err(|e| e.to_string())?;
        let what = if tracks.is_empty() {
            format!("is reading from path '{path}'")
        } else {
            format!("is reading from path '{path}', {}", tracks_summary(&tracks))
        };
        self.shared.log.conn(&self.remote, what);
        self.role = Role::Reading {
            path,
            stream_id,
            frames,
        };
        Ok(())
    }

    /// Writes queued frames to a reader, batching any backlog into one write.
    async fn forward(&mut self, frame: Option<Frame>, writer: &mut OwnedWriteHalf) -> Result<(), String> {
        let Role::Reading {
            path,
            stream_id,
            frames,
        } = &mut self.role
        else {
            return Ok(());
        };
        let Some(frame) = frame else {
            // The publisher left and everything queued has been written.
            let reason = format!("stream on path '{path}' is offline");
            let stream_id = *stream_id;
            let _ = self.session.end_of_stream(stream_id, &mut self.out);
            let _ = self.flush(writer).await;
            return Err(reason);
        };
        let stream_id = *stream_id;
        let mut next = Some(frame);
        while let Some(frame) = next.take() {
            self.session
                .write_frame(stream_id, &frame, &mut self.out)
                .map_err(|e| e.to_string())?;
            if self.out.len() < WRITE_BATCH_BYTES {
                next = frames.try_recv().ok();
            }
        }
        self.flush(writer).await
    }

    async fn flush(&mut self, writer: &mut OwnedWriteHalf) -> Result<(), String> {
        if self.out.is_empty() {
            return Ok(());
        }
        let timeout = self.shared.config.write_timeout;
        match tokio::time::timeout(timeout, writer.write_all(&self.out)).await {
            Err(_) => return Err("write timeout".to_owned()),
            Ok(Err(e)) => return Err(e.to_string()),
            Ok(Ok(())) => {}
        }
        self.handle
            .stats
            .outbound
            .fetch_add(self.out.len() as u64, Ordering::Relaxed);
        self.out.clear();
        Ok(())
    }
}

/// Next frame for a reader; pending forever for other roles so the select
/// branch is simply inert.
async fn recv(frames: Option<&mut mpsc::Receiver<Frame>>) -> Option<Frame> {
    match frames {
        Some(frames) => frames.recv().await,
        None => std::future::pending().await,
    }
}
