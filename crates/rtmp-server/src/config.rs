//! Server settings. Defaults are MediaMTX 1.20.1's defaults; every limit
//! exists so that one misbehaving client costs a bounded amount of memory
//! and never affects other connections.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// Settings for [`crate::RtmpServer::start`]. `ServerConfig::default()`
/// listens on an ephemeral loopback port (and serves no API), which is what
/// tests want.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// RTMP address; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Control API address (MediaMTX's `apiAddress`); `None`: no API.
    pub api_listen: Option<SocketAddr>,
    /// Who may use the API (MediaMTX's default: loopback only; any other
    /// address gets 401).
    pub api_access: ApiAccess,
    /// A second publisher on a busy path takes it over, closing the first
    /// one and every reader (MediaMTX `overridePublisher`, default true).
    /// When false, the second publisher is closed after its analysis.
    pub override_publisher: bool,
    /// Hand late joiners the latest GOP instead of making them wait for the
    /// next IDR. MediaMTX has no such cache; off by default.
    pub gop_cache: bool,
    /// GOP cache bounds per path (when `gop_cache` is on).
    pub gop_cache_max_units: usize,
    pub gop_cache_max_bytes: usize,
    /// Units queued towards one reader (MediaMTX `writeQueueSize`); when
    /// full, units are discarded for that reader and counted.
    pub write_queue_size: usize,
    /// MediaMTX `readTimeout`: from the accept until a publisher's analysis
    /// is done (or a reader is reading), then per read for publishers.
    pub read_timeout: Duration,
    /// MediaMTX `writeTimeout`: per write.
    pub write_timeout: Duration,
    /// Largest `SetChunkSize` a client may announce (MediaMTX: 10 MiB);
    /// larger values close the connection with MediaMTX's words.
    pub max_chunk_size: u32,
    /// Largest message a client may announce (MediaMTX: 10 MiB).
    pub max_message_size: u32,
    /// Bytes one connection's unfinished messages may announce at once, and
    /// chunk streams it may keep a message open on. MediaMTX has no such
    /// limit; without one a client could make the server hold 10 MiB on
    /// each of 62 chunk streams.
    pub max_unfinished_per_connection: u64,
    pub max_open_chunk_streams: usize,
    /// What all connections' unfinished messages may announce together
    /// (32 MiB: 64 publishers each mid-way through a 500-KiB keyframe fit):
    /// a connection that would take more is closed, so no number of hostile
    /// clients grows the server's memory past it.
    pub max_unfinished_total: u64,
    /// Chunk size the server uses for what it sends (MediaMTX: 65536).
    pub outbound_chunk_size: u32,
    /// Worker threads of the server's own runtime.
    pub worker_threads: usize,
    /// Capacity of the `subscribe_log` broadcast channel.
    pub log_capacity: usize,
    /// Commands run when a path becomes available or unavailable
    /// (MediaMTX's `pathDefaults.runOnAvailable`, ...).
    pub hooks: crate::hooks::PathHooks,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            api_listen: None,
            api_access: ApiAccess::default(),
            override_publisher: true,
            gop_cache: false,
            gop_cache_max_units: 2048,
            gop_cache_max_bytes: 16 << 20,
            write_queue_size: 512,
            read_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            max_chunk_size: 10 << 20,
            max_message_size: 10 << 20,
            max_unfinished_per_connection: 16 << 20,
            max_open_chunk_streams: 16,
            max_unfinished_total: 32 << 20,
            outbound_chunk_size: 65_536,
            worker_threads: 2,
            log_capacity: 4096,
            hooks: crate::hooks::PathHooks::default(),
        }
    }
}

impl ServerConfig {
    /// The per-connection limits on what a client sends.
    pub(crate) fn chunk_limits(&self) -> rtmp_chunks::Limits {
        rtmp_chunks::Limits {
            max_chunk_size: self.max_chunk_size,
            max_message: self.max_message_size,
            max_in_progress: self.max_unfinished_per_connection,
            max_open_streams: self.max_open_chunk_streams,
        }
    }

    /// The default, with the API on an ephemeral loopback port.
    pub fn with_api() -> Self {
        Self {
            api_listen: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))),
            ..Self::default()
        }
    }
}

/// Client addresses allowed to use the API; others are answered 401 with
/// MediaMTX's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiAccess {
    /// Any address (MediaMTX with a user granted `api` and `ips: []`).
    Anyone,
    /// Only these networks (MediaMTX's default: 127.0.0.1 and ::1).
    Only(Vec<IpNetwork>),
}

impl Default for ApiAccess {
    fn default() -> Self {
        Self::Only(vec![
            IpNetwork::host(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            IpNetwork::host(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ])
    }
}

impl ApiAccess {
    pub fn allows(&self, ip: IpAddr) -> bool {
        match self {
            Self::Anyone => true,
            Self::Only(networks) => networks.iter().any(|n| n.contains(ip)),
        }
    }
}

/// An address or a CIDR network, as MediaMTX's `ips` lists take them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNetwork {
    addr: IpAddr,
    prefix: u8,
}

impl IpNetwork {
    pub fn host(addr: IpAddr) -> Self {
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        Self { addr, prefix }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let (a, b, bits) = match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(a.to_bits()), u128::from(b.to_bits()), 32),
            (IpAddr::V6(a), IpAddr::V6(b)) => (a.to_bits(), b.to_bits(), 128),
            _ => return false,
        };
        let shift = bits - u32::from(self.prefix);
        shift >= bits || (a >> shift) == (b >> shift)
    }
}

impl std::str::FromStr for IpNetwork {
    type Err = String;

    /// `10.0.0.1`, `10.0.0.0/8`, `::1`; an empty value is refused as
    /// MediaMTX refuses it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || format!("unable to parse IP/CIDR '{s}'");
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| invalid())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(invalid)?,
        };
        Ok(Self { addr, prefix })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_answers_loopback_by_default() {
        let access = ApiAccess::default();
        assert!(access.allows("127.0.0.1".parse().unwrap()));
        assert!(access.allows("::ffff:127.0.0.1".parse().unwrap()));
        assert!(access.allows("::1".parse().unwrap()));
        assert!(!access.allows("172.17.0.1".parse().unwrap()));
        assert!(ApiAccess::Anyone.allows("172.17.0.1".parse().unwrap()));
    }

    #[test]
    fn networks_parse_like_mediamtx_ips() {
        let any: IpNetwork = "0.0.0.0/0".parse().unwrap();
        assert!(any.contains("172.17.0.1".parse().unwrap()));
        let bridge: IpNetwork = "172.17.0.0/16".parse().unwrap();
        assert!(bridge.contains("172.17.3.4".parse().unwrap()));
        assert!(!bridge.contains("10.0.0.1".parse().unwrap()));
        assert_eq!("".parse::<IpNetwork>().unwrap_err(), "unable to parse IP/CIDR ''");
        assert!("10.0.0.0/33".parse::<IpNetwork>().is_err());
    }
}
