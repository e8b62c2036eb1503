//! An ffmpeg child process publishing a [`Feed`] over RTMP, codec copy, the
//! way a real encoder would. Killed when dropped, so no test or Ctrl-C
//! leaves one behind; its stderr goes to a log file kept with the run's
//! artifacts.
//!
//! ffmpeg reads FLV from a pipe: the feed's head goes in at once, then the
//! publisher holds until [`Publisher::release`], then the body is written
//! paced by its timestamps, at realtime or [`FAST_SPEED`] times realtime
//! (fast enough for the ingest, not a burst that overflows a server's
//! per-reader queue; MediaMTX discards past 512 units). Pacing here rather
//! than with ffmpeg's `-re` keeps the hold out of ffmpeg's clock.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::sync::{oneshot, watch};

use crate::error::ToolError;
use crate::feed::Feed;
use crate::flv::{self, FlvTag};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pace {
    /// Frames leave at their timestamps, like a live encoder.
    #[default]
    Realtime,
    /// [`FAST_SPEED`] times realtime.
    Fast,
}

impl Pace {
    /// How many times faster than realtime the body is sent.
    pub fn speed(self) -> u32 {
        match self {
            Self::Realtime => 1,
            Self::Fast => FAST_SPEED,
        }
    }
}

/// Speed of a fast-paced publish, relative to realtime.
pub const FAST_SPEED: u32 = 20;

/// How far the feed has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Progress {
    Starting,
    /// The head is in ffmpeg's pipe; the body waits for the release.
    Holding,
    Releasing,
    /// Every body tag is in the pipe.
    BodySent,
    /// The pipe is closed: ffmpeg finishes and disconnects.
    Done,
}

#[derive(Debug, Clone, Default)]
pub struct PublishOptions {
    pub pace: Pace,
    /// After the body, stay connected (silent) until [`Publisher::finish`],
    /// instead of ending the stream.
    pub stay_connected: bool,
}

pub struct Publisher {
    child: tokio::process::Child,
    log: PathBuf,
    release: Option<oneshot::Sender<()>>,
    finish: Option<oneshot::Sender<()>>,
    progress: watch::Receiver<Progress>,
}

impl Publisher {
    /// Starts `ffmpeg -f flv -i pipe:0 -copyinkf -c copy -f flv URL` and
    /// writes the feed's head.
    pub fn start(feed: Feed, url: &str, options: &PublishOptions, log: &Path) -> Result<Self, ToolError> {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|source| ToolError::Io {
                path: log.to_owned(),
                source,
            })?;
        let mut command = crate::child::command("ffmpeg");
        command
            .args(["-hide_banner", "-loglevel", "info"])
            // Probe half a second of the lead-in, then start: ffmpeg must not
            // wait for data the hold keeps back.
            .args(["-analyzeduration", "500000", "-f", "flv", "-i", "pipe:0"])
            // The lead-in starts with pictures that are not keyframes.
            .args(["-copyinkf", "-c", "copy", "-f", "flv", url])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|source| ToolError::Spawn {
            program: "ffmpeg",
            source,
        })?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let (release, released) = oneshot::channel();
        let (finish, finished) = oneshot::channel();
        let (progress_tx, progress) = watch::channel(Progress::Starting);
        let hold_after = options.stay_connected.then_some(finished);
        tokio::spawn(feed_ffmpeg(
            stdin,
            feed,
            options.pace.speed(),
            released,
            hold_after,
            progress_tx,
        ));
        Ok(Self {
            child,
            log: log.to_owned(),
            release: Some(release),
            finish: Some(finish),
            progress,
        })
    }

    /// Sends the body now (no-op once released).
    pub fn release(&mut self) {
        if let Some(release) = self.release.take() {
            let _ = release.send(());
        }
    }

    /// Whether the body still waits for [`Self::release`].
    pub fn is_held(&self) -> bool {
        self.release.is_some()
    }

    /// Ends a publish that stays connected after its body (no-op otherwise).
    pub fn finish(&mut self) {
        if let Some(finish) = self.finish.take() {
            let _ = finish.send(());
        }
    }

    /// Resolves once the feed has reached `stage`.
    pub async fn reached(&mut self, stage: Progress) {
        let _ = self.progress.wait_for(|p| *p >= stage).await;
    }

    /// Waits for ffmpeg to exit, killing it after `timeout`. A held publish
    /// is released (and a connected one finished) first, since it could
    /// never end otherwise.
    pub async fn wait(&mut self, timeout: Duration) -> Result<ExitStatus, ToolError> {
        self.release();
        self.finish();
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
    /// nor times out, so it can sit in a `select!`.
    pub async fn exited(&mut self) -> Result<ExitStatus, ToolError> {
        self.child.wait().await.map_err(|source| ToolError::Spawn {
            program: "ffmpeg",
            source,
        })
    }

    /// Waits for a clean exit, with the log's tail as the error otherwise.
    pub async fn finish_cleanly(&mut self, timeout: Duration) -> Result<(), ToolError> {
        let status = self.wait(timeout).await?;
        if status.success() {
            return Ok(());
        }
        Err(ToolError::Failed {
            program: "ffmpeg",
            status: status.to_string(),
            stderr: self.log_tail(),
        })
    }

    /// The last lines ffmpeg wrote, to say why it failed.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        crate::error::tail(&log, 15)
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }
}

/// Writes the head, waits for the release, then the body paced at `speed`
/// times realtime; with `hold_after`, keeps the pipe open until told.
/// Closing the pipe tells ffmpeg the stream is over.
async fn feed_ffmpeg(
    mut stdin: tokio::process::ChildStdin,
    feed: Feed,
    speed: u32,
    released: oneshot::Receiver<()>,
    hold_after: Option<oneshot::Receiver<()>>,
    progress: watch::Sender<Progress>,
) {
    if stdin.write_all(&feed.head_bytes()).await.is_err() || stdin.flush().await.is_err() {
        progress.send_replace(Progress::Done);
        return;
    }
    progress.send_replace(Progress::Holding);
    if released.await.is_err() {
        progress.send_replace(Progress::Done);
        return;
    }
    progress.send_replace(Progress::Releasing);
    if write_paced(&mut stdin, &feed.body, speed).await.is_ok() {
        progress.send_replace(Progress::BodySent);
        if let Some(hold) = hold_after {
            let _ = hold.await;
        }
    }
    drop(stdin);
    progress.send_replace(Progress::Done);
}

/// Writes each tag when its time comes: `speed` times faster than its
/// timestamps say, counted from the first tag. Pacing, not waiting for an
/// event: this is what "realtime" means.
async fn write_paced(
    stdin: &mut tokio::process::ChildStdin,
    body: &[FlvTag],
    speed: u32,
) -> std::io::Result<()> {
    let Some(first) = body.first() else {
        return Ok(());
    };
    let start = tokio::time::Instant::now();
    let mut chunk = Vec::new();
    for tag in body {
        let offset = Duration::from_millis(u64::from(tag.timestamp.saturating_sub(first.timestamp)));
        let due = start + offset / speed;
        if due > tokio::time::Instant::now() && !chunk.is_empty() {
            stdin.write_all(&chunk).await?;
            stdin.flush().await?;
            chunk.clear();
        }
        tokio::time::sleep_until(due).await;
        flv::write_tag(&mut chunk, tag);
    }
    stdin.write_all(&chunk).await?;
    stdin.flush().await
}
