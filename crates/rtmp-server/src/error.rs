//! Errors of the library API.

use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the server runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("no stream on path '{path}' after {timeout:?}")]
    PublisherTimeout { path: String, timeout: Duration },
    #[error("the server did not reach the awaited state within {timeout:?}")]
    StateTimeout { timeout: Duration },
}
