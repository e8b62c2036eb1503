//! The service of a cluster scenario: a real nats-server and N `ingest
//! serve` processes ([`instance`]) sharing the streams through it, each
//! reaching NATS through a fault proxy of its own (so that one can be cut
//! off), and the scenario's faults played on them at their times.
//!
//! ```text
//!  instance i1 ──► proxy 1 ──┐
//!  instance i2 ──► proxy 2 ──┼──► nats-server (JetStream: the leases)
//!  instance iN ──► proxy N ──┘
//! ```

mod instance;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cluster::testing::NatsServer;
use serde::Serialize;
use tokio::sync::watch;

use crate::error::HarnessError;
use crate::plan::cluster::{ClusterFault, ClusterFaultKind, ClusterPlan};
use crate::world::faults::proxy::{FaultProxy, Flow};
use instance::{Instance, InstanceArgs};

pub(crate) use instance::out_dir;

/// How long one instance is given to answer `/v1/streams`: a paused one
/// never does.
const ANSWER_WITHIN: Duration = Duration::from_millis(500);
/// How often the instances are asked who serves a stream.
const ASK_EVERY: Duration = Duration::from_millis(100);

/// What a fault did, for the report and the assessment.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterEvent {
    /// From the scenario's start.
    pub at_s: f64,
    pub what: String,
    /// The instance it struck, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

pub(crate) struct Cluster {
    nats: NatsServer,
    /// Instance k's way to NATS.
    proxies: Vec<FaultProxy>,
    /// Every instance, `None` once it is gone (killed or drained).
    instances: Vec<Option<Instance>>,
    /// The HTTP bases of the instances still there.
    bases: watch::Sender<Vec<String>>,
    stops: Vec<Option<String>>,
    pub(crate) events: Vec<ClusterEvent>,
}

impl Cluster {
    /// Starts NATS and `plan.instances()` instances of `ingest serve`
    /// with `serve` (their flags but NATS and names); instance k keeps its
    /// segments in `out_dir(segments, name)` and logs in `log_dir`.
    pub(crate) async fn start(
        plan: &ClusterPlan,
        serve: &[String],
        segments: &Path,
        log_dir: &Path,
        bases: watch::Sender<Vec<String>>,
    ) -> Result<Self, HarnessError> {
        let nats = NatsServer::try_start().await.map_err(HarnessError::Nats)?;
        let mut proxies = Vec::new();
        let mut instances = Vec::new();
        for (name, out) in instance_dirs(plan, segments) {
            let proxy = FaultProxy::start(&nats.authority())
                .await
                .map_err(HarnessError::Nats)?;
            let mut args = serve.to_vec();
            args.extend([
                "--out".to_owned(),
                out.display().to_string(),
                "--lease-ttl".to_owned(),
                format!("{}ms", plan.lease_ttl().as_millis()),
            ]);
            let args = InstanceArgs {
                log: log_dir.join(format!("instance-{name}.log")),
                name,
                serve: args,
            };
            instances.push(Some(
                Instance::start(&args, &format!("nats://{}", proxy.authority())).await?,
            ));
            proxies.push(proxy);
        }
        let cluster = Self {
            nats,
            proxies,
            instances,
            bases,
            stops: Vec::new(),
            events: Vec::new(),
        };
        cluster.publish_bases();
        Ok(cluster)
    }

    fn publish_bases(&self) {
        let bases = self.instances.iter().flatten().map(|i| i.base.clone()).collect();
        self.bases.send_replace(bases);
    }

    /// The instance serving stream `id` now, asked until one says so.
    async fn owner_of(&self, client: &reqwest::Client, id: &str, deadline: Instant) -> Option<usize> {
        let mut ask = tokio::time::interval(ASK_EVERY);
        while Instant::now() < deadline {
            ask.tick().await;
            for (k, instance) in self.instances.iter().enumerate() {
                let Some(instance) = instance else { continue };
                if serves(client, &instance.base, id).await {
                    return Some(k);
                }
            }
        }
        None
    }

