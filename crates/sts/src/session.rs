//! One STS session: a Socket.IO connection on which `stream:init` was
//! answered by `stream:ready`. It ends with `stream:end` or when the
//! connection fails; the driver then opens a new one.

use std::time::Duration;

use base64::Engine;
use tokio::time::Instant;
use tracing::debug;

use crate::ledger::Entry;
use crate::payload::Payload;
use crate::protocol::{self, AudioOut, FragmentData, Metadata, ServerMessage, StreamEnd};
use crate::socketio::{Connection, Incoming, LinkError, packet};

/// A server that names a heartbeat shorter than this would make a busy
/// moment look like a lost STS.
const MIN_HEARTBEAT: Duration = Duration::from_secs(1);

pub(crate) struct Session {
    conn: Connection,
    pub session_id: String,
    pub max_inflight: u32,
    last_heard: Instant,
}

impl Session {
    /// Connects, sends `init` (an encoded `stream:init`) and waits for
    /// `stream:ready`; the caller bounds the whole with its connect timeout.
    pub(crate) async fn open(
        endpoint: &str,
        init: String,
        write_timeout: Duration,
    ) -> Result<Session, LinkError> {
        let mut conn = Connection::open(endpoint, write_timeout).await?;
        conn.send_text(init).await?;
        loop {
            match conn.next().await? {
                Incoming::Ping => conn.pong().await?,
                Incoming::Event { name, data } => match protocol::parse(&name, data) {
                    Ok(ServerMessage::Ready(ready)) => {
                        return Ok(Session {
                            conn,
                            session_id: ready.session_id,
                            max_inflight: ready.max_inflight,
                            last_heard: Instant::now(),
                        });
                    }
                    Ok(ServerMessage::Error(error)) => {
                        return Err(LinkError::Closed(format!(
                            "the STS refused stream:init: {}",
                            error.describe()
                        )));
                    }
                    Ok(other) => debug!(?other, "ignored before stream:ready"),
                    Err(reason) => return Err(LinkError::Malformed(reason)),
                },
            }
        }
    }

    /// Cancel-safe, like [`Connection::next`].
    pub(crate) async fn next(&mut self) -> Result<Incoming, LinkError> {
        let incoming = self.conn.next().await;
        self.last_heard = Instant::now();
        incoming
    }

    pub(crate) fn heartbeat(&self) -> Duration {
        self.conn.heartbeat.max(MIN_HEARTBEAT)
    }

    /// When silence means the STS is gone.
    pub(crate) fn heartbeat_deadline(&self) -> Instant {
        self.last_heard + self.heartbeat()
    }

    pub(crate) fn max_payload(&self) -> Option<usize> {
        self.conn.max_payload
    }

    pub(crate) async fn pong(&mut self) -> Result<(), LinkError> {
        self.conn.pong().await
    }

    pub(crate) async fn send(&mut self, text: String) -> Result<(), LinkError> {
        self.conn.send_text(text).await
    }

    /// Sends `stream:end` and closes; whether `stream:end` went out.
    pub(crate) async fn end(mut self, stream_id: &str) -> bool {
        let sent = self
            .conn
            .send_text(packet::encode_event(
                protocol::STREAM_END,
                &StreamEnd { stream_id },
            ))
            .await
            .is_ok();
        self.conn.close().await;
        sent
    }

    pub(crate) async fn close(self) {
        self.conn.close().await;
    }
}

/// The encoded `fragment:data` event for `entry`, carrying `payload`.
pub(crate) fn fragment_message(entry: &Entry, stream_id: &str, format: &str, payload: Payload) -> String {
    let fragment = &entry.fragment;
    packet::encode_event(
        protocol::FRAGMENT_DATA,
        &FragmentData {
            fragment_id: &entry.fragment_id,
            stream_id,
            sequence_number: fragment.sequence_number,
            timestamp: entry.submitted_unix_ms,
            audio: AudioOut {
                format,
                sample_rate_hz: payload.sample_rate_hz,
                channels: payload.channels,
                duration_ms: fragment.duration.as_millis() as u64,
                data_base64: base64::engine::general_purpose::STANDARD.encode(&payload.data),
            },
            metadata: Metadata {
                pts_ns: fragment.pts_ns,
            },
        },
    )
}
