//! The world of a service scenario: the live-dubbing service (the same
//! library `ingest serve` runs) against the server under test, the echo
//! STS answering a tone, one publisher per stream on its own schedule
//! ([`publisher`]), and an independent reader of every output
//! ([`reader`], ffmpeg over RTMP). A scheduled restart stops the service
//! as SIGTERM does and starts it again on the same folder.
//!
//! ```text
//!  service ◄── MediaMTX's API            publishers ──► server ──► service's workers ──► live/<id>/out ──► ffmpeg readers
//!     └── /v1/streams: what each worker received (a publisher's end is released on it)
//! ```

mod address;
pub(crate) mod cluster;
mod publisher;
mod reader;
mod side;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use service::{ServiceConfig, StreamsView};
use tokio::sync::watch;

use crate::error::HarnessError;
use crate::plan::Plan;
use crate::plan::service::{DUB_TONE_HZ, ServicePlan, in_app};
use crate::plan::sts::StsPlan;
use crate::world::server::MediaServer;
use crate::world::sts_side::StsSide;

pub(crate) use address::{ANSWER_WITHIN, ASK_EVERY, RefusalsSeen, ServiceAddress, streams_at, until_done};
pub(crate) use reader::OutputRead;
use side::ServiceSide;

/// The grace the harness gives the service unless the scenario says.
const DEFAULT_GRACE: Duration = Duration::from_secs(2);

/// What a service scenario's world left.
#[derive(Debug, Clone)]
pub struct ServiceObservation {
    pub streams: Vec<ServiceStreamObservation>,
    /// `/v1/streams` once every publish was over and every worker stopped.
    pub view: Option<StreamsView>,
    /// `/metrics` at the same moment.
    pub metrics: String,
    /// Every path the service was heard refusing during the run, and why.
    pub refused: std::collections::BTreeMap<String, String>,
    /// Times the service was started (2 with a restart).
    pub service_runs: u32,
    /// How each service run ended: `None` for a clean stop.
    pub stops: Vec<Option<String>>,
    /// What went wrong on the harness's side (publishers, readers, waits).
    pub problems: Vec<String>,
    /// Per publish of a served stream: from the server making the path
    /// available to a worker reading it.
    pub attach_ms: Vec<f64>,
    pub segments_dir: PathBuf,
    pub timed_out: bool,
    /// A cluster scenario's instances and faults.
    pub cluster: Option<ClusterObservation>,
}

/// What a cluster scenario's service side left.
#[derive(Debug, Clone)]
pub struct ClusterObservation {
    /// Each instance's name and segments folder.
    pub instances: Vec<(String, PathBuf)>,
    /// The faults, as played.
    pub events: Vec<cluster::ClusterEvent>,
    /// `ingest cluster status --json` at the end, one object per stream.
    pub status: Vec<serde_json::Value>,
}

/// One stream of the scenario.
#[derive(Debug, Clone)]
pub struct ServiceStreamObservation {
    pub name: String,
    pub id: String,
    /// Where it was published.
    pub path: String,
    /// Whether its path has the input's shape (the service should serve it).
    pub input: bool,
    pub publishes: u32,
    /// Every read of its `live/<id>/out`, in order.
    pub outputs: Vec<OutputRead>,
}

/// The service's settings for `plan` against `server`.
fn config(
    plan: &ServicePlan,
    (server, api, app): (&MediaServer, &str, &str),
    segments_dir: PathBuf,
    sts: Option<(&StsPlan, String)>,
) -> ServiceConfig {
    let mut config = ServiceConfig {
        input: in_app(service::DEFAULT_INPUT, app),
        output: in_app(service::DEFAULT_OUTPUT, app),
        rtmp: format!("rtmp://{}", server.authority()),
        api: api.to_owned(),
        out: segments_dir,
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        poll: Duration::from_millis(100),
        grace: plan.grace.unwrap_or(DEFAULT_GRACE),
        output_delay: plan.output_delay,
        output_fallback: plan.output_fallback.unwrap_or_default(),
        ..ServiceConfig::default()
    };
    if let Some(max) = plan.max_streams {
        config.max_streams = max;
    }
    if let Some(d) = plan.segment_duration {
        config.segment_duration = d;
    }
    config.sts = sts.map(|(sts, url)| {
        let mut settings = ingest::StsSettings::new(url);
        if let Some(timeout) = sts.fragment_timeout {
            settings.fragment_timeout = timeout;
            settings.end_timeout = timeout;
        }
        settings
    });
    config
}

