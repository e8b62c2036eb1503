// Each test binary uses a different part of this module.
#![allow(dead_code)]

//! A real world for ingest tests: the embedded RTMP server on a free port
//! (MediaMTX's behaviour: a path is readable after 2 s of analysed media,
//! video starts at a reader's next IDR), ffmpeg-generated fixtures, an
//! ffmpeg publisher that holds its fixture until the ingest reads, and the
//! worker's events.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ingest::{SourceElement, WorkerConfig, WorkerEvent, WorkerHandle, WorkerRunner};
use media_tools::{Feed, LingeringRelay, PublishOptions, Publisher, Window};
use rtmp_server::{RtmpServer, ServerConfig};

mod fixtures;
pub mod output_reader;
// As with dead code: not every test binary builds fixtures.
#[allow(unused_imports)]
pub use fixtures::{fixture, small_recipe};

/// Generous bound for waits that normally end in a fraction of a second.
pub const DEADLINE: Duration = Duration::from_secs(90);

pub struct World {
    pub server: RtmpServer,
    pub dir: tempfile::TempDir,
}

impl World {
    pub fn new() -> Self {
        Self::with_server(ServerConfig::default())
    }

    /// A world whose server has these settings (its API on, say).
    pub fn with_server(config: ServerConfig) -> Self {
        Self {
            server: RtmpServer::start(config).expect("embedded server starts"),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A fresh `live/<id>/in` path so parallel tests never share a stream.
    pub fn stream_id(&self, prefix: &str) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        format!(
            "{prefix}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        )
    }

    pub fn url(&self, id: &str) -> String {
        self.server.url(&format!("live/{id}/in"))
    }

    pub fn worker_config(&self, id: &str, source: SourceElement) -> WorkerConfig {
        let mut config = WorkerConfig::for_url(&self.url(id)).expect("valid url");
        config.source = source;
        config.output_dir = self.dir.path().join("out");
        config
    }

    /// Waits until the server says the ingest reads `live/<id>/in`.
    pub async fn wait_for_reader(&self, id: &str) {
        let path = format!("live/{id}/in");
        self.server
            .wait_for_state(|s| s.path(&path).is_some_and(|p| !p.readers.is_empty()), DEADLINE)
            .await
            .expect("the ingest reads the path");
    }

    pub fn stream_dir(&self, id: &str) -> PathBuf {
        self.dir.path().join("out").join(id)
    }

    /// Publishes `fixture` and returns once the ingest reads it, with the
    /// fixture released: the ingest receives it from its first keyframe.
    /// ffmpeg publishes through a relay that holds its close until released
    /// (see [`Published::finish_for`]).
    pub async fn publish(&self, fixture: &Path, id: &str, options: &PublishOptions) -> Published {
        let log = self.dir.path().join(format!("ffmpeg-{id}.log"));
        let tags =
            media_tools::flv::read_tags(&std::fs::read(fixture).expect("fixture readable")).expect("FLV");
        let feed = Feed::new(&tags, Window::WHOLE);
        let last = LastFrames::of(&feed);
        let relay = LingeringRelay::start(&self.server.local_addr().to_string())
            .await
            .expect("the relay listens");
        let url = format!("rtmp://{}/live/{id}/in", relay.authority());
        let mut publisher = Publisher::start(feed, &url, options, &log).expect("ffmpeg starts");
        self.wait_for_reader(id).await;
        publisher.release();
        Published {
            publisher,
            relay,
            last,
        }
    }

    /// Runs a worker that stops when the stream ends over the whole of
    /// `fixture`, published once, and returns its events once it finished
    /// cleanly.
    pub async fn ingest_whole(&self, config: WorkerConfig, fixture: &Path, id: &str) -> Vec<WorkerEvent> {
        self.publish_whole_to(spawn_once(config), fixture, id).await
    }

    /// Publishes the whole of `fixture` once to `worker`, already running
    /// (see [`spawn_once`]), and returns the rest of its events once it
    /// finished cleanly.
    pub async fn publish_whole_to(
        &self,
        mut worker: WorkerHandle,
        fixture: &Path,
        id: &str,
    ) -> Vec<WorkerEvent> {
        let mut publisher = self.publish(fixture, id, &PublishOptions::default()).await;
        publisher.finish_for(&worker).await;
        let events = collect_events(&mut worker).await;
        worker.wait().await.expect("the worker finishes cleanly");
        events
    }
}

/// The highest presentation times (ms) of a publish's frames.
#[derive(Debug, Clone, Copy)]
pub struct LastFrames {
    pub video_pts_ms: Option<u32>,
    pub audio_pts_ms: Option<u32>,
}

impl LastFrames {
    pub fn of(feed: &Feed) -> Self {
        Self {
            video_pts_ms: feed.last_pts(media_tools::flv::VIDEO),
            audio_pts_ms: feed.last_pts(media_tools::flv::AUDIO),
        }
    }

    /// Waits until `worker` has received them (a server may round a
    /// presentation time down by a millisecond).
    pub async fn received_by(&self, worker: &WorkerHandle) {
        let has = |wanted: Option<u32>, got: Option<u64>| {
            wanted.is_none_or(|ms| got.is_some_and(|ns| ns + 2_000_000 >= u64::from(ms) * 1_000_000))
        };
        let mut reception = worker.reception();
        let received = tokio::time::timeout(
            DEADLINE,
            reception.wait_for(|r| {
                has(self.video_pts_ms, r.video_pts_ns) && has(self.audio_pts_ms, r.audio_pts_ns)
            }),
        )
        .await
        .expect("the worker receives the last frames")
        .is_ok();
        assert!(
            received,
            "the worker ended having received {:?}, not the last frames {self:?}",
            *reception.borrow()
        );
    }
}

/// A publish in progress: ffmpeg, and the relay holding its close.
pub struct Published {
    pub publisher: Publisher,
    pub relay: LingeringRelay,
    pub last: LastFrames,
}

impl Published {
    /// Waits for ffmpeg to publish everything and for `worker` to have it,
    /// then lets the end reach the server: the server closes its readers
    /// the moment the publisher leaves, dropping what they had queued, as
    /// MediaMTX does.
    pub async fn finish_for(&mut self, worker: &WorkerHandle) {
        self.publisher
            .finish_cleanly(DEADLINE)
            .await
            .expect("ffmpeg publishes the whole fixture");
        self.last.received_by(worker).await;
        self.relay.release();
    }
}

pub fn spawn_once(config: WorkerConfig) -> WorkerHandle {
    WorkerRunner::new(config)
        .stop_when_stream_ends(true)
        .spawn()
        .expect("worker thread")
}

/// Reads events until the worker finishes (or the deadline passes).
pub async fn collect_events(handle: &mut WorkerHandle) -> Vec<WorkerEvent> {
    let mut events = Vec::new();
    let read_all = async {
        while let Some(event) = handle.next_event().await {
            events.push(event);
        }
    };
    tokio::time::timeout(DEADLINE, read_all)
        .await
        .expect("the worker finishes before the deadline");
    events
}

/// Segment files (not temporaries) in a stream directory.
pub fn segment_files(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".ts") || n.ends_with(".part"))
        .collect();
    names.sort();
    names
}

