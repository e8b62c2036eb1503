//! What one publish sends, in three parts, so that every server gives the
//! ingest the same stream:
//!
//! ```text
//!  head: metadata, sequence headers, lead-in (3 s, no keyframe)  │ hold │  body: the fixture window, from its keyframe
//!  ─────────────────────────────── sent at once ────────────────┘      └──── paced, timestamps continuing ──────►
//! ```
//!
//! - The **lead-in** gives a server that analyses a publisher before making
//!   its path readable (MediaMTX: two seconds of timestamps) what it needs,
//!   without anything a reader could keep: it is the fixture's first three
//!   seconds with every keyframe taken out, so a reader that gets part of it
//!   (one attached before the publisher, as nginx allows) has no picture to
//!   start from, and its audio precedes the first picture.
//! - The publisher then **holds**, connected and silent, until the ingest
//!   reads the path (the caller decides when; MediaMTX allows ten seconds).
//! - The **body** is the fixture window, restamped to follow the lead-in,
//!   so a reader receives it from its first keyframe on every server,
//!   whether the server caches a GOP, waits for the next IDR, or lets
//!   readers in early.

use crate::flv::{self, AUDIO, FlvTag, VIDEO};

/// Media time the lead-in covers. MediaMTX needs a message at least 2 s
/// after the first; the rest is a margin for what ffmpeg holds back while
/// interleaving.
pub const LEAD_IN_MS: u32 = 3000;

/// The span of a fixture one publish sends, in the fixture's own time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Where the body starts: 0, or a keyframe's timestamp.
    pub from_ms: u32,
    /// Where it stops (exclusive); `None`: the end of the fixture.
    pub until_ms: Option<u32>,
}

impl Window {
    pub const WHOLE: Window = Window {
        from_ms: 0,
        until_ms: None,
    };

    fn contains(&self, ms: u32) -> bool {
        ms >= self.from_ms && self.until_ms.is_none_or(|until| ms < until)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Feed {
    /// Metadata and sequence headers at timestamp 0, then the lead-in.
    pub head: Vec<FlvTag>,
    /// The window, its first tag at [`LEAD_IN_MS`].
    pub body: Vec<FlvTag>,
}

impl Feed {
    pub fn new(fixture: &[FlvTag], window: Window) -> Self {
        let lead_in = lead_in(fixture);
        let body = fixture
            .iter()
            .filter(|t| t.is_frame() && window.contains(t.timestamp))
            .map(|t| FlvTag {
                timestamp: t.timestamp - window.from_ms + LEAD_IN_MS,
                ..t.clone()
            })
            .collect();
        Self {
            head: configuration(fixture).chain(lead_in).collect(),
            body,
        }
    }

    /// What a publisher that is there first sends, as an encoder would:
    /// the configuration, then the whole fixture from its start at its own
    /// timestamps, keyframes and all (no lead-in; nothing is held back).
    pub fn live(fixture: &[FlvTag]) -> Self {
        Self {
            head: configuration(fixture).collect(),
            body: fixture.iter().filter(|t| t.is_frame()).cloned().collect(),
        }
    }

    /// The FLV bytes of the head, to write at once.
    pub fn head_bytes(&self) -> Vec<u8> {
        let mut out = flv::header();
        for tag in &self.head {
            flv::write_tag(&mut out, tag);
        }
        out
    }

    /// Timestamp of the body's first video keyframe (where a reader's first
    /// segment starts), if the body has video.
    pub fn first_keyframe_ms(&self) -> Option<u32> {
        self.body.iter().find(|t| t.is_keyframe()).map(|t| t.timestamp)
    }

    /// The highest presentation time (ms) of the body's frames of `kind`
    /// (audio or video): when a reader has it, it has the whole body.
    pub fn last_pts(&self, kind: u8) -> Option<u32> {
        self.body
            .iter()
            .filter(|t| t.kind == kind && t.is_frame())
            .map(FlvTag::pts)
            .max()
    }

    /// Pictures in the body.
    pub fn video_frames(&self) -> usize {
        self.body.iter().filter(|t| t.kind == VIDEO).count()
    }

    /// Audio frames of the body a reader can pair with pictures: those whose
    /// midpoint is at or after the first keyframe (`frame_ms` long each).
    pub fn pairable_audio_frames(&self, frame_ms: f64) -> usize {
        let start = self.first_keyframe_ms().map_or(0.0, f64::from);
        self.body
            .iter()
            .filter(|t| t.kind == AUDIO && f64::from(t.timestamp) + frame_ms / 2.0 >= start)
            .count()
    }
}

/// Metadata and sequence headers at 0; not the AVC end of sequence that
/// closes a file, which would end the stream before it starts.
fn configuration(fixture: &[FlvTag]) -> impl Iterator<Item = FlvTag> + '_ {
    fixture
        .iter()
        .filter(|t| t.kind == flv::SCRIPT || t.is_sequence_header())
        .map(|t| FlvTag {
            timestamp: 0,
            ..t.clone()
        })
}

/// The fixture's frames from its start, keyframes left out, over
/// [`LEAD_IN_MS`]; a fixture shorter than that is repeated, its timestamps
/// moved on each time, so the lead-in always covers the analysis period.
fn lead_in(fixture: &[FlvTag]) -> impl Iterator<Item = FlvTag> + '_ {
    let frames: Vec<&FlvTag> = fixture
        .iter()
        .filter(|t| t.is_frame() && !t.is_keyframe())
        .collect();
    // One pass lasts up to its last frame, plus a frame's worth of margin.
    let pass_ms = frames
        .iter()
        .map(|t| t.timestamp)
        .max()
        .map_or(0, |last| last + 40);
    let passes = if frames.is_empty() {
        0
    } else {
        LEAD_IN_MS.div_ceil(pass_ms.max(1))
    };
    (0..passes)
        .flat_map(move |pass| {
            frames.clone().into_iter().map(move |t| FlvTag {
                timestamp: t.timestamp + pass * pass_ms,
                ..t.clone()
            })
        })
        .take_while(|t| t.timestamp < LEAD_IN_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(ts: u32, key: bool) -> FlvTag {
        FlvTag {
            kind: VIDEO,
            timestamp: ts,
            body: vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0],
        }
    }

