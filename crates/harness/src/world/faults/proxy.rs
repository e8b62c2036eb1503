//! A TCP proxy that misbehaves on request, put between a publisher and the
//! server or between the server and the ingest. It needs no privileges
//! (`tc netem` is not available in these kernels): it relays bytes itself
//! and, while told to, stops relaying them (a stall, sockets open),
//! relays them at a given rate (a throttle), in tiny writes (slices), or
//! ends every connection it holds (a cut: FIN, or RST).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How bytes are relayed right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Normal,
    /// Nothing is relayed; what arrives waits (in the kernel's buffers).
    Stalled,
    /// At most this many bytes per second, each way.
    Throttled {
        bytes_per_second: u64,
    },
    /// Written in pieces of at most this many bytes, each on its own.
    Sliced {
        bytes: usize,
    },
}

/// How a cut ends a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CutKind {
    /// An orderly close (FIN) of both sides.
    Fin,
    /// A reset (RST): the kernel discards what was not read yet.
    Rst,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct State {
    flow: Flow,
    /// Raised by each cut; a connection ends when it sees a new value.
    cuts: u64,
    cut_kind: CutKind,
}

pub(crate) struct FaultProxy {
    addr: SocketAddr,
    state: watch::Sender<State>,
    target: watch::Sender<String>,
    task: tokio::task::JoinHandle<()>,
}

/// Bytes read at once per direction.
const READ_CHUNK: usize = 16 * 1024;

impl FaultProxy {
    /// Listens on a free loopback port and relays each connection to
    /// `target` (`host:port`).
    pub(crate) async fn start(target: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (state, state_rx) = watch::channel(State {
            flow: Flow::Normal,
            cuts: 0,
            cut_kind: CutKind::Fin,
        });
        let (target, target_rx) = watch::channel(target.to_owned());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = target_rx.borrow().clone();
                tokio::spawn(relay(client, upstream, state_rx.clone()));
            }
        });
        Ok(Self {
            addr,
            state,
            target,
            task,
        })
    }

    /// `host:port` to connect to instead of the target.
    pub(crate) fn authority(&self) -> String {
        self.addr.to_string()
    }

    pub(crate) fn set_flow(&self, flow: Flow) {
        self.state.send_modify(|s| s.flow = flow);
    }

    /// Ends every connection the proxy holds now; later ones are relayed.
    pub(crate) fn cut(&self, kind: CutKind) {
        self.state.send_modify(|s| {
            s.cuts += 1;
            s.cut_kind = kind;
        });
    }

    /// Where new connections go (a restarted server on another port).
    pub(crate) fn retarget(&self, target: &str) {
        self.target.send_replace(target.to_owned());
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(client: TcpStream, upstream: String, state: watch::Receiver<State>) {
    let Ok(server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let born = state.borrow().cuts;
    let (mut client, mut server) = (client, server);
    let kind = {
        let (client_read, client_write) = client.split();
        let (server_read, server_write) = server.split();
        let mut watch_cut = state.clone();
        let cut = async move {
            let _ = watch_cut.wait_for(|s| s.cuts != born).await;
            Some(watch_cut.borrow().cut_kind)
        };
        let both = async {
            tokio::join!(
                pump(client_read, server_write, state.clone()),
                pump(server_read, client_write, state.clone()),
            );
            None
        };
        tokio::select! {
            kind = cut => kind,
            none = both => none,
        }
    };
    if kind == Some(CutKind::Rst) {
        // Closing with a zero linger sends RST instead of FIN.
        let _ = client.set_zero_linger();
        let _ = server.set_zero_linger();
    } else if kind == Some(CutKind::Fin) {
        let _ = client.shutdown().await;
        let _ = server.shutdown().await;
    }
}

/// Relays one direction, obeying the flow; ends when either side closes.
async fn pump(
    mut from: tokio::net::tcp::ReadHalf<'_>,
    mut to: tokio::net::tcp::WriteHalf<'_>,
    mut state: watch::Receiver<State>,
) {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        // A stall holds the bytes where they are: nothing is read.
        if state.wait_for(|s| s.flow != Flow::Stalled).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => n,
        };
        // Bytes read just before a stall began wait for its end too.
        if state.wait_for(|s| s.flow != Flow::Stalled).await.is_err() {
            return;
        }
        let flow = state.borrow().flow;
        let sent = match flow {
            Flow::Normal | Flow::Stalled => to.write_all(&buf[..n]).await,
            Flow::Sliced { bytes } => write_sliced(&mut to, &buf[..n], bytes.max(1)).await,
            Flow::Throttled { bytes_per_second } => {
                write_throttled(&mut to, &buf[..n], bytes_per_second.max(1)).await
            }
        };
        if sent.is_err() {
            return;
        }
    }
}

/// Writes in pieces of a tenth of a second's worth, each after its share
/// of time: pacing a rate is what a throttle is, not a wait for an event.
async fn write_throttled(
    to: &mut tokio::net::tcp::WriteHalf<'_>,
    bytes: &[u8],
    bytes_per_second: u64,
) -> std::io::Result<()> {
    let piece = (bytes_per_second / 10).max(1) as usize;
    for chunk in bytes.chunks(piece) {
        tokio::time::sleep(Duration::from_secs_f64(
            chunk.len() as f64 / bytes_per_second as f64,
        ))
        .await;
        to.write_all(chunk).await?;
    }
    Ok(())
}

async fn write_sliced(
    to: &mut tokio::net::tcp::WriteHalf<'_>,
    bytes: &[u8],
    slice: usize,
) -> std::io::Result<()> {
    for piece in bytes.chunks(slice) {
        to.write_all(piece).await?;
        to.flush().await?;
    }
    Ok(())
}
