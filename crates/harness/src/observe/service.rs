//! Facts from a service scenario's world: each stream's manifest, what the
//! service said about it (`/v1/streams`), and every read of its output,
//! checked against the fixture it was published from: pictures from the
//! reader's first keyframe with none missing, audio where the input had it
//! (within one audio frame), and which tone the audio carries (the dub's or
//! the original's), decoded by ffmpeg.

use ingest::{Manifest, ManifestEntry, OutputRecord, SegmentRecord};
use media_tools::flv::{self, FlvTag};
use service::StreamView;

use super::cluster::{OwnerPart, merged, owner_parts};
use crate::plan::FixtureMedia;
use crate::plan::service::{DUB_TONE_HZ, ORIGINAL_TONE_HZ};
use crate::world::service::{OutputRead, ServiceObservation, ServiceStreamObservation};

/// One stream, observed.
#[derive(Debug, Clone)]
pub struct ObservedServiceStream {
    pub world: ServiceStreamObservation,
    /// Its manifest's records, if a worker wrote one.
    pub manifest: Option<Vec<ManifestEntry>>,
    /// What the service's `/v1/streams` said of it at the end.
    pub view: Option<StreamView>,
    /// Why the service refused its path, if it did.
    pub refused: Option<String>,
    pub reads: Vec<ReadFacts>,
    /// In a cluster: each instance's part of the stream, in turn.
    pub owners: Vec<OwnerPart>,
    /// The presentation time of the last picture published (ns).
    pub input_last_picture_ns: Option<u64>,
}

/// What one read of the output held.
#[derive(Debug, Clone)]
pub struct ReadFacts {
    /// Pictures from the reader's first keyframe.
    pub pictures: usize,
    /// Those pictures follow one another as the input's did: each one
    /// frame after the one before (to the millisecond), so none is missing,
    /// repeated or moved.
    pub contiguous: bool,
    /// They are the input's pictures from one of its keyframes to its end
    /// (counted): the output ran to the input's last picture.
    pub to_the_end: bool,
    /// The audio keeps the input's place against the pictures, within one
    /// audio frame (known where `to_the_end` lines the read up with the
    /// input).
    pub aligned: Option<bool>,
    /// Share of the audio's energy at the dub's tone and at the original's.
    pub dub_share: f64,
    pub original_share: f64,
    /// Why the audio could not be decoded, if it could not.
    pub decode_problem: Option<String>,
}

