//! One TCP connection: drives the sans-IO [`Session`] with socket I/O and
//! plays the role the client asked for, with MediaMTX's timing:
//!
//! - until it publishes or reads, and while a publisher's first media is
//!   analysed, one deadline runs from the accept (`readTimeout`): the
//!   handshake, the commands and two seconds of media must arrive by then;
//! - a publisher then gets `readTimeout` per read;
//! - a reader is never read from again (MediaMTX does not), and each write
//!   gets `writeTimeout`.
//!
//! Whatever happens, the connection ends with one `closed: <reason>` line
//! in Go's wording and its registry entry removed; nothing it does can
//! block or break another connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::analysis::Analysis;
use crate::config::ServerConfig;
use crate::log::LogSink;
use crate::media::reader::ReaderOutput;
use crate::media::units::Unit;
use crate::registry::{ConnHandle, Registry, SharedPath, lock};
use crate::session::{Session, SessionEvent};

/// Bytes read per socket read; also bounds what the parser buffers at once.
const READ_BUFFER: usize = 64 * 1024;
/// Units serialized into one socket write when a reader's queue has a backlog.
const WRITE_BATCH_BYTES: usize = 256 * 1024;
/// How often a slow reader's discarded units are reported (MediaMTX: 1 s).
const DISCARD_REPORT_PERIOD: Duration = Duration::from_secs(1);

pub(crate) struct Shared {
    pub config: ServerConfig,
    pub registry: Registry,
    pub log: LogSink,
    /// What every connection's unfinished messages announce together.
    pub unfinished: AtomicU64,
}

/// One connection's share of [`Shared::unfinished`], returned when it ends.
struct UnfinishedShare<'a> {
    shared: &'a Shared,
    held: u64,
}

impl UnfinishedShare<'_> {
    /// Records that the connection's unfinished messages now announce
    /// `bytes`; an error when all connections together would pass the
    /// server's budget.
    fn update(&mut self, bytes: u64) -> Result<(), String> {
        let total = &self.shared.unfinished;
        if bytes >= self.held {
            let after = total.fetch_add(bytes - self.held, Ordering::Relaxed) + (bytes - self.held);
            self.held = bytes;
            let budget = self.shared.config.max_unfinished_total;
            if after > budget {
                return Err(format!(
                    "unfinished messages of all connections would take {after} bytes; the server holds at most {budget}"
                ));
            }
        } else {
            total.fetch_sub(self.held - bytes, Ordering::Relaxed);
            self.held = bytes;
        }
        Ok(())
    }
}

impl Drop for UnfinishedShare<'_> {
    fn drop(&mut self) {
        self.shared.unfinished.fetch_sub(self.held, Ordering::Relaxed);
    }
}

enum Role {
    Idle,
    /// `publish` accepted; the first media is being analysed.
    Analysing {
        path: String,
        analysis: Analysis,
    },
    Publishing {
        relay: SharedPath,
    },
    Reading {
        units: mpsc::Receiver<Unit>,
        output: ReaderOutput,
    },
}

/// Removes the connection from the registry even if its task panics or is
/// dropped at runtime shutdown.
struct Registration<'a> {
    registry: &'a Registry,
    id: crate::stats::ConnId,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.registry.close(self.id);
    }
}

pub(crate) async fn serve(stream: TcpStream, remote: SocketAddr, shared: Arc<Shared>) {
    let accepted = Instant::now();
    let handle = shared.registry.open(remote);
    let registration = Registration {
        registry: &shared.registry,
        id: handle.id,
    };
    shared.log.conn(&remote, "opened");
    let local = stream.local_addr().unwrap_or(remote);
    // Latency matters more than packet count for live media.
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let connection = Connection {
        shared: &shared,
        session: Session::new(shared.config.chunk_limits(), shared.config.outbound_chunk_size),
        handle,
        socket: Socket { local, remote },
        role: Role::Idle,
        out: Vec::new(),
        unfinished: UnfinishedShare {
            shared: &shared,
            held: 0,
        },
    };
    let end = connection.run(&mut reader, &mut writer, accepted).await;
    drop(registration);
    shared.log.conn(&remote, format_args!("closed: {}", end.reason));
    // Closed at once, as MediaMTX closes (no lingering to read what the
    // peer still sends): with input unread, the kernel sends a reset, and
    // the peer can lose what it had not read yet, as it can with MediaMTX.
    drop((reader, writer));
}

/// Why a connection ended, in MediaMTX's words.
struct End {
    reason: String,
}

