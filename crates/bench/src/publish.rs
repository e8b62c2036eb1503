//! One publisher per stream, through media-tools: its feed's lead-in makes
//! the path available (the server analyses it as MediaMTX does), the body
//! is held until every contender reads the path, then sent at the run's
//! pace. Every contender thus sees the whole body, from its first
//! keyframe, and the release instant anchors the latency clock: the
//! fixture's frame at `t` ms leaves at the release plus `t` (realtime).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use media_tools::{Pace, PublishOptions, Publisher};

use crate::fixture::Fixture;

pub struct Feed(Publisher);

impl Feed {
    pub fn start(fixture: &Fixture, url: &str, pace: Pace, log: &Path) -> Result<Self> {
        let options = PublishOptions {
            pace,
            ..PublishOptions::default()
        };
        Publisher::start(fixture.feed(), url, &options, log)
            .map(Self)
            .with_context(|| format!("starting the publisher of {url}"))
    }

    /// Sends the body and returns the instant its first frame leaves.
    pub fn release(&mut self) -> Instant {
        self.0.release();
        Instant::now()
    }

    /// Waits for the publisher to send everything and exit.
    pub async fn finish(&mut self, timeout: Duration) -> Result<()> {
        self.0.finish_cleanly(timeout).await.map_err(Into::into)
    }
}
