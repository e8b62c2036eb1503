// Each test binary uses a different part of this module.
#![allow(dead_code)]

//! A real world for ingest tests: the embedded RTMP server on a free port,
//! ffmpeg-generated fixtures, an ffmpeg publisher, and the worker's events.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ingest::{SourceElement, WorkerConfig, WorkerEvent, WorkerHandle, WorkerRunner};
use media_tools::{FixtureRecipe, PublishOptions, Publisher};
use rtmp_server::{RtmpServer, ServerConfig};

/// Generous bound for waits that normally end in a fraction of a second.
pub const DEADLINE: Duration = Duration::from_secs(90);

pub struct World {
    pub server: RtmpServer,
    pub dir: tempfile::TempDir,
}

impl World {
    pub fn new() -> Self {
        Self {
            server: RtmpServer::start(ServerConfig::default()).expect("embedded server starts"),
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

    pub fn stream_dir(&self, id: &str) -> PathBuf {
        self.dir.path().join("out").join(id)
    }

    pub fn publish(&self, fixture: &Path, id: &str, options: &PublishOptions) -> Publisher {
        let log = self.dir.path().join(format!("ffmpeg-{id}.log"));
        Publisher::start(fixture, &self.url(id), options, &log).expect("ffmpeg starts")
    }
}

/// Builds (once per machine, cached by recipe) and returns a fixture.
pub async fn fixture(recipe: &FixtureRecipe) -> PathBuf {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fixtures");
    recipe.ensure_built(&cache).await.expect("fixture builds")
}

/// A small, quick-to-encode variant of the seed fixture.
pub fn small_recipe(name: &str, seconds: f64) -> FixtureRecipe {
    FixtureRecipe {
        width: 320,
        height: 240,
        duration_s: seconds,
        ..FixtureRecipe::seed(name)
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

/// How much faster than realtime [`publish_tags`] sends after the gate: an
/// unpaced burst can overflow the relay's per-reader queue on a busy machine,
/// and the relay then drops frames (as MediaMTX does). The harness's fast
/// pace is the same 20x.
const TAG_SPEEDUP: u32 = 20;

/// Publishes FLV tags one by one with a tag-level RTMP client: the first
/// second at once, the rest at 20x realtime once something is sent on the
/// returned gate.
pub fn publish_tags(
    world: &World,
    id: &str,
    tags: Vec<media_tools::flv::FlvTag>,
) -> (std::thread::JoinHandle<()>, std::sync::mpsc::Sender<()>) {
    let authority = world.server.local_addr().to_string();
    let app = format!("live/{id}");
    let (go, gate) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        let mut publisher = media_tools::TagPublisher::publish(&authority, &app, "in").unwrap();
        let (head, rest): (Vec<_>, Vec<_>) = tags.iter().partition(|t| t.timestamp < 1000);
        head.iter().for_each(|t| publisher.send(t).unwrap());
        gate.recv_timeout(DEADLINE).expect("the ingest connects");
        let released = std::time::Instant::now();
        let mut media = Duration::ZERO;
        let mut previous = rest.first().map_or(0, |t| t.timestamp);
        for tag in rest {
            // The media clock advances with the tags' spacing; a leap in
            // timestamps (what some tests are about) does not stall the feed.
            let step = tag.timestamp.saturating_sub(previous);
            if step <= 1000 {
                media += Duration::from_millis(u64::from(step));
            }
            previous = tag.timestamp;
            let due = released + media / TAG_SPEEDUP;
            // Pacing a media clock, not waiting for an event.
            std::thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
            publisher.send(tag).unwrap();
        }
        // The stream ends for readers once the server has read every tag.
        publisher.finish().unwrap();
    });
    (thread, go)
}

/// Reads events until the worker finishes, opening `gate` once it connects.
pub async fn collect_events_opening(
    handle: &mut WorkerHandle,
    gate: &std::sync::mpsc::Sender<()>,
) -> Vec<WorkerEvent> {
    let mut events = Vec::new();
    while let Some(event) = tokio::time::timeout(DEADLINE, handle.next_event())
        .await
        .expect("events before the deadline")
    {
        if matches!(event, WorkerEvent::Connected { .. }) {
            let _ = gate.send(());
        }
        events.push(event);
    }
    events
}
