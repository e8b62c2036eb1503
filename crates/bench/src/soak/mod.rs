//! `--soak DURATION`: one stream published in real time for a long time,
//! to show that our ingest's memory stays flat and its segments tile the
//! stream without a gap:
//!
//! ```text
//! server ◄── one gated publisher (the seed fixture looped to DURATION)
//!    │
//!    └──► ours (bench drive, a child) ── VmRSS every 5 s ──► soak.csv
//!
//! at the end: growth after the first minute + the manifest's tiling ──► soak.md
//! ```
//!
//! The ingest runs as a child, as in the other runs, so the RSS sampled is
//! the ingest's alone, not the bench's (which holds the whole fixture).

mod report;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ingest::{MANIFEST_FILE, Manifest};
use ingest::{ManifestEntry, SourceElement};
use media_tools::Pace;
use serde::Serialize;

use crate::contenders::{Contender, Stream};
use crate::fixture::Fixture;
use crate::measure::contiguity::{self, TrackTiling};
use crate::measure::frames::FrameCount;
use crate::measure::process::Process;
use crate::measure::rss::{self, RssGrowth, RssSample};
use crate::publish::Feed;
use crate::report::ReportContext;
use crate::run::{fresh_run_dir, path_of, start_server, wait_for_readers};
use crate::side_run::SideRun;

/// RSS before this (seconds after the release) is start-up, not growth.
pub const WARMUP_S: f64 = 60.0;

/// Net growth after the warm-up that fails the soak (1 MB).
pub const MAX_GROWTH_BYTES: i64 = 1_000_000;

/// How often the ingest's RSS is read.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// How long the ingest may take to exit once the publisher has finished.
const DRAIN: Duration = Duration::from_secs(30);

/// How long the ingest asked to stop (SIGINT) has before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// How soon after the ingest exits the publisher must be done for the
/// ingest to have ended with the stream rather than before it.
const ENDED_WITH_STREAM: Duration = Duration::from_secs(10);

const STREAM_ID: &str = "soak";

pub struct Options {
    /// Media published, seconds (the soak's length).
    pub media_s: f64,
    pub source: SourceElement,
    pub out: PathBuf,
    pub fixture_cache: PathBuf,
    pub keep_segments: bool,
    /// Extra time, beyond the media's own, before the publisher is killed.
    pub grace: Duration,
    /// How the run was invoked, for the report.
    pub command: String,
}

/// Everything the soak observed.
#[derive(Debug, Clone, Serialize)]
pub struct SoakOutcome {
    pub media_s: f64,
    pub source: &'static str,
    pub samples: Vec<RssSample>,
    pub growth: Option<RssGrowth>,
    /// Video, then audio.
    pub tracks: Vec<TrackTiling>,
    /// What the ingest should have written (the feed's pairable body).
    pub expected: FrameCount,
    pub cpu_s: f64,
    pub peak_rss_kib: u64,
    /// The ingest exited with status 0 by itself.
    pub ingest_clean: bool,
    /// The ingest was gone before the publisher had sent everything.
    pub ingest_ended_early: bool,
    pub publisher_error: Option<String>,
    /// Release to the ingest's exit.
    pub wall_s: f64,
}

impl SoakOutcome {
    /// Why the soak fails; empty when it passes.
    pub fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        match &self.growth {
            None => failures.push(format!("no RSS sample after the first {WARMUP_S} s")),
            Some(g) if g.growth_bytes() >= MAX_GROWTH_BYTES => failures.push(format!(
                "RSS grew {:.2} MB after the first minute ({} -> {} KiB; limit {:.0} MB)",
                g.growth_bytes() as f64 / 1e6,
                g.warm_kib,
                g.end_kib,
                MAX_GROWTH_BYTES as f64 / 1e6
            )),
            Some(_) => {}
        }
        for track in &self.tracks {
            if track.segments == 0 {
                failures.push(format!("no {} segments in the manifest", track.kind));
            } else if !track.breaks.is_empty() {
                failures.push(format!(
                    "{} segments not contiguous: {} break(s), first {:?}",
                    track.kind,
                    track.breaks.len(),
                    track.breaks[0]
                ));
            }
        }
        // Tiling cannot see media missing at either end; the counts can.
        let (got, expected) = (self.frames(), self.expected);
        if got.video < expected.video || got.audio < expected.audio {
            failures.push(format!(
                "frames missing from the manifest: video {} of {}, audio {} of {}",
                got.video, expected.video, got.audio, expected.audio
            ));
        }
        if self.ingest_ended_early {
            failures.push("the ingest exited before the stream ended".into());
        } else if !self.ingest_clean {
            failures.push("the ingest did not exit cleanly at the end of the stream".into());
        }
        if let Some(e) = &self.publisher_error {
            failures.push(format!("the publisher failed: {e}"));
        }
        failures
    }

    /// Frames the manifest records, per track.
    pub fn frames(&self) -> FrameCount {
        let of = |kind| {
            self.tracks
                .iter()
                .filter(|t| t.kind == kind)
                .map(|t| t.frames)
                .sum()
        };
        FrameCount {
            video: of(ingest::MediaKind::Video),
            audio: of(ingest::MediaKind::Audio),
        }
    }
}

