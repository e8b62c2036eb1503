//! What a cluster scenario's stream comes to beyond a service's: how many
//! turns the lease gave (its epoch, from `ingest cluster status`), whether
//! the files agree with it (one takeover record per change of owner), that
//! at most one owner wrote at any moment (no segment or output span written
//! by two, segments written in the order of their indices across owners),
//! that the stream was served to its end, and each takeover's gap (a
//! figure for the report: its length depends on the machine).

use std::collections::BTreeSet;

use ingest::{ManifestEntry, MediaKind};
use serde::Serialize;

use super::unmet::ServiceUnmet;
use crate::observe::cluster::OwnerPart;
use crate::observe::service::ObservedServiceStream;

/// How far a segment may start before the one before it ends (FLV's
/// millisecond rounding), in nanoseconds.
const OVERLAP_NS: i128 = 2_000_000;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterStreamFacts {
    /// Times the stream's lease was taken (its epoch at the end).
    pub turns: Option<u64>,
    /// Instances that wrote some of it.
    pub owners: usize,
    /// Every turn after the first is stated in its owner's manifest (a
    /// takeover record naming the owner before), and each such owner's
    /// first connection states what it could not receive.
    pub takeovers_stated: bool,
    /// No segment or output span written by two owners; segments written
    /// in the order of their indices whoever wrote them; no segment
    /// overlapping the one before on the stream's timeline.
    pub one_owner_at_a_time: bool,
    /// The last segment reaches the input's last picture.
    pub served_to_the_end: bool,
    /// Each takeover's gap on the stream's timeline (seconds), for the
    /// report.
    #[serde(skip)]
    pub gaps_s: Vec<f64>,
}

pub(crate) fn facts(stream: &ObservedServiceStream, turns: Option<u64>) -> ClusterStreamFacts {
    let parts = &stream.owners;
    let records: Vec<&ManifestEntry> = parts.iter().flat_map(|p| &p.entries).collect();
    let takeovers: Vec<u64> = records
        .iter()
        .filter_map(|e| match e {
            ManifestEntry::Takeover(t) => Some(t.epoch),
            _ => None,
        })
        .collect();
    let (connections, gaps_s) = after_takeovers(parts);
    let takeovers_stated = turns.is_some_and(|turns| {
        let epochs: BTreeSet<u64> = takeovers.iter().copied().collect();
        epochs.len() == takeovers.len() && epochs == (2..=turns).collect() && gaps_s.len() == connections
    });
    ClusterStreamFacts {
        turns,
        owners: parts.iter().filter(|p| !p.writes.is_empty()).count(),
        takeovers_stated,
        one_owner_at_a_time: one_at_a_time(parts, stream),
        served_to_the_end: served_to_the_end(stream),
        gaps_s,
    }
}

/// Per owner's manifest, the connections that came first after each of
/// its takeover records, and the gap each states (`not_received`, in
/// seconds) where it does.
fn after_takeovers(parts: &[OwnerPart]) -> (usize, Vec<f64>) {
    let mut connections = 0;
    let mut gaps = Vec::new();
    for part in parts {
        let mut after = false;
        for entry in &part.entries {
            match entry {
                ManifestEntry::Takeover(_) => after = true,
                ManifestEntry::Connection(c) if after => {
                    connections += 1;
                    gaps.extend(c.join.not_received.as_ref().map(|g| g.to_s - g.from_s));
                    after = false;
                }
                _ => {}
            }
        }
    }
    (connections, gaps)
}

fn one_at_a_time(parts: &[OwnerPart], stream: &ObservedServiceStream) -> bool {
    if !written_once_in_order(parts) {
        return false;
    }
    for kind in [MediaKind::Video, MediaKind::Audio] {
        let mut segments: Vec<_> = stream.segments().into_iter().filter(|s| s.kind == kind).collect();
        segments.sort_by_key(|s| s.index);
        let overlaps = segments.windows(2).any(|w| {
            let end = i128::from(w[0].pts_ns) + (w[0].duration_s * 1e9) as i128;
            i128::from(w[1].pts_ns) < end - OVERLAP_NS
        });
        if overlaps {
            return false;
        }
    }
    let spans: Vec<u64> = stream.spans().iter().map(|s| s.index).collect();
    spans.len() == spans.iter().collect::<BTreeSet<_>>().len()
}