    fn audio(ts: u32) -> FlvTag {
        FlvTag {
            kind: AUDIO,
            timestamp: ts,
            body: vec![0xaf, 1, 0x21],
        }
    }

    /// 10 s: headers, audio every 20 ms from 0, video every 40 ms from 21,
    /// a keyframe every 2 s.
    fn fixture() -> Vec<FlvTag> {
        let mut tags = vec![
            FlvTag {
                kind: 18,
                timestamp: 0,
                body: b"meta".to_vec(),
            },
            FlvTag {
                kind: VIDEO,
                timestamp: 0,
                body: vec![0x17, 0, 0, 0, 0],
            },
            FlvTag {
                kind: AUDIO,
                timestamp: 0,
                body: vec![0xaf, 0, 0x11, 0x90],
            },
        ];
        for ms in (0..10_000).step_by(20) {
            tags.push(audio(ms));
            if ms % 40 == 0 {
                let ts = ms + 21;
                tags.push(video(ts, (ts - 21) % 2000 == 0));
            }
        }
        // In decode order, as ffmpeg writes FLV.
        tags.sort_by_key(|t| t.timestamp);
        tags
    }

    #[test]
    fn the_lead_in_has_configuration_and_no_keyframe() {
        let feed = Feed::new(&fixture(), Window::WHOLE);
        assert_eq!(feed.head.iter().filter(|t| !t.is_frame()).count(), 3);
        assert!(feed.head.iter().all(|t| !t.is_keyframe()));
        let last = feed.head.last().unwrap().timestamp;
        assert!(
            (2000..LEAD_IN_MS).contains(&last),
            "covers MediaMTX's 2 s: {last}"
        );
        assert!(feed.head_bytes().starts_with(b"FLV"));
    }

    #[test]
    fn a_short_fixture_is_repeated_to_cover_the_lead_in() {
        let short: Vec<FlvTag> = fixture().into_iter().filter(|t| t.timestamp < 1000).collect();
        let feed = Feed::new(&short, Window::WHOLE);
        let times: Vec<u32> = feed
            .head
            .iter()
            .filter(|t| t.is_frame())
            .map(|t| t.timestamp)
            .collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "timestamps only move on");
        assert!(*times.last().unwrap() >= 2000, "{:?}", times.last());
        assert!(feed.head.iter().all(|t| !t.is_keyframe()));
    }

    #[test]
    fn a_live_feed_is_the_fixture_as_it_is() {
        let live = Feed::live(&fixture());
        assert_eq!(live.head.len(), 3, "configuration only");
        assert_eq!(live.body[0].timestamp, 0);
        assert!(live.body.iter().find(|t| t.kind == VIDEO).unwrap().is_keyframe());
        assert_eq!(live.video_frames(), 250);
        assert_eq!(live.last_pts(VIDEO), Some(9_981));
    }

    #[test]
    fn the_body_follows_the_lead_in_from_the_window_start() {
        let whole = Feed::new(&fixture(), Window::WHOLE);
        assert_eq!(whole.body[0].timestamp, LEAD_IN_MS);
        assert_eq!(whole.first_keyframe_ms(), Some(LEAD_IN_MS + 21));
        assert_eq!(whole.video_frames(), 250);
        assert_eq!(whole.last_pts(VIDEO), Some(LEAD_IN_MS + 9_981));
        assert_eq!(whole.last_pts(AUDIO), Some(LEAD_IN_MS + 9_980));
        // The audio frame at 0 (midpoint 10 ms) comes before the first picture.
        assert_eq!(whole.pairable_audio_frames(20.0), 499);

        let second_half = Window {
            from_ms: 4021,
            until_ms: Some(8021),
        };
        let part = Feed::new(&fixture(), second_half);
        assert!(part.body[0].is_keyframe());
        assert_eq!(part.body[0].timestamp, LEAD_IN_MS);
        assert_eq!(part.video_frames(), 100);
        assert!(part.body.iter().all(|t| t.timestamp < LEAD_IN_MS + 4000));
    }
}