pub async fn run(options: Options) -> Result<()> {
    let run = SideRun::prepare(&options.out, &options.fixture_cache, options.media_s).await?;
    let outcome = observe(&options, &run.fixture).await?;
    let ctx = ReportContext {
        machine: &run.machine,
        date: &run.date,
        command: &options.command,
    };
    let markdown = report::markdown(&outcome, &ctx);
    run.write("soak.md", &markdown)?;
    run.write("soak.csv", &rss::csv(&outcome.samples))?;
    run.write_json("soak", &options.command, &outcome)?;
    run.conclude(&markdown, "soak failed", outcome.failures())
}

/// Publishes, samples and reads the manifest.
async fn observe(options: &Options, fixture: &Fixture) -> Result<SoakOutcome> {
    let root = options.out.join("runs/soak");
    let logs = fresh_run_dir(&root)?;
    let server = start_server()?;
    let path = path_of(STREAM_ID);
    let stream = Stream {
        id: STREAM_ID.to_owned(),
        url: server.url(&path),
    };
    let mut feed = Feed::start(fixture, &stream.url, Pace::Realtime, &logs.join("publish.log"))?;
    server
        .wait_for_stream(&path, Duration::from_secs(30))
        .await
        .context("the soak's publisher")?;
    let dir = Contender::Ours.stream_dir(&root, &stream);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut ingest = Contender::Ours
        .spawn(std::slice::from_ref(&stream), &root, &logs, options.source)?
        .pop()
        .context("our ingest is one process")?;
    wait_for_readers(&server, std::slice::from_ref(&stream), 1).await;
    let released = feed.release();
    tracing::info!(media_s = options.media_s, "soak: publisher released");

    let publish_timeout = Duration::from_secs_f64(options.media_s) + options.grace;
    let sampled = sample_until_published(&mut feed, &ingest, released, publish_timeout).await;
    drop(feed);

    let mut stopped = false;
    let usage = match tokio::time::timeout(DRAIN, ingest.wait()).await {
        Ok(usage) => usage?,
        Err(_) => {
            tracing::warn!("the ingest still runs {DRAIN:?} after the stream ended: stopping it");
            stopped = true;
            stop(&mut ingest).await?
        }
    };
    let wall_s = usage.ended_at.saturating_duration_since(released).as_secs_f64();
    drop(server);

    let entries = Manifest::read(&dir.join(MANIFEST_FILE)).context("reading the soak's manifest")?;
    let records: Vec<_> = entries
        .into_iter()
        .filter_map(|e| match e {
            ManifestEntry::Segment(s) => Some(s),
            // Connections (and, with an STS, fragments) say nothing of tiling.
            _ => None,
        })
        .collect();
    if !options.keep_segments {
        remove_segments(&dir);
    }
    Ok(SoakOutcome {
        media_s: options.media_s,
        source: options.source.factory_name(),
        growth: RssGrowth::of(&sampled.samples, WARMUP_S),
        samples: sampled.samples,
        tracks: contiguity::check(&records),
        expected: fixture.frames_pairable,
        cpu_s: usage.cpu_s,
        peak_rss_kib: usage.peak_rss_kib,
        ingest_clean: usage.success && !stopped,
        ingest_ended_early: sampled.ingest_ended_early,
        publisher_error: sampled.publisher_error,
        wall_s,
    })
}

/// What the sampling loop saw.
struct Sampled {
    samples: Vec<RssSample>,
    ingest_ended_early: bool,
    publisher_error: Option<String>,
}

