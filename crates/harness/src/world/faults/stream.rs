//! A running stream's faults: their proxies, the task that plays them once
//! the first publish is released, and the server restart and publisher
//! return that a fault ending the publisher calls for.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Fault, FaultKit};
use crate::world::server::MediaServer;
use crate::world::server::api::ApiClient;

pub(crate) struct StreamFaults {
    pub kit: Arc<FaultKit>,
    driver: Option<tokio::task::JoinHandle<()>>,
    /// Media time 0, once the first publish is released (set by the
    /// ingest's `released`).
    media_zero: tokio::sync::watch::Receiver<Option<Instant>>,
    /// A server restart still to do (its media time).
    pub restart_at: Option<Duration>,
    faults: Vec<Fault>,
    speed: u32,
}

impl StreamFaults {
    /// The proxies `faults` need in front of `server`; `None` without faults.
    pub(crate) async fn start(
        faults: &[Fault],
        server: &str,
        speed: u32,
        media_zero: tokio::sync::watch::Receiver<Option<Instant>>,
    ) -> std::io::Result<Option<Self>> {
        let Some(kit) = FaultKit::for_faults(faults, server).await? else {
            return Ok(None);
        };
        Ok(Some(Self {
            kit,
            driver: None,
            media_zero,
            restart_at: faults.iter().find_map(|f| match f {
                Fault::RestartServer { at, .. } => Some(*at),
                _ => None,
            }),
            faults: faults.to_vec(),
            speed,
        }))
    }

    /// When media time `at` comes, the first publish's release being 0.
    pub(crate) fn instant_of(&self, at: Duration) -> Option<tokio::time::Instant> {
        self.media_zero
            .borrow()
            .map(|zero| tokio::time::Instant::from_std(zero + at / self.speed.max(1)))
    }

    /// Starts playing the faults (once), media time 0 being `media_zero`.
    pub(crate) fn play(
        &mut self,
        media_zero: Instant,
        started: Instant,
        api: Option<ApiClient>,
        path: String,
    ) {
        if self.driver.is_some() {
            return;
        }
        let driver = self
            .kit
            .clone()
            .drive(self.faults.clone(), media_zero, self.speed, started, api, path);
        self.driver = Some(tokio::spawn(driver));
    }

    /// Whether a fault meant to end the publisher has struck by now.
    pub(crate) fn ended_the_publisher(&self) -> bool {
        self.faults
            .iter()
            .filter(|fault| fault.publisher_back_at().is_some())
            .any(|fault| {
                self.instant_of(fault.at())
                    .is_some_and(|at| at <= tokio::time::Instant::now())
            })
    }

    /// After a fault that ended the publisher for good: a server restart
    /// not done yet is done now, then the publisher comes back when the
    /// live stream reaches `from` (or at the deadline).
    pub(crate) async fn await_publisher_back(
        &mut self,
        server: &MediaServer,
        from: Duration,
        started: Instant,
        deadline: tokio::time::Instant,
    ) {
        self.restart_server(server, started).await;
        let ends_publisher = self.faults.iter().any(|f| f.publisher_back_at().is_some());
        if let Some(at) = self.instant_of(from).filter(|_| ends_publisher) {
            // The outage's length is the scenario's subject, as pacing is.
            tokio::time::sleep_until(at.min(deadline)).await;
        }
    }

    /// When a server restart is due (known once media time has begun).
    pub(crate) fn restart_due(&self) -> Option<tokio::time::Instant> {
        self.restart_at.and_then(|at| self.instant_of(at))
    }

    /// Restarts the server if a restart is due and not done yet; both
    /// sides' proxies then lead to where it listens now.
    pub(crate) async fn restart_server(&mut self, server: &MediaServer, started: Instant) {
        let Some(at) = self.restart_at.take() else {
            return;
        };
        let what = match server.restart().await {
            Ok(authority) => {
                self.kit.retarget(&authority);
                format!("restarted the server (listening on {authority})")
            }
            Err(e) => format!("could not restart the server: {e}"),
        };
        self.kit.record(started, at, what);
    }

    /// Stops playing; what the faults did.
    pub(crate) fn finish(self) -> Vec<super::FaultRecord> {
        if let Some(driver) = self.driver {
            driver.abort();
        }
        self.kit.records()
    }
}
