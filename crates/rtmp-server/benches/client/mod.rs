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

pub fn video(sequence: u64, key: bool, size: usize) -> Bytes {
    let mut payload = vec![if key { 0x17 } else { 0x27 }, 0x01, 0, 0, 0];
    payload.extend_from_slice(&sequence.to_be_bytes());
    payload.resize(size, 0xab);
    Bytes::from(payload)
}

pub fn sequence_of(data: &Bytes) -> u64 {
    u64::from_be_bytes(data[5..13].try_into().unwrap())
}

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
        // An AVC sequence header, so the path has a video track.
        client.publish_video(Bytes::from_static(&[0x17, 0x00, 0, 0, 0, 1, 0x42, 0, 0x1e]), 0);
        client
    }

    /// Connects and starts playing `stream` in application `app`.
    pub fn reader(server: &RtmpServer, app: &str, stream: &str) -> Client {
        let mut client = Client::connect(server, app);
        let request = client.session.request_playback(stream.to_owned()).unwrap();
        client.apply(vec![request]);
        client.wait_for(|e| matches!(e, ClientSessionEvent::PlaybackRequestAccepted));
        client
    }
}
