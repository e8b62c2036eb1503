//! An RTMP publisher that sends FLV tags exactly as given, for streams no
//! encoder would produce on purpose (a codec switch mid-stream). Built on
//! rml_rtmp's client session; blocking, for a test's own thread.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult, PublishRequestType,
};
use rml_rtmp::time::RtmpTimestamp;

use crate::flv::FlvTag;

const AUDIO: u8 = 8;
const VIDEO: u8 = 9;

pub struct TagPublisher {
    socket: TcpStream,
    session: ClientSession,
    buf: Vec<u8>,
}

fn io_error(e: impl std::fmt::Debug) -> std::io::Error {
    std::io::Error::other(format!("{e:?}"))
}

impl TagPublisher {
    /// Connects to `authority` (host:port) and publishes `app`/`stream`.
    pub fn publish(authority: &str, app: &str, stream: &str) -> std::io::Result<Self> {
        let mut socket = TcpStream::connect(authority)?;
        socket.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut handshake = Handshake::new(PeerType::Client);
        socket.write_all(&handshake.generate_outbound_p0_and_p1().map_err(io_error)?)?;
        let mut buf = vec![0u8; 64 * 1024];
        let leftover = loop {
            let n = socket.read(&mut buf)?;
            if n == 0 {
                return Err(io_error("the server closed the connection during the handshake"));
            }
            match handshake.process_bytes(&buf[..n]).map_err(io_error)? {
                HandshakeProcessResult::InProgress { response_bytes } => socket.write_all(&response_bytes)?,
                HandshakeProcessResult::Completed {
                    response_bytes,
                    remaining_bytes,
                } => {
                    socket.write_all(&response_bytes)?;
                    break remaining_bytes;
                }
            }
        };
        let (session, initial) = ClientSession::new(ClientSessionConfig::new()).map_err(io_error)?;
        let mut publisher = Self { socket, session, buf };
        publisher.apply(initial)?;
        let results = publisher.session.handle_input(&leftover).map_err(io_error)?;
        publisher.apply(results)?;
        let connect = publisher
            .session
            .request_connection(app.to_owned())
            .map_err(io_error)?;
        publisher.apply(vec![connect])?;
        publisher.wait_for(|e| matches!(e, ClientSessionEvent::ConnectionRequestAccepted))?;
        let publish = publisher
            .session
            .request_publishing(stream.to_owned(), PublishRequestType::Live)
            .map_err(io_error)?;
        publisher.apply(vec![publish])?;
        publisher.wait_for(|e| matches!(e, ClientSessionEvent::PublishRequestAccepted))?;
        Ok(publisher)
    }

    /// Sends one audio or video tag (other tags are skipped).
    pub fn send(&mut self, tag: &FlvTag) -> std::io::Result<()> {
        let data = Bytes::copy_from_slice(&tag.body);
        let time = RtmpTimestamp::new(tag.timestamp);
        let result = match tag.kind {
            AUDIO => self.session.publish_audio_data(data, time, false),
            VIDEO => self.session.publish_video_data(data, time, false),
            _ => return Ok(()),
        }
        .map_err(io_error)?;
        self.apply(vec![result]).map(drop)
    }

    /// Ends the stream cleanly: no more data from us, then whatever the
    /// server still sends (acknowledgements) is read and discarded until it
    /// closes. Merely dropping a socket with unread input makes the kernel
    /// send a reset, and a reset can discard the last tags before the
    /// server has read them.
    pub fn finish(mut self) -> std::io::Result<()> {
        self.socket.shutdown(std::net::Shutdown::Write)?;
        while self.socket.read(&mut self.buf)? > 0 {}
        Ok(())
    }

    fn apply(&mut self, results: Vec<ClientSessionResult>) -> std::io::Result<Vec<ClientSessionEvent>> {
        let mut events = Vec::new();
        for result in results {
            match result {
                ClientSessionResult::OutboundResponse(packet) => self.socket.write_all(&packet.bytes)?,
                ClientSessionResult::RaisedEvent(event) => events.push(event),
                ClientSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        Ok(events)
    }

    fn wait_for(&mut self, wanted: impl Fn(&ClientSessionEvent) -> bool) -> std::io::Result<()> {
        loop {
            let n = self.socket.read(&mut self.buf)?;
            if n == 0 {
                return Err(io_error("the server closed the connection"));
            }
            let results = self.session.handle_input(&self.buf[..n]).map_err(io_error)?;
            if self.apply(results)?.iter().any(&wanted) {
                return Ok(());
            }
        }
    }
}
