//! Runs one stream of a scenario: the ingest in-process through
//! `WorkerRunner`, one ffmpeg publish per phase, everything awaited on
//! events, server words and process exits with deadlines, never on sleeps.
//!
//! Each publish sends a [`Feed`]: a lead-in the server can analyse, then a
//! hold, then the fixture window. The hold ends when the ingest reads the
//! path, by the server's word (its log line or API) where the server can
//! be asked, else by the ingest's own `connected` event. So the ingest
//! receives the window from its first keyframe on every server, and what
//! it writes does not depend on how fast it connected.
//!
//! ```text
//!  publish ─► [server: available] ─► [server: ingest reading] ─► release ─► ... publisher exits
//!             first_buffer and attach are timed from availability
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ingest::{IngestError, SourceElement, StreamId, WorkerConfig, WorkerEvent, WorkerHandle, WorkerRunner};
use media_tools::flv::FlvTag;
use media_tools::{Feed, Progress, PublishOptions, Publisher, RawPublisher, Window};

use crate::faults::{FaultKit, Side};
use crate::scenario::Scenario;
use crate::server::{MediaServer, Word};

/// How long each gate waits for the server's word. MediaMTX closes a
/// publisher that has not sent two seconds of media within its read
/// timeout (10 s), and a held one after 10 s of silence.
const GATE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stopped ingest may take to flush and finish.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// A fixture's media, read once per scenario.
#[derive(Debug, Clone)]
pub struct FixtureMedia {
    pub tags: Vec<FlvTag>,
    /// Length of one audio frame in ms (1024 samples).
    pub audio_frame_ms: f64,
    /// Length of one picture in seconds.
    pub video_frame_s: f64,
}

pub struct StreamPlan<'a> {
    pub scenario: &'a Scenario,
    pub fixture: Option<&'a FixtureMedia>,
    pub server: &'a MediaServer,
    pub stream_id: String,
    pub dir: PathBuf,
    pub source: SourceElement,
}

type SharedPeer = Arc<tokio::sync::Mutex<crate::sts::StsPeer>>;

/// The faults of a running stream: their proxies, and the task playing them
/// once the first publish is released.
struct Faults {
    kit: Arc<FaultKit>,
    driver: Option<tokio::task::JoinHandle<()>>,
    /// Media time 0, once the first publish is released (set by
    /// [`Ingest::released`]).
    media_zero: tokio::sync::watch::Receiver<Option<Instant>>,
    /// A server restart still to do (its media time).
    restart_at: Option<Duration>,
}

impl Faults {
    /// When media time `at` comes, the first publish's release being 0.
    fn instant_of(&self, at: Duration, speed: u32) -> Option<tokio::time::Instant> {
        self.media_zero
            .borrow()
            .map(|zero| tokio::time::Instant::from_std(zero + at / speed.max(1)))
    }
}

/// How the ingest ended, as outcomes compare it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestFailure {
    pub kind: ingest::ErrorKind,
    pub message: String,
}

