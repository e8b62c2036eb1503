//! Relay overhead per message, end to end over loopback: an rml_rtmp client
//! publishes one video message, another rml_rtmp client reads it back, and
//! the time between the write and the reader decoding it is recorded.
//! Target: p99 < 1 ms. Run with `cargo bench -p rtmp-server --bench relay`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult, PublishRequestType,
};
use rml_rtmp::time::RtmpTimestamp;
use rtmp_server::{RtmpServer, ServerConfig};

const WARMUP: usize = 500;
const MESSAGES: usize = 5_000;
/// A typical inter frame at ~1.5 Mbit/s and 30 fps.
const FRAME_BYTES: usize = 6_000;

struct Client {
    socket: TcpStream,
    session: ClientSession,
    buf: Vec<u8>,
}

impl Client {
    fn connect(server: &RtmpServer, app: &str) -> Client {
        let mut socket = TcpStream::connect(server.local_addr()).expect("connect");
        socket.set_nodelay(true).unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut handshake = Handshake::new(PeerType::Client);
        socket
            .write_all(&handshake.generate_outbound_p0_and_p1().unwrap())
            .unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let leftover = loop {
            let n = socket.read(&mut buf).expect("handshake read");
            match handshake.process_bytes(&buf[..n]).expect("handshake") {
                HandshakeProcessResult::InProgress { response_bytes } => {
                    socket.write_all(&response_bytes).unwrap()
                }
                HandshakeProcessResult::Completed {
                    response_bytes,
                    remaining_bytes,
                } => {
                    socket.write_all(&response_bytes).unwrap();
                    break remaining_bytes;
                }
            }
        };
        let (session, _) = ClientSession::new(ClientSessionConfig::new()).unwrap();
        let mut client = Client { socket, session, buf };
        let results = client.session.handle_input(&leftover).unwrap();
        client.apply(results);
        let request = client.session.request_connection(app.to_owned()).unwrap();
        client.apply(vec![request]);
        client.wait_for(|e| matches!(e, ClientSessionEvent::ConnectionRequestAccepted));
        client
    }

    /// Sends outbound packets, returns raised events.
    fn apply(&mut self, results: Vec<ClientSessionResult>) -> Vec<ClientSessionEvent> {
        let mut events = Vec::new();
        for result in results {
            match result {
                ClientSessionResult::OutboundResponse(packet) => {
                    self.socket.write_all(&packet.bytes).unwrap()
                }
                ClientSessionResult::RaisedEvent(event) => events.push(event),
                ClientSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        events
    }

    fn wait_for(&mut self, mut wanted: impl FnMut(&ClientSessionEvent) -> bool) -> ClientSessionEvent {
        loop {
            let n = self.socket.read(&mut self.buf).expect("read");
            assert!(n > 0, "server closed the connection");
            let results = self.session.handle_input(&self.buf[..n]).expect("valid RTMP");
            if let Some(event) = self.apply(results).into_iter().find(|e| wanted(e)) {
                return event;
            }
        }
    }

    fn publish_video(&mut self, payload: Bytes, timestamp: u32) {
        let result = self
            .session
            .publish_video_data(payload, RtmpTimestamp::new(timestamp), false)
            .unwrap();
        self.apply(vec![result]);
    }
}

fn video(sequence: u64, key: bool) -> Bytes {
    let mut payload = vec![if key { 0x17 } else { 0x27 }, 0x01, 0, 0, 0];
    payload.extend_from_slice(&sequence.to_be_bytes());
    payload.resize(FRAME_BYTES, 0xab);
    Bytes::from(payload)
}

fn sequence_of(data: &Bytes) -> u64 {
    u64::from_be_bytes(data[5..13].try_into().unwrap())
}

fn main() {
    let server = RtmpServer::start(ServerConfig::default()).expect("server");
    let mut publisher = Client::connect(&server, "live/bench");
    let request = publisher
        .session
        .request_publishing("in".to_owned(), PublishRequestType::Live)
        .unwrap();
    publisher.apply(vec![request]);
    publisher.wait_for(|e| matches!(e, ClientSessionEvent::PublishRequestAccepted));
    publisher.publish_video(Bytes::from_static(&[0x17, 0x00, 0, 0, 0, 1, 0x42, 0, 0x1e]), 0);
    publisher.publish_video(video(0, true), 0);

    let mut reader = Client::connect(&server, "live/bench");
    let request = reader.session.request_playback("in".to_owned()).unwrap();
    reader.apply(vec![request]);
    reader.wait_for(|e| matches!(e, ClientSessionEvent::PlaybackRequestAccepted));

    let mut latencies = Vec::with_capacity(MESSAGES);
    for sequence in 1..=(WARMUP + MESSAGES) as u64 {
        let sent = Instant::now();
        publisher.publish_video(video(sequence, sequence % 60 == 0), sequence as u32 * 33);
        reader.wait_for(|e| matches!(e, ClientSessionEvent::VideoDataReceived { data, .. } if data.len() == FRAME_BYTES && sequence_of(data) == sequence));
        if sequence as usize > WARMUP {
            latencies.push(sent.elapsed());
        }
    }

    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "relay latency over {MESSAGES} messages of {FRAME_BYTES} B (publish write -> reader decoded): \
         p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        latencies[latencies.len() - 1]
    );
    let p99 = pct(0.99);
    println!(
        "target p99 < 1 ms: {}",
        if p99 < Duration::from_millis(1) {
            "met"
        } else {
            "MISSED"
        }
    );
    server.shutdown();
}
