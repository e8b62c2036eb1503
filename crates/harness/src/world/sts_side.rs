//! The STS a stream's ingest talks to: the echo peer (restarted at its
//! media time when the scenario says so), or, for `down: true`, a port held
//! that refuses, until the stream run ends.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use media_tools::RefusingPort;

use crate::error::HarnessError;
use crate::plan::sts::StsPlan;
use crate::world::faults::FaultRecord;
use crate::world::sts_peer::StsPeer;

type SharedPeer = Arc<tokio::sync::Mutex<StsPeer>>;

pub(crate) struct StsSide {
    peer: Option<SharedPeer>,
    _down: Option<RefusingPort>,
    /// Where the ingest finds it.
    pub url: String,
    restart: Option<tokio::task::JoinHandle<Option<FaultRecord>>>,
}

impl StsSide {
    /// The STS of `plan`, its peer's log written to `log`.
    pub(crate) async fn start(plan: &StsPlan, log: &Path) -> Result<Self, HarnessError> {
        if plan.down {
            let port = RefusingPort::bind().map_err(|e| {
                HarnessError::StsPeer(format!("cannot hold a refusing port for the absent STS: {e}"))
            })?;
            return Ok(Self {
                peer: None,
                url: port.http_url(),
                _down: Some(port),
                restart: None,
            });
        }
        let peer = StsPeer::start(plan.peer_args(), log).await?;
        Ok(Self {
            url: peer.url(),
            peer: Some(Arc::new(tokio::sync::Mutex::new(peer))),
            _down: None,
            restart: None,
        })
    }

    /// Restarts the peer at media time `at` (at `speed` times realtime),
    /// counted from the first release (`media_zero`).
    pub(crate) fn restart_at(
        &mut self,
        at: Duration,
        speed: u32,
        mut media_zero: tokio::sync::watch::Receiver<Option<Instant>>,
        started: Instant,
    ) {
        let Some(peer) = self.peer.clone() else {
            return;
        };
        self.restart = Some(tokio::spawn(async move {
            let released = (*media_zero.wait_for(Option::is_some).await.ok()?)?;
            // When the STS goes down is the scenario's subject.
            tokio::time::sleep_until(tokio::time::Instant::from_std(released + at / speed.max(1))).await;
            let what = match peer.lock().await.restart().await {
                Ok(()) => "restarted the STS on the same port".to_owned(),
                Err(e) => format!("could not restart the STS: {e}"),
            };
            Some(FaultRecord {
                at_ms: started.elapsed().as_secs_f64() * 1e3,
                media_ms: at.as_secs_f64() * 1e3,
                what,
            })
        }));
    }

    /// Stops the peer; what its restart did, if it happened.
    pub(crate) async fn stop(self) -> Option<FaultRecord> {
        let mut record = None;
        if let Some(restart) = self.restart {
            restart.abort();
            record = restart.await.ok().flatten();
        }
        if let Some(peer) = self.peer {
            peer.lock().await.stop().await;
        }
        record
    }
}
