//! The server handle: binds synchronously, runs the RTMP accept loop and
//! the Control API on a runtime of its own (so a caller that blocks, or
//! runs a current-thread runtime, can never starve it) and answers harness
//! queries.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};

use crate::config::ServerConfig;
use crate::connection::{self, Shared};
use crate::error::ServerError;
use crate::info::{ConnInfo, PathInfo};
use crate::log::LogSink;
use crate::registry::{PathSettings, Registry};

/// How long shutdown waits for connection tasks before abandoning them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// A running server. Dropping it stops the server (like [`Self::shutdown`]).
pub struct RtmpServer {
    local_addr: SocketAddr,
    api_addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
    /// The lines logged while starting, for subscribers that come later.
    startup_log: Vec<String>,
    /// Second handles on the listening sockets, kept across a restart:
    /// were the ports closed in between, another socket on the machine
    /// could take one (an outgoing connection's ephemeral port), and the
    /// restart would fail to listen again. A client that connects in the
    /// instant of the restart waits in the backlog instead of being refused.
    reserved: Reserved,
}

struct Reserved {
    rtmp: std::net::TcpListener,
    api: Option<std::net::TcpListener>,
}

impl Reserved {
    fn try_clone(&self) -> std::io::Result<Self> {
        Ok(Self {
            rtmp: self.rtmp.try_clone()?,
            api: self
                .api
                .as_ref()
                .map(std::net::TcpListener::try_clone)
                .transpose()?,
        })
    }
}

impl RtmpServer {
    /// Binds `config.listen` and serves on a dedicated thread. Returns once
    /// the socket is listening, so clients may connect right away.
    pub fn start(config: ServerConfig) -> Result<RtmpServer, ServerError> {
        let log = LogSink::new(config.log_capacity);
        Self::start_logging_to(config, log, None)
    }

    /// Stops the server as a process exit would (every connection closed,
    /// every path forgotten) and starts it again on the same RTMP and API
    /// ports, logging to the same subscribers, as MediaMTX restarted by its
    /// supervisor would. Returns once it listens again.
    pub fn restart(&mut self) -> Result<(), ServerError> {
        let reserved = self.reserved.try_clone().map_err(|source| ServerError::Bind {
            addr: self.local_addr,
            source,
        })?;
        self.stop_and_join();
        let mut config = self.shared.config.clone();
        config.listen = self.local_addr;
        config.api_listen = self.api_addr;
        *self = Self::start_logging_to(config, self.shared.log.clone(), Some(reserved))?;
        Ok(())
    }

    fn start_logging_to(
        config: ServerConfig,
        log: LogSink,
        reserved: Option<Reserved>,
    ) -> Result<RtmpServer, ServerError> {
        let (listener, api_listener) = match reserved {
            Some(reserved) => (reserved.rtmp, reserved.api),
            None => (bind(config.listen)?, config.api_listen.map(bind).transpose()?),
        };
        let local_addr = local_addr_of(&listener, config.listen)?;
        let keep = |l: &std::net::TcpListener, addr: SocketAddr| {
            l.try_clone().map_err(|source| ServerError::Bind { addr, source })
        };
        let reserved = Reserved {
            rtmp: keep(&listener, local_addr)?,
            api: api_listener.as_ref().map(|l| keep(l, local_addr)).transpose()?,
        };
        let api_addr = match (&api_listener, config.api_listen) {
            (Some(listener), Some(requested)) => Some(local_addr_of(listener, requested)?),
            _ => None,
        };

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.worker_threads.max(1))
            .thread_name("rtmp-server")
            .enable_all()
            .build()
            .map_err(ServerError::Runtime)?;
        let (listener, api_listener) = {
            let _guard = runtime.enter();
            let rtmp = TcpListener::from_std(listener).map_err(|source| ServerError::Bind {
                addr: local_addr,
                source,
            })?;
            let api = api_listener
                .map(|l| {
                    TcpListener::from_std(l).map_err(|source| ServerError::Bind {
                        addr: api_addr.unwrap_or(local_addr),
                        source,
                    })
                })
                .transpose()?;
            (rtmp, api)
        };

        let settings = PathSettings {
            queue_capacity: config.write_queue_size.max(1),
            gop_cache: config
                .gop_cache
                .then_some((config.gop_cache_max_units, config.gop_cache_max_bytes)),
            override_publisher: config.override_publisher,
            hooks: config.hooks.clone(),
        };
        let shared = Arc::new(Shared {
            registry: Registry::new(settings, log.clone()),
            log,
            config,
            unfinished: AtomicU64::new(0),
        });
        let mut startup_log = vec![format!(
            "[RTMP] started with listener on {} (TCP/RTMP)",
            go_listen(local_addr)
        )];
        if let Some(api_addr) = api_addr {
            startup_log.push(format!(
                "[API] started with listener on {} (TCP/HTTP)",
                go_listen(api_addr)
            ));
        }
        for line in &startup_log {
            shared.log.info(line.clone());
        }
        let startup_log = startup_log.iter().map(|l| format!("INF {l}")).collect();

