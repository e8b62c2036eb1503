//! The three ways of cutting the same RTMP streams into segments, and where
//! each puts its files:
//!
//! ```text
//! ours    bench drive --out DIR URL1 .. URLn       one process, n streams
//! ffmpeg  ffmpeg -i URL -c copy -f segment ...      one process per stream
//! gst     gst-launch-1.0 rtmpsrc ! ... splitmuxsink one process per stream
//! ```
//!
//! `bench drive` is this binary running our ingest library for every
//! stream in one process; it is a child like the others, so the kernel
//! accounts it the same way.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use ingest::SourceElement;

use crate::measure::process::Process;

/// Segment length every contender is asked for, seconds.
pub const SEGMENT_S: u32 = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Contender {
    /// Our ingest, every stream in one process.
    Ours,
    /// `ffmpeg -f segment`, one process per stream.
    Ffmpeg,
    /// `gst-launch-1.0 ... splitmuxsink`, one process per stream.
    Gst,
}

/// One published stream.
#[derive(Debug, Clone)]
pub struct Stream {
    pub id: String,
    pub url: String,
}

impl Contender {
    pub const ALL: [Contender; 3] = [Contender::Ours, Contender::Ffmpeg, Contender::Gst];

    pub fn name(self) -> &'static str {
        match self {
            Self::Ours => "ours",
            Self::Ffmpeg => "ffmpeg",
            Self::Gst => "gst",
        }
    }

    /// Where this contender writes `stream`'s segments.
    pub fn stream_dir(self, root: &Path, stream: &Stream) -> PathBuf {
        // Our ingest appends the stream id itself, so all three match.
        root.join(self.name()).join(&stream.id)
    }

    /// A finished segment file (temporaries are hidden, manifests are not media).
    pub fn is_segment(self, name: &str) -> bool {
        match self {
            Self::Ours => (name.starts_with("video_") || name.starts_with("audio_")) && name.ends_with(".ts"),
            Self::Ffmpeg => name.starts_with('o') && name.ends_with(".ts"),
            Self::Gst => name.starts_with('v') && name.ends_with(".mp4"),
        }
    }

    /// A segment that carries video: the one whose availability is timed
    /// (ours writes audio to separate files cut at the same keyframes).
    pub fn is_video_segment(self, name: &str) -> bool {
        self.is_segment(name) && (self != Self::Ours || name.starts_with("video_"))
    }

    /// Starts this contender's processes for `streams`.
    /// `source` is what our ingest reads with; the peers ignore it.
    pub fn spawn(
        self,
        streams: &[Stream],
        root: &Path,
        logs: &Path,
        source: SourceElement,
    ) -> Result<Vec<Process>> {
        match self {
            Self::Ours => {
                let exe = std::env::current_exe().context("locating the bench binary")?;
                let mut command = Command::new(exe);
                command.arg("drive").arg("--out").arg(root.join(self.name()));
                command.arg("--source").arg(source.factory_name());
                command.args(streams.iter().map(|s| &s.url));
                // Logs at warn: the driver must not pay for chatty logging.
                command.env("RUST_LOG", "warn");
                Ok(vec![Process::spawn(command, "ours", &logs.join("ours.log"))?])
            }
            Self::Ffmpeg | Self::Gst => streams
                .iter()
                .map(|stream| {
                    let dir = self.stream_dir(root, stream);
                    let label = format!("{}-{}", self.name(), stream.id);
                    let log = logs.join(format!("{label}.log"));
                    let command = if self == Self::Ffmpeg {
                        ffmpeg_command(&stream.url, &dir)
                    } else {
                        gst_command(&stream.url, &dir)
                    };
                    Process::spawn(command, &label, &log)
                })
                .collect(),
        }
    }
}

/// The issue's ffmpeg command line, plus quiet logging and no stdin.
fn ffmpeg_command(url: &str, dir: &Path) -> Command {
    let mut command = Command::new("ffmpeg");
    command
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-i", url])
        .args(["-c", "copy", "-f", "segment", "-segment_time"])
        .arg(SEGMENT_S.to_string())
        .args(["-reset_timestamps", "1"])
        .arg(dir.join("o%03d.ts"));
    command
}

/// The issue's gst-launch command line, plus `-q` and `-e` (a stop request
/// becomes an end of stream, so splitmuxsink finalises its open file).
fn gst_command(url: &str, dir: &Path) -> Command {
    let mut command = Command::new("gst-launch-1.0");
    command
        .args(["-q", "-e"])
        .args(["rtmpsrc", &format!("location={url}"), "!"])
        .args([
            "flvdemux",
            "name=d",
            "d.video",
            "!",
            "h264parse",
            "!",
            "queue",
            "!",
        ])
        .args(["splitmuxsink", "name=m"])
        .arg(format!("location={}", dir.join("v%03d.mp4").display()))
        .arg(format!("max-size-time={}", u64::from(SEGMENT_S) * 1_000_000_000))
        .args(["d.audio", "!", "aacparse", "!", "queue", "!", "m.audio_0"]);
    command
}

/// A stream's finished segment files, by name order (= time order).
pub fn segments(contender: Contender, dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| contender.is_segment(&n.to_string_lossy()))
        })
        .collect();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_per_contender() {
        assert!(Contender::Ours.is_video_segment("video_000003.ts"));
        assert!(Contender::Ours.is_segment("audio_000003.ts"));
        assert!(!Contender::Ours.is_video_segment("audio_000003.ts"));
        assert!(!Contender::Ours.is_segment(".video_000004.ts.part"));
        assert!(!Contender::Ours.is_segment("manifest.jsonl"));
        assert!(Contender::Ffmpeg.is_video_segment("o002.ts"));
        assert!(Contender::Gst.is_video_segment("v002.mp4"));
    }

    #[test]
    fn peer_command_lines_match_the_issue() {
        let dir = Path::new("/d");
        let render = |c: Command| {
            std::iter::once(c.get_program())
                .chain(c.get_args())
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let ffmpeg = render(ffmpeg_command("rtmp://u", dir));
        assert!(
            ffmpeg
                .ends_with("-i rtmp://u -c copy -f segment -segment_time 6 -reset_timestamps 1 /d/o%03d.ts"),
            "{ffmpeg}"
        );
        let gst = render(gst_command("rtmp://u", dir));
        assert_eq!(
            gst,
            "gst-launch-1.0 -q -e rtmpsrc location=rtmp://u ! flvdemux name=d d.video ! h264parse ! queue ! \
             splitmuxsink name=m location=/d/v%03d.mp4 max-size-time=6000000000 d.audio ! aacparse ! queue ! m.audio_0"
        );
    }
}
