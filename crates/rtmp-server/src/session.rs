//! The server side of one RTMP connection, without I/O: bytes in, bytes
//! out plus events for the relay. rml_rtmp supplies the handshake, the chunk
//! codec and the message types; the command flow below is ours, because the
//! relay must see (and veto) what rml_rtmp's `ServerSession` hides: the
//! client's chunk size, unknown commands and the raw metadata bytes.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use rml_rtmp::chunk_io::{ChunkDeserializer, ChunkSerializer};
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::messages::{MessagePayload, PeerBandwidthLimitType, RtmpMessage, UserControlEventType};
use rml_rtmp::rml_amf0::Amf0Value;
use rml_rtmp::time::RtmpTimestamp;
use rtmp_chunks::{ChunkTracker, Limits, Violation};

use crate::media::{Tag, TagKind};
use crate::path_name::{path_name, query_of};

/// Window size we announce and peer bandwidth we allow (MediaMTX's values).
const WINDOW_ACK_SIZE: u32 = 2_500_000;
/// The only stream id a connection gets (MediaMTX answers every
/// `createStream` with 1).
const STREAM_ID: u32 = 1;

#[derive(Debug)]
pub(crate) enum SessionEvent {
    PublishRequested {
        path: String,
        query: String,
    },
    PlayRequested {
        path: String,
        query: String,
    },
    /// Audio, video or data from a publisher whose `publish` was accepted.
    Media(Tag),
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ProtocolError {
    #[error("handshake failed: {0}")]
    Handshake(String),
    #[error("invalid chunk: {0}")]
    Chunk(String),
    #[error("invalid message: {0}")]
    Message(String),
    // MediaMTX's words (gortmplib) for the two limits it has.
    #[error("chunk size ({size}) exceeds maximum ({limit})")]
    ChunkSize { size: u32, limit: u32 },
    #[error("body size ({size}) exceeds maximum ({limit})")]
    BodySize { size: u32, limit: u32 },
    #[error("chunk size (0) is invalid; it must be at least 1")]
    ZeroChunkSize,
    /// A limit of ours that MediaMTX does not have (memory held for
    /// unfinished messages).
    #[error("{0}")]
    Limit(rtmp_chunks::Violation),
    #[error("command '{0}' is not valid before 'connect'")]
    NotConnected(String),
    #[error("command '{0}' has invalid arguments")]
    BadArguments(String),
    #[error("malformed input crashed the chunk parser")]
    ParserPanic,
}

pub(crate) struct Session {
    handshake: Option<Handshake>,
    /// Checks every chunk header before rml_rtmp, which reserves what a
    /// header announces and buffers a whole chunk before parsing it.
    limits: ChunkTracker,
    deserializer: ChunkDeserializer,
    serializer: ChunkSerializer,
    max_chunk_size: u32,
    outbound_chunk_size: u32,
    app: Option<String>,
    flash_version: String,
    publishing: bool,
    /// Acknowledgement bookkeeping: the peer asks for one every N bytes.
    peer_window: Option<u32>,
    received: u64,
    received_at_last_ack: u64,
}

impl Session {
    pub fn new(limits: Limits, outbound_chunk_size: u32) -> Self {
        let max_chunk_size = limits.max_chunk_size;
        Self {
            handshake: Some(Handshake::new(PeerType::Server)),
            limits: ChunkTracker::new(limits),
            deserializer: ChunkDeserializer::new(),
            serializer: ChunkSerializer::new(),
            max_chunk_size,
            outbound_chunk_size,
            app: None,
            flash_version: String::new(),
            publishing: false,
            peer_window: None,
            received: 0,
            received_at_last_ack: 0,
        }
    }

    /// Bytes the peer's unfinished messages announce: what the parser
    /// holds or has reserved for them.
    pub fn in_progress_bytes(&self) -> u64 {
        self.limits.in_progress_bytes()
    }

