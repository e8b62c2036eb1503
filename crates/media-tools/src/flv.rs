//! Just enough FLV to take a fixture apart into tags and put tags back
//! together into a stream: a publish is assembled from a fixture's tags
//! ([`crate::feed`]) and fed to ffmpeg through a pipe.

/// FLV header (9 bytes) plus the first PreviousTagSize field (4 bytes).
const PREAMBLE: usize = 13;
const TAG_HEADER: usize = 11;

/// (byte offset, timestamp in ms) of every tag. `None` if not FLV.
pub fn tags(flv: &[u8]) -> Option<Vec<(usize, u32)>> {
    if flv.len() < PREAMBLE || &flv[..3] != b"FLV" {
        return None;
    }
    let mut found = Vec::new();
    let mut offset = PREAMBLE;
    while offset + TAG_HEADER <= flv.len() {
        let size = u32::from_be_bytes([0, flv[offset + 1], flv[offset + 2], flv[offset + 3]]) as usize;
        let timestamp =
            u32::from_be_bytes([flv[offset + 7], flv[offset + 4], flv[offset + 5], flv[offset + 6]]);
        found.push((offset, timestamp));
        offset += TAG_HEADER + size + 4;
    }
    Some(found)
}

/// One FLV tag: type (8 audio, 9 video, 18 script), timestamp, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlvTag {
    pub kind: u8,
    pub timestamp: u32,
    pub body: Vec<u8>,
}

pub const AUDIO: u8 = 8;
pub const VIDEO: u8 = 9;
pub const SCRIPT: u8 = 18;
const AVC_CODEC_ID: u8 = 7;
const AAC_FORMAT: u8 = 10;

impl FlvTag {
    /// An AVC or AAC sequence header (packet type 0): configuration, not
    /// a frame.
    pub fn is_sequence_header(&self) -> bool {
        self.packet_type() == Some(0)
    }

    /// An audio or video frame: not configuration, metadata or an AVC end
    /// of sequence.
    pub fn is_frame(&self) -> bool {
        match self.kind {
            AUDIO | VIDEO => self.packet_type().is_none_or(|t| t == 1),
            _ => false,
        }
    }

    /// The AVC or AAC packet type; `None` for codecs without one.
    fn packet_type(&self) -> Option<u8> {
        let first = *self.body.first()?;
        let has_packet_type = match self.kind {
            VIDEO => first & 0x0f == AVC_CODEC_ID,
            AUDIO => first >> 4 == AAC_FORMAT,
            _ => false,
        };
        if has_packet_type {
            self.body.get(1).copied()
        } else {
            None
        }
    }

    /// Presentation time (ms): the timestamp, plus an AVC picture's
    /// composition time.
    pub fn pts(&self) -> u32 {
        match (self.kind, self.body.as_slice()) {
            (VIDEO, [first, 1, c0, c1, c2, ..]) if first & 0x0f == AVC_CODEC_ID => {
                let cts = (i32::from_be_bytes([0, *c0, *c1, *c2]) << 8) >> 8;
                self.timestamp.saturating_add_signed(cts)
            }
            _ => self.timestamp,
        }
    }

    /// A video keyframe carrying a picture: frame type 1, AVC packet type 1
    /// (not the sequence header nor the end of sequence).
    pub fn is_keyframe(&self) -> bool {
        self.kind == VIDEO && self.body.first().is_some_and(|b| b >> 4 == 1) && self.body.get(1) == Some(&1)
    }
}

/// The FLV file header (audio and video flags set) and the first
/// PreviousTagSize: what every stream starts with.
pub fn header() -> Vec<u8> {
    b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec()
}

/// Appends one tag with its trailing PreviousTagSize.
pub fn write_tag(out: &mut Vec<u8>, tag: &FlvTag) {
    let size = (tag.body.len() as u32).to_be_bytes();
    let ts = tag.timestamp.to_be_bytes();
    out.extend_from_slice(&[
        tag.kind, size[1], size[2], size[3], ts[1], ts[2], ts[3], ts[0], 0, 0, 0,
    ]);
    out.extend_from_slice(&tag.body);
    out.extend_from_slice(&((TAG_HEADER + tag.body.len()) as u32).to_be_bytes());
}

