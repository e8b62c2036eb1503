//! One concurrency level at one pace, all contenders side by side:
//!
//! ```text
//! server ◄── n gated publishers (first second of media each)
//!    │
//!    ├──► ours: 1 process, n readers ┐
//!    ├──► ffmpeg: n processes        ├─ all connected? release every publisher
//!    └──► gst: n processes           ┘  (t0 per stream) and wait for the ends
//!
//! then: OS accounting per process, inotify appearance times, ffprobe frames
//! ```
//!
//! Every contender reads the same publish, so they share the machine's load
//! and see the same frames at the same moments.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ingest::SourceElement;
use media_tools::Pace;
use rtmp_server::{RtmpServer, ServerConfig};

use crate::contenders::{self, Contender, Stream};
use crate::fixture::Fixture;
use crate::measure::availability::{Appearances, AvailabilityWatch};
use crate::measure::frames::{self, FrameCount};
use crate::measure::process::Usage;
use crate::measure::stats::Percentiles;
use crate::publish::Feed;
use crate::results::{ContenderResult, LevelResult, frame_balance};

/// Speed of media-tools' fast pace relative to realtime.
const FAST_SPEED: f64 = media_tools::FAST_SPEED as f64;

/// How long contenders may take to exit once every publisher has finished.
const DRAIN: Duration = Duration::from_secs(30);

/// How long a contender asked to stop (SIGINT) has before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Concurrent ffprobes while counting frames.
const PROBES: usize = 4;

pub struct LevelSpec<'a> {
    pub pace: Pace,
    pub streams: usize,
    pub fixture: &'a Fixture,
    pub contenders: &'a [Contender],
    /// What our ingest reads with.
    pub source: SourceElement,
    /// Parent of this level's working directory.
    pub work: &'a Path,
    /// Extra time, beyond the media's own, before stragglers are killed.
    pub grace: Duration,
    pub keep_segments: bool,
}

pub fn pace_name(pace: Pace) -> &'static str {
    match pace {
        Pace::Fast => "fast",
        Pace::Realtime => "realtime",
    }
}

