//! A publisher's way to the server that lingers at the end: bytes pass both
//! ways untouched, but when the publisher hangs up, the server is told only
//! once the relay is released.
//!
//! Why: MediaMTX closes every reader of a path the moment its publisher's
//! connection ends, and discards what it had queued for them (its 512-frame
//! per-reader queue; the close can even be a reset that takes what the
//! kernel had not sent yet). A publisher that leaves right after its last
//! frame, as ffmpeg does, so races its own last frames to the readers. A
//! test that must see every frame arrive publishes through this relay and
//! releases it once the reader has the last one (the ingest says so): the
//! end of a stream is then the same on every server.
//!
//! ```text
//!  publisher ──► relay ──► server ──► reader
//!     FIN ─────► held ···· (reader has the last frame) ··· release ──► FIN
//! ```
//!
//! A release that never comes ends the wait after [`MAX_LINGER`], under
//! MediaMTX's 10-s read timeout, so a server never closes the publisher
//! for silence first.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The longest the server's side is held open after the publisher left.
pub(crate) const MAX_LINGER: Duration = Duration::from_secs(8);

pub struct LingeringRelay {
    addr: SocketAddr,
    released: watch::Sender<bool>,
    publisher_left: watch::Receiver<u32>,
    /// Connections relayed so far, and those still open.
    connections: watch::Receiver<(u32, u32)>,
    task: tokio::task::JoinHandle<()>,
}

impl LingeringRelay {
    /// Listens on a free loopback port; each connection is relayed to
    /// `server` (`host:port`).
    pub async fn start(server: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (released, released_rx) = watch::channel(false);
        let (left_tx, publisher_left) = watch::channel(0u32);
        let (open_tx, connections) = watch::channel((0u32, 0u32));
        let server = server.to_owned();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (server, released, left) = (server.clone(), released_rx.clone(), left_tx.clone());
                open_tx.send_modify(|(all, open)| {
                    *all += 1;
                    *open += 1;
                });
                let open_tx = open_tx.clone();
                tokio::spawn(async move {
                    relay(client, &server, released, &left).await;
                    open_tx.send_modify(|(_, open)| *open -= 1);
                });
            }
        });
        Ok(Self {
            addr,
            released,
            publisher_left,
            connections,
            task,
        })
    }

    /// `127.0.0.1:<port>`, to put in the publisher's URL.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }

    /// Lets held closes through, now and from now on.
    pub fn release(&self) {
        self.released.send_replace(true);
    }

    /// Resolves once a connection was relayed and none is open any more:
    /// the server has been told of every end.
    pub async fn closed(&self) {
        let mut connections = self.connections.clone();
        let _ = connections.wait_for(|(all, open)| *all > 0 && *open == 0).await;
    }

    /// Resolves once a publisher has hung up (its close is then held).
    pub async fn publisher_left(&self) {
        let mut left = self.publisher_left.clone();
        let _ = left.wait_for(|n| *n > 0).await;
    }
}

impl Drop for LingeringRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(client: TcpStream, server: &str, released: watch::Receiver<bool>, left: &watch::Sender<u32>) {
    let Ok(upstream) = TcpStream::connect(server).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = upstream.into_split();
    let towards_server = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match from_client.read(&mut buf).await {
                Ok(n) if n > 0 => {
                    if to_server.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
                // The publisher is done: hold the server's side open until
                // released (or for at most MAX_LINGER).
                _ => {
                    left.send_modify(|n| *n += 1);
                    let mut released = released.clone();
                    let _ = tokio::time::timeout(MAX_LINGER, released.wait_for(|r| *r)).await;
                    let _ = to_server.shutdown().await;
                    return;
                }
            }
        }
    };
    // What the server sends (acknowledgements, a close) goes back while the
    // publisher is there, and is read and dropped after it left, so the
    // server never sees its writes pile up.
    let towards_client = async {
        let mut buf = vec![0u8; 16 * 1024];
        let mut client_gone = false;
        while let Ok(n) = from_server.read(&mut buf).await {
            if n == 0 {
                break;
            }
            if !client_gone && to_client.write_all(&buf[..n]).await.is_err() {
                client_gone = true;
            }
        }
        let _ = to_client.shutdown().await;
    };
    // The server's close ends the relay; so does the publisher's end once
    // released (the server then closes in turn, but need not be waited for).
    tokio::select! {
        () = towards_server => {}
        () = towards_client => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that records what it read and when its peer closed.
    async fn recording_server() -> (String, tokio::sync::oneshot::Receiver<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut peer, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            peer.read_to_end(&mut got).await.unwrap();
            let _ = tx.send(got);
        });
        (addr, rx)
    }

    #[tokio::test]
    async fn the_server_learns_of_the_end_only_once_released() {
        let (server, mut closed) = recording_server().await;
        let relay = LingeringRelay::start(&server).await.unwrap();
        let mut publisher = TcpStream::connect(relay.authority()).await.unwrap();
        publisher.write_all(b"the last frames").await.unwrap();
        drop(publisher);
        relay.publisher_left().await;
        // Held: the server has not seen the end. (Not a wait for an event:
        // this checks that none comes while the relay holds.)
        let early = tokio::time::timeout(Duration::from_millis(300), &mut closed).await;
        assert!(early.is_err(), "the server saw the end before the release");
        relay.release();
        let got = tokio::time::timeout(Duration::from_secs(5), closed)
            .await
            .expect("the end passes once released")
            .unwrap();
        assert_eq!(got, b"the last frames");
        tokio::time::timeout(Duration::from_secs(5), relay.closed())
            .await
            .expect("the relay is done once both sides are");
    }

    #[tokio::test]
    async fn after_a_release_an_end_passes_at_once() {
        let (server, closed) = recording_server().await;
        let relay = LingeringRelay::start(&server).await.unwrap();
        relay.release();
        let mut publisher = TcpStream::connect(relay.authority()).await.unwrap();
        publisher.write_all(b"abc").await.unwrap();
        drop(publisher);
        let got = tokio::time::timeout(Duration::from_secs(5), closed)
            .await
            .expect("nothing to hold")
            .unwrap();
        assert_eq!(got, b"abc");
    }
}
