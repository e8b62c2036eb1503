//! A small RTMP client for tests, on tokio, built on rml_rtmp's handshake,
//! chunk codec and message types. It does what real clients do not let a
//! test do:
//!
//! - [`RtmpPublisher`] sends FLV tags exactly as given, when the test says
//!   (pause, resume, stay connected, stop at a keyframe);
//! - [`RtmpPlayer`] plays a stream and hands over every message the server
//!   sends, raw: status codes, user control events, metadata and media
//!   bodies with their timestamps, so a test can check what a reader gets
//!   byte for byte.
//!
//! rml_rtmp's `ClientSession` is not used for playing: it hides messages a
//! test must see (it drops `@setDataFrame` metadata and user control events).

use std::time::Duration;

use bytes::Bytes;
use rml_rtmp::chunk_io::{ChunkDeserializer, ChunkSerializer};
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::messages::{MessagePayload, RtmpMessage, UserControlEventType};
use rml_rtmp::rml_amf0::Amf0Value;
use rml_rtmp::time::RtmpTimestamp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::flv::FlvTag;

/// Every exchange with the server must progress within this.
const STEP_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("RTMP I/O with {authority}: {source}")]
    Io {
        authority: String,
        #[source]
        source: std::io::Error,
    },
    #[error("RTMP protocol error with {authority}: {reason}")]
    Protocol { authority: String, reason: String },
    #[error("{authority} closed the connection while {while_doing}")]
    Closed {
        authority: String,
        while_doing: &'static str,
    },
    #[error("{authority} refused: {code} ({description})")]
    Refused {
        authority: String,
        code: String,
        description: String,
    },
    #[error("{authority} did not answer within {STEP_TIMEOUT:?} while {while_doing}")]
    Timeout {
        authority: String,
        while_doing: &'static str,
    },
}

impl ClientError {
    /// Whether the server ended the connection: closed it, or reset it (as
    /// MediaMTX's close does while the peer still sends: a write then fails
    /// with a reset or a broken pipe).
    pub fn is_closed_by_server(&self) -> bool {
        use std::io::ErrorKind;
        match self {
            Self::Closed { .. } => true,
            Self::Io { source, .. } => matches!(
                source.kind(),
                ErrorKind::BrokenPipe
                    | ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::UnexpectedEof
            ),
            _ => false,
        }
    }
}

/// One message a player received.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// `onStatus`: level, code, description.
    Status {
        level: String,
        code: String,
        description: String,
    },
    /// A user control event (stream begin, stream is recorded, stream EOF, ...).
    Control(String),
    /// Audio (8), video (9) or data (18), with its body untouched.
    Tag(FlvTag),
    /// Any other command (by name).
    Command(String),
}

struct Connection {
    authority: String,
    socket: TcpStream,
    serializer: ChunkSerializer,
    deserializer: ChunkDeserializer,
    buf: Vec<u8>,
    /// Messages parsed but not yet handed out.
    queue: std::collections::VecDeque<MessagePayload>,
    received: u64,
    window: Option<u32>,
    acknowledged: u64,
}

impl Connection {
    async fn open(authority: &str, app: &str) -> Result<Self, ClientError> {
        let io = |source| ClientError::Io {
            authority: authority.to_owned(),
            source,
        };
        let mut socket = TcpStream::connect(authority).await.map_err(io)?;
        let _ = socket.set_nodelay(true);
        let mut handshake = Handshake::new(PeerType::Client);
        let protocol = |reason: String| ClientError::Protocol {
            authority: authority.to_owned(),
            reason,
        };
        let c0c1 = handshake
            .generate_outbound_p0_and_p1()
            .map_err(|e| protocol(format!("{e:?}")))?;
        socket.write_all(&c0c1).await.map_err(io)?;
        let mut buf = vec![0u8; 64 * 1024];
        let leftover = loop {
            let n = with_timeout(authority, "handshaking", socket.read(&mut buf))
                .await?
                .map_err(io)?;
            if n == 0 {
                return Err(ClientError::Closed {
                    authority: authority.to_owned(),
                    while_doing: "handshaking",
                });
            }
            match handshake
                .process_bytes(&buf[..n])
                .map_err(|e| protocol(format!("{e:?}")))?
            {
                HandshakeProcessResult::InProgress { response_bytes } => {
                    socket.write_all(&response_bytes).await.map_err(io)?
                }
                HandshakeProcessResult::Completed {
                    response_bytes,
                    remaining_bytes,
                } => {
                    socket.write_all(&response_bytes).await.map_err(io)?;
                    break remaining_bytes;
                }
            }
        };
        let mut conn = Self {
            authority: authority.to_owned(),
            socket,
            serializer: ChunkSerializer::new(),
            deserializer: ChunkDeserializer::new(),
            buf,
            queue: Default::default(),
            received: 0,
            window: None,
            acknowledged: 0,
        };
        conn.parse(&leftover)?;
        let tc_url = format!("rtmp://{authority}/{app}");
        let properties = std::collections::HashMap::from([
            ("app".to_owned(), Amf0Value::Utf8String(app.to_owned())),
            (
                "flashVer".to_owned(),
                Amf0Value::Utf8String("LNX 9,0,124,2".to_owned()),
            ),
            ("tcUrl".to_owned(), Amf0Value::Utf8String(tc_url)),
        ]);
        conn.command("connect", 1.0, Amf0Value::Object(properties), vec![], 0)
            .await?;
        conn.await_result(1.0, "connecting").await?;
        Ok(conn)
    }

