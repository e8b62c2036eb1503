//! One publish of a stream, from the publisher's start to its end: the
//! release gate (the body is held until the server says the ingest reads
//! the path, or, where it cannot say, until the ingest says so), the
//! server's facts while media flows, a scheduled server restart, and the
//! lingering end (see `linger`).
//!
//! ```text
//!  publish ─► [server: available] ─► [server: ingest reading] ─► release ─► ... publisher exits
//!             first_buffer and attach are timed from availability
//! ```

use std::time::{Duration, Instant};

use ingest::WorkerEvent;
use media_tools::{Feed, LingeringRelay, Progress, PublishOptions, Publisher, RawPublisher};

use crate::error::HarnessError;
use crate::plan::FixtureMedia;
use crate::world::faults::{Side, StreamFaults};
use crate::world::ingest::Ingest;
use crate::world::linger::{Received, linger_until_received};
use crate::world::observation::{PhaseObservation, StreamObservation};
use crate::world::server::Word;
use crate::world::stream::StreamRun;

/// How long each gate waits for the server's word. MediaMTX closes a
/// publisher that has not sent two seconds of media within its read
/// timeout (10 s), and a held one after 10 s of silence.
const GATE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a publish stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gate {
    /// Waiting for the server to make the path available.
    Availability,
    /// Waiting for the ingest to read it.
    Reader,
    Released,
}