impl ObservedServiceStream {
    pub fn segments(&self) -> Vec<&SegmentRecord> {
        self.manifest
            .iter()
            .flatten()
            .filter_map(|e| match e {
                ManifestEntry::Segment(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    pub fn spans(&self) -> Vec<&OutputRecord> {
        self.manifest
            .iter()
            .flatten()
            .filter_map(|e| match e {
                ManifestEntry::Output(o) => Some(o),
                _ => None,
            })
            .collect()
    }

    pub fn connections(&self) -> usize {
        self.manifest
            .iter()
            .flatten()
            .filter(|e| matches!(e, ManifestEntry::Connection(_)))
            .count()
    }
}

/// Every stream of a service scenario, observed.
#[derive(Debug, Clone)]
pub struct ObservedService {
    pub world: ServiceObservation,
    pub streams: Vec<ObservedServiceStream>,
}

/// Reads the manifests and the outputs of `world`.
pub(crate) async fn observe(
    world: ServiceObservation,
    media: &FixtureMedia,
    windows: &[Option<u32>],
) -> ObservedService {
    let mut streams = Vec::new();
    for (stream, until_ms) in world.streams.iter().zip(windows) {
        let owners = world
            .cluster
            .as_ref()
            .map(|c| owner_parts(&c.instances, &stream.id))
            .unwrap_or_default();
        let manifest_path = world.segments_dir.join(&stream.id).join(ingest::MANIFEST_FILE);
        let manifest = match &world.cluster {
            Some(_) => merged(&owners),
            None => manifest_path
                .exists()
                .then(|| Manifest::read(&manifest_path).unwrap_or_default()),
        };
        let view = world
            .view
            .as_ref()
            .and_then(|v| v.streams.iter().find(|s| s.id == stream.id).cloned());
        let refused = world
            .refused
            .get(&stream.path)
            .map(|r| r.replace(&stream.id, "<id>"));
        let input = window_of(media, *until_ms);
        let mut reads = Vec::new();
        for read in &stream.outputs {
            reads.push(read_facts(read, &input, media).await);
        }
        streams.push(ObservedServiceStream {
            world: stream.clone(),
            manifest,
            view,
            refused,
            reads,
            owners,
            input_last_picture_ns: input
                .iter()
                .filter(|t| t.kind == flv::VIDEO)
                .map(|t| u64::from(t.timestamp) * 1_000_000)
                .max(),
        });
    }
    ObservedService { world, streams }
}

/// The fixture's frames a publish of `until_ms` sends.
fn window_of(media: &FixtureMedia, until_ms: Option<u32>) -> Vec<FlvTag> {
    media
        .tags
        .iter()
        .filter(|t| t.is_frame() && until_ms.is_none_or(|u| t.timestamp < u))
        .cloned()
        .collect()
}

async fn read_facts(read: &OutputRead, input: &[FlvTag], media: &FixtureMedia) -> ReadFacts {
    let frame_ms = media.video_frame_s * 1e3;
    let audio_frame_ms = media.audio_frame_ms;
    let pictures: Vec<&FlvTag> = read
        .tags
        .iter()
        .filter(|t| t.kind == flv::VIDEO && t.is_frame())
        .collect();
    let first = pictures.iter().position(|t| t.is_keyframe());
    let from_keyframe = first.map_or(&[][..], |k| &pictures[k..]);
    // Each picture one frame after the one before (to the millisecond FLV
    // rounds to): in order, none missing, none moved.
    let steps_ok = |times: &[i64], step: f64| {
        times
            .windows(2)
            .all(|w| ((w[1] - w[0]) as f64 - step).abs() <= 1.5)
    };
    let picture_times: Vec<i64> = from_keyframe.iter().map(|t| i64::from(t.pts())).collect();
    let contiguous = !picture_times.is_empty() && steps_ok(&picture_times, frame_ms);
    let input_pictures: Vec<&FlvTag> = input.iter().filter(|t| t.kind == flv::VIDEO).collect();
    let got = from_keyframe.len();
    let joined_at = (got > 0 && got <= input_pictures.len())
        .then(|| input_pictures.len() - got)
        .filter(|&k| input_pictures[k].is_keyframe());
    let aligned = joined_at.map(|k| {
        // The read's clock against the input's, set by the joining keyframe.
        let offset = i64::from(from_keyframe[0].pts()) - i64::from(input_pictures[k].pts());
        let out_audio = read
            .tags
            .iter()
            .filter(|t| t.kind == flv::AUDIO && t.is_frame())
            .map(|t| i64::from(t.pts()) - offset)
            .find(|&t| t >= i64::from(input_pictures[k].pts()));
        let in_audio = input
            .iter()
            .filter(|t| t.kind == flv::AUDIO)
            .map(|t| i64::from(t.pts()))
            .find(|&t| t >= i64::from(input_pictures[k].pts()));
        match (out_audio, in_audio) {
            (Some(out), Some(inp)) => ((out - inp).abs() as f64) <= audio_frame_ms,
            _ => false,
        }
    });
    let (dub_share, original_share, decode_problem) = match media_tools::decode_mono(&read.file).await {
        Ok(samples) => (
            media_tools::tone_share(&samples, media_tools::DECODE_RATE_HZ, DUB_TONE_HZ),
            media_tools::tone_share(&samples, media_tools::DECODE_RATE_HZ, ORIGINAL_TONE_HZ),
            None,
        ),
        Err(e) => (0.0, 0.0, Some(e.to_string())),
    };
    ReadFacts {
        pictures: got,
        contiguous,
        to_the_end: joined_at.is_some(),
        aligned,
        dub_share,
        original_share,
        decode_problem,
    }
}
