//! The server handle: binds synchronously, runs the accept loop on a
//! runtime of its own (so a caller that blocks, or runs a current-thread
//! runtime, can never starve it) and answers harness queries.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{broadcast, oneshot};

use crate::config::ServerConfig;
use crate::connection::{self, Shared};
use crate::error::ServerError;
use crate::info::{ConnInfo, PathInfo};
use crate::log::LogSink;
use crate::registry::{PathLimits, Registry};

/// How long shutdown waits for connection tasks before abandoning them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// A running server. Dropping it stops the server (like [`Self::shutdown`]).
pub struct RtmpServer {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl RtmpServer {
    /// Binds `config.listen` and serves on a dedicated thread. Returns once
    /// the socket is listening, so clients may connect right away.
    pub fn start(config: ServerConfig) -> Result<RtmpServer, ServerError> {
        let bind_error = |source| ServerError::Bind {
            addr: config.listen,
            source,
        };
        let listener = std::net::TcpListener::bind(config.listen).map_err(bind_error)?;
        listener.set_nonblocking(true).map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.worker_threads.max(1))
            .thread_name("rtmp-server")
            .enable_all()
            .build()
            .map_err(ServerError::Runtime)?;
        let listener = {
            let _guard = runtime.enter();
            TcpListener::from_std(listener).map_err(bind_error)?
        };

        let limits = PathLimits {
            reader_capacity: config.reader_channel_capacity(),
            gop_max_frames: config.gop_cache_max_frames,
            gop_max_bytes: config.gop_cache_max_bytes,
        };
        let shared = Arc::new(Shared {
            log: LogSink::new(config.log_capacity),
            registry: Registry::new(limits),
            config,
        });
        shared
            .log
            .info(format!("[RTMP] started with listener on {local_addr} (TCP/RTMP)"));

        let (stop, stopped) = oneshot::channel();
        let accept_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("rtmp-server".to_owned())
            .spawn(move || {
                runtime.block_on(accept_loop(listener, accept_shared, stopped));
                // Drops every connection task (closing its socket).
                runtime.shutdown_timeout(SHUTDOWN_GRACE);
            })
            .map_err(ServerError::Runtime)?;

        Ok(RtmpServer {
            local_addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `rtmp://127.0.0.1:PORT/<path>`; an unspecified listen address is
    /// replaced by loopback so the URL is connectable.
    pub fn url(&self, path: &str) -> String {
        let mut addr = self.local_addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("rtmp://{addr}/{}", path.trim_start_matches('/'))
    }

    /// Resolves once someone publishes `path` (immediately if someone
    /// already does). Waits on a change notification, not by polling; needs
    /// a tokio runtime with timers for the deadline.
    pub async fn wait_for_publisher(&self, path: &str, timeout: Duration) -> Result<(), ServerError> {
        let registry = &self.shared.registry;
        // Subscribe before checking, so a publish in between is not missed.
        let mut changes = registry.watch_changes();
        let wait = async {
            while !registry.has_publisher(path) {
                if changes.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| ServerError::PublisherTimeout {
                path: path.to_owned(),
                timeout,
            })
    }

    /// Resolves once `condition` holds, re-checked on every change of
    /// connections, paths, publishers or readers (no polling).
    pub async fn wait_for_state(
        &self,
        condition: impl Fn(&Self) -> bool,
        timeout: Duration,
    ) -> Result<(), ServerError> {
        let mut changes = self.shared.registry.watch_changes();
        let wait = async {
            while !condition(self) {
                if changes.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| ServerError::StateTimeout { timeout })
    }

    /// Published paths, like MediaMTX `/v3/paths/list`.
    pub fn paths(&self) -> Vec<PathInfo> {
        self.shared.registry.paths()
    }

    /// Open connections, like MediaMTX `/v3/rtmpconns/list`.
    pub fn connections(&self) -> Vec<ConnInfo> {
        self.shared.registry.connections()
    }

    /// Closes a connection (MediaMTX `POST /v3/rtmpconns/kick/<id>`).
    /// False if no such connection.
    pub fn kick(&self, conn_id: &str) -> bool {
        conn_id.parse().is_ok_and(|id| self.shared.registry.kick(id))
    }

    /// Closes the connection publishing `path`; false if nobody does.
    pub fn kick_publisher(&self, path: &str) -> bool {
        self.shared
            .registry
            .publisher_of(path)
            .is_some_and(|id| self.shared.registry.kick(id))
    }

    /// Every log line from now on, as `INF [RTMP] ...` (no date). Lines
    /// logged before subscribing (such as the listener line) are not replayed.
    pub fn subscribe_log(&self) -> broadcast::Receiver<String> {
        self.shared.log.subscribe()
    }

    /// Stops accepting, closes every connection and joins the server thread.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for RtmpServer {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

impl std::fmt::Debug for RtmpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtmpServer")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    loop {
        tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    tokio::spawn(connection::serve(stream, remote, shared.clone()));
                }
                Err(e) => {
                    // Typically EMFILE: back off briefly instead of spinning.
                    tracing::warn!(target: crate::log::LOG_TARGET, "accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}
