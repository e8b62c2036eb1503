//! Scenario harness: a media engineer writes a YAML scenario, and the
//! harness runs it against a real RTMP server, real ffmpeg publishers and
//! the real ingest, then snapshots what happened.
//!
//! Data flows one way, through five stages, one module each, which
//! [`run_scenario`] calls in order:
//!
//! ```text
//!  plan ──► world ──► observe ──► assess ──► record
//!  file,    server,    ffprobe,    outcome,    artifacts, outcome.yaml,
//!  fixture, publishes, STS facts   budgets,    report.json, snapshot;
//!  compat   faults,                Unmet       per run: summary, JUnit,
//!           STS, ingest                        index.html
//! ```
//!
//! `plan` checks a scenario against its fixture once; `world` runs the
//! server, the publishers, the faults, the STS and the ingest, and leaves
//! raw observations; `observe` probes what was written; `assess` turns
//! facts into the outcome, the report and typed [`Unmet`] expectations;
//! `record` writes everything once, at the end. The [`suite`] drives runs
//! for the `e2e` front end and the `scenarios` test target; [`conformance`]
//! is the media-server conformance suite.

#![warn(unreachable_pub)]

mod assess;
pub mod conformance;
mod error;
mod observe;
mod plan;
mod record;
mod runner;
pub mod suite;
mod world;

pub use assess::unmet::{Stated, StsUnmet, Unmet};
pub use assess::{Assessment, assess};
pub use error::HarnessError;
pub use observe::segments::probe_segments;
pub use observe::{Observed, ObservedStream, observe};
pub use plan::catalog::workspace_root;
pub use plan::scenario::{ScenarioFile, json_schema};
pub use plan::selection::{Selection, Shard};
pub use plan::{Plan, RunSettings, stream_id};
pub use record::html::{RunPage, page as html_page};
pub use record::junit::{Case as JunitCase, render as junit_report};
pub use record::summary::{Row as SummaryRow, table as summary_table};
pub use record::{ScenarioResult, artifacts::run_dir};
pub use runner::{run_scenario, tidy};
pub use world::server::nginx_conf::config as nginx_config;
pub use world::server::{MediaServer, ServerSettings, leftovers};
pub use world::{IngestFailure, PhaseObservation, StreamObservation, run as run_world};
