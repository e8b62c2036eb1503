//! Cutting logic, free of I/O and GStreamer.
//!
//! Video is cut at the first keyframe whose PTS is at or after the previous
//! cut plus the target duration, so every video segment starts with a
//! keyframe and lasts at least the target (a 2-s GOP with 6-s segments cuts
//! at 6, 12, ...; a 4-s GOP at 8, 16, ...). Audio is cut at the same instants:
//! an audio frame belongs to the segment that holds its midpoint, and audio
//! whose midpoint precedes the first picture belongs to none (so what a
//! reader got before its first keyframe never changes the first segment).
//! Audio that might lie past a cut not decided yet waits until video
//! decides it.

use std::collections::VecDeque;
use std::time::Instant;

use crate::media::MediaKind;

/// One frame on the normalised timeline (nanoseconds).
#[derive(Debug, Clone)]
pub struct Frame<P> {
    pub kind: MediaKind,
    pub pts: u64,
    pub dts: u64,
    pub duration: u64,
    pub keyframe: bool,
    pub arrival: Option<Instant>,
    pub payload: P,
}

impl<P> Frame<P> {
    fn midpoint(&self) -> u64 {
        self.pts + self.duration / 2
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentEnd {
    /// Closed at a cut; a following segment exists.
    Cut,
    /// Closed because the stream ended, dropped or the ingest stopped.
    EndOfStream,
}

/// A segment that is complete and can be made visible.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedSegment {
    pub kind: MediaKind,
    pub index: u64,
    pub start: u64,
    pub duration: u64,
    pub frames: u64,
    pub end: SegmentEnd,
    /// Shorter than the target by more than a frame (end of stream mid-segment).
    pub partial: bool,
    pub starts_with_keyframe: bool,
    /// Arrival of the buffer whose receipt closed this segment.
    pub closed_by: Option<Instant>,
}

#[derive(Debug)]
pub enum SegmentEvent<P> {
    /// Append this frame to segment `index` of its kind.
    Append {
        index: u64,
        frame: Frame<P>,
    },
    Closed(ClosedSegment),
    /// Frames that cannot be placed in any segment, said out loud.
    Discarded {
        kind: MediaKind,
        frames: u64,
        reason: &'static str,
    },
}

#[derive(Debug)]
struct OpenSegment {
    index: u64,
    start: u64,
    end: u64,
    frames: u64,
    starts_with_keyframe: bool,
    last_frame: u64,
}

impl OpenSegment {
    fn new<P>(index: u64, first: &Frame<P>) -> Self {
        Self {
            index,
            start: first.pts,
            end: first.pts + first.duration,
            frames: 0,
            starts_with_keyframe: first.keyframe,
            last_frame: first.duration,
        }
    }

    fn add<P>(&mut self, frame: &Frame<P>) {
        self.frames += 1;
        self.end = self.end.max(frame.pts + frame.duration);
        self.last_frame = frame.duration;
    }

