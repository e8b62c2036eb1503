//! Snapshots for harnesses, shaped like MediaMTX's control API
//! (`/v3/paths/list`, `/v3/rtmpconns/list`) so assertions read the same.

use std::net::SocketAddr;

use serde::Serialize;

/// What a connection is doing (MediaMTX `state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnState {
    Idle,
    Read,
    Publish,
}

/// A connection, like an item of `/v3/rtmpconns/list`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnInfo {
    pub id: String,
    pub remote_addr: SocketAddr,
    pub state: ConnState,
    /// Empty while idle.
    pub path: String,
    pub inbound_bytes: u64,
    pub outbound_bytes: u64,
    /// Frames not sent to this reader because it was too slow.
    pub outbound_frames_discarded: u64,
}

/// One connection seen from a path (publisher or reader).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PathConn {
    pub id: String,
    pub remote_addr: SocketAddr,
}

/// A published path, like an item of `/v3/paths/list`. Paths exist only
/// while someone publishes them (MediaMTX's `all_others` behaviour).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PathInfo {
    pub name: String,
    /// True once media flows (MediaMTX `ready`/`online`).
    pub ready: bool,
    pub source: PathConn,
    /// Codecs seen so far, video first: `H264`, `MPEG-4 Audio`, ...
    pub tracks: Vec<String>,
    pub readers: Vec<PathConn>,
    pub inbound_bytes: u64,
    /// Bytes handed to reader queues (payload bytes, all readers).
    pub outbound_bytes: u64,
}
