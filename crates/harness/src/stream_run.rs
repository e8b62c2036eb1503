//! Runs one stream of a scenario: the ingest in-process through
//! `WorkerRunner`, ffmpeg publishing per the plan, everything awaited on
//! events and process exits with deadlines, never on sleeps.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ingest::{IngestError, SourceElement, StreamId, WorkerConfig, WorkerEvent, WorkerRunner};
use media_tools::{PublishOptions, Publisher};

use crate::scenario::Scenario;
use crate::server::MediaServer;

/// A fast publish is released when the ingest connects, or after this.
const RELEASE_DEADLINE: Duration = Duration::from_secs(10);
/// How long a stopped ingest may take to flush and finish.
const STOP_GRACE: Duration = Duration::from_secs(30);

pub struct StreamPlan<'a> {
    pub scenario: &'a Scenario,
    pub fixture: Option<PathBuf>,
    pub server: &'a MediaServer,
    pub stream_id: String,
    pub dir: PathBuf,
    pub source: SourceElement,
}

/// Everything seen while a stream ran.
#[derive(Debug, Clone)]
pub struct StreamObservation {
    pub stream_id: String,
    pub segments_dir: PathBuf,
    pub events: Vec<(Duration, WorkerEvent)>,
    /// How the ingest ended: `Err((kind, message))` when it failed.
    pub result: Result<(), (String, String)>,
    pub timed_out: bool,
    /// Per publish phase: from the publisher going online (or starting, when
    /// the server cannot tell) to the ingest's first audio and video.
    pub first_buffer: Vec<Duration>,
    pub publisher_failures: Vec<String>,
    /// What the server said about the path while media flowed (publisher,
    /// readers, byte counts), per publish phase.
    pub server_facts: Vec<serde_json::Value>,
}

