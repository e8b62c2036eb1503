//! The worker manager: reads what MediaMTX lists (every poll interval, and
//! at once when a hook nudges), asks the [`Roster`] what to do, and does
//! it: starts and stops workers, records refusals, keeps the views and the
//! metrics in step. On stop, every worker is asked to finish (flushing its
//! segments, ending its STS session and its output) and awaited.
//!
//! An API that does not answer changes nothing: the workers keep running
//! (they reconnect on their own) until MediaMTX answers again, so a
//! restarted or unreachable API never stops a stream.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ingest::{Stopper, StreamId};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::sync::watch;

use crate::config::ServiceConfig;
use crate::discovery::Discovery;
use crate::leasing::{Claim, Held};
use crate::metrics::Reason;
use crate::roster::{Action, Refusal, Roster};
use crate::shared::Shared;
use crate::streams::{RefusedView, StreamView};
use crate::worker::{self, Ended};

/// How long a stopping service waits for its workers: each holds its output
/// for the output's delay (seconds) before its last frame leaves.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(60);
/// Streams no longer served stay in `/v1/streams` (as `stopped`) up to this
/// many, the oldest forgotten first.
const STOPPED_KEPT: usize = 256;

pub(crate) struct Manager {
    config: ServiceConfig,
    shared: Arc<Shared>,
    roster: Roster,
    discovery: Discovery,
    workers: BTreeMap<StreamId, Stopper>,
    /// Streams ever given a worker (for the `discovered` count).
    seen: BTreeSet<StreamId>,
    /// Streams stopped, oldest first.
    stopped: Vec<StreamId>,
    ended_tx: UnboundedSender<Ended>,
    ended_rx: UnboundedReceiver<Ended>,
    /// In a cluster: the leases, claims coming back, and the keepers of
    /// the leases held (awaited on stop, so that each is released).
    leases: Option<Arc<cluster::Leases>>,
    claims_tx: UnboundedSender<(StreamId, Claim)>,
    claims_rx: UnboundedReceiver<(StreamId, Claim)>,
    /// Streams waiting to be claimed: one claim is out at a time, so that
    /// each bid counts the streams the claims before it won.
    to_claim: std::collections::VecDeque<StreamId>,
    claiming: bool,
    keepers: Vec<tokio::task::JoinHandle<()>>,
}

/// How soon a stream served elsewhere is claimed again: its owner's death
/// shows as its lease's expiry, which this much polling notices.
fn claim_again(leases: &cluster::Leases) -> Duration {
    leases.ttl() / 10
}

impl Manager {
    pub(crate) fn new(
        config: ServiceConfig,
        shared: Arc<Shared>,
        leases: Option<Arc<cluster::Leases>>,
    ) -> Self {
        let (ended_tx, ended_rx) = unbounded_channel();
        let (claims_tx, claims_rx) = unbounded_channel();
        Self {
            roster: Roster::new(
                config.input_pattern(),
                config.max_streams,
                config.grace,
                config.restart.clone(),
            ),
            discovery: Discovery::new(&config.api),
            config,
            shared,
            workers: BTreeMap::new(),
            seen: BTreeSet::new(),
            stopped: Vec::new(),
            ended_tx,
            ended_rx,
            leases,
            claims_tx,
            claims_rx,
            to_claim: std::collections::VecDeque::new(),
            claiming: false,
            keepers: Vec::new(),
        }
    }