    fn protocol(&self, reason: impl std::fmt::Display) -> ClientError {
        ClientError::Protocol {
            authority: self.authority.clone(),
            reason: reason.to_string(),
        }
    }

    fn io(&self, source: std::io::Error) -> ClientError {
        ClientError::Io {
            authority: self.authority.clone(),
            source,
        }
    }

    async fn send(&mut self, message: RtmpMessage, stream_id: u32) -> Result<(), ClientError> {
        let payload = message
            .into_message_payload(RtmpTimestamp::new(0), stream_id)
            .map_err(|e| self.protocol(format!("{e:?}")))?;
        self.send_payload(&payload).await
    }

    async fn send_payload(&mut self, payload: &MessagePayload) -> Result<(), ClientError> {
        let packet = self
            .serializer
            .serialize(payload, false, false)
            .map_err(|e| self.protocol(format!("{e:?}")))?;
        self.socket.write_all(&packet.bytes).await.map_err(|e| self.io(e))
    }

    async fn command(
        &mut self,
        name: &str,
        transaction: f64,
        object: Amf0Value,
        args: Vec<Amf0Value>,
        stream_id: u32,
    ) -> Result<(), ClientError> {
        let message = RtmpMessage::Amf0Command {
            command_name: name.to_owned(),
            transaction_id: transaction,
            command_object: object,
            additional_arguments: args,
        };
        self.send(message, stream_id).await
    }

    fn parse(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        let mut input = bytes;
        loop {
            let next = self
                .deserializer
                .get_next_message(input)
                .map_err(|e| self.protocol(format!("{e:?}")))?;
            input = &[];
            let Some(payload) = next else {
                return Ok(());
            };
            if payload.type_id == 1 {
                // SetChunkSize applies to what follows in this same read.
                if let Ok(RtmpMessage::SetChunkSize { size }) = payload.to_rtmp_message() {
                    self.deserializer
                        .set_max_chunk_size(size as usize)
                        .map_err(|e| self.protocol(format!("{e:?}")))?;
                }
            }
            self.queue.push_back(payload);
        }
    }

    /// The next message; `None` once the server has closed the connection.
    async fn next_payload(&mut self) -> Result<Option<MessagePayload>, ClientError> {
        loop {
            if let Some(payload) = self.queue.pop_front() {
                if payload.type_id == 5
                    && let Ok(RtmpMessage::WindowAcknowledgement { size }) = payload.to_rtmp_message()
                {
                    self.window = (size > 0).then_some(size);
                }
                return Ok(Some(payload));
            }
            let n = match self.socket.read(&mut self.buf).await {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
                Err(e) => return Err(self.io(e)),
            };
            if n == 0 {
                return Ok(None);
            }
            self.received += n as u64;
            let chunk = self.buf[..n].to_vec();
            self.parse(&chunk)?;
            self.acknowledge().await?;
        }
    }

    /// Acknowledges received bytes once per window, as the server asked.
    async fn acknowledge(&mut self) -> Result<(), ClientError> {
        let Some(window) = self.window else {
            return Ok(());
        };
        if self.received - self.acknowledged < u64::from(window) {
            return Ok(());
        }
        self.acknowledged = self.received;
        let ack = RtmpMessage::Acknowledgement {
            sequence_number: self.received as u32,
        };
        self.send(ack, 0).await
    }

