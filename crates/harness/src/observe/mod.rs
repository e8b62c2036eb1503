//! The third stage: facts from what the world left. Every segment a stream
//! wrote, checked with ffprobe ([`segments`]), and what its STS fragments
//! came to ([`sts`]), from the worker's events, the manifest and the dubbed
//! files.

pub(crate) mod cluster;
pub(crate) mod segments;
pub(crate) mod service;
pub(crate) mod sts;

use crate::plan::Plan;
use crate::world::{StreamObservation, World};
use segments::ProbedSegment;
use sts::StsFacts;

/// One stream: what the world left, and what was found in it.
#[derive(Debug, Clone)]
pub struct ObservedStream {
    pub world: StreamObservation,
    pub segments: Vec<ProbedSegment>,
    pub sts: Option<StsFacts>,
}

/// Every stream of a scenario, observed; a service scenario's service.
#[derive(Debug, Clone)]
pub struct Observed {
    pub streams: Vec<ObservedStream>,
    pub service: Option<service::ObservedService>,
}

/// Probes and reads what each stream, or the service, left.
pub async fn observe(plan: &Plan<'_>, world: World) -> Observed {
    let world = match world {
        World::Streams(streams) => streams,
        World::Service(service) => {
            let windows: Vec<Option<u32>> = plan
                .file
                .scenario
                .service
                .iter()
                .flat_map(|s| &s.streams)
                .map(|s| s.stop_after.map(|d| d.as_millis() as u32))
                .collect();
            let media = plan
                .media
                .as_ref()
                .expect("a service scenario has a fixture (checked)");
            return Observed {
                streams: Vec::new(),
                service: Some(service::observe(*service, media, &windows).await),
            };
        }
    };
    let mut streams = Vec::new();
    for observation in world {
        let segments = segments::probe_segments(&observation).await;
        let sts = match &plan.file.scenario.sts {
            Some(sts) => {
                Some(sts::of_stream(&observation.events, &observation.segments_dir, sts.max_inflight()).await)
            }
            None => None,
        };
        streams.push(ObservedStream {
            world: observation,
            segments,
            sts,
        });
    }
    Observed {
        streams,
        service: None,
    }
}
