//! The publisher's side: each tag becomes a unit of the stream, as MediaMTX
//! turns RTMP messages into units. H.264 keeps only its PTS (the DTS is
//! made per reader later), loses its parameter sets and delimiters and gets
//! the current SPS and PPS in front of every IDR; AAC keeps its raw frame
//! on a clock at its sample rate; other audio is relayed as it came.

use bytes::Bytes;

use super::dts::{VIDEO_CLOCK, ms_to_ticks};
use super::h264::{self, NALU_AUD, NALU_IDR, NALU_NON_IDR, NALU_PPS, NALU_SPS};
use super::tag::{AVC_PACKET_CONFIG, AVC_PACKET_NALU, Tag, TagKind, VIDEO_CODEC_AVC};
use super::tracks::{AudioTrack, Tracks};

/// What readers get: one access unit of one track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unit {
    H264 {
        /// 90 kHz.
        pts: i64,
        /// NAL units, 4-byte length prefixed.
        avcc: Bytes,
        idr: bool,
        /// Holds an IDR or a non-IDR slice (not only SEI and the like).
        picture: bool,
    },
    Aac {
        /// Ticks of `clock`.
        pts: i64,
        clock: i64,
        frame: Bytes,
    },
    /// Another audio codec, relayed as the publisher sent it.
    Passthrough(Tag),
}

impl Unit {
    pub fn len(&self) -> usize {
        match self {
            Self::H264 { avcc, .. } => avcc.len(),
            Self::Aac { frame, .. } => frame.len(),
            Self::Passthrough(tag) => tag.body.len(),
        }
    }

    pub fn is_idr(&self) -> bool {
        matches!(self, Self::H264 { idr: true, .. })
    }
}

