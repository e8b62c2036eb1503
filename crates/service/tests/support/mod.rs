// Each test binary uses a different part of this module.
#![allow(dead_code)]

//! A real world for the service's tests: the embedded server (MediaMTX's
//! behaviour, its Control API on a free port), the echo STS answering a
//! tone, `Service` on a free port, ffmpeg publishers, and readers of each
//! `live/<id>/out`. Waits are on signals with deadlines: the server's log
//! for a publish, the service's `/v1/streams` for what a worker received.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use media_tools::flv::{self, FlvTag};
use media_tools::{Feed, LingeringRelay, PublishOptions, Publisher, Window};
use rtmp_server::{RtmpServer, ServerConfig};
use service::{Service, ServiceConfig, StreamView, StreamsView};

#[path = "../../../ingest/tests/support/fixtures.rs"]
mod fixtures;
#[path = "../../../ingest/tests/support/output_reader.rs"]
mod output_reader;
// As with dead code: not every test binary builds fixtures.
#[allow(unused_imports)]
pub use fixtures::{fixture, small_recipe};
use output_reader::read_out;

/// Generous bound for waits that normally end in a fraction of a second.
pub const DEADLINE: Duration = Duration::from_secs(90);
/// The tone the echo STS answers with; the fixtures speak 440 Hz.
pub const DUB_HZ: f64 = 1000.0;
pub const ORIGINAL_HZ: f64 = 440.0;
/// How often `/v1/streams` is asked while waiting on it.
const ASK_EVERY: Duration = Duration::from_millis(50);

pub struct World {
    pub server: RtmpServer,
    pub dir: tempfile::TempDir,
}

