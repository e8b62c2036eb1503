//! The media every stream publishes: the seed fixture (30 s, 1280x720,
//! 30 fps, 2-s GOP, H.264 + AAC), looped by stream copy when a run needs
//! more media than that, and its frame counts, the reference for lost or
//! duplicated frames.
//!
//! The reference is what a reader that joins after the publisher's first
//! second can receive: the server (like MediaMTX) gives late joiners the
//! cached GOP, which starts at the latest video keyframe, so audio frames
//! sent before the first keyframe reach nobody. Every contender joins that
//! way, so they are excluded for all of them alike.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use media_tools::FixtureRecipe;

use crate::measure::frames::{self, FrameCount};

/// The seed recipe's name in fixtures/fixtures.yaml, so the e2e suite and
/// the bench share one cached file.
const SEED: &str = "seed-30s";

pub struct Fixture {
    pub path: PathBuf,
    /// The FLV bytes, read once and shared by every realtime feeder.
    pub bytes: Arc<Vec<u8>>,
    pub media_s: f64,
    pub fps: u32,
    /// Timestamp (ms) of every video frame, in sending order: the realtime
    /// feeder sends frame i at the release clock's origin plus this.
    pub video_frame_ms: Vec<u32>,
    /// Frames a late-joining reader can receive (see the module comment).
    pub frames: FrameCount,
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
        let in_file = frames::count(&path).await?;
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let FrameTimes {
            audio_before_first_keyframe: unreachable,
            video_frame_ms,
        } = frame_times(&bytes).context("the fixture is not FLV")?;
        let frames = FrameCount {
            video: in_file.video,
            audio: in_file.audio.saturating_sub(unreachable),
        };
        Ok(Self {
            path,
            bytes: Arc::new(bytes),
            media_s,
            fps: recipe.fps,
            video_frame_ms,
            frames,
        })
    }
}

struct FrameTimes {
    /// Audio frames before the first video keyframe, in tag order.
    audio_before_first_keyframe: u64,
    /// Timestamp of every video frame. They need not be multiples of the
    /// frame interval: ffmpeg starts the video at the AAC encoder's delay
    /// (21 ms) when it makes the fixture.
    video_frame_ms: Vec<u32>,
}

/// What the bench needs to know of the fixture's frames, in one pass
/// (sequence headers are configuration, not frames).
fn frame_times(flv: &[u8]) -> Option<FrameTimes> {
    use media_tools::flv::{AUDIO, VIDEO};
    let mut times = FrameTimes {
        audio_before_first_keyframe: 0,
        video_frame_ms: Vec::new(),
    };
    let mut seen_keyframe = false;
    for tag in media_tools::flv::read_tags(flv)?.iter().filter(|t| t.is_frame()) {
        seen_keyframe |= tag.is_keyframe();
        match tag.kind {
            VIDEO => times.video_frame_ms.push(tag.timestamp),
            AUDIO if !seen_keyframe => times.audio_before_first_keyframe += 1,
            _ => {}
        }
    }
    Some(times)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An FLV tag: type, 3-byte size, timestamp, stream id, data, back-pointer.
    fn tag(kind: u8, data: &[u8]) -> Vec<u8> {
        let mut t = vec![kind, 0, 0, data.len() as u8, 0, 0, 0, 0, 0, 0, 0];
        t.extend_from_slice(data);
        t.extend_from_slice(&(11 + data.len() as u32).to_be_bytes());
        t
    }

    #[test]
    fn counts_audio_that_precedes_the_first_keyframe() {
        let mut flv = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        flv.extend(tag(9, &[0x17, 0])); // AVC sequence header
        flv.extend(tag(8, &[0xaf, 0])); // AAC sequence header
        flv.extend(tag(8, &[0xaf, 1])); // audio frame, unreachable
        flv.extend(tag(9, &[0x17, 1])); // first keyframe
        flv.extend(tag(8, &[0xaf, 1]));
        assert_eq!(frame_times(&flv).unwrap().audio_before_first_keyframe, 1);
        assert!(frame_times(b"not flv").is_none());
    }

    #[test]
    fn video_frame_times_skip_audio_and_the_sequence_header() {
        let mut flv = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        let stamped = |kind, ts: u8, data: &[u8]| {
            let mut t = tag(kind, data);
            t[6] = ts;
            t
        };
        flv.extend(stamped(9, 0, &[0x17, 0]));
        flv.extend(stamped(8, 0, &[0xaf, 1]));
        flv.extend(stamped(9, 21, &[0x17, 1]));
        flv.extend(stamped(9, 54, &[0x27, 1]));
        assert_eq!(frame_times(&flv).unwrap().video_frame_ms, [21, 54]);
    }
}