impl From<&IngestError> for IngestFailure {
    fn from(e: &IngestError) -> Self {
        Self {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

/// One publish: what could be delivered, and how quickly the ingest came.
#[derive(Debug, Clone, Default)]
pub struct PhaseObservation {
    /// Pictures and pairable audio frames the window holds.
    pub video_frames: usize,
    pub audio_frames: usize,
    /// Where the window's last picture and audio frame end, on the
    /// publisher's timeline (seconds).
    pub video_end_s: Option<f64>,
    /// Where its window starts in the fixture: its publisher's first tag
    /// is at [`media_tools::LEAD_IN_MS`] of its own timeline.
    pub from_s: f64,
    pub audio_end_s: Option<f64>,
    /// From availability (or the publisher's start, when the server cannot
    /// tell) to the server's word that the ingest reads the path.
    pub attach_ms: Option<f64>,
    /// From the same instant to the ingest's first audio and video.
    pub first_buffer_ms: Option<f64>,
    /// Which instant the two figures above count from.
    pub timed_from: &'static str,
}

/// Everything seen while a stream ran.
#[derive(Debug, Clone)]
pub struct StreamObservation {
    pub stream_id: String,
    pub segments_dir: PathBuf,
    pub events: Vec<(Duration, WorkerEvent)>,
    pub result: Result<(), IngestFailure>,
    pub timed_out: bool,
    pub phases: Vec<PhaseObservation>,
    /// Problems on the publishing side: a gate that waited in vain (with
    /// the server's reason), a publisher that failed.
    pub publisher_failures: Vec<String>,
    /// What the server said about the path while media flowed (publisher,
    /// readers, byte counts), per publish.
    pub server_facts: Vec<serde_json::Value>,
    /// What the scenario's faults did, and when.
    pub faults: Vec<crate::faults::FaultRecord>,
    /// What the fragments came to, with an `sts:` block.
    pub sts: Option<crate::sts::StsFacts>,
}

/// The ingest as the stream run drives it: its events, recorded, and
/// whether it is connected right now.
struct Ingest {
    handle: WorkerHandle,
    started: Instant,
    finished: bool,
    connected: bool,
    disconnects: usize,
    /// Media time 0: when the first publish was released. The one record
    /// of it; faults and the STS restart read or await it.
    media_zero: tokio::sync::watch::Sender<Option<Instant>>,
}

impl Ingest {
    /// A publish was released to the ingest; the first release is media
    /// time 0, which later ones keep. Returns media time 0.
    fn released(&mut self) -> Instant {
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

    /// Whether the ingest is on the path for publish `index`: connected
    /// (the server accepted its play, or media came), and, after a first
    /// publish, connected anew, since a server may keep a reader on the
    /// path (nginx-rtmp) while the guard ends its connection to the
    /// publisher that left.
    fn attached_for(&self, index: usize) -> bool {
        self.connected && self.disconnects >= index
    }

    /// The next event, recorded; `None` once the worker has finished.
    async fn next(&mut self, events: &mut Vec<(Duration, WorkerEvent)>) -> Option<WorkerEvent> {
        if self.finished {
            return std::future::pending().await;
        }
        let Some(event) = self.handle.next_event().await else {
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

/// Where a publish stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gate {
    /// Waiting for the server to make the path available.
    Availability,
    /// Waiting for the ingest to read it.
    Reader,
    Released,
}

impl StreamPlan<'_> {
    fn worker_config(
        &self,
        faults: Option<&Faults>,
        sts_url: Option<String>,
    ) -> Result<WorkerConfig, IngestError> {
        let id = StreamId::parse(&self.stream_id)?;
        let mut config = WorkerConfig::new(id);
        let ingest = &self.scenario.ingest;
        let url = match (&ingest.url, faults.and_then(|f| f.kit.authority(Side::Ingest))) {
            (Some(url), _) => url.replace("{server}", self.server.authority()),
            (None, Some(proxy)) => format!("rtmp://{proxy}/{}", self.path()),
            (None, None) => self.server.url(&self.path()),
        };
        config.url = Some(ingest::RtmpUrl::parse(&url)?);
        config.output_dir = self.dir.join("segments");
        config.source = self.source;
        if let Some(d) = ingest.segment_duration {
            config.segment_duration = d;
        }
        if let Some(n) = ingest.max_buffers {
            config.max_buffers = n;
        }
        if let Some(t) = ingest.audio_validation_timeout {
            config.audio_validation_timeout = t;
        }
        if let Some(t) = ingest.idle_timeout {
            config.idle_timeout = t;
        }
        if let (Some(plan), Some(url)) = (&self.scenario.sts, sts_url) {
            let mut sts = ingest::StsSettings {
                url,
                ..ingest::StsSettings::default()
            };
            if let Some(t) = plan.fragment_timeout {
                sts.fragment_timeout = t;
            }
            config.sts = Some(sts);
        }
        Ok(config)
    }

    fn path(&self) -> String {
        StreamId::parse(&self.stream_id)
            .expect("the harness makes valid stream ids")
            .input_path(ingest::DEFAULT_APP_PATH)
    }

    /// Publish windows: one, or two around a restart or takeover, which
    /// happens at the first keyframe at or after the time asked for, so the
    /// second publisher resumes exactly where the first stopped.
    fn windows(&self, fixture: &FixtureMedia) -> Vec<Window> {
        let publish = &self.scenario.publish;
        let until = publish.stop_after.map(|d| d.as_millis() as u32);
        let keyframe_from = |requested: Duration| {
            fixture
                .tags
                .iter()
                .find(|t| t.is_keyframe() && t.timestamp >= requested.as_millis() as u32)
                .map_or(requested.as_millis() as u32, |t| t.timestamp)
        };
        // A fault that ends the publisher: it is cut off during the first
        // window, and comes back with the live stream of the moment.
        let back = self
            .scenario
            .faults
            .iter()
            .find_map(crate::faults::Fault::publisher_back_at);
        let Some(requested) = back.or(publish.restart_at).or(publish.takeover_at) else {
            return vec![Window {
                from_ms: 0,
                until_ms: until,
            }];
        };
        let at = keyframe_from(requested);
        vec![
            Window {
                from_ms: 0,
                until_ms: Some(at),
            },
            Window {
                from_ms: at,
                until_ms: until,
            },
        ]
    }

    pub async fn run(self) -> StreamObservation {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + self.scenario.timeout;
        let mut observation = StreamObservation {
            stream_id: self.stream_id.clone(),
            segments_dir: self.dir.join("segments").join(&self.stream_id),
            events: Vec::new(),
            result: Ok(()),
            timed_out: false,
            phases: Vec::new(),
            publisher_failures: Vec::new(),
            server_facts: Vec::new(),
            faults: Vec::new(),
            sts: None,
        };
        let windows = self.fixture.map(|f| self.windows(f)).unwrap_or_default();
        let restarts = windows.len() > 1;
        let (media_zero, media_zero_seen) = tokio::sync::watch::channel(None);
        let mut faults = match FaultKit::for_faults(&self.scenario.faults, self.server.authority()).await {
            Ok(kit) => kit.map(|kit| Faults {
                kit,
                driver: None,
                media_zero: media_zero_seen,
                restart_at: self.scenario.faults.iter().find_map(|f| match f {
                    crate::faults::Fault::RestartServer { at, .. } => Some(*at),
                    _ => None,
                }),
            }),
            Err(e) => {
                observation
                    .publisher_failures
                    .push(format!("cannot start the fault proxies: {e}"));
                return observation;
            }
        };
        let mut sts_peer = match self.start_sts_peer().await {
            Ok(peer) => peer,
            Err(e) => {
                observation.publisher_failures.push(e.to_string());
                return observation;
            }
        };
        // A fault that can end the ingest's connection must not end the
        // run: the worker reconnects, and is stopped once the stream is over.
        let reconnects = restarts || self.scenario.faults.iter().any(|f| f.may_lose_media());
        // An `sts:` block without a peer is an STS down for the whole
        // stream: a port that refuses, held until the run is over.
        let mut sts_down = None;
        let sts_url = match (&self.scenario.sts, &sts_peer) {
            (Some(_), Some(peer)) => Some(peer.lock().await.url()),
            (Some(_), None) => match media_tools::RefusingPort::bind() {
                Ok(port) => Some(sts_down.insert(port).http_url()),
                Err(e) => {
                    observation
                        .publisher_failures
                        .push(format!("cannot hold a refusing port for the absent STS: {e}"));
                    return observation;
                }
            },
            (None, _) => None,
        };
        let spawned = self.worker_config(faults.as_ref(), sts_url).and_then(|config| {
            WorkerRunner::new(config)
                .stop_when_stream_ends(!reconnects)
                .spawn()
        });
        let handle = match spawned {
            Ok(handle) => handle,
            Err(e) => {
                observation.result = Err(IngestFailure::from(&e));
                return observation;
            }
        };
        let mut ingest = Ingest {
            handle,
            started,
            finished: false,
            connected: false,
            disconnects: 0,
            media_zero,
        };
        let sts_restart = self.schedule_sts_restart(&sts_peer, &mut ingest);

        if let Some(fixture) = self.fixture {
            if let Some(delay) = self.scenario.publish.start_delay {
                // The delay is the scenario's subject (a late publisher), not
                // a wait for something to happen; events keep queueing.
                tokio::time::sleep_until(tokio::time::Instant::from_std(started + delay)).await;
            }
            // A publisher taken over stays connected until the server
            // closes it; it is kept until the stream run ends.
            let mut taken_over = Vec::new();
            for (index, window) in windows.iter().enumerate() {
                if index > 0 {
                    let from = Duration::from_millis(u64::from(window.from_ms));
                    self.await_publisher_back(&mut faults, from, ingest.started, deadline)
                        .await;
                }
                let feed = Feed::new(&fixture.tags, *window);
                let (mut phase, still_connected) = self
                    .publish(
                        index,
                        feed,
                        fixture,
                        &mut ingest,
                        (&mut observation, deadline),
                        &mut faults,
                    )
                    .await;
                phase.from_s = f64::from(window.from_ms) / 1e3;
                observation.phases.push(phase);
                taken_over.extend(still_connected);
                if ingest.finished || observation.timed_out {
                    break;
                }
            }
        }
        self.wind_down(ingest, windows.len(), reconnects, deadline, &mut observation)
            .await;
        if let Some(plan) = &self.scenario.sts {
            observation.sts = Some(
                crate::sts::facts::of_stream(
                    &observation.events,
                    &observation.segments_dir,
                    plan.max_inflight(),
                )
                .await,
            );
        }
        if let Some(restart) = sts_restart {
            restart.abort();
            if let Ok(Some(record)) = restart.await {
                observation.faults.push(record);
            }
        }
        if let Some(peer) = sts_peer.take() {
            peer.lock().await.stop().await;
        }
        if let Some(faults) = faults {
            if let Some(driver) = faults.driver {
                driver.abort();
            }
            observation.faults = faults.kit.records();
        }
        observation
    }

    /// The echo STS of this stream, when the scenario has one that is up.
    async fn start_sts_peer(&self) -> Result<Option<SharedPeer>, crate::error::HarnessError> {
        let Some(plan) = self.scenario.sts.as_ref().filter(|p| !p.down) else {
            return Ok(None);
        };
        let log = self.dir.join(format!("sts-{}.jsonl", self.stream_id));
        let peer = crate::sts::StsPeer::start(plan.peer_args(), &log).await?;
        Ok(Some(Arc::new(tokio::sync::Mutex::new(peer))))
    }

    /// Restarts the STS at its media time, counted from the first release;
    /// the task returns what it did, for the fault records.
    fn schedule_sts_restart(
        &self,
        peer: &Option<SharedPeer>,
        ingest: &mut Ingest,
    ) -> Option<tokio::task::JoinHandle<Option<crate::faults::FaultRecord>>> {
        let at = self.scenario.sts.as_ref()?.restart_at?;
        let peer = peer.clone()?;
        let mut media_zero = ingest.media_zero.subscribe();
        let speed = self.scenario.publish.pace.speed().max(1);
        let started = ingest.started;
        Some(tokio::spawn(async move {
            let released = (*media_zero.wait_for(Option::is_some).await.ok()?)?;
            // When the STS goes down is the scenario's subject.
            tokio::time::sleep_until(tokio::time::Instant::from_std(released + at / speed)).await;
            let what = match peer.lock().await.restart().await {
                Ok(()) => "restarted the STS on the same port".to_owned(),
                Err(e) => format!("could not restart the STS: {e}"),
            };
            Some(crate::faults::FaultRecord {
                at_ms: started.elapsed().as_secs_f64() * 1e3,
                media_ms: at.as_secs_f64() * 1e3,
                what,
            })
        }))
    }

    /// After a fault that ended the publisher for good: a server restart
    /// not done yet is done now, then the publisher comes back at its time.
    async fn await_publisher_back(
        &self,
        faults: &mut Option<Faults>,
        from: Duration,
        started: Instant,
        deadline: tokio::time::Instant,
    ) {
        let Some(faults) = faults.as_mut() else {
            return;
        };
        self.restart_server(faults, started).await;
        let ends_publisher = self
            .scenario
            .faults
            .iter()
            .any(|f| f.publisher_back_at().is_some());
        let speed = self.scenario.publish.pace.speed();
        if let Some(at) = faults.instant_of(from, speed).filter(|_| ends_publisher) {
            // The outage's length is the scenario's subject, as pacing is:
            // the publisher comes back when the live stream reaches `from`.
            tokio::time::sleep_until(at.min(deadline)).await;
        }
    }

    /// Restarts the server if a restart is due and not done yet; both
    /// sides' proxies then lead to where it listens now.
    async fn restart_server(&self, faults: &mut Faults, started: Instant) {
        let Some(at) = faults.restart_at.take() else {
            return;
        };
        let what = match self.server.restart().await {
            Ok(authority) => {
                faults.kit.retarget(&authority);
                format!("restarted the server (listening on {authority})")
            }
            Err(e) => format!("could not restart the server: {e}"),
        };
        faults.kit.record(started, at, what);
    }

    /// Releases publish `index` to the ingest; the first release starts
    /// media time and the faults played on it.
    fn release(
        &self,
        index: usize,
        publisher: &mut Publishing,
        ingest: &mut Ingest,
        faults: &mut Option<Faults>,
    ) {
        publisher.release();
        let media_zero = ingest.released();
        let Some(faults) = faults.as_mut().filter(|f| index == 0 && f.driver.is_none()) else {
            return;
        };
        let driver = faults.kit.clone().drive(
            self.scenario.faults.clone(),
            media_zero,
            self.scenario.publish.pace.speed(),
            ingest.started,
            self.server.api().cloned(),
            self.path(),
        );
        faults.driver = Some(tokio::spawn(driver));
    }

    /// One publish, from ffmpeg's start to its exit; the first publisher of
    /// a takeover ends its phase once its window is sent and is handed back,
    /// still connected.
    async fn publish(
        &self,
        index: usize,
        feed: Feed,
        fixture: &FixtureMedia,
        ingest: &mut Ingest,
        (observation, deadline): (&mut StreamObservation, tokio::time::Instant),
        faults: &mut Option<Faults>,
    ) -> (PhaseObservation, Option<Publishing>) {
        let end_of = |kind: u8, frame_s: f64| {
            feed.body
                .iter()
                .filter(|t| t.kind == kind)
                .map(|t| f64::from(t.timestamp) / 1e3 + frame_s)
                .reduce(f64::max)
        };
        let mut phase = PhaseObservation {
            video_frames: feed.video_frames(),
            audio_frames: feed.pairable_audio_frames(fixture.audio_frame_ms),
            video_end_s: end_of(media_tools::flv::VIDEO, fixture.video_frame_s),
            audio_end_s: end_of(media_tools::flv::AUDIO, fixture.audio_frame_ms / 1e3),
            timed_from: "availability",
            ..PhaseObservation::default()
        };
        let path = self.path();
        let log = self.dir.join(format!("ffmpeg-{}-{index}.log", self.stream_id));
        let taken_over = index == 0 && self.scenario.publish.takeover_at.is_some();
        let options = PublishOptions {
            pace: self.scenario.publish.pace,
            stay_connected: taken_over,
        };
        let mut publisher = if taken_over {
            Publishing::Raw(RawPublisher::start(
                feed,
                self.server.authority(),
                &path,
                &options,
                &log,
            ))
        } else {
            let url = match faults.as_ref().and_then(|f| f.kit.authority(Side::Publisher)) {
                Some(proxy) => format!("rtmp://{proxy}/{path}"),
                None => self.server.url(&path),
            };
            match Publisher::start(feed, &url, &options, &log) {
                Ok(p) => Publishing::Ffmpeg(p),
                Err(e) => {
                    observation.publisher_failures.push(e.to_string());
                    return (phase, None);
                }
            }
        };
        let publish_started = Instant::now();
        let mut timed_from = publish_started;
        let mut gate = Gate::Availability;
        let available = self.server.available(&path, publish_started, GATE_TIMEOUT);
        tokio::pin!(available);
        // Created once the path is available; until then it never resolves.
        let mut reading = Box::pin(futures_util::future::Either::Left(std::future::pending::<Word>()));
        let mut first_media = false;
        let speed = self.scenario.publish.pace.speed();
        loop {
            // Known once the first publish is released; done once.
            let restart_due = faults
                .as_ref()
                .filter(|_| index == 0)
                .and_then(|f| f.restart_at.and_then(|at| f.instant_of(at, speed)));
            tokio::select! {
                word = &mut available, if gate == Gate::Availability => {
                    match word {
                        Word::Said { at, .. } => timed_from = at,
                        Word::Unknown => phase.timed_from = "publisher start",
                        Word::Silent => {
                            observation.publisher_failures.push(format!(
                                "path '{path}' did not become available within {GATE_TIMEOUT:?} of publishing; {}",
                                self.server.explain(publish_started, &[&path, "closed:"])
                            ));
                            publisher.kill().await;
                            break;
                        }
                    }
                    gate = Gate::Reader;
                    reading = Box::pin(futures_util::future::Either::Right(
                        self.server.reading(&path, timed_from, GATE_TIMEOUT),
                    ));
                    if ingest.attached_for(index) && !self.server_word() {
                        phase.attach_ms = Some(0.0);
                        self.release(index, &mut publisher, ingest, faults);
                        gate = Gate::Released;
                    }
                }
                word = &mut reading, if gate == Gate::Reader => match word {
                    Word::Said { at, .. } => {
                        phase.attach_ms = Some(millis(at.saturating_duration_since(timed_from)));
                        self.release(index, &mut publisher, ingest, faults);
                        gate = Gate::Released;
                    }
                    // Decided by the ingest's own `connected` event instead.
                    Word::Unknown => reading = Box::pin(futures_util::future::Either::Left(std::future::pending())),
                    Word::Silent => {
                        observation.publisher_failures.push(format!(
                            "the ingest did not read path '{path}' within {GATE_TIMEOUT:?} of it becoming available; {}",
                            self.server.explain(timed_from, &[&path])
                        ));
                        publisher.kill().await;
                        break;
                    }
                },
                event = ingest.next(&mut observation.events) => match event {
                    None => {
                        // The worker is done (refused, failed or stopped):
                        // nobody will read what is held back.
                        publisher.kill().await;
                        break;
                    }
                    Some(WorkerEvent::Playing { .. } | WorkerEvent::Connected { .. })
                        if gate == Gate::Reader && !self.server_word() && ingest.attached_for(index) =>
                    {
                        phase.attach_ms = Some(millis(timed_from.elapsed()));
                        self.release(index, &mut publisher, ingest, faults);
                        gate = Gate::Released;
                    }
                    Some(WorkerEvent::TracksValidated(_)) if !first_media => {
                        first_media = true;
                        phase.first_buffer_ms = Some(millis(timed_from.elapsed()));
                        // Publisher and reader are both on the path now.
                        if let Some(facts) = self.server.path_facts(&path).await {
                            observation.server_facts.push(facts);
                        }
                    }
                    Some(_) => {}
                },
                _ = sleep_until_or_never(restart_due), if restart_due.is_some() => {
                    if let Some(faults) = faults.as_mut() {
                        self.restart_server(faults, ingest.started).await;
                    }
                }
                over = publisher.over() => {
                    // A fault meant to end this publisher did: not a failure.
                    let ended_by_fault = index == 0
                        && faults.as_ref().is_some_and(|f| {
                            self.scenario
                                .faults
                                .iter()
                                .filter(|fault| fault.publisher_back_at().is_some())
                                .any(|fault| f.instant_of(fault.at(), speed).is_some_and(|at| at <= tokio::time::Instant::now()))
                        });
                    if let Err(why) = over
                        && !ended_by_fault
                    {
                        observation.publisher_failures.push(format!(
                            "{why}; {}",
                            self.server.explain(publish_started, &[&path, "closed:"])
                        ));
                    }
                    break;
                }
                _ = tokio::time::sleep_until(deadline) => {
                    observation.timed_out = true;
                    break;
                }
            }
        }
        (phase, taken_over.then_some(publisher))
    }

    /// Whether the server gives its word on readers (else the ingest's
    /// `connected` event opens the gate).
    fn server_word(&self) -> bool {
        self.server.log().is_some() || self.server.api().is_some()
    }

    /// The publishers are done; a worker that waits for the stream to come
    /// back is stopped once it has seen the last one end: after a restart,
    /// when it has disconnected once per publish; after faults that can end
    /// its connection, at its next disconnect (or at once if it is not
    /// connected).
    async fn wind_down(
        &self,
        mut ingest: Ingest,
        phases: usize,
        reconnects: bool,
        deadline: tokio::time::Instant,
        observation: &mut StreamObservation,
    ) {
        let restarts = phases > 1;
        let seen_the_end = |ingest: &Ingest| {
            if restarts {
                ingest.disconnects >= phases
            } else {
                reconnects && !ingest.connected
            }
        };
        if observation.timed_out || seen_the_end(&ingest) {
            ingest.handle.stop();
        }
        // A stopped worker flushes and ends promptly; this bounds a hung one.
        let give_up = deadline.max(tokio::time::Instant::now()) + STOP_GRACE;
        while !ingest.finished {
            tokio::select! {
                event = ingest.next(&mut observation.events) => {
                    if matches!(event, Some(WorkerEvent::Disconnected { .. })) && seen_the_end(&ingest) {
                        ingest.handle.stop();
                    }
                }
                _ = tokio::time::sleep_until(deadline), if !observation.timed_out => {
                    observation.timed_out = true;
                    ingest.handle.stop();
                }
                _ = tokio::time::sleep_until(give_up) => {
                    // A hung worker: the run timed out, and says why.
                    observation.timed_out = true;
                    observation.publisher_failures.push(format!(
                        "the ingest did not stop within {STOP_GRACE:?} of being asked"
                    ));
                    return;
                }
            }
        }
        observation.result = ingest
            .handle
            .wait()
            .await
            .map(drop)
            .map_err(|e| IngestFailure::from(&e));
    }
}

/// A publish in progress: ffmpeg, or this crate's own client for the first
/// publisher of a takeover, which must stop at an exact tag and stay
/// connected (ffmpeg would hold its last packet back).
enum Publishing {
    Ffmpeg(Publisher),
    Raw(RawPublisher),
}

impl Publishing {
    fn release(&mut self) {
        match self {
            Self::Ffmpeg(p) => p.release(),
            Self::Raw(p) => p.release(),
        }
    }

    async fn kill(&mut self) {
        match self {
            Self::Ffmpeg(p) => p.kill().await,
            Self::Raw(p) => p.kill(),
        }
    }

    /// Resolves when the publish is over: ffmpeg has exited, or a publisher
    /// that stays connected has sent its window. `Err` says what failed.
    async fn over(&mut self) -> Result<(), String> {
        match self {
            Self::Ffmpeg(p) => match p.exited().await {
                Ok(s) if s.success() => Ok(()),
                Ok(s) => Err(format!(
                    "ffmpeg exited with {s}: {}",
                    p.log_tail().lines().last().unwrap_or_default()
                )),
                Err(e) => Err(e.to_string()),
            },
            Self::Raw(p) => {
                p.reached(Progress::BodySent).await;
                if p.progress() == Progress::Done {
                    // Ended rather than holding: say why.
                    p.exited().await?;
                    return Err("the publisher ended before sending its window".to_owned());
                }
                Ok(())
            }
        }
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Sleeps until `at`; never resolves without one.
async fn sleep_until_or_never(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
