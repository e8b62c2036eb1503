//! The live-dubbing service: follows MediaMTX and keeps one ingest worker
//! (with its dubbed output on `live/<id>/out`) per available input stream.
//!
//! ```text
//!  MediaMTX API ──poll / hook nudge──► manager ──► roster (pure: start, stop, refuse)
//!                                        │
//!                                        ├──► worker per stream (ingest::WorkerRunner) ──► events ──► views, metrics, logs
//!                                        │
//!  HTTP (axum): /healthz /readyz /metrics /v1/streams /v1/hooks/* ◄── shared state
//! ```
//!
//! ```no_run
//! # async fn demo() -> Result<(), service::ServiceError> {
//! let config = service::ServiceConfig::load(None)?;
//! let running = service::Service::start(config).await?;
//! println!("metrics on http://{}/metrics", running.addr());
//! running.stopper().stop(); // what SIGTERM does
//! running.wait().await
//! # }
//! ```

#![warn(unreachable_pub)]

mod config;
mod discovery;
mod error;
mod http;
mod leasing;
mod manager;
mod metrics;
mod paths;
mod roster;
mod shared;
mod streams;
mod worker;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{ClusterSettings, DEFAULT_MAX_STREAMS, DEFAULT_RESTART, ServiceConfig};
pub use error::{ApiError, ServiceError};
pub use http::HOOK_EVENTS;
pub use paths::{DEFAULT_INPUT, DEFAULT_OUTPUT};
pub use streams::{Counts, Fragments, Received, RefusedView, Spans, StreamView, StreamsView};

/// A running service: its HTTP address, a way to stop it, its end.
pub struct Service {
    addr: SocketAddr,
    stop: Arc<watch::Sender<bool>>,
    manager: JoinHandle<()>,
    http: JoinHandle<std::io::Result<()>>,
    http_stop: watch::Sender<bool>,
}

/// Asks a service to stop; cheap to clone (a signal handler holds one).
#[derive(Clone)]
pub struct ServiceStopper(Arc<watch::Sender<bool>>);

impl ServiceStopper {
    /// Every worker finishes its stream, then the service ends.
    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}

impl Service {
    /// Checks the configuration, listens on `config.listen` and starts
    /// following MediaMTX.
    pub async fn start(config: ServiceConfig) -> Result<Self, ServiceError> {
        config.validate()?;
        ingest::gst_init()?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| ServiceError::Listen {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| ServiceError::Listen {
            addr: config.listen,
            source,
        })?;
        let leases = match &config.cluster {
            Some(settings) => {
                let mut cluster =
                    cluster::ClusterConfig::new(settings.nats.clone(), settings.instance.clone());
                cluster.ttl = settings.lease_ttl;
                let leases = cluster::Leases::open(cluster).await?;
                tracing::info!(instance = %settings.instance, nats = %settings.nats, "in a cluster: streams are served under a lease");
                Some(Arc::new(leases))
            }
            None => None,
        };
        let shared = Arc::new(shared::Shared::new());
        let (stop, stop_rx) = watch::channel(false);
        let (http_stop, mut http_stop_rx) = watch::channel(false);
        let app = http::router(Arc::clone(&shared));
        // The HTTP side outlives the workers' stop, so the last metrics can
        // be read while streams finish.
        let http = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    // The guard `wait_for` returns is not kept across an await.
                    let stopped = http_stop_rx.wait_for(|stop| *stop).await.is_ok();
                    let _ = stopped;
                })
                .await
        });
        tracing::info!(%addr, api = %config.api, rtmp = %config.rtmp, "serving");
        let manager = tokio::spawn(manager::Manager::new(config, shared, leases).run(stop_rx));
        Ok(Self {
            addr,
            stop: Arc::new(stop),
            manager,
            http,
            http_stop,
        })
    }

    /// Where the HTTP side listens (the port the OS chose for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stopper(&self) -> ServiceStopper {
        ServiceStopper(Arc::clone(&self.stop))
    }

    /// Waits for the service to end: after [`ServiceStopper::stop`], once
    /// every worker has finished.
    pub async fn wait(self) -> Result<(), ServiceError> {
        self.manager.await.map_err(|source| ServiceError::Task {
            what: "manager",
            source,
        })?;
        self.http_stop.send_replace(true);
        self.http
            .await
            .map_err(|source| ServiceError::Task { what: "HTTP", source })?
            .map_err(ServiceError::Http)
    }
}
