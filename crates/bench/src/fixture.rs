//! The media every stream publishes: the seed fixture (30 s, 1280x720,
//! 30 fps, 2-s GOP, H.264 + AAC), looped by stream copy when a run needs
//! more media than that, and its frame counts, the reference for lost or
//! duplicated frames.
//!
//! Every stream is published as a feed (media-tools: a lead-in the server
//! analyses, a hold until every contender reads, then the fixture from its
//! first keyframe), so the reference is the feed's body: every contender
//! reads from the hold on and, as MediaMTX sends it, gets all of the body's
//! video and audio. Our ingest drops, by its rule, the audio that precedes
//! the first picture (one frame here), so its reference is the body's
//! pairable audio; the peers keep everything.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use media_tools::flv::FlvTag;
use media_tools::{Feed, FixtureRecipe, Window};

use crate::measure::frames::FrameCount;

/// The seed recipe's name in fixtures/fixtures.yaml, so the e2e suite and
/// the bench share one cached file.
const SEED: &str = "seed-30s";

pub struct Fixture {
    /// The fixture's tags, read once and shared by every publisher.
    pub tags: Arc<Vec<FlvTag>>,
    pub media_s: f64,
    pub fps: u32,
    /// Timestamp (ms) of every video frame of the fixture, in sending
    /// order: frame i leaves at the release instant plus this.
    pub video_frame_ms: Vec<u32>,
    /// Frames every reader receives (the feed's body).
    pub frames: FrameCount,
    /// Of those, what our ingest keeps (audio that pairs with pictures).
    pub frames_pairable: FrameCount,
}

impl Fixture {
    /// One video frame interval, in milliseconds.
    pub fn frame_interval_ms(&self) -> f64 {
        1000.0 / f64::from(self.fps)
    }

    /// The seed fixture trimmed or looped to `media_s` seconds.
    pub async fn prepare(seed_cache: &Path, work: &Path, media_s: f64) -> Result<Self> {
        let recipe = FixtureRecipe::seed(SEED);
        let seed = recipe
            .ensure_built(seed_cache)
            .await
            .context("building the seed fixture with ffmpeg")?;
        let path = if (media_s - recipe.duration_s).abs() < 1e-6 {
            seed
        } else {
            let path = work.join(format!("{}-{media_s}s.flv", recipe.cache_key()));
            if !path.exists() {
                loop_copy(&seed, &path, recipe.duration_s, media_s).await?;
            }
            path
        };
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let tags = media_tools::flv::read_tags(&bytes).context("the fixture is not FLV")?;
        let feed = Feed::new(&tags, Window::WHOLE);
        let body_audio = feed.body.len() - feed.video_frames();
        let frame_ms = recipe.audio_frame_ms();
        let video = feed.video_frames() as u64;
        Ok(Self {
            video_frame_ms: tags
                .iter()
                .filter(|t| t.is_frame() && t.kind == media_tools::flv::VIDEO)
                .map(|t| t.timestamp)
                .collect(),
            tags: Arc::new(tags),
            media_s,
            fps: recipe.fps,
            frames: FrameCount {
                video,
                audio: body_audio as u64,
            },
            frames_pairable: FrameCount {
                video,
                audio: feed.pairable_audio_frames(frame_ms) as u64,
            },
        })
    }

    /// A fresh feed of the whole fixture for one publisher.
    pub fn feed(&self) -> Feed {
        Feed::new(&self.tags, Window::WHOLE)
    }
}

/// `-stream_loop` re-stamps each pass after the previous one, so the result
/// is one continuous stream; `-t` cuts at a packet.
async fn loop_copy(seed: &Path, output: &Path, seed_s: f64, media_s: f64) -> Result<()> {
    std::fs::create_dir_all(output.parent().context("the fixture has a directory")?)?;
    let loops = (media_s / seed_s).ceil() as u32;
    let temp = output.with_extension("part");
    let status = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
        .args(["-stream_loop", &loops.saturating_sub(1).to_string(), "-i"])
        .arg(seed)
        .args(["-t", &format!("{media_s:.3}"), "-c", "copy", "-f", "flv"])
        .arg(&temp)
        .kill_on_drop(true)
        .status()
        .await
        .context("running ffmpeg to loop the fixture")?;
    if !status.success() {
        bail!("ffmpeg could not loop {} to {media_s} s", seed.display());
    }
    std::fs::rename(&temp, output).with_context(|| format!("renaming to {}", output.display()))
}