/// Runs the scenario's service world on `server`.
pub(crate) async fn run(
    plan: &Plan<'_>,
    service_plan: &ServicePlan,
    server: &MediaServer,
) -> Result<ServiceObservation, HarnessError> {
    let scenario = &plan.file.scenario;
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + scenario.timeout;
    let api = server
        .api()
        .ok_or_else(|| HarnessError::Server("the service needs the server's Control API".to_owned()))?
        .base()
        .to_owned();
    let sts_plan = scenario.sts.clone().map(|mut sts| {
        sts.tone_hz.get_or_insert(DUB_TONE_HZ);
        sts
    });
    let sts = match &sts_plan {
        Some(sts) => Some(StsSide::start(sts, &plan.dir.join("sts-peer.jsonl")).await?),
        None => None,
    };
    let segments_dir = plan.dir.join("segments");
    let app = plan.service_app();
    let config = config(
        service_plan,
        (server, &api, &app),
        segments_dir.clone(),
        sts_plan.as_ref().zip(sts.as_ref().map(|s| s.url.clone())),
    );
    let (address_tx, base) = watch::channel(Vec::new());
    let refusals = RefusalsSeen::default();
    let address = ServiceAddress::new(base, refusals.clone());
    let mut side = ServiceSide::start(service_plan, config, &plan.dir, address_tx.clone()).await?;
    let client = reqwest::Client::new();
    let media = plan
        .media
        .as_ref()
        .expect("a service scenario has a fixture (checked)");
    let (done_tx, done) = watch::channel(false);

    let readers = service_plan
        .streams
        .iter()
        .zip(&plan.stream_ids)
        .map(|(stream, id)| {
            let output = stream
                .is_input()
                .then(|| in_app(service::DEFAULT_OUTPUT, &app).replace("{id}", id));
            let dir = plan.dir.join(format!("out-{}", stream.name));
            let done = done.clone();
            async move {
                match output {
                    Some(out) => Some(reader::read_every_output(server, out, dir, done).await),
                    None => None,
                }
            }
        });
    let publishers = service_plan
        .streams
        .iter()
        .zip(&plan.stream_ids)
        .map(|(stream, id)| {
            publisher::publish(publisher::Schedule {
                stream,
                id,
                path: stream.path(&app, id),
                media,
                server,
                address: address.clone(),
                client: &client,
                log_dir: &plan.dir,
                started,
                deadline,
            })
        });
    let control = async {
        let id_of = |name: &str| {
            service_plan
                .streams
                .iter()
                .zip(&plan.stream_ids)
                .find(|(s, _)| s.name == name)
                .map(|(_, id)| id.clone())
        };
        let deadline_std = started + scenario.timeout;
        let schedule = side.play(service_plan, id_of, &client, started, deadline_std, &address_tx);
        let (published, played) = tokio::join!(futures_util::future::join_all(publishers), schedule);
        played?;
        // Every worker ends once its stream has been gone for the grace.
        let mut now = address.clone();
        let all_stopped = now
            .wait_for(&client, deadline, |v| {
                v.streams.iter().all(|s| s.state == "stopped")
            })
            .await;
        // Bounded: a cluster whose instances are all gone has no address.
        let view = tokio::time::timeout(ANSWER_WITHIN * 4, now.streams(&client))
            .await
            .ok()
            .flatten();
        let metrics = side.metrics(&client).await;
        let end = side.stop(&address_tx).await;
        done_tx.send_replace(true);
        Ok::<_, HarnessError>((published, end, all_stopped, view, metrics))
    };
    // The service's view is asked all along, so that a refusal that ends
    // (a slot frees) is heard.
    let watch_views = {
        let mut address = address.clone();
        let mut done = done.clone();
        let client = &client;
        async move {
            let mut ask = tokio::time::interval(ASK_EVERY);
            // The asking races the end too: once the service is stopped
            // there is no address, and asking waits for one that never
            // comes (a hang of the whole scenario, one run in twenty).
            loop {
                tokio::select! {
                    _ = async {
                        ask.tick().await;
                        address.streams(client).await
                    } => {}
                    () = until_done(&mut done) => return,
                }
            }
        }
    };
    let (controlled, reads, ()) = tokio::join!(control, futures_util::future::join_all(readers), watch_views);
    let (published, end, all_stopped, view, metrics) = controlled?;

    let mut problems = Vec::new();
    let mut attach_ms = Vec::new();
    let mut timed_out = false;
    if !all_stopped {
        timed_out = true;
        problems.push("not every worker stopped after its stream ended and the grace passed".to_owned());
    }
    let mut streams = Vec::new();
    for (((stream, id), done), read) in service_plan
        .streams
        .iter()
        .zip(&plan.stream_ids)
        .zip(published)
        .zip(reads)
    {
        problems.extend(done.problems);
        attach_ms.extend(done.attach_ms);
        timed_out |= done.timed_out;
        let outputs = match read {
            Some(Ok(reads)) => reads,
            Some(Err(e)) => {
                problems.push(format!("{}: reading its output: {e}", stream.name));
                Vec::new()
            }
            None => Vec::new(),
        };
        streams.push(ServiceStreamObservation {
            name: stream.name.clone(),
            id: id.clone(),
            path: stream.path(&app, id),
            input: stream.is_input(),
            publishes: done.publishes,
            outputs,
        });
    }
    if let Some(sts) = sts {
        sts.stop().await;
    }
    Ok(ServiceObservation {
        streams,
        view,
        metrics,
        refused: refusals.lock().expect("refusals lock").clone(),
        service_runs: end.runs,
        stops: end.stops,
        problems,
        attach_ms,
        cluster: service_plan.cluster.as_ref().map(|c| ClusterObservation {
            instances: cluster::instance_dirs(c, &segments_dir),
            events: end.events,
            status: end.status,
        }),
        segments_dir,
        timed_out,
    })
}
