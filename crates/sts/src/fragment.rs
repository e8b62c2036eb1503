//! One audio segment to dub, as the segment writer knows it.

use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Fragment {
    /// The segment index: `audio_000042.ts` is sequence number 42.
    pub sequence_number: u64,
    /// The written segment file (MPEG-TS holding one AAC stream).
    pub path: PathBuf,
    /// From the manifest: start of the segment on the stream's timeline.
    #[serde(with = "humantime_serde")]
    pub start: Duration,
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// Presentation time of the segment's first frame.
    pub pts_ns: u64,
}

impl Fragment {
    /// Where the dubbed answer goes: next to the segment, so whoever
    /// republishes finds segment and dub side by side.
    pub fn dubbed_path(&self, extension: &str) -> PathBuf {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        dir.join(format!("dubbed_{:06}.{extension}", self.sequence_number))
    }
}

/// Unique per client run and stable across resends of one fragment, which
/// is what lets the STS treat a resend as the same fragment. The run token
/// keeps a restarted worker (numbering from 0 again) from reusing ids.
pub(crate) fn fragment_id(stream_id: &str, run: u32, sequence_number: u64) -> String {
    format!("{stream_id}-{run:08x}-{sequence_number:06}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dub_sits_next_to_its_segment() {
        let fragment = Fragment {
            sequence_number: 7,
            path: "/data/cam1/audio_000007.ts".into(),
            start: Duration::from_secs(42),
            duration: Duration::from_secs(6),
            pts_ns: 42_000_000_000,
        };
        assert_eq!(
            fragment.dubbed_path("aac"),
            Path::new("/data/cam1/dubbed_000007.aac")
        );
    }

    #[test]
    fn ids_are_stable_per_run_and_distinct_across_runs() {
        assert_eq!(fragment_id("cam1", 0xab, 3), "cam1-000000ab-000003");
        assert_ne!(fragment_id("cam1", 1, 3), fragment_id("cam1", 2, 3));
    }
}