/// Why a publisher's stream cannot continue; MediaMTX closes it with this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StreamError {
    #[error("received a packet for {0} track 0, but track is not set up")]
    TrackNotSetUp(&'static str),
    #[error("{0}")]
    H264(#[from] h264::H264Error),
}

/// The unit a publisher's tag makes, updating the tracks' configuration on
/// the way; `None` for tags that carry no unit (configuration, metadata,
/// codecs MediaMTX does not read).
pub(crate) fn make_unit(tracks: &mut Tracks, tag: &Tag) -> Result<Option<Unit>, StreamError> {
    match tag.kind {
        TagKind::Data => Ok(None),
        TagKind::Video => video_unit(tracks, tag),
        TagKind::Audio => audio_unit(tracks, tag),
    }
}

fn video_unit(tracks: &mut Tracks, tag: &Tag) -> Result<Option<Unit>, StreamError> {
    if tag.video_codec() != Some(VIDEO_CODEC_AVC) || tag.is_video_command() {
        return Ok(None);
    }
    let Some(track) = tracks.video.as_mut() else {
        return Err(StreamError::TrackNotSetUp("video"));
    };
    match tag.avc_packet_type() {
        Some(AVC_PACKET_CONFIG) => {
            if let Ok((sps, pps)) = h264::parse_avc_config(tag.body.get(5..).unwrap_or_default()) {
                track.update_sps(&sps);
                track.update_pps(&pps);
            }
            return Ok(None);
        }
        Some(AVC_PACKET_NALU) => {}
        _ => return Ok(None),
    }
    let nalus = h264::split_avcc(tag.body.get(5..).unwrap_or_default())?;
    let mut kept = Vec::with_capacity(nalus.len() + 2);
    let (mut idr, mut picture) = (false, false);
    for nalu in nalus {
        match h264::nalu_type(nalu) {
            NALU_SPS => track.update_sps(nalu),
            NALU_PPS => track.update_pps(nalu),
            NALU_AUD => {}
            kind => {
                idr |= kind == NALU_IDR;
                picture |= kind == NALU_IDR || kind == NALU_NON_IDR;
                kept.push(nalu);
            }
        }
    }
    if kept.is_empty() {
        return Ok(None);
    }
    let parameter_sets = [&track.sps[..], &track.pps[..]];
    let avcc = if idr {
        h264::join_avcc(parameter_sets.into_iter().chain(kept))
    } else {
        h264::join_avcc(kept)
    };
    let pts_ms = i64::from(tag.timestamp) + i64::from(tag.composition_time());
    Ok(Some(Unit::H264 {
        pts: ms_to_ticks(pts_ms, VIDEO_CLOCK),
        avcc,
        idr,
        picture,
    }))
}

fn audio_unit(tracks: &mut Tracks, tag: &Tag) -> Result<Option<Unit>, StreamError> {
    let Some(track) = tracks.audio.as_mut() else {
        return match tag.audio_format() {
            Some(_) if !tag.body.is_empty() => Err(StreamError::TrackNotSetUp("audio")),
            _ => Ok(None),
        };
    };
    match track {
        AudioTrack::Aac { config, params } => match tag.aac_packet_type() {
            Some(0) => {
                let new = tag.body.slice(2..);
                if new != *config {
                    *track = AudioTrack::aac(new);
                }
                Ok(None)
            }
            Some(1) => {
                let clock = i64::from(params.map_or(48_000, |p| p.sample_rate));
                Ok(Some(Unit::Aac {
                    pts: ms_to_ticks(i64::from(tag.timestamp), clock),
                    clock,
                    frame: tag.body.slice(2..),
                }))
            }
            _ => Ok(None),
        },
        AudioTrack::Other { flv_format, .. } => {
            Ok((tag.audio_format() == Some(*flv_format)).then(|| Unit::Passthrough(tag.clone())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::h264::tests::SPS_720P;
    use crate::media::tracks::VideoTrack;

    const PPS: &[u8] = &[0x68, 0xef, 0x3c, 0xb0];

    fn tracks() -> Tracks {
        Tracks {
            video: Some(VideoTrack::new(
                Bytes::from_static(SPS_720P),
                Bytes::from_static(PPS),
            )),
            audio: Some(AudioTrack::aac(Bytes::from_static(&[0x11, 0x90]))),
        }
    }

    fn video(ts: u32, cts: i32, nalus: &[&[u8]]) -> Tag {
        let mut body = vec![0x17, 1];
        body.extend_from_slice(&cts.to_be_bytes()[1..]);
        body.extend_from_slice(&h264::join_avcc(nalus.iter().copied()));
        Tag {
            kind: TagKind::Video,
            timestamp: ts,
            body: Bytes::from(body),
        }
    }

    #[test]
    fn idr_units_carry_parameter_sets_and_lose_delimiters() {
        let mut tracks = tracks();
        let tag = video(21, 0, &[&[0x09, 0xf0], &[0x06, 5, 1], &[0x65, 0x88, 0x84]]);
        let Some(Unit::H264 {
            pts,
            avcc,
            idr,
            picture,
        }) = make_unit(&mut tracks, &tag).unwrap()
        else {
            panic!("an H.264 unit");
        };
        assert!(idr && picture);
        assert_eq!(pts, 21 * 90);
        let types: Vec<u8> = h264::split_avcc(&avcc)
            .unwrap()
            .iter()
            .map(|n| h264::nalu_type(n))
            .collect();
        assert_eq!(types, [NALU_SPS, NALU_PPS, 6, NALU_IDR]);
    }

    #[test]
    fn pts_is_dts_plus_composition_time() {
        let mut tracks = tracks();
        let tag = video(34, 66, &[&[0x41, 0x9a]]);
        let unit = make_unit(&mut tracks, &tag).unwrap().unwrap();
        assert!(matches!(
            unit,
            Unit::H264 {
                pts: 9000,
                idr: false,
                ..
            }
        ));
    }

    #[test]
    fn in_band_parameter_sets_update_the_track_and_vanish() {
        let mut tracks = tracks();
        let new_pps: &[u8] = &[0x68, 1, 2];
        let only_sets = video(0, 0, &[SPS_720P, new_pps]);
        assert_eq!(make_unit(&mut tracks, &only_sets).unwrap(), None);
        assert_eq!(&tracks.video.as_ref().unwrap().pps[..], new_pps);
    }

    #[test]
    fn media_without_a_configured_track_is_refused() {
        let mut none = Tracks::default();
        let tag = video(0, 0, &[&[0x65, 0]]);
        assert_eq!(
            make_unit(&mut none, &tag),
            Err(StreamError::TrackNotSetUp("video"))
        );
        let audio = Tag {
            kind: TagKind::Audio,
            timestamp: 0,
            body: Bytes::from_static(&[0xaf, 1, 0x21]),
        };
        assert_eq!(
            make_unit(&mut none, &audio),
            Err(StreamError::TrackNotSetUp("audio"))
        );
    }

    #[test]
    fn aac_runs_on_its_sample_rate_clock() {
        let mut tracks = tracks();
        let tag = Tag {
            kind: TagKind::Audio,
            timestamp: 1000,
            body: Bytes::from_static(&[0xaf, 1, 0x21, 0x10]),
        };
        let unit = make_unit(&mut tracks, &tag).unwrap().unwrap();
        assert_eq!(
            unit,
            Unit::Aac {
                pts: 48_000,
                clock: 48_000,
                frame: Bytes::from_static(&[0x21, 0x10])
            }
        );
    }
}
