//! One audio, video or data message as a publisher sends it (the body of
//! an FLV tag), and what its first bytes say.

use bytes::Bytes;

/// RTMP message type ids of the messages a stream is made of.
pub(crate) const AUDIO_MESSAGE_TYPE: u8 = 8;
pub(crate) const VIDEO_MESSAGE_TYPE: u8 = 9;
pub(crate) const DATA_MESSAGE_TYPE: u8 = 18;

pub(crate) const VIDEO_CODEC_AVC: u8 = 7;
pub(crate) const AVC_PACKET_CONFIG: u8 = 0;
pub(crate) const AVC_PACKET_NALU: u8 = 1;
const VIDEO_FRAME_KEY: u8 = 1;
const VIDEO_FRAME_INTER: u8 = 2;
/// Frame type 5: a command frame, carrying no picture.
const VIDEO_FRAME_COMMAND: u8 = 5;
/// Enhanced RTMP sets this bit of the first video byte.
const VIDEO_EX_HEADER: u8 = 0x80;

pub(crate) const AUDIO_FORMAT_MP3: u8 = 2;
pub(crate) const AUDIO_FORMAT_AAC: u8 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TagKind {
    Audio,
    Video,
    /// Script data such as `@setDataFrame`/`onMetaData`.
    Data,
}

impl TagKind {
    pub fn from_message_type(type_id: u8) -> Option<Self> {
        match type_id {
            AUDIO_MESSAGE_TYPE => Some(Self::Audio),
            VIDEO_MESSAGE_TYPE => Some(Self::Video),
            DATA_MESSAGE_TYPE => Some(Self::Data),
            _ => None,
        }
    }

    pub fn message_type(self) -> u8 {
        match self {
            Self::Audio => AUDIO_MESSAGE_TYPE,
            Self::Video => VIDEO_MESSAGE_TYPE,
            Self::Data => DATA_MESSAGE_TYPE,
        }
    }
}

/// A message of the stream, its body shared (reference counted), never copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tag {
    pub kind: TagKind,
    /// Milliseconds (the RTMP timestamp: DTS for video).
    pub timestamp: u32,
    pub body: Bytes,
}

impl Tag {
    /// Legacy (non-enhanced) video codec id, e.g. 7 for AVC.
    pub fn video_codec(&self) -> Option<u8> {
        match self.body.first() {
            Some(b) if self.kind == TagKind::Video && b & VIDEO_EX_HEADER == 0 => Some(b & 0x0f),
            _ => None,
        }
    }

    pub fn is_enhanced_video(&self) -> bool {
        self.kind == TagKind::Video && self.body.first().is_some_and(|b| b & VIDEO_EX_HEADER != 0)
    }

    pub fn is_video_command(&self) -> bool {
        self.video_codec().is_some() && self.body[0] >> 4 == VIDEO_FRAME_COMMAND
    }

    /// AVC packet type (0 configuration, 1 NAL units, 2 end of sequence).
    pub fn avc_packet_type(&self) -> Option<u8> {
        (self.video_codec() == Some(VIDEO_CODEC_AVC)).then(|| self.body.get(1).copied())?
    }

    /// The composition time offset (PTS - DTS) in ms of an AVC tag.
    pub fn composition_time(&self) -> i32 {
        match self.body.get(2..5) {
            Some(&[a, b, c]) => (i32::from_be_bytes([a, b, c, 0])) >> 8,
            _ => 0,
        }
    }

    pub fn audio_format(&self) -> Option<u8> {
        match self.body.first() {
            Some(b) if self.kind == TagKind::Audio => Some(b >> 4),
            _ => None,
        }
    }

    /// AAC packet type (0 AudioSpecificConfig, 1 raw frame).
    pub fn aac_packet_type(&self) -> Option<u8> {
        (self.audio_format() == Some(AUDIO_FORMAT_AAC)).then(|| self.body.get(1).copied())?
    }
}

/// The first byte of a legacy AVC video tag: key or inter frame, codec 7.
pub(crate) fn avc_first_byte(keyframe: bool) -> u8 {
    let frame_type = if keyframe {
        VIDEO_FRAME_KEY
    } else {
        VIDEO_FRAME_INTER
    };
    frame_type << 4 | VIDEO_CODEC_AVC
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(kind: TagKind, body: &'static [u8]) -> Tag {
        Tag {
            kind,
            timestamp: 0,
            body: Bytes::from_static(body),
        }
    }

    #[test]
    fn reads_signed_composition_times() {
        assert_eq!(tag(TagKind::Video, &[0x27, 1, 0, 0, 67]).composition_time(), 67);
        assert_eq!(
            tag(TagKind::Video, &[0x27, 1, 0xff, 0xff, 0xfe]).composition_time(),
            -2
        );
        assert_eq!(tag(TagKind::Video, &[0x27]).composition_time(), 0);
    }

    #[test]
    fn knows_codecs_and_commands() {
        assert_eq!(tag(TagKind::Video, &[0x17, 1]).video_codec(), Some(7));
        assert!(tag(TagKind::Video, &[0x57, 0]).is_video_command());
        assert!(tag(TagKind::Video, &[0x90, b'h']).is_enhanced_video());
        assert_eq!(tag(TagKind::Video, &[0x90, b'h']).video_codec(), None);
        assert_eq!(
            tag(TagKind::Audio, &[0x2f]).audio_format(),
            Some(AUDIO_FORMAT_MP3)
        );
        assert_eq!(avc_first_byte(true), 0x17);
        assert_eq!(avc_first_byte(false), 0x27);
    }
}
