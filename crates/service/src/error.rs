//! The service's errors: each names what was wrong and what is expected.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ServiceError {
    #[error("invalid service configuration: {0}")]
    Config(String),
    #[error("cannot read {}: {reason}", path.display())]
    ConfigFile { path: PathBuf, reason: String },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Http(#[source] std::io::Error),
    #[error("the service's {what} task failed: {source}")]
    Task {
        what: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
    #[error(transparent)]
    Ingest(#[from] ingest::IngestError),
    #[error("the cluster's leases: {0}")]
    Cluster(#[from] cluster::ClusterError),
}

/// Why MediaMTX's Control API could not be read.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ApiError {
    #[error("no answer from {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url} answered {status}: {body}")]
    Status { url: String, status: u16, body: String },
    #[error("{url} answered what is not a path list: {reason}")]
    Shape { url: String, reason: String },
}
