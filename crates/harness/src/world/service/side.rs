//! The service side of a service scenario: one service in this process (the
//! library `ingest serve` runs), restarted if the scenario says so, or a
//! cluster of `ingest serve` processes with its faults ([`super::cluster`]).
//! Either way the rest of the world knows it by the HTTP bases it serves on.

use std::path::Path;
use std::time::Instant;

use service::{Service, ServiceConfig};
use tokio::sync::watch;

use super::cluster::{Cluster, ClusterEvent};
use crate::error::HarnessError;
use crate::plan::service::ServicePlan;

pub(crate) enum ServiceSide {
    Local {
        /// `None` only while a restart is under way.
        running: Option<Service>,
        config: Box<ServiceConfig>,
        stops: Vec<Option<String>>,
        runs: u32,
    },
    Cluster(Box<Cluster>),
}

/// How the service side ended.
pub(crate) struct SideEnd {
    /// How each service run or instance stopped (`None`: cleanly).
    pub stops: Vec<Option<String>>,
    pub runs: u32,
    pub events: Vec<ClusterEvent>,
    /// `ingest cluster status --json`, one object per stream.
    pub status: Vec<serde_json::Value>,
}

impl ServiceSide {
    pub(crate) async fn start(
        plan: &ServicePlan,
        config: ServiceConfig,
        dir: &Path,
        bases: watch::Sender<Vec<String>>,
    ) -> Result<Self, HarnessError> {
        let Some(cluster) = &plan.cluster else {
            let running = Service::start(config.clone()).await?;
            bases.send_replace(vec![format!("http://{}", running.addr())]);
            return Ok(Self::Local {
                running: Some(running),
                config: Box::new(config),
                stops: Vec::new(),
                runs: 1,
            });
        };
        // The instances read the settings this process would have used.
        let file = dir.join("service.yaml");
        let yaml = serde_yaml::to_string(&config).map_err(|e| HarnessError::Io {
            path: file.clone(),
            source: std::io::Error::other(e),
        })?;
        std::fs::write(&file, yaml).map_err(|source| HarnessError::Io {
            path: file.clone(),
            source,
        })?;
        let serve = vec!["--config".to_owned(), file.display().to_string()];
        let started = Cluster::start(cluster, &serve, &config.out, dir, bases).await?;
        Ok(Self::Cluster(Box::new(started)))
    }

    /// Plays the scenario's schedule: the service's restart, or the
    /// cluster's faults, in order.
    pub(crate) async fn play(
        &mut self,
        plan: &ServicePlan,
        id_of: impl Fn(&str) -> Option<String>,
        client: &reqwest::Client,
        started: Instant,
        deadline: Instant,
        bases: &watch::Sender<Vec<String>>,
    ) -> Result<(), HarnessError> {
        match self {
            Self::Local {
                running,
                config,
                stops,
                runs,
            } => {
                let Some(at) = plan.restart_at else {
                    return Ok(());
                };
                // When the service restarts is the scenario's subject.
                tokio::time::sleep_until(tokio::time::Instant::from_std(started + at)).await;
                bases.send_replace(Vec::new());
                if let Some(first) = running.take() {
                    first.stopper().stop();
                    stops.push(first.wait().await.err().map(|e| e.to_string()));
                }
                let second = Service::start(config.as_ref().clone()).await?;
                bases.send_replace(vec![format!("http://{}", second.addr())]);
                *running = Some(second);
                *runs += 1;
                Ok(())
            }
            Self::Cluster(cluster) => {
                let faults = plan
                    .cluster
                    .as_ref()
                    .map(|c| c.faults.clone())
                    .unwrap_or_default();
                for fault in &faults {
                    cluster.play(fault, &id_of, client, started, deadline).await?;
                }
                Ok(())
            }
        }
    }

    /// `/metrics` of the service, or of every instance.
    pub(crate) async fn metrics(&self, client: &reqwest::Client) -> String {
        match self {
            Self::Local { running: None, .. } => String::new(),
            Self::Local {
                running: Some(running),
                ..
            } => match client
                .get(format!("http://{}/metrics", running.addr()))
                .timeout(super::ANSWER_WITHIN)
                .send()
                .await
            {
                Ok(answer) => answer.text().await.unwrap_or_default(),
                Err(e) => format!("# /metrics did not answer: {e}"),
            },
            Self::Cluster(cluster) => cluster.metrics(client).await,
        }
    }

    /// Stops what still runs, as SIGTERM does.
    pub(crate) async fn stop(self, bases: &watch::Sender<Vec<String>>) -> SideEnd {
        match self {
            Self::Local {
                running,
                mut stops,
                runs,
                ..
            } => {
                bases.send_replace(Vec::new());
                if let Some(running) = running {
                    running.stopper().stop();
                    stops.push(running.wait().await.err().map(|e| e.to_string()));
                }
                SideEnd {
                    stops,
                    runs,
                    events: Vec::new(),
                    status: Vec::new(),
                }
            }
            Self::Cluster(cluster) => {
                let status = cluster.status().await;
                let events = cluster.events.clone();
                let stops = cluster.stop().await;
                SideEnd {
                    runs: 1,
                    stops,
                    events,
                    status,
                }
            }
        }
    }
}
