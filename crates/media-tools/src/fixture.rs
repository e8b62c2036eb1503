//! Fixture recipes: test media described, not committed. ffmpeg's lavfi
//! sources (testsrc2, sine) generate them reproducibly; files are cached by
//! a hash of the recipe, so a changed recipe makes a new file.

use std::path::{Path, PathBuf};

use crate::error::{ToolError, run_tool};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum VideoCodec {
    #[default]
    H264,
    /// Sorenson Spark (FLV1): an FLV video codec the ingest must refuse.
    Flv1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AudioCodec {
    #[default]
    Aac,
    /// An FLV audio codec the ingest must refuse.
    Mp3,
}

fn default_width() -> u32 {
    1280
}
fn default_height() -> u32 {
    720
}
fn default_fps() -> u32 {
    30
}
fn default_gop() -> f64 {
    2.0
}
fn default_duration() -> f64 {
    30.0
}
fn default_rate() -> u32 {
    48_000
}
fn default_channels() -> u32 {
    2
}
fn yes() -> bool {
    true
}

/// A generated test stream. Defaults are the seed fixture: 30 s, 1280x720,
/// 30 fps, 2-s GOP, H.264 + AAC 48 kHz stereo.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureRecipe {
    pub name: String,
    #[serde(default = "default_duration")]
    pub duration_s: f64,
    #[serde(default = "yes")]
    pub video: bool,
    #[serde(default)]
    pub video_codec: VideoCodec,
    #[serde(default = "default_width")]
    pub width: u32,
    #[serde(default = "default_height")]
    pub height: u32,
    #[serde(default = "default_fps")]
    pub fps: u32,
    /// Keyframe interval in seconds (a closed GOP of fps * gop_s pictures).
    #[serde(default = "default_gop")]
    pub gop_s: f64,
    /// Consecutive B-frames (0 = none).
    #[serde(default)]
    pub bframes: u32,
    #[serde(default = "yes")]
    pub audio: bool,
    #[serde(default)]
    pub audio_codec: AudioCodec,
    #[serde(default = "default_rate")]
    pub sample_rate: u32,
    #[serde(default = "default_channels")]
    pub channels: u32,
}

impl FixtureRecipe {
    /// The seed fixture with another name.
    pub fn seed(name: &str) -> Self {
        serde_json::from_value(serde_json::json!({ "name": name })).expect("defaults deserialise")
    }

    /// Refuses recipes ffmpeg could not honour, naming the field.
    pub fn validate(&self) -> Result<(), ToolError> {
        let finite_positive = |v: f64| v.is_finite() && v > 0.0 && v <= 86_400.0;
        let problem = if !finite_positive(self.duration_s) {
            Some(format!(
                "duration_s {} must be a positive number of seconds (at most a day)",
                self.duration_s
            ))
        } else if !finite_positive(self.gop_s) {
            Some(format!(
                "gop_s {} must be a positive number of seconds",
                self.gop_s
            ))
        } else if !(1..=240).contains(&self.fps) {
            Some(format!("fps {} must be between 1 and 240", self.fps))
        } else if self.width == 0 || self.height == 0 || self.width % 2 == 1 || self.height % 2 == 1 {
            Some(format!(
                "{}x{} must be even and non-zero (yuv420p)",
                self.width, self.height
            ))
        } else if !(8_000..=96_000).contains(&self.sample_rate) {
            Some(format!(
                "sample_rate {} must be between 8000 and 96000",
                self.sample_rate
            ))
        } else if !(1..=2).contains(&self.channels) {
            Some(format!("channels {} must be 1 or 2", self.channels))
        } else if !self.video && !self.audio {
            Some("a fixture needs video, audio or both".to_owned())
        } else {
            None
        };
        match problem {
            Some(problem) => Err(ToolError::InvalidRecipe {
                name: self.name.clone(),
                problem,
            }),
            None => Ok(()),
        }
    }

    /// How long one AAC frame (1024 samples) lasts, in milliseconds.
    pub fn audio_frame_ms(&self) -> f64 {
        1024.0 * 1000.0 / f64::from(self.sample_rate)
    }

    /// Pictures between keyframes.
    pub fn gop_frames(&self) -> u32 {
        (self.gop_s * f64::from(self.fps)).round().max(1.0) as u32
    }

    /// A stable key for the cache: FNV-1a of the canonical JSON form.
    pub fn cache_key(&self) -> String {
        let canonical = serde_json::to_string(self).expect("recipes serialise");
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in canonical.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{}-{hash:016x}", self.name)
    }