pub async fn run_level(spec: &LevelSpec<'_>) -> Result<LevelResult> {
    let root = spec
        .work
        .join(format!("{}-{}", pace_name(spec.pace), spec.streams));
    let logs = fresh_run_dir(&root)?;
    let server = start_server()?;
    let streams: Vec<Stream> = (0..spec.streams)
        .map(|i| {
            let id = format!("s{i:03}");
            let url = server.url(&path_of(&id));
            Stream { id, url }
        })
        .collect();

    let mut feeds = Vec::with_capacity(streams.len());
    for stream in &streams {
        let log = logs.join(format!("publish-{}.log", stream.id));
        feeds.push(Feed::start(spec.fixture, &stream.url, spec.pace, &log)?);
    }
    for stream in &streams {
        server
            .wait_for_stream(&path_of(&stream.id), Duration::from_secs(30))
            .await
            .with_context(|| format!("publisher of {}", stream.id))?;
    }

    let mut dirs = Vec::new();
    for contender in spec.contenders {
        for stream in &streams {
            let dir = contender.stream_dir(&root, stream);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            dirs.push(dir);
        }
    }
    let watch = AvailabilityWatch::start(&dirs)?;

    // Our ingest, like MediaMTX, drops a source silent for 10 s, and a
    // gated publisher is silent until release. Starting 128 peer processes
    // on 2 cores takes longer than that, so each contender is started and
    // connected in turn, ours last: nobody waits long on a silent stream.
    let mut order = spec.contenders.to_vec();
    order.sort_by_key(|c| *c == Contender::Ours);
    let mut processes = Vec::new();
    for (started, &contender) in order.iter().enumerate() {
        for process in contender.spawn(&streams, &root, &logs, spec.source)? {
            processes.push((contender, process));
        }
        wait_for_readers(&server, &streams, started + 1).await;
    }
    let t0: Vec<Instant> = feeds.iter_mut().map(Feed::release).collect();
    let released = Instant::now();
    tracing::info!(
        pace = pace_name(spec.pace),
        streams = spec.streams,
        "publishers released"
    );

    let media_wall = match spec.pace {
        Pace::Fast => spec.fixture.media_s / FAST_SPEED,
        Pace::Realtime => spec.fixture.media_s,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(media_wall) + spec.grace;
    for (feed, stream) in feeds.iter_mut().zip(&streams) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if let Err(e) = feed.finish(left).await {
            tracing::warn!("publisher of {}: {e:#}", stream.id);
        }
    }
    // Stream ends reach every reader within moments; a contender still
    // running after DRAIN did not notice (librtmp can miss it) and is asked
    // to stop, all stragglers at once: SIGINT (gst-launch -e then finalises
    // its open file), SIGKILL after STOP_GRACE.
    let drain_until = (tokio::time::Instant::now() + DRAIN).min(deadline.max(tokio::time::Instant::now()));
    let mut stopped = vec![false; processes.len()];
    for (i, (_, process)) in processes.iter_mut().enumerate() {
        if tokio::time::timeout_at(drain_until, process.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "{} still running after the stream ended: stopping it",
                process.label()
            );
            process.signal(libc::SIGINT);
            stopped[i] = true;
        }
    }
    let kill_at = tokio::time::Instant::now() + STOP_GRACE;
    let mut usages: Vec<(Contender, Usage, bool)> = Vec::new();
    for ((contender, mut process), stopped) in processes.into_iter().zip(stopped) {
        let usage = match tokio::time::timeout_at(kill_at, process.wait()).await {
            Ok(usage) => usage?,
            Err(_) => {
                process.signal(libc::SIGKILL);
                process.wait().await?
            }
        };
        if !usage.success && !stopped {
            tracing::warn!("{} failed; see {}", process.label(), logs.display());
        }
        usages.push((contender, usage, stopped));
    }
    let wall_s = usages
        .iter()
        .map(|(_, u, _)| u.ended_at.saturating_duration_since(released).as_secs_f64())
        .fold(0.0, f64::max);
    let appearances = watch.finish()?;
    drop(server);

    let mut results = Vec::new();
    for &contender in spec.contenders {
        let own: Vec<(Usage, bool)> = usages
            .iter()
            .filter(|(c, _, _)| *c == contender)
            .map(|(_, u, stopped)| (*u, *stopped))
            .collect();
        let analysis = analyse(spec, contender, &root, &streams, &t0, &appearances).await;
        results.push(ContenderResult {
            contender,
            processes: own.len(),
            failed_processes: own.iter().filter(|(u, stopped)| !u.success && !stopped).count(),
            stopped_processes: own.iter().filter(|(_, stopped)| *stopped).count(),
            cpu_s: own.iter().map(|(u, _)| u.cpu_s).sum(),
            peak_rss_kib: own.iter().map(|(u, _)| u.peak_rss_kib).sum(),
            ..analysis
        });
        if !spec.keep_segments {
            let _ = std::fs::remove_dir_all(root.join(contender.name()));
        }
    }
    Ok(LevelResult {
        pace: spec.pace,
        streams: spec.streams,
        media_s: spec.fixture.media_s,
        frame_interval_ms: spec.fixture.frame_interval_ms(),
        wall_s,
        contenders: results,
    })
}

/// Empties `root` of an earlier run and returns its new `logs` folder.
pub fn fresh_run_dir(root: &Path) -> Result<PathBuf> {
    if root.exists() {
        std::fs::remove_dir_all(root).with_context(|| format!("clearing {}", root.display()))?;
    }
    let logs = root.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    Ok(logs)
}

/// The embedded server the bench's streams go through.
pub fn start_server() -> Result<RtmpServer> {
    RtmpServer::start(ServerConfig {
        // A gated publisher is silent until every reader is connected, which
        // at 64 streams on 2 cores can take longer than the default 10 s.
        read_timeout: Duration::from_secs(60),
        ..ServerConfig::default()
    })
    .context("starting the embedded RTMP server")
}

