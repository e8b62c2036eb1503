//! An RTMP server that plays a script to each reader, for streams no real
//! server would relay: a codec switch mid-stream (MediaMTX closes such a
//! publisher instead of passing it on), and the hostile servers an ingest
//! must survive. It answers `connect`, `createStream` and `play` like a
//! plain server, then does what the script says.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use rml_rtmp::chunk_io::{ChunkDeserializer, ChunkSerializer};
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::messages::{MessagePayload, RtmpMessage};
use rml_rtmp::rml_amf0::Amf0Value;
use rml_rtmp::time::RtmpTimestamp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::flv::FlvTag;

/// What the server does once a reader's `play` is accepted.
#[derive(Debug, Clone)]
pub enum Script {
    /// Sends these tags, `speed` times faster than their timestamps say,
    /// then closes.
    Tags { tags: Vec<FlvTag>, speed: u32 },
    /// Sends these bytes as they are, forever repeated, without framing:
    /// what a broken or hostile server does.
    Raw(Vec<u8>),
    /// Sends nothing more but keeps the connection open.
    Silence,
}

pub struct ScriptedServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl ScriptedServer {
    /// Listens on a free loopback port; each connection plays `script`.
    pub async fn start(script: Script) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, script.clone()));
            }
        });
        Ok(Self { addr, task })
    }

    pub fn url(&self, path: &str) -> String {
        format!("rtmp://{}/{path}", self.addr)
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut socket: TcpStream, script: Script) {
    let _ = socket.set_nodelay(true);
    let Ok(mut session) = accept_play(&mut socket).await else {
        return;
    };
    match script {
        Script::Tags { tags, speed } => {
            let start = tokio::time::Instant::now();
            let first = tags.first().map_or(0, |t| t.timestamp);
            for tag in tags.iter().filter(|t| matches!(t.kind, 8 | 9 | 18)) {
                let offset = Duration::from_millis(u64::from(tag.timestamp.saturating_sub(first)));
                // Pacing a media clock, not waiting for an event.
                tokio::time::sleep_until(start + offset / speed.max(1)).await;
                let payload = MessagePayload {
                    timestamp: RtmpTimestamp::new(tag.timestamp),
                    type_id: tag.kind,
                    message_stream_id: 1,
                    data: Bytes::copy_from_slice(&tag.body),
                };
                let Ok(packet) = session.serializer.serialize(&payload, false, false) else {
                    return;
                };
                if socket.write_all(&packet.bytes).await.is_err() {
                    return;
                }
            }
            let _ = socket.shutdown().await;
            let mut buf = [0u8; 4096];
            while socket.read(&mut buf).await.is_ok_and(|n| n > 0) {}
        }
        Script::Raw(bytes) => while !bytes.is_empty() && socket.write_all(&bytes).await.is_ok() {},
        Script::Silence => {
            let mut buf = [0u8; 4096];
            while socket.read(&mut buf).await.is_ok_and(|n| n > 0) {}
        }
    }
}

struct Session {
    serializer: ChunkSerializer,
}

/// Handshake, then answers commands until `play`, which it accepts.
async fn accept_play(socket: &mut TcpStream) -> Result<Session, ()> {
    let mut handshake = Handshake::new(PeerType::Server);
    let mut buf = vec![0u8; 64 * 1024];
    let leftover = loop {
        let n = socket.read(&mut buf).await.map_err(drop)?;
        if n == 0 {
            return Err(());
        }
        match handshake.process_bytes(&buf[..n]).map_err(drop)? {
            HandshakeProcessResult::InProgress { response_bytes } => {
                socket.write_all(&response_bytes).await.map_err(drop)?
            }
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => {
                socket.write_all(&response_bytes).await.map_err(drop)?;
                break remaining_bytes;
            }
        }
    };
    let mut session = Session {
        serializer: ChunkSerializer::new(),
    };
    let mut deserializer = ChunkDeserializer::new();
    let mut input = leftover;
    loop {
        while let Some(payload) = deserializer.get_next_message(&input).map_err(drop)? {
            input.clear();
            let Ok(message) = payload.to_rtmp_message() else {
                continue;
            };
            match message {
                RtmpMessage::SetChunkSize { size } => {
                    deserializer.set_max_chunk_size(size as usize).map_err(drop)?;
                }
                RtmpMessage::Amf0Command {
                    command_name,
                    transaction_id,
                    ..
                } => match command_name.as_str() {
                    "connect" => {
                        let status = status("status", "NetConnection.Connect.Success");
                        send_command(socket, &mut session, "_result", transaction_id, vec![status], 0)
                            .await?;
                    }
                    "createStream" => {
                        let id = Amf0Value::Number(1.0);
                        send_command(socket, &mut session, "_result", transaction_id, vec![id], 0).await?;
                    }
                    "play" => {
                        let start = status("status", "NetStream.Play.Start");
                        send_command(socket, &mut session, "onStatus", 0.0, vec![start], 1).await?;
                        return Ok(session);
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        let n = socket.read(&mut buf).await.map_err(drop)?;
        if n == 0 {
            return Err(());
        }
        input = buf[..n].to_vec();
    }
}

fn status(level: &str, code: &str) -> Amf0Value {
    Amf0Value::Object(std::collections::HashMap::from([
        ("level".to_owned(), Amf0Value::Utf8String(level.to_owned())),
        ("code".to_owned(), Amf0Value::Utf8String(code.to_owned())),
        ("description".to_owned(), Amf0Value::Utf8String(code.to_owned())),
    ]))
}

async fn send_command(
    socket: &mut TcpStream,
    session: &mut Session,
    name: &str,
    transaction: f64,
    args: Vec<Amf0Value>,
    stream_id: u32,
) -> Result<(), ()> {
    let message = RtmpMessage::Amf0Command {
        command_name: name.to_owned(),
        transaction_id: transaction,
        command_object: Amf0Value::Null,
        additional_arguments: args,
    };
    let payload = message
        .into_message_payload(RtmpTimestamp::new(0), stream_id)
        .map_err(drop)?;
    let packet = session
        .serializer
        .serialize(&payload, false, false)
        .map_err(drop)?;
    socket.write_all(&packet.bytes).await.map_err(drop)
}
