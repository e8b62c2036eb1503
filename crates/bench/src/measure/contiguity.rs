//! Whether a stream's segments, as its manifest records them, tile the
//! stream: per track, indices consecutive from the first, and each segment
//! starting where the previous one ended (start + duration) within one
//! frame. Times are the records' `pts_ns`, the stream's own timeline, which
//! stays comparable across reconnects; `start_s` restarts with each
//! connection.

use ingest::{MediaKind, SegmentRecord};
use serde::Serialize;

/// One place where a track's segments do not follow each other.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "break", rename_all = "snake_case")]
pub enum Break {
    /// The index after `after` is not `after + 1`.
    Index { after: u64, got: u64 },
    /// Segment `index` starts `ms` after the previous one ended (negative:
    /// before, an overlap), by more than one frame.
    Time { index: u64, ms: f64 },
}

/// One track's segments.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackTiling {
    pub kind: MediaKind,
    pub segments: usize,
    pub first_index: Option<u64>,
    pub last_index: Option<u64>,
    /// Sum of the segments' durations, seconds.
    pub covered_s: f64,
    pub frames: u64,
    /// Largest |start - previous end| seen, within tolerance or not, ms.
    pub worst_join_ms: f64,
    /// Distinct connections the segments came from.
    pub connections: u32,
    pub breaks: Vec<Break>,
}

impl TrackTiling {
    pub fn is_contiguous(&self) -> bool {
        self.segments > 0 && self.breaks.is_empty()
    }
}

/// Checks each track of `records` (in manifest order, i.e. closing order).
pub fn check(records: &[SegmentRecord]) -> Vec<TrackTiling> {
    MediaKind::ALL
        .iter()
        .map(|&kind| {
            let track: Vec<&SegmentRecord> = records.iter().filter(|r| r.kind == kind).collect();
            tile(kind, &track)
        })
        .collect()
}

fn tile(kind: MediaKind, track: &[&SegmentRecord]) -> TrackTiling {
    let mut breaks = Vec::new();
    let mut worst_join_ms: f64 = 0.0;
    for pair in track.windows(2) {
        let (prev, next) = (pair[0], pair[1]);
        if next.index != prev.index + 1 {
            breaks.push(Break::Index {
                after: prev.index,
                got: next.index,
            });
        }
        let prev_end_ns = prev.pts_ns as f64 + prev.duration_s * 1e9;
        let join_ms = (next.pts_ns as f64 - prev_end_ns) / 1e6;
        worst_join_ms = worst_join_ms.max(join_ms.abs());
        // A segment's mean frame duration is "one frame" of its track
        // (33 ms video at 30 fps, 21 ms AAC at 48 kHz), so no rate is assumed.
        if join_ms.abs() > frame_ms(prev) {
            breaks.push(Break::Time {
                index: next.index,
                ms: join_ms,
            });
        }
    }
    let mut connections: Vec<u32> = track.iter().map(|r| r.connection).collect();
    connections.sort_unstable();
    connections.dedup();
    TrackTiling {
        kind,
        segments: track.len(),
        first_index: track.first().map(|r| r.index),
        last_index: track.last().map(|r| r.index),
        covered_s: track.iter().map(|r| r.duration_s).sum(),
        frames: track.iter().map(|r| r.frames).sum(),
        worst_join_ms,
        connections: connections.len() as u32,
        breaks,
    }
}

/// Mean frame duration of a segment, ms; a segment without frames allows
/// no slack.
fn frame_ms(record: &SegmentRecord) -> f64 {
    if record.frames == 0 {
        0.0
    } else {
        record.duration_s * 1e3 / record.frames as f64
    }
}

#[cfg(test)]
mod tests {
    use ingest::SegmentEnd;

    use super::*;

