//! Typed media buffers handed from GStreamer's streaming threads to the
//! segmenting logic.

use std::fmt;
use std::time::Instant;

use bytes::Bytes;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Video,
    Audio,
}

impl MediaKind {
    pub const ALL: [MediaKind; 2] = [MediaKind::Video, MediaKind::Audio];

    /// Position in per-track arrays: video 0, audio 1.
    pub fn index(self) -> usize {
        match self {
            Self::Video => 0,
            Self::Audio => 1,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Video => "video",
            Self::Audio => "audio",
        }
    }
}

impl fmt::Display for MediaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One access unit (an H.264 picture in Annex-B form, or one ADTS AAC frame).
/// Timestamps are nanoseconds on the stream's own clock.
#[derive(Debug, Clone)]
pub struct MediaBuffer {
    pub kind: MediaKind,
    pub data: Bytes,
    pub pts: Option<u64>,
    pub dts: Option<u64>,
    pub duration: Option<u64>,
    pub keyframe: bool,
    /// When the RTMP bytes carrying this buffer left the source element.
    pub arrival: Instant,
}
