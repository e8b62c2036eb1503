//! When each frame leaves for the output, and with which audio: pure logic,
//! free of GStreamer and of the clock (the caller says what time it is).
//!
//! Every frame leaves exactly `delay` after it arrived, so the output runs a
//! constant delay behind the input whatever the STS does. Unless configured,
//! the delay is learned before the first frame leaves: the first segment's
//! length (known at its cut, which comes before that segment's end plus
//! the budget) plus the STS's budget; nothing leaves until it is known. Audio is decided
//! a span (an audio segment) at a time, when the span's first frame is due:
//! its dub if it has come, else the fallback, for the whole span; a dub
//! that comes later is too late for it. A dub shorter than its span is
//! padded with silence, a longer one cut, so the span keeps the input's
//! frames' times: audio and video stay aligned to the frame.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::settings::{DelayRule, Fallback};
use crate::media::MediaKind;

/// A frame on its way to the output, as the segmenter placed it.
#[derive(Debug, Clone)]
pub(crate) struct OutFrame {
    pub kind: MediaKind,
    pub pts: u64,
    pub dts: u64,
    pub duration: u64,
    pub keyframe: bool,
    /// Annex-B H.264 with SPS/PPS before each IDR, or one ADTS AAC frame.
    pub data: Bytes,
    pub arrival: Instant,
    /// The segment (span) it belongs to.
    pub segment: u64,
    /// The input connection it came on (one output publish each).
    pub connection: u32,
}

/// What a span's audio is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanAudio {
    Dub,
    Original,
    Silence,
}

/// A decision about a span's audio, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SpanDecision {
    pub segment: u64,
    pub audio: SpanAudio,
    /// Why a fallback was used.
    pub reason: Option<String>,
    /// How long after its arrival the span's first frame left. The span
    /// starts with its picture; its first audio frames may come in later
    /// (the segmenter places audio once the next picture says where the
    /// cut is), so they can leave up to a frame interval past their own
    /// arrival plus the delay: the span's delay is its first frame's.
    pub delay: Duration,
}

/// What is due now.
#[derive(Debug)]
pub(crate) enum Release {
    Frame(OutFrame),
    Decided(SpanDecision),
}

/// A span's dub as it stands.
#[derive(Debug)]
enum Dub {
    Ready(Vec<Bytes>),
    Missing(String),
}

/// The audio of a span being released: its source, and how many of its
/// frames have left.
#[derive(Debug)]
struct Decided {
    audio: SpanAudio,
    sent: usize,
}

pub(crate) struct Schedule {
    rule: DelayRule,
    /// In effect once known (see [`DelayRule`]); fixed for the stream's life.
    delay: Option<Duration>,
    /// The first picture's segment and decode time, and the latest
    /// picture's decode time, while the delay is being learned.
    first_picture: Option<(u64, u64)>,
    last_picture_dts: u64,
    fallback: Fallback,
    queue: VecDeque<OutFrame>,
    dubs: BTreeMap<u64, Dub>,
    decided: BTreeMap<u64, Decided>,
    /// One silent AAC frame of the stream's format, once known.
    silence: Option<Bytes>,
    /// The span being released, and how long after its arrival its first
    /// frame left.
    span_start: Option<(u64, Duration)>,
}

impl Schedule {
    pub fn new(rule: DelayRule, fallback: Fallback) -> Self {
        Self {
            rule,
            delay: match rule {
                DelayRule::Fixed(delay) => Some(delay),
                DelayRule::FirstSegmentPlus(_) => None,
            },
            first_picture: None,
            last_picture_dts: 0,
            fallback,
            queue: VecDeque::new(),
            dubs: BTreeMap::new(),
            decided: BTreeMap::new(),
            silence: None,
            span_start: None,
        }
    }

    pub fn push(&mut self, frame: OutFrame) {
        if self.delay.is_none() && frame.kind == MediaKind::Video {
            self.learn_delay(&frame);
        }
        self.queue.push_back(frame);
    }

    /// The first segment's length is known when the next one's first
    /// picture comes.
    fn learn_delay(&mut self, frame: &OutFrame) {
        let DelayRule::FirstSegmentPlus(budget) = self.rule else {
            return;
        };
        match self.first_picture {
            None => self.first_picture = Some((frame.segment, frame.dts)),
            Some((segment, first_dts)) if frame.segment != segment => {
                let length = Duration::from_nanos(frame.dts.saturating_sub(first_dts));
                self.delay = Some(length + budget);
            }
            Some(_) => {}
        }
        self.last_picture_dts = self.last_picture_dts.max(frame.dts);
    }

