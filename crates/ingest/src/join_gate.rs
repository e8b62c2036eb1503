//! The join gate: a worker that joins a running stream gets its first
//! picture late, and flvdemux must still see both tracks.
//!
//! MediaMTX (like the embedded server) sends a new reader the metadata and
//! both sequence headers at once, audio from the moment it joined, and video
//! only from the next IDR: with a 10-s GOP, up to 10 s of audio before the
//! first picture. flvdemux creates a pad only at a track's first frame, and
//! after 6 s of audio without a video pad it declares its pads complete and
//! ignores the video for good. So the gate sits on the FLV byte stream in
//! front of flvdemux, and until the first video frame:
//!
//! - it **announces** each track when its first tag comes (a sequence header
//!   is enough: the track exists, whatever its first picture's delay), or
//!   when the metadata names its codec (`onMetaData`'s `videocodecid` and
//!   `audiocodecid`: nginx-rtmp sends a joining reader the metadata at once
//!   but each track's sequence header only with its first frame), so the
//!   session judges presence and codecs without waiting for a keyframe;
//! - it passes the header, metadata and sequence headers, and **holds** the
//!   audio frames (the last [`HOLD_WINDOW_MS`] of them, at most
//!   [`MAX_HELD_BYTES`]);
//! - at the first video frame it **opens**: the held audio from
//!   [`RELEASE_MARGIN_MS`] before that frame goes first, then the frame and
//!   everything after, untouched. Older audio could never be paired with a
//!   picture (the segmenter keeps none before the first picture), so it is
//!   only counted.
//!
//! Once open, a buffer passes without being looked at.
//!
//! The stream is parsed by hand because only a few bytes of each tag matter
//! here and the rest is copied; no FLV crate parses a stream that arrives in
//! arbitrary blocks.

use std::collections::VecDeque;

use crate::media::MediaKind;
use crate::tracks::TrackCaps;

/// Audio held while waiting for the first picture, by its timestamps: more
/// than [`RELEASE_MARGIN_MS`], so what is released was all kept.
pub(crate) const HOLD_WINDOW_MS: u32 = 2_000;
/// Audio released ahead of the first picture: whatever the server's
/// interleaving, every audio frame that could pair with it (its midpoint at
/// or after the picture) is within this.
pub(crate) const RELEASE_MARGIN_MS: u32 = 1_000;
/// A bound on held bytes whatever a server sends (2 s of AAC is ~50 KiB).
pub(crate) const MAX_HELD_BYTES: usize = 1 << 20;

const FLV_HEADER: usize = 9;
const PREVIOUS_TAG_SIZE: usize = 4;
const TAG_HEADER: usize = 11;
/// The tag header and the two data bytes that tell a frame from a
/// sequence header.
const TAG_HEAD: usize = TAG_HEADER + 2;

const TAG_AUDIO: u8 = 8;
const TAG_VIDEO: u8 = 9;
const TAG_SCRIPT: u8 = 18;
/// Metadata larger than this is passed on unread.
const MAX_METADATA: usize = 64 * 1024;

/// What the gate learned, in order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum GateNews {
    /// The first tag of a track came; the codec is the one it names.
    Announced { kind: MediaKind, caps: TrackCaps },
    /// The first video frame came and the gate opened.
    Opened(JoinFacts),
}

/// What a connection received before its first picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct JoinFacts {
    /// Timestamp (ms, the stream's timeline) of the first audio frame.
    pub first_audio_ms: Option<u32>,
    /// Decode timestamp (ms) of the first video frame.
    pub first_video_ms: u32,
    /// Audio frames held and released ahead of the first picture.
    pub audio_released: u64,
    /// Audio frames received before it and never passed on.
    pub audio_dropped: u64,
}

/// What to do with the buffer just pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Pass it unchanged (the gate is open, or was for all of it).
    AsIs,
    /// Pass the bytes written to `out` instead.
    Rewritten,
}

#[derive(Debug)]
enum Phase {
    /// Reading the FLV header (and the first previous-tag size after it).
    Header,
    /// Reading a tag's first bytes.
    TagHead,
    /// Copying the rest of a tag (its data and the previous-tag size).
    TagBody {
        left: usize,
        route: Route,
    },
    Open,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Pass,
    Hold,
}