/// How much faster than realtime [`publish_tags`] sends its body: an
/// unpaced burst can overflow the relay's per-reader queue on a busy machine,
/// and the relay then drops frames (as MediaMTX does). The harness's fast
/// pace is the same 20x.
const TAG_SPEEDUP: u32 = 20;

/// Publishes FLV tags one by one with a tag-level RTMP client, as a feed:
/// the head (configuration and a keyframe-free lead-in the server can
/// analyse) at once, the body at 20x realtime once something is sent on
/// the returned gate (open it once [`World::wait_for_reader`] says so).
///
/// The publisher leaves once `end` is sent (after [`LastFrames::received_by`]
/// says the worker has everything: the server drops what a reader had
/// queued when the publisher leaves).
pub fn publish_tags(world: &World, id: &str, tags: Vec<media_tools::flv::FlvTag>) -> TagPublish {
    let authority = world.server.local_addr().to_string();
    let path = format!("live/{id}/in");
    let (go, gate) = tokio::sync::oneshot::channel::<()>();
    let (end, ended) = tokio::sync::oneshot::channel::<()>();
    let feed = Feed::new(&tags, Window::WHOLE);
    let last = LastFrames::of(&feed);
    let task = tokio::spawn(async move {
        let mut publisher = media_tools::RtmpPublisher::publish(&authority, &path)
            .await
            .unwrap();
        publisher.send_all(&feed.head).await.unwrap();
        tokio::time::timeout(DEADLINE, gate)
            .await
            .expect("the ingest connects")
            .unwrap();
        let released = tokio::time::Instant::now();
        let mut media = Duration::ZERO;
        let mut previous = feed.body.first().map_or(0, |t| t.timestamp);
        for tag in &feed.body {
            // The media clock advances with the tags' spacing; a leap in
            // timestamps (what some tests are about) does not stall the feed.
            let step = tag.timestamp.saturating_sub(previous);
            if step <= 1000 {
                media += Duration::from_millis(u64::from(step));
            }
            previous = tag.timestamp;
            // Pacing a media clock, not waiting for an event.
            tokio::time::sleep_until(released + media / TAG_SPEEDUP).await;
            publisher.send(tag).await.unwrap();
        }
        let _ = tokio::time::timeout(DEADLINE, ended).await;
        // The stream ends for readers once the server has read every tag.
        publisher.finish().await.unwrap();
    });
    TagPublish { task, go, end, last }
}

/// A tag-level publish: `go` releases its body, `end` lets it leave.
pub struct TagPublish {
    pub task: tokio::task::JoinHandle<()>,
    pub go: tokio::sync::oneshot::Sender<()>,
    pub end: tokio::sync::oneshot::Sender<()>,
    pub last: LastFrames,
}
