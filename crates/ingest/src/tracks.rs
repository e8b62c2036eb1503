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
    /// A human name for the codec, e.g. "MP3" or "Sorenson Spark (FLV1)".
    pub fn codec_name(&self) -> String {
        let named = match (self.media_type.as_str(), self.mpegversion, self.layer) {
            ("video/x-h264", ..) => "H.264",
            ("video/x-h265", ..) => "H.265",
            ("video/x-av1", ..) => "AV1",
            ("video/x-vp9", ..) => "VP9",
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
            media_type: media_type.to_owned(),
            ..TrackCaps::default()
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

    #[rstest]
    #[case("video/x-h264", None, None, "H.264")]
    #[case("video/x-h265", None, None, "H.265")]
    #[case("video/x-av1", None, None, "AV1")]
    #[case("video/x-vp9", None, None, "VP9")]
    #[case("video/x-flash-video", None, None, "Sorenson Spark (FLV1)")]
    #[case("video/x-vp6-flash", None, None, "On2 VP6")]
    #[case("video/x-vp6-alpha", None, None, "On2 VP6 with alpha")]
    #[case("video/x-flash-screen", None, None, "Flash Screen Video")]
    #[case("audio/mpeg", Some(4), None, "AAC")]
    #[case("audio/mpeg", Some(2), None, "AAC")]
    #[case("audio/mpeg", Some(1), Some(3), "MP3")]
    #[case("audio/mpeg", Some(1), Some(2), "MPEG-1 audio")]
    #[case("audio/mpeg", Some(1), None, "MPEG-1 audio")]
    #[case("audio/mpeg", None, None, "unknown (audio/mpeg)")]
    #[case("audio/x-nellymoser", None, None, "Nellymoser")]
    #[case("audio/x-speex", None, None, "Speex")]
    #[case("audio/x-raw", None, None, "PCM")]
    #[case("audio/x-alaw", None, None, "G.711 A-law")]
    #[case("audio/x-mulaw", None, None, "G.711 mu-law")]
    fn names_every_codec_flv_can_carry(
        #[case] media_type: &str,
        #[case] mpegversion: Option<i32>,
        #[case] layer: Option<i32>,
        #[case] name: &str,
    ) {
        assert_eq!(caps(media_type, mpegversion, layer).codec_name(), name);
    }

    #[rstest]
    #[case(
        MediaKind::Video,
        caps("audio/mpeg", Some(4), None),
        "found AAC, but H.264 (video/x-h264)"
    )]
    #[case(
        MediaKind::Audio,
        caps("video/x-h264", None, None),
        "found H.264, but AAC (audio/mpeg, mpegversion 4)"
    )]
    #[case(
        MediaKind::Audio,
        caps("audio/mpeg", None, None),
        "found unknown (audio/mpeg), but AAC"
    )]
    fn a_codec_is_judged_for_the_track_it_arrives_on(
        #[case] kind: MediaKind,
        #[case] caps: TrackCaps,
        #[case] message: &str,
    ) {
        let error = check(kind, &caps).unwrap_err();
        assert!(error.to_string().contains(message), "{error}");
    }

    #[test]
    fn identity_is_the_codec_not_its_parameters() {
        let aac = TrackCaps {
            rate: Some(44_100),
            channels: Some(2),
            ..caps("audio/mpeg", Some(4), None)
        };
        assert_eq!(aac.identity(), ("audio/mpeg".to_owned(), Some(4)));
        // A new sample rate or channel count is the same codec...
        let resampled = TrackCaps {
            rate: Some(48_000),
            channels: Some(1),
            ..aac.clone()
        };
        assert_eq!(resampled.identity(), aac.identity());
        // ...a new MPEG version is not.
        assert_ne!(caps("audio/mpeg", Some(2), None).identity(), aac.identity());
        assert_eq!(
            caps("video/x-h264", None, None).identity(),
            ("video/x-h264".to_owned(), None)
        );
    }
}