    /// A 6-s video segment of 180 frames at `start_ms` on the stream's timeline.
    fn video(index: u64, start_ms: f64, duration_ms: f64) -> SegmentRecord {
        SegmentRecord {
            index,
            kind: MediaKind::Video,
            file: format!("video_{index:06}.ts"),
            start_s: start_ms / 1e3,
            pts_ns: (start_ms * 1e6) as u64,
            duration_s: duration_ms / 1e3,
            bytes: 1,
            frames: (duration_ms / (1000.0 / 30.0)).round() as u64,
            partial: false,
            end: SegmentEnd::Cut,
            starts_with_keyframe: true,
            connection: 1,
            write_latency_ms: 0.0,
        }
    }

    fn audio(index: u64, start_ms: f64, duration_ms: f64) -> SegmentRecord {
        SegmentRecord {
            kind: MediaKind::Audio,
            file: format!("audio_{index:06}.ts"),
            frames: (duration_ms / (1024.0 / 48.0)).round() as u64,
            ..video(index, start_ms, duration_ms)
        }
    }

    #[test]
    fn back_to_back_segments_tile_each_track() {
        let records = [
            video(0, 21.0, 6000.0),
            audio(0, 0.0, 6010.0),
            video(1, 6021.0, 6000.0),
            // Audio cut at the audio frame holding the cut's midpoint: 11 ms off.
            audio(1, 6021.0, 6000.0),
            video(2, 12021.0, 3000.0),
            audio(2, 12021.0, 2990.0),
        ];
        let tracks = check(&records);
        assert_eq!(tracks.len(), 2);
        let (v, a) = (&tracks[0], &tracks[1]);
        assert!(v.is_contiguous() && a.is_contiguous(), "{tracks:?}");
        assert_eq!((v.segments, v.first_index, v.last_index), (3, Some(0), Some(2)));
        assert!((v.covered_s - 15.0).abs() < 1e-9);
        assert_eq!(v.frames, 450);
        assert!(v.worst_join_ms < 1e-6, "{v:?}");
        assert!((a.worst_join_ms - 11.0).abs() < 1e-6, "{a:?}");
        assert_eq!(v.connections, 1);
    }

    #[test]
    fn a_missing_index_is_a_break() {
        let records = [video(3, 0.0, 6000.0), video(5, 6000.0, 6000.0)];
        let v = &check(&records)[0];
        assert_eq!(v.breaks, [Break::Index { after: 3, got: 5 }]);
        assert!(!v.is_contiguous());
    }

    #[test]
    fn gaps_and_overlaps_beyond_a_frame_are_breaks() {
        let records = [
            video(0, 0.0, 6000.0),
            // 30 ms late: within the 33.3-ms frame.
            video(1, 6030.0, 6000.0),
            // 40 ms late: a gap.
            video(2, 12070.0, 6000.0),
            // 50 ms early: an overlap.
            video(3, 18020.0, 6000.0),
        ];
        let v = &check(&records)[0];
        assert_eq!(v.breaks.len(), 2, "{v:?}");
        assert!(matches!(v.breaks[0], Break::Time { index: 2, ms } if (ms - 40.0).abs() < 1e-6));
        assert!(matches!(v.breaks[1], Break::Time { index: 3, ms } if (ms + 50.0).abs() < 1e-6));
        assert!((v.worst_join_ms - 50.0).abs() < 1e-6);
    }

    #[test]
    fn a_track_without_segments_is_not_contiguous() {
        let tracks = check(&[video(0, 0.0, 6000.0)]);
        assert!(tracks[0].is_contiguous());
        assert!(!tracks[1].is_contiguous(), "no audio at all");
        assert_eq!(tracks[1].segments, 0);
    }

    #[test]
    fn reconnects_are_counted_and_judged_on_the_streams_timeline() {
        // The second connection's start_s restarts at 0; pts_ns goes on.
        let mut second = video(1, 6000.0, 6000.0);
        second.connection = 2;
        second.start_s = 0.0;
        let v = &check(&[video(0, 0.0, 6000.0), second])[0];
        assert!(v.is_contiguous(), "{v:?}");
        assert_eq!(v.connections, 2);
    }
}
