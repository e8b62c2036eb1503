//! What the checks publish: small fixtures built once per machine by ffmpeg
//! (cached with the scenario fixtures), taken apart into FLV tags so a check
//! can send exactly the part it needs, at the speed it needs.

use std::path::Path;

use media_tools::FixtureRecipe;
use media_tools::flv::{self, FlvTag};

use crate::error::HarnessError;

/// The GOP of every fixture here: a keyframe every 2 s, as in the recordings.
pub(super) const GOP_MS: u32 = 2000;

pub struct Material {
    /// H.264 (no B-frames) + AAC 48 kHz stereo, 12 s.
    pub plain: Vec<FlvTag>,
    /// The same with B-frames, so the server must regenerate DTS.
    pub bframes: Vec<FlvTag>,
}

fn recipe(name: &str, bframes: u32) -> FixtureRecipe {
    FixtureRecipe {
        width: 320,
        height: 240,
        duration_s: 12.0,
        gop_s: f64::from(GOP_MS) / 1000.0,
        bframes,
        ..FixtureRecipe::seed(name)
    }
}

impl Material {
    pub async fn build(cache_dir: &Path) -> Result<Self, HarnessError> {
        Ok(Self {
            plain: tags_of(&recipe("conformance-plain", 0), cache_dir).await?,
            bframes: tags_of(&recipe("conformance-bframes", 3), cache_dir).await?,
        })
    }
}

async fn tags_of(recipe: &FixtureRecipe, cache_dir: &Path) -> Result<Vec<FlvTag>, HarnessError> {
    let path = recipe.ensure_built(cache_dir).await?;
    let bytes = std::fs::read(&path).map_err(|source| HarnessError::Io {
        path: path.clone(),
        source,
    })?;
    flv::read_tags(&bytes).ok_or(HarnessError::NotFlv { path })
}

/// The configuration (metadata and sequence headers) of a stream; not the
/// AVC end of sequence, which closes it.
pub(super) fn config(tags: &[FlvTag]) -> Vec<FlvTag> {
    tags.iter()
        .filter(|t| t.kind == flv::SCRIPT || t.is_sequence_header())
        .cloned()
        .collect()
}

/// The frames with `from <= timestamp < to`.
pub(super) fn frames(tags: &[FlvTag], from: u32, to: u32) -> Vec<FlvTag> {
    tags.iter()
        .filter(|t| t.is_frame() && (from..to).contains(&t.timestamp))
        .cloned()
        .collect()
}

/// Shifts every frame by `offset` ms (configuration stays at 0): a second
/// publisher on its own timeline.
pub(super) fn shifted(tags: &[FlvTag], offset: u32) -> Vec<FlvTag> {
    tags.iter()
        .map(|t| {
            let mut t = t.clone();
            if t.is_frame() {
                t.timestamp += offset;
            }
            t
        })
        .collect()
}

/// A video tag's composition time offset (PTS - DTS, ms).
pub(super) fn composition_ms(tag: &FlvTag) -> i32 {
    let b = &tag.body;
    if tag.kind != flv::VIDEO || b.len() < 5 {
        return 0;
    }
    // Signed 24-bit.
    (i32::from_be_bytes([b[2], b[3], b[4], 0])) >> 8
}

/// The NAL unit types of an AVC frame (4-byte lengths, as FLV carries them).
pub(super) fn nal_types(tag: &FlvTag) -> Vec<u8> {
    let mut types = Vec::new();
    let mut rest = tag.body.get(5..).unwrap_or_default();
    while rest.len() >= 4 {
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let Some(nal) = rest.get(4..4 + len) else { break };
        if let Some(first) = nal.first() {
            types.push(first & 0x1f);
        }
        rest = &rest[4 + len..];
    }
    types
}

/// An AVC frame with an access unit delimiter put in front of its NAL
/// units, as some encoders send them.
pub(super) fn with_aud(tag: &FlvTag) -> FlvTag {
    let mut tag = tag.clone();
    if tag.kind == flv::VIDEO && tag.is_frame() && tag.body.len() >= 5 {
        let aud = [0, 0, 0, 2, 0x09, 0xf0];
        tag.body.splice(5..5, aud);
    }
    tag
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(body: Vec<u8>) -> FlvTag {
        FlvTag {
            kind: flv::VIDEO,
            timestamp: 0,
            body,
        }
    }

    #[test]
    fn reads_nal_types_and_composition_time() {
        let mut body = vec![0x17, 1, 0xff, 0xff, 0xdf];
        body.extend_from_slice(&[0, 0, 0, 2, 0x67, 1, 0, 0, 0, 1, 0x65]);
        let tag = video(body);
        assert_eq!(composition_ms(&tag), -33);
        assert_eq!(nal_types(&tag), vec![7, 5]);
        assert_eq!(nal_types(&with_aud(&tag)), vec![9, 7, 5]);
    }
}
