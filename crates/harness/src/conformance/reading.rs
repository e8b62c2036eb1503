//! What a reader receives: MediaMTX has no GOP cache, keeps the publisher's
//! timestamps and PTS, regenerates DTS, puts SPS/PPS in front of every IDR,
//! and rewrites the AAC tag header.

use std::collections::BTreeSet;

use media_tools::flv::{AUDIO, FlvTag, VIDEO};

use super::material::{GOP_MS, composition_ms, frames, nal_types, with_aud};
use super::probe::{Probe, Read, ensure};
use super::recordings::{LATE_READER, LATE_READER_BFRAMES, Packet, packets};
use super::{Check, CheckFailure, Verdict, check};

pub(super) fn checks() -> Vec<Check> {
    vec![
        check!("reading", metadata_then_sequence_headers_at_zero, &[]),
        check!("reading", audio_at_once_video_from_the_next_idr, &[]),
        check!("reading", timestamps_continue_the_publishers_timeline, &[]),
        check!("reading", every_idr_carries_sps_and_pps_and_no_aud, &[]),
        check!("reading", dts_is_regenerated_and_pts_kept, &[]),
        check!("reading", aac_tag_header_always_says_44k_stereo, &[]),
    ]
}

fn video_frames_at_least(n: usize) -> impl FnMut(&Read) -> bool {
    move |r| r.frames(VIDEO).len() >= n
}

/// A reader first gets the stream's metadata, then the AVC and AAC sequence
/// headers at timestamp 0, before any frame.
async fn metadata_then_sequence_headers_at_zero(probe: &Probe) -> Verdict {
    let path = probe.path();
    let (_publisher, _player, read) = probe
        .join_late(&path, &probe.material.plain, 3000, |r| {
            !r.frames(VIDEO).is_empty() && !r.frames(AUDIO).is_empty()
        })
        .await?;
    let tags: Vec<&FlvTag> = read.tags().collect();
    let first_frame = tags.iter().position(|t| t.is_frame()).unwrap_or(tags.len());
    let head = &tags[..first_frame];
    let describe = || {
        head.iter()
            .map(|t| format!("type {} at {} ms ({} bytes)", t.kind, t.timestamp, t.body.len()))
            .collect::<Vec<_>>()
    };
    let metadata = head
        .iter()
        .position(|t| t.kind == 18 && contains(&t.body, b"onMetaData"))
        .ok_or_else(|| format!("no onMetaData before the first frame: {:?}", describe()))?;
    let body = &head[metadata].body;
    for key in ["videocodecid", "audiocodecid"] {
        ensure(contains(body, key.as_bytes()), || {
            format!("the metadata has no {key}")
        })?;
    }
    for kind in [VIDEO, AUDIO] {
        let header = head
            .iter()
            .position(|t| t.kind == kind && t.is_sequence_header())
            .ok_or_else(|| {
                format!(
                    "no type-{kind} sequence header before the first frame: {:?}",
                    describe()
                )
            })?;
        ensure(header > metadata && head[header].timestamp == 0, || {
            format!(
                "the type-{kind} sequence header must follow the metadata at timestamp 0: {:?}",
                describe()
            )
        })?;
    }
    Ok(())
}

/// No GOP cache: a reader gets audio from the moment it joined and video
/// only from the next IDR, as the recorded late readers did.
fn joins_like_mediamtx(received: &[Packet]) -> Verdict {
    let first_audio = received.iter().find(|p| !p.video).ok_or("no audio at all")?;
    let first_video = received.iter().find(|p| p.video).ok_or("no video at all")?;
    ensure(first_video.keyframe, || {
        format!(
            "the first video frame (at {} ms) is not a keyframe",
            first_video.dts_ms
        )
    })?;
    // 50 ms: audio and video frames of about the same time may come in
    // either order.
    ensure(first_video.dts_ms + 50 >= first_audio.dts_ms, || {
        format!(
            "video starts at {} ms, before the audio ({} ms): an earlier keyframe was kept for the reader (a GOP cache)",
            first_video.dts_ms, first_audio.dts_ms
        )
    })?;
    ensure(
        first_video.dts_ms <= first_audio.dts_ms + i64::from(GOP_MS) + 50,
        || {
            format!(
                "audio from {} ms but video only from {} ms: more than a GOP of waiting",
                first_audio.dts_ms, first_video.dts_ms
            )
        },
    )
}

