//! What happens between a publisher's `publish` and its path becoming
//! readable: MediaMTX (gortmplib's reader) reads the publisher's messages
//! until one carries a timestamp at least [`ANALYZE_PERIOD_MS`] after the
//! first audio or video message (sequence headers included), learning the
//! tracks from the sequence headers on the way. It never stops earlier,
//! even once both tracks are known, and it ignores `onMetaData`. Everything
//! read is kept and replayed into the stream once the path exists; readers
//! cannot exist before, so they never see it.
//!
//! MediaMTX keeps that buffer without a limit; here it is capped
//! ([`ANALYSIS_BUFFER_LIMIT`]), so a publisher that sends without advancing
//! its clock cannot take the server's memory.

use crate::media::h264;
use crate::media::tracks::{AudioTrack, Tracks, VideoTrack, other_audio_codec};
use crate::media::{AUDIO_FORMAT_AAC, AVC_PACKET_CONFIG, Tag, TagKind, VIDEO_CODEC_AVC};

/// gortmplib's `analyzePeriod`.
pub(crate) const ANALYZE_PERIOD_MS: i64 = 2000;
/// Bytes of media kept while analysing (ours; MediaMTX has no limit).
pub(crate) const ANALYSIS_BUFFER_LIMIT: usize = 32 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AnalysisError {
    #[error("no tracks found")]
    NoTracks,
    #[error("the publisher sent more than {limit} bytes before 2 s of media")]
    TooMuchData { limit: usize },
}

#[derive(Debug, Default)]
pub(crate) struct Analysis {
    tags: Vec<Tag>,
    bytes: usize,
    first: Option<i64>,
    tracks: Tracks,
}

/// What the analysis found: the tracks and everything read meanwhile.
#[derive(Debug)]
pub(crate) struct Analysed {
    pub tracks: Tracks,
    pub tags: Vec<Tag>,
}

impl Analysis {
    /// Takes one message; `Some` once the analysis period is covered.
    pub fn push(&mut self, tag: Tag) -> Result<Option<Analysed>, AnalysisError> {
        self.bytes += tag.body.len();
        if self.bytes > ANALYSIS_BUFFER_LIMIT {
            return Err(AnalysisError::TooMuchData {
                limit: ANALYSIS_BUFFER_LIMIT,
            });
        }
        let clocked = self.learn(&tag);
        let timestamp = i64::from(tag.timestamp);
        self.tags.push(tag);
        if !clocked {
            return Ok(None);
        }
        let first = *self.first.get_or_insert(timestamp);
        if timestamp - first < ANALYZE_PERIOD_MS {
            return Ok(None);
        }
        if self.tracks.is_empty() {
            return Err(AnalysisError::NoTracks);
        }
        Ok(Some(Analysed {
            tracks: std::mem::take(&mut self.tracks),
            tags: std::mem::take(&mut self.tags),
        }))
    }

