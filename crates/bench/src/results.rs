//! What one run of one concurrency level at one pace produced, per
//! contender: the raw observations, before any ratio or target.

use media_tools::Pace;
use serde::Serialize;

use crate::contenders::Contender;
use crate::measure::frames::FrameCount;
use crate::measure::stats::Percentiles;

#[derive(Debug, Clone, Serialize)]
pub struct LevelResult {
    pub pace: Pace,
    pub streams: usize,
    /// Media published per stream, seconds.
    pub media_s: f64,
    pub frame_interval_ms: f64,
    /// From the release of the publishers to the last contender's exit.
    pub wall_s: f64,
    pub contenders: Vec<ContenderResult>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ContenderResult {
    pub contender: Contender,
    pub processes: usize,
    /// Exited non-zero on their own.
    pub failed_processes: usize,
    /// Still running well after the stream ended, so stopped by the bench.
    pub stopped_processes: usize,
    /// User + system CPU of all its processes.
    pub cpu_s: f64,
    /// Sum of its processes' peak RSS.
    pub peak_rss_kib: u64,
    pub frames: FrameCount,
    /// What a late-joining reader can receive, all streams.
    pub expected: FrameCount,
    /// Per stream and kind, frames missing from the segments (summed).
    pub lost: FrameCount,
    /// Per stream and kind, frames beyond the fixture's (summed).
    pub duplicated: FrameCount,
    pub video_segments: usize,
    /// Segment availability lag, ms (realtime pace only).
    pub lag_ms: Option<Percentiles>,
    /// Time from publish start to each stream's first segment, s (realtime only).
    pub first_segment_s: Option<Percentiles>,
    /// Segments whose appearance inotify did not report (not timed).
    pub untimed_segments: usize,
}

impl LevelResult {
    pub fn contender(&self, contender: Contender) -> Option<&ContenderResult> {
        self.contenders.iter().find(|c| c.contender == contender)
    }
}

/// Frames lost and duplicated in one stream, by kind.
pub fn frame_balance(got: FrameCount, expected: FrameCount) -> (FrameCount, FrameCount) {
    let lost = FrameCount {
        video: expected.video.saturating_sub(got.video),
        audio: expected.audio.saturating_sub(got.audio),
    };
    let duplicated = FrameCount {
        video: got.video.saturating_sub(expected.video),
        audio: got.audio.saturating_sub(expected.audio),
    };
    (lost, duplicated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balance_splits_missing_and_extra_frames() {
        let (lost, dup) = frame_balance(
            FrameCount {
                video: 898,
                audio: 1410,
            },
            FrameCount {
                video: 900,
                audio: 1408,
            },
        );
        assert_eq!(lost, FrameCount { video: 2, audio: 0 });
        assert_eq!(dup, FrameCount { video: 0, audio: 2 });
    }
}
