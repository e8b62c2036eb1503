//! Track validation: which codecs flvdemux found, and whether we serve them.

use crate::error::StreamError;
use crate::media::MediaKind;

pub const REQUIRED_VIDEO: &str = "H.264 (video/x-h264)";
pub const REQUIRED_AUDIO: &str = "AAC (audio/mpeg, mpegversion 4)";

/// The facts of a pad's caps that decide whether we can serve the track.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrackCaps {
    pub media_type: String,
    pub mpegversion: Option<i32>,
    pub layer: Option<i32>,
    pub rate: Option<i32>,
    pub channels: Option<i32>,
}

impl TrackCaps {
    pub fn new(media_type: &str) -> Self {
        Self {
            media_type: media_type.to_owned(),
            ..Self::default()
        }
    }

    /// A human name for the codec, e.g. "MP3" or "Sorenson Spark (FLV1)".
    pub fn codec_name(&self) -> String {
        let named = match (self.media_type.as_str(), self.mpegversion, self.layer) {
            ("video/x-h264", ..) => "H.264",
            ("video/x-h265", ..) => "H.265",
            ("video/x-flash-video", ..) => "Sorenson Spark (FLV1)",
            ("video/x-vp6-flash", ..) => "On2 VP6",
            ("video/x-vp6-alpha", ..) => "On2 VP6 with alpha",
            ("video/x-flash-screen", ..) => "Flash Screen Video",
            ("audio/mpeg", Some(2 | 4), _) => "AAC",
            ("audio/mpeg", Some(1), Some(3)) => "MP3",
            ("audio/mpeg", Some(1), _) => "MPEG-1 audio",
            ("audio/x-nellymoser", ..) => "Nellymoser",
            ("audio/x-speex", ..) => "Speex",
            ("audio/x-raw", ..) => "PCM",
            ("audio/x-alaw", ..) => "G.711 A-law",
            ("audio/x-mulaw", ..) => "G.711 mu-law",
            _ => return format!("unknown ({})", self.media_type),
        };
        named.to_owned()
    }

    /// What must stay the same for the rest of the stream.
    pub fn identity(&self) -> (String, Option<i32>) {
        (self.media_type.clone(), self.mpegversion)
    }
}

/// Accepts H.264 video and AAC audio; refuses anything else, naming both
/// what was found and what is required.
pub fn check(kind: MediaKind, caps: &TrackCaps) -> Result<(), StreamError> {
    let acceptable = match kind {
        MediaKind::Video => caps.media_type == "video/x-h264",
        MediaKind::Audio => caps.media_type == "audio/mpeg" && matches!(caps.mpegversion, Some(2 | 4)),
    };
    if acceptable {
        return Ok(());
    }
    Err(StreamError::UnsupportedCodec {
        kind,
        found: caps.codec_name(),
        required: match kind {
            MediaKind::Video => REQUIRED_VIDEO,
            MediaKind::Audio => REQUIRED_AUDIO,
        },
    })
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn caps(media_type: &str, mpegversion: Option<i32>, layer: Option<i32>) -> TrackCaps {
        TrackCaps {
            mpegversion,
            layer,
            ..TrackCaps::new(media_type)
        }
    }

    #[rstest]
    #[case(MediaKind::Video, caps("video/x-h264", None, None))]
    #[case(MediaKind::Audio, caps("audio/mpeg", Some(4), None))]
    #[case(MediaKind::Audio, caps("audio/mpeg", Some(2), None))]
    fn accepts_h264_and_aac(#[case] kind: MediaKind, #[case] caps: TrackCaps) {
        check(kind, &caps).unwrap();
    }

    #[rstest]
    #[case(MediaKind::Audio, caps("audio/mpeg", Some(1), Some(3)), "found MP3", "AAC")]
    #[case(MediaKind::Audio, caps("audio/x-speex", None, None), "found Speex", "AAC")]
    #[case(MediaKind::Video, caps("video/x-flash-video", None, None), "FLV1", "H.264")]
    #[case(MediaKind::Video, caps("video/x-vp6-flash", None, None), "VP6", "H.264")]
    #[case(
        MediaKind::Video,
        caps("video/x-something", None, None),
        "unknown (video/x-something)",
        "H.264"
    )]
    fn refuses_other_codecs_naming_both(
        #[case] kind: MediaKind,
        #[case] caps: TrackCaps,
        #[case] found: &str,
        #[case] required: &str,
    ) {
        let message = check(kind, &caps).unwrap_err().to_string();
        assert!(message.contains(found), "{message}");
        assert!(message.contains(required), "{message}");
        assert!(message.contains(kind.as_str()), "{message}");
    }
}