    /// Learns tracks from `tag`; whether it counts for the analysis clock.
    fn learn(&mut self, tag: &Tag) -> bool {
        match tag.kind {
            TagKind::Data => false,
            TagKind::Video => {
                if tag.is_enhanced_video() || tag.is_video_command() {
                    return false;
                }
                if tag.video_codec() == Some(VIDEO_CODEC_AVC)
                    && tag.avc_packet_type() == Some(AVC_PACKET_CONFIG)
                    && self.tracks.video.is_none()
                    && let Ok((sps, pps)) = h264::parse_avc_config(tag.body.get(5..).unwrap_or_default())
                {
                    self.tracks.video = Some(VideoTrack::new(sps, pps));
                }
                true
            }
            TagKind::Audio => {
                let Some(format) = tag.audio_format() else {
                    return false;
                };
                if format == 0 {
                    return false;
                }
                if self.tracks.audio.is_none() {
                    if format == AUDIO_FORMAT_AAC {
                        if tag.aac_packet_type() == Some(0) && tag.body.len() > 2 {
                            self.tracks.audio = Some(AudioTrack::aac(tag.body.slice(2..)));
                        }
                    } else if let Some(codec) = other_audio_codec(format) {
                        self.tracks.audio = Some(AudioTrack::Other {
                            codec,
                            flv_format: format,
                        });
                    }
                }
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    use crate::media::h264::tests::SPS_720P;

    fn tag(kind: TagKind, timestamp: u32, body: Bytes) -> Tag {
        Tag {
            kind,
            timestamp,
            body,
        }
    }

    fn aac_header_body() -> Bytes {
        Bytes::from_static(&[0xaf, 0, 0x11, 0x90])
    }

    fn avc_header() -> Bytes {
        let mut body = vec![0x17, 0, 0, 0, 0];
        body.extend_from_slice(&h264::avc_config(SPS_720P, &[0x68, 0xef, 0x3c, 0xb0]));
        Bytes::from(body)
    }

    fn frames(analysis: &mut Analysis, from_ms: u32, to_ms: u32) -> Option<Analysed> {
        let mut done = None;
        for ts in (from_ms..to_ms).step_by(20) {
            let video = tag(TagKind::Video, ts, Bytes::from_static(&[0x27, 1, 0, 0, 0]));
            if let Some(found) = analysis.push(video).unwrap() {
                done = Some(found);
                break;
            }
        }
        done
    }

    #[test]
    fn ready_at_two_seconds_of_timestamps_not_earlier() {
        let mut analysis = Analysis::default();
        assert!(
            analysis
                .push(tag(TagKind::Data, 0, Bytes::from_static(b"meta")))
                .unwrap()
                .is_none()
        );
        assert!(
            analysis
                .push(tag(TagKind::Video, 0, avc_header()))
                .unwrap()
                .is_none()
        );
        assert!(
            analysis
                .push(tag(TagKind::Audio, 0, aac_header_body()))
                .unwrap()
                .is_none()
        );
        // Both tracks are known, yet one second of media is not enough.
        assert!(frames(&mut analysis, 20, 1000).is_none());
        let found = frames(&mut analysis, 1000, 3000).expect("ready");
        assert_eq!(found.tracks.codecs(), ["H264", "MPEG-4 Audio"]);
        assert_eq!(found.tags.last().unwrap().timestamp, 2000);
        assert_eq!(
            found.tags.len(),
            3 + 100,
            "everything read is kept for the replay"
        );
    }

    #[test]
    fn the_clock_starts_at_the_first_audio_or_video_message() {
        let mut analysis = Analysis::default();
        analysis
            .push(tag(TagKind::Data, 0, Bytes::from_static(b"meta")))
            .unwrap();
        analysis.push(tag(TagKind::Video, 5000, avc_header())).unwrap();
        assert!(frames(&mut analysis, 5000, 6990).is_none());
        assert!(frames(&mut analysis, 7000, 7020).is_some());
    }

    #[test]
    fn one_track_is_enough_and_none_is_refused() {
        let mut audio_only = Analysis::default();
        audio_only
            .push(tag(TagKind::Audio, 0, aac_header_body()))
            .unwrap();
        let found = audio_only
            .push(tag(TagKind::Audio, 2000, Bytes::from_static(&[0xaf, 1, 0])))
            .unwrap()
            .unwrap();
        assert_eq!(found.tracks.codecs(), ["MPEG-4 Audio"]);

        let mut nothing = Analysis::default();
        assert!(frames(&mut nothing, 0, 1990).is_none());
        let refused = nothing.push(tag(TagKind::Video, 2000, Bytes::from_static(&[0x27, 1, 0, 0, 0])));
        assert_eq!(refused.unwrap_err(), AnalysisError::NoTracks);
    }

    #[test]
    fn mp3_is_a_track_from_its_first_frame() {
        let mut analysis = Analysis::default();
        analysis
            .push(tag(TagKind::Audio, 0, Bytes::from_static(&[0x2f, 0xff])))
            .unwrap();
        let found = analysis
            .push(tag(TagKind::Audio, 2100, Bytes::from_static(&[0x2f, 0xff])))
            .unwrap()
            .unwrap();
        assert_eq!(found.tracks.codecs(), ["MPEG-1/2 Audio"]);
    }

    #[test]
    fn a_clock_that_never_advances_cannot_take_the_memory() {
        let mut analysis = Analysis::default();
        let big = Bytes::from(vec![0u8; 1 << 20]);
        let result = (0..64).try_for_each(|_| analysis.push(tag(TagKind::Audio, 0, big.clone())).map(drop));
        assert!(matches!(result, Err(AnalysisError::TooMuchData { .. })));
    }
}
