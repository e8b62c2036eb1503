//! Which `ingest serve` instance serves which stream, decided through NATS
//! JetStream, so that a deployment of several instances serves each stream
//! exactly once and takes over a dead instance's streams.
//!
//! ```text
//! instance ──create──► lease bucket (key: stream, TTL) ── expires when not renewed
//!    │                    (atomic: one creator wins)
//!    └──update@rev──► state bucket (key: stream, no TTL): epoch, owner, next segment
//!                         (compare-and-set: a stale owner's write fails)
//! ```
//!
//! A [`Lease`] is held while its owner renews it: the key expires on the
//! server a TTL after its last write, and the owner itself stops trusting
//! it earlier ([`Lease::is_held`]: four fifths of the TTL after the last
//! renewal was *sent*, so before the server can let another instance take
//! it). Every write an owner makes is checked against that fence first;
//! the stream's state is moved on by compare-and-set, so an owner that was
//! paused or cut off past its lease finds its next state write refused
//! (the new owner bumped the epoch when it took the stream).
//!
//! No protocol of our own: the atomic create, the TTL and the
//! compare-and-set are JetStream's key-value semantics (`async-nats`).

#![warn(unreachable_pub)]

mod config;
mod error;
mod key;
mod lease;
mod leases;
mod record;
#[cfg(feature = "testing")]
pub mod testing;

pub use config::{ClusterConfig, DEFAULT_TTL};
pub use error::{ClusterError, LeaseLost};
pub use lease::{Lease, Renewal};
pub use leases::{Acquired, Leases};
pub use record::{LeaseRecord, StreamState};
