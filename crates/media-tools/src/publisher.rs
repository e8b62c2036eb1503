//! An ffmpeg child process publishing a fixture over RTMP, codec copy, the
//! way a real encoder would. Killed when dropped, so no test or Ctrl-C leaves
//! one behind; its stderr goes to a log file kept with the run's artifacts.
//!
//! Realtime pace is ffmpeg's `-re`. Fast pace cannot simply drop `-re`: a
//! reader is refused until a publisher exists, so it would miss most of a
//! stream that is over in a fraction of a second. Instead ffmpeg reads the
//! fixture from stdin; we feed the first second (enough for ffmpeg to probe
//! and announce the stream), and [`Publisher::release`] sends the rest, once
//! the reader is in place, at [`FAST_SPEED`] times realtime: as fast as the
//! ingest can go, but not a burst that overflows a relay's per-reader queue
//! (MediaMTX discards frames past 512 queued).

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use crate::error::ToolError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pace {
    /// `-re`: frames leave at their timestamps, like a live encoder.
    #[default]
    Realtime,
    /// As fast as the server accepts them.
    Fast,
}

#[derive(Debug, Clone, Default)]
pub struct PublishOptions {
    pub pace: Pace,
    /// Start this far into the fixture (`-ss`).
    pub seek: Option<Duration>,
    /// Publish only this much media (`-t`).
    pub limit: Option<Duration>,
}

/// How much of a fast-paced fixture is fed before the gate opens.
const GATE_MS: u32 = 1000;

/// Speed of a fast-paced publish, relative to realtime.
pub const FAST_SPEED: u32 = 20;

/// Granularity of fast pacing: media is written in slices this long.
const SLICE_MS: u32 = 200;

pub struct Publisher {
    child: tokio::process::Child,
    log: PathBuf,
    /// Fast pace: opens the gate for the rest of the fixture.
    held_back: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Publisher {
    /// Starts `ffmpeg [-re] -i FIXTURE -c copy -f flv URL`.
    pub fn start(fixture: &Path, url: &str, options: &PublishOptions, log: &Path) -> Result<Self, ToolError> {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|source| ToolError::Io {
                path: log.to_owned(),
                source,
            })?;
        let mut command = tokio::process::Command::new("ffmpeg");
        command.args(["-hide_banner", "-loglevel", "info"]);
        if let Some(seek) = options.seek {
            command.args(["-ss", &format!("{:.3}", seek.as_secs_f64())]);
        }
        let fixture_bytes = match options.pace {
            Pace::Realtime => {
                command
                    .args(["-nostdin", "-re", "-i"])
                    .arg(fixture)
                    .stdin(Stdio::null());
                None
            }
            Pace::Fast => {
                let bytes = std::fs::read(fixture).map_err(|source| ToolError::Io {
                    path: fixture.to_owned(),
                    source,
                })?;
                command
                    .args(["-analyzeduration", "500000", "-f", "flv", "-i", "pipe:0"])
                    .stdin(Stdio::piped());
                Some(bytes)
            }
        };
        if let Some(limit) = options.limit {
            command.args(["-t", &format!("{:.3}", limit.as_secs_f64())]);
        }
        command
            .args(["-c", "copy", "-f", "flv", url])
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|source| ToolError::Spawn {
            program: "ffmpeg",
            source,
        })?;
        let held_back = match fixture_bytes {
            None => None,
            Some(bytes) => {
                let tags = crate::flv::tags(&bytes).ok_or_else(|| ToolError::Output {
                    program: "ffmpeg",
                    reason: format!(
                        "{} is not an FLV file; fast pace needs FLV fixtures",
                        fixture.display()
                    ),
                })?;
                let stdin = child.stdin.take().expect("stdin is piped");
                let (release, released) = tokio::sync::oneshot::channel::<()>();
                // Even the head can exceed a pipe's buffer, so a task writes
                // everything rather than the caller.
                tokio::spawn(feed_fast(bytes, tags, stdin, released));
                Some(release)
            }
        };
        Ok(Self {
            child,
            log: log.to_owned(),
            held_back,
        })
    }

    /// Fast pace: send the rest of the fixture now (no-op otherwise).
    pub fn release(&mut self) {
        if let Some(release) = self.held_back.take() {
            let _ = release.send(());
        }
    }

    /// Whether a fast-paced publish is still waiting for [`Self::release`].
    pub fn is_held(&self) -> bool {
        self.held_back.is_some()
    }

    /// Waits for ffmpeg to exit, killing it after `timeout`. A held fast
    /// publish is released first, since it could never end otherwise.
    pub async fn wait(&mut self, timeout: Duration) -> Result<ExitStatus, ToolError> {
        self.release();
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => status.map_err(|source| ToolError::Spawn {
                program: "ffmpeg",
                source,
            }),
            Err(_) => {
                self.kill().await;
                Err(ToolError::Timeout(format!(
                    "ffmpeg publisher still running after {timeout:?}; see {}",
                    self.log.display()
                )))
            }
        }
    }

    /// Resolves when ffmpeg exits. Unlike [`Self::wait`] it neither releases
    /// a held publish nor times out, so it can sit in a `select!`.
    pub async fn exited(&mut self) -> Result<ExitStatus, ToolError> {
        self.child.wait().await.map_err(|source| ToolError::Spawn {
            program: "ffmpeg",
            source,
        })
    }

    /// Waits for a clean exit, with the log's tail as the error otherwise.
    pub async fn finish(&mut self, timeout: Duration) -> Result<(), ToolError> {
        let status = self.wait(timeout).await?;
        if status.success() {
            return Ok(());
        }
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        Err(ToolError::Failed {
            program: "ffmpeg",
            status: status.to_string(),
            stderr: crate::error::tail(&log, 15),
        })
    }

    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }
}

/// Writes the head of an FLV file, waits for the release, then the rest in
/// slices paced at [`FAST_SPEED`] times realtime. Dropping stdin at the end
/// tells ffmpeg the stream is over.
async fn feed_fast(
    bytes: Vec<u8>,
    tags: Vec<(usize, u32)>,
    mut stdin: tokio::process::ChildStdin,
    released: tokio::sync::oneshot::Receiver<()>,
) {
    use tokio::io::AsyncWriteExt;
    let offset_at = |ms: u32| crate::flv::offset_at(&tags, ms, bytes.len());
    let head = offset_at(GATE_MS);
    if stdin.write_all(&bytes[..head]).await.is_err() || released.await.is_err() {
        return;
    }
    let start = tokio::time::Instant::now();
    let mut written = head;
    let mut media_ms = GATE_MS;
    while written < bytes.len() {
        media_ms += SLICE_MS;
        let until = offset_at(media_ms).max(written);
        if stdin.write_all(&bytes[written..until]).await.is_err() {
            return;
        }
        written = until;
        let due = start + Duration::from_millis(u64::from((media_ms - GATE_MS) / FAST_SPEED));
        // Pacing, not waiting for an event: this is what "20x realtime" means.
        tokio::time::sleep_until(due).await;
    }
}
