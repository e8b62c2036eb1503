//! One stream's publisher in a service scenario, on its schedule: it starts
//! at its time, publishes its window of the fixture (once, or again after
//! a pause), and leaves through a relay that holds its close until the
//! service's worker has the last frame (the server drops what a reader had
//! queued the moment a publisher leaves, as MediaMTX does).
//!
//! A stream of the input's shape is staged, as the ingest scenarios stage
//! theirs: a lead-in, then held until a worker reads the path, then the
//! fixture from its first keyframe, so every worker gets the same stream on
//! every server. A `live` stream, or one the service must leave alone, is
//! published as an encoder does: from its start, waiting for nobody.

use std::path::Path;
use std::time::{Duration, Instant};

use media_tools::flv::{self, FlvTag};
use media_tools::{Feed, LingeringRelay, PublishOptions, Publisher, Window};

use super::ServiceAddress;
use crate::plan::FixtureMedia;
use crate::plan::service::ServiceStream;
use crate::world::server::{MediaServer, Word};

/// How long a held publisher waits for a worker: MediaMTX closes a
/// publisher that has been silent for its read timeout (10 s).
const GATE_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Schedule<'a> {
    pub stream: &'a ServiceStream,
    pub id: &'a str,
    pub path: String,
    pub media: &'a FixtureMedia,
    pub server: &'a MediaServer,
    pub address: ServiceAddress,
    pub client: &'a reqwest::Client,
    pub log_dir: &'a Path,
    pub started: Instant,
    pub deadline: tokio::time::Instant,
}

/// What the publishing side saw.
#[derive(Debug, Default)]
pub(crate) struct Published {
    pub publishes: u32,
    pub problems: Vec<String>,
    pub attach_ms: Vec<f64>,
    pub timed_out: bool,
}

/// Runs the stream's publishes, on its schedule.
pub(crate) async fn publish(mut schedule: Schedule<'_>) -> Published {
    let mut done = Published::default();
    if let Some(start) = schedule.stream.start {
        // When the stream starts is the scenario's subject.
        tokio::time::sleep_until(tokio::time::Instant::from_std(schedule.started + start)).await;
    }
    loop {
        schedule.once(done.publishes, &mut done).await;
        done.publishes += 1;
        match schedule.stream.again_after {
            Some(pause) if done.publishes == 1 => tokio::time::sleep(pause).await,
            _ => return done,
        }
    }
}

impl Schedule<'_> {
    fn window(&self) -> Window {
        Window {
            from_ms: 0,
            until_ms: self.stream.stop_after.map(|d| d.as_millis() as u32),
        }
    }

    /// The fixture as an encoder sends it: from its start, up to the window's end.
    fn live_feed(&self) -> Feed {
        let until = self.window().until_ms;
        let tags: Vec<FlvTag> = self
            .media
            .tags
            .iter()
            .filter(|t| !t.is_frame() || until.is_none_or(|u| t.timestamp < u))
            .cloned()
            .collect();
        Feed::live(&tags)
    }

    async fn once(&mut self, index: u32, done: &mut Published) {
        let staged = self.stream.is_input() && !self.stream.live;
        let feed = if staged {
            Feed::new(&self.media.tags, self.window())
        } else {
            self.live_feed()
        };
        let last = (feed.last_pts(flv::VIDEO), feed.last_pts(flv::AUDIO));
        let name = &self.stream.name;
        let relay = match LingeringRelay::start(self.server.authority()).await {
            Ok(relay) => relay,
            Err(e) => {
                done.problems
                    .push(format!("{name}: cannot start the publisher's relay: {e}"));
                return;
            }
        };
        let url = format!("rtmp://{}/{}", relay.authority(), self.path);
        let log = self.log_dir.join(format!("ffmpeg-{name}-{index}.log"));
        let mut publisher = match Publisher::start(feed, &url, &PublishOptions::default(), &log) {
            Ok(publisher) => publisher,
            Err(e) => {
                done.problems.push(format!("{name}: ffmpeg did not start: {e}"));
                return;
            }
        };
        let since = Instant::now();
        if staged {
            let available = self.server.available(&self.path, since, GATE_TIMEOUT).await;
            match self.server.reading(&self.path, since, GATE_TIMEOUT).await {
                Word::Said { at, .. } => {
                    if let Word::Said { at: from, .. } = available {
                        done.attach_ms
                            .push(at.saturating_duration_since(from).as_secs_f64() * 1e3);
                    }
                }
                Word::Silent | Word::Unknown => {
                    done.problems.push(format!(
                        "{name}: no worker read {} within {GATE_TIMEOUT:?} of its publish",
                        self.path
                    ));
                    publisher.kill().await;
                    relay.release();
                    return;
                }
            }
        }
        publisher.release();
        let left = self
            .deadline
            .saturating_duration_since(tokio::time::Instant::now());
        if let Err(e) = publisher.finish_cleanly(left).await {
            done.problems.push(format!("{name}: the publish failed: {e}"));
        }
        if self.stream.is_input() {
            self.wait_until_received(last, done).await;
        }
        relay.release();
        relay.closed().await;
    }

    /// Waits until the service's worker of this stream has its last frames
    /// (a server may round a presentation time down by a millisecond), or,
    /// for a stream the service serves later or not at all, the deadline.
    async fn wait_until_received(
        &mut self,
        (video, audio): (Option<u32>, Option<u32>),
        done: &mut Published,
    ) {
        let has = |wanted: Option<u32>, got: Option<u64>| {
            wanted.is_none_or(|ms| got.is_some_and(|g| g + 2 >= u64::from(ms)))
        };
        let id = self.id;
        let received = self
            .address
            .wait_for(self.client, self.deadline, |view| {
                view.streams
                    .iter()
                    .any(|s| s.id == id && has(video, s.received.video_ms) && has(audio, s.received.audio_ms))
            })
            .await;
        if !received {
            done.timed_out = true;
            done.problems.push(format!(
                "{}: the service's worker never had the last frames of {}",
                self.stream.name, self.path
            ));
        }
    }
}