#[derive(Debug)]
struct HeldTag {
    timestamp: u32,
    bytes: Vec<u8>,
}

#[derive(Debug)]
pub(crate) struct JoinGate {
    phase: Phase,
    /// Bytes of the header or tag head read so far.
    head: Vec<u8>,
    held: VecDeque<HeldTag>,
    held_bytes: usize,
    announced: [bool; 2],
    facts: JoinFacts,
    /// The data of the script tag being passed, to read its metadata.
    script: Option<Vec<u8>>,
}

impl Default for JoinGate {
    fn default() -> Self {
        Self {
            phase: Phase::Header,
            head: Vec::with_capacity(TAG_HEAD),
            held: VecDeque::new(),
            held_bytes: 0,
            announced: [false; 2],
            facts: JoinFacts::default(),
            script: None,
        }
    }
}

impl JoinGate {
    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open)
    }

    /// Reads one buffer of the FLV stream; with [`Verdict::Rewritten`],
    /// `out` holds what flvdemux must get instead.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>, news: &mut Vec<GateNews>) -> Verdict {
        if self.is_open() {
            return Verdict::AsIs;
        }
        out.clear();
        let mut rest = input;
        while !rest.is_empty() {
            match &mut self.phase {
                Phase::Open => {
                    out.extend_from_slice(rest);
                    break;
                }
                Phase::Header => {
                    let wanted = self.header_len().saturating_sub(self.head.len());
                    let take = wanted.min(rest.len());
                    self.head.extend_from_slice(&rest[..take]);
                    rest = &rest[take..];
                    let signature = &self.head[..self.head.len().min(3)];
                    if !b"FLV".starts_with(signature) {
                        // Not FLV: flvdemux will say so; nothing to gate.
                        out.append(&mut self.head);
                        self.phase = Phase::Open;
                        continue;
                    }
                    if self.head.len() >= FLV_HEADER && self.head.len() >= self.header_len() {
                        out.append(&mut self.head);
                        self.phase = Phase::TagHead;
                    }
                }
                Phase::TagHead => {
                    let wanted = self.tag_head_len().saturating_sub(self.head.len());
                    let take = wanted.min(rest.len());
                    self.head.extend_from_slice(&rest[..take]);
                    rest = &rest[take..];
                    if self.head.len() >= self.tag_head_len() {
                        self.judge_tag(out, news);
                    }
                }
                Phase::TagBody { left, route } => {
                    let take = (*left).min(rest.len());
                    match route {
                        Route::Pass => {
                            out.extend_from_slice(&rest[..take]);
                            if let Some(script) = &mut self.script {
                                script.extend_from_slice(&rest[..take]);
                            }
                        }
                        Route::Hold => {
                            let tag = self.held.back_mut().expect("a held tag is open");
                            tag.bytes.extend_from_slice(&rest[..take]);
                            self.held_bytes += take;
                        }
                    }
                    *left -= take;
                    rest = &rest[take..];
                    if *left == 0 {
                        let held = *route == Route::Hold;
                        self.phase = Phase::TagHead;
                        if held {
                            self.bound_held();
                        }
                        self.read_metadata(news);
                    }
                }
            }
        }
        Verdict::Rewritten
    }

    /// The FLV header's length (its data offset) and the previous-tag size
    /// after it; 9 + 4 until the header says otherwise.
    fn header_len(&self) -> usize {
        let offset = if self.head.len() >= FLV_HEADER {
            u32::from_be_bytes([self.head[5], self.head[6], self.head[7], self.head[8]]) as usize
        } else {
            FLV_HEADER
        };
        // A header that claims more than a few bytes is not one to skip over.
        offset.clamp(FLV_HEADER, 64) + PREVIOUS_TAG_SIZE
    }

    fn tag_data_size(&self) -> usize {
        data_size(&self.head)
    }

    /// Bytes needed to judge the current tag: its header, then up to two
    /// data bytes.
    fn tag_head_len(&self) -> usize {
        if self.head.len() < TAG_HEADER {
            return TAG_HEADER;
        }
        TAG_HEADER + self.tag_data_size().min(TAG_HEAD - TAG_HEADER)
    }

    fn judge_tag(&mut self, out: &mut Vec<u8>, news: &mut Vec<GateNews>) {
        let head = std::mem::take(&mut self.head);
        let kind = match head[0] & 0x1f {
            TAG_AUDIO => Some(MediaKind::Audio),
            TAG_VIDEO => Some(MediaKind::Video),
            _ => None,
        };
        let data = &head[TAG_HEADER..];
        let timestamp = u32::from_be_bytes([head[7], head[4], head[5], head[6]]);
        let left = data_size(&head) - data.len() + PREVIOUS_TAG_SIZE;
        self.head = Vec::with_capacity(TAG_HEAD);
        if let Some(kind) = kind
            && !data.is_empty()
            && !std::mem::replace(&mut self.announced[kind.index()], true)
        {
            news.push(GateNews::Announced {
                kind,
                caps: announced_caps(kind, data),
            });
        }
        let route = match kind {
            Some(MediaKind::Audio) if is_audio_frame(data) => {
                self.facts.first_audio_ms.get_or_insert(timestamp);
                self.held.push_back(HeldTag {
                    timestamp,
                    bytes: head,
                });
                self.held_bytes += TAG_HEAD;
                Route::Hold
            }
            Some(MediaKind::Video) if is_video_frame(data) => {
                self.open(timestamp, out, news);
                out.extend_from_slice(&head);
                // The rest of this tag and of the stream passes as it is.
                self.phase = Phase::Open;
                return;
            }
            _ => {
                out.extend_from_slice(&head);
                let size = data_size(&head);
                self.script = (head[0] & 0x1f == TAG_SCRIPT && size <= MAX_METADATA).then(|| {
                    let mut script = Vec::with_capacity(size + PREVIOUS_TAG_SIZE);
                    script.extend_from_slice(&head[TAG_HEADER..]);
                    script
                });
                Route::Pass
            }
        };
        self.phase = if left == 0 {
            Phase::TagHead
        } else {
            Phase::TagBody { left, route }
        };
        if left == 0 && route == Route::Hold {
            self.bound_held();
        }
        if left == 0 {
            self.read_metadata(news);
        }
    }

    /// A script tag just passed: if it is `onMetaData` naming codecs, the
    /// tracks it names are announced.
    fn read_metadata(&mut self, news: &mut Vec<GateNews>) {
        let Some(mut script) = self.script.take() else {
            return;
        };
        script.truncate(script.len().saturating_sub(PREVIOUS_TAG_SIZE));
        for (kind, caps) in metadata_codecs(&script) {
            if !std::mem::replace(&mut self.announced[kind.index()], true) {
                news.push(GateNews::Announced { kind, caps });
            }
        }
    }

    /// Releases the held audio that can pair with a picture at `video_ms`.
    fn open(&mut self, video_ms: u32, out: &mut Vec<u8>, news: &mut Vec<GateNews>) {
        let from = video_ms.saturating_sub(RELEASE_MARGIN_MS);
        for tag in self.held.drain(..) {
            if tag.timestamp >= from {
                out.extend_from_slice(&tag.bytes);
                self.facts.audio_released += 1;
            } else {
                self.facts.audio_dropped += 1;
            }
        }
        self.held_bytes = 0;
        self.facts.first_video_ms = video_ms;
        news.push(GateNews::Opened(self.facts));
    }

    /// Forgets held audio older than the window, or beyond the byte bound
    /// (never the tag still being read).
    fn bound_held(&mut self) {
        let Some(newest) = self.held.back().map(|t| t.timestamp) else {
            return;
        };
        while self.held.len() > 1
            && self.held.front().is_some_and(|oldest| {
                newest.saturating_sub(oldest.timestamp) > HOLD_WINDOW_MS || self.held_bytes > MAX_HELD_BYTES
            })
        {
            let dropped = self.held.pop_front().expect("checked");
            self.held_bytes -= dropped.bytes.len();
            self.facts.audio_dropped += 1;
        }
    }
}