    /// ffmpeg arguments that generate this fixture into `output`, as FLV:
    /// what RTMP carries, so publishing is a plain copy, and simple enough
    /// for [`crate::flv`] to split at a tag boundary.
    pub fn ffmpeg_args(&self, output: &Path) -> Vec<String> {
        let d = format!("{}", self.duration_s);
        let mut args: Vec<String> = ["-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
            .map(String::from)
            .to_vec();
        if self.video {
            args.extend(["-f".into(), "lavfi".into(), "-i".into()]);
            args.push(format!(
                "testsrc2=size={}x{}:rate={}:duration={d}",
                self.width, self.height, self.fps
            ));
        }
        if self.audio {
            let layout = if self.channels == 1 { "mono" } else { "stereo" };
            args.extend(["-f".into(), "lavfi".into(), "-i".into()]);
            args.push(format!(
                "sine=frequency=440:sample_rate={}:duration={d},aformat=channel_layouts={layout}",
                self.sample_rate
            ));
        }
        if self.video {
            let gop = self.gop_frames().to_string();
            match self.video_codec {
                VideoCodec::H264 => args.extend(
                    [
                        "-c:v",
                        "libx264",
                        "-preset",
                        "veryfast",
                        "-tune",
                        "zerolatency",
                        "-pix_fmt",
                        "yuv420p",
                        "-b:v",
                        "1500k",
                        "-x264-params",
                    ]
                    .map(String::from),
                ),
                VideoCodec::Flv1 => args.extend(["-c:v", "flv", "-b:v", "1500k"].map(String::from)),
            }
            if self.video_codec == VideoCodec::H264 {
                // zerolatency forbids B-frames and scene cuts; restore what
                // the recipe asks for, with a fixed closed GOP.
                args.push(format!(
                    "keyint={gop}:min-keyint={gop}:scenecut=0:bframes={}:open-gop=0:threads=2",
                    self.bframes
                ));
            }
            args.extend(["-g".into(), gop]);
        }
        if self.audio {
            match self.audio_codec {
                AudioCodec::Aac => args.extend(["-c:a", "aac", "-b:a", "128k"].map(String::from)),
                AudioCodec::Mp3 => args.extend(["-c:a", "libmp3lame", "-b:a", "128k"].map(String::from)),
            }
            args.extend(["-ar".into(), self.sample_rate.to_string()]);
            args.extend(["-ac".into(), self.channels.to_string()]);
        }
        args.extend(["-t".into(), d, "-f".into(), "flv".into()]);
        args.push(output.display().to_string());
        args
    }

    /// Builds the fixture into `cache_dir` unless it is already there, and
    /// returns its path. Safe to call from parallel tests: each build writes
    /// a private temporary file and renames it into place.
    pub async fn ensure_built(&self, cache_dir: &Path) -> Result<PathBuf, ToolError> {
        let path = cache_dir.join(format!("{}.flv", self.cache_key()));
        if path.exists() {
            return Ok(path);
        }
        tokio::fs::create_dir_all(cache_dir)
            .await
            .map_err(|source| ToolError::Io {
                path: cache_dir.to_owned(),
                source,
            })?;
        // Parallel tests may build the same fixture; each writes its own
        // temporary file and the renames are atomic.
        static BUILDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let build = BUILDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let temp = cache_dir.join(format!(
            ".{}.{}-{build}.part",
            self.cache_key(),
            std::process::id()
        ));
        let mut command = crate::child::command("ffmpeg");
        command.args(self.ffmpeg_args(&temp));
        if let Err(e) = run_tool("ffmpeg", &mut command, "").await {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(e);
        }
        tokio::fs::rename(&temp, &path)
            .await
            .map_err(|source| ToolError::Io {
                path: path.clone(),
                source,
            })?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_matches_the_service_fixture() {
        let seed = FixtureRecipe::seed("seed");
        assert_eq!(
            (seed.width, seed.height, seed.fps, seed.duration_s),
            (1280, 720, 30, 30.0)
        );
        assert_eq!((seed.sample_rate, seed.channels), (48_000, 2));
        assert_eq!(seed.gop_frames(), 60);
    }

    #[test]
    fn impossible_recipes_are_refused() {
        for broken in [
            FixtureRecipe {
                gop_s: 0.0,
                ..FixtureRecipe::seed("g")
            },
            FixtureRecipe {
                duration_s: f64::NAN,
                ..FixtureRecipe::seed("d")
            },
            FixtureRecipe {
                channels: 6,
                ..FixtureRecipe::seed("c")
            },
            FixtureRecipe {
                width: 641,
                ..FixtureRecipe::seed("w")
            },
        ] {
            let message = broken.validate().unwrap_err().to_string();
            assert!(
                message.contains(&format!("fixture '{}'", broken.name)),
                "{message}"
            );
        }
        FixtureRecipe::seed("ok").validate().unwrap();
    }

    #[test]
    fn cache_key_changes_with_the_recipe() {
        let a = FixtureRecipe::seed("x");
        let mut b = a.clone();
        b.gop_s = 4.0;
        assert_ne!(a.cache_key(), b.cache_key());
        assert_eq!(a.cache_key(), FixtureRecipe::seed("x").cache_key());
    }

    #[test]
    fn video_only_recipe_has_no_audio_input() {
        let mut recipe = FixtureRecipe::seed("v");
        recipe.audio = false;
        let args = recipe.ffmpeg_args(Path::new("o.flv")).join(" ");
        assert!(!args.contains("sine="), "{args}");
        assert!(args.contains("keyint=60:min-keyint=60"), "{args}");
    }
}