    /// Consumes bytes read from the socket. Replies are appended to `out`
    /// (to be written in order), relay-relevant happenings to `events`.
    pub fn handle_input(
        &mut self,
        bytes: &[u8],
        out: &mut Vec<u8>,
        events: &mut Vec<SessionEvent>,
    ) -> Result<(), ProtocolError> {
        self.limits
            .feed(bytes, &mut Vec::new())
            .map_err(|violation| match violation {
                Violation::ChunkSize { size: 0, .. } => ProtocolError::ZeroChunkSize,
                Violation::ChunkSize { size, limit } => ProtocolError::ChunkSize { size, limit },
                Violation::MessageSize { size, limit } => ProtocolError::BodySize { size, limit },
                other => ProtocolError::Limit(other),
            })?;
        let Some(handshake) = self.handshake.as_mut() else {
            return self.handle_chunks(bytes, out, events);
        };
        match handshake
            .process_bytes(bytes)
            .map_err(|e| ProtocolError::Handshake(e.to_string()))?
        {
            HandshakeProcessResult::InProgress { response_bytes } => {
                out.extend_from_slice(&response_bytes);
                Ok(())
            }
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => {
                out.extend_from_slice(&response_bytes);
                self.handshake = None;
                self.handle_chunks(&remaining_bytes, out, events)
            }
        }
    }

    fn handle_chunks(
        &mut self,
        bytes: &[u8],
        out: &mut Vec<u8>,
        events: &mut Vec<SessionEvent>,
    ) -> Result<(), ProtocolError> {
        self.count_received(bytes.len(), out)?;
        let mut input = bytes;
        loop {
            // rml_rtmp's parser does unchecked arithmetic on header fields, so
            // hostile headers can panic it; that must only end this connection.
            let deserializer = &mut self.deserializer;
            let next = catch_unwind(AssertUnwindSafe(|| deserializer.get_next_message(input)))
                .map_err(|_| ProtocolError::ParserPanic)?
                .map_err(|e| ProtocolError::Chunk(e.to_string()))?;
            input = &[];
            match next {
                Some(payload) => self.handle_message(payload, out, events)?,
                None => return Ok(()),
            }
        }
    }

    fn count_received(&mut self, n: usize, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        self.received += n as u64;
        if let Some(window) = self.peer_window
            && self.received - self.received_at_last_ack >= u64::from(window)
        {
            self.received_at_last_ack = self.received;
            // The sequence number is the byte count, wrapping at 32 bits.
            let ack = RtmpMessage::Acknowledgement {
                sequence_number: self.received as u32,
            };
            self.send(ack, 0, out)?;
        }
        Ok(())
    }

    fn handle_message(
        &mut self,
        payload: MessagePayload,
        out: &mut Vec<u8>,
        events: &mut Vec<SessionEvent>,
    ) -> Result<(), ProtocolError> {
        // Media takes the zero-copy path: the payload is forwarded as is.
        if let Some(kind) = TagKind::from_message_type(payload.type_id) {
            if self.publishing {
                events.push(SessionEvent::Media(Tag {
                    kind,
                    timestamp: payload.timestamp.value,
                    body: payload.data,
                }));
            }
            return Ok(());
        }

        let message = payload
            .to_rtmp_message()
            .map_err(|e| ProtocolError::Message(e.to_string()))?;
        match message {
            RtmpMessage::SetChunkSize { size } => {
                if size == 0 || size > self.max_chunk_size {
                    return Err(ProtocolError::ChunkSize {
                        size,
                        limit: self.max_chunk_size,
                    });
                }
                self.deserializer
                    .set_max_chunk_size(size as usize)
                    .map_err(|e| ProtocolError::Chunk(e.to_string()))?;
            }
            RtmpMessage::WindowAcknowledgement { size } => {
                self.peer_window = (size > 0).then_some(size);
            }
            RtmpMessage::UserControl {
                event_type: UserControlEventType::PingRequest,
                timestamp,
                ..
            } => {
                let pong = RtmpMessage::UserControl {
                    event_type: UserControlEventType::PingResponse,
                    stream_id: None,
                    buffer_length: None,
                    timestamp,
                };
                self.send(pong, 0, out)?;
            }
            RtmpMessage::Amf0Command {
                command_name,
                transaction_id,
                command_object,
                additional_arguments,
            } => self.handle_command(
                &command_name,
                transaction_id,
                command_object,
                additional_arguments,
                out,
                events,
            )?,
            // Acks, bandwidth hints, other user control events, aborts,
            // shared objects and aggregates carry nothing a relay needs.
            _ => {}
        }
        Ok(())
    }

