//! Counters a connection updates without taking any lock, read by the API.

use std::sync::atomic::AtomicU64;

/// The registry's key for a connection (the API shows a UUID instead).
pub(crate) type ConnId = u64;

#[derive(Debug, Default)]
pub(crate) struct ConnStats {
    /// Socket bytes, handshake included (as MediaMTX counts them).
    pub inbound: AtomicU64,
    pub outbound: AtomicU64,
    /// Units not queued for this reader because its queue was full.
    pub discarded: AtomicU64,
}
