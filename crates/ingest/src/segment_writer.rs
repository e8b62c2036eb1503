//! Turns segmenter decisions into files: frames stream into a hidden
//! temporary file, and closing a segment renames it into place, so a
//! segment appears whole or not at all.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use bytes::Bytes;

use crate::container::mpegts::TsWriter;
use crate::error::IngestError;
use crate::manifest::{Manifest, ManifestEntry, SegmentRecord};
use crate::media::MediaKind;
use crate::segmenter::{ClosedSegment, Frame};

struct OpenFile {
    index: u64,
    temp: PathBuf,
    ts: TsWriter<BufWriter<File>>,
    /// Timestamp of the segment's first frame: `start_s` is measured from
    /// the connection's origin.
    origin: u64,
}

pub struct SegmentWriter {
    dir: PathBuf,
    manifest: Manifest,
    open: [Option<OpenFile>; 2],
    connection: u32,
    origin: Option<u64>,
    fence: Option<crate::fence::WriteFence>,
}

/// `video_000003.ts`: the kind, the index, and the true container format.
pub fn segment_file_name(kind: MediaKind, index: u64) -> String {
    format!("{kind}_{index:06}.ts")
}

impl SegmentWriter {
    pub fn create(dir: &Path) -> Result<Self, IngestError> {
        std::fs::create_dir_all(dir).map_err(|e| IngestError::io(dir, e))?;
        // Temporaries of a run that died are never segments: remove them.
        let entries = std::fs::read_dir(dir).map_err(|e| IngestError::io(dir, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.ends_with(".part") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(Self {
            dir: dir.to_owned(),
            manifest: Manifest::open(dir)?,
            open: [None, None],
            connection: 0,
            origin: None,
            fence: None,
        })
    }

    /// Every later file, rename and manifest line is written only if
    /// `fence` allows it.
    pub fn fenced(mut self, fence: Option<crate::fence::WriteFence>) -> Self {
        self.manifest.set_fence(fence.clone());
        self.fence = fence;
        self
    }

    /// The first segment index no earlier run in this directory used, so a
    /// restarted ingest continues the sequence instead of overwriting it.
    pub fn first_free_index(&self) -> Result<u64, IngestError> {
        let path = self.dir.join(crate::manifest::MANIFEST_FILE);
        let entries = Manifest::read(&path)?;
        Ok(entries
            .iter()
            .filter_map(|e| match e {
                ManifestEntry::Segment(s) => Some(s.index + 1),
                ManifestEntry::Connection(_)
                | ManifestEntry::Fragment(_)
                | ManifestEntry::Output(_)
                | ManifestEntry::Takeover(_) => None,
            })
            .max()
            .unwrap_or(0))
    }

    pub fn manifest(&mut self) -> &mut Manifest {
        &mut self.manifest
    }

    /// Starts a new connection: `start_s` restarts from its first keyframe.
    pub fn begin_connection(&mut self, connection: u32) {
        self.connection = connection;
        self.origin = None;
    }

    pub fn append(&mut self, index: u64, frame: &Frame<Bytes>) -> Result<(), IngestError> {
        let origin = *self.origin.get_or_insert(frame.pts);
        let slot = &mut self.open[frame.kind.index()];
        // Every frame asks: a fenced worker stops within a frame.
        crate::fence::check(self.fence.as_ref())?;
        if slot.as_ref().is_none_or(|f| f.index != index) {
            if let Some(stale) = slot.take() {
                // A segment that was never closed must not linger half-written.
                let _ = std::fs::remove_file(&stale.temp);
            }
            if let Some(fence) = &self.fence {
                fence.reserve(index)?;
            }
            let temp = self
                .dir
                .join(format!(".{}.part", segment_file_name(frame.kind, index)));
            let file = File::create(&temp).map_err(|e| IngestError::io(&temp, e))?;
            let ts = TsWriter::new(BufWriter::with_capacity(256 * 1024, file), frame.kind)
                .map_err(|e| IngestError::io(&temp, e))?;
            *slot = Some(OpenFile {
                index,
                temp,
                ts,
                origin,
            });
        }
        let open = slot.as_mut().expect("opened above");
        open.ts
            .write_frame(frame.pts, frame.dts, frame.keyframe, &frame.payload)
            .map_err(|e| IngestError::io(&open.temp, e))
    }

    /// Finishes the file of `closed`, renames it into place and records it.
    pub fn close(&mut self, closed: &ClosedSegment) -> Result<SegmentRecord, IngestError> {
        let open = self.open[closed.kind.index()]
            .take()
            .filter(|f| f.index == closed.index)
            .ok_or_else(|| {
                IngestError::io(
                    &self.dir,
                    std::io::Error::other(format!(
                        "{} segment {} was closed but never opened",
                        closed.kind, closed.index
                    )),
                )
            })?;
        if let Err(fenced) = crate::fence::check(self.fence.as_ref()) {
            let _ = std::fs::remove_file(&open.temp);
            return Err(fenced);
        }
        let bytes = open.ts.bytes_written();
        let mut buffered = open.ts.into_inner();
        let flushed = buffered.flush();
        drop(buffered);
        let name = segment_file_name(closed.kind, closed.index);
        let path = self.dir.join(&name);
        if let Err(e) = flushed.and_then(|_| std::fs::rename(&open.temp, &path)) {
            let _ = std::fs::remove_file(&open.temp);
            return Err(IngestError::io(&path, e));
        }
        let visible_at = Instant::now();
        let record = SegmentRecord {
            index: closed.index,
            kind: closed.kind,
            file: name,
            start_s: closed.start.saturating_sub(open.origin) as f64 / 1e9,
            pts_ns: closed.start,
            duration_s: closed.duration as f64 / 1e9,
            bytes,
            frames: closed.frames,
            partial: closed.partial,
            end: closed.end,
            starts_with_keyframe: closed.starts_with_keyframe,
            connection: self.connection,
            write_latency_ms: closed.closed_by.map_or(0.0, |t| {
                visible_at.saturating_duration_since(t).as_secs_f64() * 1e3
            }),
        };
        self.manifest.append(&ManifestEntry::Segment(record.clone()))?;
        Ok(record)
    }

    /// Removes any half-written file (used when a stream is refused or fails).
    pub fn abandon_open(&mut self) {
        for slot in &mut self.open {
            if let Some(open) = slot.take() {
                let _ = std::fs::remove_file(&open.temp);
            }
        }
    }
}

impl Drop for SegmentWriter {
    fn drop(&mut self) {
        self.abandon_open();
    }
}