        let (stop, stopped) = watch::channel(false);
        let accept_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("rtmp-server".to_owned())
            .spawn(move || {
                runtime.block_on(async {
                    if let Some(api) = api_listener {
                        let app = crate::api::router(accept_shared.clone())
                            .into_make_service_with_connect_info::<SocketAddr>();
                        let mut api_stopped = stopped.clone();
                        tokio::spawn(async move {
                            let shutdown = async move {
                                let _ = api_stopped.wait_for(|s| *s).await;
                            };
                            let _ = axum::serve(api, app).with_graceful_shutdown(shutdown).await;
                        });
                    }
                    accept_loop(listener, accept_shared, stopped).await;
                });
                // Drops every connection task (closing its socket).
                runtime.shutdown_timeout(SHUTDOWN_GRACE);
            })
            .map_err(ServerError::Runtime)?;

        Ok(RtmpServer {
            local_addr,
            api_addr,
            shared,
            stop,
            thread: Some(thread),
            startup_log,
            reserved,
        })
    }

    /// The lines logged while starting (the listener lines), in the form
    /// [`Self::subscribe_log`] gives: a subscriber cannot have heard them.
    pub fn startup_log(&self) -> &[String] {
        &self.startup_log
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where the Control API listens, if it was asked for.
    pub fn api_addr(&self) -> Option<SocketAddr> {
        self.api_addr
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

    /// Resolves once `path` has a stream, i.e. its publisher's analysis is
    /// done (immediately if it already has one). Waits on a change
    /// notification, not by polling; needs a tokio runtime with timers for
    /// the deadline.
    pub async fn wait_for_stream(&self, path: &str, timeout: Duration) -> Result<(), ServerError> {
        let registry = &self.shared.registry;
        // Subscribe before checking, so a publish in between is not missed.
        let mut changes = registry.watch_changes();
        let wait = async {
            while !registry.has_stream(path) {
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

    /// Paths with a stream, as MediaMTX's `/v3/paths/list` lists them.
    pub fn paths(&self) -> Vec<PathInfo> {
        self.shared.registry.paths()
    }

    /// One path, as MediaMTX's `/v3/paths/get/<name>` gives it.
    pub fn path(&self, name: &str) -> Option<PathInfo> {
        self.shared.registry.path(name)
    }

    /// Open connections, oldest first, as in MediaMTX `/v3/rtmpconns/list`.
    pub fn connections(&self) -> Vec<ConnInfo> {
        self.shared.registry.connections()
    }

    /// Closes a connection by its id (MediaMTX `POST /v3/rtmpconns/kick/<id>`).
    /// False if no such connection.
    pub fn kick(&self, conn_id: &str) -> bool {
        self.shared.registry.kick_uuid(conn_id).is_ok()
    }

    /// Closes the connection publishing `path`; false if nobody does.
    pub fn kick_publisher(&self, path: &str) -> bool {
        self.shared
            .registry
            .publisher_of(path)
            .is_some_and(|id| self.shared.registry.kick(id))
    }

    /// Every log line from now on, as `INF [RTMP] ...` (no date; `WAR` and
    /// `ERR` for warnings and errors). Lines logged before subscribing
    /// (such as the listener line) are not replayed.
    pub fn subscribe_log(&self) -> broadcast::Receiver<String> {
        self.shared.log.subscribe()
    }

    /// Stops accepting, closes every connection and joins the server thread.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        let _ = self.stop.send(true);
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

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
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

/// With `SO_REUSEADDR`, as Go's listeners (MediaMTX's) have: a server
/// restarted on its port must not wait for the old connections' TIME_WAIT.
fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, ServerError> {
    use socket2::{Domain, Socket, Type};
    let bind_error = |source| ServerError::Bind { addr, source };
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).map_err(bind_error)?;
    socket.set_reuse_address(true).map_err(bind_error)?;
    socket.bind(&addr.into()).map_err(bind_error)?;
    // Go's backlog on Linux is the kernel's somaxconn.
    socket.listen(4096).map_err(bind_error)?;
    socket.set_nonblocking(true).map_err(bind_error)?;
    Ok(socket.into())
}

fn local_addr_of(listener: &std::net::TcpListener, requested: SocketAddr) -> Result<SocketAddr, ServerError> {
    listener.local_addr().map_err(|source| ServerError::Bind {
        addr: requested,
        source,
    })
}

/// A listener address as MediaMTX prints it: `:1935` for all interfaces.
fn go_listen(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!(":{}", addr.port())
    } else {
        addr.to_string()
    }
}