    fn close(
        self,
        kind: MediaKind,
        end_at: u64,
        end: SegmentEnd,
        target: u64,
        closed_by: Option<Instant>,
    ) -> ClosedSegment {
        let duration = end_at.saturating_sub(self.start);
        ClosedSegment {
            kind,
            index: self.index,
            start: self.start,
            duration,
            frames: self.frames,
            end,
            partial: duration + self.last_frame < target,
            starts_with_keyframe: self.starts_with_keyframe,
            closed_by,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Cut {
    closes: u64,
    at: u64,
}

pub struct Segmenter<P> {
    target: u64,
    next_index: u64,
    video: Option<OpenSegment>,
    /// Where the current video segment may be cut at the earliest.
    video_boundary: u64,
    first_video: Option<(u64, u64)>,
    cuts: VecDeque<Cut>,
    audio: Option<OpenSegment>,
    pending_audio: VecDeque<Frame<P>>,
}

impl<P> Segmenter<P> {
    /// `first_index` lets a reconnected stream continue the sequence.
    pub fn new(target_ns: u64, first_index: u64) -> Self {
        Self {
            target: target_ns,
            next_index: first_index,
            video: None,
            video_boundary: 0,
            first_video: None,
            cuts: VecDeque::new(),
            audio: None,
            pending_audio: VecDeque::new(),
        }
    }

    /// The index the next new segment would get.
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    pub fn push(&mut self, frame: Frame<P>) -> Vec<SegmentEvent<P>> {
        let mut events = Vec::new();
        match frame.kind {
            MediaKind::Video => self.push_video(frame, &mut events),
            MediaKind::Audio => self.pending_audio.push_back(frame),
        }
        self.drain_audio(false, &mut events);
        events
    }

    fn push_video(&mut self, frame: Frame<P>, events: &mut Vec<SegmentEvent<P>>) {
        let Some(current) = self.video.as_mut() else {
            if !frame.keyframe {
                events.push(SegmentEvent::Discarded {
                    kind: MediaKind::Video,
                    frames: 1,
                    reason: "video frame before the first keyframe cannot be decoded",
                });
                return;
            }
            self.open_video(&frame);
            return self.append_video(frame, events);
        };
        // Half a frame of slack absorbs timestamp rounding (30 fps in ns or ms
        // never lands exactly on a whole second).
        if frame.keyframe && frame.midpoint() >= self.video_boundary {
            let closing = current.index;
            let segment = self.video.take().expect("checked above");
            events.push(SegmentEvent::Closed(segment.close(
                MediaKind::Video,
                frame.pts,
                SegmentEnd::Cut,
                self.target,
                frame.arrival,
            )));
            self.cuts.push_back(Cut {
                closes: closing,
                at: frame.pts,
            });
            self.open_video(&frame);
        }
        self.append_video(frame, events);
    }

    fn open_video(&mut self, first: &Frame<P>) {
        let index = self.next_index;
        self.next_index += 1;
        self.first_video.get_or_insert((index, first.pts));
        self.video_boundary = first.pts + self.target;
        self.video = Some(OpenSegment::new(index, first));
    }

    fn append_video(&mut self, frame: Frame<P>, events: &mut Vec<SegmentEvent<P>>) {
        let segment = self.video.as_mut().expect("a video segment is open");
        segment.add(&frame);
        events.push(SegmentEvent::Append {
            index: segment.index,
            frame,
        });
    }

    /// Places waiting audio frames; with `final_pass` nothing waits any more.
    fn drain_audio(&mut self, final_pass: bool, events: &mut Vec<SegmentEvent<P>>) {
        let Some((first_index, video_start)) = self.first_video else {
            return;
        };
        let mut trimmed = 0;
        while let Some(frame) = self.pending_audio.front() {
            if self.audio.is_none() {
                // Audio before the first picture (by its midpoint, the rule
                // of every cut) has no video segment to pair with.
                if frame.midpoint() < video_start {
                    self.pending_audio.pop_front();
                    trimmed += 1;
                    continue;
                }
                self.audio = Some(OpenSegment::new(first_index, frame));
            }
            let current = self.audio.as_ref().expect("opened above").index;
            let cut = self.cuts.iter().find(|c| c.closes == current).copied();
            let midpoint = frame.midpoint();
            match cut {
                Some(cut) if midpoint >= cut.at => {
                    let frame = self.pending_audio.pop_front().expect("front exists");
                    let segment = self.audio.take().expect("open");
                    let end = segment.end;
                    events.push(SegmentEvent::Closed(segment.close(
                        MediaKind::Audio,
                        end,
                        SegmentEnd::Cut,
                        self.target,
                        frame.arrival,
                    )));
                    self.cuts.retain(|c| c.closes != current);
                    self.audio = Some(OpenSegment::new(current + 1, &frame));
                    self.append_audio(frame, events);
                }
                Some(_) => self.append_next_audio(events),
                // No cut known: safe only if video cannot cut before it.
                None if final_pass || current != self.video_index() || midpoint < self.video_boundary => {
                    self.append_next_audio(events)
                }
                None => break,
            }
        }
        if trimmed > 0 {
            events.push(SegmentEvent::Discarded {
                kind: MediaKind::Audio,
                frames: trimmed,
                reason: "audio before the first video keyframe has no segment to pair with",
            });
        }
    }

    fn video_index(&self) -> u64 {
        self.video.as_ref().map_or(u64::MAX, |v| v.index)
    }

    fn append_next_audio(&mut self, events: &mut Vec<SegmentEvent<P>>) {
        let frame = self.pending_audio.pop_front().expect("front exists");
        self.append_audio(frame, events);
    }

    fn append_audio(&mut self, frame: Frame<P>, events: &mut Vec<SegmentEvent<P>>) {
        let segment = self.audio.as_mut().expect("an audio segment is open");
        segment.add(&frame);
        events.push(SegmentEvent::Append {
            index: segment.index,
            frame,
        });
    }

    /// Ends the stream: places every waiting frame and closes what is open.
    /// `now` stands in for the arrival that closed the last segments.
    pub fn finish(&mut self, now: Option<Instant>) -> Vec<SegmentEvent<P>> {
        let mut events = Vec::new();
        self.drain_audio(true, &mut events);
        let open = [
            (MediaKind::Video, self.video.take()),
            (MediaKind::Audio, self.audio.take()),
        ];
        for (kind, segment) in open {
            if let Some(segment) = segment {
                let end = segment.end;
                let closed = segment.close(kind, end, SegmentEnd::EndOfStream, self.target, now);
                events.push(SegmentEvent::Closed(closed));
            }
        }
        if !self.pending_audio.is_empty() {
            events.push(SegmentEvent::Discarded {
                kind: MediaKind::Audio,
                frames: self.pending_audio.len() as u64,
                reason: "audio arrived but the stream had no video to pair it with",
            });
            self.pending_audio.clear();
        }
        self.cuts.clear();
        self.first_video = None;
        events
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    const MS: u64 = 1_000_000;
    const SEC: u64 = 1_000 * MS;

    /// A closed segment reduced to (kind, index, start ms, duration ms, frames).
    type Summary = (MediaKind, u64, u64, u64, u64);

    struct Stream {
        fps: u64,
        gop_frames: u64,
        /// Pictures shown before their decode position (B-frame delay).
        reorder: u64,
        audio_rate: u64,
        audio_durations: bool,
    }

    impl Stream {
        fn new(fps: u64, gop_seconds: u64) -> Self {
            Self {
                fps,
                gop_frames: fps * gop_seconds,
                reorder: 0,
                audio_rate: 48_000,
                audio_durations: true,
            }
        }

        /// Frames interleaved in arrival order, the way flvdemux delivers
        /// them, with FLV's millisecond timestamps.
        fn frames(&self, seconds: u64) -> Vec<Frame<()>> {
            let frame_ns = SEC / self.fps;
            let audio_ns = 1024 * SEC / self.audio_rate;
            let video_ms = |i: u64| (i * 1000 + self.fps / 2) / self.fps * MS;
            let audio_ms = |i: u64| (i * 1024 * 1000 + self.audio_rate / 2) / self.audio_rate * MS;
            let video: Vec<Frame<()>> = (0..seconds * self.fps)
                .map(|i| Frame {
                    kind: MediaKind::Video,
                    dts: video_ms(i),
                    pts: video_ms(i + self.reorder),
                    duration: frame_ns,
                    keyframe: i % self.gop_frames == 0,
                    arrival: None,
                    payload: (),
                })
                .collect();
            let audio: Vec<Frame<()>> = (0..seconds * SEC / audio_ns)
                .map(|i| Frame {
                    kind: MediaKind::Audio,
                    dts: audio_ms(i),
                    pts: audio_ms(i),
                    duration: if self.audio_durations { audio_ns } else { 0 },
                    keyframe: true,
                    arrival: None,
                    payload: (),
                })
                .collect();
            interleave(video, audio)
        }
    }

    /// Frames in arrival order, the way flvdemux delivers them: by decode
    /// time, video first on a tie.
    fn interleave(video: Vec<Frame<()>>, audio: Vec<Frame<()>>) -> Vec<Frame<()>> {
        let (mut video, mut audio): (VecDeque<_>, VecDeque<_>) = (video.into(), audio.into());
        let mut out = Vec::new();
        while !video.is_empty() || !audio.is_empty() {
            let take_video = match (video.front(), audio.front()) {
                (Some(v), Some(a)) => v.dts <= a.dts,
                (v, _) => v.is_some(),
            };
            out.push(
                if take_video {
                    video.pop_front()
                } else {
                    audio.pop_front()
                }
                .unwrap(),
            );
        }
        out
    }

    /// A 25-fps picture (40 ms, exact nanoseconds) at `ms`.
    fn picture(ms: u64, keyframe: bool) -> Frame<()> {
        Frame {
            kind: MediaKind::Video,
            pts: ms * MS,
            dts: ms * MS,
            duration: 40 * MS,
            keyframe,
            arrival: None,
            payload: (),
        }
    }

    /// Pictures from 0 to `until_ms`, a keyframe every `gop_ms`.
    fn pictures(until_ms: u64, gop_ms: u64) -> Vec<Frame<()>> {
        (0..until_ms)
            .step_by(40)
            .map(|ms| picture(ms, ms % gop_ms == 0))
            .collect()
    }

    /// 20-ms audio frames from `from_ms` to `until_ms`. Started at 10 ms,
    /// one frame's midpoint falls on every multiple of 20 ms, so on every cut.
    fn sounds(from_ms: u64, until_ms: u64) -> Vec<Frame<()>> {
        (from_ms..until_ms)
            .step_by(20)
            .map(|ms| Frame {
                kind: MediaKind::Audio,
                pts: ms * MS,
                dts: ms * MS,
                duration: 20 * MS,
                keyframe: true,
                arrival: None,
                payload: (),
            })
            .collect()
    }

    /// Every event of pushing `frames` and finishing.
    fn events(frames: Vec<Frame<()>>, target: u64) -> Vec<SegmentEvent<()>> {
        let mut segmenter = Segmenter::new(target, 0);
        let mut events: Vec<_> = frames.into_iter().flat_map(|f| segmenter.push(f)).collect();
        events.extend(segmenter.finish(None));
        events
    }

    /// Closed segments of `kind` as (index, start ms, frames).
    fn segments(events: &[SegmentEvent<()>], kind: MediaKind) -> Vec<(u64, u64, u64)> {
        events
            .iter()
            .filter_map(|e| match e {
                SegmentEvent::Closed(c) if c.kind == kind => Some((c.index, c.start / MS, c.frames)),
                _ => None,
            })
            .collect()
    }

    /// Discarded frames as (kind, count, reason).
    fn discards(events: &[SegmentEvent<()>]) -> Vec<(MediaKind, u64, &'static str)> {
        events
            .iter()
            .filter_map(|e| match e {
                SegmentEvent::Discarded { kind, frames, reason } => Some((*kind, *frames, *reason)),
                _ => None,
            })
            .collect()
    }

    fn run(frames: Vec<Frame<()>>, target: u64) -> Vec<Summary> {
        let mut segmenter = Segmenter::new(target, 0);
        let mut closed = Vec::new();
        let mut collect = |events: Vec<SegmentEvent<()>>| {
            for event in events {
                if let SegmentEvent::Closed(c) = event {
                    closed.push((c.kind, c.index, c.start / MS, c.duration / MS, c.frames));
                }
            }
        };
        for frame in frames {
            collect(segmenter.push(frame));
        }
        collect(segmenter.finish(None));
        closed
    }

    fn of_kind(summary: &[Summary], kind: MediaKind) -> Vec<Summary> {
        summary.iter().filter(|s| s.0 == kind).copied().collect()
    }

    #[rstest]
    #[case::gop_2s(2, &[0, 6000, 12000, 18000, 24000])]
    #[case::gop_4s(4, &[0, 8000, 16000, 24000])]
    #[case::gop_1s(1, &[0, 6000, 12000, 18000, 24000])]
    fn video_cuts_on_the_first_keyframe_after_the_target(#[case] gop: u64, #[case] starts: &[u64]) {
        let closed = run(Stream::new(30, gop).frames(30), 6 * SEC);
        let video = of_kind(&closed, MediaKind::Video);
        assert_eq!(video.iter().map(|s| s.2).collect::<Vec<_>>(), starts);
        let audio = of_kind(&closed, MediaKind::Audio);
        assert_eq!(audio.len(), video.len(), "A/V segment counts must match");
        let total_video: u64 = video.iter().map(|s| s.4).sum();
        assert_eq!(total_video, 900, "no picture lost or duplicated");
    }

    #[test]
    fn thirty_seconds_make_five_six_second_pairs() {
        let closed = run(Stream::new(30, 2).frames(30), 6 * SEC);
        let frame_ms = 1024 * 1000 / 48_000;
        for kind in MediaKind::ALL {
            let segments = of_kind(&closed, kind);
            assert_eq!(segments.len(), 5, "{kind}");
            for s in &segments {
                assert!(s.3.abs_diff(6000) <= frame_ms + 1, "{kind} segment {s:?}");
            }
        }
        let video = of_kind(&closed, MediaKind::Video);
        let audio = of_kind(&closed, MediaKind::Audio);
        for (v, a) in video.iter().zip(&audio) {
            assert_eq!(v.1, a.1);
            assert!(v.2.abs_diff(a.2) <= frame_ms + 1, "starts differ: {v:?} {a:?}");
        }
    }

    #[test]
    fn b_frames_cut_on_presentation_time() {
        let stream = Stream {
            reorder: 2,
            ..Stream::new(30, 2)
        };
        let closed = run(stream.frames(12), 6 * SEC);
        let video = of_kind(&closed, MediaKind::Video);
        assert_eq!(
            video.iter().map(|s| (s.2, s.4)).collect::<Vec<_>>(),
            [(67, 180), (6067, 180)]
        );
        assert_eq!(of_kind(&closed, MediaKind::Audio).len(), 2);
    }

    #[test]
    fn audio_without_durations_still_forms_segments() {
        let stream = Stream {
            audio_durations: false,
            ..Stream::new(30, 2)
        };
        // Durations missing from buffers are the timeline's job; the
        // segmenter must still close audio segments on cut instants.
        let closed = run(stream.frames(12), 6 * SEC);
        assert_eq!(of_kind(&closed, MediaKind::Audio).len(), 2);
    }

    #[test]
    fn stream_ending_mid_segment_flushes_a_partial_pair() {
        let mut segmenter = Segmenter::new(6 * SEC, 0);
        let mut closed = Vec::new();
        for frame in Stream::new(30, 2).frames(8) {
            closed.extend(segmenter.push(frame));
        }
        closed.extend(segmenter.finish(None));
        let closed: Vec<ClosedSegment> = closed
            .into_iter()
            .filter_map(|e| match e {
                SegmentEvent::Closed(c) => Some(c),
                _ => None,
            })
            .collect();
        let last: Vec<_> = closed.iter().filter(|c| c.index == 1).collect();
        assert_eq!(last.len(), 2);
        assert!(last.iter().all(|c| c.partial && c.end == SegmentEnd::EndOfStream));
        assert!(closed.iter().filter(|c| c.index == 0).all(|c| !c.partial));
    }

    #[test]
    fn leading_non_keyframes_are_discarded_loudly() {
        let mut frames = Stream::new(30, 2).frames(8);
        frames.retain(|f| !(f.kind == MediaKind::Video && f.dts == 0));
        let mut segmenter = Segmenter::new(6 * SEC, 0);
        let discarded: u64 = frames
            .into_iter()
            .flat_map(|f| segmenter.push(f))
            .filter_map(|e| match e {
                SegmentEvent::Discarded {
                    kind: MediaKind::Video,
                    frames,
                    ..
                } => Some(frames),
                _ => None,
            })
            .sum();
        assert_eq!(discarded, 59, "pictures before the 2-s keyframe");
    }

    #[test]
    fn timestamp_jump_after_normalisation_keeps_segments_sane() {
        use crate::timeline::TrackTimeline;
        // The publisher's clock leaps 100 s forward at t = 7 s.
        let mut video_line = TrackTimeline::video();
        let mut audio_line = TrackTimeline::audio(48_000);
        let frames: Vec<Frame<()>> = Stream::new(30, 2)
            .frames(14)
            .into_iter()
            .map(|mut f| {
                let leap = if f.dts >= 7 * SEC { 100 * SEC } else { 0 };
                let line = match f.kind {
                    MediaKind::Video => &mut video_line,
                    MediaKind::Audio => &mut audio_line,
                };
                let n = line.normalise(Some(f.pts + leap), Some(f.dts + leap), Some(f.duration));
                (f.pts, f.dts) = (n.pts, n.dts);
                f
            })
            .collect();
        let closed = run(frames, 6 * SEC);
        for s in &closed {
            assert!(s.3 <= 8000, "segment too long after a jump: {s:?}");
        }
        assert_eq!(
            of_kind(&closed, MediaKind::Video).len(),
            of_kind(&closed, MediaKind::Audio).len()
        );
    }

    #[test]
    fn numbering_continues_from_the_given_index() {
        let mut segmenter = Segmenter::new(6 * SEC, 7);
        for frame in Stream::new(30, 2).frames(7) {
            segmenter.push(frame);
        }
        segmenter.finish(None);
        assert_eq!(segmenter.next_index(), 9);
    }

    /// Audio segments of a 14-s stream cut at 6 and 12 s, whatever the order
    /// audio and video arrive in: the frame whose midpoint is the cut opens
    /// the next segment, the one before it closes the last.
    const AUDIO_AT_6_AND_12_S: [(u64, u64, u64); 3] = [(0, 10, 299), (1, 5990, 300), (2, 11990, 101)];

    #[test]
    fn audio_is_cut_where_its_midpoint_falls() {
        let events = events(interleave(pictures(14_000, 2000), sounds(10, 14_000)), 6 * SEC);
        assert_eq!(
            segments(&events, MediaKind::Video),
            [(0, 0, 150), (1, 6000, 150), (2, 12_000, 50)]
        );
        // The frame at 5990 ms arrives before the keyframe at 6 s decides
        // the cut, and must wait for it.
        assert_eq!(segments(&events, MediaKind::Audio), AUDIO_AT_6_AND_12_S);
        assert_eq!(discards(&events), [], "nothing to discard in a clean stream");
    }

    #[test]
    fn audio_arriving_a_segment_late_is_cut_at_the_same_instants() {
        let mut frames = pictures(14_000, 2000);
        frames.extend(sounds(10, 14_000));
        let events = events(frames, 6 * SEC);
        assert_eq!(segments(&events, MediaKind::Audio), AUDIO_AT_6_AND_12_S);
    }

    #[test]
    fn audio_is_placed_as_soon_as_video_cannot_cut_before_it() {
        let mut segmenter = Segmenter::new(6 * SEC, 0);
        segmenter.push(picture(0, true));
        for frame in sounds(10, 5980) {
            let events = segmenter.push(frame);
            assert!(
                matches!(events[..], [SegmentEvent::Append { index: 0, .. }]),
                "held back: {events:?}"
            );
        }
        // Its midpoint is the earliest cut: it waits for the next picture.
        assert!(segmenter.push(sounds(5990, 6000).remove(0)).is_empty());
        let events = segmenter.push(picture(6000, true));
        let summary: Vec<(MediaKind, &str, u64)> = events
            .iter()
            .map(|e| match e {
                SegmentEvent::Append { index, frame } => (frame.kind, "append", *index),
                SegmentEvent::Closed(c) => (c.kind, "closed", c.index),
                SegmentEvent::Discarded { kind, .. } => (*kind, "discarded", 0),
            })
            .collect();
        assert_eq!(
            summary,
            [
                (MediaKind::Video, "closed", 0),
                (MediaKind::Video, "append", 1),
                (MediaKind::Audio, "closed", 0),
                (MediaKind::Audio, "append", 1),
            ]
        );
    }

    #[rstest]
    #[case::nineteen_ms_early(19, &[0, 6000])]
    #[case::twenty_one_ms_early(21, &[0, 8000])]
    fn a_keyframe_less_than_half_a_frame_early_still_cuts(#[case] early_ms: u64, #[case] starts: &[u64]) {
        let frames: Vec<Frame<()>> = pictures(10_000, 2000)
            .into_iter()
            .map(|mut f| {
                if f.keyframe && f.pts > 0 {
                    f.pts -= early_ms * MS;
                    f.dts = f.pts;
                }
                f
            })
            .collect();
        let events = events(frames, 6 * SEC);
        let video = segments(&events, MediaKind::Video);
        let cut_starts: Vec<u64> = video
            .iter()
            .map(|s| s.1 + early_ms * u64::from(s.1 > 0))
            .collect();
        assert_eq!(cut_starts, starts, "{video:?}");
    }

    #[rstest]
    #[case::complete(300, false)]
    #[case::one_frame_short(299, false)]
    #[case::two_frames_short(298, true)]
    fn a_last_segment_is_partial_when_short_by_more_than_a_frame(
        #[case] frames: usize,
        #[case] partial: bool,
    ) {
        let mut stream = pictures(12_000, 2000);
        stream.truncate(frames);
        let last = events(stream, 6 * SEC)
            .into_iter()
            .filter_map(|e| match e {
                SegmentEvent::Closed(c) => Some(c),
                _ => None,
            })
            .next_back()
            .unwrap();
        assert_eq!((last.index, last.end), (1, SegmentEnd::EndOfStream));
        assert_eq!(last.partial, partial, "{last:?}");
    }

    #[test]
    fn audio_before_the_first_picture_is_discarded_and_counted() {
        // Pictures from 1 s on, keyframes at 1, 3, 5 and 7 s.
        let video: Vec<Frame<()>> = pictures(7000, 2000)
            .into_iter()
            .map(|mut f| {
                (f.pts, f.dts) = (f.pts + SEC, f.dts + SEC);
                f
            })
            .collect();
        let events = events(interleave(video, sounds(10, 8000)), 6 * SEC);
        assert_eq!(
            discards(&events),
            [(
                MediaKind::Audio,
                49,
                "audio before the first video keyframe has no segment to pair with"
            )],
            "frames whose midpoint precedes the first picture (10 .. 970 ms)"
        );
        let audio = segments(&events, MediaKind::Audio);
        assert_eq!(audio[0], (0, 990, 300), "the frame whose midpoint is 1 s is kept");
    }

    #[test]
    fn the_last_segment_keeps_its_audio_past_the_target_when_no_keyframe_came() {
        // A 4-s GOP, 6-s segments, a 7-s stream: no keyframe after 6 s.
        let events = events(interleave(pictures(7000, 4000), sounds(10, 7000)), 6 * SEC);
        assert_eq!(segments(&events, MediaKind::Video), [(0, 0, 175)]);
        assert_eq!(segments(&events, MediaKind::Audio), [(0, 10, 350)]);
        assert_eq!(discards(&events), []);
    }

    #[test]
    fn audio_without_video_is_discarded_at_the_end() {
        let events = events(sounds(10, 1000), 6 * SEC);
        assert!(segments(&events, MediaKind::Audio).is_empty());
        assert_eq!(
            discards(&events),
            [(
                MediaKind::Audio,
                50,
                "audio arrived but the stream had no video to pair it with"
            )]
        );
    }

    /// A reader's packets from a real MediaMTX 1.20.1 with B-frames: the
    /// server regenerated the DTS (1-ms steps after each IDR), so only the
    /// PTS can be trusted. Cuts must follow the pictures' presentation.
    const MEDIAMTX_B_FRAMES: &str =
        include_str!("../../../conformance/mediamtx-1.20.1/late-reader-bframes-packets.txt");

    fn recorded_frames(listing: &str) -> Vec<Frame<()>> {
        let field = |line: &str, name: &str| -> String {
            line.split('|')
                .find_map(|f| f.strip_prefix(name)?.strip_prefix('=').map(str::to_owned))
                .expect("a recorded field")
        };
        let ns = |v: String| (v.parse::<f64>().expect("seconds") * 1e9).round() as u64;
        listing
            .lines()
            .map(|line| {
                let video = field(line, "codec_type") == "video";
                Frame {
                    kind: if video { MediaKind::Video } else { MediaKind::Audio },
                    pts: ns(field(line, "pts_time")),
                    dts: ns(field(line, "dts_time")),
                    duration: if video { SEC / 30 } else { 1024 * SEC / 48_000 },
                    keyframe: field(line, "flags").starts_with('K'),
                    arrival: None,
                    payload: (),
                }
            })
            .collect()
    }

    #[test]
    fn mediamtx_regenerated_dts_does_not_move_the_cuts() {
        let frames = recorded_frames(MEDIAMTX_B_FRAMES);
        let pictures: Vec<&Frame<()>> = frames.iter().filter(|f| f.kind == MediaKind::Video).collect();
        // The recording's two IDRs, in arrival order.
        let idrs: Vec<usize> = (0..pictures.len()).filter(|&i| pictures[i].keyframe).collect();
        assert_eq!(idrs.len(), 2, "the recording holds two GOPs' starts");
        assert!(
            pictures[1].dts - pictures[0].dts == MS,
            "the recording has MediaMTX's 1-ms DTS step"
        );
        let closed = run(frames.clone(), 2 * SEC);
        let video = of_kind(&closed, MediaKind::Video);
        assert_eq!(
            video[0].2, 6067,
            "the first segment starts at the first IDR's PTS"
        );
        assert_eq!(
            video[1].2, 8066,
            "the cut is at the second IDR's PTS, not its DTS (8000)"
        );
        assert_eq!(
            video[0].4,
            (idrs[1] - idrs[0]) as u64,
            "every picture of the first GOP"
        );
        let total: u64 = video.iter().map(|s| s.4).sum();
        assert_eq!(total, pictures.len() as u64, "no picture lost or repeated");
        let audio = of_kind(&closed, MediaKind::Audio);
        assert!(
            audio[0].2.abs_diff(6067) <= 22,
            "audio starts with the pictures: {audio:?}"
        );
        assert!(
            audio[1].2.abs_diff(8066) <= 22,
            "audio is cut with the pictures: {audio:?}"
        );
    }
}
