//! Scenario harness: a media engineer writes a YAML scenario, and the
//! harness runs it against a real RTMP server, real ffmpeg publishers and
//! the real ingest, then snapshots what happened.
//!
//! Data flows one way: [`scenario`] file -> [`compat`] check -> running
//! world ([`server`], [`stream_run`]) -> [`observe`]d facts -> [`outcome`]
//! -> [`snapshot`] and [`artifacts`].

pub mod artifacts;
pub mod catalog;
pub mod compat;
pub mod conformance;
pub mod error;
pub mod faults;
pub mod junit;
pub mod nginx;
pub mod observe;
pub mod outcome;
pub mod runner;
pub mod scenario;
pub mod selection;
pub mod server;
pub mod snapshot;
pub mod stream_run;
pub mod sts;
pub mod suite;
pub mod summary;

pub use error::HarnessError;
