//! The ingest as a stream run drives it: the worker, started at once or
//! when a live scenario's `join_after` comes, its events recorded with their
//! times, and whether it is connected right now.

use std::time::{Duration, Instant};

use ingest::{WorkerEvent, WorkerHandle, WorkerRunner};

use crate::world::observation::IngestFailure;

/// The ingest as the stream run drives it: its events, recorded, and
/// whether it is connected right now.
pub(crate) struct Ingest {
    /// `None` until a live scenario's ingest joins (see `joining`).
    pub handle: Option<WorkerHandle>,
    /// A worker still to start, and when (`ingest.join_after`).
    joining: Option<(WorkerRunner, tokio::time::Instant)>,
    /// Why it could not start, if it could not.
    spawn_failure: Option<IngestFailure>,
    pub started: Instant,
    pub finished: bool,
    pub connected: bool,
    pub disconnects: usize,
    /// Media time 0: when the first publish was released. The one record
    /// of it; faults and the STS restart read or await it.
    pub media_zero: tokio::sync::watch::Sender<Option<Instant>>,
}

impl Ingest {
    /// A publish was released to the ingest; the first release is media
    /// time 0, which later ones keep. Returns media time 0.
    pub(crate) fn released(&mut self) -> Instant {
        let now = Instant::now();
        let mut zero = now;
        self.media_zero.send_if_modified(|set| match set {
            Some(earlier) => {
                zero = *earlier;
                false
            }
            None => {
                *set = Some(now);
                true
            }
        });
        zero
    }

    /// When a worker still to join will (none once it has, or without one).
    pub(crate) fn joins_at(&self) -> Option<Instant> {
        self.joining.as_ref().map(|(_, at)| at.into_std())
    }

    /// Asks the worker to finish; one that has not joined never will.
    pub(crate) fn stop(&mut self) {
        match &self.handle {
            Some(handle) => handle.stop(),
            None => {
                self.joining = None;
                self.finished = true;
            }
        }
    }

    /// How the worker ended.
    pub(crate) async fn result(&mut self) -> Result<(), IngestFailure> {
        if let Some(failure) = self.spawn_failure.take() {
            return Err(failure);
        }
        match self.handle.take() {
            Some(handle) => handle.wait().await.map(drop).map_err(|e| IngestFailure::from(&e)),
            None => Ok(()),
        }
    }

    /// Whether the ingest is on the path for publish `index`: connected
    /// (the server accepted its play, or media came), and, after a first
    /// publish, connected anew, since a server may keep a reader on the
    /// path (nginx-rtmp) while the guard ends its connection to the
    /// publisher that left.
    pub(crate) fn attached_for(&self, index: usize) -> bool {
        self.connected && self.disconnects >= index
    }

    /// The next event, recorded; `None` once the worker has finished. A
    /// worker still to join is started when its time comes.
    pub(crate) async fn next(&mut self, events: &mut Vec<(Duration, WorkerEvent)>) -> Option<WorkerEvent> {
        if self.finished {
            return std::future::pending().await;
        }
        if self.handle.is_none() {
            let Some(at) = self.joining.as_ref().map(|(_, at)| *at) else {
                return std::future::pending().await;
            };
            // When the worker joins is the scenario's subject. (Taken only
            // after the sleep: a select may drop this future while it sleeps.)
            tokio::time::sleep_until(at).await;
            let (runner, _) = self.joining.take().expect("checked before the sleep");
            match runner.spawn() {
                Ok(handle) => self.handle = Some(handle),
                Err(e) => {
                    self.spawn_failure = Some(IngestFailure::from(&e));
                    self.finished = true;
                    return None;
                }
            }
        }
        let handle = self.handle.as_mut().expect("joined above");
        let Some(event) = handle.next_event().await else {
            self.finished = true;
            return None;
        };
        match &event {
            WorkerEvent::Playing { .. } | WorkerEvent::Connected { .. } => self.connected = true,
            WorkerEvent::Disconnected { .. } => {
                self.connected = false;
                self.disconnects += 1;
            }
            _ => {}
        }
        events.push((self.started.elapsed(), event.clone()));
        Some(event)
    }
}

impl Ingest {
    /// The worker for `runner`: started now, or at `join_at`. `media_zero`
    /// is where the first release is recorded (see [`Self::released`]).
    pub(crate) fn start(
        runner: WorkerRunner,
        join_at: Option<tokio::time::Instant>,
        started: Instant,
        media_zero: tokio::sync::watch::Sender<Option<Instant>>,
    ) -> Result<Self, IngestFailure> {
        let (handle, joining) = match join_at {
            None => (Some(runner.spawn().map_err(|e| IngestFailure::from(&e))?), None),
            Some(at) => (None, Some((runner, at))),
        };
        Ok(Self {
            handle,
            joining,
            spawn_failure: None,
            started,
            finished: false,
            connected: false,
            disconnects: 0,
            media_zero,
        })
    }
}
