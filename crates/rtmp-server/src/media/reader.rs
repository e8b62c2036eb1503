//! A reader's side: what MediaMTX sends one RTMP reader. First metadata and
//! the sequence headers, all at timestamp 0; then audio from the moment it
//! joined and video from its next IDR, each video frame with a DTS made for
//! this reader ([`super::dts`]) and the composition time PTS - DTS.
//! Timestamps stay on the publisher's timeline.

use std::collections::HashMap;

use bytes::{BufMut, Bytes, BytesMut};
use rml_rtmp::rml_amf0::{self, Amf0Value};

use super::aac::{AAC_PACKET_CONFIG, AAC_PACKET_RAW, aac_tag};
use super::dts::{DtsError, DtsExtractor, VIDEO_CLOCK, ticks_to_ns};
use super::h264;
use super::tag::{AVC_PACKET_CONFIG, AVC_PACKET_NALU, Tag, TagKind, VIDEO_CODEC_AVC, avc_first_byte};
use super::tracks::{AudioTrack, Tracks};
use super::units::Unit;

/// What a reader gets before any unit: metadata, then the sequence headers.
pub(crate) fn join_tags(tracks: &Tracks) -> Vec<Tag> {
    let mut tags = vec![metadata(tracks)];
    if let Some(video) = &tracks.video {
        let mut body = BytesMut::new();
        body.put_slice(&[avc_first_byte(true), AVC_PACKET_CONFIG, 0, 0, 0]);
        body.put_slice(&h264::avc_config(&video.sps, &video.pps));
        tags.push(at_zero(TagKind::Video, body.freeze()));
    }
    if let Some(AudioTrack::Aac { config, .. }) = &tracks.audio {
        tags.push(at_zero(TagKind::Audio, aac_tag(AAC_PACKET_CONFIG, config)));
    }
    tags
}

fn at_zero(kind: TagKind, body: Bytes) -> Tag {
    Tag {
        kind,
        timestamp: 0,
        body,
    }
}

/// `@setDataFrame("onMetaData", {videocodecid, videodatarate, audiocodecid,
/// audiodatarate})`: all MediaMTX tells readers.
fn metadata(tracks: &Tracks) -> Tag {
    let number = |n: u8| Amf0Value::Number(f64::from(n));
    let properties = HashMap::from([
        (
            "videocodecid".to_owned(),
            number(if tracks.video.is_some() {
                VIDEO_CODEC_AVC
            } else {
                0
            }),
        ),
        ("videodatarate".to_owned(), number(0)),
        (
            "audiocodecid".to_owned(),
            number(tracks.audio.as_ref().map_or(0, AudioTrack::flv_codec_id)),
        ),
        ("audiodatarate".to_owned(), number(0)),
    ]);
    let values = vec![
        Amf0Value::Utf8String("@setDataFrame".to_owned()),
        Amf0Value::Utf8String("onMetaData".to_owned()),
        Amf0Value::Object(properties),
    ];
    let body = rml_amf0::serialize(&values).expect("strings and numbers always serialise");
    at_zero(TagKind::Data, Bytes::from(body))
}

/// Turns units into the tags one reader is sent.
#[derive(Debug, Default)]
pub(crate) struct ReaderOutput {
    /// Created at this reader's first IDR; no video before it.
    dts: Option<DtsExtractor>,
}

impl ReaderOutput {
    /// The tag for `unit`, `None` when this reader skips it, an error when
    /// MediaMTX would close the reader.
    pub fn convert(&mut self, unit: &Unit) -> Result<Option<Tag>, DtsError> {
        match unit {
            Unit::H264 {
                pts,
                avcc,
                idr,
                picture,
            } => {
                let extractor = match &mut self.dts {
                    None if !idr => return Ok(None),
                    None => self.dts.insert(DtsExtractor::default()),
                    Some(_) if !picture => return Ok(None),
                    Some(extractor) => extractor,
                };
                let nalus = h264::split_avcc(avcc)?;
                let dts = extractor.extract(&nalus, *pts)?;
                let dts_ns = ticks_to_ns(dts, VIDEO_CLOCK);
                let cts_ms = (ticks_to_ns(*pts, VIDEO_CLOCK) - dts_ns) / 1_000_000;
                let mut body = BytesMut::with_capacity(5 + avcc.len());
                body.put_u8(avc_first_byte(*idr));
                body.put_u8(AVC_PACKET_NALU);
                body.put_slice(&(cts_ms as i32).to_be_bytes()[1..]);
                body.put_slice(avcc);
                Ok(Some(Tag {
                    kind: TagKind::Video,
                    timestamp: (dts_ns / 1_000_000) as u32,
                    body: body.freeze(),
                }))
            }
            Unit::Aac { pts, clock, frame } => Ok(Some(Tag {
                kind: TagKind::Audio,
                timestamp: (ticks_to_ns(*pts, *clock) / 1_000_000) as u32,
                body: aac_tag(AAC_PACKET_RAW, frame),
            })),
            Unit::Passthrough(tag) => Ok(Some(tag.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::dts::ms_to_ticks;
    use crate::media::h264::tests::SPS_720P;
    use crate::media::tracks::VideoTrack;

    fn tracks() -> Tracks {
        Tracks {
            video: Some(VideoTrack::new(
                Bytes::from_static(SPS_720P),
                Bytes::from_static(&[0x68, 0xef, 0x3c, 0xb0]),
            )),
            audio: Some(AudioTrack::aac(Bytes::from_static(&[0x11, 0x90]))),
        }
    }

    #[test]
    fn join_sends_metadata_then_headers_at_zero() {
        let tags = join_tags(&tracks());
        let kinds: Vec<TagKind> = tags.iter().map(|t| t.kind).collect();
        assert_eq!(kinds, [TagKind::Data, TagKind::Video, TagKind::Audio]);
        assert!(tags.iter().all(|t| t.timestamp == 0));
        assert_eq!(&tags[1].body[..2], &[0x17, 0]);
        assert_eq!(&tags[2].body[..], &[0xAF, 0, 0x11, 0x90]);
        let values = rml_amf0::deserialize(&mut &tags[0].body[..]).unwrap();
        assert_eq!(values[0], Amf0Value::Utf8String("@setDataFrame".into()));
        let Amf0Value::Object(props) = &values[2] else {
            panic!("an object");
        };
        assert_eq!(props["videocodecid"], Amf0Value::Number(7.0));
        assert_eq!(props["audiocodecid"], Amf0Value::Number(10.0));
        assert_eq!(props.len(), 4);
    }

    #[test]
    fn video_waits_for_an_idr_audio_does_not() {
        let mut output = ReaderOutput::default();
        let inter = Unit::H264 {
            pts: 0,
            avcc: h264::join_avcc([&[0x41, 0x9a][..]]),
            idr: false,
            picture: true,
        };
        assert_eq!(output.convert(&inter).unwrap(), None);
        let audio = Unit::Aac {
            pts: ms_to_ticks(8515, 48_000),
            clock: 48_000,
            frame: Bytes::from_static(&[0x21]),
        };
        let tag = output.convert(&audio).unwrap().unwrap();
        assert_eq!((tag.timestamp, &tag.body[..]), (8515, &[0xAF, 1, 0x21][..]));
    }

    #[test]
    fn audio_at_44k_loses_what_mediamtx_loses_to_truncation() {
        let mut output = ReaderOutput::default();
        let unit = Unit::Aac {
            pts: ms_to_ticks(23, 44_100),
            clock: 44_100,
            frame: Bytes::new(),
        };
        assert_eq!(output.convert(&unit).unwrap().unwrap().timestamp, 22);
    }
}
