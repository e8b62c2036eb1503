//! Per-track timestamp normalisation: fills in missing timestamps and
//! durations, folds timestamp jumps so one glitch cannot produce a segment
//! lasting minutes, and puts pictures back on their frame grid.
//!
//! The grid matters because FLV carries milliseconds and servers round
//! differently: MediaMTX makes its own DTS and truncates DTS and PTS - DTS
//! separately, so a picture's PTS can come out 1 ms early, and an audio
//! frame whose midpoint sits that close to a keyframe would change segment
//! depending on the server. A picture within [`GRID_TOLERANCE_NS`] of the
//! grid its frame duration draws from the first picture is put on it.

/// A forward step larger than this (beyond one frame) is a jump, not a gap.
/// flvdemux already folds backward jumps of 2 s or more; this handles the
/// forward ones and any backward step it lets through.
pub const JUMP_THRESHOLD_NS: u64 = 5_000_000_000;

/// How far from its frame grid a picture may be and still be put on it:
/// the millisecond rounding of a publisher plus the truncation of a server.
const GRID_TOLERANCE_NS: u64 = 2_000_000;

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
    /// Pictures only: the PTS the grid starts from, and its step (the
    /// frame duration the parser gives).
    grid: Option<Grid>,
    on_grid: bool,
}

#[derive(Debug, Clone, Copy)]
struct Grid {
    anchor: u64,
    step: u64,
}

impl Grid {
    /// `pts` on the grid, if it is close enough.
    fn place(&self, pts: u64) -> Option<u64> {
        let from = i128::from(pts) - i128::from(self.anchor);
        let step = i128::from(self.step);
        let k = (from + step / 2).div_euclid(step);
        let placed = i128::from(self.anchor) + k * step;
        let placed = u64::try_from(placed).ok()?;
        (placed.abs_diff(pts) <= GRID_TOLERANCE_NS).then_some(placed)
    }
}

impl TrackTimeline {
    pub fn video() -> Self {
        Self {
            on_grid: true,
            ..Self::with_fallback(DEFAULT_VIDEO_FRAME_NS)
        }
    }

    pub fn audio(sample_rate: u32) -> Self {
        Self::with_fallback(aac_frame_ns(sample_rate))
    }