impl End {
    fn because(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

/// The two ends, for Go-style error text (`read tcp A->B: i/o timeout`).
#[derive(Clone, Copy)]
struct Socket {
    local: SocketAddr,
    remote: SocketAddr,
}

impl Socket {
    fn error(&self, op: &str, e: &std::io::Error) -> String {
        format!(
            "{op} tcp {}->{}: {op}: {}",
            self.local,
            self.remote,
            go_error_text(e)
        )
    }

    fn timeout(&self, op: &str) -> String {
        format!("{op} tcp {}->{}: i/o timeout", self.local, self.remote)
    }
}

/// The OS error as Go prints it: `broken pipe`, `connection reset by peer`.
fn go_error_text(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::BrokenPipe => "broken pipe".to_owned(),
        ErrorKind::ConnectionReset => "connection reset by peer".to_owned(),
        ErrorKind::ConnectionAborted => "software caused connection abort".to_owned(),
        ErrorKind::TimedOut => "connection timed out".to_owned(),
        _ => {
            let text = e.to_string();
            let text = text.split(" (os error").next().unwrap_or(&text);
            let mut chars = text.chars();
            chars
                .next()
                .map(|c| c.to_lowercase().chain(chars).collect())
                .unwrap_or_default()
        }
    }
}

struct Connection<'a> {
    shared: &'a Shared,
    session: Session,
    handle: ConnHandle,
    socket: Socket,
    role: Role,
    out: Vec<u8>,
    unfinished: UnfinishedShare<'a>,
}