impl StreamRun<'_> {
    /// One publish, from ffmpeg's start to its exit; the first publisher of
    /// a takeover ends its phase once its window is sent and is handed back,
    /// still connected.
    pub(crate) async fn publish(
        &self,
        index: usize,
        feed: Feed,
        fixture: &FixtureMedia,
        ingest: &mut Ingest,
        (observation, deadline): (&mut StreamObservation, tokio::time::Instant),
        faults: &mut Option<StreamFaults>,
    ) -> (PhaseObservation, Option<Publishing>) {
        let mut phase = deliverable(&feed, fixture);
        let path = self.path();
        let log = self.dir.join(format!("ffmpeg-{}-{index}.log", self.stream_id));
        let taken_over = index == 0 && self.scenario.publish.takeover_at.is_some();
        let last = Received {
            video_pts_ms: feed.last_pts(media_tools::flv::VIDEO),
            audio_pts_ms: feed.last_pts(media_tools::flv::AUDIO),
        };
        // A publisher that leaves goes through a relay that holds its close
        // until the ingest has its last frame (see `LingeringRelay`); one
        // taken over stays connected until the server closes it.
        let relay = if taken_over {
            None
        } else {
            let server = faults
                .as_ref()
                .and_then(|f| f.kit.authority(Side::Publisher))
                .unwrap_or_else(|| self.server.authority().to_owned());
            match LingeringRelay::start(&server).await {
                Ok(relay) => Some(relay),
                Err(e) => {
                    observation
                        .publisher_failures
                        .push(format!("cannot start the publisher's relay: {e}"));
                    return (phase, None);
                }
            }
        };
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
            let relay = relay.as_ref().expect("every publisher that leaves has a relay");
            let url = format!("rtmp://{}/{path}", relay.authority());
            match Publisher::start(feed, &url, &options, &log) {
                Ok(p) => Publishing::Ffmpeg(p),
                Err(e) => {
                    observation.publisher_failures.push(e.to_string());
                    return (phase, None);
                }
            }
        };
        let publish_started = Instant::now();
        if self.scenario.publish.live {
            // Nothing is held for the ingest: it joins the running stream
            // on its own. The gate below only times its attach.
            self.release(index, &mut publisher, ingest, faults);
        }
        let mut timed_from = publish_started;
        let mut gate = Gate::Availability;
        let available = self.server.available(&path, publish_started, GATE_TIMEOUT);
        tokio::pin!(available);
        // Created once the path is available; until then it never resolves.
        let mut reading = Box::pin(futures_util::future::Either::Left(std::future::pending::<Word>()));
        let mut first_media = false;
        loop {
            // Known once the first publish is released; done once.
            let restart_due = faults
                .as_ref()
                .filter(|_| index == 0)
                .and_then(StreamFaults::restart_due);
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
                    // A live ingest still to join is waited for from when it
                    // joins, and its attach timed from then.
                    if let Some(joins_at) = ingest.joins_at().filter(|at| *at > timed_from) {
                        timed_from = joins_at;
                    }
                    let timeout = GATE_TIMEOUT + timed_from.saturating_duration_since(Instant::now());
                    reading = Box::pin(futures_util::future::Either::Right(
                        self.server.reading(&path, timed_from, timeout),
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
                        if !self.scenario.publish.live {
                            publisher.kill().await;
                            break;
                        }
                        // A live publisher goes on whatever the ingest does.
                        reading = Box::pin(futures_util::future::Either::Left(std::future::pending()));
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
                        faults.restart_server(self.server, ingest.started).await;
                    }
                }
                over = publisher.over() => {
                    // A fault meant to end this publisher did: not a failure.
                    let ended_by_fault =
                        index == 0 && faults.as_ref().is_some_and(StreamFaults::ended_the_publisher);
                    if let Err(why) = over
                        && !ended_by_fault
                    {
                        observation.publisher_failures.push(format!(
                            "{why}; {}",
                            self.server.explain(publish_started, &[&path, "closed:"])
                        ));
                    }
                    if let Some(relay) = &relay {
                        linger_until_received(relay, last, ingest, observation, deadline).await;
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

    /// Releases publish `index` to the ingest; the first release starts
    /// media time and the faults played on it.
    fn release(
        &self,
        index: usize,
        publisher: &mut Publishing,
        ingest: &mut Ingest,
        faults: &mut Option<StreamFaults>,
    ) {
        publisher.release();
        let media_zero = ingest.released();
        if let Some(faults) = faults.as_mut().filter(|_| index == 0) {
            faults.play(
                media_zero,
                ingest.started,
                self.server.api().cloned(),
                self.path(),
            );
        }
    }

    /// `connected` event opens the gate).
    fn server_word(&self) -> bool {
        self.server.log().is_some() || self.server.api().is_some()
    }
}

/// A publish in progress: ffmpeg, or this crate's own client for the first
/// publisher of a takeover, which must stop at an exact tag and stay
/// connected (ffmpeg would hold its last packet back).
pub(crate) enum Publishing {
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
    async fn over(&mut self) -> Result<(), HarnessError> {
        match self {
            Self::Ffmpeg(p) => match p.exited().await {
                Ok(s) if s.success() => Ok(()),
                Ok(s) => Err(HarnessError::Publisher(format!(
                    "ffmpeg exited with {s}: {}",
                    p.log_tail().lines().last().unwrap_or_default()
                ))),
                Err(e) => Err(e.into()),
            },
            Self::Raw(p) => {
                p.reached(Progress::BodySent).await;
                if p.progress() == Progress::Done {
                    // Ended rather than holding: say why.
                    p.exited().await?;
                    return Err(HarnessError::Publisher(
                        "the publisher ended before sending its window".to_owned(),
                    ));
                }
                Ok(())
            }
        }
    }
}

/// What a publish of `feed` can deliver: the pictures, the audio frames a
/// reader can pair with them, and where each track ends.
fn deliverable(feed: &Feed, fixture: &FixtureMedia) -> PhaseObservation {
    let end_of = |kind: u8, frame_s: f64| {
        feed.body
            .iter()
            .filter(|t| t.kind == kind)
            .map(|t| f64::from(t.timestamp) / 1e3 + frame_s)
            .reduce(f64::max)
    };
    PhaseObservation {
        video_frames: feed.video_frames(),
        audio_frames: feed.pairable_audio_frames(fixture.audio_frame_ms),
        video_end_s: end_of(media_tools::flv::VIDEO, fixture.video_frame_s),
        audio_end_s: end_of(media_tools::flv::AUDIO, fixture.audio_frame_ms / 1e3),
        timed_from: "availability",
        ..PhaseObservation::default()
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