    /// An input connection ended before the first segment was cut: that
    /// segment is as long as what came, and the delay is learned from it.
    /// A connection that brought no picture teaches nothing.
    pub fn connection_ended(&mut self) {
        if let (None, DelayRule::FirstSegmentPlus(budget), Some((_, first_dts))) =
            (self.delay, self.rule, self.first_picture)
        {
            let length = Duration::from_nanos(self.last_picture_dts.saturating_sub(first_dts));
            self.delay = Some(length + budget);
        }
    }

    /// No more input will come: what is queued must leave, with the delay
    /// learned so far (the budget alone when no picture came).
    pub fn input_closed(&mut self) {
        self.connection_ended();
        if let (None, DelayRule::FirstSegmentPlus(budget)) = (self.delay, self.rule) {
            self.delay = Some(budget);
        }
    }

    /// The delay in effect, once known.
    pub fn delay(&self) -> Option<Duration> {
        self.delay
    }

    /// A span's dub, as AAC frames of the stream's format.
    pub fn dub(&mut self, segment: u64, frames: Vec<Bytes>) {
        self.dubs.entry(segment).or_insert(Dub::Ready(frames));
    }

    /// A span that will have no dub, and why.
    pub fn no_dub(&mut self, segment: u64, reason: String) {
        self.dubs.entry(segment).or_insert(Dub::Missing(reason));
    }

    pub fn set_silence(&mut self, frame: Bytes) {
        self.silence = Some(frame);
    }

