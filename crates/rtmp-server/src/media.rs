//! What the relay needs to know about an FLV audio/video tag body, read from
//! its first bytes only: the payload itself is forwarded untouched.

use bytes::Bytes;

/// RTMP message type ids for the three kinds of messages the relay forwards.
pub(crate) const AUDIO_MESSAGE_TYPE: u8 = 8;
pub(crate) const VIDEO_MESSAGE_TYPE: u8 = 9;
pub(crate) const DATA_MESSAGE_TYPE: u8 = 18;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameKind {
    Video,
    Audio,
    /// `onMetaData` script data (already stripped of `@setDataFrame`).
    Metadata,
}

/// One relayed message. `payload` is shared (reference counted) between the
/// publisher, the GOP cache and every reader queue, so fan-out never copies.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    pub kind: FrameKind,
    pub timestamp: u32,
    pub payload: Bytes,
}

impl Frame {
    pub fn message_type(&self) -> u8 {
        match self.kind {
            FrameKind::Video => VIDEO_MESSAGE_TYPE,
            FrameKind::Audio => AUDIO_MESSAGE_TYPE,
            FrameKind::Metadata => DATA_MESSAGE_TYPE,
        }
    }

    /// Decoder configuration (AVC/HEVC sequence header, AAC AudioSpecificConfig).
    /// Late joiners need the latest one before any media.
    pub fn is_sequence_header(&self) -> bool {
        match self.kind {
            FrameKind::Video => video_is_sequence_header(&self.payload),
            FrameKind::Audio => audio_is_sequence_header(&self.payload),
            FrameKind::Metadata => false,
        }
    }

    /// A video frame a decoder can start from.
    pub fn is_keyframe(&self) -> bool {
        self.kind == FrameKind::Video
            && !self.is_sequence_header()
            && video_frame_type(&self.payload) == Some(1)
    }
}

/// Enhanced RTMP (v1/v2) sets the top bit of the first video byte; the frame
/// type then lives in bits 4..6 and the low nibble is a packet type.
const VIDEO_EX_HEADER_BIT: u8 = 0x80;
const VIDEO_CODEC_AVC: u8 = 7;
const VIDEO_CODEC_HEVC_LEGACY: u8 = 12;
const AUDIO_FORMAT_AAC: u8 = 10;

fn video_frame_type(payload: &[u8]) -> Option<u8> {
    let first = *payload.first()?;
    if first & VIDEO_EX_HEADER_BIT != 0 {
        Some((first >> 4) & 0x07)
    } else {
        Some(first >> 4)
    }
}

fn video_is_sequence_header(payload: &[u8]) -> bool {
    match payload {
        [first, ..] if first & VIDEO_EX_HEADER_BIT != 0 => first & 0x0f == 0,
        [first, packet_type, ..] => {
            matches!(first & 0x0f, VIDEO_CODEC_AVC | VIDEO_CODEC_HEVC_LEGACY) && *packet_type == 0
        }
        _ => false,
    }
}

fn audio_is_sequence_header(payload: &[u8]) -> bool {
    matches!(payload, [first, 0, ..] if first >> 4 == AUDIO_FORMAT_AAC)
}

/// Codec name in MediaMTX's wording, for log lines and `PathInfo::tracks`.
pub(crate) fn codec_name(kind: FrameKind, payload: &[u8]) -> Option<&'static str> {
    let first = *payload.first()?;
    match kind {
        FrameKind::Video if first & VIDEO_EX_HEADER_BIT != 0 => {
            let fourcc = payload.get(1..5)?;
            Some(match fourcc {
                b"hvc1" => "H265",
                b"av01" => "AV1",
                b"vp09" => "VP9",
                b"avc1" => "H264",
                _ => "unknown video",
            })
        }
        FrameKind::Video => Some(match first & 0x0f {
            VIDEO_CODEC_AVC => "H264",
            VIDEO_CODEC_HEVC_LEGACY => "H265",
            2 => "H263",
            _ => "unknown video",
        }),
        FrameKind::Audio => Some(match first >> 4 {
            AUDIO_FORMAT_AAC => "MPEG-4 Audio",
            2 | 14 => "MPEG-1/2 Audio",
            7 => "G711",
            8 => "G711",
            0 | 3 => "LPCM",
            _ => "unknown audio",
        }),
        FrameKind::Metadata => None,
    }
}