/// Reads the ingest's RSS every [`SAMPLE_EVERY`] until the publisher has
/// sent everything and exited (killed after `timeout`), or until the ingest
/// is gone.
async fn sample_until_published(
    feed: &mut Feed,
    ingest: &Process,
    released: Instant,
    timeout: Duration,
) -> Sampled {
    let mut samples = Vec::new();
    let mut ticks = tokio::time::interval(SAMPLE_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let published = feed.finish(timeout);
    let error = |result: Result<()>| result.err().map(|e| format!("{e:#}"));
    tokio::pin!(published);
    let mut logged_minute = 0;
    loop {
        tokio::select! {
            result = &mut published => {
                return Sampled { samples, ingest_ended_early: false, publisher_error: error(result) };
            }
            _ = ticks.tick() => {
                let at_s = released.elapsed().as_secs_f64();
                let Some(rss_kib) = ingest.rss_kib() else {
                    // The ingest leaves as soon as the stream closes, which
                    // can be moments before ffmpeg's exit is seen: early
                    // only if the publisher is still going some time later.
                    let (ingest_ended_early, publisher_error) =
                        match tokio::time::timeout(ENDED_WITH_STREAM, &mut published).await {
                            Ok(result) => (false, error(result)),
                            Err(_) => {
                                tracing::error!(at_s, "soak: the ingest is gone before the stream ended");
                                (true, None)
                            }
                        };
                    return Sampled { samples, ingest_ended_early, publisher_error };
                };
                samples.push(RssSample { at_s, rss_kib });
                let minute = (at_s / 60.0) as u64;
                if minute > logged_minute {
                    logged_minute = minute;
                    tracing::info!(minute, rss_kib, "soak: ingest RSS");
                }
            }
        }
    }
}

async fn stop(ingest: &mut Process) -> Result<crate::measure::process::Usage> {
    ingest.signal(libc::SIGINT);
    match tokio::time::timeout(STOP_GRACE, ingest.wait()).await {
        Ok(usage) => usage,
        Err(_) => {
            ingest.signal(libc::SIGKILL);
            ingest.wait().await
        }
    }
}

/// The media files go (about 1 GB per hour); the manifest and logs stay.
fn remove_segments(dir: &Path) {
    for path in crate::contenders::segments(Contender::Ours, dir) {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::contiguity::Break;

    fn track(kind: ingest::MediaKind, segments: usize, breaks: Vec<Break>) -> TrackTiling {
        TrackTiling {
            kind,
            segments,
            first_index: Some(0),
            last_index: Some(segments as u64 - 1),
            covered_s: 600.0,
            frames: 100,
            worst_join_ms: 0.0,
            connections: 1,
            breaks,
        }
    }

    /// A 10-minute soak whose RSS goes from 20,000 KiB at 1 min to `end_kib`.
    pub(super) fn outcome(end_kib: u64) -> SoakOutcome {
        let samples = vec![
            RssSample {
                at_s: 60.0,
                rss_kib: 20_000,
            },
            RssSample {
                at_s: 600.0,
                rss_kib: end_kib,
            },
        ];
        SoakOutcome {
            media_s: 600.0,
            source: "rtmpsrc",
            growth: RssGrowth::of(&samples, WARMUP_S),
            samples,
            tracks: vec![
                track(ingest::MediaKind::Video, 100, vec![]),
                track(ingest::MediaKind::Audio, 100, vec![]),
            ],
            expected: FrameCount::default(),
            cpu_s: 1.0,
            peak_rss_kib: 1,
            ingest_clean: true,
            ingest_ended_early: false,
            publisher_error: None,
            wall_s: 600.0,
        }
    }

    #[test]
    fn flat_memory_and_tiled_segments_pass() {
        // 976 KiB = 999,424 bytes: just under 1 MB.
        assert_eq!(outcome(20_976).failures(), Vec::<String>::new());
    }

    #[test]
    fn a_megabyte_of_growth_fails_with_the_figure() {
        let failures = outcome(20_977).failures();
        assert_eq!(failures.len(), 1);
        assert!(failures[0].contains("1.00 MB"), "{failures:?}");
    }

    #[test]
    fn a_break_or_a_missing_track_fails() {
        let mut soak = outcome(20_000);
        soak.tracks[0].breaks.push(Break::Index { after: 4, got: 6 });
        soak.tracks[1].segments = 0;
        soak.ingest_clean = false;
        let failures = soak.failures();
        assert_eq!(failures.len(), 3, "{failures:?}");
        assert!(failures[0].starts_with("video segments not contiguous"));
        assert_eq!(failures[1], "no audio segments in the manifest");
    }

    #[test]
    fn frames_short_of_the_feed_fail() {
        let mut soak = outcome(20_000);
        soak.expected = FrameCount {
            video: 100,
            audio: 101,
        };
        assert_eq!(
            soak.failures(),
            ["frames missing from the manifest: video 100 of 100, audio 100 of 101"]
        );
    }

    #[test]
    fn frames_are_summed_per_track() {
        let soak = outcome(20_000);
        assert_eq!(
            soak.frames(),
            FrameCount {
                video: 100,
                audio: 100
            }
        );
    }
}