impl Connection<'_> {
    async fn run(
        mut self,
        reader: &mut OwnedReadHalf,
        writer: &mut OwnedWriteHalf,
        accepted: Instant,
    ) -> End {
        let mut buf = vec![0u8; READ_BUFFER];
        let mut events = Vec::new();
        let kick = self.handle.kick.clone();
        let first_deadline = accepted + self.shared.config.read_timeout;
        let mut discards = DiscardReport {
            period: tokio::time::interval(DISCARD_REPORT_PERIOD),
            stats: self.handle.stats.clone(),
            log: self.shared.log.clone(),
            remote: self.socket.remote,
            reported: 0,
        };
        loop {
            if let Role::Reading { units, output } = &mut self.role {
                tokio::select! {
                    biased;
                    _ = kick.notified() => return End::because("terminated"),
                    unit = units.recv() => {
                        let Some(unit) = unit else {
                            // The publisher left; what was queued is written.
                            return End::because("terminated");
                        };
                        if let Err(reason) = write_units(&mut self.session, &mut self.out, output, units, unit) {
                            return End::because(reason);
                        }
                        // A write can block for as long as the write timeout
                        // while the reader does not read: discards are still
                        // reported and a kick still ends it meanwhile.
                        let flushing = self.flush(writer);
                        tokio::pin!(flushing);
                        loop {
                            tokio::select! {
                                biased;
                                _ = kick.notified() => return End::because("terminated"),
                                flushed = &mut flushing => match flushed {
                                    Ok(()) => break,
                                    Err(reason) => return End::because(reason),
                                },
                                _ = discards.period.tick() => discards.report(),
                            }
                        }
                    }
                    _ = discards.period.tick() => discards.report(),
                }
                continue;
            }
            let deadline = match self.role {
                Role::Publishing { .. } => Instant::now() + self.shared.config.read_timeout,
                _ => first_deadline,
            };
            tokio::select! {
                biased;
                _ = kick.notified() => return End::because("terminated"),
                read = tokio::time::timeout_at(deadline, reader.read(&mut buf)) => {
                    let n = match read {
                        Err(_) => return End::because(self.socket.timeout("read")),
                        Ok(Err(e)) => return End::because(self.socket.error("read", &e)),
                        Ok(Ok(0)) => return End::because("EOF"),
                        Ok(Ok(n)) => n,
                    };
                    self.handle.stats.inbound.fetch_add(n as u64, Ordering::Relaxed);
                    if let Err(e) = self.session.handle_input(&buf[..n], &mut self.out, &mut events) {
                        return End::because(e.to_string());
                    }
                    if let Err(reason) = self.unfinished.update(self.session.in_progress_bytes()) {
                        return End::because(reason);
                    }
                    for event in events.drain(..) {
                        if let Err(reason) = self.handle_event(event) {
                            return End::because(reason);
                        }
                    }
                    if let Err(reason) = self.flush(writer).await {
                        return End::because(reason);
                    }
                }
            }
        }
    }

    fn handle_event(&mut self, event: SessionEvent) -> Result<(), String> {
        match event {
            SessionEvent::PublishRequested { path, query } => {
                if !matches!(self.role, Role::Idle) {
                    return Ok(());
                }
                self.describe_client(&query);
                self.session
                    .accept_publish(&mut self.out)
                    .map_err(|e| e.to_string())?;
                self.role = Role::Analysing {
                    path,
                    analysis: Analysis::default(),
                };
                Ok(())
            }
            SessionEvent::PlayRequested { path, query } => {
                if !matches!(self.role, Role::Idle) {
                    return Ok(());
                }
                self.describe_client(&query);
                self.start_reading(path)
            }
            SessionEvent::Media(tag) => match &mut self.role {
                Role::Analysing { path, analysis } => {
                    let Some(analysed) = analysis.push(tag).map_err(|e| e.to_string())? else {
                        return Ok(());
                    };
                    let path = std::mem::take(path);
                    let registry = &self.shared.registry;
                    let relay = registry
                        .add_publisher(self.handle.id, &path, analysed.tracks)
                        .map_err(|e| e.to_string())?;
                    self.shared.log.conn(
                        &self.socket.remote,
                        format_args!("is publishing to path '{path}'"),
                    );
                    {
                        let mut relay = lock(&relay);
                        for tag in &analysed.tags {
                            relay.publish(tag).map_err(|e| e.to_string())?;
                        }
                    }
                    self.role = Role::Publishing { relay };
                    Ok(())
                }
                Role::Publishing { relay, .. } => lock(relay).publish(&tag).map_err(|e| e.to_string()),
                _ => Ok(()),
            },
        }
    }

    fn describe_client(&self, query: &str) {
        self.shared
            .registry
            .describe_client(self.handle.id, self.session.flash_version(), query);
    }

    fn start_reading(&mut self, path: String) -> Result<(), String> {
        let Some(joined) = self.shared.registry.add_reader(self.handle.id, &path) else {
            // MediaMTX sends no status: the connection simply closes.
            return Err(format!("no stream is available on path '{path}'"));
        };
        self.session
            .accept_play(&mut self.out)
            .map_err(|e| e.to_string())?;
        for tag in &joined.headers {
            self.session
                .write_tag(tag, &mut self.out)
                .map_err(|e| e.to_string())?;
        }
        self.shared.log.conn(
            &self.socket.remote,
            format_args!("is reading from path '{path}', {}", joined.tracks.summary()),
        );
        self.role = Role::Reading {
            units: joined.units,
            output: ReaderOutput::default(),
        };
        Ok(())
    }

    async fn flush(&mut self, writer: &mut OwnedWriteHalf) -> Result<(), String> {
        if self.out.is_empty() {
            return Ok(());
        }
        let timeout = self.shared.config.write_timeout;
        match tokio::time::timeout(timeout, writer.write_all(&self.out)).await {
            Err(_) => return Err(self.socket.timeout("write")),
            Ok(Err(e)) => return Err(self.socket.error("write", &e)),
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

/// Says, at most once per period, how many units a reader's full queue
/// made the server discard (MediaMTX's `reader is too slow` warning).
struct DiscardReport {
    period: tokio::time::Interval,
    stats: Arc<crate::stats::ConnStats>,
    log: crate::log::LogSink,
    remote: std::net::SocketAddr,
    reported: u64,
}

impl DiscardReport {
    fn report(&mut self) {
        let discarded = self.stats.discarded.load(Ordering::Relaxed);
        if discarded > self.reported {
            let n = discarded - self.reported;
            let noun = if n == 1 { "frame" } else { "frames" };
            self.log.conn_warning(
                &self.remote,
                format_args!("reader is too slow, discarding {n} {noun}"),
            );
            self.reported = discarded;
        }
    }
}

/// Serializes `first` and whatever else is queued (up to a batch) for a reader.
fn write_units(
    session: &mut Session,
    out: &mut Vec<u8>,
    output: &mut ReaderOutput,
    units: &mut mpsc::Receiver<Unit>,
    first: Unit,
) -> Result<(), String> {
    let mut next = Some(first);
    while let Some(unit) = next.take() {
        if let Some(tag) = output.convert(&unit).map_err(|e| e.to_string())? {
            session.write_tag(&tag, out).map_err(|e| e.to_string())?;
        }
        if out.len() < WRITE_BATCH_BYTES {
            next = units.try_recv().ok();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_as_go_prints_them() {
        let socket = Socket {
            local: "172.17.0.2:1935".parse().unwrap(),
            remote: "172.17.0.1:37928".parse().unwrap(),
        };
        assert_eq!(
            socket.timeout("read"),
            "read tcp 172.17.0.2:1935->172.17.0.1:37928: i/o timeout"
        );
        let pipe = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert_eq!(
            socket.error("write", &pipe),
            "write tcp 172.17.0.2:1935->172.17.0.1:37928: write: broken pipe"
        );
        let other = std::io::Error::from_raw_os_error(113);
        assert_eq!(go_error_text(&other), "no route to host");
    }
}
