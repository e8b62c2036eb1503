//! The reconnect policy shared by every client in the workspace: the RTMP
//! reader waiting for a stream and the STS client waiting for its service.
//!
//! Written by hand rather than taken from a retry crate because callers need
//! the delay as a pure function of the attempt and a random draw (so the
//! bounds are testable, and the ingest can promise to attach within a
//! quarter second of a stream's appearance), and because the delay is
//! awaited inside the callers' own `select!` loops, not by a retry combinator.

mod error;
mod policy;

pub use error::PolicyError;
pub use policy::{MAX_DELAY_CEILING, MIN_DELAY, ReconnectPolicy};