fn as_packets(read: &Read) -> Vec<Packet> {
    read.tags()
        .filter(|t| t.is_frame())
        .map(|t| Packet {
            video: t.kind == VIDEO,
            pts_ms: i64::from(t.timestamp) + i64::from(composition_ms(t)),
            dts_ms: i64::from(t.timestamp),
            keyframe: t.kind == AUDIO || t.is_keyframe(),
        })
        .collect()
}

async fn audio_at_once_video_from_the_next_idr(probe: &Probe) -> Verdict {
    for (name, listing) in [("8.5 s", LATE_READER), ("B-frames", LATE_READER_BFRAMES)] {
        joins_like_mediamtx(&packets(listing)).map_err(|e| {
            CheckFailure::from(format!("the recorded {name} late reader breaks the rule: {e}"))
        })?;
    }
    let path = probe.path();
    // Joins mid-GOP (keyframes at 4 s and 6 s).
    let (_publisher, _player, read) = probe
        .join_late(&path, &probe.material.plain, 5000, video_frames_at_least(1))
        .await?;
    let received = as_packets(&read);
    joins_like_mediamtx(&received)?;
    let audio_first = received.iter().take_while(|p| !p.video).count();
    ensure(audio_first > 0, || {
        "no audio came before the first keyframe, though the reader joined 1 s before it".into()
    })
}

/// Timestamps are not rebased: a late reader gets the publisher's own.
async fn timestamps_continue_the_publishers_timeline(probe: &Probe) -> Verdict {
    let tags = &probe.material.plain;
    let path = probe.path();
    let (_publisher, _player, read) = probe
        .join_late(&path, tags, 7000, video_frames_at_least(30))
        .await?;
    let sent: BTreeSet<(u8, u32)> = frames(tags, 0, u32::MAX)
        .iter()
        .map(|t| (t.kind, t.timestamp))
        .collect();
    let received: Vec<&FlvTag> = read.tags().filter(|t| t.is_frame()).collect();
    let first = received.first().ok_or("no frame received")?;
    ensure(first.timestamp >= 6000, || {
        format!(
            "a reader that joined at 7 s got its first frame at {} ms: rebased",
            first.timestamp
        )
    })?;
    let foreign: Vec<_> = received
        .iter()
        .filter(|t| !sent.contains(&(t.kind, t.timestamp)))
        .map(|t| (t.kind, t.timestamp))
        .collect();
    ensure(foreign.is_empty(), || {
        format!("frames at timestamps the publisher never sent (type, ms): {foreign:?}")
    })
}

/// Every IDR the reader gets carries SPS and PPS in front; access unit
/// delimiters the publisher sent are gone.
async fn every_idr_carries_sps_and_pps_and_no_aud(probe: &Probe) -> Verdict {
    let tags: Vec<FlvTag> = probe.material.plain.iter().map(with_aud).collect();
    let in_band = tags
        .iter()
        .filter(|t| t.is_keyframe())
        .any(|t| nal_types(t).contains(&7));
    ensure(!in_band, || {
        "the fixture already carries SPS in its keyframes: the check would prove nothing".into()
    })?;
    let path = probe.path();
    let (_publisher, _player, read) = probe
        .join_late(&path, &tags, 3000, |r| {
            r.frames(VIDEO).iter().filter(|t| t.is_keyframe()).count() >= 3
        })
        .await?;
    for frame in read.frames(VIDEO) {
        let types = nal_types(frame);
        ensure(!types.contains(&9), || {
            format!(
                "the frame at {} ms still has an access unit delimiter: NAL types {types:?}",
                frame.timestamp
            )
        })?;
        if frame.is_keyframe() {
            let idr = types.iter().position(|&t| t == 5);
            let sps = types.iter().position(|&t| t == 7);
            let pps = types.iter().position(|&t| t == 8);
            let ordered = matches!((sps, pps, idr), (Some(s), Some(p), Some(i)) if s < i && p < i);
            ensure(ordered, || {
                format!(
                    "the IDR at {} ms lacks SPS/PPS in front: NAL types {types:?}",
                    frame.timestamp
                )
            })?;
        }
    }
    Ok(())
}

