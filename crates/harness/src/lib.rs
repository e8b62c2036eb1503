//! Scenario harness: a media engineer writes a YAML scenario, and the
//! harness runs it against a real RTMP server, real ffmpeg publishers and
//! the real ingest, then snapshots what happened.
//!
//! Data flows one way: [`scenario`] file -> `compat` check -> running
//! world ([`server`], `stream_run`, with `faults` and `sts`) -> `observe`d
//! facts -> `outcome` -> `snapshot` and `artifacts`. The public modules
//! are what a front end drives: the format, the suite and its runner, the
//! servers, the reports and the conformance checks.

mod artifacts;
mod catalog;
mod compat;
pub mod conformance;
mod error;
mod faults;
pub mod junit;
mod nginx;
mod observe;
mod outcome;
pub mod runner;
pub mod scenario;
pub mod selection;
pub mod server;
mod snapshot;
mod stream_run;
mod sts;
pub mod suite;
pub mod summary;

pub use artifacts::run_dir;
pub use catalog::workspace_root;
pub use error::HarnessError;
pub use nginx::config as nginx_config;
pub use observe::probe_segments;