pub fn path_of(stream_id: &str) -> String {
    ingest::StreamId::parse(stream_id)
        .expect("the bench makes valid stream ids")
        .input_path(ingest::DEFAULT_APP_PATH)
}

/// Waits (on the server's change notifications) until every path has one
/// reader per contender. On timeout the run goes on: the frame counts will
/// show who missed media.
pub async fn wait_for_readers(server: &RtmpServer, streams: &[Stream], per_path: usize) {
    let lacking = |server: &RtmpServer| {
        let paths = server.paths();
        streams
            .iter()
            .filter(|s| {
                let name = path_of(&s.id);
                paths
                    .iter()
                    .find(|p| p.name == name)
                    .is_none_or(|p| p.readers.len() < per_path)
            })
            .count()
    };
    // Below the publishers' 60-s read timeout on the server.
    if server
        .wait_for_state(|s| lacking(s) == 0, Duration::from_secs(50))
        .await
        .is_err()
    {
        tracing::warn!(
            "{} stream(s) still lack readers; releasing anyway",
            lacking(server)
        );
    }
}

/// Frames, lags and first-segment times of one contender's files.
async fn analyse(
    spec: &LevelSpec<'_>,
    contender: Contender,
    root: &Path,
    streams: &[Stream],
    t0: &[Instant],
    appearances: &Appearances,
) -> ContenderResult {
    let per_stream: Vec<Vec<PathBuf>> = streams
        .iter()
        .map(|s| contenders::segments(contender, &contender.stream_dir(root, s)))
        .collect();
    let counts = frames::count_all(per_stream.iter().flatten().cloned().collect(), PROBES).await;
    let mut counts = counts.into_iter();
    let expected_one = match contender {
        Contender::Ours => spec.fixture.frames_pairable,
        _ => spec.fixture.frames,
    };
    let mut total = ContenderResult {
        contender,
        processes: 0,
        failed_processes: 0,
        stopped_processes: 0,
        cpu_s: 0.0,
        peak_rss_kib: 0,
        frames: FrameCount::default(),
        expected: FrameCount::default(),
        lost: FrameCount::default(),
        duplicated: FrameCount::default(),
        video_segments: 0,
        lag_ms: None,
        first_segment_s: None,
        untimed_segments: 0,
    };
    let mut lags = Vec::new();
    let mut firsts = Vec::new();
    for (files, start) in per_stream.iter().zip(t0) {
        let files: Vec<(&PathBuf, FrameCount)> = files.iter().zip(counts.by_ref()).collect();
        let got: FrameCount = files.iter().map(|(_, f)| *f).sum();
        let (lost, duplicated) = frame_balance(got, expected_one);
        total.frames = total.frames + got;
        total.expected = total.expected + expected_one;
        total.lost = total.lost + lost;
        total.duplicated = total.duplicated + duplicated;
        let video: Vec<(u64, Option<Instant>)> = files
            .iter()
            .filter(|(p, _)| {
                p.file_name()
                    .is_some_and(|n| contender.is_video_segment(&n.to_string_lossy()))
            })
            .map(|(p, f)| (f.video, appearances.get(*p).copied()))
            .collect();
        total.video_segments += video.len();
        if spec.pace == Pace::Realtime {
            let (stream_lags, untimed) = segment_lags(*start, &spec.fixture.video_frame_ms, &video);
            lags.extend(stream_lags);
            total.untimed_segments += untimed;
            if let Some(first) = files.iter().filter_map(|(p, _)| appearances.get(*p)).min() {
                firsts.push(first.saturating_duration_since(*start).as_secs_f64());
            }
        }
    }
    total.lag_ms = Percentiles::of(&lags);
    total.first_segment_s = Percentiles::of(&firsts);
    total
}