    /// Reads until the `_result` of `transaction`, failing on `_error` or a
    /// closed connection.
    async fn await_result(
        &mut self,
        transaction: f64,
        while_doing: &'static str,
    ) -> Result<Vec<Amf0Value>, ClientError> {
        loop {
            let authority = self.authority.clone();
            let next = with_timeout(&authority, while_doing, self.next_payload()).await??;
            let Some(payload) = next else {
                return Err(ClientError::Closed {
                    authority: self.authority.clone(),
                    while_doing,
                });
            };
            if let Ok(RtmpMessage::Amf0Command {
                command_name,
                transaction_id,
                additional_arguments,
                ..
            }) = payload.to_rtmp_message()
                && transaction_id == transaction
            {
                match command_name.as_str() {
                    "_result" => return Ok(additional_arguments),
                    "_error" => {
                        return Err(ClientError::Refused {
                            authority: self.authority.clone(),
                            code: "_error".to_owned(),
                            description: format!("{additional_arguments:?}"),
                        });
                    }
                    _ => {}
                }
            }
        }
    }

    async fn create_stream(&mut self) -> Result<u32, ClientError> {
        self.command("createStream", 2.0, Amf0Value::Null, vec![], 0)
            .await?;
        let result = self.await_result(2.0, "creating a stream").await?;
        match result.first() {
            Some(Amf0Value::Number(id)) => Ok(*id as u32),
            _ => Err(self.protocol("createStream answered without a stream id")),
        }
    }
}

async fn with_timeout<T>(
    authority: &str,
    while_doing: &'static str,
    future: impl std::future::Future<Output = T>,
) -> Result<T, ClientError> {
    tokio::time::timeout(STEP_TIMEOUT, future)
        .await
        .map_err(|_| ClientError::Timeout {
            authority: authority.to_owned(),
            while_doing,
        })
}

/// Splits `live/x/in` the way librtmp, GStreamer and ffmpeg 5 do: the
/// application up to the last slash, the stream name after it.
fn split_path(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

/// Publishes tags to a path, exactly as given.
pub struct RtmpPublisher {
    conn: Connection,
    stream_id: u32,
}

impl RtmpPublisher {
    /// Connects to `authority` (host:port) and publishes `path` (e.g.
    /// `live/x/in`); returns once the server accepted the publish.
    pub async fn publish(authority: &str, path: &str) -> Result<Self, ClientError> {
        let (app, stream) = split_path(path);
        let mut conn = Connection::open(authority, app).await?;
        let stream_id = conn.create_stream().await?;
        let args = vec![
            Amf0Value::Utf8String(stream.to_owned()),
            Amf0Value::Utf8String("live".to_owned()),
        ];
        conn.command("publish", 3.0, Amf0Value::Null, args, stream_id)
            .await?;
        loop {
            let next = with_timeout(authority, "publishing", conn.next_payload()).await??;
            let Some(payload) = next else {
                return Err(ClientError::Closed {
                    authority: authority.to_owned(),
                    while_doing: "publishing",
                });
            };
            if let Some((level, code, description)) = status_of(&payload) {
                if code == "NetStream.Publish.Start" {
                    return Ok(Self { conn, stream_id });
                }
                if level == "error" {
                    return Err(ClientError::Refused {
                        authority: authority.to_owned(),
                        code,
                        description,
                    });
                }
            }
        }
    }

    /// This end of the connection: how the server names it in its log.
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.conn.socket.local_addr().ok()
    }

    /// Sends one tag (audio 8, video 9 or data 18; others are skipped).
    pub async fn send(&mut self, tag: &FlvTag) -> Result<(), ClientError> {
        if !matches!(tag.kind, 8 | 9 | 18) {
            return Ok(());
        }
        let payload = MessagePayload {
            timestamp: RtmpTimestamp::new(tag.timestamp),
            type_id: tag.kind,
            message_stream_id: self.stream_id,
            data: Bytes::copy_from_slice(&tag.body),
        };
        self.conn.send_payload(&payload).await
    }

    /// Sends every tag of `tags` in order.
    pub async fn send_all<'a>(
        &mut self,
        tags: impl IntoIterator<Item = &'a FlvTag>,
    ) -> Result<(), ClientError> {
        for tag in tags {
            self.send(tag).await?;
        }
        Ok(())
    }

    /// Resolves when the server closes the connection (kicked, taken over,
    /// timed out); what it sent meanwhile is discarded.
    pub async fn closed_by_server(&mut self) {
        while let Ok(Some(_)) = self.conn.next_payload().await {}
    }

    /// Reads until the server closes the connection; the status codes it
    /// sent meanwhile (a refusal with words says one, MediaMTX's close
    /// says none).
    pub async fn statuses_until_closed(&mut self) -> Vec<String> {
        let mut codes = Vec::new();
        while let Ok(Some(payload)) = self.conn.next_payload().await {
            if let Some((_, code, _)) = status_of(&payload) {
                codes.push(code);
            }
        }
        codes
    }

    /// Ends the stream cleanly: no more data from us, then whatever the
    /// server still sends is read and discarded until it closes. Merely
    /// dropping a socket with unread input makes the kernel send a reset,
    /// which can discard the last tags before the server has read them.
    pub async fn finish(mut self) -> Result<(), ClientError> {
        self.conn.socket.shutdown().await.map_err(|e| self.conn.io(e))?;
        let drain = async { while let Ok(Some(_)) = self.conn.next_payload().await {} };
        let _ = tokio::time::timeout(STEP_TIMEOUT, drain).await;
        Ok(())
    }
}

