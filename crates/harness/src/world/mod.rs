//! The second stage: the running world of a scenario. A media server (see
//! [`server`]), and per stream ([`stream`]): the fault proxies ([`faults`]),
//! the STS ([`sts_side`], the echo peer of [`sts_peer`]), the ingest
//! ([`ingest`]) and one publish per window ([`publish`], ending in
//! [`linger`]). What it leaves is raw ([`observation`]): events, timings,
//! failures on the publishing side, the server's view, the faults played.

pub(crate) mod faults;
mod ingest;
mod linger;
mod observation;
mod publish;
pub(crate) mod server;
pub(crate) mod service;
mod stream;
pub(crate) mod sts_peer;
mod sts_side;

pub use observation::{IngestFailure, PhaseObservation, StreamObservation};

use crate::error::HarnessError;
use crate::plan::Plan;
use server::MediaServer;

/// What a scenario's world left: one observation per stream, or, for a
/// service scenario, the service's.
pub enum World {
    Streams(Vec<StreamObservation>),
    Service(Box<service::ServiceObservation>),
}

/// Runs the world of `plan` on `server`: the service's, or every stream's.
pub async fn run(plan: &Plan<'_>, server: &MediaServer) -> Result<World, HarnessError> {
    match &plan.file.scenario.service {
        Some(service_plan) => Ok(World::Service(Box::new(
            service::run(plan, service_plan, server).await?,
        ))),
        None => Ok(World::Streams(run_streams(plan, server).await?)),
    }
}

/// Runs every stream of `plan` on `server` (or on a server of its own, when
/// the scenario restarts its server, so that the scenarios beside it keep
/// theirs: its log is then the scenario's own `server.log`).
async fn run_streams(plan: &Plan<'_>, server: &MediaServer) -> Result<Vec<StreamObservation>, HarnessError> {
    let scenario = &plan.file.scenario;
    let restarts_server = scenario
        .faults
        .iter()
        .any(|f| matches!(f, faults::Fault::RestartServer { .. }));
    let private = match restarts_server {
        true => Some(server.twin(&plan.dir.join("server.log")).await?),
        false => None,
    };
    let server = private.as_ref().unwrap_or(server);
    let streams = plan.stream_ids.iter().map(|id| {
        stream::StreamRun {
            scenario,
            fixture: plan.media.as_ref(),
            server,
            stream_id: id.clone(),
            dir: plan.dir.clone(),
            source: plan.source,
        }
        .run()
    });
    let observations = futures_util::future::join_all(streams).await;
    if let Some(private) = private {
        private.shutdown().await;
    }
    Ok(observations)
}
