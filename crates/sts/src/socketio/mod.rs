//! A minimal Socket.IO v5 client over Engine.IO v4, websocket transport,
//! text packets, default namespace: the subset the STS protocol uses.
//!
//! Why not a crate. `rust_socketio` (0.6, its `async` feature) was the
//! candidate, and its design and record rule it out here:
//! - the STS answers with an event named `error`, which `rust_socketio`
//!   maps to its reserved `Event::Error`, the same callback its own
//!   transport errors go to, so an STS error and a broken socket cannot be
//!   told apart;
//! - its background poll loop hands transport and parse errors to that same
//!   callback and carries on (logging them at trace level), so a malformed
//!   message cannot close the session with a reason; it has had panics on
//!   server disconnects (1c3t3a/rust-socketio#323, #216) and still
//!   `unwrap`s the stream while collecting binary attachments;
//! - reconnection runs inside the crate with its own backoff, while this
//!   client must redo `stream:init` and resend unanswered fragments on each
//!   new session; a manual `disconnect` not stopping that reconnection is
//!   an open issue (#374), its fix (#466) unmerged under a 2025 comment
//!   asking whether the library is still maintained;
//! - the async client was not notified of a transport closed without an
//!   Engine.IO close packet (#448); binary acks were encoded wrongly (#422);
//! - callbacks own the received data, and its `rust_engineio` pulls
//!   `native-tls` (OpenSSL), `reqwest` (for long-polling) and a second,
//!   older `tungstenite` (0.21) for a websocket on the local network.
//!
//! Its fork `tf-rust-socketio` shares that architecture. The protocol
//! subset needed is small and fully specified (socket.io-protocol v5,
//! engine.io-protocol v4): an open packet with the heartbeat figures, `40`
//! to join the namespace, `42[name, data]` events, `2`/`3` ping and pong,
//! `41`/`1` to close. Written here over `tokio-tungstenite` it is one
//! `select!`-friendly, cancel-safe `next()` and a `send_text()`, where every
//! packet that is not what the protocol allows is an error the caller turns
//! into a closed session, and nothing panics or reconnects behind its back.
//! Binary packets are not supported: the STS protocol carries audio as
//! base64 in JSON, so a binary packet is reported as malformed.

pub(crate) mod connection;
pub(crate) mod packet;

pub(crate) use connection::{Connection, Incoming, LinkError};