    /// Runs until `stop` turns true, then stops every worker.
    pub(crate) async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut poll = tokio::time::interval(self.config.poll);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let shared = Arc::clone(&self.shared);
        loop {
            let deadline = self.roster.next_deadline();
            tokio::select! {
                _ = poll.tick() => self.poll().await,
                () = shared.nudge.notified() => self.poll().await,
                Some((id, failure)) = self.ended_rx.recv() => self.ended(&id, failure),
                Some((id, claim)) = self.claims_rx.recv() => self.claimed(id, claim),
                () = sleep_until(deadline) => {
                    let actions = self.roster.tick(Instant::now());
                    self.execute(actions);
                }
                () = stopped(&mut stop) => break,
            }
        }
        self.shutdown().await;
    }

    async fn poll(&mut self) {
        match self.discovery.available().await {
            Ok(paths) => {
                let was_down = self.shared.api_problem.lock().expect("api lock").take();
                if let Some(problem) = was_down {
                    tracing::info!(api = %self.config.api, "MediaMTX's API answers (before: {problem})");
                }
                self.shared.metrics.api_up.set(1);
                let actions = self.roster.listed(Instant::now(), &paths);
                self.execute(actions);
            }
            Err(e) => {
                let problem = e.to_string();
                let mut current = self.shared.api_problem.lock().expect("api lock");
                if current.as_deref() != Some(problem.as_str()) {
                    tracing::warn!("MediaMTX's API does not answer; workers keep running: {problem}");
                    *current = Some(problem);
                }
                self.shared.metrics.api_up.set(0);
            }
        }
    }

    fn execute(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Start(id) => self.start(id),
                Action::Stop(id) => {
                    tracing::info!(stream = %id, "stopping the worker: its stream has gone");
                    if let Some(stopper) = self.workers.get(&id) {
                        stopper.stop();
                    }
                }
                Action::Refuse { path, reason } => {
                    let label = match reason {
                        Refusal::Capacity { .. } => "capacity",
                        Refusal::BadId(_) => "bad_id",
                    };
                    self.shared
                        .metrics
                        .refused
                        .get_or_create(&Reason {
                            reason: label.to_owned(),
                        })
                        .inc();
                    tracing::warn!(path = %path, "refused: {reason}");
                }
            }
        }
        self.sync_views();
    }

    /// Starts `id`'s worker; in a cluster, once its lease is taken.
    fn start(&mut self, id: StreamId) {
        if self.leases.is_none() {
            self.start_worker(id, None);
            return;
        }
        if !self.to_claim.contains(&id) {
            self.to_claim.push_back(id);
        }
        self.claim_next();
    }

    /// Sends the next claim out, unless one is out: streams that appear
    /// together are claimed one after the other, each bid made with the
    /// streams won so far, so that equal instances share them out.
    fn claim_next(&mut self) {
        let Some(leases) = &self.leases else {
            return;
        };
        if self.claiming {
            return;
        }
        let Some(id) = self.to_claim.pop_front() else {
            return;
        };
        self.claiming = true;
        let load = (self.workers.len(), self.config.max_streams);
        let poll = self.config.poll;
        let claims = self.claims_tx.clone();
        let leases = Arc::clone(leases);
        tokio::spawn(async move {
            let _ = claims.send(crate::leasing::claim(leases, id, load, poll).await);
        });
    }

    /// A claim came back: its outcome shows in the views at once.
    fn claimed(&mut self, id: StreamId, claim: Claim) {
        self.claiming = false;
        self.handle_claim(id, claim);
        self.claim_next();
        self.sync_views();
    }

    fn handle_claim(&mut self, id: StreamId, claim: Claim) {
        let Some(leases) = self.leases.clone() else {
            return;
        };
        let wanted =
            self.roster.slot(&id) == Some(crate::roster::Slot::Running) && !self.workers.contains_key(&id);
        match claim {
            Claim::Taken(lease) if wanted => self.start_worker(id, Some(Held::new(lease))),
            // The stream left (or the service stops) while it was claimed.
            Claim::Taken(lease) => {
                tokio::spawn(async move {
                    let _ = lease.release(&leases).await;
                });
            }
            Claim::Elsewhere(owner) => {
                self.note_owner(&id, Some(owner));
                self.roster.elsewhere(&id, Instant::now() + claim_again(&leases));
            }
            Claim::Unasked(why) => {
                tracing::warn!(stream = %id, "the lease could not be asked for; trying again: {why}");
                self.roster.elsewhere(&id, Instant::now() + claim_again(&leases));
            }
        }
    }

    /// A stream taken from another instance says so in its manifest first
    /// (a write like any other: behind the lease's fence).
    fn record_takeover(
        &self,
        id: &StreamId,
        config: &ingest::WorkerConfig,
        held: &Held,
    ) -> Result<(), ingest::IngestError> {
        let (Some(leases), Some(from)) = (&self.leases, held.taken().previous_owner.clone()) else {
            return Ok(());
        };
        held.fence.check()?;
        let dir = config.stream_dir();
        std::fs::create_dir_all(&dir).map_err(|e| ingest::IngestError::Io {
            path: dir.clone(),
            error: e,
        })?;
        let record = ingest::TakeoverRecord {
            from,
            by: leases.instance().to_owned(),
            epoch: held.taken().epoch,
            first_segment: held.first_segment,
        };
        tracing::info!(stream = %id, from = %record.from, first_segment = record.first_segment, "taking the stream over");
        ingest::Manifest::open(&dir)?.append(&ingest::ManifestEntry::Takeover(record))
    }

    /// Which instance serves `id`, in its view (`None`: this one).
    fn note_owner(&self, id: &StreamId, owner: Option<String>) {
        let mut streams = self.shared.streams.lock().expect("streams lock");
        let view = streams.by_id.entry(id.to_string()).or_insert_with(|| StreamView {
            id: id.to_string(),
            ..StreamView::default()
        });
        view.input = self.config.input_pattern().path(id);
        view.served_by = owner;
    }

    fn start_worker(&mut self, id: StreamId, held: Option<Held>) {
        let restart = self.seen.contains(&id);
        if !restart {
            self.seen.insert(id.clone());
            self.shared.metrics.discovered.inc();
        }
        self.stopped.retain(|s| *s != id);
        {
            let mut streams = self.shared.streams.lock().expect("streams lock");
            let view = streams.by_id.entry(id.to_string()).or_insert_with(|| StreamView {
                id: id.to_string(),
                ..StreamView::default()
            });
            view.input = self.config.input_pattern().path(&id);
            view.output = self.config.output_path(&id);
            view.worker_starts += 1;
            if restart {
                view.restarts += 1;
            }
        }
        let metrics = &self.shared.metrics;
        metrics.worker_starts.inc();
        if restart {
            metrics.worker_restarts.inc();
        }
        let spawned = self
            .config
            .worker(&id)
            .map_err(|e| e.to_string())
            .and_then(|config| {
                if let Some(held) = &held {
                    self.record_takeover(&id, &config, held)
                        .map_err(|e| e.to_string())?;
                }
                let leased = held.as_ref().map(|held| worker::Leased {
                    fence: held.fence.clone(),
                    first_segment: held.first_segment,
                    segments: held.segments.clone(),
                    continues_after: held.taken().written_until_ns,
                });
                worker::spawn(
                    id.clone(),
                    config,
                    Arc::clone(&self.shared),
                    self.ended_tx.clone(),
                    leased,
                )
                .map_err(|e| e.to_string())
            });
        match spawned {
            Ok(stopper) => {
                tracing::info!(stream = %id, restart, "worker started");
                if let (Some(held), Some(leases)) = (held, &self.leases) {
                    self.note_owner(&id, None);
                    self.keepers.retain(|k| !k.is_finished());
                    self.keepers.push(held.keep(Arc::clone(leases), stopper.clone()));
                }
                self.workers.insert(id, stopper);
            }
            // Not started is a failure like any other: started again later.
            Err(failure) => {
                tracing::warn!(stream = %id, "the worker could not start: {failure}");
                metrics.worker_failures.inc();
                self.ended(&id, Some(failure));
            }
        }
    }

    fn ended(&mut self, id: &StreamId, failure: Option<String>) {
        self.workers.remove(id);
        if let Some(failure) = &failure
            && let Some(view) = self
                .shared
                .streams
                .lock()
                .expect("streams lock")
                .by_id
                .get_mut(id.as_str())
        {
            view.last_error = Some(failure.clone());
        }
        let actions = self.roster.ended(Instant::now(), id, failure.as_deref());
        if self.roster.slot(id).is_none() {
            self.stopped.push(id.clone());
        }
        self.execute(actions);
    }

    /// The views' states, the refused paths and the active gauge, as the
    /// roster has them now.
    fn sync_views(&mut self) {
        if self.stopped.len() > STOPPED_KEPT {
            let forgotten: Vec<StreamId> = self.stopped.drain(..self.stopped.len() - STOPPED_KEPT).collect();
            let mut streams = self.shared.streams.lock().expect("streams lock");
            for id in forgotten {
                streams.by_id.remove(id.as_str());
            }
        }
        let mut streams = self.shared.streams.lock().expect("streams lock");
        for view in streams.by_id.values_mut() {
            let id = StreamId::parse(&view.id).ok();
            let slot = id.as_ref().and_then(|id| self.roster.slot(id));
            // In a cluster a stream is due to run here from the moment it
            // is to be claimed; until its lease is taken it runs nowhere
            // here, and saying "running" would show it served twice.
            let claiming = self.leases.is_some()
                && slot == Some(crate::roster::Slot::Running)
                && id.as_ref().is_some_and(|id| !self.workers.contains_key(id));
            view.state = if claiming {
                "claiming"
            } else {
                slot.map_or("stopped", |s| s.name())
            }
            .to_owned();
        }
        streams.refused = self
            .roster
            .refused()
            .map(|(path, reason)| RefusedView {
                path: path.clone(),
                reason: reason.to_string(),
            })
            .collect();
        self.shared.metrics.active.set(self.roster.active() as i64);
    }

    async fn shutdown(mut self) {
        self.shared
            .stopping
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let actions = self.roster.stop_all();
        tracing::info!(
            workers = self.workers.len(),
            "stopping: every worker finishes its stream"
        );
        for action in &actions {
            if let Action::Stop(id) = action
                && let Some(stopper) = self.workers.get(id)
            {
                stopper.stop();
            }
        }
        self.sync_views();
        let deadline = tokio::time::Instant::now() + SHUTDOWN_WAIT;
        self.await_workers(deadline).await;
        // Each keeper releases its lease once its worker ended: the other
        // instances take those streams at once, not a TTL later.
        for keeper in std::mem::take(&mut self.keepers) {
            let _ = tokio::time::timeout_at(deadline, keeper).await;
        }
    }

    async fn await_workers(&mut self, deadline: tokio::time::Instant) {
        while !self.workers.is_empty() {
            tokio::select! {
                Some((id, failure)) = self.ended_rx.recv() => self.ended(&id, failure),
                () = tokio::time::sleep_until(deadline) => {
                    let left: Vec<String> = self.workers.keys().map(ToString::to_string).collect();
                    tracing::warn!("stopping: workers still finishing after {SHUTDOWN_WAIT:?}, left: {}", left.join(", "));
                    break;
                }
            }
        }
    }
}

/// Returns once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}
