//! What a cluster scenario's instances left of one stream: each owner's
//! manifest (each instance keeps its own folder, as a machine would) and
//! when it wrote each segment (the files' modification times, one clock for
//! all instances on this machine), merged into the stream's one history.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use ingest::{Manifest, ManifestEntry, MediaKind};

/// One instance's part of a stream.
#[derive(Debug, Clone)]
pub struct OwnerPart {
    pub instance: String,
    pub entries: Vec<ManifestEntry>,
    /// Per segment it wrote: index, track, and when its file was written.
    pub writes: Vec<SegmentWrite>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmentWrite {
    pub index: u64,
    pub kind: MediaKind,
    pub at: SystemTime,
}

impl OwnerPart {
    fn first_index(&self) -> Option<u64> {
        self.writes.iter().map(|w| w.index).min()
    }
}

/// Every instance's part of stream `id`, in the order they served it (by
/// the first segment each wrote); instances that wrote nothing of it are
/// left out.
pub(crate) fn owner_parts(instances: &[(String, PathBuf)], id: &str) -> Vec<OwnerPart> {
    let mut parts: Vec<OwnerPart> = instances
        .iter()
        .filter_map(|(name, dir)| part_of(name, &dir.join(id)))
        .collect();
    parts.sort_by_key(|p| p.first_index().unwrap_or(u64::MAX));
    parts
}

fn part_of(instance: &str, stream_dir: &Path) -> Option<OwnerPart> {
    let manifest = stream_dir.join(ingest::MANIFEST_FILE);
    if !manifest.exists() {
        return None;
    }
    let entries = Manifest::read(&manifest).unwrap_or_default();
    let writes = entries
        .iter()
        .filter_map(|e| match e {
            ManifestEntry::Segment(s) => Some(s),
            _ => None,
        })
        .filter_map(|s| {
            let at = std::fs::metadata(stream_dir.join(&s.file))
                .ok()?
                .modified()
                .ok()?;
            Some(SegmentWrite {
                index: s.index,
                kind: s.kind,
                at,
            })
        })
        .collect();
    Some(OwnerPart {
        instance: instance.to_owned(),
        entries,
        writes,
    })
}

/// The stream's manifest as one: the owners' records, segments in the
/// order of their indices (an instance that served the stream twice holds
/// both of its turns in one file).
pub(crate) fn merged(parts: &[OwnerPart]) -> Option<Vec<ManifestEntry>> {
    if parts.is_empty() {
        return None;
    }
    let all = parts.iter().flat_map(|p| p.entries.iter().cloned());
    let (mut segments, others): (Vec<_>, Vec<_>) = all.partition(|e| matches!(e, ManifestEntry::Segment(_)));
    segments.sort_by_key(|e| match e {
        ManifestEntry::Segment(s) => s.index,
        _ => 0,
    });
    Some(others.into_iter().chain(segments).collect())
}
