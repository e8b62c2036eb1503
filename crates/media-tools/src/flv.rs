//! Just enough FLV to split a file at a tag boundary: a fast-paced publish
//! hands ffmpeg the start of a fixture, waits until the ingest is connected,
//! then sends the rest at full speed.

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

impl FlvTag {
    /// An AVC or AAC sequence header (packet type 0): configuration, not
    /// a frame.
    pub fn is_sequence_header(&self) -> bool {
        self.body.get(1) == Some(&0)
    }

    /// An audio or video frame, not configuration or metadata.
    pub fn is_frame(&self) -> bool {
        (self.kind == AUDIO || self.kind == VIDEO) && !self.is_sequence_header()
    }

    /// A video keyframe carrying a picture: frame type 1, AVC packet type 1
    /// (not the sequence header nor the end of sequence).
    pub fn is_keyframe(&self) -> bool {
        self.kind == VIDEO && self.body.first().is_some_and(|b| b >> 4 == 1) && self.body.get(1) == Some(&1)
    }
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

/// Byte offset, in a file of `len` bytes with these `tags`, of the first
/// tag whose timestamp is at or after `ms` (`len` if there is none).
pub fn offset_at(tags: &[(usize, u32)], ms: u32, len: usize) -> usize {
    tags.iter()
        .find(|(_, ts)| *ts >= ms)
        .map_or(len, |(offset, _)| *offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(kind: u8, ms: u32, body: &[u8]) -> Vec<u8> {
        let size = (body.len() as u32).to_be_bytes();
        let ts = ms.to_be_bytes();
        let mut t = vec![
            kind, size[1], size[2], size[3], ts[1], ts[2], ts[3], ts[0], 0, 0, 0,
        ];
        t.extend_from_slice(body);
        t.extend_from_slice(&((TAG_HEADER + body.len()) as u32).to_be_bytes());
        t
    }

    #[test]
    fn finds_the_first_tag_at_or_after_a_time() {
        let mut file = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        let first = file.len();
        file.extend(tag(9, 0, &[1, 2, 3]));
        let second = file.len();
        file.extend(tag(8, 500, &[4]));
        let third = file.len();
        file.extend(tag(9, 1000, &[5, 6]));
        let found = tags(&file).unwrap();
        assert_eq!(found, [(first, 0), (second, 500), (third, 1000)]);
        assert_eq!(offset_at(&found, 0, file.len()), first);
        assert_eq!(offset_at(&found, 1, file.len()), second);
        assert_eq!(offset_at(&found, 600, file.len()), third);
        assert_eq!(offset_at(&found, 5000, file.len()), file.len());
        assert_eq!(tags(b"not flv at all"), None);
        let mut with_keys = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        with_keys.extend(tag(9, 0, &[0x17, 0, 0]));
        with_keys.extend(tag(9, 0, &[0x17, 1, 0]));
        with_keys.extend(tag(9, 40, &[0x27, 1, 0]));
        with_keys.extend(tag(9, 2021, &[0x17, 1, 0]));
        assert_eq!(keyframe_at_or_after(&with_keys, 1), Some(2021));
        assert_eq!(keyframe_at_or_after(&with_keys, 0), Some(0));
        assert_eq!(keyframe_at_or_after(&with_keys, 2022), None);
    }
}
