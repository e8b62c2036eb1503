//! Per-track timestamp normalisation: fills in missing timestamps and
//! durations, and folds timestamp jumps so one glitch cannot produce a
//! segment lasting minutes.

/// A forward step larger than this (beyond one frame) is a jump, not a gap.
/// flvdemux already folds backward jumps of 2 s or more; this handles the
/// forward ones and any backward step it lets through.
pub const JUMP_THRESHOLD_NS: u64 = 5_000_000_000;

/// Video frame duration assumed until two frames have been seen (30 fps).
const DEFAULT_VIDEO_FRAME_NS: u64 = 33_333_333;

/// Nanoseconds one AAC frame (1024 samples) lasts at `sample_rate`.
pub fn aac_frame_ns(sample_rate: u32) -> u64 {
    1024 * 1_000_000_000 / u64::from(sample_rate.max(1))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NormalisedTimes {
    pub pts: u64,
    pub dts: u64,
    pub duration: u64,
    /// The frame came after a jump that was folded away.
    pub jumped: bool,
}

/// Keeps one track's timeline continuous.
#[derive(Debug, Clone)]
pub struct TrackTimeline {
    offset: i64,
    last_dts: Option<u64>,
    last_duration: u64,
}

impl TrackTimeline {
    pub fn video() -> Self {
        Self::with_fallback(DEFAULT_VIDEO_FRAME_NS)
    }

    pub fn audio(sample_rate: u32) -> Self {
        Self::with_fallback(aac_frame_ns(sample_rate))
    }

    fn with_fallback(fallback_duration: u64) -> Self {
        Self {
            offset: 0,
            last_dts: None,
            last_duration: fallback_duration,
        }
    }

    pub fn normalise(
        &mut self,
        pts: Option<u64>,
        dts: Option<u64>,
        duration: Option<u64>,
    ) -> NormalisedTimes {
        let expected = self.last_dts.map(|d| d + self.last_duration);
        let raw_dts = dts.or(pts).map(|t| t as i64);
        let composition = match (pts, dts) {
            (Some(p), Some(d)) => p as i64 - d as i64,
            _ => 0,
        };
        let mut jumped = false;
        let shifted_dts = match (raw_dts, expected) {
            (None, Some(e)) => e as i64,
            (None, None) => 0,
            (Some(raw), None) => raw + self.offset,
            (Some(raw), Some(e)) => {
                let candidate = raw + self.offset;
                let last = self.last_dts.unwrap_or(0) as i64;
                if candidate < last || candidate > e as i64 + JUMP_THRESHOLD_NS as i64 {
                    self.offset += e as i64 - candidate;
                    jumped = true;
                    e as i64
                } else {
                    candidate
                }
            }
        };
        let dts_out = shifted_dts.max(0) as u64;
        if let Some(last) = self.last_dts {
            // Without buffer durations, the spacing of decode times is the
            // best estimate of how long a frame lasts.
            let step = dts_out.saturating_sub(last);
            if duration.is_none() && step > 0 && !jumped {
                self.last_duration = step;
            }
        }
        let duration_out = duration.filter(|d| *d > 0).unwrap_or(self.last_duration);
        if duration.is_some_and(|d| d > 0) {
            self.last_duration = duration_out;
        }
        self.last_dts = Some(dts_out);
        NormalisedTimes {
            pts: (dts_out as i64 + composition).max(0) as u64,
            dts: dts_out,
            duration: duration_out,
            jumped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn aac_frames_last_1024_samples() {
        assert_eq!(aac_frame_ns(48_000), 21_333_333);
        assert_eq!(aac_frame_ns(44_100), 23_219_954);
    }

    #[test]
    fn passes_continuous_timestamps_through() {
        let mut t = TrackTimeline::video();
        for i in 0..10 {
            let n = t.normalise(Some(i * 40 * MS + 80 * MS), Some(i * 40 * MS), None);
            assert_eq!(
                (n.dts, n.pts, n.jumped),
                (i * 40 * MS, i * 40 * MS + 80 * MS, false)
            );
        }
    }

    #[test]
    fn learns_missing_durations_from_decode_spacing() {
        let mut t = TrackTimeline::video();
        t.normalise(Some(0), Some(0), None);
        let second = t.normalise(Some(40 * MS), Some(40 * MS), None);
        assert_eq!(second.duration, 40 * MS);
    }

    #[test]
    fn folds_forward_and_backward_jumps() {
        let mut t = TrackTimeline::audio(48_000);
        let frame = aac_frame_ns(48_000);
        t.normalise(Some(0), Some(0), Some(frame));
        let forward = t.normalise(Some(100_000 * MS), Some(100_000 * MS), Some(frame));
        assert!(forward.jumped);
        assert_eq!(forward.pts, frame);
        let next = t.normalise(
            Some(100_000 * MS + frame),
            Some(100_000 * MS + frame),
            Some(frame),
        );
        assert_eq!((next.pts, next.jumped), (2 * frame, false));
        let backward = t.normalise(Some(5 * MS), Some(5 * MS), Some(frame));
        assert!(backward.jumped);
        assert_eq!(backward.pts, 3 * frame);
    }

    #[test]
    fn invents_timestamps_that_are_missing() {
        let mut t = TrackTimeline::audio(48_000);
        let frame = aac_frame_ns(48_000);
        t.normalise(Some(0), Some(0), None);
        let n = t.normalise(None, None, None);
        assert_eq!((n.pts, n.duration), (frame, frame));
    }
}
