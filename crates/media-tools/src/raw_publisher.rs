//! A publish of a [`Feed`] through this crate's own RTMP client instead of
//! ffmpeg, for the one case ffmpeg cannot serve: a publisher that stops at
//! an exact tag and stays connected (the first publisher of a takeover).
//! ffmpeg's muxer holds its last packet back until it has a later one from
//! the other track or the input ends, so a connected-but-idle ffmpeg never
//! delivers the end of its window. This client sends each tag as it is.
//!
//! It follows [`crate::Publisher`]'s protocol: the head at once, a hold
//! until [`RawPublisher::release`], the body paced, then either the end of
//! the stream or, with `stay_connected`, silence until
//! [`RawPublisher::finish`] or until the server closes the connection.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use crate::error::ToolError;
use crate::feed::Feed;
use crate::publisher::{Progress, PublishOptions};
use crate::rtmp_client::{ClientError, RtmpPublisher};

pub struct RawPublisher {
    release: Option<oneshot::Sender<()>>,
    finish: Option<oneshot::Sender<()>>,
    progress: watch::Receiver<Progress>,
    task: Option<tokio::task::JoinHandle<Result<(), ClientError>>>,
    /// How it ended, once known (why, if it failed).
    outcome: Option<Option<String>>,
    log: PathBuf,
}

impl RawPublisher {
    /// Connects to `authority` (host:port), publishes `path` and sends the
    /// feed's head; the body waits for [`Self::release`]. What happens is
    /// written to `log`.
    pub fn start(feed: Feed, authority: &str, path: &str, options: &PublishOptions, log: &Path) -> Self {
        let (release, released) = oneshot::channel();
        let (finish, finished) = oneshot::channel();
        let (progress_tx, progress) = watch::channel(Progress::Starting);
        let hold_after = options.stay_connected.then_some(finished);
        let speed = options.pace.speed();
        let (authority, path, log_path) = (authority.to_owned(), path.to_owned(), log.to_owned());
        let task = tokio::spawn(async move {
            let result = publish(&authority, &path, feed, speed, released, hold_after, &progress_tx).await;
            progress_tx.send_replace(Progress::Done);
            let line = match &result {
                Ok(()) => "publish ended\n".to_owned(),
                Err(e) => format!("publish failed: {e}\n"),
            };
            let _ = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
            result
        });
        Self {
            release: Some(release),
            finish: Some(finish),
            progress,
            task: Some(task),
            outcome: None,
            log: log.to_owned(),
        }
    }

    pub fn release(&mut self) {
        if let Some(release) = self.release.take() {
            let _ = release.send(());
        }
    }

    /// Ends a publish that stays connected after its body.
    pub fn finish(&mut self) {
        if let Some(finish) = self.finish.take() {
            let _ = finish.send(());
        }
    }

    pub fn progress(&self) -> Progress {
        *self.progress.borrow()
    }

    pub async fn reached(&mut self, stage: Progress) {
        let _ = self.progress.wait_for(|p| *p >= stage).await;
    }

    /// Resolves when the publish has ended: `Ok` if it ended as planned
    /// (or the server closed a publisher that stayed connected).
    pub async fn exited(&mut self) -> Result<(), ToolError> {
        if let Some(task) = self.task.as_mut() {
            let failure = match task.await {
                Ok(result) => result.err().map(|e| e.to_string()),
                Err(e) => Some(format!("the publish task failed: {e}")),
            };
            self.task = None;
            self.outcome = Some(failure);
        }
        match self.outcome.clone().flatten() {
            Some(failure) => Err(ToolError::Publish(failure)),
            None => Ok(()),
        }
    }

    /// Stops at once, closing the connection.
    pub fn kill(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }
}

impl Drop for RawPublisher {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn publish(
    authority: &str,
    path: &str,
    feed: Feed,
    speed: u32,
    released: oneshot::Receiver<()>,
    hold_after: Option<oneshot::Receiver<()>>,
    progress: &watch::Sender<Progress>,
) -> Result<(), ClientError> {
    let mut publisher = RtmpPublisher::publish(authority, path).await?;
    publisher.send_all(&feed.head).await?;
    progress.send_replace(Progress::Holding);
    if released.await.is_err() {
        return Ok(());
    }
    progress.send_replace(Progress::Releasing);
    let start = tokio::time::Instant::now();
    let first = feed.body.first().map_or(0, |t| t.timestamp);
    for tag in &feed.body {
        let offset = Duration::from_millis(u64::from(tag.timestamp.saturating_sub(first)));
        // Pacing a media clock: this is what realtime means.
        tokio::time::sleep_until(start + offset / speed).await;
        publisher.send(tag).await?;
    }
    progress.send_replace(Progress::BodySent);
    if let Some(hold) = hold_after {
        tokio::select! {
            _ = hold => {}
            () = publisher.closed_by_server() => return Ok(()),
        }
    }
    publisher.finish().await
}
