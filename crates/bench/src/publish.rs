//! One publisher per stream, gated: it sends the first second of media (so
//! the server has the stream and readers may connect), holds the rest until
//! every contender's reader is connected, then sends it at the run's pace.
//! Every contender thus sees the whole stream, and the release instant
//! anchors the latency clock.
//!
//! Fast pace is media-tools' gated publisher (20x realtime). Realtime pace
//! is fed here, tag by tag at its timestamp, because media-tools' realtime
//! mode (`ffmpeg -re`) cannot be gated and starts its clock at a moment we
//! cannot observe.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use media_tools::{Pace, PublishOptions, Publisher};
use tokio::io::AsyncWriteExt;
use tokio::sync::oneshot;

use crate::fixture::Fixture;

/// Media sent before the gate, as in media-tools' fast publisher.
const GATE_MS: u32 = 1000;

pub enum Feed {
    Fast(Publisher),
    Realtime {
        ffmpeg: tokio::process::Child,
        release: Option<oneshot::Sender<Instant>>,
    },
}

impl Feed {
    pub fn start(fixture: &Fixture, url: &str, pace: Pace, log: &Path) -> Result<Self> {
        match pace {
            Pace::Fast => {
                let options = PublishOptions {
                    pace: Pace::Fast,
                    ..PublishOptions::default()
                };
                let publisher = Publisher::start(&fixture.path, url, &options, log)
                    .with_context(|| format!("starting the publisher of {url}"))?;
                Ok(Self::Fast(publisher))
            }
            Pace::Realtime => start_realtime(fixture.bytes.clone(), url, log),
        }
    }

    /// Sends the rest of the media and returns the instant at which the
    /// stream's media time zero counts as sent: for realtime pace, frame
    /// `t` leaves at that instant plus `t`.
    pub fn release(&mut self) -> Instant {
        let now = Instant::now();
        match self {
            Self::Fast(publisher) => {
                publisher.release();
                now
            }
            Self::Realtime { release, .. } => {
                if let Some(release) = release.take() {
                    let _ = release.send(now);
                }
                now - Duration::from_millis(u64::from(GATE_MS))
            }
        }
    }

    /// Waits for the publisher to send everything and exit.
    pub async fn finish(&mut self, timeout: Duration) -> Result<()> {
        match self {
            Self::Fast(publisher) => publisher.finish(timeout).await.map_err(Into::into),
            Self::Realtime { ffmpeg, release } => {
                // Never leave a held feeder waiting forever.
                if let Some(release) = release.take() {
                    let _ = release.send(Instant::now());
                }
                let status = tokio::time::timeout(timeout, ffmpeg.wait())
                    .await
                    .context("the realtime publisher did not finish in time")??;
                if !status.success() {
                    bail!("the realtime publisher exited with {status}");
                }
                Ok(())
            }
        }
    }
}

fn start_realtime(bytes: Arc<Vec<u8>>, url: &str, log: &Path) -> Result<Feed> {
    let tags = media_tools::flv::tags(&bytes).context("the fixture is not FLV")?;
    let log_file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let mut ffmpeg = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "warning"])
        .args(["-analyzeduration", "500000", "-f", "flv", "-i", "pipe:0"])
        .args(["-c", "copy", "-f", "flv", url])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log_file))
        .kill_on_drop(true)
        .spawn()
        .context("starting the realtime publisher (ffmpeg)")?;
    let stdin = ffmpeg.stdin.take().context("ffmpeg's stdin is piped")?;
    let (release, released) = oneshot::channel();
    tokio::spawn(feed_realtime(bytes, tags, stdin, released));
    Ok(Feed::Realtime {
        ffmpeg,
        release: Some(release),
    })
}

/// Writes the head, waits for the release, then each tag at its own time.
/// Closing stdin at the end tells ffmpeg the stream is over.
async fn feed_realtime(
    bytes: Arc<Vec<u8>>,
    tags: Vec<(usize, u32)>,
    mut stdin: tokio::process::ChildStdin,
    released: oneshot::Receiver<Instant>,
) {
    let gate = tags
        .iter()
        .position(|(_, ts)| *ts >= GATE_MS)
        .unwrap_or(tags.len());
    let head_end = tags.get(gate).map_or(bytes.len(), |(offset, _)| *offset);
    if stdin.write_all(&bytes[..head_end]).await.is_err() {
        return;
    }
    let Ok(released_at) = released.await else {
        return;
    };
    let origin = tokio::time::Instant::from_std(released_at);
    for (i, (offset, ts)) in tags.iter().enumerate().skip(gate) {
        let end = tags.get(i + 1).map_or(bytes.len(), |(next, _)| *next);
        let due = origin + Duration::from_millis(u64::from(ts.saturating_sub(GATE_MS)));
        // A due time already past (a busy machine) sends at once: the clock
        // never drifts, lateness does not accumulate.
        tokio::time::sleep_until(due).await;
        if stdin.write_all(&bytes[*offset..end]).await.is_err() {
            return;
        }
    }
}