/// `@setDataFrame` as AMF0 string: marker 0x02, u16 length 13, then the text.
const SET_DATA_FRAME_PREFIX: &[u8] = b"\x02\x00\x0d@setDataFrame";
/// `onMetaData` as AMF0 string.
const ON_METADATA_PREFIX: &[u8] = b"\x02\x00\x0aonMetaData";

/// Publishers send `@setDataFrame("onMetaData", {...})`; readers expect
/// `onMetaData({...})`. Returns the reader-ready body (a zero-copy slice) or
/// `None` for script data that is not stream metadata. Forwarding the raw
/// bytes keeps every property and the ECMA-array encoding ffmpeg writes.
pub(crate) fn metadata_body(payload: &Bytes) -> Option<Bytes> {
    let body = if payload.starts_with(SET_DATA_FRAME_PREFIX) {
        payload.slice(SET_DATA_FRAME_PREFIX.len()..)
    } else {
        payload.clone()
    };
    body.starts_with(ON_METADATA_PREFIX).then_some(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn frame(kind: FrameKind, bytes: &[u8]) -> Frame {
        Frame {
            kind,
            timestamp: 0,
            payload: Bytes::copy_from_slice(bytes),
        }
    }

    #[rstest]
    #[case::avc_sequence_header(FrameKind::Video, &[0x17, 0x00, 0, 0, 0], true, false)]
    #[case::avc_keyframe(FrameKind::Video, &[0x17, 0x01, 0, 0, 0], false, true)]
    #[case::avc_inter_frame(FrameKind::Video, &[0x27, 0x01, 0, 0, 0], false, false)]
    #[case::enhanced_hevc_sequence_start(FrameKind::Video, &[0x90, b'h', b'v', b'c', b'1'], true, false)]
    #[case::enhanced_hevc_keyframe(FrameKind::Video, &[0x91, b'h', b'v', b'c', b'1'], false, true)]
    #[case::aac_sequence_header(FrameKind::Audio, &[0xaf, 0x00, 0x12, 0x10], true, false)]
    #[case::aac_raw(FrameKind::Audio, &[0xaf, 0x01, 0x21], false, false)]
    #[case::mp3_is_never_a_header(FrameKind::Audio, &[0x2f, 0x00], false, false)]
    #[case::empty_video(FrameKind::Video, &[], false, false)]
    fn classifies_tags(
        #[case] kind: FrameKind,
        #[case] bytes: &[u8],
        #[case] sequence_header: bool,
        #[case] keyframe: bool,
    ) {
        let f = frame(kind, bytes);
        assert_eq!(f.is_sequence_header(), sequence_header);
        assert_eq!(f.is_keyframe(), keyframe);
    }

    #[rstest]
    #[case(FrameKind::Video, &[0x17, 0x00], Some("H264"))]
    #[case(FrameKind::Video, &[0x90, b'h', b'v', b'c', b'1'], Some("H265"))]
    #[case(FrameKind::Audio, &[0xaf, 0x00], Some("MPEG-4 Audio"))]
    #[case(FrameKind::Audio, &[], None)]
    fn names_codecs(#[case] kind: FrameKind, #[case] bytes: &[u8], #[case] name: Option<&str>) {
        assert_eq!(codec_name(kind, bytes), name);
    }

    #[test]
    fn strips_set_data_frame() {
        let mut raw = SET_DATA_FRAME_PREFIX.to_vec();
        raw.extend_from_slice(ON_METADATA_PREFIX);
        raw.extend_from_slice(&[0x08, 0, 0, 0, 0, 0, 0, 9]);
        let body = metadata_body(&Bytes::from(raw)).expect("metadata");
        assert!(body.starts_with(ON_METADATA_PREFIX));
        assert_eq!(body.len(), ON_METADATA_PREFIX.len() + 8);
    }

    #[test]
    fn ignores_other_script_data() {
        let raw = Bytes::from_static(b"\x02\x00\x04onXY");
        assert!(metadata_body(&raw).is_none());
    }
}