impl StreamPlan<'_> {
    fn worker_config(&self) -> Result<WorkerConfig, IngestError> {
        let id = StreamId::parse(&self.stream_id)?;
        let mut config = WorkerConfig::new(id);
        let ingest = &self.scenario.ingest;
        config.url = Some(match &ingest.url {
            Some(url) => url.replace("{server}", &self.server.authority()),
            None => self.server.url(&self.path()),
        });
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
        Ok(config)
    }

    fn path(&self) -> String {
        format!("live/{}/in", self.stream_id)
    }

    /// Publish phases: one, or two around a restart. A restart happens at
    /// the first keyframe at or after `restart_at`, so the second publisher
    /// resumes exactly where the first stopped.
    fn phases(&self) -> Vec<PublishOptions> {
        let publish = &self.scenario.publish;
        let base = PublishOptions {
            pace: publish.pace,
            seek: None,
            limit: publish.stop_after,
        };
        let Some(requested) = publish.restart_at else {
            return vec![base];
        };
        let at = self
            .fixture
            .as_ref()
            .and_then(|f| std::fs::read(f).ok())
            .and_then(|bytes| media_tools::flv::keyframe_at_or_after(&bytes, requested.as_millis() as u32))
            .map_or(requested, |ms| Duration::from_millis(u64::from(ms)));
        vec![
            PublishOptions {
                limit: Some(at),
                ..base.clone()
            },
            PublishOptions {
                seek: Some(at),
                limit: publish.stop_after.map(|s| s.saturating_sub(at)),
                ..base
            },
        ]
    }

    pub async fn run(self) -> StreamObservation {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + self.scenario.timeout;
        let segments_dir = self.dir.join("segments").join(&self.stream_id);
        let mut observation = StreamObservation {
            stream_id: self.stream_id.clone(),
            segments_dir,
            events: Vec::new(),
            result: Ok(()),
            timed_out: false,
            first_buffer: Vec::new(),
            publisher_failures: Vec::new(),
            server_facts: Vec::new(),
        };
        let phases = self.phases();
        let restarts = phases.len() > 1;
        let spawned = self
            .worker_config()
            .and_then(|config| WorkerRunner::new(config).stop_when_stream_ends(!restarts).spawn());
        let mut worker = match spawned {
            Ok(worker) => worker,
            Err(e) => {
                observation.result = Err(failure(&e));
                return observation;
            }
        };
        let mut finished = false;

        if let Some(fixture) = &self.fixture {
            if let Some(delay) = self.scenario.publish.start_delay {
                // The delay is the scenario's subject (a late publisher), not
                // a wait for something to happen; events keep queueing.
                tokio::time::sleep_until(tokio::time::Instant::from_std(started + delay)).await;
            }
            for (phase, options) in phases.iter().enumerate() {
                let log = self.dir.join(format!("ffmpeg-{}-{phase}.log", self.stream_id));
                let url = self.server.url(&self.path());
                let mut publisher = match Publisher::start(fixture, &url, options, &log) {
                    Ok(p) => p,
                    Err(e) => {
                        observation.publisher_failures.push(e.to_string());
                        break;
                    }
                };
                let publish_started = Instant::now();
                let online = match self
                    .server
                    .wait_for_publisher(&self.path(), publish_started, RELEASE_DEADLINE)
                    .await
                {
                    Ok(true) => Instant::now(),
                    _ => publish_started,
                };
                let release_at = tokio::time::Instant::now() + RELEASE_DEADLINE;
                let mut first_media: Option<Instant> = None;
                loop {
                    tokio::select! {
                        event = worker.next_event() => match event {
                            Some(event) => {
                                if matches!(event, WorkerEvent::Connected { .. }) {
                                    publisher.release();
                                }
                                if matches!(event, WorkerEvent::TracksValidated(_)) && first_media.is_none() {
                                    first_media = Some(Instant::now());
                                    // Publisher and reader are both on the path now.
                                    if let Some(facts) = self.server.path_facts(&self.path()).await {
                                        observation.server_facts.push(facts);
                                    }
                                }
                                observation.events.push((started.elapsed(), event));
                            }
                            None => {
                                finished = true;
                                break;
                            }
                        },
                        status = publisher.exited() => {
                            match status {
                                Ok(s) if s.success() => {}
                                Ok(s) => observation.publisher_failures.push(format!("ffmpeg exited with {s}; see {}", log.display())),
                                Err(e) => observation.publisher_failures.push(e.to_string()),
                            }
                            break;
                        }
                        _ = tokio::time::sleep_until(release_at), if publisher.is_held() => publisher.release(),
                        _ = tokio::time::sleep_until(deadline) => {
                            observation.timed_out = true;
                            break;
                        }
                    }
                }
                if let Some(first) = first_media {
                    observation
                        .first_buffer
                        .push(first.saturating_duration_since(online));
                }
                if finished || observation.timed_out {
                    break;
                }
            }
        }

        // The publishers are done; a worker that waits for the stream to come
        // back is stopped once it has seen the last one end.
        let wanted = if self.fixture.is_some() { phases.len() } else { 0 };
        let mut disconnects = observation
            .events
            .iter()
            .filter(|(_, e)| matches!(e, WorkerEvent::Disconnected { .. }))
            .count();
        if observation.timed_out || (restarts && disconnects >= wanted) {
            worker.stop();
        }
        // A stopped worker flushes and ends promptly; this bounds a hung one.
        let give_up = deadline.max(tokio::time::Instant::now()) + STOP_GRACE;
        while !finished {
            tokio::select! {
                event = worker.next_event() => match event {
                    Some(event) => {
                        if matches!(event, WorkerEvent::Disconnected { .. }) {
                            disconnects += 1;
                            if restarts && disconnects >= wanted {
                                worker.stop();
                            }
                        }
                        observation.events.push((started.elapsed(), event));
                    }
                    None => finished = true,
                },
                _ = tokio::time::sleep_until(deadline), if !observation.timed_out => {
                    observation.timed_out = true;
                    worker.stop();
                }
                _ = tokio::time::sleep_until(give_up) => {
                    observation.result = Err(("timeout".into(), format!("the ingest did not stop within {STOP_GRACE:?} of being asked")));
                    return observation;
                }
            }
        }
        observation.result = worker.wait().await.map(drop).map_err(|e| failure(&e));
        observation
    }
}

/// An ingest error as (kind, message), the form outcomes compare.
fn failure(e: &IngestError) -> (String, String) {
    (e.kind().to_owned(), e.to_string())
}
