//! Runs one stream of a scenario: its faults' proxies, its STS, the ingest
//! in-process through `WorkerRunner`, one publish per window (see
//! `publish`), then the wind-down; everything awaited on events, server
//! words and process exits with deadlines, never on sleeps.
//!
//! Each publish sends a [`Feed`]: a lead-in the server can analyse, then a
//! hold, then the fixture window (or, live, the fixture as an encoder sends
//! it). The hold ends when the ingest reads the path, so the ingest
//! receives the window from its first keyframe on every server, and what
//! it writes does not depend on how fast it connected.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ingest::{IngestError, SourceElement, StreamId, WorkerConfig, WorkerEvent, WorkerRunner};
use media_tools::{Feed, Window};

use crate::plan::FixtureMedia;
use crate::plan::faults::{Fault, Side};
use crate::plan::scenario::Scenario;
use crate::world::faults::StreamFaults;
use crate::world::ingest::Ingest;
use crate::world::observation::{IngestFailure, StreamObservation};
use crate::world::server::MediaServer;
use crate::world::sts_side::StsSide;

/// How long a stopped ingest may take to flush and finish.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// One stream of a scenario, ready to run.
pub(crate) struct StreamRun<'a> {
    pub scenario: &'a Scenario,
    pub fixture: Option<&'a FixtureMedia>,
    pub server: &'a MediaServer,
    pub stream_id: String,
    pub dir: PathBuf,
    pub source: SourceElement,
}

impl StreamRun<'_> {
    pub(crate) async fn run(self) -> StreamObservation {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + self.scenario.timeout;
        let mut observation =
            StreamObservation::new(&self.stream_id, self.dir.join("segments").join(&self.stream_id));
        let windows = self.fixture.map(|f| self.windows(f)).unwrap_or_default();
        let (media_zero, media_zero_seen) = tokio::sync::watch::channel(None);
        let speed = self.scenario.publish.pace.speed();
        let faults = StreamFaults::start(
            &self.scenario.faults,
            self.server.authority(),
            speed,
            media_zero_seen,
        );
        let mut faults = match faults.await {
            Ok(faults) => faults,
            Err(e) => {
                observation
                    .publisher_failures
                    .push(format!("cannot start the fault proxies: {e}"));
                return observation;
            }
        };
        let mut sts = None;
        if let Some(plan) = &self.scenario.sts {
            let log = self.dir.join(format!("sts-{}.jsonl", self.stream_id));
            match StsSide::start(plan, &log).await {
                Ok(side) => sts = Some(side),
                Err(e) => {
                    observation.publisher_failures.push(e.to_string());
                    return observation;
                }
            }
        }
        // A fault that can end the ingest's connection must not end the
        // run: the worker reconnects, and is stopped once the stream is over.
        let reconnects = windows.len() > 1 || self.scenario.faults.iter().any(Fault::may_lose_media);
        // A live scenario's ingest may join the running stream later.
        let join_at = (self.scenario.ingest.join_after)
            .filter(|_| self.scenario.publish.live)
            .map(|after| tokio::time::Instant::from_std(started + after));
        let sts_url = sts.as_ref().map(|s| s.url.clone());
        let ingest = self
            .worker_config(faults.as_ref(), sts_url)
            .map_err(|e| IngestFailure::from(&e))
            .and_then(|config| {
                let runner = WorkerRunner::new(config).stop_when_stream_ends(!reconnects);
                Ingest::start(runner, join_at, started, media_zero)
            });
        let mut ingest = match ingest {
            Ok(ingest) => ingest,
            Err(failure) => {
                observation.result = Err(failure);
                return observation;
            }
        };
        if let (Some(side), Some(at)) = (
            sts.as_mut(),
            self.scenario.sts.as_ref().and_then(|p| p.restart_at),
        ) {
            side.restart_at(at, speed, ingest.media_zero.subscribe(), started);
        }
        if let Some(fixture) = self.fixture {
            self.publish_windows(
                fixture,
                &windows,
                &mut ingest,
                &mut faults,
                (&mut observation, deadline),
            )
            .await;
        }
        self.wind_down(ingest, windows.len(), reconnects, deadline, &mut observation)
            .await;
        if let Some(record) = match sts {
            Some(side) => side.stop().await,
            None => None,
        } {
            observation.faults.push(record);
        }
        if let Some(faults) = faults {
            observation.faults.extend(faults.finish());
        }
        observation
    }

    /// Publishes each window in turn; a publisher taken over stays
    /// connected until the server closes it, so it is kept until the end.
    async fn publish_windows(
        &self,
        fixture: &FixtureMedia,
        windows: &[Window],
        ingest: &mut Ingest,
        faults: &mut Option<StreamFaults>,
        (observation, deadline): (&mut StreamObservation, tokio::time::Instant),
    ) {
        if let Some(delay) = self.scenario.publish.start_delay {
            // The delay is the scenario's subject (a late publisher), not
            // a wait for something to happen; events keep queueing.
            tokio::time::sleep_until(tokio::time::Instant::from_std(ingest.started + delay)).await;
        }
        let mut taken_over = Vec::new();
        for (index, window) in windows.iter().enumerate() {
            if index > 0
                && let Some(faults) = faults.as_mut()
            {
                let from = Duration::from_millis(u64::from(window.from_ms));
                faults
                    .await_publisher_back(self.server, from, ingest.started, deadline)
                    .await;
            }
            let feed = if self.scenario.publish.live {
                Feed::live(&fixture.tags)
            } else {
                Feed::new(&fixture.tags, *window)
            };
            let (mut phase, still_connected) = self
                .publish(index, feed, fixture, ingest, (observation, deadline), faults)
                .await;
            phase.from_s = f64::from(window.from_ms) / 1e3;
            observation.phases.push(phase);
            taken_over.extend(still_connected);
            if ingest.finished || observation.timed_out {
                break;
            }
        }
    }

    fn worker_config(
        &self,
        faults: Option<&StreamFaults>,
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

    pub(crate) fn path(&self) -> String {
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
        let back = self.scenario.faults.iter().find_map(Fault::publisher_back_at);
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
            ingest.stop();
        }
        // A stopped worker flushes and ends promptly; this bounds a hung one.
        let give_up = deadline.max(tokio::time::Instant::now()) + STOP_GRACE;
        while !ingest.finished {
            tokio::select! {
                event = ingest.next(&mut observation.events) => {
                    if matches!(event, Some(WorkerEvent::Disconnected { .. })) && seen_the_end(&ingest) {
                        ingest.stop();
                    }
                }
                _ = tokio::time::sleep_until(deadline), if !observation.timed_out => {
                    observation.timed_out = true;
                    ingest.stop();
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
        observation.result = ingest.result().await;
    }
}