/// The tracks an `onMetaData` (or `@setDataFrame onMetaData`) names, with
/// their codecs: `videocodecid` and `audiocodecid`, as FLV codec ids or
/// (enhanced RTMP) four-character codes.
fn metadata_codecs(data: &[u8]) -> Vec<(MediaKind, TrackCaps)> {
    use rml_amf0::Amf0Value;
    let Ok(values) = rml_amf0::deserialize(&mut &data[..]) else {
        return Vec::new();
    };
    let mut values = values
        .into_iter()
        .skip_while(|v| matches!(v, Amf0Value::Utf8String(name) if name == "@setDataFrame"));
    if !matches!(values.next(), Some(Amf0Value::Utf8String(name)) if name == "onMetaData") {
        return Vec::new();
    }
    let Some(Amf0Value::Object(properties)) = values.next() else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for (kind, key) in [
        (MediaKind::Video, "videocodecid"),
        (MediaKind::Audio, "audiocodecid"),
    ] {
        let first_bytes = match properties.get(key) {
            // MediaMTX says 0 for a track it does not have (0 would be raw
            // PCM, which no encoder sends over RTMP).
            Some(Amf0Value::Number(id)) if (1.0..16.0).contains(id) => {
                let id = *id as u8;
                match kind {
                    MediaKind::Video => vec![id],
                    MediaKind::Audio => vec![id << 4],
                }
            }
            Some(Amf0Value::Utf8String(fourcc)) => match (kind, fourcc.as_str()) {
                (MediaKind::Video, "avc1") => vec![7],
                (MediaKind::Video, code) => [&[0x80u8][..], code.as_bytes()].concat(),
                (MediaKind::Audio, "mp4a") => vec![10 << 4],
                (MediaKind::Audio, ".mp3") => vec![2 << 4],
                (MediaKind::Audio, _) => vec![15 << 4],
            },
            _ => continue,
        };
        found.push((kind, announced_caps(kind, &first_bytes)));
    }
    found
}

