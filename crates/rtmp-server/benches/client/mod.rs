// Each bench uses a different part of this module.
#![allow(dead_code)]

//! An rml_rtmp client for the benches: connect, publish, play.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult, PublishRequestType,
};
use rml_rtmp::time::RtmpTimestamp;
use rtmp_server::RtmpServer;

pub struct Client {
    pub socket: TcpStream,
    pub session: ClientSession,
    pub buf: Vec<u8>,
}

impl Client {
    pub fn connect(server: &RtmpServer, app: &str) -> Client {
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
    pub fn apply(&mut self, results: Vec<ClientSessionResult>) -> Vec<ClientSessionEvent> {
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

    pub fn wait_for(&mut self, mut wanted: impl FnMut(&ClientSessionEvent) -> bool) -> ClientSessionEvent {
        loop {
            let n = self.socket.read(&mut self.buf).expect("read");
            assert!(n > 0, "server closed the connection");
            let results = self.session.handle_input(&self.buf[..n]).expect("valid RTMP");
            if let Some(event) = self.apply(results).into_iter().find(|e| wanted(e)) {
                return event;
            }
        }
    }

    pub fn publish_video(&mut self, payload: Bytes, timestamp: u32) {
        let result = self
            .session
            .publish_video_data(payload, RtmpTimestamp::new(timestamp), false)
            .unwrap();
        self.apply(vec![result]);
    }
}

/// SPS and PPS of a 1280x720 x264 stream (no B-frames, so the server's DTS
/// is the PTS).
const SPS: &[u8] = &[
    0x67, 0x64, 0x00, 0x1f, 0xac, 0xb4, 0x02, 0x80, 0x2d, 0xd8, 0x08, 0x80, 0x00, 0x00, 0x03, 0x00, 0x80,
    0x00, 0x00, 0x1e, 0x47, 0x8c, 0x19, 0x50,
];
const PPS: &[u8] = &[0x68, 0xef, 0x3c, 0xb0];

/// An AVC sequence header for [`SPS`] and [`PPS`].
pub fn sequence_header() -> Bytes {
    let mut payload = vec![0x17, 0x00, 0, 0, 0, 1, SPS[1], SPS[2], SPS[3], 0xff, 0xe1];
    payload.extend_from_slice(&(SPS.len() as u16).to_be_bytes());
    payload.extend_from_slice(SPS);
    payload.push(1);
    payload.extend_from_slice(&(PPS.len() as u16).to_be_bytes());
    payload.extend_from_slice(PPS);
    Bytes::from(payload)
}

/// A video tag of `size` bytes: one slice NAL unit (IDR or not) that
/// carries `sequence` right after its header.
pub fn video(sequence: u64, key: bool, size: usize) -> Bytes {
    let mut nalu = vec![if key { 0x65 } else { 0x41 }];
    nalu.extend_from_slice(&sequence.to_be_bytes());
    nalu.resize(size.saturating_sub(9).max(9), 0xab);
    let mut payload = vec![if key { 0x17 } else { 0x27 }, 0x01, 0, 0, 0];
    payload.extend_from_slice(&(nalu.len() as u32).to_be_bytes());
    payload.extend_from_slice(&nalu);
    Bytes::from(payload)
}

/// The sequence a reader's video tag carries: in its last NAL unit (the
/// server puts SPS and PPS in front of IDRs).
pub fn sequence_of(data: &Bytes) -> u64 {
    let mut at = 5;
    let mut last = at;
    while at + 4 <= data.len() {
        let len = u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        last = at + 4;
        at += 4 + len;
    }
    u64::from_be_bytes(data[last + 1..last + 9].try_into().unwrap())
}

/// Media time the server analyses before a path is readable.
pub const ANALYSIS_MS: u32 = 2000;

impl Client {
    /// Connects and starts publishing `stream` in application `app`.
    pub fn publisher(server: &RtmpServer, app: &str, stream: &str) -> Client {
        let mut client = Client::connect(server, app);
        let request = client
            .session
            .request_publishing(stream.to_owned(), PublishRequestType::Live)
            .unwrap();
        client.apply(vec![request]);
        client.wait_for(|e| matches!(e, ClientSessionEvent::PublishRequestAccepted));
        // An AVC sequence header, so the path has a video track, then
        // frames up to the analysis period, so the path becomes readable.
        client.publish_video(sequence_header(), 0);
        for frame in 0..=(ANALYSIS_MS / 33 + 1) {
            client.publish_video(video(0, frame == 0, 200), frame * 33);
        }
        client
    }

    /// Connects and starts playing `stream` in application `app`, once the
    /// server has analysed the publisher and made the path readable.
    pub fn reader(server: &RtmpServer, app: &str, stream: &str) -> Client {
        let path = format!("{app}/{stream}");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime
            .block_on(server.wait_for_stream(&path, Duration::from_secs(30)))
            .expect("the path becomes readable");
        let mut client = Client::connect(server, app);
        let request = client.session.request_playback(stream.to_owned()).unwrap();
        client.apply(vec![request]);
        client.wait_for(|e| matches!(e, ClientSessionEvent::PlaybackRequestAccepted));
        client
    }
}