impl World {
    pub fn new() -> Self {
        Self {
            server: RtmpServer::start(ServerConfig::with_api()).expect("embedded server starts"),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A fresh id so parallel tests never share a stream.
    pub fn stream_id(&self, prefix: &str) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        format!(
            "{prefix}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        )
    }

    pub fn out_dir(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    pub fn stream_dir(&self, id: &str) -> PathBuf {
        self.out_dir().join(id)
    }

    /// The service's settings for this world: fast polls, a short grace.
    pub fn config(&self, sts_url: Option<String>) -> ServiceConfig {
        let api = self.server.api_addr().expect("the server has its API on");
        let mut config = ServiceConfig {
            rtmp: format!("rtmp://{}", self.server.local_addr()),
            api: format!("http://{api}"),
            out: self.out_dir(),
            listen: "127.0.0.1:0".parse().expect("an address"),
            poll: Duration::from_millis(100),
            grace: Duration::from_secs(2),
            ..ServiceConfig::default()
        };
        config.sts = sts_url.map(ingest::StsSettings::new);
        config
    }

    /// Publishes `fixture` on `path` through a relay that holds its close,
    /// and returns once a reader (the service's worker) reads it, with the
    /// fixture released: the worker receives it from its first keyframe.
    pub async fn publish_staged(&self, fixture: &Path, path: &str) -> Staged {
        let tags = flv::read_tags(&std::fs::read(fixture).expect("fixture readable")).expect("FLV");
        let feed = Feed::new(&tags, Window::WHOLE);
        let last_video_ms = feed.last_pts(flv::VIDEO).map(u64::from);
        let last_audio_ms = feed.last_pts(flv::AUDIO).map(u64::from);
        let relay = LingeringRelay::start(&self.server.local_addr().to_string())
            .await
            .expect("the relay listens");
        let url = format!("rtmp://{}/{path}", relay.authority());
        let log = self
            .dir
            .path()
            .join(format!("ffmpeg-{}.log", path.replace('/', "_")));
        let mut publisher =
            Publisher::start(feed, &url, &PublishOptions::default(), &log).expect("ffmpeg starts");
        self.server
            .wait_for_state(|s| s.path(path).is_some_and(|p| !p.readers.is_empty()), DEADLINE)
            .await
            .expect("a worker reads the path");
        publisher.release();
        Staged {
            publisher,
            relay,
            path: path.to_owned(),
            last_video_ms,
            last_audio_ms,
        }
    }

    /// Publishes `fixture` on `path` with nobody waiting: the way a
    /// producer's encoder does (ffmpeg, paced at realtime).
    pub async fn publish_plain(&self, fixture: &Path, path: &str) -> Publisher {
        let tags = flv::read_tags(&std::fs::read(fixture).expect("fixture readable")).expect("FLV");
        let mut publisher = Publisher::start(
            Feed::new(&tags, Window::WHOLE),
            &self.server.url(path),
            &PublishOptions::default(),
            &self
                .dir
                .path()
                .join(format!("ffmpeg-{}.log", path.replace('/', "_"))),
        )
        .expect("ffmpeg starts");
        publisher.release();
        publisher
    }

    /// Reads `path` from its publish's start to its end: every tag, in order.
    pub fn read_out(&self, path: String) -> tokio::task::JoinHandle<Vec<FlvTag>> {
        read_out(&self.server, path, DEADLINE)
    }
}

/// A staged publish in progress.
pub struct Staged {
    pub publisher: Publisher,
    relay: LingeringRelay,
    path: String,
    last_video_ms: Option<u64>,
    last_audio_ms: Option<u64>,
}

impl Staged {
    /// Waits for ffmpeg to publish everything and for the service's worker
    /// of `id` to have it (its `/v1/streams` entry says so), then lets the
    /// end reach the server, which closes its readers at once.
    pub async fn finish_for(&mut self, running: &Running, id: &str) {
        self.publisher
            .finish_cleanly(DEADLINE)
            .await
            .expect("ffmpeg publishes the whole fixture");
        // A server may round a presentation time down by a millisecond.
        let has =
            |wanted: Option<u64>, got: Option<u64>| wanted.is_none_or(|ms| got.is_some_and(|g| g + 2 >= ms));
        running
            .wait_for(
                &format!("{id} received the last frames of {}", self.path),
                |view| {
                    view.streams.iter().any(|s| {
                        s.id == id
                            && has(self.last_video_ms, s.received.video_ms)
                            && has(self.last_audio_ms, s.received.audio_ms)
                    })
                },
            )
            .await;
        self.relay.release();
    }
}

/// A service under test, and an HTTP client for it.
pub struct Running {
    pub service: Option<Service>,
    pub base: String,
    client: reqwest::Client,
}

impl Running {
    pub async fn start(config: ServiceConfig) -> Self {
        let service = Service::start(config).await.expect("the service starts");
        Self {
            base: format!("http://{}", service.addr()),
            service: Some(service),
            client: reqwest::Client::new(),
        }
    }

    pub async fn get(&self, route: &str) -> (u16, String) {
        let answer = self
            .client
            .get(format!("{}{route}", self.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {route}: {e}"));
        let status = answer.status().as_u16();
        (status, answer.text().await.expect("a body"))
    }

    pub async fn post(&self, route: &str) -> (u16, String) {
        let answer = self
            .client
            .post(format!("{}{route}", self.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {route}: {e}"));
        let status = answer.status().as_u16();
        (status, answer.text().await.expect("a body"))
    }

    pub async fn streams(&self) -> StreamsView {
        let (status, body) = self.get("/v1/streams").await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("/v1/streams: {e}: {body}"))
    }

    pub async fn stream(&self, id: &str) -> Option<StreamView> {
        self.streams().await.streams.into_iter().find(|s| s.id == id)
    }

    /// Asks `/v1/streams` until `wanted` holds (or the deadline passes).
    pub async fn wait_for(&self, what: &str, wanted: impl Fn(&StreamsView) -> bool) -> StreamsView {
        let mut last = None;
        let found = tokio::time::timeout(DEADLINE, async {
            let mut ask = tokio::time::interval(ASK_EVERY);
            loop {
                ask.tick().await;
                let view = self.streams().await;
                if wanted(&view) {
                    return view;
                }
                last = Some(view);
            }
        })
        .await;
        found.unwrap_or_else(|_| panic!("never: {what} within {DEADLINE:?}; last seen: {last:#?}"))
    }

    /// Waits for `id`'s worker to have stopped and returns its last view.
    pub async fn stopped(&self, id: &str) -> StreamView {
        let what = format!("{id}'s worker stopped");
        let view = self
            .wait_for(&what, |v| {
                v.streams.iter().any(|s| s.id == id && s.state == "stopped")
            })
            .await;
        view.streams.into_iter().find(|s| s.id == id).expect("listed")
    }

    /// Asks `route` until its answer is `wanted` (or the deadline passes).
    pub async fn wait_for_route(&self, route: &str, wanted: impl Fn(u16, &str) -> bool) -> (u16, String) {
        let mut last = None;
        let found = tokio::time::timeout(DEADLINE, async {
            let mut ask = tokio::time::interval(ASK_EVERY);
            loop {
                ask.tick().await;
                let (status, body) = self.get(route).await;
                if wanted(status, &body) {
                    return (status, body);
                }
                last = Some((status, body));
            }
        })
        .await;
        found.unwrap_or_else(|_| {
            panic!("{route} never answered as wanted within {DEADLINE:?}; last: {last:?}")
        })
    }

    /// Stops the service as SIGTERM does and waits for its end.
    pub async fn stop(&mut self) {
        let service = self.service.take().expect("running");
        service.stopper().stop();
        tokio::time::timeout(DEADLINE, service.wait())
            .await
            .expect("the service stops within the deadline")
            .expect("the service stops cleanly");
    }
}

/// The manifest's records of `dir`, as JSON values.
pub fn manifest(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join(ingest::MANIFEST_FILE))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// Segment indices of `kind` (`video`/`audio`) in a manifest.
pub fn segments(records: &[serde_json::Value], kind: &str) -> Vec<u64> {
    records
        .iter()
        .filter(|r| r["record"] == "segment" && r["kind"] == kind)
        .map(|r| r["index"].as_u64().expect("an index"))
        .collect()
}

/// Pictures of an FLV tag list (sequence headers left out).
pub fn pictures(tags: &[FlvTag]) -> Vec<&FlvTag> {
    tags.iter()
        .filter(|t| t.kind == flv::VIDEO && t.is_frame())
        .collect()
}

/// The audio of `tags` decoded to mono PCM (through an FLV file ffmpeg
/// reads), and the share of each tone in it.
pub async fn tones(tags: &[FlvTag], dir: &Path, name: &str) -> (f64, f64) {
    let mut bytes = flv::header();
    for tag in tags {
        flv::write_tag(&mut bytes, tag);
    }
    let file = dir.join(format!("{name}.flv"));
    std::fs::write(&file, bytes).expect("write the FLV");
    let samples = media_tools::decode_mono(&file)
        .await
        .expect("ffmpeg decodes the output");
    (
        media_tools::tone_share(&samples, media_tools::DECODE_RATE_HZ, DUB_HZ),
        media_tools::tone_share(&samples, media_tools::DECODE_RATE_HZ, ORIGINAL_HZ),
    )
}

/// Asserts that `numbers` count from 0 with no gap and no repeat.
pub fn assert_numbered_from_zero(numbers: &[u64]) {
    let expected: Vec<u64> = (0..numbers.len() as u64).collect();
    assert_eq!(numbers, expected, "numbering continues from 0");
}
