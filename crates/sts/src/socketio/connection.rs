//! One Socket.IO connection: the handshakes, then packets in and out.
//!
//! [`Connection::next`] reads exactly one websocket message per await and
//! keeps no state across awaits, so it is cancel-safe inside `select!`; the
//! caller answers pings itself (a write inside `next` could be cut in half
//! by a cancelled branch).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tracing::debug;

use super::packet::{self, Decoded, EnginePacket, SocketPacket};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The largest message taken from the STS: a dubbed 6-s segment is a few
/// hundred kB of base64, so this bounds what a faulty STS can make us hold
/// (tungstenite's own default is 64 MiB).
const MAX_MESSAGE_BYTES: usize = 16 << 20;

/// Why a connection can no longer be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LinkError {
    #[error("{0}")]
    Transport(String),
    #[error("malformed message from the STS: {0}")]
    Malformed(String),
    #[error("{0}")]
    Closed(String),
}

impl From<packet::ProtocolError> for LinkError {
    fn from(e: packet::ProtocolError) -> Self {
        LinkError::Malformed(e.0)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Incoming {
    Event {
        name: String,
        data: Option<Value>,
    },
    /// Engine.IO ping: answer with [`Connection::pong`].
    Ping,
}

pub(crate) struct Connection {
    ws: Ws,
    /// Silence longer than this means the server is gone (pingInterval +
    /// pingTimeout of its open packet).
    pub heartbeat: Duration,
    /// The largest message the server accepts, if it said.
    pub max_payload: Option<usize>,
    write_timeout: Duration,
}

impl Connection {
    /// Opens the websocket and joins the default namespace.
    pub(crate) async fn open(endpoint: &str, write_timeout: Duration) -> Result<Self, LinkError> {
        // Nagle off: fragments are single large writes, acks tiny ones, and
        // both should leave at once.
        let limits = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_MESSAGE_BYTES));
        let (ws, _) = tokio_tungstenite::connect_async_with_config(endpoint, Some(limits), true)
            .await
            .map_err(|e| LinkError::Transport(format!("cannot open websocket {endpoint}: {e}")))?;
        let mut connection = Connection {
            ws,
            heartbeat: Duration::ZERO,
            max_payload: None,
            write_timeout,
        };
        let text = connection.next_text().await?;
        let handshake = match packet::decode_engine(&text)? {
            EnginePacket::Open(handshake) => handshake,
            other => {
                return Err(LinkError::Malformed(format!(
                    "expected the Engine.IO open packet, got {other:?}"
                )));
            }
        };
        connection.heartbeat =
            Duration::from_millis(handshake.ping_interval.saturating_add(handshake.ping_timeout));
        connection.max_payload = handshake.max_payload.and_then(|n| usize::try_from(n).ok());
        debug!(sid = %handshake.sid, heartbeat = ?connection.heartbeat, "engine.io open");
        connection.send_text(packet::CONNECT.to_owned()).await?;
        loop {
            let text = connection.next_text().await?;
            match packet::decode_engine(&text)? {
                EnginePacket::Ping => connection.pong().await?,
                EnginePacket::Message(message) => match packet::decode_socket(message)? {
                    Decoded {
                        default_namespace: true,
                        packet: SocketPacket::Connect,
                    } => return Ok(connection),
                    Decoded {
                        packet: SocketPacket::ConnectError { message },
                        ..
                    } => {
                        return Err(LinkError::Closed(format!(
                            "the STS refused the connection: {message}"
                        )));
                    }
                    other => debug!(?other, "ignored before the namespace connect"),
                },
                EnginePacket::Close => {
                    return Err(LinkError::Closed("Engine.IO close during connect".into()));
                }
                _ => {}
            }
        }
    }

    async fn next_text(&mut self) -> Result<Utf8Bytes, LinkError> {
        loop {
            match self.ws.next().await {
                None => return Err(LinkError::Closed("the websocket closed".into())),
                Some(Err(e)) => return Err(LinkError::Transport(format!("websocket: {e}"))),
                Some(Ok(Message::Text(text))) => return Ok(text),
                Some(Ok(Message::Binary(_))) => {
                    return Err(LinkError::Malformed(
                        "a binary frame; the STS protocol is JSON text".into(),
                    ));
                }
                Some(Ok(Message::Close(frame))) => {
                    let why = frame
                        .map(|f| format!(" ({} {})", f.code, f.reason))
                        .unwrap_or_default();
                    return Err(LinkError::Closed(format!("the STS closed the websocket{why}")));
                }
                // Websocket-level ping/pong: tungstenite answers those itself.
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next event or ping. Other namespaces, acks and noops are skipped.
    pub(crate) async fn next(&mut self) -> Result<Incoming, LinkError> {
        loop {
            let text = self.next_text().await?;
            let message = match packet::decode_engine(&text)? {
                EnginePacket::Ping => return Ok(Incoming::Ping),
                EnginePacket::Message(message) => message,
                EnginePacket::Close => {
                    return Err(LinkError::Closed("the STS closed the Engine.IO session".into()));
                }
                EnginePacket::Pong | EnginePacket::Noop => continue,
                other => {
                    return Err(LinkError::Malformed(format!(
                        "unexpected Engine.IO packet {other:?}"
                    )));
                }
            };
            let decoded = packet::decode_socket(message)?;
            if !decoded.default_namespace {
                debug!(?decoded, "ignored: another namespace");
                continue;
            }
            match decoded.packet {
                SocketPacket::Event { name, data, ack_id } => {
                    if ack_id.is_some() {
                        debug!(%name, "the STS asked for an ack, which its protocol does not use");
                    }
                    return Ok(Incoming::Event { name, data });
                }
                SocketPacket::Disconnect => {
                    return Err(LinkError::Closed("the STS disconnected the session".into()));
                }
                SocketPacket::ConnectError { message } => {
                    return Err(LinkError::Closed(format!("the STS ended the session: {message}")));
                }
                SocketPacket::Binary => {
                    return Err(LinkError::Malformed(
                        "a binary Socket.IO packet; the STS protocol is JSON text".into(),
                    ));
                }
                SocketPacket::Connect | SocketPacket::Ack => {}
            }
        }
    }

    pub(crate) async fn send_text(&mut self, text: String) -> Result<(), LinkError> {
        match tokio::time::timeout(self.write_timeout, self.ws.send(Message::text(text))).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(LinkError::Transport(format!("websocket write: {e}"))),
            Err(_) => Err(LinkError::Transport(format!(
                "websocket write stalled for {:?}: the STS stopped reading",
                self.write_timeout
            ))),
        }
    }

    pub(crate) async fn pong(&mut self) -> Result<(), LinkError> {
        self.send_text(packet::PONG.to_owned()).await
    }

    /// Leaves the namespace and closes the websocket, best effort: the
    /// session is over either way.
    pub(crate) async fn close(mut self) {
        let _ = self.send_text(packet::DISCONNECT.to_owned()).await;
        let _ = tokio::time::timeout(self.write_timeout, self.ws.close(None)).await;
    }
}