/// A tag's data size, from its header.
fn data_size(header: &[u8]) -> usize {
    (usize::from(header[1]) << 16) | (usize::from(header[2]) << 8) | usize::from(header[3])
}

/// An audio tag that carries a frame (not an AAC sequence header).
fn is_audio_frame(data: &[u8]) -> bool {
    const AAC: u8 = 10;
    match data {
        [first, packet_type, ..] if first >> 4 == AAC => *packet_type == 1,
        [_, ..] => true,
        [] => false,
    }
}

/// A video tag that carries a picture (not a sequence header or its end).
fn is_video_frame(data: &[u8]) -> bool {
    const AVC: u8 = 7;
    const EX_HEADER: u8 = 0x80;
    match data {
        // Enhanced RTMP: the packet type is the low nibble; 1 and 3 are
        // coded frames.
        [first, ..] if first & EX_HEADER != 0 => matches!(first & 0x0f, 1 | 3),
        [first, packet_type, ..] if first & 0x0f == AVC => *packet_type == 1,
        [_, ..] => true,
        [] => false,
    }
}

/// The codec a track's first tag names, as flvdemux would describe it.
fn announced_caps(kind: MediaKind, data: &[u8]) -> TrackCaps {
    let caps = |media_type: &str, mpegversion: Option<i32>, layer: Option<i32>| TrackCaps {
        media_type: media_type.to_owned(),
        mpegversion,
        layer,
        ..TrackCaps::default()
    };
    let first = data[0];
    match kind {
        MediaKind::Video if first & 0x80 != 0 => {
            let fourcc = data.get(1..5).unwrap_or_default();
            match fourcc {
                b"hvc1" => caps("video/x-h265", None, None),
                b"av01" => caps("video/x-av1", None, None),
                b"vp09" => caps("video/x-vp9", None, None),
                _ => caps("video/x-enhanced-rtmp", None, None),
            }
        }
        MediaKind::Video => match first & 0x0f {
            2 => caps("video/x-flash-video", None, None),
            3 | 6 => caps("video/x-flash-screen", None, None),
            4 => caps("video/x-vp6-flash", None, None),
            5 => caps("video/x-vp6-alpha", None, None),
            7 => caps("video/x-h264", None, None),
            12 => caps("video/x-h265", None, None),
            id => caps(&format!("video/x-flv-codec-{id}"), None, None),
        },
        MediaKind::Audio => match first >> 4 {
            0 | 3 => caps("audio/x-raw", None, None),
            1 => caps("audio/x-adpcm", None, None),
            2 | 14 => caps("audio/mpeg", Some(1), Some(3)),
            4..=6 => caps("audio/x-nellymoser", None, None),
            7 => caps("audio/x-alaw", None, None),
            8 => caps("audio/x-mulaw", None, None),
            10 => caps("audio/mpeg", Some(4), None),
            11 => caps("audio/x-speex", None, None),
            id => caps(&format!("audio/x-flv-codec-{id}"), None, None),
        },
    }
}