/// The server keeps each picture's PTS but makes its own DTS: from the IDR
/// on, one millisecond apart while it learns the reordering (the recorded
/// 6.067, 6.068, 6.069), never after the PTS, always increasing.
async fn dts_is_regenerated_and_pts_kept(probe: &Probe) -> Verdict {
    let recorded: Vec<Packet> = packets(LATE_READER_BFRAMES)
        .into_iter()
        .filter(|p| p.video)
        .collect();
    let recorded_step = recorded[1].dts_ms - recorded[0].dts_ms;
    let tags = &probe.material.bframes;
    let published: Vec<&FlvTag> = tags.iter().filter(|t| t.kind == VIDEO && t.is_frame()).collect();
    ensure(
        published
            .iter()
            .any(|t| composition_ms(t) > 0 && !t.is_keyframe()),
        || "the B-frame fixture has no reordered frames: the check would prove nothing".into(),
    )?;
    let path = probe.path();
    let (_publisher, _player, read) = probe
        .join_late(&path, tags, 5000, video_frames_at_least(30))
        .await?;
    let received = as_packets(&read)
        .into_iter()
        .filter(|p| p.video)
        .collect::<Vec<_>>();
    let first = received.first().ok_or("no video received")?;
    let pts = |t: &FlvTag| i64::from(t.timestamp) + i64::from(composition_ms(t));
    let start = published
        .iter()
        .position(|t| t.is_keyframe() && (pts(t) - 1..=pts(t)).contains(&first.pts_ms))
        .ok_or_else(|| {
            format!(
                "the first picture's PTS {} ms is not a keyframe's the publisher sent",
                first.pts_ms
            )
        })?;
    let mut regenerated = false;
    for (i, (got, sent)) in received.iter().zip(&published[start..]).enumerate() {
        // FLV carries DTS and PTS - DTS in whole milliseconds, each
        // truncated, so a kept PTS can come out one millisecond early.
        ensure((pts(sent) - 1..=pts(sent)).contains(&got.pts_ms), || {
            format!(
                "picture {i} after the IDR: PTS {} ms, the publisher's was {} ms",
                got.pts_ms,
                pts(sent)
            )
        })?;
        ensure(got.dts_ms <= got.pts_ms, || {
            format!("picture {i}: DTS {} ms after its PTS {}", got.dts_ms, got.pts_ms)
        })?;
        if i > 0 {
            let previous = received[i - 1].dts_ms;
            ensure(got.dts_ms > previous, || {
                format!("picture {i}: DTS {} ms not after {previous}", got.dts_ms)
            })?;
        }
        regenerated |= got.dts_ms != i64::from(sent.timestamp);
    }
    ensure(first.dts_ms == first.pts_ms, || {
        format!("the IDR's DTS {} is not its PTS {}", first.dts_ms, first.pts_ms)
    })?;
    let step = received.get(1).map(|p| p.dts_ms - first.dts_ms);
    ensure(step == Some(recorded_step), || {
        format!(
            "the DTS after the IDR moved by {step:?} ms; MediaMTX moved it by {recorded_step} ms (recorded)"
        )
    })?;
    ensure(regenerated, || {
        "every DTS is the publisher's: the server did not make its own".into()
    })
}

/// Whatever the publisher's AAC tag header says, a reader's says 44.1 kHz
/// stereo (0xAF); the real format is only in the AudioSpecificConfig.
async fn aac_tag_header_always_says_44k_stereo(probe: &Probe) -> Verdict {
    // The publisher claims mono (0xAE) for its 48-kHz stereo AAC.
    let tags: Vec<FlvTag> = probe
        .material
        .plain
        .iter()
        .cloned()
        .map(|mut t| {
            if t.kind == AUDIO
                && let Some(first) = t.body.first_mut()
            {
                *first = 0xAE;
            }
            t
        })
        .collect();
    let path = probe.path();
    let (_publisher, _player, read) = probe
        .join_late(&path, &tags, 3000, |r| r.frames(AUDIO).len() >= 20)
        .await?;
    let headers: BTreeSet<u8> = read
        .tags()
        .filter(|t| t.kind == AUDIO)
        .filter_map(|t| t.body.first().copied())
        .collect();
    ensure(headers == BTreeSet::from([0xAF]), || {
        format!("AAC tag headers {headers:02x?}; MediaMTX always sends af")
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorded_late_readers_join_like_mediamtx_and_a_gop_cache_does_not() {
        joins_like_mediamtx(&packets(LATE_READER)).unwrap();
        joins_like_mediamtx(&packets(LATE_READER_BFRAMES)).unwrap();
        let packet = |video, ms, keyframe| Packet {
            video,
            pts_ms: ms,
            dts_ms: ms,
            keyframe,
        };
        // Joined at 5 s with a GOP cache: video from the 4-s keyframe.
        let cached = [packet(true, 4000, true), packet(false, 5000, true)];
        assert!(joins_like_mediamtx(&cached).is_err());
        // Video from a non-keyframe.
        let broken = [packet(false, 5000, true), packet(true, 5033, false)];
        assert!(joins_like_mediamtx(&broken).is_err());
    }
}