/// No segment index written by two owners (or twice), and across owners
/// segments written in the order of their indices.
fn written_once_in_order(parts: &[OwnerPart]) -> bool {
    [MediaKind::Video, MediaKind::Audio].into_iter().all(|kind| {
        let mut writes: Vec<(u64, std::time::SystemTime, &str)> = parts
            .iter()
            .flat_map(|p| {
                p.writes
                    .iter()
                    .filter(move |w| w.kind == kind)
                    .map(move |w| (w.index, w.at, p.instance.as_str()))
            })
            .collect();
        writes.sort_by_key(|(index, ..)| *index);
        writes
            .windows(2)
            .all(|w| w[0].0 != w[1].0 && (w[0].2 == w[1].2 || w[0].1 <= w[1].1))
    })
}

fn served_to_the_end(stream: &ObservedServiceStream) -> bool {
    let Some(last_picture_ns) = stream.input_last_picture_ns else {
        return false;
    };
    stream
        .segments()
        .iter()
        .filter(|s| s.kind == MediaKind::Video)
        .map(|s| i128::from(s.pts_ns) + (s.duration_s * 1e9) as i128)
        .max()
        .is_some_and(|end| end + OVERLAP_NS >= i128::from(last_picture_ns))
}

/// What a stream's cluster facts fail of the rules and of `owners`.
pub(crate) fn unmet(facts: &ClusterStreamFacts, owners: Option<u32>) -> Vec<ServiceUnmet> {
    let mut unmet = Vec::new();
    if !facts.one_owner_at_a_time {
        unmet.push(ServiceUnmet::Cluster(
            "two owners wrote the stream at once (a segment or span written twice, or out of order across owners)",
        ));
    }
    if !facts.takeovers_stated {
        unmet.push(ServiceUnmet::Cluster(
            "a change of owner is not stated in the manifests as the lease's epochs say",
        ));
    }
    if !facts.served_to_the_end {
        unmet.push(ServiceUnmet::Cluster(
            "the stream was not served to its last picture",
        ));
    }
    if let Some(expected) = owners
        && facts.owners != expected as usize
    {
        unmet.push(ServiceUnmet::Stated {
            what: "owners",
            expected: expected.to_string(),
            got: facts.owners.to_string(),
        });
    }
    unmet
}

/// Whether the streams' first owners spread over the instances within one
/// stream of even (instances that got none count too).
pub(crate) fn spread_evenly(streams: &[ObservedServiceStream], instances: usize) -> bool {
    let mut counts = std::collections::BTreeMap::new();
    for first in streams.iter().filter_map(|s| s.owners.first()) {
        *counts.entry(first.instance.as_str()).or_insert(0usize) += 1;
    }
    let most = counts.values().copied().max().unwrap_or(0);
    let least = if counts.len() < instances {
        0
    } else {
        counts.values().copied().min().unwrap_or(0)
    };
    most - least <= 1
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::observe::cluster::SegmentWrite;

    fn part(instance: &str, writes: &[(u64, u64)]) -> OwnerPart {
        OwnerPart {
            instance: instance.to_owned(),
            entries: Vec::new(),
            writes: writes
                .iter()
                .map(|(index, at_s)| SegmentWrite {
                    index: *index,
                    kind: MediaKind::Video,
                    at: SystemTime::UNIX_EPOCH + Duration::from_secs(*at_s),
                })
                .collect(),
        }
    }

    #[test]
    fn a_takeover_numbering_on_is_one_owner_at_a_time() {
        let parts = [part("i1", &[(0, 10), (1, 16)]), part("i2", &[(3, 30), (4, 36)])];
        assert!(written_once_in_order(&parts));
    }

    #[test]
    fn an_index_written_by_two_owners_is_caught() {
        let parts = [part("i1", &[(0, 10)]), part("i2", &[(0, 20), (1, 26)])];
        assert!(!written_once_in_order(&parts));
    }

    #[test]
    fn an_old_owner_writing_after_the_new_one_started_is_caught() {
        // i1, paused, wrote segment 1 after i2 had written segment 2.
        let parts = [part("i1", &[(0, 10), (1, 40)]), part("i2", &[(2, 30)])];
        assert!(!written_once_in_order(&parts));
    }
}