    /// MediaMTX answers `connect` and `createStream`, acts on `publish` and
    /// `play`, and ignores every other command.
    fn handle_command(
        &mut self,
        name: &str,
        transaction_id: f64,
        command_object: Amf0Value,
        args: Vec<Amf0Value>,
        out: &mut Vec<u8>,
        events: &mut Vec<SessionEvent>,
    ) -> Result<(), ProtocolError> {
        match name {
            "connect" => self.connect(transaction_id, command_object, out),
            "createStream" => {
                self.require_connected(name)?;
                self.send_command(
                    "_result",
                    transaction_id,
                    vec![Amf0Value::Number(f64::from(STREAM_ID))],
                    0,
                    out,
                )
            }
            "publish" | "play" => {
                let app = self.require_connected(name)?;
                let Some(Amf0Value::Utf8String(stream)) = args.into_iter().next() else {
                    return Err(ProtocolError::BadArguments(name.to_owned()));
                };
                let path = path_name(app, &stream);
                let query = query_of(app, &stream);
                events.push(if name == "publish" {
                    SessionEvent::PublishRequested { path, query }
                } else {
                    SessionEvent::PlayRequested { path, query }
                });
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn require_connected(&self, command: &str) -> Result<&str, ProtocolError> {
        self.app
            .as_deref()
            .ok_or_else(|| ProtocolError::NotConnected(command.to_owned()))
    }

    fn connect(
        &mut self,
        transaction_id: f64,
        command_object: Amf0Value,
        out: &mut Vec<u8>,
    ) -> Result<(), ProtocolError> {
        let mut properties = command_object
            .get_object_properties()
            .ok_or_else(|| ProtocolError::BadArguments("connect".to_owned()))?;
        let Some(Amf0Value::Utf8String(app)) = properties.remove("app") else {
            return Err(ProtocolError::BadArguments("connect".to_owned()));
        };
        self.app = Some(app);
        if let Some(Amf0Value::Utf8String(version)) = properties.remove("flashVer") {
            self.flash_version = version;
        }

        self.send(
            RtmpMessage::WindowAcknowledgement {
                size: WINDOW_ACK_SIZE,
            },
            0,
            out,
        )?;
        self.send(
            RtmpMessage::SetPeerBandwidth {
                size: WINDOW_ACK_SIZE,
                limit_type: PeerBandwidthLimitType::Dynamic,
            },
            0,
            out,
        )?;
        let packet = self
            .serializer
            .set_max_chunk_size(self.outbound_chunk_size, RtmpTimestamp::new(0))
            .map_err(|e| ProtocolError::Message(e.to_string()))?;
        out.extend_from_slice(&packet.bytes);

        let server = HashMap::from([
            ("fmsVer".to_owned(), string("LNX 9,0,124,2")),
            ("capabilities".to_owned(), Amf0Value::Number(31.0)),
        ]);
        let mut status = status_object("status", "NetConnection.Connect.Success", "Connection succeeded.");
        status.insert("objectEncoding".to_owned(), Amf0Value::Number(0.0));
        let result = RtmpMessage::Amf0Command {
            command_name: "_result".to_owned(),
            transaction_id,
            command_object: Amf0Value::Object(server),
            additional_arguments: vec![Amf0Value::Object(status)],
        };
        self.send(result, 0, out)
    }

    /// The client's `flashVer` (MediaMTX's `userAgent`).
    pub fn flash_version(&self) -> &str {
        &self.flash_version
    }

    /// Grants a `publish` (before the publisher's media is analysed, as
    /// MediaMTX does): from now on audio, video and data become events.
    pub fn accept_publish(&mut self, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        self.publishing = true;
        self.on_status("status", "NetStream.Publish.Start", "publish start", out)
    }

    /// Grants a `play` with MediaMTX's sequence: stream is recorded, stream
    /// begin, then Play.Reset, Play.Start, Data.Start and Play.PublishNotify.
    /// A refused `play` gets no answer at all: the connection just closes.
    pub fn accept_play(&mut self, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        self.user_control(UserControlEventType::StreamIsRecorded, out)?;
        self.user_control(UserControlEventType::StreamBegin, out)?;
        for (code, description) in [
            ("NetStream.Play.Reset", "play reset"),
            ("NetStream.Play.Start", "play start"),
            ("NetStream.Data.Start", "data start"),
            ("NetStream.Play.PublishNotify", "publish notify"),
        ] {
            self.on_status("status", code, description, out)?;
        }
        Ok(())
    }

    /// Serializes one tag of the stream towards this client.
    pub fn write_tag(&mut self, tag: &Tag, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        let payload = MessagePayload {
            timestamp: RtmpTimestamp::new(tag.timestamp),
            type_id: tag.kind.message_type(),
            message_stream_id: STREAM_ID,
            data: tag.body.clone(),
        };
        self.write_payload(&payload, out)
    }

    fn user_control(
        &mut self,
        event_type: UserControlEventType,
        out: &mut Vec<u8>,
    ) -> Result<(), ProtocolError> {
        let message = RtmpMessage::UserControl {
            event_type,
            stream_id: Some(STREAM_ID),
            buffer_length: None,
            timestamp: None,
        };
        self.send(message, 0, out)
    }

    fn on_status(
        &mut self,
        level: &str,
        code: &str,
        description: &str,
        out: &mut Vec<u8>,
    ) -> Result<(), ProtocolError> {
        let status = Amf0Value::Object(status_object(level, code, description));
        self.send_command("onStatus", 0.0, vec![status], STREAM_ID, out)
    }

    fn send_command(
        &mut self,
        name: &str,
        transaction_id: f64,
        args: Vec<Amf0Value>,
        stream_id: u32,
        out: &mut Vec<u8>,
    ) -> Result<(), ProtocolError> {
        let command = RtmpMessage::Amf0Command {
            command_name: name.to_owned(),
            transaction_id,
            command_object: Amf0Value::Null,
            additional_arguments: args,
        };
        self.send(command, stream_id, out)
    }

    fn send(&mut self, message: RtmpMessage, stream_id: u32, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        let payload = message
            .into_message_payload(RtmpTimestamp::new(0), stream_id)
            .map_err(|e| ProtocolError::Message(e.to_string()))?;
        self.write_payload(&payload, out)
    }

    fn write_payload(&mut self, payload: &MessagePayload, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        let packet = self
            .serializer
            .serialize(payload, false, false)
            .map_err(|e| ProtocolError::Message(e.to_string()))?;
        out.extend_from_slice(&packet.bytes);
        Ok(())
    }
}

fn string(s: &str) -> Amf0Value {
    Amf0Value::Utf8String(s.to_owned())
}

fn status_object(level: &str, code: &str, description: &str) -> HashMap<String, Amf0Value> {
    HashMap::from([
        ("level".to_owned(), string(level)),
        ("code".to_owned(), string(code)),
        ("description".to_owned(), string(description)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use rml_rtmp::sessions::{
        ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult, PublishRequestType,
    };

    /// Drives our session against rml_rtmp's client session in memory.
    struct Pair {
        server: Session,
        client: ClientSession,
        client_events: Vec<ClientSessionEvent>,
        server_events: Vec<SessionEvent>,
    }

    impl Pair {
        fn connected() -> Pair {
            let mut server = Session::new(crate::ServerConfig::default().chunk_limits(), 4096);
            let mut handshake = Handshake::new(PeerType::Client);
            let mut to_server = handshake.generate_outbound_p0_and_p1().unwrap();
            let mut leftover = Vec::new();
            while server.handshake.is_some() || !to_server.is_empty() {
                let mut to_client = Vec::new();
                server
                    .handle_input(&to_server, &mut to_client, &mut Vec::new())
                    .unwrap();
                to_server.clear();
                if to_client.is_empty() {
                    break;
                }
                match handshake.process_bytes(&to_client).unwrap() {
                    HandshakeProcessResult::InProgress { response_bytes } => to_server = response_bytes,
                    HandshakeProcessResult::Completed {
                        response_bytes,
                        remaining_bytes,
                    } => {
                        to_server = response_bytes;
                        leftover = remaining_bytes;
                    }
                }
            }
            assert!(server.handshake.is_none(), "handshake completes");
            let (client, _) = ClientSession::new(ClientSessionConfig::new()).unwrap();
            let mut pair = Pair {
                server,
                client,
                client_events: Vec::new(),
                server_events: Vec::new(),
            };
            pair.deliver_to_client(leftover);
            let request = pair.client.request_connection("live/x".to_owned()).unwrap();
            pair.exchange(vec![request]).unwrap();
            assert!(
                pair.client_events
                    .contains(&ClientSessionEvent::ConnectionRequestAccepted)
            );
            pair
        }

        /// Delivers client output to the server and server replies back.
        fn exchange(&mut self, results: Vec<ClientSessionResult>) -> Result<(), ProtocolError> {
            let mut to_server = Vec::new();
            for result in results {
                match result {
                    ClientSessionResult::OutboundResponse(p) => to_server.extend_from_slice(&p.bytes),
                    ClientSessionResult::RaisedEvent(e) => self.client_events.push(e),
                    ClientSessionResult::UnhandleableMessageReceived(_) => {}
                }
            }
            let mut to_client = Vec::new();
            self.server
                .handle_input(&to_server, &mut to_client, &mut self.server_events)?;
            self.deliver_to_client(to_client);
            Ok(())
        }

        fn deliver_to_client(&mut self, bytes: Vec<u8>) {
            if bytes.is_empty() {
                return;
            }
            let results = self.client.handle_input(&bytes).unwrap();
            self.exchange(results).unwrap();
        }
    }

    #[test]
    fn publish_flow_yields_path_and_media() {
        let mut pair = Pair::connected();
        let request = pair
            .client
            .request_publishing("in?key=1".to_owned(), PublishRequestType::Live)
            .unwrap();
        pair.exchange(vec![request]).unwrap();
        let Some(SessionEvent::PublishRequested { path, query }) = pair.server_events.pop() else {
            panic!("expected a publish request, got {:?}", pair.server_events);
        };
        assert_eq!((path.as_str(), query.as_str()), ("live/x/in", "key=1"));

        let mut out = Vec::new();
        pair.server.accept_publish(&mut out).unwrap();
        pair.deliver_to_client(out);
        assert!(
            pair.client_events
                .contains(&ClientSessionEvent::PublishRequestAccepted)
        );

        let video = pair
            .client
            .publish_video_data(
                Bytes::from_static(&[0x17, 1, 0, 0, 0]),
                RtmpTimestamp::new(40),
                false,
            )
            .unwrap();
        pair.exchange(vec![video]).unwrap();
        match pair.server_events.pop() {
            Some(SessionEvent::Media(tag)) => {
                assert_eq!((tag.kind, tag.timestamp), (TagKind::Video, 40));
            }
            other => panic!("expected media, got {other:?}"),
        }
    }

    #[test]
    fn accepted_play_starts_playback_and_unknown_commands_are_ignored() {
        let mut pair = Pair::connected();
        let mut serializer = ChunkSerializer::new();
        let unknown = RtmpMessage::Amf0Command {
            command_name: "getStreamLength".to_owned(),
            transaction_id: 3.0,
            command_object: Amf0Value::Null,
            additional_arguments: vec![],
        }
        .into_message_payload(RtmpTimestamp::new(0), 0)
        .unwrap();
        let packet = serializer.serialize(&unknown, false, false).unwrap();
        pair.server
            .handle_input(&packet.bytes, &mut Vec::new(), &mut Vec::new())
            .unwrap();
        let request = pair.client.request_playback("in".to_owned()).unwrap();
        pair.exchange(vec![request]).unwrap();
        assert!(matches!(
            pair.server_events.pop(),
            Some(SessionEvent::PlayRequested { .. })
        ));
        let mut out = Vec::new();
        pair.server.accept_play(&mut out).unwrap();
        pair.deliver_to_client(out);
        assert!(
            pair.client_events
                .contains(&ClientSessionEvent::PlaybackRequestAccepted)
        );
    }

    #[test]
    fn oversized_chunk_size_is_refused() {
        let mut pair = Pair::connected();
        let mut serializer = ChunkSerializer::new();
        let packet = serializer
            .set_max_chunk_size(0x0100_0000, RtmpTimestamp::new(0))
            .unwrap();
        let err = pair
            .server
            .handle_input(&packet.bytes, &mut Vec::new(), &mut Vec::new())
            .unwrap_err();
        assert!(
            matches!(
                err,
                ProtocolError::ChunkSize {
                    size: 0x0100_0000,
                    ..
                }
            ),
            "{err}"
        );
    }
}