    /// Plays `fault` at its time; `ids` maps a stream's name to its id.
    pub(crate) async fn play(
        &mut self,
        fault: &ClusterFault,
        id_of: impl Fn(&str) -> Option<String>,
        client: &reqwest::Client,
        started: Instant,
        deadline: Instant,
    ) -> Result<(), HarnessError> {
        // When the fault strikes is the scenario's subject.
        tokio::time::sleep_until(tokio::time::Instant::from_std(started + fault.at)).await;
        let target = match fault.what.owner_of() {
            Some(name) => {
                let id = id_of(name).unwrap_or_default();
                match self.owner_of(client, &id, deadline).await {
                    Some(k) => Some(k),
                    None => {
                        self.note(
                            started,
                            format!("no instance served {name}: the fault found no target"),
                            None,
                        );
                        return Ok(());
                    }
                }
            }
            None => None,
        };
        let name = target.and_then(|k| self.instances[k].as_ref().map(|i| i.name.clone()));
        match &fault.what {
            ClusterFaultKind::Kill { .. } => {
                let k = target.expect("a kill has a target");
                if let Some(mut gone) = self.instances[k].take() {
                    gone.signal(libc::SIGKILL)?;
                    let _ = gone.wait().await;
                }
                self.publish_bases();
                self.note(started, "SIGKILL".to_owned(), name);
            }
            ClusterFaultKind::Pause { pause, .. } => {
                let k = target.expect("a pause has a target");
                let instance = self.instances[k].as_ref().expect("a live target");
                instance.signal(libc::SIGSTOP)?;
                self.note(started, "SIGSTOP".to_owned(), name.clone());
                tokio::time::sleep(*pause).await;
                let instance = self.instances[k].as_ref().expect("a live target");
                instance.signal(libc::SIGCONT)?;
                self.note(started, "SIGCONT".to_owned(), name);
            }
            ClusterFaultKind::Drain { .. } => {
                let k = target.expect("a drain has a target");
                self.note(started, "SIGTERM".to_owned(), name.clone());
                if let Some(mut gone) = self.instances[k].take() {
                    gone.signal(libc::SIGTERM)?;
                    self.stops.push(gone.wait().await);
                }
                self.publish_bases();
                self.note(started, "exited".to_owned(), name);
            }
            ClusterFaultKind::RestartNats { down_for } => {
                self.nats.stop().await.map_err(HarnessError::Nats)?;
                self.note(started, "nats-server stopped".to_owned(), None);
                tokio::time::sleep(*down_for).await;
                self.nats.start_again().await.map_err(HarnessError::Nats)?;
                self.note(started, "nats-server started again".to_owned(), None);
            }
            ClusterFaultKind::CutNats { cut, .. } => {
                let k = target.expect("a cut has a target");
                self.proxies[k].set_flow(Flow::Stalled);
                self.note(started, "cut off from NATS".to_owned(), name.clone());
                tokio::time::sleep(*cut).await;
                self.proxies[k].set_flow(Flow::Normal);
                self.note(started, "NATS reachable again".to_owned(), name);
            }
        }
        Ok(())
    }

    fn note(&mut self, started: Instant, what: String, instance: Option<String>) {
        tracing::info!(?instance, "cluster fault: {what}");
        self.events.push(ClusterEvent {
            at_s: started.elapsed().as_secs_f64(),
            what,
            instance,
        });
    }

    /// Every instance's `/metrics`, one after the other.
    pub(crate) async fn metrics(&self, client: &reqwest::Client) -> String {
        let mut all = String::new();
        for instance in self.instances.iter().flatten() {
            let text = match client
                .get(format!("{}/metrics", instance.base))
                .timeout(ANSWER_WITHIN)
                .send()
                .await
            {
                Ok(answer) => answer.text().await.unwrap_or_default(),
                Err(e) => format!("# /metrics did not answer: {e}\n"),
            };
            all.push_str(&format!("# instance {}\n{text}", instance.name));
        }
        all
    }

    /// What `ingest cluster status --json` says of every stream: one JSON
    /// object per stream.
    pub(crate) async fn status(&self) -> Vec<serde_json::Value> {
        let Ok(binary) = instance::ingest_binary() else {
            return Vec::new();
        };
        let Ok(output) = tokio::process::Command::new(binary)
            .args(["cluster", "status", "--json", "--nats", &self.nats.url()])
            .output()
            .await
        else {
            return Vec::new();
        };
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Stops every instance still there as SIGTERM does; how each ended,
    /// drained ones included (`None`: exit code 0).
    pub(crate) async fn stop(mut self) -> Vec<Option<String>> {
        for instance in self.instances.iter_mut() {
            if let Some(mut running) = instance.take() {
                let stopped = match running.signal(libc::SIGTERM) {
                    Ok(()) => running.wait().await,
                    Err(e) => Some(e.to_string()),
                };
                self.stops.push(stopped);
            }
        }
        self.bases.send_replace(Vec::new());
        self.stops
    }
}

/// Whether the instance at `base` serves stream `id` now.
async fn serves(client: &reqwest::Client, base: &str, id: &str) -> bool {
    super::streams_at(client, base, ANSWER_WITHIN)
        .await
        .is_some_and(|view| view.streams.iter().any(|s| s.id == id && s.state == "running"))
}

/// Each instance's name (i1, i2, ...) and segments folder.
pub(crate) fn instance_dirs(plan: &ClusterPlan, segments: &Path) -> Vec<(String, PathBuf)> {
    (1..=plan.instances())
        .map(|k| {
            let name = format!("i{k}");
            let dir = out_dir(segments, &name);
            (name, dir)
        })
        .collect()
}