/// Every tag of an FLV file, in file order. `None` if not FLV.
pub fn read_tags(flv: &[u8]) -> Option<Vec<FlvTag>> {
    tags(flv)?
        .into_iter()
        .map(|(offset, timestamp)| {
            let size = u32::from_be_bytes([0, flv[offset + 1], flv[offset + 2], flv[offset + 3]]) as usize;
            let body = flv.get(offset + TAG_HEADER..offset + TAG_HEADER + size)?;
            Some(FlvTag {
                kind: flv[offset] & 0x1F,
                timestamp,
                body: body.to_vec(),
            })
        })
        .collect()
}

/// Timestamp (ms) of the first video keyframe at or after `ms`: where a
/// restarted publisher can resume without repeating or losing a picture.
pub fn keyframe_at_or_after(flv: &[u8], ms: u32) -> Option<u32> {
    read_tags(flv)?
        .into_iter()
        .find(|t| t.is_keyframe() && t.timestamp >= ms)
        .map(|t| t.timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(kind: u8, ms: u32, body: &[u8]) -> Vec<u8> {
        let mut t = Vec::new();
        write_tag(
            &mut t,
            &FlvTag {
                kind,
                timestamp: ms,
                body: body.to_vec(),
            },
        );
        t
    }

    #[test]
    fn a_picture_is_shown_at_its_timestamp_plus_its_composition_time() {
        let picture = |ms, cts: [u8; 3]| FlvTag {
            kind: VIDEO,
            timestamp: ms,
            body: vec![0x27, 1, cts[0], cts[1], cts[2], 0x41],
        };
        assert_eq!(picture(1000, [0, 0, 66]).pts(), 1066);
        assert_eq!(picture(1066, [0xff, 0xff, 0xdf]).pts(), 1033, "negative");
        let audio = FlvTag {
            kind: AUDIO,
            timestamp: 1021,
            body: vec![0xaf, 1, 0x21],
        };
        assert_eq!(audio.pts(), 1021);
    }

    #[test]
    fn reads_tags_back_as_written() {
        let written = [
            FlvTag {
                kind: VIDEO,
                timestamp: 0,
                body: vec![1, 2, 3],
            },
            FlvTag {
                kind: AUDIO,
                timestamp: 0x0100_0005,
                body: vec![4],
            },
        ];
        let mut file = header();
        for t in &written {
            write_tag(&mut file, t);
        }
        assert_eq!(read_tags(&file).unwrap(), written);
        assert_eq!(tags(&file).unwrap()[1].1, 0x0100_0005, "extended timestamp byte");
        assert_eq!(tags(b"not flv at all"), None);
        let mut with_keys = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        with_keys.extend(tag(9, 0, &[0x17, 0, 0]));
        with_keys.extend(tag(9, 0, &[0x17, 1, 0]));
        with_keys.extend(tag(9, 40, &[0x27, 1, 0]));
        with_keys.extend(tag(9, 2021, &[0x17, 1, 0]));
        assert_eq!(keyframe_at_or_after(&with_keys, 1), Some(2021));
        assert_eq!(keyframe_at_or_after(&with_keys, 0), Some(0));
        assert_eq!(keyframe_at_or_after(&with_keys, 2022), None);
        let end_of_sequence = FlvTag {
            kind: VIDEO,
            timestamp: 0,
            body: vec![0x17, 2, 0, 0, 0],
        };
        assert!(!end_of_sequence.is_frame() && !end_of_sequence.is_sequence_header());
        let mp3 = FlvTag {
            kind: AUDIO,
            timestamp: 0,
            body: vec![0x2f, 0],
        };
        assert!(mp3.is_frame());
    }
}