/// Availability lag (ms) of each video segment but the last: the moment the
/// file appeared minus the moment the publisher sent the segment's last
/// frame (`t0` + that frame's timestamp in `video_frame_ms`). Segments are
/// contiguous from the stream's first frame, so a segment's last frame is
/// the cumulative frame count minus one. The last segment is closed by the
/// end of the stream, not by a keyframe, so it measures teardown rather than
/// availability. Also returns how many segments had no appearance time.
pub fn segment_lags(
    t0: Instant,
    video_frame_ms: &[u32],
    segments: &[(u64, Option<Instant>)],
) -> (Vec<f64>, usize) {
    let mut lags = Vec::new();
    let mut untimed = 0;
    let mut frames_so_far = 0usize;
    let cut_by_keyframe = segments.len().saturating_sub(1);
    for (frames, appeared) in &segments[..cut_by_keyframe] {
        frames_so_far += *frames as usize;
        let (Some(appeared), Some(last_frame_ms)) =
            (appeared, video_frame_ms.get(frames_so_far.wrapping_sub(1)))
        else {
            untimed += 1;
            continue;
        };
        let sent = t0 + Duration::from_millis(u64::from(*last_frame_ms));
        let lag_ms = if *appeared >= sent {
            appeared.duration_since(sent).as_secs_f64() * 1000.0
        } else {
            -(sent.duration_since(*appeared).as_secs_f64() * 1000.0)
        };
        lags.push(lag_ms);
    }
    (lags, untimed)
}

/// A free loopback port, for a child's HTTP side.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// `count` realtime publishers of `fixture`, one per stream `<prefix>NNN`,
/// each holding its media until released.
pub fn realtime_feeds(
    server: &RtmpServer,
    fixture: &Fixture,
    prefix: &str,
    count: usize,
    logs: &Path,
) -> Result<(Vec<Stream>, Vec<Feed>)> {
    let streams: Vec<Stream> = (0..count)
        .map(|k| {
            let id = format!("{prefix}{k:03}");
            Stream {
                url: server.url(&path_of(&id)),
                id,
            }
        })
        .collect();
    let feeds = streams
        .iter()
        .map(|s| {
            Feed::start(
                fixture,
                &s.url,
                Pace::Realtime,
                &logs.join(format!("publish-{}.log", s.id)),
            )
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((streams, feeds))
}

/// Releases `feeds` spread over one segment (6 s), as streams start in
/// production: their segment ends and output spans do not all fall in the
/// same millisecond (a restart's burst is the scenarios' business).
pub async fn release_spread(feeds: &mut [Feed]) {
    let spacing = Duration::from_secs(6) / feeds.len().max(1) as u32;
    let mut start = tokio::time::interval(spacing);
    for feed in feeds {
        start.tick().await;
        feed.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_measured_from_each_segments_last_frame() {
        let t0 = Instant::now();
        let at = |ms: u64| Some(t0 + Duration::from_millis(ms));
        // 30 fps starting at 21 ms, as ffmpeg stamps the fixture: frame 179,
        // the last of the first segment, is sent at 5987 ms.
        let frame_ms: Vec<u32> = (0..630u32).map(|i| 21 + i * 1000 / 30).collect();
        let segments = [(180, at(6_000)), (180, None), (180, at(18_100)), (90, at(20_000))];
        let (lags, untimed) = segment_lags(t0, &frame_ms, &segments);
        assert_eq!(untimed, 1);
        assert_eq!(lags.len(), 2, "the stream's last segment is not timed");
        assert!((lags[0] - 13.0).abs() < 0.01, "{lags:?}");
        assert!((lags[1] - 113.0).abs() < 0.01, "{lags:?}");
    }

    #[test]
    fn early_appearance_is_a_negative_lag() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let frame_ms: Vec<u32> = (0..60u32).map(|i| i * 1000 / 30).collect();
        let segments = [(30, Some(t0)), (30, None)];
        let (lags, _) = segment_lags(t0, &frame_ms, &segments);
        assert!((lags[0] + 966.0).abs() < 0.01, "{lags:?}");
    }
}
