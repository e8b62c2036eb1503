//! Helpers for tests against real clients (ffmpeg, ffprobe, gst-launch).
//! Every wait has a deadline and ends on a signal (a log line, a publisher,
//! a process exit), never on a fixed sleep.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use media_tools::{Feed, Pace, PublishOptions, Publisher, Window, flv};
use rtmp_server::{RtmpServer, ServerConfig};
use tokio::process::{Child, Command};
use tokio::sync::broadcast;

/// Generous: the machine may run many tests at once on two cores.
pub const DEADLINE: Duration = Duration::from_secs(60);

pub fn start_server() -> RtmpServer {
    RtmpServer::start(ServerConfig::default()).expect("server starts")
}

/// Test media: H.264 (keyframe every `gop` frames at 30 fps) + AAC in FLV.
pub async fn fixture(dir: &Path, seconds: u32, gop: u32) -> PathBuf {
    let out = dir.join(format!("fixture-{seconds}s-g{gop}.flv"));
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args([
            "-t",
            &seconds.to_string(),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ])
        .args(["-g", &gop.to_string(), "-c:a", "aac", "-f", "flv"])
        .arg(&out)
        .kill_on_drop(true)
        .status()
        .await
        .expect("ffmpeg runs");
    assert!(status.success(), "fixture generation failed");
    out
}

/// A publisher of `file` as MediaMTX needs one: a lead-in the server
/// analyses (so the path becomes readable) with the file held back until
/// [`HeldPublisher::release`], then sent at 20x realtime. Lets a test
/// attach readers before the media they check.
pub struct HeldPublisher {
    pub publisher: Publisher,
}

impl HeldPublisher {
    pub async fn start(file: &Path, url: &str) -> Self {
        Self::start_paced(file, url, Pace::Fast).await
    }

    pub async fn start_paced(file: &Path, url: &str, pace: Pace) -> Self {
        let tags = flv::read_tags(&std::fs::read(file).expect("fixture readable")).expect("FLV");
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = file.with_file_name(format!("publish-{}-{n}.log", std::process::id()));
        let options = PublishOptions {
            pace,
            ..PublishOptions::default()
        };
        let publisher =
            Publisher::start(Feed::new(&tags, Window::WHOLE), url, &options, &log).expect("ffmpeg spawns");
        Self { publisher }
    }

    /// Sends the file and waits for ffmpeg to finish.
    pub async fn release(mut self) -> ExitStatus {
        self.publisher.release();
        self.publisher.wait(DEADLINE).await.expect("ffmpeg finishes")
    }
}

/// Waits for an ffmpeg reader and says whether it read the stream cleanly:
/// the only complaint allowed is the end of input, which ffmpeg reports as
/// "Input/output error" when the server closes the connection without a
/// closing message (as MediaMTX does when the publisher leaves).
pub async fn read_cleanly(child: Child) -> Result<(), String> {
    let output = tokio::time::timeout(DEADLINE, child.wait_with_output())
        .await
        .expect("the reader exits before the deadline")
        .expect("the reader's status");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.ends_with("Input/output error"))
        .collect();
    if complaints.is_empty() {
        Ok(())
    } else {
        Err(format!("{} ({})", complaints.join(" | "), output.status))
    }
}

pub async fn wait_exit(child: &mut Child) -> ExitStatus {
    tokio::time::timeout(DEADLINE, child.wait())
        .await
        .expect("process exits before the deadline")
        .expect("process status")
}

/// Runs a command to completion, returning its status and stderr.
pub async fn run(command: &mut Command) -> (ExitStatus, String) {
    let output = tokio::time::timeout(DEADLINE, command.kill_on_drop(true).stdin(Stdio::null()).output())
        .await
        .expect("process exits before the deadline")
        .expect("process runs");
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `gst-launch-1.0 -q <src> location=URL ! flvdemux ...` with one queue per
/// branch: without them the demuxer's single streaming thread blocks in the
/// first sink's preroll before the other pad exists (a deadlock that also
/// happens with a plain FLV file through `fdsrc`).
///
/// Run with SIGPIPE ignored, as a service runs (Rust programs ignore it):
/// the server closes a reader at once when its publisher leaves, as
/// MediaMTX does, with a reset if the reader's acknowledgements are unread,
/// and librtmp's goodbye to a reset socket would otherwise kill gst-launch.
pub fn gst_reader(source: &str, url: &str) -> Command {
    let mut command = Command::new("sh");
    command
        .args(["-c", "trap '' PIPE; exec gst-launch-1.0 \"$@\"", "gst-launch-1.0"])
        .arg("-q")
        .arg(source)
        .arg(format!("location={url}"))
        .args(["!", "flvdemux", "name=d"])
        .args(["d.video", "!", "queue", "!", "h264parse", "!", "fakesink"])
        .args(["d.audio", "!", "queue", "!", "aacparse", "!", "fakesink"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Decodes everything a reader gets; `-xerror` turns decode errors into a
/// failure (see [`read_cleanly`]).
pub fn ffmpeg_decoder(url: &str) -> Command {
    let mut command = Command::new("ffmpeg");
    command
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-xerror",
            "-i",
            url,
            "-f",
            "null",
            "-",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Waits on the server's log lines.
pub struct LogWatch {
    lines: broadcast::Receiver<String>,
    pub seen: Vec<String>,
}

impl LogWatch {
    pub fn new(server: &RtmpServer) -> Self {
        Self {
            lines: server.subscribe_log(),
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing every part of `needles` (including lines
    /// already seen); returns it.
    pub async fn wait_for(&mut self, needles: &[&str]) -> String {
        let matches = |l: &String| needles.iter().all(|n| l.contains(n));
        if let Some(line) = self.seen.iter().find(|l| matches(l)) {
            return line.clone();
        }
        loop {
            let line = self.next_line(needles).await;
            if matches(&line) {
                return line;
            }
        }
    }

    /// Waits until `count` lines (seen so far or new) contain all of `needles`.
    pub async fn wait_for_count(&mut self, needles: &[&str], count: usize) {
        let matches = |l: &String| needles.iter().all(|n| l.contains(n));
        while self.seen.iter().filter(|l| matches(l)).count() < count {
            self.next_line(needles).await;
        }
    }

    async fn next_line(&mut self, waiting_for: &[&str]) -> String {
        let recv = async {
            loop {
                match self.lines.recv().await {
                    Ok(line) => return line,
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => panic!("log closed"),
                }
            }
        };
        match tokio::time::timeout(DEADLINE, recv).await {
            Ok(line) => {
                self.seen.push(line.clone());
                line
            }
            Err(_) => panic!(
                "no log line with {waiting_for:?}; seen:\n{}",
                self.seen.join("\n")
            ),
        }
    }
}

impl Drop for LogWatch {
    /// A failing test shows what the server said.
    fn drop(&mut self) {
        if std::thread::panicking() {
            while let Ok(line) = self.lines.try_recv() {
                self.seen.push(line);
            }
            eprintln!("--- server log ---\n{}", self.seen.join("\n"));
        }
    }
}

/// Waits until `path` has a stream and `readers` readers.
pub async fn wait_for_readers(server: &RtmpServer, path: &str, readers: usize) {
    server
        .wait_for_state(
            |s| s.path(path).is_some_and(|p| p.readers.len() >= readers),
            DEADLINE,
        )
        .await
        .expect("the readers are in before the deadline");
}