    fn with_fallback(fallback_duration: u64) -> Self {
        Self {
            offset: 0,
            last_dts: None,
            last_duration: fallback_duration,
            grid: None,
            on_grid: false,
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
        let pts_out = (dts_out as i64 + composition).max(0) as u64;
        // Only a duration the parser gave (from the frame rate) draws a
        // grid; one guessed from decode spacing is not exact enough.
        let step = duration.filter(|d| *d > 0 && self.on_grid);
        NormalisedTimes {
            pts: step.map_or(pts_out, |step| self.place(pts_out, step, jumped)),
            dts: dts_out,
            duration: duration_out,
            jumped,
        }
    }

    /// Puts a picture on the grid, or starts a new grid from it (the first
    /// picture, a new frame rate, a jump, a picture too far off).
    fn place(&mut self, pts: u64, step: u64, jumped: bool) -> u64 {
        if let Some(grid) = self.grid.filter(|g| g.step == step && !jumped)
            && let Some(placed) = grid.place(pts)
        {
            return placed;
        }
        self.grid = Some(Grid { anchor: pts, step });
        pts
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

    #[test]
    fn pictures_a_server_moved_by_a_millisecond_go_back_on_their_grid() {
        let frame = 33_333_333;
        let mut t = TrackTimeline::video();
        // 30 fps in whole milliseconds, the third picture truncated by one.
        let times = [(3067, 3067), (3100, 3100), (3132, 3100), (3167, 3133)];
        let placed: Vec<u64> = times
            .iter()
            .map(|&(pts, dts)| t.normalise(Some(pts * MS), Some(dts * MS), Some(frame)).pts)
            .collect();
        let grid: Vec<u64> = (0..4).map(|k| 3067 * MS + k * frame).collect();
        assert_eq!(placed, grid);
    }

    #[test]
    fn a_picture_far_off_the_grid_starts_a_new_one() {
        let frame = 33_333_333;
        let mut t = TrackTimeline::video();
        t.normalise(Some(0), Some(0), Some(frame));
        let off = t.normalise(Some(50 * MS), Some(50 * MS), Some(frame));
        assert_eq!(off.pts, 50 * MS, "16.7 ms off the grid: kept as it came");
        let next = t.normalise(Some(83 * MS), Some(83 * MS), Some(frame));
        assert_eq!(
            next.pts,
            50 * MS + frame,
            "the new grid starts at the picture that left the old one"
        );
    }

    #[test]
    fn audio_and_guessed_durations_are_not_gridded() {
        let mut audio = TrackTimeline::audio(48_000);
        let n = audio.normalise(Some(21 * MS), Some(21 * MS), Some(aac_frame_ns(48_000)));
        assert_eq!(n.pts, 21 * MS);
        let mut video = TrackTimeline::video();
        video.normalise(Some(0), Some(0), None);
        assert_eq!(video.normalise(Some(34 * MS), Some(34 * MS), None).pts, 34 * MS);
    }

    #[test]
    fn audio_keeps_its_millisecond_timestamps_frame_after_frame() {
        let frame = aac_frame_ns(48_000);
        let mut audio = TrackTimeline::audio(48_000);
        // 21.333 ms frames in whole milliseconds: each is within the grid's
        // tolerance, yet audio is never put on one.
        let placed: Vec<u64> = [0, 21, 43, 64]
            .map(|ms| audio.normalise(Some(ms * MS), Some(ms * MS), Some(frame)).pts)
            .to_vec();
        assert_eq!(placed, [0, 21 * MS, 43 * MS, 64 * MS]);
    }

    #[test]
    fn a_repeated_decode_time_is_kept_and_teaches_no_duration() {
        let mut t = TrackTimeline::video();
        t.normalise(Some(0), Some(0), None);
        t.normalise(Some(40 * MS), Some(40 * MS), None);
        let again = t.normalise(Some(40 * MS), Some(40 * MS), None);
        assert_eq!(
            (again.dts, again.duration, again.jumped),
            (40 * MS, 40 * MS, false),
            "a zero step is neither a backward jump nor a frame length"
        );
        let next = t.normalise(Some(80 * MS), Some(80 * MS), None);
        assert_eq!((next.dts, next.duration, next.jumped), (80 * MS, 40 * MS, false));
    }

    #[test]
    fn a_forward_step_up_to_the_threshold_is_a_gap_not_a_jump() {
        let frame = aac_frame_ns(48_000);
        let mut t = TrackTimeline::audio(48_000);
        t.normalise(Some(0), Some(0), Some(frame));
        let gap = frame + JUMP_THRESHOLD_NS;
        let after_gap = t.normalise(Some(gap), Some(gap), Some(frame));
        assert_eq!((after_gap.dts, after_gap.jumped), (gap, false));
        let leap = 2 * gap + 1;
        let after_leap = t.normalise(Some(leap), Some(leap), Some(frame));
        assert_eq!(
            (after_leap.dts, after_leap.jumped),
            (gap + frame, true),
            "one nanosecond past the threshold is folded onto the next frame"
        );
    }

    #[test]
    fn a_duration_the_parser_gives_is_used_and_remembered() {
        let mut t = TrackTimeline::video();
        // 25 fps: not the 30-fps guess the timeline starts with.
        let first = t.normalise(Some(0), Some(0), Some(40 * MS));
        assert_eq!(first.duration, 40 * MS);
        let invented = t.normalise(None, None, None);
        assert_eq!(
            (invented.dts, invented.pts, invented.duration),
            (40 * MS, 40 * MS, 40 * MS)
        );
    }

    #[test]
    fn a_zero_duration_counts_as_unknown_and_teaches_nothing() {
        let mut t = TrackTimeline::video();
        t.normalise(Some(0), Some(0), Some(40 * MS));
        t.normalise(Some(40 * MS), Some(40 * MS), Some(40 * MS));
        // A picture lost (an 80-ms step), then pictures whose parser said 0:
        // the last duration the parser gave stands, the step does not.
        for ms in [120, 161] {
            let n = t.normalise(Some(ms * MS), Some(ms * MS), Some(0));
            assert_eq!(
                (n.pts, n.duration),
                (ms * MS, 40 * MS),
                "a zero duration neither draws a grid nor is one"
            );
        }
        let back = t.normalise(Some(199 * MS), Some(199 * MS), Some(40 * MS));
        assert_eq!(back.pts, 200 * MS, "the grid drawn before still holds");
    }

    #[test]
    fn a_jump_starts_a_new_grid_at_the_folded_picture() {
        let frame = 33_333_333;
        let mut t = TrackTimeline::video();
        // The third picture truncated to 66 ms: its decode time stays 66 ms.
        for ms in [0, 33, 66] {
            t.normalise(Some(ms * MS), Some(ms * MS), Some(frame));
        }
        let jumped = t.normalise(Some(100_000 * MS), Some(100_000 * MS), Some(frame));
        assert!(jumped.jumped);
        assert_eq!(
            jumped.pts,
            66 * MS + frame,
            "folded one frame after the last decode time, not pulled onto the old grid (100 ms)"
        );
        let next = t.normalise(Some(100_033 * MS), Some(100_033 * MS), Some(frame));
        assert_eq!((next.pts, next.jumped), (66 * MS + 2 * frame, false));
    }
}