#[cfg(test)]
mod tests {
    use media_tools::flv::{self, AUDIO, FlvTag, SCRIPT, VIDEO};

    use super::*;

    fn tag(kind: u8, timestamp: u32, body: &[u8]) -> FlvTag {
        FlvTag {
            kind,
            timestamp,
            body: body.to_vec(),
        }
    }

    fn audio(ms: u32) -> FlvTag {
        tag(AUDIO, ms, &[0xaf, 1, 0x21, 0x10, 0x04])
    }

    fn picture(ms: u32, key: bool) -> FlvTag {
        tag(
            VIDEO,
            ms,
            &[if key { 0x17 } else { 0x27 }, 1, 0, 0, 0, 0x65, 0x88],
        )
    }

    /// What a server like MediaMTX sends a reader joining at `join_ms`:
    /// metadata and sequence headers at 0, audio at once (every 21 ms),
    /// video from the next keyframe of a `gop_ms` GOP (30 fps).
    fn joined_stream(join_ms: u32, gop_ms: u32, until_ms: u32) -> Vec<FlvTag> {
        let mut tags = vec![
            tag(SCRIPT, 0, b"\x02\x00\x0aonMetaData"),
            tag(VIDEO, 0, &[0x17, 0, 0, 0, 0, 1, 0x64]),
            tag(AUDIO, 0, &[0xaf, 0, 0x11, 0x90]),
        ];
        let first_key = join_ms.div_ceil(gop_ms) * gop_ms;
        let mut media = Vec::new();
        for ms in (join_ms..until_ms).step_by(21) {
            media.push(audio(ms));
        }
        for ms in (first_key..until_ms).step_by(33) {
            media.push(picture(ms, (ms - first_key) % gop_ms < 33));
        }
        media.sort_by_key(|t| t.timestamp);
        tags.extend(media);
        tags
    }

    fn bytes(tags: &[FlvTag]) -> Vec<u8> {
        let mut out = flv::header();
        for t in tags {
            flv::write_tag(&mut out, t);
        }
        out
    }

    /// Pushes `stream` in `chunk`-byte buffers; what flvdemux would get, and
    /// the news.
    fn through_gate(stream: &[u8], chunk: usize) -> (Vec<u8>, Vec<GateNews>) {
        let mut gate = JoinGate::default();
        let (mut passed, mut out, mut news) = (Vec::new(), Vec::new(), Vec::new());
        for piece in stream.chunks(chunk) {
            match gate.push(piece, &mut out, &mut news) {
                Verdict::AsIs => passed.extend_from_slice(piece),
                Verdict::Rewritten => passed.extend_from_slice(&out),
            }
        }
        (passed, news)
    }

    /// The tracks announced, with the codecs they name.
    fn announced(news: &[GateNews]) -> Vec<(MediaKind, String)> {
        news.iter()
            .filter_map(|n| match n {
                GateNews::Announced { kind, caps } => Some((*kind, caps.codec_name())),
                GateNews::Opened(_) => None,
            })
            .collect()
    }

    fn h264_and_aac() -> Vec<(MediaKind, String)> {
        vec![
            (MediaKind::Video, "H.264".to_owned()),
            (MediaKind::Audio, "AAC".to_owned()),
        ]
    }

    #[test]
    fn both_tracks_are_announced_by_their_sequence_headers_before_any_picture() {
        let stream = bytes(&joined_stream(2_200, 10_000, 2_400));
        let (_, news) = through_gate(&stream, 4096);
        assert_eq!(announced(&news), h264_and_aac());
        assert!(
            !news.iter().any(|n| matches!(n, GateNews::Opened(_))),
            "no picture yet: {news:?}"
        );
    }