    /// When the next frame is due, if one waits and the delay is known.
    pub fn next_due(&self) -> Option<Instant> {
        let delay = self.delay?;
        self.queue.front().map(|f| f.arrival + delay)
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The input connection of the next frame to leave.
    pub fn next_connection(&self) -> Option<u32> {
        self.queue.front().map(|f| f.connection)
    }

    /// Everything due at `now`, in order.
    pub fn release(&mut self, now: Instant) -> Vec<Release> {
        let mut out = Vec::new();
        while self.next_due().is_some_and(|due| due <= now) {
            let mut frame = self.queue.pop_front().expect("a frame is due");
            if self
                .span_start
                .is_none_or(|(segment, _)| segment != frame.segment)
            {
                self.span_start = Some((frame.segment, now.saturating_duration_since(frame.arrival)));
            }
            if frame.kind == MediaKind::Audio {
                let delay = self.span_start.map_or(Duration::ZERO, |(_, delay)| delay);
                if let Some(decision) = self.decide(frame.segment, delay) {
                    out.push(Release::Decided(decision));
                }
                frame.data = self.audio_for(&frame);
            }
            out.push(Release::Frame(frame));
        }
        out
    }

    /// Decides a span's audio when its first frame is due.
    fn decide(&mut self, segment: u64, delay: Duration) -> Option<SpanDecision> {
        if self.decided.contains_key(&segment) {
            return None;
        }
        let fallback = match self.fallback {
            Fallback::Original => SpanAudio::Original,
            Fallback::Silence if self.silence.is_some() => SpanAudio::Silence,
            // Silence cannot be made: the original is the only fallback.
            Fallback::Silence => SpanAudio::Original,
        };
        let (audio, reason) = match self.dubs.get(&segment) {
            Some(Dub::Ready(_)) => (SpanAudio::Dub, None),
            Some(Dub::Missing(reason)) => (fallback, Some(reason.clone())),
            None => (fallback, Some("the dub had not come by its deadline".to_owned())),
        };
        self.decided.insert(segment, Decided { audio, sent: 0 });
        // Older spans are done with.
        self.dubs.retain(|s, _| *s >= segment);
        self.decided.retain(|s, _| *s + 1 >= segment);
        Some(SpanDecision {
            segment,
            audio,
            reason,
            delay,
        })
    }

    /// The bytes the span's decision puts in `frame`'s place.
    fn audio_for(&mut self, frame: &OutFrame) -> Bytes {
        let decided = self
            .decided
            .get_mut(&frame.segment)
            .expect("decided at its first frame");
        let k = decided.sent;
        decided.sent += 1;
        let silence = || self.silence.clone().unwrap_or_else(|| frame.data.clone());
        match decided.audio {
            SpanAudio::Original => frame.data.clone(),
            SpanAudio::Silence => silence(),
            SpanAudio::Dub => match self.dubs.get(&frame.segment) {
                Some(Dub::Ready(frames)) => frames.get(k).cloned().unwrap_or_else(silence),
                _ => silence(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn frame(kind: MediaKind, at: Instant, ms: u64, segment: u64, tag: &[u8]) -> OutFrame {
        OutFrame {
            kind,
            pts: ms * MS,
            dts: ms * MS,
            duration: 21 * MS,
            keyframe: kind == MediaKind::Video,
            data: Bytes::copy_from_slice(tag),
            arrival: at + Duration::from_millis(ms),
            segment,
            connection: 1,
        }
    }

    fn frames(released: &[Release]) -> Vec<&[u8]> {
        released
            .iter()
            .filter_map(|r| match r {
                Release::Frame(f) => Some(&f.data[..]),
                Release::Decided(_) => None,
            })
            .collect()
    }

    fn decisions(released: &[Release]) -> Vec<&SpanDecision> {
        released
            .iter()
            .filter_map(|r| match r {
                Release::Decided(d) => Some(d),
                Release::Frame(_) => None,
            })
            .collect()
    }

    #[test]
    fn frames_leave_exactly_the_delay_after_they_arrived_in_order() {
        let t0 = Instant::now();
        let mut schedule = Schedule::new(DelayRule::Fixed(Duration::from_secs(9)), Fallback::Original);
        schedule.push(frame(MediaKind::Video, t0, 0, 0, b"v0"));
        schedule.push(frame(MediaKind::Video, t0, 33, 0, b"v1"));
        assert_eq!(schedule.next_due(), Some(t0 + Duration::from_secs(9)));
        assert!(schedule.release(t0 + Duration::from_millis(8_999)).is_empty());
        assert_eq!(frames(&schedule.release(t0 + Duration::from_secs(9))), [b"v0"]);
        assert_eq!(frames(&schedule.release(t0 + Duration::from_secs(10))), [b"v1"]);
        assert!(schedule.is_empty());
    }

    #[test]
    fn a_span_with_its_dub_in_time_carries_the_dub_padded_with_silence() {
        let t0 = Instant::now();
        let mut schedule = Schedule::new(DelayRule::Fixed(Duration::from_secs(9)), Fallback::Original);
        schedule.set_silence(Bytes::from_static(b"hush"));
        for (k, tag) in [b"a0", b"a1", b"a2"].into_iter().enumerate() {
            schedule.push(frame(MediaKind::Audio, t0, 21 * k as u64, 4, tag));
        }
        schedule.dub(4, vec![Bytes::from_static(b"d0"), Bytes::from_static(b"d1")]);
        let released = schedule.release(t0 + Duration::from_secs(10));
        assert_eq!(frames(&released), [b"d0".as_slice(), b"d1", b"hush"]);
        assert_eq!(
            decisions(&released),
            [&SpanDecision {
                segment: 4,
                audio: SpanAudio::Dub,
                reason: None,
                delay: Duration::from_secs(10),
            }]
        );
    }

    #[test]
    fn a_late_or_failed_dub_gives_the_fallback_for_the_whole_span() {
        let t0 = Instant::now();
        let mut schedule = Schedule::new(DelayRule::Fixed(Duration::from_secs(9)), Fallback::Original);
        schedule.push(frame(MediaKind::Audio, t0, 0, 0, b"a0"));
        schedule.push(frame(MediaKind::Audio, t0, 21, 0, b"a1"));
        schedule.push(frame(MediaKind::Audio, t0, 42, 1, b"b0"));
        schedule.no_dub(1, "STS error PROCESSING_FAILED".into());
        // Span 0's first frame is due before any dub came.
        let first = schedule.release(t0 + Duration::from_secs(9));
        assert_eq!(frames(&first), [b"a0"]);
        assert_eq!(decisions(&first)[0].audio, SpanAudio::Original);
        assert!(
            decisions(&first)[0]
                .reason
                .as_deref()
                .unwrap()
                .contains("deadline")
        );
        // A dub that comes now is too late for the span begun without it.
        schedule.dub(0, vec![Bytes::from_static(b"late")]);
        let rest = schedule.release(t0 + Duration::from_secs(10));
        assert_eq!(frames(&rest), [b"a1".as_slice(), b"b0"]);
        assert_eq!(
            decisions(&rest),
            [&SpanDecision {
                segment: 1,
                audio: SpanAudio::Original,
                reason: Some("STS error PROCESSING_FAILED".into()),
                delay: Duration::from_millis(9_958),
            }]
        );
    }

    #[test]
    fn a_span_s_delay_is_its_first_frame_s_though_its_audio_came_in_after_a_later_picture() {
        let t0 = Instant::now();
        let mut schedule = Schedule::new(DelayRule::Fixed(Duration::from_secs(9)), Fallback::Original);
        // The picture that starts span 1 arrives at 40 ms; an audio frame
        // that arrived at 30 ms belongs after the cut, so the segmenter
        // places it after that picture, and then the next picture (73 ms).
        schedule.push(frame(MediaKind::Video, t0, 40, 1, b"v0"));
        schedule.push(frame(MediaKind::Audio, t0, 30, 1, b"a0"));
        schedule.push(frame(MediaKind::Video, t0, 73, 1, b"v1"));
        let released = schedule.release(t0 + Duration::from_millis(9_040));
        assert_eq!(frames(&released), [b"v0".as_slice(), b"a0"]);
        assert_eq!(decisions(&released)[0].delay, Duration::from_secs(9));
        // A span's later frames do not move its start.
        let released = schedule.release(t0 + Duration::from_millis(9_073));
        assert_eq!(frames(&released), [b"v1"]);
        assert!(decisions(&released).is_empty());
    }

    #[test]
    fn by_default_the_delay_is_the_first_segment_plus_the_budget_and_nothing_leaves_before() {
        let t0 = Instant::now();
        let budget = Duration::from_secs(3);
        let mut schedule = Schedule::new(DelayRule::FirstSegmentPlus(budget), Fallback::Original);
        // 4-s GOPs and a 6-s target: the first segment is cut at 8 s.
        schedule.push(frame(MediaKind::Video, t0, 0, 0, b"v0"));
        schedule.push(frame(MediaKind::Audio, t0, 10, 0, b"a0"));
        schedule.push(frame(MediaKind::Video, t0, 4_000, 0, b"v1"));
        assert_eq!(schedule.next_due(), None, "not before the first cut");
        assert!(schedule.release(t0 + Duration::from_secs(60)).is_empty());
        schedule.push(frame(MediaKind::Video, t0, 8_000, 1, b"v2"));
        assert_eq!(schedule.delay(), Some(Duration::from_secs(11)));
        assert_eq!(schedule.next_due(), Some(t0 + Duration::from_secs(11)));
        // Later segments do not change it.
        schedule.push(frame(MediaKind::Video, t0, 20_000, 2, b"v3"));
        assert_eq!(schedule.delay(), Some(Duration::from_secs(11)));
    }

    #[test]
    fn an_input_that_ends_before_its_first_cut_gives_the_delay_from_what_came() {
        let t0 = Instant::now();
        let mut schedule = Schedule::new(
            DelayRule::FirstSegmentPlus(Duration::from_secs(3)),
            Fallback::Original,
        );
        // A connection refused before any picture teaches nothing.
        schedule.connection_ended();
        assert_eq!(schedule.delay(), None);
        schedule.push(frame(MediaKind::Video, t0, 0, 0, b"v0"));
        schedule.push(frame(MediaKind::Video, t0, 2_500, 0, b"v1"));
        schedule.connection_ended();
        assert_eq!(schedule.delay(), Some(Duration::from_millis(5_500)));
        assert_eq!(frames(&schedule.release(t0 + Duration::from_secs(6))), [b"v0"]);
    }

    #[test]
    fn an_input_closed_without_a_picture_lets_what_is_queued_leave_after_the_budget() {
        let t0 = Instant::now();
        let mut schedule = Schedule::new(
            DelayRule::FirstSegmentPlus(Duration::from_secs(3)),
            Fallback::Original,
        );
        schedule.push(frame(MediaKind::Audio, t0, 0, 0, b"a0"));
        assert_eq!(schedule.next_due(), None);
        schedule.input_closed();
        assert_eq!(schedule.next_due(), Some(t0 + Duration::from_secs(3)));
    }

    #[test]
    fn the_silence_fallback_needs_a_silent_frame_else_the_original_fills() {
        let t0 = Instant::now();
        let mut schedule = Schedule::new(DelayRule::Fixed(Duration::ZERO), Fallback::Silence);
        schedule.push(frame(MediaKind::Audio, t0, 0, 0, b"a0"));
        let released = schedule.release(t0);
        assert_eq!(decisions(&released)[0].audio, SpanAudio::Original);
        schedule.set_silence(Bytes::from_static(b"hush"));
        schedule.push(frame(MediaKind::Audio, t0, 21, 1, b"b0"));
        let released = schedule.release(t0 + Duration::from_secs(1));
        assert_eq!(frames(&released), [b"hush"]);
        assert_eq!(decisions(&released)[0].audio, SpanAudio::Silence);
    }
}
