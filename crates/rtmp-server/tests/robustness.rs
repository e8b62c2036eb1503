//! Hostile or broken clients lose their own connection and nothing else:
//! a stream in progress keeps flowing to its reader.

mod common;

use common::*;
use rml_rtmp::chunk_io::ChunkSerializer;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::messages::RtmpMessage;
use rml_rtmp::rml_amf0::Amf0Value;
use rml_rtmp::time::RtmpTimestamp;
use rstest::rstest;
use std::collections::HashMap;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, Clone, Copy)]
enum BadClient {
    Garbage,
    TruncatedHandshake,
    AbsurdChunkSize,
    ZeroChunkSize,
    HugeMessageThenHangUp,
    UnknownCommand,
    PlayBeforeConnect,
}

impl BadClient {
    /// What the server logs when it closes this client.
    fn closing_reason(self) -> &'static str {
        match self {
            Self::Garbage => "closed: handshake failed",
            Self::TruncatedHandshake => "closed: EOF",
            // MediaMTX's limit (gortmplib): 10 MiB.
            Self::HugeMessageThenHangUp => "closed: body size (16777215) exceeds maximum (10485760)",
            Self::AbsurdChunkSize | Self::ZeroChunkSize => "closed: chunk size",
            // MediaMTX ignores commands it does not know; the client then
            // hangs up.
            Self::UnknownCommand => "closed: EOF",
            Self::PlayBeforeConnect => "closed: command 'play' is not valid before 'connect'",
        }
    }

    async fn misbehave(self, addr: SocketAddr) {
        let mut socket = TcpStream::connect(addr).await.unwrap();
        match self {
            Self::Garbage => {
                let _ = socket.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
                drain(&mut socket).await;
            }
            Self::TruncatedHandshake => {
                let mut c0c1 = Handshake::new(PeerType::Client)
                    .generate_outbound_p0_and_p1()
                    .unwrap();
                c0c1.truncate(700);
                socket.write_all(&c0c1).await.unwrap();
                hang_up(&mut socket).await;
            }
            Self::AbsurdChunkSize | Self::ZeroChunkSize => {
                handshake(&mut socket).await;
                let size = if matches!(self, Self::ZeroChunkSize) {
                    0
                } else {
                    0x7fff_ffff
                };
                let message = RtmpMessage::SetChunkSize { size };
                send(&mut socket, &mut ChunkSerializer::new(), message, 0).await;
                drain(&mut socket).await;
            }
            Self::HugeMessageThenHangUp => {
                handshake(&mut socket).await;
                // Chunk header type 0 on csid 3: length 0xFFFFFF, command.
                let header = [0x03, 0, 0, 0, 0xff, 0xff, 0xff, 20, 0, 0, 0, 0];
                socket.write_all(&header).await.unwrap();
                socket.write_all(b"\x02\x00\x07connect").await.unwrap();
                hang_up(&mut socket).await;
            }
            Self::UnknownCommand => {
                handshake(&mut socket).await;
                let mut serializer = ChunkSerializer::new();
                send(&mut socket, &mut serializer, connect_message(), 0).await;
                let command = RtmpMessage::Amf0Command {
                    command_name: "hackTheServer".to_owned(),
                    transaction_id: 2.0,
                    command_object: Amf0Value::Null,
                    additional_arguments: vec![],
                };
                send(&mut socket, &mut serializer, command, 0).await;
                hang_up(&mut socket).await;
            }
            Self::PlayBeforeConnect => {
                handshake(&mut socket).await;
                let play = RtmpMessage::Amf0Command {
                    command_name: "play".to_owned(),
                    transaction_id: 0.0,
                    command_object: Amf0Value::Null,
                    additional_arguments: vec![Amf0Value::Utf8String("in".to_owned())],
                };
                send(&mut socket, &mut ChunkSerializer::new(), play, 1).await;
                drain(&mut socket).await;
            }
        }
    }
}

async fn handshake(socket: &mut TcpStream) {
    let mut handshake = Handshake::new(PeerType::Client);
    socket
        .write_all(&handshake.generate_outbound_p0_and_p1().unwrap())
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    loop {
        let n = socket.read(&mut buf).await.unwrap();
        assert!(n > 0, "server hung up during handshake");
        match handshake.process_bytes(&buf[..n]).unwrap() {
            HandshakeProcessResult::InProgress { response_bytes } => {
                socket.write_all(&response_bytes).await.unwrap();
            }
            HandshakeProcessResult::Completed { response_bytes, .. } => {
                socket.write_all(&response_bytes).await.unwrap();
                return;
            }
        }
    }
}

fn connect_message() -> RtmpMessage {
    RtmpMessage::Amf0Command {
        command_name: "connect".to_owned(),
        transaction_id: 1.0,
        command_object: Amf0Value::Object(HashMap::from([(
            "app".to_owned(),
            Amf0Value::Utf8String("live/x".to_owned()),
        )])),
        additional_arguments: vec![],
    }
}