    #[test]
    fn audio_waits_for_the_first_picture_and_only_what_can_pair_with_it_is_kept() {
        let tags = joined_stream(2_200, 10_000, 12_000);
        for chunk in [1, 7, 13, 4096, usize::MAX] {
            let (passed, news) = through_gate(&bytes(&tags), chunk.min(1 << 20));
            let out = flv::read_tags(&passed).expect("the gate's output is FLV");
            // Configuration first, untouched.
            assert_eq!(out[..3], tags[..3], "chunk {chunk}");
            // Then audio from a second before the first picture, then the
            // picture and everything after it, in the server's order.
            let first_picture = tags.iter().position(|t| t.kind == VIDEO && t.is_frame()).unwrap();
            let kept_audio: Vec<&FlvTag> = tags[3..first_picture]
                .iter()
                .filter(|t| t.timestamp + RELEASE_MARGIN_MS >= 10_000)
                .collect();
            let expected: Vec<&FlvTag> = tags[..3]
                .iter()
                .chain(kept_audio.iter().copied())
                .chain(&tags[first_picture..])
                .collect();
            assert_eq!(out.iter().collect::<Vec<_>>(), expected, "chunk {chunk}");
            let opened = news
                .iter()
                .find_map(|n| match n {
                    GateNews::Opened(facts) => Some(*facts),
                    GateNews::Announced { .. } => None,
                })
                .expect("opened at the picture");
            let before = (first_picture - 3) as u64;
            assert_eq!(
                opened,
                JoinFacts {
                    first_audio_ms: Some(2_200),
                    first_video_ms: 10_000,
                    audio_released: kept_audio.len() as u64,
                    audio_dropped: before - kept_audio.len() as u64,
                },
                "chunk {chunk}"
            );
        }
    }

    fn metadata(properties: &[(&str, rml_amf0::Amf0Value)]) -> FlvTag {
        use rml_amf0::Amf0Value;
        let object = properties
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        let body = rml_amf0::serialize(&vec![
            Amf0Value::Utf8String("onMetaData".into()),
            Amf0Value::Object(object),
        ])
        .unwrap();
        tag(SCRIPT, 0, &body)
    }

    /// nginx-rtmp sends a joining reader the metadata at once, but a track's
    /// sequence header only with its first frame: the metadata announces.
    #[test]
    fn metadata_naming_the_codecs_announces_both_tracks() {
        use rml_amf0::Amf0Value;
        let tags = [
            metadata(&[
                ("width", Amf0Value::Number(1280.0)),
                ("videocodecid", Amf0Value::Number(7.0)),
                ("audiocodecid", Amf0Value::Number(10.0)),
            ]),
            tag(AUDIO, 0, &[0xaf, 0, 0x11, 0x90]),
            audio(13_000),
        ];
        for chunk in [1, 5, 4096] {
            let (_, news) = through_gate(&bytes(&tags), chunk);
            assert_eq!(announced(&news), h264_and_aac(), "chunk {chunk}");
        }
        let enhanced = metadata(&[
            ("videocodecid", Amf0Value::Utf8String("hvc1".into())),
            ("audiocodecid", Amf0Value::Utf8String("mp4a".into())),
        ]);
        let (_, news) = through_gate(&bytes(&[enhanced]), 4096);
        assert!(
            matches!(&news[0], GateNews::Announced { kind: MediaKind::Video, caps } if caps.codec_name() == "H.265"),
            "{news:?}"
        );
        // MediaMTX's metadata for a video-only stream: audio id 0, no track.
        let video_only = metadata(&[
            ("videocodecid", Amf0Value::Number(7.0)),
            ("audiocodecid", Amf0Value::Number(0.0)),
        ]);
        let (_, news) = through_gate(&bytes(&[video_only]), 4096);
        assert_eq!(news.len(), 1, "{news:?}");
        // Metadata that names no codec announces nothing.
        let (_, news) = through_gate(&bytes(&[metadata(&[("width", Amf0Value::Number(1.0))])]), 4096);
        assert!(news.is_empty(), "{news:?}");
    }

