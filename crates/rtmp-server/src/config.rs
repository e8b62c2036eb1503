//! Server settings. Every limit exists so that one misbehaving client can
//! cost a bounded amount of memory and never affect other connections.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Settings for [`crate::RtmpServer::start`]. `ServerConfig::default()`
/// listens on an ephemeral loopback port, which is what tests want.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Largest `SetChunkSize` a client may announce; larger values close the
    /// connection. An RTMP message is at most 16 MiB − 1 bytes (24-bit length
    /// field), so a bigger chunk can never be needed: such a value only comes
    /// from a broken or hostile peer. (Buffering is bounded by the message
    /// length regardless, so this is a sanity check, not the memory bound.)
    pub max_chunk_size: u32,
    /// Frames queued towards one reader. When full, the reader is "slow":
    /// frames are discarded until the next keyframe (like MediaMTX's
    /// `writeQueueSize`), so the queue never grows.
    pub reader_queue_frames: usize,
    /// GOP cache bounds per path. A GOP exceeding either is not cached (late
    /// joiners then wait for the next keyframe).
    pub gop_cache_max_frames: usize,
    pub gop_cache_max_bytes: usize,
    /// Idle time after which a connection that is not reading is closed
    /// (MediaMTX `readTimeout`, 10 s); also bounds a stalled handshake.
    pub read_timeout: Duration,
    /// Time a single socket write may take (MediaMTX `writeTimeout`, 10 s).
    pub write_timeout: Duration,
    /// Chunk size the server uses for what it sends.
    pub outbound_chunk_size: u32,
    /// Worker threads of the server's own runtime.
    pub worker_threads: usize,
    /// Capacity of the `subscribe_log` broadcast channel.
    pub log_capacity: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            max_chunk_size: 0xFF_FFFF,
            reader_queue_frames: 512,
            gop_cache_max_frames: 2048,
            gop_cache_max_bytes: 16 << 20,
            read_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            outbound_chunk_size: 4096,
            worker_threads: 2,
            log_capacity: 4096,
        }
    }
}

impl ServerConfig {
    /// Queue capacity of one reader: the live budget plus room for the
    /// initial burst (metadata, two sequence headers, the cached GOP), so
    /// joining never overflows by construction.
    pub(crate) fn reader_channel_capacity(&self) -> usize {
        self.reader_queue_frames + self.gop_cache_max_frames + 3
    }
}