async fn send(
    socket: &mut TcpStream,
    serializer: &mut ChunkSerializer,
    message: RtmpMessage,
    stream_id: u32,
) {
    let payload = message
        .into_message_payload(RtmpTimestamp::new(0), stream_id)
        .unwrap();
    let packet = serializer.serialize(&payload, false, false).unwrap();
    socket.write_all(&packet.bytes).await.unwrap();
}

/// Reads until the server closes the connection.
/// Hangs up cleanly: sends FIN, then reads what the server already sent
/// until it closes too. Closing with unread data would make the kernel send a
/// reset, and the server would log that instead of the end of the stream.
async fn hang_up(socket: &mut TcpStream) {
    socket.shutdown().await.unwrap();
    drain(socket).await;
}

async fn drain(socket: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    let read_all = async { while socket.read(&mut buf).await.is_ok_and(|n| n > 0) {} };
    tokio::time::timeout(DEADLINE, read_all)
        .await
        .expect("server closes a misbehaving connection");
}

#[rstest]
#[case::garbage_bytes(BadClient::Garbage)]
#[case::truncated_handshake(BadClient::TruncatedHandshake)]
#[case::absurd_chunk_size(BadClient::AbsurdChunkSize)]
#[case::zero_chunk_size(BadClient::ZeroChunkSize)]
#[case::huge_message_length(BadClient::HugeMessageThenHangUp)]
#[case::unknown_command(BadClient::UnknownCommand)]
#[case::play_before_connect(BadClient::PlayBeforeConnect)]
#[tokio::test]
async fn bad_client_does_not_disturb_stream_in_progress(#[case] bad: BadClient) {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(dir.path(), 3, 30).await;
    let server = start_server();
    let mut log = LogWatch::new(&server);
    let url = server.url("live/steady/in");

    let publisher = HeldPublisher::start(&file, &url).await;
    server.wait_for_stream("live/steady/in", DEADLINE).await.unwrap();
    let reader = ffmpeg_decoder(&url).spawn().unwrap();
    log.wait_for(&["is reading from path 'live/steady/in'"]).await;

    bad.misbehave(server.local_addr()).await;
    log.wait_for(&[bad.closing_reason()]).await;

    assert!(publisher.release().await.success());
    if let Err(e) = read_cleanly(reader).await {
        panic!("the reader was disturbed by {bad:?}: {e}");
    }
    log.wait_for(&["closed: terminated"]).await;
}

/// The process's resident memory, from the kernel.
fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// A client that announces a 10-MiB message (MediaMTX's largest) with a
/// 10-MiB chunk size and sends `send` bytes of it, then holds the
/// connection: what would pin memory if nothing bounded it.
async fn hold_an_unfinished_message(addr: SocketAddr, send: usize) -> TcpStream {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    handshake(&mut socket).await;
    let mut serializer = ChunkSerializer::new();
    let size = RtmpMessage::SetChunkSize { size: 10 << 20 };
    send_message(&mut socket, &mut serializer, size).await;
    let length = ((10u32 << 20) - 1).to_be_bytes();
    let header = [0x04, 0, 0, 0, length[1], length[2], length[3], 9, 1, 0, 0, 0];
    let _ = socket.write_all(&header).await;
    let _ = socket.write_all(&vec![0x5a; send]).await;
    socket
}

async fn send_message(socket: &mut TcpStream, serializer: &mut ChunkSerializer, message: RtmpMessage) {
    let payload = message.into_message_payload(RtmpTimestamp::new(0), 0).unwrap();
    let packet = serializer.serialize(&payload, false, false).unwrap();
    socket.write_all(&packet.bytes).await.unwrap();
}

/// 200 clients each holding most of a 10-MiB message next to a live
/// stream: the server's budget for unfinished messages closes all but a
/// few, its memory stays within 64 MiB of what it was, and the stream
/// decodes cleanly to its end.
#[tokio::test]
async fn two_hundred_hostile_clients_cannot_grow_the_server_s_memory() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(dir.path(), 3, 30).await;
    let server = start_server();
    let mut log = LogWatch::new(&server);
    let url = server.url("live/steady/in");
    let publisher = HeldPublisher::start(&file, &url).await;
    server.wait_for_stream("live/steady/in", DEADLINE).await.unwrap();
    let reader = ffmpeg_decoder(&url).spawn().unwrap();
    log.wait_for(&["is reading from path 'live/steady/in'"]).await;
    let before = resident_kib();

    let mut held = Vec::new();
    for _ in 0..200 {
        held.push(hold_an_unfinished_message(server.local_addr(), 8 << 20).await);
    }
    // The budget's refusals are the server's word that it has seen them.
    log.wait_for(&["the server holds at most"]).await;
    let peak = resident_kib();
    let grown_mib = peak.saturating_sub(before) / 1024;
    eprintln!("server process RSS {before} KiB -> {peak} KiB with 200 hostile clients (+{grown_mib} MiB)");
    assert!(
        grown_mib < 64,
        "memory grew by {grown_mib} MiB with 200 hostile clients"
    );

    assert!(publisher.release().await.success());
    if let Err(e) = read_cleanly(reader).await {
        panic!("the stream was disturbed by the hostile clients: {e}");
    }
    drop(held);
}