    #[test]
    fn held_audio_is_bounded_by_time_and_bytes() {
        let mut gate = JoinGate::default();
        let (mut out, mut news) = (Vec::new(), Vec::new());
        gate.push(&bytes(&joined_stream(0, 1_000_000, 0)), &mut out, &mut news);
        // An hour of audio and no picture: a few seconds stay held.
        let mut chunk = Vec::new();
        for ms in (0..3_600_000).step_by(21) {
            flv::write_tag(&mut chunk, &audio(ms));
            if chunk.len() > 64 * 1024 {
                gate.push(&chunk, &mut out, &mut news);
                chunk.clear();
            }
        }
        gate.push(&chunk, &mut out, &mut news);
        let span = gate.held.back().unwrap().timestamp - gate.held.front().unwrap().timestamp;
        assert!(span <= HOLD_WINDOW_MS, "{span}");
        assert!(gate.held_bytes <= MAX_HELD_BYTES);
        // One huge audio tag after another: the byte bound holds.
        let big = tag(AUDIO, 3_600_000, &[0xaf, 1].repeat(300 * 1024));
        for _ in 0..8 {
            let mut one = Vec::new();
            flv::write_tag(&mut one, &big);
            gate.push(&one, &mut out, &mut news);
        }
        assert!(
            gate.held_bytes <= MAX_HELD_BYTES + 600 * 1024,
            "{}",
            gate.held_bytes
        );
    }

    #[test]
    fn an_open_gate_passes_buffers_untouched() {
        let tags = joined_stream(0, 2_000, 4_000);
        let stream = bytes(&tags);
        let mut gate = JoinGate::default();
        let (mut out, mut news) = (Vec::new(), Vec::new());
        // The first picture comes at once (a server with a GOP cache).
        let first_picture = tags.iter().position(|t| t.kind == VIDEO && t.is_frame()).unwrap();
        let first_picture_end = flv::tags(&stream).unwrap()[first_picture + 1].0;
        assert_eq!(
            gate.push(&stream[..first_picture_end], &mut out, &mut news),
            Verdict::Rewritten
        );
        assert!(gate.is_open());
        assert_eq!(
            gate.push(&stream[first_picture_end..], &mut out, &mut news),
            Verdict::AsIs
        );
    }

    #[test]
    fn bytes_that_are_not_flv_are_left_to_flvdemux() {
        let junk = b"this is not an FLV stream at all".to_vec();
        let (passed, news) = through_gate(&junk, 5);
        assert_eq!(passed, junk);
        assert!(news.is_empty());
    }

    #[rstest::rstest]
    #[case(MediaKind::Audio, &[0x2f, 0xff], "MP3")]
    #[case(MediaKind::Audio, &[0xb6, 0x00], "Speex")]
    #[case(MediaKind::Audio, &[0xaf, 0x00], "AAC")]
    #[case(MediaKind::Video, &[0x12, 0x00], "Sorenson Spark (FLV1)")]
    #[case(MediaKind::Video, &[0x14, 0x00], "On2 VP6")]
    #[case(MediaKind::Video, &[0x17, 0x00], "H.264")]
    #[case(MediaKind::Video, &[0x90, b'h', b'v', b'c', b'1'], "H.265")]
    #[case(MediaKind::Video, &[0x90, b'a', b'v', b'0', b'1'], "AV1")]
    fn a_first_tag_names_its_codec(#[case] kind: MediaKind, #[case] data: &[u8], #[case] name: &str) {
        assert_eq!(announced_caps(kind, data).codec_name(), name);
    }

    #[test]
    fn frames_are_told_from_configuration() {
        assert!(!is_video_frame(&[0x17, 0]), "AVC sequence header");
        assert!(!is_video_frame(&[0x17, 2]), "AVC end of sequence");
        assert!(is_video_frame(&[0x27, 1]));
        assert!(is_video_frame(&[0x12]), "a codec without packet types");
        assert!(!is_video_frame(&[0x90, b'h']), "enhanced sequence start");
        assert!(is_video_frame(&[0x93, b'h']), "enhanced coded frames X");
        assert!(!is_audio_frame(&[0xaf, 0]));
        assert!(is_audio_frame(&[0xaf, 1]));
        assert!(is_audio_frame(&[0x2f]));
        assert!(!is_audio_frame(&[]));
    }
}