/// Plays a path and hands over what the server sends.
pub struct RtmpPlayer {
    conn: Connection,
}

impl RtmpPlayer {
    /// Connects and asks to play `path`; returns as soon as the request is
    /// sent: what the server answers (or whether it closes) is the first
    /// thing [`Self::next`] reports.
    pub async fn play(authority: &str, path: &str) -> Result<Self, ClientError> {
        let (app, stream) = split_path(path);
        let mut conn = Connection::open(authority, app).await?;
        let stream_id = conn.create_stream().await?;
        let args = vec![Amf0Value::Utf8String(stream.to_owned())];
        conn.command("play", 3.0, Amf0Value::Null, args, stream_id)
            .await?;
        Ok(Self { conn })
    }

    /// This end of the connection: how the server names it in its log.
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.conn.socket.local_addr().ok()
    }

    /// The next message; `None` once the server closed the connection.
    pub async fn next(&mut self) -> Result<Option<Received>, ClientError> {
        loop {
            let Some(payload) = self.conn.next_payload().await? else {
                return Ok(None);
            };
            if let Some(received) = describe(payload) {
                return Ok(Some(received));
            }
        }
    }

    /// The next message within `timeout`, else `Ok(None)` as if closed.
    pub async fn next_within(&mut self, timeout: Duration) -> Result<Option<Received>, ClientError> {
        match tokio::time::timeout(timeout, self.next()).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout {
                authority: self.conn.authority.clone(),
                while_doing: "waiting for a message",
            }),
        }
    }
}

fn status_of(payload: &MessagePayload) -> Option<(String, String, String)> {
    let Ok(RtmpMessage::Amf0Command {
        command_name,
        additional_arguments,
        ..
    }) = payload.to_rtmp_message()
    else {
        return None;
    };
    if command_name != "onStatus" {
        return None;
    }
    let properties = additional_arguments.into_iter().next()?.get_object_properties()?;
    let text = |key: &str| match properties.get(key) {
        Some(Amf0Value::Utf8String(s)) => s.clone(),
        _ => String::new(),
    };
    Some((text("level"), text("code"), text("description")))
}

/// What a test cares about in a message; `None` for protocol housekeeping
/// (chunk size, window size, bandwidth, acknowledgements).
fn describe(payload: MessagePayload) -> Option<Received> {
    if matches!(payload.type_id, 8 | 9 | 18) {
        return Some(Received::Tag(FlvTag {
            kind: payload.type_id,
            timestamp: payload.timestamp.value,
            body: payload.data.to_vec(),
        }));
    }
    if let Some((level, code, description)) = status_of(&payload) {
        return Some(Received::Status {
            level,
            code,
            description,
        });
    }
    match payload.to_rtmp_message().ok()? {
        RtmpMessage::UserControl { event_type, .. } => {
            Some(Received::Control(control_name(event_type).to_owned()))
        }
        RtmpMessage::Amf0Command { command_name, .. } => Some(Received::Command(command_name)),
        _ => None,
    }
}

fn control_name(event: UserControlEventType) -> &'static str {
    match event {
        UserControlEventType::StreamBegin => "stream begin",
        UserControlEventType::StreamEof => "stream EOF",
        UserControlEventType::StreamDry => "stream dry",
        UserControlEventType::SetBufferLength => "set buffer length",
        UserControlEventType::StreamIsRecorded => "stream is recorded",
        UserControlEventType::PingRequest => "ping request",
        UserControlEventType::PingResponse => "ping response",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_at_the_last_slash() {
        assert_eq!(split_path("live/x/in"), ("live/x", "in"));
        assert_eq!(split_path("in"), ("", "in"));
    }
}
