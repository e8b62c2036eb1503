//! What happened when, per stream, for the HTML report: segments on the
//! stream's own timeline (with where a live ingest joined, the gaps between
//! segments and the faults at their media times), and on the wall clock
//! the connections, reconnects, segment writes and STS fragments.

use std::collections::BTreeMap;

use ingest::{FragmentStatus, MediaKind, WorkerEvent};
use serde::Serialize;

use crate::observe::ObservedStream;

/// One stream's timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    pub stream_id: String,
    /// On the stream's timeline (seconds).
    pub segments: Vec<SegmentBar>,
    pub gaps: Vec<Span>,
    pub not_received: Option<Span>,
    pub faults: Vec<Mark>,
    /// On the wall clock (seconds since the stream run started).
    pub connections: Vec<Span>,
    pub reconnects: Vec<Mark>,
    pub writes: Vec<Mark>,
    pub fragments: Vec<FragmentBar>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SegmentBar {
    pub kind: MediaKind,
    pub index: u64,
    pub start_s: f64,
    pub duration_s: f64,
    pub keyframe: bool,
    pub partial: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Span {
    pub from_s: f64,
    pub to_s: f64,
}

/// A moment, with what happened.
#[derive(Debug, Clone, Serialize)]
pub struct Mark {
    pub at_s: f64,
    pub what: String,
}

/// An STS fragment from its first send to its final status.
#[derive(Debug, Clone, Serialize)]
pub struct FragmentBar {
    pub index: u64,
    pub sent_s: f64,
    pub settled_s: Option<f64>,
    pub status: FragmentStatus,
}

impl Timeline {
    pub fn of(stream: &ObservedStream) -> Self {
        let world = &stream.world;
        let segments: Vec<SegmentBar> = stream
            .segments
            .iter()
            .map(|s| SegmentBar {
                kind: s.record.kind,
                index: s.record.index,
                start_s: s.record.pts_ns as f64 / 1e9,
                duration_s: s.record.duration_s,
                keyframe: s.starts_with_keyframe(),
                partial: s.record.partial,
            })
            .collect();
        let not_received = world.events.iter().find_map(|(_, e)| match e {
            WorkerEvent::TracksValidated(record) => record.join.not_received.map(|s| Span {
                from_s: s.from_s,
                to_s: s.to_s,
            }),
            _ => None,
        });
        Self {
            stream_id: world.stream_id.clone(),
            gaps: gaps(&segments),
            segments,
            not_received,
            faults: world
                .faults
                .iter()
                .map(|f| Mark {
                    at_s: f.media_ms / 1e3,
                    what: f.what.clone(),
                })
                .collect(),
            connections: connections(&world.events),
            reconnects: marks(&world.events, |e| match e {
                WorkerEvent::Reconnecting { attempt, reason, .. } => {
                    Some(format!("attempt {attempt}: {reason}"))
                }
                _ => None,
            }),
            writes: marks(&world.events, |e| match e {
                WorkerEvent::SegmentWritten(s) => Some(s.file.clone()),
                _ => None,
            }),
            fragments: fragments(&world.events),
        }
    }

    /// The end of the stream's timeline that the bars reach.
    pub fn media_end_s(&self) -> f64 {
        self.segments
            .iter()
            .map(|s| s.start_s + s.duration_s)
            .chain(self.faults.iter().map(|f| f.at_s))
            .fold(0.0, f64::max)
    }

    /// The last wall-clock moment the timeline shows.
    pub fn wall_end_s(&self) -> f64 {
        self.connections
            .iter()
            .map(|c| c.to_s)
            .chain(self.writes.iter().map(|w| w.at_s))
            .chain(self.fragments.iter().map(|f| f.settled_s.unwrap_or(f.sent_s)))
            .fold(0.0, f64::max)
    }
}

/// Holes of more than 50 ms between consecutive segments of a track.
fn gaps(segments: &[SegmentBar]) -> Vec<Span> {
    let mut found = Vec::new();
    for kind in MediaKind::ALL {
        let track: Vec<&SegmentBar> = segments.iter().filter(|s| s.kind == kind).collect();
        for pair in track.windows(2) {
            let end = pair[0].start_s + pair[0].duration_s;
            if pair[1].start_s - end > 0.05 {
                found.push(Span {
                    from_s: end,
                    to_s: pair[1].start_s,
                });
            }
        }
    }
    found
}

fn marks(
    events: &[(std::time::Duration, WorkerEvent)],
    pick: impl Fn(&WorkerEvent) -> Option<String>,
) -> Vec<Mark> {
    events
        .iter()
        .filter_map(|(at, e)| {
            pick(e).map(|what| Mark {
                at_s: at.as_secs_f64(),
                what,
            })
        })
        .collect()
}

/// From each `connected` to its `disconnected` (or the last event).
fn connections(events: &[(std::time::Duration, WorkerEvent)]) -> Vec<Span> {
    let end = events.last().map_or(0.0, |(at, _)| at.as_secs_f64());
    let mut spans = Vec::new();
    let mut open: Option<f64> = None;
    for (at, event) in events {
        match event {
            WorkerEvent::Connected { .. } => {
                open.get_or_insert(at.as_secs_f64());
            }
            WorkerEvent::Disconnected { .. } | WorkerEvent::Finished { .. } | WorkerEvent::Failed { .. } => {
                if let Some(from_s) = open.take() {
                    spans.push(Span {
                        from_s,
                        to_s: at.as_secs_f64(),
                    });
                }
            }
            _ => {}
        }
    }
    if let Some(from_s) = open {
        spans.push(Span { from_s, to_s: end });
    }
    spans
}

fn fragments(events: &[(std::time::Duration, WorkerEvent)]) -> Vec<FragmentBar> {
    let mut bars: BTreeMap<u64, FragmentBar> = BTreeMap::new();
    for (at, event) in events {
        let Some(record) = event.fragment() else {
            continue;
        };
        let at_s = at.as_secs_f64();
        let bar = bars.entry(record.index).or_insert(FragmentBar {
            index: record.index,
            sent_s: at_s,
            settled_s: None,
            status: record.status,
        });
        bar.status = record.status;
        if record.status.is_final() {
            bar.settled_s.get_or_insert(at_s);
        }
    }
    bars.into_values().collect()
}
