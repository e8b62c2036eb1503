//! An embedded RTMP server that behaves like MediaMTX, for tests and for
//! `cargo xtask e2e` on machines without Docker.
//!
//! ```text
//!  publisher ──► connection ──► PathRelay (config + GOP cache) ──┬─► reader queue ──► connection ──► reader
//!                (session)        one per path, own lock          └─► reader queue ──► ...
//! ```
//!
//! Behaviour mirrors MediaMTX where tests can observe it: the path is
//! application + "/" + stream name; one publisher per path; readers of an
//! unpublished path are refused at once (`NetStream.Play.StreamNotFound`,
//! then the connection closes); readers are closed when the publisher
//! leaves; late joiners start with metadata, sequence headers and the
//! latest GOP; log lines use MediaMTX's wording.
//!
//! # Why rml_rtmp
//! The RTMP handshake, chunk codec and message (de)serialization come from
//! [`rml_rtmp`] 0.8: it is pure Rust (so the binary links fully static for a
//! `FROM scratch` image), sans-IO (it fits any runtime and is easy to test),
//! widely used, and its chunk layer exposes exactly the control points a
//! relay needs (the client's chunk size, raw payload bytes). Its high-level
//! `ServerSession` is not used: it applies client chunk sizes without a
//! limit, re-encodes metadata (dropping fields) and cannot reject unknown
//! commands, so the small command flow in `session.rs` is ours, as is the
//! relay.
//!
//! # Bounded memory
//! Per connection: one 64 KiB read buffer plus at most one RTMP message in
//! reassembly (≤ 16 MiB by the protocol's 24-bit length), chunk sizes above
//! [`ServerConfig::max_chunk_size`] are refused, idle connections time out.
//! Per reader: a bounded queue of shared frames; a slow reader has frames
//! discarded until the next keyframe. Per path: only the latest GOP, capped
//! in frames and bytes.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rtmp_server::ServerError> {
//! use rtmp_server::{RtmpServer, ServerConfig};
//! let server = RtmpServer::start(ServerConfig::default())?;
//! let url = server.url("live/cam1/in"); // give this to ffmpeg -f flv
//! server.wait_for_publisher("live/cam1/in", std::time::Duration::from_secs(10)).await?;
//! # Ok(()) }
//! ```

mod config;
mod connection;
mod error;
mod gop_cache;
mod info;
mod log;
mod media;
mod path_name;
mod registry;
mod relay;
mod server;
mod session;

pub use config::ServerConfig;
pub use error::ServerError;
pub use info::{ConnInfo, ConnState, PathConn, PathInfo};
pub use log::LOG_TARGET;
pub use server::RtmpServer;
