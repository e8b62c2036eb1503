//! An embedded RTMP server that behaves as MediaMTX 1.20.1 does, for tests
//! and for `cargo xtask e2e` on machines without Docker.
//!
//! ```text
//!  publisher ─► connection ─► analysis (2 s of media) ─► PathRelay ─┬─► reader queue ─► connection ─► reader
//!               (session)                                 units     └─► reader queue ─► ...
//! ```
//!
//! What MediaMTX does, this does (`../shared/reference/mediamtx.md`, checked
//! by `cargo xtask conformance`):
//! - a path is `application/stream` and becomes readable only once its
//!   publisher's first two seconds of media timestamps were analysed
//!   ([`analysis`](crate)); a reader before that is closed without an answer;
//! - a reader gets metadata and sequence headers at timestamp 0, then audio
//!   at once and video from its next IDR, with SPS/PPS in front of every
//!   IDR, no access unit delimiters, the publisher's PTS and a DTS made
//!   per reader as MediaMTX makes it;
//! - a second publisher takes the path over and every reader is closed
//!   (`overridePublisher`); a silent publisher is closed after
//!   `readTimeout`; its readers then too;
//! - the Control API subset harnesses use, with MediaMTX's JSON;
//! - the path hooks (`runOnAvailable`/`runOnReady`, `runOnUnavailable`/
//!   `runOnNotReady`, with restart), their environment and log lines;
//! - log lines word for word.
//!
//! A GOP cache exists only as an option ([`ServerConfig::gop_cache`]).
//!
//! # Why rml_rtmp
//! The RTMP handshake, chunk codec and message (de)serialization come from
//! [`rml_rtmp`] 0.8: it is pure Rust (so the binary links fully static for a
//! `FROM scratch` image), sans-IO (it fits any runtime and is easy to test),
//! and its chunk layer exposes the control points a relay needs (the
//! client's chunk size, raw payload bytes). Its high-level `ServerSession`
//! is not used: it applies client chunk sizes without a limit and answers
//! commands differently from MediaMTX, so the small command flow in
//! `session.rs` is ours, as is the relay.
//!
//! # Bounded memory
//! Every chunk header a client sends is checked (`rtmp_chunks`) before
//! rml_rtmp sees it, which would reserve what the header announces: as in
//! MediaMTX, a chunk size or message above 10 MiB closes the connection
//! (`body size (N) exceeds maximum (M)`); beyond MediaMTX, a connection's
//! unfinished messages may announce at most 16 MiB on 16 chunk streams, and
//! all connections' together [`ServerConfig::max_unfinished_total`]
//! (32 MiB), so no number of clients grows the server past it. Per
//! connection otherwise: one 64 KiB read buffer; the analysis buffer is
//! capped. Per reader: a bounded queue of shared units.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rtmp_server::ServerError> {
//! use rtmp_server::{RtmpServer, ServerConfig};
//! let server = RtmpServer::start(ServerConfig::default())?;
//! let url = server.url("live/cam1/in"); // give this to ffmpeg -f flv
//! server.wait_for_stream("live/cam1/in", std::time::Duration::from_secs(10)).await?;
//! # Ok(()) }
//! ```

mod analysis;
mod api;
mod config;
mod connection;
mod error;
mod gop_cache;
mod hooks;
mod info;
mod log;
mod media;
mod path_name;
mod registry;
mod relay;
mod server;
mod session;
mod stats;

pub use config::{ApiAccess, IpNetwork, ServerConfig};
pub use error::ServerError;
pub use hooks::PathHooks;
pub use info::{
    AudioProps, CodecProps, ConnInfo, ConnState, ItemList, PathConn, PathInfo, TrackInfo, VideoProps,
};
pub use log::{HOOK_OUTPUT_TARGET, LOG_TARGET};
pub use server::RtmpServer;
